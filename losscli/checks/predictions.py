"""Prediction checks: logits or probabilities, log-probabilities and rates against the loss.

Every check reads what the predictions look like (:mod:`losscli.kinds`) and compares it with
the ``input_domain`` and ``activation`` of the :class:`LossSpec`. Thresholds follow SPEC.md:
"rows sum to 1" means within 1e-3; cross-entropy's ``probabilities-as-logits`` accepts a
median row sum within 0.25 of 1; bce-logits' needs at least 8 values, and, when the targets
lie in [0, 1], values that fit them clearly better as probabilities than as logits (a
prior-initialised output bias puts logits inside [0, 1] too).

Against false alarms, a median row sum near 1 must also be more than chance: rows that sum
to 1 exactly (up to the rounding of values saved with a few decimals), a hand-typed table (at
most 2 decimal places), or at least 8 rows; a row or two of post-ReLU scores in [0, 1] is not
softmax output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from losscli import stable, text
from losscli.checks import Check, CheckContext, Scope, Totals
from losscli.checks.arguments import (
    POSITIVE_SLACK,
    ROUNDING_SLACK_CAP,
    as_float,
    class_axes,
    class_axis,
    ctc_batch,
    is_ctc,
    looks_like_log_probabilities,
    prediction,
    row_sums,
    stored_eps,
    sum_tolerance,
    target_lines_up,
)
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.kinds import (
    ROW_FRACTION,
    ROW_TOLERANCE,
    ArrayKind,
    Kind,
    RowStats,
    classify,
    decimal_places,
    rows_of,
)
from losscli.losses import Activation, Domain, Layout, LossSpec, Role
from losscli.losses import get as get_loss
from losscli.readings import SigmoidReadings, sigmoid_readings

# cross-entropy input counts as probabilities when its median row sum is this close to 1
PROBABILITY_ROW_SUM_SLACK = 0.25
# bce-logits input counts as probabilities when every one of at least this many values is in [0, 1]
MIN_SIGMOID_VALUES = 8
# rows near (not within 1e-3 of) a sum of 1 need this many rows, or hand-typed numbers, to count
MIN_INEXACT_ROWS = 8
# exact row sums count when rows * -log10(chance of one row) reaches this (one float32 row: >= 2.7)
EXACT_ROW_EVIDENCE = 2.5
# at most this many decimal places reads as a hand-typed table
HAND_TYPED_PLACES = 2
# nll input rows whose logsumexp is further than this from 0 are not log-probabilities
LOGSUMEXP_SLACK = 0.1
# probabilities this far outside [0, 1] are rounding of a computed probability, not logits
_ROUNDING_EXCESS = 1e-5
# poisson-nll with log_input: inputs this large are rates, not log-rates, when exp() of
# them also dwarfs the largest count by this factor
_LOG_RATE_MEDIAN = 5.0
_LOG_RATE_MAX = 20.0
_RATE_EXCESS = 10.0


def _applies_an_activation(spec: LossSpec) -> bool:
    """The loss applies softmax or sigmoid to its input itself."""
    return spec.activation is not Activation.NONE


def _takes_log_probability_scores(spec: LossSpec) -> bool:
    """nll: [batch, classes, ...] log-probabilities."""
    return spec.input_domain is Domain.LOG_PROBABILITIES and spec.layout is Layout.CLASS_SCORES


def _takes_probabilities(spec: LossSpec) -> bool:
    """bce: probabilities in [0, 1]."""
    return spec.input_domain is Domain.PROBABILITIES


def _takes_log_distributions(spec: LossSpec) -> bool:
    """kl-div: log-probabilities against a distribution target."""
    return (
        spec.input_domain is Domain.LOG_PROBABILITIES
        and spec.argument(Role.DISTRIBUTION_TARGET) is not None
    )


def _takes_log_input(spec: LossSpec) -> bool:
    """poisson-nll: counts, with log-rates or rates as input (``--log-input``)."""
    return spec.argument(Role.COUNT_TARGET) is not None and spec.option("log_input") is not None


# ---------------------------------------------------------------- logits or probabilities


def _tolerance_text(tolerance: float) -> str:
    return "1e-3" if tolerance == ROW_TOLERANCE else text.number(tolerance)


def check_probabilities_as_logits(context: CheckContext) -> Iterator[Finding]:
    """Softmax/sigmoid output given to a loss that applies softmax/sigmoid itself."""
    spec = context.spec
    name, scores = prediction(context)
    if spec.activation is Activation.SOFTMAX:
        if scores.ndim < 2 or scores.shape[1] < 2:
            return
        if not context.soft_target and not target_lines_up(context):
            return  # rows along dimension 1 may not be the classes: the shape findings say so
        values = context.inputs[name].values
        kind = classify(values, class_axis=1)
        rows = kind.rows
        if rows is None or not kind.in_unit_interval:
            return
        if abs(rows.sum_median - 1) > PROBABILITY_ROW_SUM_SLACK:
            yield from _softmax_over_batch(context, name, values, rows.tolerance)
            return
        if not _enough_probability_evidence(values, rows.tolerance):
            return
        yield finding(
            "probabilities-as-logits",
            Severity.WARNING,
            f"every value of {name} from {context.source(name)} lies in [0, 1] "
            f"({text.number(kind.min)} to {text.number(kind.max)}) and its rows sum to about 1 (median "
            f"{text.number(rows.sum_median)}, min {text.number(rows.sum_min)}, max {text.number(rows.sum_max)}; "
            f"{rows.fraction_sum_to_one:.0%} within {_tolerance_text(rows.tolerance)}): softmax was already applied, and "
            f"{spec.name} applies it again, so the loss barely moves and trains slowly",
            f"pass the logits (the model output before softmax): {spec.call}(logits, target); "
            "with probabilities only, take their log: log-softmax of log-probabilities is "
            "themselves, so the loss is then nll on them, F.nll_loss(torch.log(probs), target)",
            remedies=(
                Remedy(
                    maps=(f"{name} = {_log(name, values)}",),
                    note="the log of probabilities are log-probabilities: cross-entropy on them "
                    "equals nll (in training code, pass the logits instead)",
                ),
            ),
            row_sum_median=rows.sum_median,
            fraction_rows_sum_to_one=rows.fraction_sum_to_one,
        )
        return
    if spec.activation is Activation.SIGMOID:
        kind = classify(context.inputs[name].values)
        if kind.size < MIN_SIGMOID_VALUES or not kind.in_unit_interval or kind.constant:
            return
        readings = _sigmoid_readings(context, name)
        if readings is not None and not readings.probabilities_fit_better:
            return  # logits that happen to lie in [0, 1] (a prior-initialised output bias)
        yield finding(
            "probabilities-as-logits",
            Severity.WARNING,
            f"all {kind.size} values of {name} from {context.source(name)} lie in [0, 1] "
            f"({text.number(kind.min)} to {text.number(kind.max)}, median "
            f"{text.number(_median(context.inputs[name].values))}): they look like "
            f"sigmoid output, and {spec.name} applies sigmoid again, squeezing every prediction into "
            "[0.5, 0.73]" + ("" if readings is None else readings.text()),
            "pass the logits (the model output before torch.sigmoid), or recover them with "
            f"{name}.logit()"
            + (
                f"; with probabilities only, {other.call} takes them as they are"
                if (other := _on_probabilities(context)) is not None
                else ""
            ),
            remedies=_sigmoid_remedies(context, name),
            minimum=kind.min,
            maximum=kind.max,
        )


def _median(values: np.ndarray) -> float:
    """The median of the finite values (only for a finding's message: a sort of them all)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return float(np.median(flat[np.isfinite(flat)]))


def _sigmoid_readings(context: CheckContext, name: str) -> SigmoidReadings | None:
    """Both readings of a sigmoid loss's input against its target in [0, 1] (None without one)."""
    target = next((a.name for a in context.spec.arguments if a.role is Role.BINARY_TARGET), None)
    if target is None:
        return None
    return sigmoid_readings(as_float(context.arrays[name]), as_float(context.arrays[target]))


def _log(name: str, values: np.ndarray) -> str:
    """``input.log()``, clamped first when some probability is exactly 0 (log(0) is -inf)."""
    array = np.asarray(values)
    if array.size and bool((array == 0).any()):
        return f"{name}.clamp(min=1e-12).log()"
    return f"{name}.log()"


def _on_probabilities(context: CheckContext) -> LossSpec | None:
    """The loss that computes the same value from probabilities (``LossSpec.on_probabilities``),
    when every option set away from its default is one it takes too (bce has no pos_weight)."""
    other = get_loss(context.spec.on_probabilities) if context.spec.on_probabilities else None
    if other is None:
        return None
    default = {o.name: o.default for o in context.spec.options}
    changed = [n for n, v in context.options.items() if not _same(v, default.get(n))]
    return other if all(other.option(n) is not None for n in changed) else None


def _same(value: object, default: object) -> bool:
    return value is default or (not isinstance(value, np.ndarray) and value == default)


def _sigmoid_remedies(context: CheckContext, name: str) -> tuple[Remedy, ...]:
    """Sigmoid output given to a loss that applies sigmoid: its inverse, or bce on it."""
    inverse = Remedy(
        maps=(f"{name} = {name}.logit()",),
        note="logit is the inverse of sigmoid: it recovers the logits (in training code, "
        "drop the torch.sigmoid)",
    )
    other = _on_probabilities(context)
    if other is None:
        return (inverse,)
    return (
        inverse,
        Remedy(loss=other.name, note=f"{other.name} takes the probabilities as they are"),
    )


def _enough_probability_evidence(values: np.ndarray, tolerance: float) -> bool:
    """Rows in [0, 1] near a sum of 1 that cannot be chance: exact sums, typed numbers, or many rows.

    Args:
        values: [batch, classes, ...] every value in [0, 1], median row sum near 1.
        tolerance: how far an exact row sum may be from 1 (the dtype's :func:`row_tolerance`).

    softmax output sums to 1 within ``tolerance``, or within its rounding when saved with a
    few decimal places; hand-typed tables have at most 2 places; anything else (a row or two
    of post-ReLU logits that happen to lie in [0, 1]) needs ``MIN_INEXACT_ROWS`` rows before
    the median row sum means something.
    """
    sums = rows_of(values, 1).sum(axis=1)
    sums = sums[np.isfinite(sums)]
    length = int(np.asarray(values).shape[1])
    places = decimal_places(values)
    if places is not None and places <= HAND_TYPED_PLACES:
        return True
    if places:  # saved with 3 or 4 places: each value may be off by half a unit in the last
        tolerance += min(length * 0.5 * 10.0**-places, ROUNDING_SLACK_CAP)
    exact_rows = int(np.sum(np.abs(sums - 1) <= tolerance))
    if sums.size and exact_rows >= ROW_FRACTION * sums.size:
        # C scores in [0, 1] sum to within the tolerance of 1 by chance with probability about
        # 2 * tolerance / (C - 1)! (the Irwin-Hall density at 1): one float32 row of C=2 is
        # 1 in 500, a float16 row of C=3 only 1 in 150, so float16 needs a second row
        per_row = -math.log10(min(2 * tolerance, 1.0)) + math.lgamma(length) / math.log(10)
        if exact_rows * per_row >= EXACT_ROW_EVIDENCE:
            return True
    return int(sums.size) >= MIN_INEXACT_ROWS


def _batch_axis_normalised(values: np.ndarray, tolerance: float, log: bool) -> bool:
    """[batch, classes] values whose columns, not rows, sum to 1 (or logsumexp to 0).

    ``softmax(dim=0)`` (or ``nn.Softmax()`` on a 3-D output, or a wrong ``dim`` after a
    transpose) normalises over the batch. Needs exact column sums in at least 90 % of the
    columns, and the same chance argument as rows: about 2 * tolerance / (N - 1)! per column.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2 or not np.all(np.isfinite(array)):
        return False
    off = np.abs(stable.logsumexp(array, axis=0) if log else array.sum(axis=0) - 1)
    exact = int(np.sum(off <= tolerance))
    if exact < ROW_FRACTION * array.shape[1]:
        return False
    per_column = -math.log10(min(2 * tolerance, 1.0)) + math.lgamma(array.shape[0]) / math.log(10)
    return exact * per_column >= EXACT_ROW_EVIDENCE


def _softmax_over_batch(
    context: CheckContext, name: str, values: np.ndarray, tolerance: float
) -> Iterator[Finding]:
    """Probabilities normalised over dimension 0 given to cross-entropy."""
    if not _batch_axis_normalised(values, tolerance, log=False):
        return
    batch = int(np.asarray(values).shape[0])
    yield finding(
        "probabilities-as-logits",
        Severity.WARNING,
        f"every value of {name} from {context.source(name)} lies in [0, 1] and each of "
        f"its columns sums to 1 over the {batch} samples: softmax ran over dimension 0 (the batch), "
        f"not over the classes, and {context.spec.name} applies its own softmax on top",
        f"pass the logits (the model output before softmax): F.{context.spec.function}(logits, target); "
        "a softmax for reporting belongs on dim=1: logits.softmax(dim=1)",
        remedies=(
            Remedy(
                outside=True,
                code="save the logits (the model output before softmax(dim=0)) and pass those",
                note="probabilities normalised over the batch cannot be turned back into logits",
            ),
        ),
        normalised_dimension=0,
    )


def check_nll_input(context: CheckContext) -> Iterator[Finding]:
    """nll wants log-probabilities: not raw scores, not probabilities."""
    spec = context.spec
    name, scores = prediction(context)
    if scores.size == 0 or scores.ndim == 0:
        return
    if not context.soft_target and not target_lines_up(context):
        return  # dimension 1 may not hold the classes: the shape findings say what does
    kind = classify(context.inputs[name].values, class_axis=class_axis(scores))
    rows = kind.rows
    if rows is None or kind.kind in (Kind.NON_FINITE, Kind.EMPTY):
        return
    target = spec.arguments[1].name
    if (
        kind.in_unit_interval
        and abs(rows.sum_median - 1) <= PROBABILITY_ROW_SUM_SLACK
        and rows.length >= 2
    ):
        yield finding(
            "probabilities-to-nll",
            Severity.ERROR,
            f"{name} from {context.source(name)} holds probabilities: every value in [0, 1] "
            f"({text.number(kind.min)} to {text.number(kind.max)}), rows summing to about 1 (median "
            f"{text.number(rows.sum_median)}); nll returns -input[i, y], so log was never taken and the loss "
            "lies in [-1, 0]",
            f"take the log first: F.nll_loss(torch.log(probs), {target}) (probs.clamp_min(1e-12).log() "
            "if some are 0)",
            remedies=(
                Remedy(
                    maps=(f"{name} = {_log(name, context.inputs[name].values)}",),
                    note="the log of softmax probabilities is log_softmax of the logits",
                ),
            ),
            row_sum_median=rows.sum_median,
        )
        return
    positive = int((np.asarray(context.inputs[name].values) > 1e-6).sum())
    lse_off = abs(rows.logsumexp_median) > LOGSUMEXP_SLACK
    if positive == 0 and rows.fraction_logsumexp_zero < ROW_FRACTION:
        layout = _flattened_layout(scores, rows.tolerance) if context.complete else None
        if layout is not None or not lse_off:
            yield _mixed_rows(context, name, scores, rows, layout)
            return
    if positive == 0 and not lse_off:
        return
    evidence = []
    if positive:
        evidence.append(
            f"{positive} of {kind.size} entries are positive (max {text.number(kind.max)})"
        )
    evidence.append(
        f"the median row logsumexp is {text.number(rows.logsumexp_median)} (log-softmax output has 0)"
    )
    fix = (
        f"apply log_softmax first: F.nll_loss(F.log_softmax(logits, dim=1), {target}), or give the "
        "logits to cross-entropy, which does both (F.cross_entropy)"
    )
    axis = class_axis(scores)
    remedies: tuple[Remedy, ...] = (
        Remedy(
            maps=(f"{name} = {name}.log_softmax({axis})",),
            note=f"log_softmax over the classes (dimension {axis}) turns logits into log-probabilities",
        ),
        Remedy(loss="cross-entropy", note="cross-entropy applies log_softmax to the logits itself"),
    )
    values = np.asarray(context.inputs[name].values)
    if positive == 0 and _batch_axis_normalised(values, rows.tolerance, log=True):
        evidence.append(
            f"each column has logsumexp 0 over the {values.shape[0]} samples: log_softmax ran over "
            "dimension 0 (the batch), not over the classes"
        )
        fix = (
            f"take log_softmax over the classes: F.nll_loss(F.log_softmax(logits, dim=1), {target}) "
            "(nn.LogSoftmax(dim=1), not dim=0)"
        )
        remedies = (
            Remedy(
                outside=True,
                code="save the logits (the model output before log_softmax(dim=0)) and take "
                "log_softmax(dim=1) of them",
                note="log-probabilities normalised over the batch cannot be turned back into logits",
            ),
        )
    yield finding(
        "logits-to-nll",
        Severity.ERROR,
        f"{name} from {context.source(name)} is not log-probabilities: {'; '.join(evidence)}. "
        "nll returns -input[i, y], so on raw scores the loss can go negative and rewards ever larger scores",
        fix,
        remedies=remedies,
        positive=positive,
        logsumexp_median=rows.logsumexp_median,
    )


# at most this many (N, T) splits of the rows are tried by _flattened_layout
_MAX_LAYOUTS = 64


def _flattened_layout(scores: np.ndarray, tolerance: float) -> tuple[int, int] | None:
    """(N, T) when the [rows, C] values are an (N, C, T) array of log-probabilities flattened
    with ``reshape(-1, C)``: read back as (N, C, T), every column has logsumexp 0 (one split
    only; None when no split, or several, fit)."""
    if scores.ndim != 2 or not np.all(np.isfinite(scores)):
        return None
    count, classes = (int(d) for d in scores.shape)
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    splits = [s for s in range(2, count + 1) if count % s == 0][:_MAX_LAYOUTS]
    found = []
    for steps in splits:
        cube = flat.reshape(count // steps, classes, steps)
        if _columns_normalised(cube[:1], tolerance) and _columns_normalised(cube, tolerance):
            found.append((count // steps, steps))
    return found[0] if len(found) == 1 else None


def _columns_normalised(cube: np.ndarray, tolerance: float) -> bool:
    """Every [n, :, t] of ``cube`` has logsumexp within ``tolerance`` of 0."""
    return bool(np.all(np.abs(stable.logsumexp(cube, axis=1)) <= tolerance))


def _mixed_rows(
    context: CheckContext,
    name: str,
    scores: np.ndarray,
    rows: RowStats,
    layout: tuple[int, int] | None,
) -> Finding:
    """Values <= 0 whose rows mostly do not have logsumexp 0: log-probabilities whose rows were
    put together across positions (``reshape(-1, C)`` of an (N, C, T) output)."""
    classes = int(scores.shape[class_axis(scores)])
    target = context.spec.arguments[1].name
    count = int(scores.shape[0])
    if layout is not None:
        batch, steps = layout
        seen = (
            f"read back as ({batch}, {classes}, {steps}) every position has logsumexp 0: "
            f"log-probabilities of shape (N, C, T) = ({batch}, {classes}, {steps}) flattened with "
            f"reshape(-1, {classes}), so each row holds one class at {classes} consecutive time "
            "steps and nll reads the wrong numbers"
        )
        remedy = Remedy(
            maps=(
                f"{name} = {name}.reshape({batch}, {classes}, {steps}).permute(0, 2, 1)"
                f".reshape({count}, {classes})",
            ),
            note=f"if {name} is ({batch}, {classes}, {steps}) log-probabilities flattened "
            "without moving the classes last (in training code: "
            f"log_probs.permute(0, 2, 1).reshape(-1, {classes}))",
        )
    else:
        seen = (
            "these look like log-probabilities whose rows were put together from different "
            f"positions, as log_probs.reshape(-1, {classes}) does to an (N, C, T) output: each "
            f"row holds one class at {classes} consecutive time steps, so nll reads the wrong numbers"
        )
        remedy = Remedy(
            outside=True,
            code=f"{name} = log_probs.permute(0, 2, 1).reshape(-1, {classes})",
            note="the flattened file no longer says which rows belonged to which sequence",
        )
    return finding(
        "logits-to-nll",
        Severity.ERROR,
        f"{name} from {context.source(name)} holds values <= 0 (median row logsumexp "
        f"{text.number(rows.logsumexp_median)}), but only {rows.fraction_logsumexp_zero:.0%} of its "
        f"{count} rows have logsumexp within {_tolerance_text(rows.tolerance)} of 0, where "
        f"log_softmax output has every row at 0; {seen}",
        f"flatten with the classes last: {name} = log_probs.permute(0, 2, 1).reshape(-1, "
        f"{classes}) with {target} = {target}.reshape(-1), or give nll the (N, C, T) "
        f"log-probabilities and the (N, T) {target} as they are",
        remedies=(remedy,),
        positive=0,
        logsumexp_median=rows.logsumexp_median,
        fraction_rows_logsumexp_zero=rows.fraction_logsumexp_zero,
    )


# ---------------------------------------------------------------- probabilities for bce


def check_input_unit_interval(context: CheckContext) -> Iterator[Finding]:
    """bce takes probabilities; logits outside [0, 1] mean the sigmoid was never applied."""
    spec = context.spec
    name = spec.arguments[0].name
    predictions = as_float(context.arrays[name])
    outside = np.isfinite(predictions) & ((predictions < 0) | (predictions > 1))
    count = int(outside.sum())
    if not count:
        return
    kind = classify(predictions)
    first = text.first(context, name, outside)
    negative = int((np.isfinite(predictions) & (predictions < 0)).sum())
    excess = float(max(-kind.min, kind.max - 1.0))
    if excess <= max(_ROUNDING_EXCESS, 8 * stored_eps(context, name)):
        # a computed probability (a product or sum of probabilities) a rounding unit outside
        yield finding(
            "input-outside-unit-interval",
            Severity.ERROR,
            f"{spec.name} wants {name} as probabilities in [0, 1], but {name} ({context.source(name)}) "
            f"holds {count} of {predictions.size} values a rounding error outside it ({negative} "
            f"below 0, {count - negative} above 1; by at most {excess:.3g}; first at "
            f"{text.position(first)}: {float(predictions[outside][0]):.9g}): torch rejects even these",
            f"these are probabilities computed with rounding error: clamp them before the loss, "
            f"`{name} = {name}.clamp(0, 1)` (or compute them from logits and use "
            "F.binary_cross_entropy_with_logits)",
            blocking=True,  # torch's binary_cross_entropy rejects it
            remedies=(
                Remedy(
                    maps=(f"{name} = {name}.clamp(0, 1)",),
                    note="probabilities a rounding error outside [0, 1]",
                ),
            ),
            argument=name,
            count=count,
            min=kind.min,
            max=kind.max,
            first_position=list(first),
        )
        return
    yield finding(
        "input-outside-unit-interval",
        Severity.ERROR,
        f"{spec.name} wants {name} as probabilities in [0, 1], but {name} ({context.source(name)}) holds "
        f"{count} of {predictions.size} values outside it ({negative} negative, {count - negative} above 1; "
        f"min {text.number(kind.min)}, max {text.number(kind.max)}; first at {text.position(first)}: "
        f"{text.number(predictions[outside][0])}): "
        + (
            "every value lies within [-1, 1]: tanh outputs, or logits that never went through "
            "the sigmoid"
            if _tanh_like(kind)
            else "these are logits, the sigmoid was never applied"
        ),
        f"logits: pass them to bce-logits, which applies the sigmoid stably (in PyTorch, "
        f"nn.BCEWithLogitsLoss; or `torch.sigmoid({name})` before nn.BCELoss)"
        + (
            f"; tanh outputs in [-1, 1]: rescale them, `({name} + 1) / 2`"
            if _tanh_like(kind)
            else ""
        ),
        blocking=True,  # torch's binary_cross_entropy rejects it
        remedies=_outside_unit_remedies(name, kind, predictions),
        argument=name,
        count=count,
        min=kind.min,
        max=kind.max,
        first_position=list(first),
    )


def _tanh_like(kind: ArrayKind) -> bool:
    """Every value within [-1, 1], some negative: what tanh (or a [-1, 1] scaling) outputs."""
    return kind.min >= -1.0 and kind.max <= 1.0 and kind.min < 0


# tanh outputs pile up at ±1 once trained: this share of them beyond _TANH_EDGE in magnitude
# rules out logits, which would then spill past ±1 as well
_TANH_SATURATED_SHARE = 0.1
_TANH_EDGE = 0.95


def _outside_unit_remedies(
    name: str, kind: ArrayKind, predictions: np.ndarray
) -> tuple[Remedy, ...]:
    """bce input outside [0, 1]: logits (bce-logits), or tanh outputs in [-1, 1] (rescale).

    Values within [-1, 1] that pile up at ±1 are saturated tanh outputs: logits spread that
    far would cross ±1, so bce-logits is then not offered (it would give a confident, wrong
    value).
    """
    logits = Remedy(
        loss="bce-logits",
        note="if these are logits (the model ends in a Linear layer, values of any size)",
    )
    if not _tanh_like(kind):
        return (logits,)
    tanh = Remedy(
        maps=(f"{name} = ({name} + 1) / 2",),
        note="if these are tanh outputs (all within [-1, 1]): (x + 1) / 2 maps them onto [0, 1]",
    )
    finite = predictions[np.isfinite(predictions)]
    saturated = float((np.abs(finite) > _TANH_EDGE).mean()) if finite.size else 0.0
    if saturated >= _TANH_SATURATED_SHARE:
        return (tanh,)
    return (tanh, logits)


def count_saturated(context: CheckContext) -> Totals:
    """Probabilities of exactly 0 or 1 in this view, and how many miss their target."""
    spec = context.spec
    name = spec.arguments[0].name
    predictions = as_float(context.arrays[name])
    finite = np.isfinite(predictions)
    saturated = (predictions == 0) | (predictions == 1)
    loaded = np.asarray(context.inputs[name].values, dtype=np.float64)
    target_argument = spec.argument(Role.BINARY_TARGET)
    targets = (
        as_float(context.arrays[target_argument.name]) if target_argument is not None else None
    )
    if targets is not None and targets.shape == predictions.shape:
        wrong = int((saturated & (targets != predictions)).sum())
    else:
        wrong = int(saturated.sum())  # cannot pair them with targets: assume the worst
    first = text.first(context, name, saturated) if saturated.any() else None
    paired = loaded.shape == predictions.shape
    return {
        "any_finite": bool(finite.any()),
        "any_outside": bool(((predictions < 0) | (predictions > 1))[finite].any()),
        "zeros": int((predictions == 0).sum()),
        "ones": int((predictions == 1).sum()),
        "values": int(predictions.size),
        "wrong": wrong,
        # saturated values that the file holds exactly (not a cast's rounding)
        "stored_saturated": int(((loaded == 0) | (loaded == 1)).sum()) if paired else 1,
        "first_position": first,
        "first_loaded": float(loaded[saturated][0]) if first is not None and paired else None,
    }


def check_saturated_probabilities(context: CheckContext) -> Iterator[Finding]:
    """Probabilities of exactly 0 or 1, counted over every sample: bce clamps log at -100."""
    totals = context.totals if context.totals is not None else count_saturated(context)
    if not totals["any_finite"] or totals["any_outside"]:
        return  # outside [0, 1]: input-outside-unit-interval says it
    zeros, ones, size = totals["zeros"], totals["ones"], totals["values"]
    if not zeros and not ones:
        return
    name = context.spec.arguments[0].name
    first = totals["first_position"]
    stored = context.arrays[name].dtype
    if not totals["stored_saturated"]:
        # the file holds values a hair inside (0, 1) that only the cast to float32 rounded
        yield finding(
            "saturated-probabilities",
            Severity.INFO,
            f"{name} ({context.source(name)}) holds {zeros + ones} values within "
            f"{text.number(float(np.finfo(stored).eps))} of 0 or 1 (of {size}; first at "
            f"{text.position(first)}: {totals['first_loaded']:.17g}) that round to exactly 0 or 1 "
            f"as {stored}, where bce clamps log(0) at -100",
            "compute in the stored precision with --dtype float64; in a float32 model, keep the "
            "logits and use F.binary_cross_entropy_with_logits",
            argument=name,
            zeros=zeros,
            ones=ones,
            first_position=list(first),
        )
        return
    wrong = totals["wrong"]
    if not wrong:
        # a trained model's easy samples: each term is exactly 0, as it would be unclamped
        yield finding(
            "saturated-probabilities",
            Severity.INFO,
            f"{name} ({context.source(name)}) holds {zeros} values of exactly 0 and {ones} of "
            f"exactly 1 (of {size}) as {stored}, every one equal to its target: those "
            "terms are exactly 0 either way; a wrong one would cost exactly 100 (log clamped at -100)",
            "nothing to do for these; F.binary_cross_entropy_with_logits on the logits avoids "
            "the clamp altogether",
            argument=name,
            zeros=zeros,
            ones=ones,
            wrong=0,
            first_position=list(first),
        )
        return
    yield finding(
        "saturated-probabilities",
        Severity.WARNING,
        f"{name} ({context.source(name)}) holds {zeros} values of exactly 0 and {ones} of exactly 1 "
        f"(of {size}, {text.percent(zeros + ones, size)}; first at {text.position(first)}) "
        f"as {stored}, {wrong} of them away from their target: bce clamps log(0) at -100, so each "
        "of those costs exactly 100 and the sigmoid before it passes no gradient back",
        "keep the logits and use bce-logits (in PyTorch, drop the torch.sigmoid and use "
        "nn.BCEWithLogitsLoss)",
        remedies=(
            Remedy(
                outside=True,
                code="F.binary_cross_entropy_with_logits(logits, target) on the model output "
                "before torch.sigmoid",
                note="the saturated probabilities have lost the logits: save them before the sigmoid",
            ),
        ),
        argument=name,
        zeros=zeros,
        ones=ones,
        wrong=wrong,
        first_position=list(first),
    )


# ---------------------------------------------------------------- log-probabilities: kl-div, ctc


def check_kl_input(context: CheckContext) -> Iterator[Finding]:
    """kl-div's input is log-probabilities: positive entries mean probabilities or logits."""
    spec = context.spec
    name = spec.arguments[0].name
    predictions = as_float(context.arrays[name])
    positive = np.isfinite(predictions) & (predictions > POSITIVE_SLACK)
    count = int(positive.sum())
    if not count:
        return
    axes = class_axes(predictions)
    eps = stored_eps(context, name)
    target_name = next(a.name for a in spec.arguments if a.role is Role.DISTRIBUTION_TARGET)
    targets = as_float(context.arrays[target_name])
    log_target = bool(context.options.get("log_target", False))
    first = text.first(context, name, positive)
    rows = row_sums(predictions, axes, eps)
    finite = predictions[np.isfinite(predictions)]
    is_probabilities = (
        rows is not None and not rows.off.any() and finite.min() >= 0 and finite.max() <= 1
    )
    # the dim the user's softmax ran over, else the class dim as torch code usually writes it
    dim = (
        rows.axis if is_probabilities and rows is not None else (1 if predictions.ndim == 2 else -1)
    )
    swapped = looks_like_log_probabilities(targets, stored_eps(context, target_name))
    remedies: tuple[Remedy, ...]
    if is_probabilities and not log_target and swapped:
        seen = (
            f"{name} holds probabilities (rows sum to 1) and {target_name} holds log-probabilities"
        )
        fix = (
            f"the arguments are swapped: F.kl_div takes the model's log-probabilities first, "
            f"`F.kl_div({target_name}, {name}, reduction='batchmean')`; with losscli, give them in that "
            "order"
        )
        remedies = (
            Remedy(
                order=(target_name, name),
                note=f"{target_name} holds the log-probabilities and {name} the distribution",
            ),
        )
    elif is_probabilities:
        seen = f"its rows are probabilities summing to 1 (values {text.span(predictions)})"
        fix = f"take the log: `{name} = F.log_softmax(logits, dim={dim})` instead of F.softmax"
        remedies = (
            Remedy(
                maps=(f"{name} = {_log(name, context.inputs[name].values)}",),
                note="the log of softmax probabilities is log_softmax of the logits",
            ),
        )
    else:
        seen = f"these look like raw scores (logits) from {text.span(predictions)}"
        fix = f"`{name} = F.log_softmax(logits, dim={dim})`"
        remedies = (
            Remedy(
                maps=(f"{name} = {name}.log_softmax({dim})",),
                note=f"if dimension {dim} holds the classes",
            ),
        )
    yield finding(
        "kl-input-not-log",
        Severity.ERROR,
        f"kl-div wants {name} as log-probabilities (<= 0), but {name} ({context.source(name)}) holds "
        f"{count} positive values of {predictions.size} ({text.percent(count, predictions.size)}; first at "
        f"{text.position(first)}: {text.number(predictions[positive][0])}): {seen}",
        fix,
        remedies=remedies,
        argument=name,
        positive=count,
        first_position=list(first),
    )


def check_ctc_log_probs(context: CheckContext) -> Iterator[Finding]:
    """CTC wants log-softmax over the class dim (last) in every frame within the input length."""
    ctc = ctc_batch(context)
    if ctc is None:
        return
    name = next(a.name for a in context.spec.arguments if a.role is Role.LOG_PROBS)
    time, batch, classes = ctc.log_probs.shape
    frames = [
        ctc.log_probs[: max(0, min(int(ctc.input_lengths[n]), time)), n, :] for n in range(batch)
    ]
    rows = np.concatenate(frames, axis=0) if frames else np.empty((0, classes))
    rows = rows[np.isfinite(rows).all(axis=1)] if rows.size else rows
    if rows.shape[0] == 0:
        return
    logsumexp = stable.logsumexp(rows, axis=1)
    tolerance = sum_tolerance(classes, stored_eps(context, name))
    off = np.abs(logsumexp) > tolerance
    positive = int((rows > POSITIVE_SLACK).sum())
    if not off.any() and not positive:
        return
    sums = rows.sum(axis=1)
    if rows.min() >= 0 and rows.max() <= 1 and np.mean(np.abs(sums - 1) <= tolerance) >= 0.9:
        median = text.number(float(np.median(sums)))
        seen = f"every value is in [0, 1] and frames sum to 1 (median {median}): softmax output"
        fix = f"use log_softmax, not softmax: `{name} = logits.log_softmax(2)`"
        remedies: tuple[Remedy, ...] = (
            Remedy(
                maps=(f"{name} = {_log(name, ctc.log_probs)}",),
                note="the log of softmax probabilities is log_softmax of the logits",
            ),
        )
    elif rows.max() <= POSITIVE_SLACK and batch > 1 and _batch_normalised(ctc.log_probs, tolerance):
        seen = "the values are <= 0 but normalised over the batch dim (1), not the classes"
        fix = f"normalise over the class dim: `{name} = logits.log_softmax(2)` (not dim=1)"
        remedies = (
            Remedy(
                outside=True,
                code=f"{name} = logits.log_softmax(2) on the model output (not dim=1)",
                note="log-probabilities normalised over the batch cannot be turned back into logits",
            ),
        )
    else:
        seen = "these look like raw scores (logits)"
        fix = f"`{name} = logits.log_softmax(2)` ([time, batch, classes]; CTC needs log-probabilities)"
        remedies = (
            Remedy(
                maps=(f"{name} = {name}.log_softmax(2)",),
                note="log_softmax over the classes (dimension 2) of [time, batch, classes] logits",
            ),
        )
    yield finding(
        "ctc-input-not-log-probs",
        Severity.ERROR,
        f"ctc wants {name} as log-probabilities over the class dim (last): each frame's logsumexp "
        f"should be 0, but in {name} ({context.source(name)}) {int(off.sum())} of {rows.shape[0]} frames "
        f"within the input lengths are off ({text.percent(int(off.sum()), rows.shape[0])}; logsumexp from "
        f"{text.number(float(logsumexp.min()))} to {text.number(float(logsumexp.max()))}) and {positive} values are "
        f"positive: {seen}",
        fix,
        remedies=remedies,
        argument=name,
        frames_off=int(off.sum()),
        frames=int(rows.shape[0]),
        positive=positive,
        logsumexp_min=float(logsumexp.min()),
        logsumexp_max=float(logsumexp.max()),
    )


def _batch_normalised(log_probs: np.ndarray, tolerance: float) -> bool:
    """Rows over the batch dim (1) of a [time, batch, classes] array have logsumexp 0."""
    rows = np.moveaxis(log_probs, 1, -1).reshape(-1, log_probs.shape[1])
    rows = rows[np.isfinite(rows).all(axis=1)]
    if rows.shape[0] == 0:
        return False
    return bool(np.mean(np.abs(stable.logsumexp(rows, axis=1)) <= tolerance) >= 0.9)


@dataclass(frozen=True)

# ---------------------------------------------------------------- poisson-nll rates, gaussian-nll variances


class _RateFit:
    """poisson-nll inputs read both ways against the counts (means over the elements)."""

    mean_input: float
    mean_count: float
    mean_exp: float
    loss_as_rates: float
    loss_as_log_rates: float


# a reading has to beat the other by this many nats per element to count as clearly better
_BETTER_FIT_NATS = 2.0


# "the same scale": means within this factor of each other
_SCALE_FACTOR = 3.0


def _rates_fit_better(predictions: np.ndarray, counts: np.ndarray) -> _RateFit | None:
    """The fit when ``predictions`` read as rates match the counts far better than as log-rates.

    Rates (a softplus or exp head) given to log_input=True have the counts' scale, while
    exp() of them overshoots; log-rates have the log of the counts' scale. None when the
    inputs are not all >= 0, the shapes differ, or the rate reading is not clearly better.
    """
    if predictions.shape != counts.shape:
        return None
    both = np.isfinite(predictions) & np.isfinite(counts)
    rates, observed = predictions[both], counts[both]
    if rates.size == 0 or rates.min() < 0 or observed.min() < 0:
        return None
    mean_input, mean_count = float(rates.mean()), float(observed.mean())
    if mean_count <= 0 or not 1 / _SCALE_FACTOR <= mean_input / mean_count <= _SCALE_FACTOR:
        return None
    exp_rates = np.exp(np.minimum(rates, 700.0))
    mean_exp = float(exp_rates.mean())
    if mean_exp <= _SCALE_FACTOR * mean_count:
        return None
    as_log_rates = float(np.mean(exp_rates - observed * rates))
    as_rates = float(np.mean(rates - observed * np.log(rates + 1e-8)))
    if as_log_rates - as_rates <= _BETTER_FIT_NATS:
        return None
    return _RateFit(mean_input, mean_count, mean_exp, as_rates, as_log_rates)


def check_poisson_rates_as_log(context: CheckContext) -> Iterator[Finding]:
    """log_input=True wants log-rates: inputs that look like rates overflow exp()."""
    if not context.options.get("log_input"):
        return
    spec = context.spec
    count_target = next(a.name for a in spec.arguments if a.role is Role.COUNT_TARGET)
    name = spec.arguments[0].name
    predictions = as_float(context.arrays[name])
    finite = predictions[np.isfinite(predictions)]
    if finite.size == 0:
        return
    targets = as_float(context.arrays[count_target])
    targets = targets[np.isfinite(targets)]
    largest_count = float(targets.max()) if targets.size else 0.0
    source = context.source(name)
    median, high = float(np.median(finite)), float(finite.max())
    # rates look like the counts; exp() of them dwarfs every count
    rate_like = (
        float(finite.min()) >= 0
        and (median > _LOG_RATE_MEDIAN or high > _LOG_RATE_MAX)
        and median > np.log1p(max(largest_count, 0.0)) + np.log(_RATE_EXCESS)
    )
    fit = _rates_fit_better(predictions, as_float(context.arrays[count_target]))
    if not rate_like and fit is None:
        return
    seen = (
        f"; read as rates they fit the counts far better: mean {text.number(fit.mean_input)} "
        f"against a mean count of {text.number(fit.mean_count)}, while exp() of them predicts a "
        f"mean count of {text.number(fit.mean_exp)} (poisson-nll per element "
        f"{text.number(fit.loss_as_rates)} as rates, {text.number(fit.loss_as_log_rates)} as log-rates)"
        if fit is not None
        else ""
    )
    yield finding(
        "poisson-log-input-mismatch",
        Severity.WARNING,
        f"poisson-nll with log_input=True reads {name} as log(rate), but {name} ({source}) looks "
        f"like rates: all {finite.size} values are >= 0, median {text.number(median)}, max "
        f"{text.number(high)}; exp(median) = {text.number(float(np.exp(min(median, 700.0))))} against a "
        f"largest count of {text.number(largest_count)}{seen}",
        f"if {name} holds rates, pass --no-log-input (in PyTorch, "
        "nn.PoissonNLLLoss(log_input=False)); if it should be log-rates, the model's "
        "output layer is missing its log",
        remedies=(
            Remedy(
                options=(("log_input", False),),
                note=f"if {name} holds rates (a softplus or exp head)",
            ),
        ),
        argument=name,
        median=median,
        max=high,
        largest_count=largest_count,
    )


def check_poisson_negative_rates(context: CheckContext) -> Iterator[Finding]:
    """log_input=False wants rates (>= 0): the log of a negative rate is NaN."""
    if "log_input" not in context.options or context.options["log_input"]:
        return
    name = context.spec.arguments[0].name
    predictions = as_float(context.arrays[name])
    finite = predictions[np.isfinite(predictions)]
    if finite.size == 0:
        return
    negative = np.isfinite(predictions) & (predictions < 0)
    count = int(negative.sum())
    if count:
        first = text.first(context, name, negative)
        yield finding(
            "poisson-log-input-mismatch",
            Severity.ERROR,
            f"poisson-nll with log_input=False reads {name} as rates and takes log({name} + eps), but "
            f"{name} ({context.source(name)}) holds {count} negative values of {predictions.size} (min "
            f"{text.number(float(finite.min()))}; first at {text.position(first)}): the log of a negative rate is NaN; "
            "these look like log-rates",
            f"drop --no-log-input so {name} is read as log(rate) (in PyTorch, "
            "nn.PoissonNLLLoss(log_input=True), the default)",
            remedies=(
                Remedy(
                    options=(("log_input", None),),
                    note=f"if {name} holds log-rates (a Linear head)",
                ),
            ),
            argument=name,
            count=count,
            min=float(finite.min()),
            first_position=list(first),
        )


CHECKS: tuple[Check, ...] = (
    # rows summing to 1, the median row sum: the values as a whole
    Check(
        check_probabilities_as_logits,
        ("probabilities-as-logits",),
        Scope.SAMPLE,
        applies=_applies_an_activation,
    ),
    Check(
        check_nll_input,
        ("probabilities-to-nll", "logits-to-nll"),
        Scope.SAMPLE,
        applies=_takes_log_probability_scores,
    ),
    Check(
        check_input_unit_interval,
        ("input-outside-unit-interval",),
        Scope.CHUNK,
        applies=_takes_probabilities,
    ),
    # how many are saturated, and how many of those are wrong: one verdict on all the values
    Check(
        check_saturated_probabilities,
        ("saturated-probabilities",),
        Scope.TOTALS,
        applies=_takes_probabilities,
        collect=count_saturated,
    ),
    Check(check_kl_input, ("kl-input-not-log",), Scope.CHUNK, applies=_takes_log_distributions),
    Check(check_ctc_log_probs, ("ctc-input-not-log-probs",), Scope.CHUNK, applies=is_ctc),
    Check(
        check_poisson_negative_rates,
        ("poisson-log-input-mismatch",),
        Scope.CHUNK,
        applies=_takes_log_input,
    ),
    # medians and the fit of both readings against the counts: the values as a whole
    Check(
        check_poisson_rates_as_log,
        ("poisson-log-input-mismatch",),
        Scope.SAMPLE,
        applies=_takes_log_input,
    ),
)
