"""Class checks: class-index targets, soft targets, class weights, and logits versus probabilities.

Every check reads what the arrays look like from :mod:`losscli.kinds` and compares it with
what the ``LossSpec`` wants (its layout, its target role, the activation it applies, its
options). Thresholds follow SPEC.md: "rows sum to 1" means within 1e-3; cross-entropy's
``probabilities-as-logits`` accepts a median row sum within 0.25 of 1; bce-logits' needs at
least 8 values; ``class-imbalance`` compares the classes present (10x or more).

Against false alarms, a median row sum near 1 must also be more than chance: rows that sum
to 1 exactly (up to the rounding of values saved with a few decimals), a hand-typed table (at
most 2 decimal places), or at least 8 rows; a row or two of post-ReLU scores in [0, 1] is not
softmax output. Soft targets saved with few decimals (0.33, 0.33, 0.33) count as summing to 1.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterator

import numpy as np

from losscli.checks import CheckContext, InputCheck, ResultCheck
from losscli.checks.shapes import extra_target_dim, shape_text
from losscli.findings import Finding, Severity, finding
from losscli.kinds import ROW_FRACTION, ROW_TOLERANCE, Kind, classify, decimal_places, rows_of
from losscli.losses import Activation, Domain, Layout, Role

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
# soft-target rows rounded on export may be off by this much at most and still count as summing to 1
ROUNDING_SLACK_CAP = 0.1
# class-imbalance fires when the most frequent present class is this many times the rarest
IMBALANCE_RATIO = 10.0
# nll input rows whose logsumexp is further than this from 0 are not log-probabilities
LOGSUMEXP_SLACK = 0.1
# at most this many classes are listed by name in a message
_LISTED = 8
# a ready --weight / --pos-weight is printed for at most this many classes
_MAX_READY_WEIGHTS = 256

_CLASS_LAYOUTS = (Layout.CLASS_SCORES, Layout.CLASS_SCORES_FLAT)
_INDEX_ROLES = (Role.CLASS_TARGET, Role.CLASS_INDEX)


# ---------------------------------------------------------------- helpers


def _prediction(context: CheckContext) -> tuple[str, np.ndarray]:
    name = context.spec.arguments[0].name
    return name, np.asarray(context.arrays[name])


def _class_count(scores: np.ndarray) -> int:
    """C of a ``[batch, classes, ...]`` (or unbatched ``[classes]``) input."""
    return int(scores.shape[1] if scores.ndim >= 2 else scores.shape[0])


def _class_axis(scores: np.ndarray) -> int:
    return 1 if scores.ndim >= 2 else 0


def _ignore_index(context: CheckContext) -> int | None:
    if context.spec.option("ignore_index") is None:
        return None
    value = context.options.get("ignore_index")
    return None if value is None else int(value)


def _hard_target(context: CheckContext) -> tuple[str, np.ndarray] | None:
    """The class-index target as int64, when the loss takes one and it holds whole numbers."""
    spec = context.spec
    if spec.layout not in _CLASS_LAYOUTS or len(spec.arguments) < 2:
        return None
    argument = spec.arguments[1]
    if argument.role not in _INDEX_ROLES or context.soft_target:
        return None
    values = np.asarray(context.arrays[argument.name])
    if values.size == 0:
        return None
    if values.dtype.kind == "f" and (
        not np.all(np.isfinite(values)) or np.any(np.floor(values) != values)
    ):
        return None  # float-class-target says it
    return argument.name, values.astype(np.int64, copy=False)


def _target_lines_up(context: CheckContext) -> bool:
    """The class-index target is shaped as torch reads the input's classes (dimension 1).

    [batch] / [batch, d1, ...] against [batch, classes, d1, ...], one index for a 1-D input,
    or the same with an extra dimension of size 1 (target-has-extra-dim). Otherwise the shape
    checks report the mismatch, and statistics taken along dimension 1 (class range, row
    logsumexps) would describe the wrong axis: a time-major (T, N, C) output read with C=N.
    """
    spec = context.spec
    scores = np.asarray(context.arrays[spec.arguments[0].name])
    shape_t = tuple(np.asarray(context.arrays[spec.arguments[1].name]).shape)
    shape_i = tuple(scores.shape)
    if scores.ndim <= 1:
        return len(shape_t) <= 1 and math.prod(shape_t) == 1
    return shape_t == (shape_i[0], *shape_i[2:]) or extra_target_dim(shape_i, shape_t) is not None


def _positions(mask: np.ndarray, limit: int = 3) -> list[list[int]]:
    return [[int(i) for i in index] for index in np.argwhere(mask)[:limit]]


def _where(positions: list[list[int]]) -> str:
    return ", ".join(str(p[0]) if len(p) == 1 else str(p) for p in positions)


def _counts_text(values: np.ndarray, counts: np.ndarray) -> str:
    shown = [
        f"{int(v)} ({int(c)}×)" for v, c in zip(values[:_LISTED], counts[:_LISTED], strict=False)
    ]
    more = f" and {len(values) - _LISTED} more" if len(values) > _LISTED else ""
    return ", ".join(shown) + more


def _number(value: float) -> str:
    return f"{value:.4g}"


def _count(value: float) -> str:
    """A class count: whole counts in full (524288, not 5.243e+05), soft counts to 4 digits."""
    return str(int(value)) if value.is_integer() else _number(value)


def _tolerance_text(tolerance: float) -> str:
    return "1e-3" if tolerance == ROW_TOLERANCE else _number(tolerance)


def _array_flag(values: np.ndarray) -> str:
    return "[" + ",".join(_number(float(v)) for v in values) + "]"


def _command(context: CheckContext, loss: str, extra: str = "") -> str:
    """The losscli command that runs ``loss`` on the same inputs, ready to paste."""
    sources = " ".join(_input_text(context, a.name) for a in context.spec.arguments)
    return f"losscli compute {loss} {sources}" + (f" {extra}" if extra else "")


def _input_text(context: CheckContext, argument: str) -> str:
    """An INPUT as typed: the file, '-' for standard input, inline arrays written out."""
    loaded = context.inputs[argument]
    if loaded.source.startswith("<stdin>"):
        return "-" + loaded.source.removeprefix("<stdin>")
    if loaded.source == "inline":
        text = json.dumps(np.asarray(loaded.values).tolist(), separators=(",", ":"))
        return f"'{text}'" if len(text) <= 200 else "INLINE"
    return shlex.quote(loaded.source)


# ---------------------------------------------------------------- targets


def check_target_extra_dim(context: CheckContext) -> Iterator[Finding]:
    """A class-index target (N, 1) (or a mask (N, 1, H, W)) where torch wants (N,) / (N, H, W)."""
    spec = context.spec
    if spec.layout not in _CLASS_LAYOUTS or spec.arguments[1].role not in _INDEX_ROLES:
        return
    prediction, scores = _prediction(context)
    target = spec.arguments[1].name
    shape_t = tuple(context.arrays[target].shape)
    axis = extra_target_dim(tuple(scores.shape), shape_t)
    if axis is None or scores.size == 0 or context.arrays[target].size == 0:
        return
    wanted = (scores.shape[0], *scores.shape[2:])
    yield finding(
        "target-has-extra-dim",
        Severity.ERROR,
        f"{target} {shape_text(shape_t)} from {context.source(target)} holds class indices with an "
        f"extra dimension of size 1: {spec.name} wants {shape_text(wanted)} for {prediction} "
        f"{shape_text(scores.shape)}"
        + (
            " (torch: '0D or 1D target tensor expected, multi-target not supported')"
            if scores.ndim == 2
            else ""
        ),
        f"squeeze it: {target}.squeeze({axis}).long() (for losscli, save {target}.squeeze({axis}))",
        blocking=True,
        shape=list(shape_t),
        wanted=list(wanted),
    )


def check_class_dim_last(context: CheckContext) -> Iterator[Finding]:
    """Channels-last logits (N, H, W, C) against targets (N, H, W)."""
    spec = context.spec
    if spec.layout is not Layout.CLASS_SCORES:
        return
    hard = _hard_target(context)
    prediction, scores = _prediction(context)
    if hard is None or scores.ndim < 3:
        return
    target, indices = hard
    shape_i, shape_t = tuple(scores.shape), tuple(indices.shape)
    torch_reading = (shape_i[0], *shape_i[2:])
    if shape_t != shape_i[:-1] or shape_t == torch_reading:
        return  # torch's own reading lines up: real (N, C, H, W) segmentation
    ignore = _ignore_index(context)
    kept = indices[indices != ignore] if ignore is not None else indices.reshape(-1)
    classes_last = shape_i[-1]
    if kept.size == 0 or int(kept.min()) < 0 or int(kept.max()) >= classes_last:
        return  # the targets do not fit classes on the last dimension either
    order = ", ".join(str(a) for a in (0, len(shape_i) - 1, *range(1, len(shape_i) - 1)))
    yield finding(
        "class-dim-last",
        Severity.WARNING,
        f"{prediction} {shape_text(shape_i)} from {context.source(prediction)} looks channels-last: "
        f"its last dimension ({classes_last}) fits the target classes {int(kept.min())}..{int(kept.max())} "
        f"and the rest matches {target} {shape_text(shape_t)}, but torch reads dimension 1 "
        f"({shape_i[1]}) as the classes",
        f"move the classes to dimension 1: {prediction}.permute({order})",
        shape=list(shape_i),
        classes=classes_last,
    )


def check_class_index_range(context: CheckContext) -> Iterator[Finding]:
    """Class indices must lie in [0, C) unless they equal ignore_index."""
    spec = context.spec
    prediction, scores = _prediction(context)
    if scores.size == 0 or scores.ndim == 0:
        return
    classes = _class_count(scores)
    if spec.layout is Layout.MULTILABEL_INDICES:
        yield from _multilabel_index_range(context, classes)
        return
    hard = _hard_target(context)
    if hard is None or not _target_lines_up(context):
        return
    target, indices = hard
    ignore = _ignore_index(context)
    bad = (indices < 0) | (indices >= classes)
    if ignore is not None:
        bad &= indices != ignore
    if not bad.any():
        return
    kept = indices[indices != ignore] if ignore is not None else indices.reshape(-1)
    offending, counts = np.unique(indices[bad], return_counts=True)
    count = int(bad.sum())
    positions = _positions(bad)
    ignore_text = f", ignore_index {ignore}" if ignore is not None else ""
    message = (
        f"{target} from {context.source(target)} holds {count} of {indices.size} class indices outside "
        f"0..{classes - 1} ({prediction} {shape_text(scores.shape)} has C={classes}{ignore_text}): "
        f"{_counts_text(offending, counts)}; first at {_where(positions)}"
    )
    yield finding(
        "class-index-out-of-range",
        Severity.ERROR,
        message,
        _range_fix(context, target, kept, offending, classes),
        blocking=True,
        count=count,
        values=[int(v) for v in offending[:_LISTED]],
        classes=classes,
        first_positions=positions,
    )


def _range_fix(
    context: CheckContext, target: str, kept: np.ndarray, offending: np.ndarray, classes: int
) -> str:
    """Name the usual cause: 1-based labels, a void label, padding, a 0/255 mask."""
    has_ignore = context.spec.option("ignore_index") is not None
    low, high = int(kept.min()), int(kept.max())
    offending_set = {int(v) for v in offending}
    present = np.unique(kept)
    if offending_set == {classes} and low >= 1:
        # 1..C: the label C exists and 0 never appears (a batch may miss label 1 too)
        return (
            f"the labels are 1-based ({low}..{classes}, no 0): pass {target} - 1 "
            f"(or map them to 0..{classes - 1} where they are read)"
            + (
                f"; if 0 is a class that this batch happens to miss, give the output layer "
                f"{classes + 1} classes instead"
                if low > 1
                else ""
            )
        )
    if offending_set == {255} and set(present.tolist()) == {0, 255} and classes == 2:
        return f"a 0/255 mask: pass ({target} // 255).long() (mask / 255 for a float target)"
    spatial = np.asarray(context.arrays[target]).ndim >= 3  # (N, H, W) masks
    if spatial and offending_set != {255} and 128 <= high <= 255 and classes < 128:
        return _pixel_value_fix(target, present, classes)
    if offending_set == {-1} and high == classes - 2:
        # -1..C-2: a signed scale such as sentiment -1/0/1 read straight from a CSV
        minus_one = int((kept == -1).sum())
        return (
            f"the labels run -1..{high} ({minus_one} are -1): if -1 is a class (a signed scale such as "
            f"negative/neutral/positive), shift them: pass {target} + 1 (classes 0..{classes - 1}); "
            "if -1 marks unlabelled samples, "
            + (
                "--ignore-index -1 (F.cross_entropy(..., ignore_index=-1))"
                if has_ignore
                else f"drop them ({context.spec.name} has no ignore_index)"
            )
        )
    for void in (255, -1):
        if offending_set == {void}:
            where = (
                f"--ignore-index {void} (F.cross_entropy(..., ignore_index={void}))"
                if has_ignore
                else f"drop the samples labelled {void} ({context.spec.name} has no ignore_index)"
            )
            label = "void label" if void == 255 else "padding label"
            return f"{void} is a {label}: {where}"
    if high >= classes and low >= 0:
        return (
            f"the labels go up to {high} but the model outputs C={classes} classes: give the output "
            f"layer {high + 1} classes, or fix the label mapping"
        )
    return f"class indices must be 0..{classes - 1}" + (
        " or equal --ignore-index" if has_ignore else ""
    )


def _pixel_value_fix(target: str, present: np.ndarray, classes: int) -> str:
    """A mask saved as pixel values (greyscale, a palette, JPEG edges) instead of class indices."""
    shown = ", ".join(str(int(v)) for v in present[:_LISTED]) + (
        f" and {present.size - _LISTED} more" if present.size > _LISTED else ""
    )
    mapping = (
        f"threshold it: ({target} > 127).long()"
        if classes == 2
        else f"map each pixel value to its class (a lookup table: lut[{target}].long())"
    )
    return (
        f"the mask holds pixel values ({shown}), not class indices 0..{classes - 1}: {mapping}; "
        "save masks as PNG (JPEG blurs the edges into in-between values)"
    )


def _multilabel_index_range(context: CheckContext, classes: int) -> Iterator[Finding]:
    """multilabel-margin: indices in [0, C), padding -1 (torch stops at the first -1)."""
    target = context.spec.arguments[1].name
    values = np.asarray(context.arrays[target])
    if values.size == 0 or values.dtype.kind not in "iu":
        return
    bad = (values < -1) | (values >= classes)
    if not bad.any():
        return
    offending, counts = np.unique(values[bad], return_counts=True)
    positions = _positions(bad)
    yield finding(
        "class-index-out-of-range",
        Severity.ERROR,
        f"{target} from {context.source(target)} holds {int(bad.sum())} class indices outside 0..{classes - 1} "
        f"(and not the padding -1): {_counts_text(offending, counts)}; first at {_where(positions)}",
        f"each row lists class indices 0..{classes - 1}, then pads with -1",
        blocking=True,
        count=int(bad.sum()),
        values=[int(v) for v in offending[:_LISTED]],
        classes=classes,
        first_positions=positions,
    )


def check_all_targets_ignored(context: CheckContext) -> Iterator[Finding]:
    """Every target equals ignore_index: the mean has nothing to average."""
    hard = _hard_target(context)
    ignore = _ignore_index(context)
    if hard is None or ignore is None:
        return
    target, indices = hard
    if not np.all(indices == ignore):
        return
    reduction = context.options.get("reduction", "mean")
    outcome = (
        "the mean divides 0 by 0 and is NaN"
        if reduction == "mean"
        else "the loss is 0 and carries no signal"
    )
    yield finding(
        "all-targets-ignored",
        Severity.ERROR,
        f"all {indices.size} targets in {context.source(target)} equal ignore_index {ignore}: {outcome}",
        "check the labels and --ignore-index: a batch needs at least one labelled target "
        "(a crop of pure void pixels, or labels that were never filled in)",
        count=int(indices.size),
        ignore_index=ignore,
    )


def check_soft_targets(context: CheckContext) -> Iterator[Finding]:
    """Cross-entropy targets shaped like the input: one-hot, multi-hot, or not distributions."""
    spec = context.spec
    if not context.soft_target or spec.layout is not Layout.CLASS_SCORES:
        return
    target = spec.arguments[1].name
    values = np.asarray(context.inputs[target].values)
    if values.size == 0 or values.ndim < 2:
        return
    kind = classify(values, class_axis=1)
    rows = kind.rows
    if rows is None:
        return
    if kind.kind is Kind.ONE_HOT:
        yield finding(
            "one-hot-target",
            Severity.INFO,
            f"{target} {shape_text(values.shape)} from {context.source(target)} is one-hot (exactly one 1 in "
            f"each of {rows.count} rows): cross-entropy reads it as class probabilities, which gives the same "
            "value as class indices but rules out ignore_index and costs C times the memory",
            f"pass class indices: {target}.argmax(1) (then --weight and --ignore-index work)",
            rows=rows.count,
        )
        return
    if kind.kind is Kind.MULTI_HOT and rows.ones_max >= 2:
        several = round(rows.fraction_several_ones * rows.count)
        yield finding(
            "multilabel-target",
            Severity.WARNING,
            f"{target} {shape_text(values.shape)} from {context.source(target)} holds 0/1 with several ones in "
            f"{several} of {rows.count} rows (up to {rows.ones_max}): this is multi-label, but cross-entropy's "
            "softmax makes the classes compete for one probability mass",
            f"use one sigmoid per class: {_command(context, 'bce-logits')} "
            f"(F.binary_cross_entropy_with_logits(logits, {target}.float()))",
            rows_with_several=several,
            rows=rows.count,
            most_ones=rows.ones_max,
        )
        return
    if kind.zero_one:
        return  # rows of one 1 or none: a one-hot table with empty rows is still a distribution mostly
    sums = rows_of(values, 1).sum(axis=1)
    off = np.abs(sums - 1) > rows.tolerance
    if off.any():  # only then ask whether rounding on export explains it
        off = np.abs(sums - 1) > _rounded_row_tolerance(values, rows.length, rows.tolerance)
    negative = int((values < 0).sum())
    if not off.any() and negative == 0:
        return
    fix = (
        f"normalise each row: {target} / {target}.sum(1, keepdim=True)"
        if negative == 0
        else f"these look like scores, not probabilities: pass {target}.softmax(1)"
    )
    if kind.integral and kind.distinct:
        fix = _labels_per_position_fix(target, values.shape, kind.distinct)
    negatives = f"; {negative} entries are negative" if negative else ""
    yield finding(
        "soft-target-not-distribution",
        Severity.WARNING,
        f"{target} from {context.source(target)} is read as class probabilities, but {int(off.sum())} of "
        f"{sums.size} rows do not sum to 1 (row sums min {_number(float(sums.min()))}, median "
        f"{_number(float(np.median(sums)))}, max {_number(float(sums.max()))}){negatives}: the loss is "
        "scaled per row and can go below its true minimum",
        fix,
        rows_off=int(off.sum()),
        rows=int(sums.size),
        row_sum_median=float(np.median(sums)),
    )


def _labels_per_position_fix(
    target: str, shape: tuple[int, ...], distinct: tuple[float, ...]
) -> str:
    """Whole numbers such as -1/0/1 in a [batch, K] target: K labels per sample, not probabilities."""
    low, high = int(min(distinct)), int(max(distinct))
    choices = high - low + 1
    labels = ", ".join(str(int(v)) for v in distinct)
    indices = (
        f"({target} + {-low}).long()"
        if low < 0
        else (f"({target} - {low}).long()" if low > 0 else f"{target}.long()")
    )
    logits = shape_text((shape[0], choices, *shape[1:]))
    return (
        f"these are class labels ({labels}), {shape[1]} per sample, not probabilities: give one "
        f"logit per label value, logits shaped {logits}, and target {indices} shaped "
        f"{shape_text(shape)} (the K-dimensional case of F.cross_entropy)"
    )


def _rounded_row_tolerance(values: np.ndarray, length: int, tolerance: float) -> float:
    """How far a row sum may be from 1 when the values were rounded to a few decimal places.

    Probabilities saved as ``0.33, 0.33, 0.33`` (2 places) sum to 0.99: each of the C values
    may be off by half a unit in its last place, so the row by C of those on top of
    ``tolerance`` (at most ``ROUNDING_SLACK_CAP`` more). Unrounded values keep ``tolerance``.
    """
    places = decimal_places(values)
    if places is None or places == 0:
        return tolerance
    # capped: rounding that moves a row sum by more than 0.1 has changed the distribution
    return tolerance + min(length * 0.5 * 10.0**-places, ROUNDING_SLACK_CAP)


def check_multi_hot_index_target(context: CheckContext) -> Iterator[Finding]:
    """multilabel-margin given a 0/1 multi-hot table where it wants class indices padded with -1."""
    spec = context.spec
    if spec.layout is not Layout.MULTILABEL_INDICES or len(spec.arguments) < 2:
        return
    target = spec.arguments[1].name
    values = np.asarray(context.arrays[target])
    if values.size == 0 or values.ndim not in (1, 2):
        return
    rows = values.reshape(-1, values.shape[-1])
    if not np.isin(rows, (0, 1)).all():
        return  # -1 padding or other indices: an index list
    # an index list names each class once; a row of 0s and 1s repeats one when it has 3+ entries
    repeats = int(np.sum([np.unique(row).size < row.size for row in rows]))
    if repeats == 0:
        return
    several = int(((rows == 1).sum(axis=1) >= 1).sum())
    yield finding(
        "multilabel-target",
        Severity.WARNING,
        f"{target} {shape_text(values.shape)} from {context.source(target)} holds only 0 and 1: a multi-hot "
        f"table ({several} of {rows.shape[0]} rows have a 1), but {spec.name} reads each row as a list of "
        "class indices ending at the first -1, so each row names at most classes 0 and 1 and the value is wrong",
        f"on multi-hot targets use {_command(context, 'multilabel-soft-margin')} (or bce-logits); "
        f"for {spec.name}, list each sample's classes then pad with -1: "
        f"[c for c in range(C) if row[c]] + [-1] * (C - row.sum())",
        rows=int(rows.shape[0]),
    )


# ---------------------------------------------------------------- inputs


def check_single_logit(context: CheckContext) -> Iterator[Finding]:
    """Cross-entropy with one class column: log_softmax over one class is 0."""
    spec = context.spec
    if spec.activation is not Activation.SOFTMAX:
        return
    prediction, scores = _prediction(context)
    if scores.ndim < 2 or scores.shape[1] != 1 or scores.size == 0:
        return
    target = spec.arguments[1].name
    labels = (
        f"{target}.squeeze(1).float()" if context.arrays[target].ndim == 2 else f"{target}.float()"
    )
    yield finding(
        "single-logit-cross-entropy",
        Severity.ERROR,
        f"{prediction} {shape_text(scores.shape)} from {context.source(prediction)} has one class column: "
        "softmax over one class is always 1, so the loss is 0 for every sample and the gradient is 0",
        f"one logit per sample is binary classification: F.binary_cross_entropy_with_logits("
        f"{prediction}.squeeze(1), {labels}); in losscli, bce-logits on the saved "
        f"{prediction}.squeeze(1) and the 0/1 labels: losscli compute bce-logits LOGITS "
        f"{_input_text(context, target)}",
        shape=list(scores.shape),
    )


def check_unbatched(context: CheckContext) -> Iterator[Finding]:
    """A 1-D cross-entropy input is read as one sample with N classes."""
    spec = context.spec
    if spec.activation is not Activation.SOFTMAX:
        return
    prediction, scores = _prediction(context)
    if scores.ndim != 1 or scores.size == 0:
        return
    target = spec.arguments[1].name
    single = context.arrays[target].size == 1
    reading = (
        f"that is what you meant only if this is a single sample (the target is one index, "
        f"{int(np.asarray(context.arrays[target]).reshape(-1)[0])})"
        if single and np.asarray(context.arrays[target]).dtype.kind in "iu"
        else f"but {target} from {context.source(target)} holds {context.arrays[target].size} values"
    )
    yield finding(
        "unbatched-input",
        Severity.WARNING,
        f"{prediction} {shape_text(scores.shape)} from {context.source(prediction)} is 1-D: {spec.name} "
        f"reads it as ONE sample with {scores.shape[0]} classes; {reading}",
        f"one score per sample is binary: {_command(context, 'bce-logits')}; one sample of class "
        f"scores: pass {prediction}.unsqueeze(0) to say so (shape (1, {scores.shape[0]}))",
        shape=list(scores.shape),
    )


def check_weight_length(context: CheckContext) -> Iterator[Finding]:
    """--weight must hold one weight per class; --pos-weight must broadcast over the classes."""
    spec = context.spec
    prediction, scores = _prediction(context)
    if scores.size == 0:
        return
    weight = context.options.get("weight")
    if spec.option("weight") is not None and weight is not None:
        weights = np.asarray(weight)
        if spec.class_weight:
            yield from _class_weight(context, prediction, scores, weights)
        else:
            yield from _broadcast_weight(context, "--weight", prediction, scores, weights)
    pos_weight = context.options.get("pos_weight")
    if spec.option("pos_weight") is not None and pos_weight is not None:
        yield from _broadcast_weight(
            context, "--pos-weight", prediction, scores, np.asarray(pos_weight)
        )


def _class_weight(
    context: CheckContext, prediction: str, scores: np.ndarray, weights: np.ndarray
) -> Iterator[Finding]:
    spec = context.spec
    class_axis = _class_axis(scores) if spec.layout is not Layout.ELEMENTWISE else scores.ndim - 1
    classes = int(scores.shape[class_axis]) if scores.ndim else 1
    if weights.ndim == 1 and weights.size == classes:
        return
    if (
        spec.layout is Layout.ELEMENTWISE
        and weights.size == classes
        and _fits(weights.shape, scores.shape)
    ):
        return  # (1, C) against [batch, classes]: one weight per class all the same
    torch_broadcasts = spec.layout is Layout.ELEMENTWISE and _fits(weights.shape, scores.shape)
    yield finding(
        "weight-length-mismatch",
        Severity.ERROR,
        f"--weight holds {weights.size} value(s) {shape_text(weights.shape)} but {prediction} "
        f"{shape_text(scores.shape)} from {context.source(prediction)} has C={classes} classes"
        + ("; torch broadcasts it silently" if torch_broadcasts else ""),
        f"give one weight per class, in class-index order: {classes} values",
        blocking=not torch_broadcasts,
        length=int(weights.size),
        classes=classes,
    )


def _broadcast_weight(
    context: CheckContext, flag: str, prediction: str, scores: np.ndarray, weights: np.ndarray
) -> Iterator[Finding]:
    if _fits(weights.shape, scores.shape):
        return
    classes = int(scores.shape[-1]) if scores.ndim else 1
    what = (
        "one weight per class (the last dimension)"
        if flag == "--pos-weight"
        else "a weight that broadcasts over the input"
    )
    yield finding(
        "weight-length-mismatch",
        Severity.ERROR,
        f"{flag} {shape_text(weights.shape)} does not broadcast over {prediction} "
        f"{shape_text(scores.shape)} from {context.source(prediction)} (last dimension C={classes})",
        f"give {what}: {classes} values, or one value for all",
        blocking=True,
        shape=list(weights.shape),
        input_shape=list(scores.shape),
    )


def _fits(weight_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> bool:
    """The weight broadcasts against the input without changing the input's shape."""
    try:
        return tuple(np.broadcast_shapes(weight_shape, input_shape)) == tuple(input_shape)
    except ValueError:
        return False


def check_probabilities_as_logits(context: CheckContext) -> Iterator[Finding]:
    """Softmax/sigmoid output given to a loss that applies softmax/sigmoid itself."""
    spec = context.spec
    prediction, scores = _prediction(context)
    if spec.activation is Activation.SOFTMAX:
        if scores.ndim < 2 or scores.shape[1] < 2:
            return
        if not context.soft_target and not _target_lines_up(context):
            return  # rows along dimension 1 may not be the classes: the shape findings say so
        values = context.inputs[prediction].values
        kind = classify(values, class_axis=1)
        rows = kind.rows
        if rows is None or not kind.in_unit_interval:
            return
        if abs(rows.sum_median - 1) > PROBABILITY_ROW_SUM_SLACK:
            yield from _softmax_over_batch(context, prediction, values, rows.tolerance)
            return
        if not _enough_probability_evidence(values, rows.tolerance):
            return
        yield finding(
            "probabilities-as-logits",
            Severity.WARNING,
            f"every value of {prediction} from {context.source(prediction)} lies in [0, 1] "
            f"({_number(kind.min)} to {_number(kind.max)}) and its rows sum to about 1 (median "
            f"{_number(rows.sum_median)}, min {_number(rows.sum_min)}, max {_number(rows.sum_max)}; "
            f"{rows.fraction_sum_to_one:.0%} within {_tolerance_text(rows.tolerance)}): softmax was already applied, and "
            f"{spec.name} applies it again, so the loss barely moves and trains slowly",
            f"pass the logits (the model output before softmax): {spec.call}(logits, target); "
            "with probabilities only, use nll on their log: F.nll_loss(torch.log(probs), target)",
            row_sum_median=rows.sum_median,
            fraction_rows_sum_to_one=rows.fraction_sum_to_one,
        )
        return
    if spec.activation is Activation.SIGMOID:
        kind = classify(context.inputs[prediction].values)
        if kind.size < MIN_SIGMOID_VALUES or not kind.in_unit_interval or kind.constant:
            return
        yield finding(
            "probabilities-as-logits",
            Severity.WARNING,
            f"all {kind.size} values of {prediction} from {context.source(prediction)} lie in [0, 1] "
            f"({_number(kind.min)} to {_number(kind.max)}, median {_number(kind.median)}): they look like "
            f"sigmoid output, and {spec.name} applies sigmoid again, squeezing every prediction into "
            "[0.5, 0.73]",
            "pass the logits (the model output before torch.sigmoid); with probabilities only, use "
            f"{_command(context, 'bce')}",
            minimum=kind.min,
            maximum=kind.max,
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
    if log:
        peak = array.max(axis=0)
        totals = peak + np.log(np.exp(array - peak).sum(axis=0))
        off = np.abs(totals)
    else:
        off = np.abs(array.sum(axis=0) - 1)
    exact = int(np.sum(off <= tolerance))
    if exact < ROW_FRACTION * array.shape[1]:
        return False
    per_column = -math.log10(min(2 * tolerance, 1.0)) + math.lgamma(array.shape[0]) / math.log(10)
    return exact * per_column >= EXACT_ROW_EVIDENCE


def _softmax_over_batch(
    context: CheckContext, prediction: str, values: np.ndarray, tolerance: float
) -> Iterator[Finding]:
    """Probabilities normalised over dimension 0 given to cross-entropy."""
    if not _batch_axis_normalised(values, tolerance, log=False):
        return
    batch = int(np.asarray(values).shape[0])
    yield finding(
        "probabilities-as-logits",
        Severity.WARNING,
        f"every value of {prediction} from {context.source(prediction)} lies in [0, 1] and each of "
        f"its columns sums to 1 over the {batch} samples: softmax ran over dimension 0 (the batch), "
        f"not over the classes, and {context.spec.name} applies its own softmax on top",
        f"pass the logits (the model output before softmax): F.{context.spec.function}(logits, target); "
        "a softmax for reporting belongs on dim=1: logits.softmax(dim=1)",
        normalised_dimension=0,
    )


def check_nll_input(context: CheckContext) -> Iterator[Finding]:
    """nll wants log-probabilities: not raw scores, not probabilities."""
    spec = context.spec
    if spec.input_domain is not Domain.LOG_PROBABILITIES or spec.layout is not Layout.CLASS_SCORES:
        return
    prediction, scores = _prediction(context)
    if scores.size == 0 or scores.ndim == 0:
        return
    if not context.soft_target and not _target_lines_up(context):
        return  # dimension 1 may not hold the classes: the shape findings say what does
    kind = classify(context.inputs[prediction].values, class_axis=_class_axis(scores))
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
            f"{prediction} from {context.source(prediction)} holds probabilities: every value in [0, 1] "
            f"({_number(kind.min)} to {_number(kind.max)}), rows summing to about 1 (median "
            f"{_number(rows.sum_median)}); nll returns -input[i, y], so log was never taken and the loss "
            "lies in [-1, 0]",
            f"take the log first: F.nll_loss(torch.log(probs), {target}) (probs.clamp_min(1e-12).log() "
            "if some are 0), then run losscli compute nll on the saved log-probabilities",
            row_sum_median=rows.sum_median,
        )
        return
    positive = int((np.asarray(context.inputs[prediction].values) > 1e-6).sum())
    lse_off = abs(rows.logsumexp_median) > LOGSUMEXP_SLACK
    if positive == 0 and not lse_off:
        return
    evidence = []
    if positive:
        evidence.append(f"{positive} of {kind.size} entries are positive (max {_number(kind.max)})")
    evidence.append(
        f"the median row logsumexp is {_number(rows.logsumexp_median)} (log-softmax output has 0)"
    )
    fix = (
        f"apply log_softmax first: F.nll_loss(F.log_softmax(logits, dim=1), {target}), or give the "
        f"logits to cross-entropy, which does both: {_command(context, 'cross-entropy')}"
    )
    values = np.asarray(context.inputs[prediction].values)
    if positive == 0 and _batch_axis_normalised(values, rows.tolerance, log=True):
        evidence.append(
            f"each column has logsumexp 0 over the {values.shape[0]} samples: log_softmax ran over "
            "dimension 0 (the batch), not over the classes"
        )
        fix = (
            f"take log_softmax over the classes: F.nll_loss(F.log_softmax(logits, dim=1), {target}) "
            "(nn.LogSoftmax(dim=1), not dim=0)"
        )
    yield finding(
        "logits-to-nll",
        Severity.ERROR,
        f"{prediction} from {context.source(prediction)} is not log-probabilities: {'; '.join(evidence)}. "
        "nll returns -input[i, y], so on raw scores the loss can go negative and rewards ever larger scores",
        fix,
        positive=positive,
        logsumexp_median=rows.logsumexp_median,
    )


# ---------------------------------------------------------------- class balance


def check_class_imbalance(context: CheckContext) -> Iterator[Finding]:
    """Class frequencies 10x apart or more: print the counts and ready weights."""
    spec = context.spec
    if len(spec.arguments) < 2:
        return
    role = spec.arguments[1].role
    if spec.layout in _CLASS_LAYOUTS and role in _INDEX_ROLES:
        yield from _index_imbalance(context)
    elif spec.layout is Layout.MULTILABEL_INDICES:
        yield from _multilabel_index_imbalance(context)
    elif role is Role.BINARY_TARGET:
        yield from _binary_imbalance(context)


def _index_imbalance(context: CheckContext) -> Iterator[Finding]:
    _, scores = _prediction(context)
    if scores.size == 0 or scores.ndim == 0:
        return
    classes = _class_count(scores)
    target = context.spec.arguments[1].name
    if context.soft_target:
        values = np.asarray(context.inputs[target].values, dtype=np.float64)
        if not np.all(np.isfinite(values)) or values.min() < 0:
            return
        counts = rows_of(values, 1).sum(axis=0)
    else:
        hard = _hard_target(context)
        if hard is None or not _target_lines_up(context):
            return
        _, indices = hard
        ignore = _ignore_index(context)
        kept = indices[indices != ignore] if ignore is not None else indices.reshape(-1)
        if kept.size == 0 or kept.min() < 0 or kept.max() >= classes:
            return  # class-index-out-of-range / all-targets-ignored say it
        counts = np.bincount(kept, minlength=classes).astype(np.float64)
    if (counts > 0).sum() >= 2:
        yield from _report_counts(context, target, counts, _class_weight_fix(context, counts))


def _multilabel_index_imbalance(context: CheckContext) -> Iterator[Finding]:
    _, scores = _prediction(context)
    target = context.spec.arguments[1].name
    values = np.asarray(context.arrays[target])
    if scores.ndim == 0 or values.ndim == 0 or values.size == 0 or values.dtype.kind not in "iu":
        return
    classes = int(scores.shape[-1])
    rows = values.reshape(-1, values.shape[-1])
    # torch reads each row up to its first -1
    before_padding = np.cumsum(rows == -1, axis=1) == 0
    labels = rows[before_padding]
    if labels.size == 0 or labels.min() < 0 or labels.max() >= classes:
        return
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    yield from _report_counts(
        context,
        target,
        counts,
        f"{context.spec.name} takes no class weights; for weighted multi-label training use "
        "bce-logits with --pos-weight on 0/1 targets",
    )


def _report_counts(
    context: CheckContext, target: str, counts: np.ndarray, fix: str
) -> Iterator[Finding]:
    present = counts > 0
    if present.sum() < 2:
        return
    ratio = float(counts[present].max() / counts[present].min())
    if ratio < IMBALANCE_RATIO:
        return
    order = np.argsort(-counts, kind="stable")
    listed = [f"{int(c)}: {_count(float(counts[c]))}" for c in order if present[c]]
    shown = ", ".join(listed[:_LISTED]) + (
        f" and {len(listed) - _LISTED} more" if len(listed) > _LISTED else ""
    )
    absent = np.flatnonzero(~present)
    absent_text = (
        f"; absent: {', '.join(str(int(c)) for c in absent[:_LISTED])}"
        + (f" and {absent.size - _LISTED} more" if absent.size > _LISTED else "")
        if absent.size
        else ""
    )
    yield finding(
        "class-imbalance",
        Severity.INFO,
        f"class counts in {context.source(target)} (class: count, most frequent first): {shown}; the most "
        f"frequent present class is {_number(ratio)}× the rarest{absent_text}",
        fix,
        counts=[float(c) for c in counts],
        ratio=ratio,
        absent=[int(c) for c in absent],
    )


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """Per-class weights ∝ 1 / count, with mean 1; absent classes weigh like the rarest present one.

    Args:
        counts: float ``[classes]``, at least one positive.

    Returns:
        float64 ``[classes]``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not (counts > 0).any():
        return np.ones_like(counts)
    rarest = counts[counts > 0].min()
    inverse = 1.0 / np.where(counts > 0, counts, rarest)
    return inverse / inverse.mean()


def _class_weight_fix(context: CheckContext, counts: np.ndarray) -> str:
    spec = context.spec
    weights = inverse_frequency_weights(counts)
    if counts.size > _MAX_READY_WEIGHTS:
        ready = "weight = 1 / counts, divided by its mean"
    else:
        ready = f"--weight '{_array_flag(weights)}'"
    if spec.class_weight and spec.option("weight") is not None:
        return (
            f"if the rare classes matter, weight them by inverse frequency: {_command(context, spec.name, ready)} "
            f"({spec.call}(..., weight=torch.tensor({_array_flag(weights)})))"
            if counts.size <= _MAX_READY_WEIGHTS
            else f"weight the classes by inverse frequency: {ready}"
        )
    return "resample the rare classes, or use a loss that takes class weights"


def _binary_imbalance(context: CheckContext) -> Iterator[Finding]:
    spec = context.spec
    has_weighting = any(spec.option(name) is not None for name in ("weight", "pos_weight", "alpha"))
    if not has_weighting:
        return  # nothing to tune (dice balances overlap by construction)
    target = spec.arguments[1].name
    values = np.asarray(context.inputs[target].values)
    kind = classify(values)
    if kind.size == 0 or not kind.zero_one:
        return
    columns = values.reshape(-1, values.shape[-1]) if values.ndim == 2 else values.reshape(-1, 1)
    positives = (columns == 1).sum(axis=0).astype(np.float64)
    negatives = columns.shape[0] - positives
    both = (positives > 0) & (negatives > 0)
    if not both.any():
        return
    ratios = np.maximum(positives, negatives)[both] / np.minimum(positives, negatives)[both]
    if ratios.max() < IMBALANCE_RATIO:
        return
    pos_weight = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    no_positive = np.flatnonzero(positives == 0)
    if columns.shape[1] == 1:
        counts_text = f"{int(positives[0])} positive vs {int(negatives[0])} negative ({_number(float(ratios[0]))}×)"
    else:
        listed = ", ".join(
            f"{c}: {int(positives[c])}/{columns.shape[0]}"
            for c in range(min(columns.shape[1], _LISTED))
        )
        more = f" and {columns.shape[1] - _LISTED} more" if columns.shape[1] > _LISTED else ""
        counts_text = (
            f"positives per class (class: positives/samples) {listed}{more}; the most skewed class is "
            f"{_number(float(ratios.max()))}× one-sided"
        )
    absent = (
        f"; no positives in class {', '.join(str(int(c)) for c in no_positive[:_LISTED])} (pos_weight 1 there)"
        if no_positive.size
        else ""
    )
    ready = _array_flag(pos_weight)
    if spec.option("pos_weight") is not None:
        fix = f"weight the positives by neg/pos: {_command(context, spec.name, f'--pos-weight {chr(39)}{ready}{chr(39)}')}"
    elif spec.option("alpha") is not None:
        share = float(negatives.sum() / (negatives.sum() + positives.sum()))
        fix = f"weight the positives by alpha = share of negatives: {_command(context, spec.name, f'--alpha {share:.3g}')}"
    else:
        fix = (
            f"on logits use {_command(context, 'bce-logits', f'--pos-weight {chr(39)}{ready}{chr(39)}')}; "
            f"in PyTorch a per-element weight 1 + (pos_weight - 1) * {target} does the same"
        )
    yield finding(
        "class-imbalance",
        Severity.INFO,
        f"{target} from {context.source(target)}: {counts_text}{absent}",
        fix,
        positives=[int(p) for p in positives],
        samples=int(columns.shape[0]),
        pos_weight=[float(p) for p in pos_weight],
    )


CHECKS: tuple[InputCheck, ...] = (
    check_target_extra_dim,
    check_class_dim_last,
    check_class_index_range,
    check_all_targets_ignored,
    check_single_logit,
    check_unbatched,
    check_weight_length,
    check_probabilities_as_logits,
    check_nll_input,
    check_soft_targets,
    check_multi_hot_index_target,
    check_class_imbalance,
)
RESULT_CHECKS: tuple[ResultCheck, ...] = ()
