"""Domain checks: values outside what a loss accepts (unit interval, signs, counts, variances, distributions, CTC).

Each check reads the argument roles and the ``input_domain`` of the :class:`LossSpec`,
classifies the values with :mod:`losscli.kinds`, and reports what it sees with the numbers
(counts, first positions, min/max, fraction of rows) and the usual cause's fix. NaN and Inf
are left to ``non-finite-input``: every statistic here is over the finite values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from losscli.checks import CheckContext, InputCheck, ResultCheck
from losscli.findings import Finding, Severity, finding
from losscli.kinds import ROW_TOLERANCE, classify, rows_of
from losscli.losses import Domain, Role

# log-softmax output can round a hair above 0; anything above this is a positive entry
_POSITIVE_SLACK = 1e-5
# poisson-nll with log_input: inputs this large are rates, not log-rates, when exp() of
# them also dwarfs the largest count by this factor
_LOG_RATE_MEDIAN = 5.0
_LOG_RATE_MAX = 20.0
_RATE_EXCESS = 10.0
# probabilities this far outside [0, 1] are rounding of a computed probability, not logits
_ROUNDING_EXCESS = 1e-5
# binary targets this far outside [0, 1] are rounding, not a mistake (when torch allows them)
_UNIT_SLACK = 1e-6
# the rows a message lists
_LISTED = 3


def _number(value: float) -> str:
    """A number as messages print it: up to 4 significant digits."""
    return f"{value:.4g}"


def _position(index: Sequence[int]) -> str:
    return f"index {index[0]}" if len(index) == 1 else f"position {list(index)}"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _as_float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _span(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    return f"{_number(float(finite.min()))} to {_number(float(finite.max()))}"


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0%"


# rounding units of dtypes NumPy cannot hold (loaded widened to float32)
_WIDENED_EPS = {"bfloat16": 2.0**-7, "float8_e4m3fn": 2.0**-3, "float8_e5m2": 2.0**-2}


def _stored_eps(context: CheckContext, argument: str) -> float:
    """The rounding unit of the dtype an argument was stored in (0 for integers)."""
    loaded = context.inputs[argument]
    if loaded.stored_dtype in _WIDENED_EPS:
        return _WIDENED_EPS[loaded.stored_dtype]
    stored = loaded.values.dtype
    return float(np.finfo(stored).eps) if stored.kind == "f" else 0.0


def _tolerance(length: int, eps: float) -> float:
    """Rows sum to 1 within 1e-3, or within the rounding of ``length`` stored terms if larger."""
    return max(ROW_TOLERANCE, 4.0 * max(length, 1) * eps)


def _class_axes(values: np.ndarray) -> tuple[int, ...]:
    """The axes a distribution may run along: the class dim (1) and the last one."""
    if values.ndim == 0:
        return ()
    if values.ndim == 1:
        return (0,)
    return tuple(dict.fromkeys((1, values.ndim - 1)))


def _command(context: CheckContext, loss: str, *extra: str) -> str:
    """The losscli command for ``loss`` on the same files (placeholders for inline data)."""
    names = [
        source
        if (source := context.source(a.name)) not in ("inline", "<stdin>")
        else a.name.upper()
        for a in context.spec.arguments
    ]
    return " ".join(["losscli compute", loss, *names, *extra])


# --- the unit interval: bce, bce-logits, focal, dice, multilabel-soft-margin ---------------


def check_target_unit_interval(context: CheckContext) -> Iterator[Finding]:
    """Binary targets are the probability of the positive class: they must lie in [0, 1]."""
    spec = context.spec
    for argument in spec.arguments:
        if argument.role is not Role.BINARY_TARGET:
            continue
        targets = _as_float(context.arrays[argument.name])
        # torch's bce rejects anything outside [0, 1]; elsewhere a rounding hair above 1
        # (soft labels averaged in float32) changes nothing
        blocking = spec.input_domain is Domain.PROBABILITIES
        # soft labels averaged in float16 round up to 1 + 2^-10: a rounding unit of slack
        slack = 0.0 if blocking else max(_UNIT_SLACK, _stored_eps(context, argument.name))
        outside = np.isfinite(targets) & ((targets < -slack) | (targets > 1 + slack))
        count = int(outside.sum())
        if not count:
            continue
        kind = classify(context.inputs[argument.name].values)
        first = _first(outside)
        source = context.source(argument.name)
        message = (
            f"{spec.name} wants {argument.name} in [0, 1] (the probability of the positive class), "
            f"but {argument.name} ({source}) holds {count} of {targets.size} values outside it "
            f"({_percent(count, targets.size)}; min {_number(kind.min)}, max {_number(kind.max)}; "
            f"first at {_position(first)}: {_number(targets[first])})"
        )
        yield finding(
            "target-outside-unit-interval",
            Severity.ERROR,
            message,
            _unit_interval_fix(
                context, argument.name, kind.distinct, kind.integral, kind.min, kind.max
            ),
            blocking=blocking,
            argument=argument.name,
            count=count,
            min=kind.min,
            max=kind.max,
            first_position=list(first),
        )


def _unit_interval_fix(
    context: CheckContext,
    name: str,
    distinct: tuple[float, ...],
    integral: bool,
    low: float,
    high: float,
) -> str:
    values = set(distinct)
    stored = context.inputs[name].values.dtype
    if values and values <= {0.0, 255.0}:
        return (
            f"the target is a 0/255 mask (stored as {stored}): divide by 255, "
            f"`{name} = {name}.float() / 255`"
        )
    if values and values <= {0.0, 1.0, 255.0}:
        return (
            "255 marks void/ignored pixels in a 0/1 mask: leave them out of the loss, "
            f"`valid = {name} != 255; loss_fn(input[valid], {name}[valid].float())`"
        )
    if values and values <= {-1.0, 1.0}:
        return f"the target holds {{-1, 1}} labels: map them to {{0, 1}} with `{name} = ({name} + 1) / 2`"
    if values and values <= {-1.0, 0.0, 1.0}:
        return (
            f"-1 looks like padding or an ignore label: drop those entries, "
            f"`valid = {name} >= 0; loss_fn(input[valid], {name}[valid])`"
        )
    if integral and low >= 0 and high <= 255 and high > 1:
        if high >= 128:
            return f"whole numbers up to {_number(high)} look like 0-255 pixel values: `{name} = {name} / 255`"
        return (
            f"whole numbers from {_number(low)} to {_number(high)} look like class indices: for one class "
            f"per sample run `{_command(context, 'cross-entropy')}`; for several labels per sample pass "
            f"one 0/1 column per class, `F.one_hot({name}, num_classes).float()`"
        )
    return (
        f"scale {name} into [0, 1] (the probability of the positive class); if these are regression "
        f"targets, use a regression loss: `{_command(context, 'mse')}`"
    )


def check_input_unit_interval(context: CheckContext) -> Iterator[Finding]:
    """bce takes probabilities; logits outside [0, 1] mean the sigmoid was never applied."""
    spec = context.spec
    if spec.input_domain is not Domain.PROBABILITIES:
        return
    name = spec.arguments[0].name
    predictions = _as_float(context.arrays[name])
    outside = np.isfinite(predictions) & ((predictions < 0) | (predictions > 1))
    count = int(outside.sum())
    if not count:
        return
    kind = classify(predictions)
    first = _first(outside)
    negative = int((np.isfinite(predictions) & (predictions < 0)).sum())
    excess = float(max(-kind.min, kind.max - 1.0))
    if excess <= max(_ROUNDING_EXCESS, 8 * _stored_eps(context, name)):
        # a computed probability (a product or sum of probabilities) a rounding unit outside
        yield finding(
            "input-outside-unit-interval",
            Severity.ERROR,
            f"{spec.name} wants {name} as probabilities in [0, 1], but {name} ({context.source(name)}) "
            f"holds {count} of {predictions.size} values a rounding error outside it ({negative} "
            f"below 0, {count - negative} above 1; by at most {excess:.3g}; first at "
            f"{_position(first)}: {float(predictions[first]):.9g}): torch rejects even these",
            f"these are probabilities computed with rounding error: clamp them before the loss, "
            f"`{name} = {name}.clamp(0, 1)` (or compute them from logits and use bce-logits: "
            f"`{_command(context, 'bce-logits')}`)",
            blocking=True,  # torch's binary_cross_entropy rejects it
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
        f"min {_number(kind.min)}, max {_number(kind.max)}; first at {_position(first)}: "
        f"{_number(predictions[first])}): these are logits, the sigmoid was never applied",
        f"pass the logits to bce-logits, which applies the sigmoid stably: "
        f"`{_command(context, 'bce-logits')}` (in PyTorch, nn.BCEWithLogitsLoss; or `torch.sigmoid({name})` "
        "before nn.BCELoss)",
        blocking=True,  # torch's binary_cross_entropy rejects it
        argument=name,
        count=count,
        min=kind.min,
        max=kind.max,
        first_position=list(first),
    )


def check_saturated_probabilities(context: CheckContext) -> Iterator[Finding]:
    """Probabilities of exactly 0 or 1: bce clamps log at -100 and the gradient vanishes."""
    spec = context.spec
    if spec.input_domain is not Domain.PROBABILITIES:
        return
    name = spec.arguments[0].name
    predictions = _as_float(context.arrays[name])
    finite = np.isfinite(predictions)
    if not finite.any() or ((predictions < 0) | (predictions > 1))[finite].any():
        return  # outside [0, 1]: input-outside-unit-interval says it
    zeros = int((predictions == 0).sum())
    ones = int((predictions == 1).sum())
    if not zeros and not ones:
        return
    first = _first((predictions == 0) | (predictions == 1))
    stored = context.arrays[name].dtype
    loaded = np.asarray(context.inputs[name].values, dtype=np.float64)
    if loaded.shape == predictions.shape and not ((loaded == 0) | (loaded == 1)).any():
        # the file holds values a hair inside (0, 1) that only the cast to float32 rounded
        yield finding(
            "saturated-probabilities",
            Severity.INFO,
            f"{name} ({context.source(name)}) holds {zeros + ones} values within "
            f"{_number(float(np.finfo(stored).eps))} of 0 or 1 (of {predictions.size}; first at "
            f"{_position(first)}: {float(loaded[first]):.17g}) that round to exactly 0 or 1 as "
            f"{stored}, where bce clamps log(0) at -100",
            f"compute in the stored precision with --dtype float64; in a float32 model, keep the "
            f"logits and use bce-logits: `{_command(context, 'bce-logits')}`",
            argument=name,
            zeros=zeros,
            ones=ones,
            first_position=list(first),
        )
        return
    saturated = (predictions == 0) | (predictions == 1)
    target_argument = spec.argument(Role.BINARY_TARGET)
    targets = (
        _as_float(context.arrays[target_argument.name]) if target_argument is not None else None
    )
    if targets is not None and targets.shape == predictions.shape:
        wrong = int((saturated & (targets != predictions)).sum())
    else:
        wrong = zeros + ones  # cannot pair them with targets: assume the worst
    if not wrong:
        # a trained model's easy samples: each term is exactly 0, as it would be unclamped
        yield finding(
            "saturated-probabilities",
            Severity.INFO,
            f"{name} ({context.source(name)}) holds {zeros} values of exactly 0 and {ones} of "
            f"exactly 1 (of {predictions.size}) as {stored}, every one equal to its target: those "
            "terms are exactly 0 either way; a wrong one would cost exactly 100 (log clamped at -100)",
            f"nothing to do for these; bce-logits avoids the clamp altogether: "
            f"`{_command(context, 'bce-logits')}`",
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
        f"(of {predictions.size}, {_percent(zeros + ones, predictions.size)}; first at {_position(first)}) "
        f"as {stored}, {wrong} of them away from their target: bce clamps log(0) at -100, so each "
        "of those costs exactly 100 and the sigmoid before it passes no gradient back",
        f"keep the logits and use bce-logits: `{_command(context, 'bce-logits')}` "
        "(in PyTorch, drop the torch.sigmoid and use nn.BCEWithLogitsLoss)",
        argument=name,
        zeros=zeros,
        ones=ones,
        wrong=wrong,
        first_position=list(first),
    )


# --- sign targets: hinge-embedding, margin-ranking, cosine-embedding, soft-margin ---------


def check_sign_target(context: CheckContext) -> Iterator[Finding]:
    """Targets that must be -1 or 1."""
    spec = context.spec
    for argument in spec.arguments:
        if argument.role is not Role.SIGN_TARGET:
            continue
        targets = _as_float(context.arrays[argument.name])
        wrong = np.isfinite(targets) & (targets != 1) & (targets != -1)
        count = int(wrong.sum())
        if not count:
            continue
        kind = classify(context.inputs[argument.name].values)
        first = _first(wrong)
        source = context.source(argument.name)
        name = argument.name
        if kind.integral and kind.distinct:
            values, counts = np.unique(targets[wrong], return_counts=True)
            seen = ", ".join(
                f"{_number(v)} ×{int(c)}" for v, c in list(zip(values, counts, strict=True))[:6]
            )
            seen_text = f"values {seen}"
        else:
            fractional = int((np.isfinite(targets) & (np.floor(targets) != targets)).sum())
            seen_text = (
                f"continuous values from {_number(kind.min)} to {_number(kind.max)}, "
                f"{fractional} not whole numbers"
            )
        message = (
            f"{spec.name} wants {name} in {{-1, 1}}, but {name} ({source}) holds {count} of "
            f"{targets.size} values that are neither ({_percent(count, targets.size)}: {seen_text}; "
            f"first at {_position(first)}: {_number(targets[first])})"
        )
        if kind.zero_one:
            message += f"; {spec.name} has no class 0, so every 0 label adds a meaningless term"
            fix = f"map {{0, 1}} labels to {{-1, 1}}: `{name} = {name} * 2 - 1`"
        elif kind.integral:
            fix = f"build {{-1, 1}} labels: `{name} = torch.where({name} == positive_label, 1.0, -1.0)`"
        else:
            fix = (
                f"{name} looks like random or continuous numbers (torch.randn?), not labels: pass the "
                f"real labels as -1/1, e.g. `{name} = torch.sign({name})` if the sign is what you meant"
            )
        yield finding(
            "sign-target-expected",
            Severity.ERROR,
            message,
            fix,
            argument=name,
            count=count,
            min=kind.min,
            max=kind.max,
            first_position=list(first),
        )


# --- poisson-nll -----------------------------------------------------------------------------


def check_negative_poisson_target(context: CheckContext) -> Iterator[Finding]:
    """Poisson targets are counts, never negative."""
    for argument in context.spec.arguments:
        if argument.role is not Role.COUNT_TARGET:
            continue
        targets = _as_float(context.arrays[argument.name])
        negative = np.isfinite(targets) & (targets < 0)
        count = int(negative.sum())
        if not count:
            continue
        first = _first(negative)
        name = argument.name
        yield finding(
            "negative-poisson-target",
            Severity.ERROR,
            f"poisson-nll wants {name} as counts (>= 0), but {name} ({context.source(name)}) holds {count} "
            f"negative values of {targets.size} ({_percent(count, targets.size)}; min "
            f"{_number(float(targets[negative].min()))}; first at {_position(first)}: "
            f"{_number(targets[first])})",
            f"pass the raw counts: if {name} was standardised or log-transformed for a regression loss, "
            "undo that (poisson-nll models the counts themselves)",
            argument=name,
            count=count,
            min=float(targets[negative].min()),
            first_position=list(first),
        )


@dataclass(frozen=True)
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


def check_poisson_log_input(context: CheckContext) -> Iterator[Finding]:
    """log_input=True wants log-rates; log_input=False wants rates (>= 0)."""
    spec = context.spec
    count_target = spec.argument(Role.COUNT_TARGET)
    if count_target is None or "log_input" not in context.options:
        return
    name = spec.arguments[0].name
    predictions = _as_float(context.arrays[name])
    finite = predictions[np.isfinite(predictions)]
    if finite.size == 0:
        return
    targets = _as_float(context.arrays[count_target.name])
    targets = targets[np.isfinite(targets)]
    largest_count = float(targets.max()) if targets.size else 0.0
    source = context.source(name)
    if context.options["log_input"]:
        median, high = float(np.median(finite)), float(finite.max())
        # rates look like the counts; exp() of them dwarfs every count
        rate_like = (
            float(finite.min()) >= 0
            and (median > _LOG_RATE_MEDIAN or high > _LOG_RATE_MAX)
            and median > np.log1p(max(largest_count, 0.0)) + np.log(_RATE_EXCESS)
        )
        fit = _rates_fit_better(predictions, _as_float(context.arrays[count_target.name]))
        if rate_like or fit is not None:
            seen = (
                f"; read as rates they fit the counts far better: mean {_number(fit.mean_input)} "
                f"against a mean count of {_number(fit.mean_count)}, while exp() of them predicts a "
                f"mean count of {_number(fit.mean_exp)} (poisson-nll per element "
                f"{_number(fit.loss_as_rates)} as rates, {_number(fit.loss_as_log_rates)} as log-rates)"
                if fit is not None
                else ""
            )
            yield finding(
                "poisson-log-input-mismatch",
                Severity.WARNING,
                f"poisson-nll with log_input=True reads {name} as log(rate), but {name} ({source}) looks "
                f"like rates: all {finite.size} values are >= 0, median {_number(median)}, max "
                f"{_number(high)}; exp(median) = {_number(float(np.exp(min(median, 700.0))))} against a "
                f"largest count of {_number(largest_count)}{seen}",
                f"if {name} holds rates, pass --no-log-input: `{_command(context, 'poisson-nll', '--no-log-input')}` "
                "(in PyTorch, nn.PoissonNLLLoss(log_input=False)); if it should be log-rates, the model's "
                "output layer is missing its log",
                argument=name,
                median=median,
                max=high,
                largest_count=largest_count,
            )
        return
    negative = np.isfinite(predictions) & (predictions < 0)
    count = int(negative.sum())
    if count:
        first = _first(negative)
        yield finding(
            "poisson-log-input-mismatch",
            Severity.ERROR,
            f"poisson-nll with log_input=False reads {name} as rates and takes log({name} + eps), but "
            f"{name} ({source}) holds {count} negative values of {predictions.size} (min "
            f"{_number(float(finite.min()))}; first at {_position(first)}): the log of a negative rate is NaN; "
            "these look like log-rates",
            f"drop --no-log-input so {name} is read as log(rate): `{_command(context, 'poisson-nll')}` "
            "(in PyTorch, nn.PoissonNLLLoss(log_input=True), the default)",
            argument=name,
            count=count,
            min=float(finite.min()),
            first_position=list(first),
        )


# --- gaussian-nll ------------------------------------------------------------------------------


def check_nonpositive_variance(context: CheckContext) -> Iterator[Finding]:
    """gaussian-nll variances must be > 0: torch rejects negatives and clamps zeros to eps."""
    for argument in context.spec.arguments:
        if argument.role is not Role.VARIANCE:
            continue
        variance = _as_float(context.arrays[argument.name])
        finite = np.isfinite(variance)
        negative = int((finite & (variance < 0)).sum())
        zero = int((variance == 0).sum())
        if not negative and not zero:
            continue
        bad = finite & (variance <= 0)
        first = _first(bad)
        name = argument.name
        eps = context.options.get("eps", 1e-6)
        consequence = (
            "torch rejects negative variances ('var has negative entry/entries')"
            if negative
            else f"torch clamps them to eps={eps}, so those terms become (input - target)^2 / {eps}"
        )
        yield finding(
            "nonpositive-variance",
            Severity.ERROR,
            f"gaussian-nll wants {name} > 0, but {name} ({context.source(name)}) holds {negative} negative "
            f"and {zero} zero values of {variance.size} ({_percent(negative + zero, variance.size)}; min "
            f"{_number(float(variance[finite].min()))}; first at {_position(first)}): {consequence}",
            f"make the variance head positive: `{name} = F.softplus(raw_{name}) + 1e-6` "
            f"(or predict log-variance and pass `{name} = log_{name}.exp()`)",
            blocking=negative > 0,  # torch raises for a negative variance
            argument=name,
            negative=negative,
            zero=zero,
            first_position=list(first),
        )


# --- kl-div --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowSums:
    """Row sums of a (would-be) distribution along one axis, all-zero rows left out."""

    axis: int
    sums: np.ndarray
    off: np.ndarray  # bool, per row: farther than the tolerance from 1
    first_row: int


def _row_sums(probabilities: np.ndarray, axes: tuple[int, ...], eps: float) -> _RowSums | None:
    """The axis along which rows best sum to 1 (None: no finite, non-zero row)."""
    best: _RowSums | None = None
    for axis in axes:
        rows = rows_of(probabilities, axis)
        # an all-zero row is masked out (padding): it adds nothing to the KL
        keep = np.isfinite(rows).all(axis=1) & (rows != 0).any(axis=1)
        if not keep.any():
            continue
        sums = rows[keep].sum(axis=1)
        off = np.abs(sums - 1) > _tolerance(probabilities.shape[axis], eps)
        first = int(np.flatnonzero(keep)[np.argmax(off)]) if off.any() else -1
        found = _RowSums(axis=axis, sums=sums, off=off, first_row=first)
        if best is None or off.sum() < best.off.sum():
            best = found
    return best


def _looks_like_log_probabilities(values: np.ndarray, eps: float) -> bool:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.max() > _POSITIVE_SLACK:
        return False
    found = _row_sums(np.exp(values), _class_axes(values), eps)
    return found is not None and not found.off.any()


def _looks_like_probabilities(values: np.ndarray, eps: float) -> bool:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() < 0 or finite.max() > 1:
        return False
    found = _row_sums(values, _class_axes(values), eps)
    return found is not None and not found.off.any()


def check_kl_target(context: CheckContext) -> Iterator[Finding]:
    """kl-div's target is a distribution per row (log-probabilities with log_target)."""
    spec = context.spec
    target_argument = spec.argument(Role.DISTRIBUTION_TARGET)
    if target_argument is None:
        return
    name = target_argument.name
    input_name = spec.arguments[0].name
    targets = _as_float(context.arrays[name])
    predictions = _as_float(context.arrays[input_name])
    log_target = bool(context.options.get("log_target", False))
    source = context.source(name)
    finite = np.isfinite(targets)
    if not finite.any():
        return
    axes = _class_axes(targets)
    eps = _stored_eps(context, name)
    if not log_target:
        negative = finite & (targets < 0)
        count = int(negative.sum())
        if count:
            if _looks_like_log_probabilities(targets, eps):
                if _looks_like_probabilities(predictions, _stored_eps(context, input_name)):
                    return  # the arguments are swapped: kl-input-not-log says so
                fix = (
                    f"{name} holds log-probabilities (rows of exp({name}) sum to 1): pass --log-target, "
                    f"`{_command(context, 'kl-div', '--log-target')}` (in PyTorch, "
                    "nn.KLDivLoss(log_target=True))"
                )
            else:
                fix = (
                    f"{name} must be probabilities: `{name} = F.softmax(teacher_logits, dim=1)` "
                    "(or pass log-probabilities with --log-target)"
                )
            first = _first(negative)
            yield finding(
                "kl-target-not-distribution",
                Severity.ERROR,
                f"kl-div wants {name} as probabilities, but {name} ({source}) holds {count} negative "
                f"values of {targets.size} ({_percent(count, targets.size)}; min "
                f"{_number(float(targets[negative].min()))}; first at {_position(first)})",
                fix,
                argument=name,
                negative=count,
                first_position=list(first),
            )
            return
        probabilities = targets
    else:
        positive = finite & (targets > _POSITIVE_SLACK)
        if positive.any():
            count = int(positive.sum())
            first = _first(positive)
            probabilities_given = _looks_like_probabilities(targets, eps)
            yield finding(
                "kl-target-not-distribution",
                Severity.ERROR,
                f"kl-div with --log-target wants {name} as log-probabilities (<= 0), but {name} ({source}) "
                f"holds {count} positive values of {targets.size} (max {_number(float(targets[finite].max()))}; "
                f"first at {_position(first)})"
                + ("; its rows are probabilities summing to 1" if probabilities_given else ""),
                (
                    f"drop --log-target: `{_command(context, 'kl-div')}`"
                    if probabilities_given
                    else f"pass `{name} = F.log_softmax(teacher_logits, dim=1)` with --log-target"
                ),
                argument=name,
                positive=count,
                first_position=list(first),
            )
            return
        probabilities = np.exp(targets)
    rows = _row_sums(probabilities, axes, eps)
    if rows is None or not rows.off.any():
        return
    off = int(rows.off.sum())
    space = f"exp({name})" if log_target else name
    dim = "the only dim" if targets.ndim <= 1 else f"dim {rows.axis}"
    yield finding(
        "kl-target-not-distribution",
        Severity.ERROR,
        f"kl-div wants each row of {space} to sum to 1 (over {dim}), but {off} of {rows.sums.size} rows of "
        f"{name} ({source}) do not ({_percent(off, rows.sums.size)}; sums from {_number(float(rows.sums.min()))} "
        f"to {_number(float(rows.sums.max()))}, median {_number(float(np.median(rows.sums)))}; first: row "
        f"{rows.first_row})",
        (
            f"pass `{name} = F.log_softmax(teacher_logits, dim={rows.axis})` with --log-target"
            if log_target
            else f"normalise the target: `{name} = F.softmax(teacher_logits, dim={rows.axis})` "
            f"(or `{name} / {name}.sum(dim={rows.axis}, keepdim=True)`)"
        ),
        argument=name,
        rows_off=off,
        rows=int(rows.sums.size),
        dim=rows.axis,
        sum_min=float(rows.sums.min()),
        sum_max=float(rows.sums.max()),
    )


def check_kl_input(context: CheckContext) -> Iterator[Finding]:
    """kl-div's input is log-probabilities: positive entries mean probabilities or logits."""
    spec = context.spec
    target_argument = spec.argument(Role.DISTRIBUTION_TARGET)
    if target_argument is None or spec.input_domain is not Domain.LOG_PROBABILITIES:
        return
    name = spec.arguments[0].name
    predictions = _as_float(context.arrays[name])
    positive = np.isfinite(predictions) & (predictions > _POSITIVE_SLACK)
    count = int(positive.sum())
    if not count:
        return
    axes = _class_axes(predictions)
    eps = _stored_eps(context, name)
    target_name = target_argument.name
    targets = _as_float(context.arrays[target_name])
    log_target = bool(context.options.get("log_target", False))
    first = _first(positive)
    rows = _row_sums(predictions, axes, eps)
    finite = predictions[np.isfinite(predictions)]
    is_probabilities = (
        rows is not None and not rows.off.any() and finite.min() >= 0 and finite.max() <= 1
    )
    # the dim the user's softmax ran over, else the class dim as torch code usually writes it
    dim = (
        rows.axis if is_probabilities and rows is not None else (1 if predictions.ndim == 2 else -1)
    )
    swapped = _looks_like_log_probabilities(targets, _stored_eps(context, target_name))
    if is_probabilities and not log_target and swapped:
        seen = (
            f"{name} holds probabilities (rows sum to 1) and {target_name} holds log-probabilities"
        )
        fix = (
            f"the arguments are swapped: F.kl_div takes the model's log-probabilities first, "
            f"`F.kl_div({target_name}, {name}, reduction='batchmean')`; with losscli, give them in that "
            "order"
        )
    elif is_probabilities:
        seen = f"its rows are probabilities summing to 1 (values {_span(predictions)})"
        fix = f"take the log: `{name} = F.log_softmax(logits, dim={dim})` instead of F.softmax"
    else:
        seen = f"these look like raw scores (logits) from {_span(predictions)}"
        fix = f"`{name} = F.log_softmax(logits, dim={dim})`"
    yield finding(
        "kl-input-not-log",
        Severity.ERROR,
        f"kl-div wants {name} as log-probabilities (<= 0), but {name} ({context.source(name)}) holds "
        f"{count} positive values of {predictions.size} ({_percent(count, predictions.size)}; first at "
        f"{_position(first)}: {_number(predictions[first])}): {seen}",
        fix,
        argument=name,
        positive=count,
        first_position=list(first),
    )


def check_kl_mean_reduction(context: CheckContext) -> Iterator[Finding]:
    """reduction='mean' divides kl-div by every element; 'batchmean' is the KL divergence."""
    reduction = context.spec.option("reduction")
    if reduction is None or "batchmean" not in reduction.choices:
        return
    if context.options.get("reduction") != "mean":
        return
    name = context.spec.arguments[0].name
    predictions = context.arrays[name]
    if predictions.ndim == 0 or predictions.size == 0 or predictions.size == predictions.shape[0]:
        return  # one element per sample: mean and batchmean agree
    batch = predictions.shape[0]
    factor = predictions.size // batch
    yield finding(
        "kl-mean-reduction",
        Severity.WARNING,
        f"reduction 'mean' divides the summed KL by all {predictions.size} elements of {name} "
        f"{list(predictions.shape)}; 'batchmean' divides by the batch size N={batch}: the value is "
        f"{factor}x smaller than the KL divergence per sample",
        "use --reduction batchmean (in PyTorch, nn.KLDivLoss(reduction='batchmean'))",
        elements=int(predictions.size),
        batch=int(batch),
        factor=int(factor),
    )


# --- ctc ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CtcBatch:
    """CTC inputs read per sample.

    Attributes:
        log_probs: float64 ``[time, batch, classes]``.
        labels: each sample's labels within its target length.
        input_lengths: int64 ``[batch]``.
        target_lengths: int64 ``[batch]``.
    """

    log_probs: np.ndarray
    labels: list[np.ndarray]
    input_lengths: np.ndarray
    target_lengths: np.ndarray


def _ctc_batch(context: CheckContext) -> _CtcBatch | None:
    """The CTC inputs per sample, or None when their shapes do not fit together (torch says so)."""
    spec = context.spec
    log_probs_argument = spec.argument(Role.LOG_PROBS)
    targets_argument = spec.argument(Role.CTC_TARGETS)
    lengths = [a for a in spec.arguments if a.role is Role.LENGTHS]
    if log_probs_argument is None or targets_argument is None or len(lengths) != 2:
        return None
    log_probs = _as_float(context.arrays[log_probs_argument.name])
    targets = np.asarray(context.arrays[targets_argument.name])
    input_lengths = np.asarray(context.arrays[lengths[0].name]).reshape(-1)
    target_lengths = np.asarray(context.arrays[lengths[1].name]).reshape(-1)
    if log_probs.ndim == 2:  # unbatched [time, classes]
        log_probs = log_probs[:, None, :]
        targets = targets.reshape(1, -1)
    if log_probs.ndim != 3 or log_probs.size == 0 or targets.dtype.kind not in "iu":
        return None
    batch = log_probs.shape[1]
    if input_lengths.size != batch or target_lengths.size != batch:
        return None
    if input_lengths.dtype.kind not in "iu" or target_lengths.dtype.kind not in "iu":
        return None
    if (target_lengths < 0).any():
        return None
    labels: list[np.ndarray] = []
    if targets.ndim == 2 and targets.shape[0] == batch:
        if (target_lengths > targets.shape[1]).any():
            return None
        labels = [targets[n, : int(target_lengths[n])] for n in range(batch)]
    elif targets.ndim == 1 and targets.size == int(target_lengths.sum()):
        ends = np.cumsum(target_lengths)
        labels = list(np.split(targets, ends[:-1]))
    else:
        return None
    return _CtcBatch(
        log_probs, labels, input_lengths.astype(np.int64), target_lengths.astype(np.int64)
    )


def check_ctc_log_probs(context: CheckContext) -> Iterator[Finding]:
    """CTC wants log-softmax over the class dim (last) in every frame within the input length."""
    ctc = _ctc_batch(context)
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
    peak = rows.max(axis=1, keepdims=True)
    logsumexp = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
    tolerance = _tolerance(classes, _stored_eps(context, name))
    off = np.abs(logsumexp) > tolerance
    positive = int((rows > _POSITIVE_SLACK).sum())
    if not off.any() and not positive:
        return
    sums = rows.sum(axis=1)
    if rows.min() >= 0 and rows.max() <= 1 and np.mean(np.abs(sums - 1) <= tolerance) >= 0.9:
        median = _number(float(np.median(sums)))
        seen = f"every value is in [0, 1] and frames sum to 1 (median {median}): softmax output"
        fix = f"use log_softmax, not softmax: `{name} = logits.log_softmax(2)`"
    elif (
        rows.max() <= _POSITIVE_SLACK and batch > 1 and _batch_normalised(ctc.log_probs, tolerance)
    ):
        seen = "the values are <= 0 but normalised over the batch dim (1), not the classes"
        fix = f"normalise over the class dim: `{name} = logits.log_softmax(2)` (not dim=1)"
    else:
        seen = "these look like raw scores (logits)"
        fix = f"`{name} = logits.log_softmax(2)` ([time, batch, classes]; CTC needs log-probabilities)"
    yield finding(
        "ctc-input-not-log-probs",
        Severity.ERROR,
        f"ctc wants {name} as log-probabilities over the class dim (last): each frame's logsumexp "
        f"should be 0, but in {name} ({context.source(name)}) {int(off.sum())} of {rows.shape[0]} frames "
        f"within the input lengths are off ({_percent(int(off.sum()), rows.shape[0])}; logsumexp from "
        f"{_number(float(logsumexp.min()))} to {_number(float(logsumexp.max()))}) and {positive} values are "
        f"positive: {seen}",
        fix,
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
    peak = rows.max(axis=1, keepdims=True)
    logsumexp = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
    return bool(np.mean(np.abs(logsumexp) <= tolerance) >= 0.9)


def check_ctc_label_range(context: CheckContext) -> Iterator[Finding]:
    """CTC labels within the target lengths must be class indices 0..C-1 of the log_probs."""
    ctc = _ctc_batch(context)
    if ctc is None:
        return
    classes = ctc.log_probs.shape[2]
    name = next(a.name for a in context.spec.arguments if a.role is Role.CTC_TARGETS)
    lengths_name = [a.name for a in context.spec.arguments if a.role is Role.LENGTHS][1]
    hits = [
        (n, np.flatnonzero((labels < 0) | (labels >= classes)))
        for n, labels in enumerate(ctc.labels)
    ]
    hits = [(n, where) for n, where in hits if where.size]
    if not hits:
        return
    wrong = np.concatenate([ctc.labels[n][where] for n, where in hits])
    first_sample, first_where = hits[0]
    low, high = int(wrong.min()), int(wrong.max())
    if low < 0:
        fix = (
            f"{low} inside the target lengths is padding counted as labels: pass {lengths_name} "
            f"that count only the real labels (e.g. `{lengths_name} = ({name} >= 0).sum(1)`)"
        )
    else:
        fix = (
            f"the log_probs have {classes} classes (the blank included) but labels reach {high}: "
            f"give the output layer {high + 1} classes, or check the label encoding"
        )
    yield finding(
        "class-index-out-of-range",
        Severity.ERROR,
        f"ctc {name} ({context.source(name)}) hold {wrong.size} labels outside 0..{classes - 1} "
        f"inside their target lengths in {len(hits)} of {len(ctc.labels)} samples (values "
        f"{_number(low)} to {_number(high)}; first: sample {first_sample}, position "
        f"{int(first_where[0])}): torch reads a log-probability that does not exist",
        fix,
        blocking=True,  # out of range: torch reads outside the class dim
        argument=name,
        count=int(wrong.size),
        min=low,
        max=high,
        samples=[n for n, _ in hits[:10]],
    )


def check_ctc_blank_in_targets(context: CheckContext) -> Iterator[Finding]:
    """The blank index is reserved: a label equal to it cannot be emitted as a label."""
    ctc = _ctc_batch(context)
    if ctc is None:
        return
    blank = int(context.options.get("blank", 0))
    name = next(a.name for a in context.spec.arguments if a.role is Role.CTC_TARGETS)
    hits = [(n, np.flatnonzero(labels == blank)) for n, labels in enumerate(ctc.labels)]
    hits = [(n, where) for n, where in hits if where.size]
    if not hits:
        return
    total = sum(int(where.size) for _, where in hits)
    first_sample, first_where = hits[0]
    classes = ctc.log_probs.shape[2]
    used = (
        np.concatenate([labels for labels in ctc.labels if labels.size])
        if ctc.labels
        else np.empty(0)
    )
    highest = int(used.max()) if used.size else 0
    if blank == 0 and highest + 1 <= classes - 1:
        fix = (
            f"the labels start at 0, which CTC reserves for the blank: shift them, `{name} = {name} + 1` "
            f"(labels 1..{highest + 1} still fit the {classes} classes)"
        )
    elif blank == 0:
        fix = (
            f"the labels start at 0, which CTC reserves for the blank: give the model one more output "
            f"class and shift the labels, `{name} = {name} + 1`"
        )
    else:
        unused = sorted(set(range(classes)) - {int(label) for label in used})
        fix = (
            f"choose a blank no label uses: --blank {unused[-1]}"
            if unused
            else "every class index is used as a label: give the model one more output class for the blank"
        )
    yield finding(
        "ctc-blank-in-targets",
        Severity.ERROR,
        f"ctc {name} ({context.source(name)}) hold the blank index {blank} inside their target lengths "
        f"{'once' if total == 1 else f'{total} times'} in {len(hits)} of {len(ctc.labels)} samples "
        f"(first: sample {first_sample}, position {int(first_where[0])}): the blank means 'no label', "
        "so those labels can never be matched",
        fix,
        argument=name,
        blank=blank,
        count=total,
        samples=[n for n, _ in hits[:10]],
    )


def check_ctc_target_too_long(context: CheckContext) -> Iterator[Finding]:
    """A target needs one frame per label plus one per repeated adjacent pair."""
    ctc = _ctc_batch(context)
    if ctc is None:
        return
    spec = context.spec
    lengths = [a.name for a in spec.arguments if a.role is Role.LENGTHS]
    time = ctc.log_probs.shape[0]
    beyond = np.flatnonzero(ctc.input_lengths > time)
    if beyond.size:
        n = int(beyond[0])
        yield finding(
            "ctc-target-too-long",
            Severity.ERROR,
            f"{lengths[0]} ({context.source(lengths[0])}) exceed the {time} frames of the log_probs in "
            f"{beyond.size} of {ctc.input_lengths.size} samples (first: sample {n}, length "
            f"{int(ctc.input_lengths[n])}): torch rejects it",
            f"pass the lengths after the model's downsampling, at most T={time} "
            f"(e.g. `{lengths[0]} = (raw_lengths + stride - 1) // stride`)",
            blocking=True,
            samples=[int(i) for i in beyond[:10]],
        )
        return
    needed = np.array(
        [labels.size + int((labels[1:] == labels[:-1]).sum()) for labels in ctc.labels],
        dtype=np.int64,
    )
    short = np.flatnonzero(needed > ctc.input_lengths)
    if not short.size:
        return
    listed = "; ".join(
        f"sample {int(n)} needs {int(needed[n])} frames ({int(ctc.target_lengths[n])} labels + "
        f"{int(needed[n] - ctc.target_lengths[n])} repeated pairs) but has {int(ctc.input_lengths[n])}"
        for n in short[:_LISTED]
    )
    zero_infinity = bool(context.options.get("zero_infinity", False))
    outcome = (
        "--zero-infinity sets their loss to 0, so they teach nothing"
        if zero_infinity
        else "their loss is inf, and so is the mean"
    )
    yield finding(
        "ctc-target-too-long",
        Severity.WARNING if zero_infinity else Severity.ERROR,
        f"{short.size} of {needed.size} ctc targets need more frames than their input length allows "
        f"({listed}): {outcome}",
        (
            "downsample the time axis less, or drop/split these samples"
            if zero_infinity
            else f"downsample the time axis less or shorten the targets; to skip impossible samples, "
            f"pass --zero-infinity (`{_command(context, 'ctc', '--zero-infinity')}`; in PyTorch, "
            "nn.CTCLoss(zero_infinity=True))"
        ),
        samples=[int(n) for n in short[:10]],
        needed=[int(needed[n]) for n in short[:10]],
        input_lengths=[int(ctc.input_lengths[n]) for n in short[:10]],
    )


CHECKS: tuple[InputCheck, ...] = (
    check_target_unit_interval,
    check_input_unit_interval,
    check_saturated_probabilities,
    check_sign_target,
    check_negative_poisson_target,
    check_poisson_log_input,
    check_nonpositive_variance,
    check_kl_input,
    check_kl_target,
    check_kl_mean_reduction,
    check_ctc_log_probs,
    check_ctc_label_range,
    check_ctc_blank_in_targets,
    check_ctc_target_too_long,
)
RESULT_CHECKS: tuple[ResultCheck, ...] = ()
