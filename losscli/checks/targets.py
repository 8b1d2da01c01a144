"""Target checks: class indices; soft, one-hot and multi-hot targets; the domains of targets; ctc labels.

Each check reads the argument roles of the :class:`LossSpec`, classifies the values with
:mod:`losscli.kinds`, and reports what it sees with the numbers (counts, first positions,
min/max, fraction of rows) and the usual cause's fix. NaN and Inf are left to
``non-finite-input``: every statistic here is over the finite values. Soft targets saved
with few decimals (0.33, 0.33, 0.33) count as summing to 1.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import numpy as np

from losscli import text
from losscli.checks import Check, CheckContext, Combine, Scope, Totals
from losscli.checks.arguments import (
    POSITIVE_SLACK,
    ROUNDING_SLACK_CAP,
    as_float,
    class_axes,
    class_count,
    ctc_batch,
    hard_target,
    has_role,
    ignore_index,
    is_ctc,
    looks_like_log_probabilities,
    looks_like_probabilities,
    prediction,
    row_sums,
    stored_eps,
    takes_class_indices,
    target_lines_up,
)
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.kinds import ArrayKind, Kind, classify, decimal_places, rows_of
from losscli.losses import Domain, DType, Layout, LossSpec, Role, torch_error

# binary targets this far outside [0, 1] are rounding, not a mistake (when torch allows them)
_UNIT_SLACK = 1e-6
# at most this many classes are listed by name in a message
_LISTED = 8
# the samples a message lists
_LISTED_SAMPLES = 3
# --zero-infinity is a fix for impossible ctc samples up to this share of the batch (beyond
# it, zeroing them discards the data: the warning stays even with --zero-infinity)
_FEW_IMPOSSIBLE = 0.2


# ---------------------------------------------------------------- class indices


def _indexes_classes(spec: LossSpec) -> bool:
    """Class indices into the input's classes: cross-entropy, nll, multi-margin, multilabel-margin."""
    return takes_class_indices(spec) or spec.layout is Layout.MULTILABEL_INDICES


def _ignores_an_index(spec: LossSpec) -> bool:
    return takes_class_indices(spec) and spec.option("ignore_index") is not None


def _takes_class_probabilities(spec: LossSpec) -> bool:
    """cross-entropy: a target shaped like the input holds class probabilities."""
    return spec.layout is Layout.CLASS_SCORES and spec.arguments[1].dtype is DType.CLASS


def _takes_multilabel_indices(spec: LossSpec) -> bool:
    return spec.layout is Layout.MULTILABEL_INDICES


def _counts_text(values: np.ndarray, counts: np.ndarray) -> str:
    shown = [
        f"{int(v)} ({int(c)}×)" for v, c in zip(values[:_LISTED], counts[:_LISTED], strict=False)
    ]
    more = f" and {len(values) - _LISTED} more" if len(values) > _LISTED else ""
    return ", ".join(shown) + more


def check_class_index_range(context: CheckContext) -> Iterator[Finding]:
    """Class indices must lie in [0, C) unless they equal ignore_index."""
    spec = context.spec
    name, scores = prediction(context)
    if scores.size == 0 or scores.ndim == 0:
        return
    classes = class_count(scores)
    if spec.layout is Layout.MULTILABEL_INDICES:
        yield from _multilabel_index_range(context, classes)
        return
    hard = hard_target(context)
    if hard is None or not target_lines_up(context):
        return
    target, indices = hard
    ignore = ignore_index(context)
    bad = (indices < 0) | (indices >= classes)
    if ignore is not None:
        bad &= indices != ignore
    if not bad.any():
        return
    kept = indices[indices != ignore] if ignore is not None else indices.reshape(-1)
    offending, counts = np.unique(indices[bad], return_counts=True)
    count = int(bad.sum())
    positions = text.positions(context, target, bad)
    ignore_text = f", ignore_index {ignore}" if ignore is not None else ""
    error = _range_error(context, target, indices, bad)
    message = (
        f"{target} from {context.source(target)} holds {count} of {indices.size} class indices outside "
        f"0..{classes - 1} ({name} {text.shape_text(scores.shape)} has C={classes}{ignore_text}): "
        f"{_counts_text(offending, counts)}; first at {text.where(positions)}"
        + (f'; torch raises "{error}"' if error else "")
    )
    yield finding(
        "class-index-out-of-range",
        Severity.ERROR,
        message,
        _range_fix(context, target, kept, offending, classes),
        blocking=True,
        remedies=_range_remedies(context, target, kept, offending, classes),
        count=count,
        values=[int(v) for v in offending[:_LISTED]],
        classes=classes,
        first_positions=positions,
        **_quoted(error),
    )


def _quoted(error: str) -> dict[str, Any]:
    """torch's error as evidence, when there is one to quote."""
    return {"torch_error": error} if error else {}


def _range_error(context: CheckContext, target: str, indices: np.ndarray, bad: np.ndarray) -> str:
    """torch's own error for these out-of-range class indices (CPU), or ``""``.

    torch checks the targets in memory order, skipping ignore_index, and names the first
    offending one it meets (``Argument.range_error``). With ``reduction='none'`` its kernel
    may split the batch across threads, and a later thread can then report first; the first
    in memory order is what one thread, and every other reduction, reports.
    """
    template = next(a.range_error for a in context.spec.arguments if a.name == target)
    if not template:
        return ""
    first = int(np.flatnonzero(bad.reshape(-1))[0])
    return template.format(value=int(indices.reshape(-1)[first]))


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
    if set(present.tolist()) <= {-1, 1} and classes == 2:
        minus_one = int((kept == -1).sum())
        return (
            f"the labels are -1/+1 ({minus_one} of {kept.size} are -1): sign labels of a binary "
            f"task, not padding; map them to classes 0/1: ({target} > 0).long()"
        )
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


def _range_remedies(
    context: CheckContext, target: str, kept: np.ndarray, offending: np.ndarray, classes: int
) -> tuple[Remedy, ...]:
    """Each plausible cause's remedy; :mod:`losscli.fixes` keeps those that verify.

    Where the cause is ambiguous, each is offered with a note that tells them apart: C
    itself is a 1-based label or a void class; -1 is a class of a signed scale or padding.
    An ``--ignore-index`` that would ignore a large share of the targets is dropped when
    verified (it discards data).
    """
    has_ignore = context.spec.option("ignore_index") is not None
    present = {int(v) for v in np.unique(kept)}
    offending_set = {int(v) for v in offending}
    low, high = int(kept.min()), int(kept.max())
    ignore = [
        Remedy(
            options=(("ignore_index", value),),
            note=f"if {value} marks pixels or samples without a label",
        )
        for value in sorted(offending_set)
        if has_ignore
        and len(offending_set) == 1
        and not _one_based_class_labels(context, target, kept, offending, classes)
    ]
    if present <= {-1, 1} and classes == 2:  # ±1 labels of a binary task
        return (
            Remedy(
                maps=(f"{target} = ({target} > 0).long()",),
                note="-1/+1 labels: -1 becomes class 0, +1 class 1",
            ),
        )
    if present <= {0, 255} and classes == 2:  # a 0/255 mask
        return (Remedy(maps=(f"{target} = {target} // 255",), note="a 0/255 mask"),)
    if _binary_pixel_mask(context, target, kept, offending_set, classes):
        # a black/white mask saved as pixel values (JPEG blurs the edges into in-between values)
        return (
            Remedy(
                maps=(f"{target} = ({target} > 127).long()",),
                note="a black/white mask saved as pixel values: above 127 is class 1",
            ),
        )
    shifts: list[Remedy] = []
    if low >= 1 and high == classes:  # 1..C
        shifts.append(Remedy(maps=(f"{target} = {target} - 1",), note="if the labels are 1-based"))
    if offending_set == {-1} and high == classes - 2:  # -1..C-2
        shifts.append(
            Remedy(maps=(f"{target} = {target} + 1",), note="if -1 is a class (a signed scale)")
        )
    grow = (
        [
            Remedy(
                outside=True,
                code=f"give the output layer {high + 1} classes (nn.Linear(..., {high + 1}))",
                note=f"if the labels 0..{high} are all classes",
            )
        ]
        if high >= classes and low >= 0 and offending_set != {255}
        else []
    )
    return (*shifts, *ignore, *grow)


# with one label per sample, C is a class of 1-based labels (not a void label) once the
# targets hold enough samples that a balanced draw would show class 0 ...
_ONE_BASED_SAMPLES_PER_CLASS = 3
# ... and C is about as frequent as the classes present: at least this share of their median
_ONE_BASED_CLASS_SHARE = 0.5


def _one_based_class_labels(
    context: CheckContext, target: str, kept: np.ndarray, offending: np.ndarray, classes: int
) -> bool:
    """Labels 1..C, one per sample, where C is as frequent as any class: 1-based, not void.

    Ignoring C there would drop a whole class and leave the model's class 0 untrained, so
    ``--ignore-index C`` is not a plausible reading (a void label is rare, or a pixel's).
    """
    per_sample = np.asarray(context.arrays[target]).ndim == 1
    if not per_sample or kept.size < _ONE_BASED_SAMPLES_PER_CLASS * classes:
        return False
    if int(kept.min()) < 1 or int(kept.max()) != classes or set(offending.tolist()) != {classes}:
        return False
    _, counts = np.unique(kept, return_counts=True)
    top = int((kept == classes).sum())
    return top >= _ONE_BASED_CLASS_SHARE * float(np.median(counts))


# a mask of pixel values is black/white when this share of its pixels lies within
# _PIXEL_EDGE of 0 or of 255 (JPEG leaves a thin band of in-between values along the edges)
_PIXEL_BINARY_SHARE = 0.95
_PIXEL_EDGE = 32


def _binary_pixel_mask(
    context: CheckContext, target: str, kept: np.ndarray, offending: set[int], classes: int
) -> bool:
    """A 2-class (N, H, W) mask of 0-255 pixel values that one threshold (127) splits honestly.

    Only when nearly every pixel is near black or near white: a palette or greyscale mask
    with several grey levels has no threshold that recovers its classes.
    """
    spatial = np.asarray(context.arrays[target]).ndim >= 3
    if not spatial or classes != 2 or offending == {255} or kept.size == 0:
        return False
    low, high = int(kept.min()), int(kept.max())
    if low < 0 or high < 128 or high > 255:
        return False
    near_edges = (kept <= _PIXEL_EDGE) | (kept >= 255 - _PIXEL_EDGE)
    return bool(near_edges.mean() >= _PIXEL_BINARY_SHARE) and bool((kept >= 128).any())


def _pixel_value_fix(target: str, present: np.ndarray, classes: int) -> str:
    """A mask saved as pixel values (greyscale, a palette, JPEG edges) instead of class indices."""
    shown = ", ".join(str(int(v)) for v in present[:_LISTED]) + (
        f" and {present.size - _LISTED} more" if present.size > _LISTED else ""
    )
    mapping = (
        f"threshold it: ({target} > 127).long()"
        if classes == 2
        else "map each pixel value to its class where the masks are read (a lookup table from "
        "the palette)"
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
    positions = text.positions(context, target, bad)
    error = _range_error(context, target, values, bad)
    yield finding(
        "class-index-out-of-range",
        Severity.ERROR,
        f"{target} from {context.source(target)} holds {int(bad.sum())} class indices outside 0..{classes - 1} "
        f"(and not the padding -1): {_counts_text(offending, counts)}; first at {text.where(positions)}"
        + (f'; torch raises "{error}"' if error else ""),
        f"each row lists class indices 0..{classes - 1}, then pads with -1",
        blocking=True,
        count=int(bad.sum()),
        values=[int(v) for v in offending[:_LISTED]],
        classes=classes,
        first_positions=positions,
        **_quoted(error),
    )


def check_all_targets_ignored(context: CheckContext) -> Iterator[Finding]:
    """Every target equals ignore_index: the mean has nothing to average."""
    hard = hard_target(context)
    ignore = ignore_index(context)
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
        # nothing in these inputs can be fixed: the training loop skips such a batch
        remedies=(
            Remedy(
                outside=True,
                code=f"if ({target} != {ignore}).any(): loss = {context.spec.call}("
                + ", ".join(a.name for a in context.spec.arguments)
                + f", ignore_index={ignore})",
                note="skip batches with no labelled target",
            ),
        ),
        count=int(indices.size),
        ignore_index=ignore,
    )


# ---------------------------------------------------------------- padded token sequences

# a pad id is judged on at least this many sequences (rows of a (N, T) target)
_MIN_SEQUENCES = 4
# ... and must end at least this share of them: in a batch padded to its longest sequence
# most rows are shorter than the longest (8 LM rows of lengths 8..23 padded to 24: 7 of 8)
_PADDED_ROW_SHARE = 0.5
# ... with runs of at least two different lengths (an EOS that ends every row once, or rows
# truncated before their EOS, gives runs of 1 and 0 only), and filling at least this share
# of all target positions: 9.5% in 16 load_digits token sequences of 29 to 37 tokens, about
# 40% in LM batches of 8 to 23 tokens padded to 24
_PAD_POSITION_SHARE = 0.02
# ... while appearing at most this often among the positions before its runs start: a real
# pad id never occurs inside a sequence, a frequent token ("the", 5-10% of text) does
_PAD_INSIDE_RATE = 0.01


def _takes_token_targets(spec: LossSpec) -> bool:
    """cross-entropy, nll: one class index per position, with an ignore_index to leave pads out."""
    return takes_class_indices(spec) and spec.option("ignore_index") is not None


def _trailing_runs(indices: np.ndarray) -> np.ndarray:
    """How many positions at the end of each row of ``indices`` [rows, steps] equal its last value."""
    same = indices == indices[:, -1:]
    steps = indices.shape[1]
    last_other = np.where(~same, np.arange(steps), -1).max(axis=1)
    return (steps - 1 - last_other).astype(np.int64)


def count_sequence_ends(context: CheckContext) -> Totals:
    """Per class value: the rows of a [N, T] target that end in it, the lengths of those trailing
    runs (sum and sum of squares), and how often it occurs at all."""
    hard = hard_target(context)
    _, scores = prediction(context)
    if hard is None or scores.ndim != 3 or not target_lines_up(context):
        return {"all_sequences": False}
    indices = hard[1]
    if indices.ndim != 2 or indices.shape[1] < 2:
        return {"all_sequences": False}
    classes = class_count(scores)
    last = indices[:, -1]
    ending = (last >= 0) & (last < classes)
    runs = _trailing_runs(indices)[ending].astype(np.float64)
    values = indices[(indices >= 0) & (indices < classes)]
    return {
        "all_sequences": True,
        "rows": int(indices.shape[0]),
        "targets": int(indices.size),
        "ends": np.bincount(last[ending], minlength=classes),
        "trailing": np.bincount(last[ending], weights=runs, minlength=classes),
        "trailing_squares": np.bincount(last[ending], weights=runs**2, minlength=classes),
        "occurrences": np.bincount(values, minlength=classes),
    }


def check_padding_not_ignored(context: CheckContext) -> Iterator[Finding]:
    """A pad id fills the ends of token sequences and ignore_index is not that id."""
    totals = context.totals if context.totals is not None else count_sequence_ends(context)
    if not totals.get("all_sequences") or totals["rows"] < _MIN_SEQUENCES:
        return  # padding is only visible where the rows (sequences) are
    pad = int(np.argmax(totals["ends"]))
    ignore = ignore_index(context)
    if pad == ignore:
        return
    rows, size = int(totals["rows"]), int(totals["targets"])
    padded_rows = int(totals["ends"][pad])
    pad_positions = int(totals["trailing"][pad])
    # at least two different run lengths: the runs' variance is above 0
    varying = totals["trailing_squares"][pad] * padded_rows > totals["trailing"][pad] ** 2 + 0.5
    inside = int(totals["occurrences"][pad]) - pad_positions
    before_runs = size - pad_positions
    if (
        padded_rows < _PADDED_ROW_SHARE * rows
        or pad_positions < _PAD_POSITION_SHARE * size
        or not varying
        or inside > _PAD_INSIDE_RATE * before_runs
    ):
        return
    target = context.spec.arguments[1].name
    name = context.spec.arguments[0].name
    ignore_text = "left at its default -100" if ignore == -100 else f"is {ignore}"
    yield finding(
        "padding-not-ignored",
        Severity.WARNING,
        f"{target} from {context.source(target)} ends {padded_rows} of its {rows} sequences with "
        f"runs of {pad} of varying length (on average {text.number(pad_positions / padded_rows)} "
        f"positions; {pad_positions} of {size} targets, {text.percent(pad_positions, size)}), "
        f"and {pad} appears only {inside} times before a run starts: {pad} is the pad id. "
        f"ignore_index {ignore_text}, so every pad position counts in the loss as a class "
        "to predict, and the pads dilute (or dominate) the loss of the real tokens",
        f"leave the padding out of the loss: {context.spec.call}({name}, {target}, "
        f"ignore_index={pad}) (or set the pad positions of the labels to -100, as Hugging Face "
        "collators do)",
        remedies=(
            Remedy(
                options=(("ignore_index", pad),),
                note=f"{pad} pads the sequences to one length",
            ),
        ),
        pad=pad,
        padded_rows=padded_rows,
        rows=rows,
        pad_positions=pad_positions,
        inside=inside,
    )


# ---------------------------------------------------------------- soft and multi-hot targets


def check_soft_targets(context: CheckContext) -> Iterator[Finding]:
    """Cross-entropy targets shaped like the input: one-hot, multi-hot, or not distributions."""
    if not context.soft_target:
        return
    target = context.spec.arguments[1].name
    values = np.asarray(context.inputs[target].values)
    if values.size == 0 or values.ndim < 2:
        return
    kind = classify(values, class_axis=1)
    rows = kind.rows
    if rows is None:
        return
    if kind.kind is Kind.ONE_HOT:
        yield _one_hot_target(context, target, values, rows.count)
        return
    if kind.kind is Kind.MULTI_HOT and rows.ones_max >= 2:
        several = round(rows.fraction_several_ones * rows.count)
        yield finding(
            "multilabel-target",
            Severity.WARNING,
            f"{target} {text.shape_text(values.shape)} from {context.source(target)} holds 0/1 with several ones in "
            f"{several} of {rows.count} rows (up to {rows.ones_max}): this is multi-label, but cross-entropy's "
            "softmax makes the classes compete for one probability mass",
            "use one sigmoid per class: F.binary_cross_entropy_with_logits(logits, "
            f"{target}.float())",
            remedies=_multilabel_remedies(target, values, ("bce-logits", "multilabel-soft-margin")),
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
    remedies = (
        Remedy(
            maps=(f"{target} = {target} / {target}.sum(1, keepdim=True)",),
            note="if each row holds the class weights of one sample",
        )
        if negative == 0
        else Remedy(
            maps=(f"{target} = {target}.softmax(1)",),
            note="if the target holds a teacher's scores (logits)",
        ),
    )
    if kind.integral and kind.distinct:
        fix = _labels_per_position_fix(target, values.shape, kind.distinct)
        remedies = (_labels_per_position_remedy(target, values.shape, kind.distinct),)
    negatives = f"; {negative} entries are negative" if negative else ""
    yield finding(
        "soft-target-not-distribution",
        Severity.WARNING,
        f"{target} from {context.source(target)} is read as class probabilities, but {int(off.sum())} of "
        f"{sums.size} rows do not sum to 1 (row sums min {text.number(float(sums.min()))}, median "
        f"{text.number(float(np.median(sums)))}, max {text.number(float(sums.max()))}){negatives}: the loss is "
        "scaled per row and can go below its true minimum",
        fix,
        remedies=remedies,
        rows_off=int(off.sum()),
        rows=int(sums.size),
        row_sum_median=float(np.median(sums)),
    )


def _one_hot_target(context: CheckContext, target: str, values: np.ndarray, rows: int) -> Finding:
    """A one-hot cross-entropy target: torch reads float rows as probabilities, refuses integer ones.

    Text has no dtype (a CSV of 0/1 columns is read as the loss needs); an integer array
    (``F.one_hot`` gives int64) makes torch raise, so the training script cannot run.
    """
    argument = context.spec.arguments[1]
    loaded = context.inputs[target]
    refused = (
        bool(argument.integer_probabilities_error)
        and values.dtype.kind in "biu"
        and not loaded.from_text
    )
    shape = text.shape_text(values.shape)
    remedies = (Remedy(maps=(f"{target} = {target}.argmax(1)",)),)
    if refused:
        error = torch_error(argument.integer_probabilities_error, str(values.dtype))
        return finding(
            "one-hot-target",
            Severity.WARNING,
            f"{target} {shape} from {context.source(target)} is a one-hot table of {values.dtype} (exactly one "
            f'1 in each of {rows} rows): {context.spec.call} raises "RuntimeError: {error}" on it; '
            "losscli read it as class probabilities (cast to float) to compute the value",
            f"pass class indices: {target}.argmax(1) (F.one_hot(...).float() would also run, but rules "
            "out --ignore-index)",
            remedies=remedies,
            rows=rows,
            dtype=str(values.dtype),
            torch_error=error,
        )
    return finding(
        "one-hot-target",
        Severity.INFO,
        f"{target} {shape} from {context.source(target)} is one-hot (exactly one 1 in "
        f"each of {rows} rows): cross-entropy reads it as class probabilities, which gives the same "
        "value as class indices but rules out ignore_index and costs C times the memory",
        f"pass class indices: {target}.argmax(1) (then --weight and --ignore-index work)",
        remedies=remedies,
        rows=rows,
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
    logits = text.shape_text((shape[0], choices, *shape[1:]))
    return (
        f"these are class labels ({labels}), {shape[1]} per sample, not probabilities: give one "
        f"logit per label value, logits shaped {logits}, and target {indices} shaped "
        f"{text.shape_text(shape)} (the K-dimensional case of F.cross_entropy)"
    )


def _labels_per_position_remedy(
    target: str, shape: tuple[int, ...], distinct: tuple[float, ...]
) -> Remedy:
    """The model change for K labels per sample: one logit per label value at each position."""
    low, high = int(min(distinct)), int(max(distinct))
    choices = high - low + 1
    indices = f"{target} - {low}" if low > 0 else (f"{target} + {-low}" if low < 0 else target)
    logits = text.shape_text((shape[0], choices, *shape[1:]))
    return Remedy(
        outside=True,
        code=f"give the model {choices} outputs per label, logits shaped {logits}, and pass "
        f"{target} = ({indices}).long()",
        note=f"if {target} holds {shape[1]} labels per sample",
    )


def _multilabel_remedies(
    target: str, values: np.ndarray, losses: tuple[str, ...]
) -> tuple[Remedy, ...]:
    """Multi-hot targets on a loss made for multi-label: one sigmoid per class.

    The 0/1 table is the target as it is (cast to float: both losses take float targets).
    """
    maps = () if values.dtype.kind == "f" else (f"{target} = {target}.float()",)
    return tuple(
        Remedy(maps=maps, loss=loss, note="several classes per sample: one sigmoid per class")
        for loss in losses
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
        f"{target} {text.shape_text(values.shape)} from {context.source(target)} holds only 0 and 1: a multi-hot "
        f"table ({several} of {rows.shape[0]} rows have a 1), but {spec.name} reads each row as a list of "
        "class indices ending at the first -1, so each row names at most classes 0 and 1 and the value is wrong",
        "on multi-hot targets use multilabel-soft-margin (F.multilabel_soft_margin_loss) or "
        f"bce-logits; for {spec.name}, list each sample's classes then pad with -1: "
        "[c for c in range(C) if row[c]] + [-1] * (C - row.sum())",
        remedies=_multilabel_remedies(target, values, ("multilabel-soft-margin", "bce-logits")),
        rows=int(rows.shape[0]),
    )


# ---------------------------------------------------------------- the unit interval, signs, counts


def check_target_unit_interval(context: CheckContext) -> Iterator[Finding]:
    """Binary targets are the probability of the positive class: they must lie in [0, 1]."""
    spec = context.spec
    for argument in spec.arguments:
        if argument.role is not Role.BINARY_TARGET:
            continue
        targets = as_float(context.arrays[argument.name])
        # torch's bce rejects anything outside [0, 1]; elsewhere a rounding hair above 1
        # (soft labels averaged in float32) changes nothing
        blocking = spec.input_domain is Domain.PROBABILITIES
        # soft labels averaged in float16 round up to 1 + 2^-10: a rounding unit of slack
        slack = 0.0 if blocking else max(_UNIT_SLACK, stored_eps(context, argument.name))
        outside = np.isfinite(targets) & ((targets < -slack) | (targets > 1 + slack))
        count = int(outside.sum())
        if not count:
            continue
        kind = classify(context.inputs[argument.name].values)
        encoding = _encoding(kind.distinct, kind.integral, kind.min, kind.max)
        first = text.first(context, argument.name, outside)
        source = context.source(argument.name)
        message = (
            f"{spec.name} wants {argument.name} in [0, 1] (the probability of the positive class), "
            f"but {argument.name} ({source}) holds {count} of {targets.size} values outside it "
            f"({text.percent(count, targets.size)}; min {text.number(kind.min)}, max {text.number(kind.max)}; "
            f"first at {text.position(first)}: {text.number(targets[outside][0])})"
        )
        yield finding(
            "target-outside-unit-interval",
            Severity.ERROR,
            message,
            _unit_interval_fix(context, argument.name, encoding, kind),
            blocking=blocking,
            remedies=_unit_interval_remedies(context, argument.name, encoding, kind),
            argument=argument.name,
            count=count,
            min=kind.min,
            max=kind.max,
            first_position=list(first),
        )


class _Encoding(enum.Enum):
    """How targets outside [0, 1] for a binary loss were most likely encoded."""

    MASK_255 = "a 0/255 mask"
    VOID_255 = "255 marks void pixels in a 0/1 mask"
    SIGNS = "-1/+1 labels"
    PADDING = "-1 marks padding or ignored entries"
    TWO_LABELS = "two labels other than 0 and 1"
    PIXELS = "0-255 pixel values"
    CLASS_INDICES = "class indices"
    CONTINUOUS = "values with no encoding to read"


def _encoding(distinct: tuple[float, ...], integral: bool, low: float, high: float) -> _Encoding:
    """The one reading of the values that both the fix's sentence and its remedies follow
    (``distinct``: the distinct values when there are few, else empty)."""
    values = set(distinct)
    if values and values <= {0.0, 255.0}:
        return _Encoding.MASK_255
    if values and values <= {0.0, 1.0, 255.0}:
        return _Encoding.VOID_255
    if values and values <= {-1.0, 1.0}:
        return _Encoding.SIGNS
    if values and values <= {-1.0, 0.0, 1.0}:
        return _Encoding.PADDING
    if len(values) == 2 and integral:
        return _Encoding.TWO_LABELS
    if integral and low >= 0 and 128 <= high <= 255:
        return _Encoding.PIXELS
    if integral and low >= 0 and high > 1:
        return _Encoding.CLASS_INDICES
    return _Encoding.CONTINUOUS


def _two_labels(distinct: tuple[float, ...]) -> tuple[int, int]:
    """The negative and the positive label of a two-label target (the larger is positive)."""
    negative, positive = (int(v) for v in sorted(set(distinct)))
    return negative, positive


def _unit_interval_fix(
    context: CheckContext, name: str, encoding: _Encoding, kind: ArrayKind
) -> str:
    """The sentence of the fix for ``encoding`` of the values ``kind`` describes."""
    stored = context.inputs[name].values.dtype
    if encoding is _Encoding.MASK_255:
        return (
            f"the target is a 0/255 mask (stored as {stored}): divide by 255, "
            f"`{name} = {name}.float() / 255`"
        )
    if encoding is _Encoding.VOID_255:
        return (
            "255 marks void/ignored pixels in a 0/1 mask: leave them out of the loss, "
            f"`valid = {name} != 255; loss_fn(input[valid], {name}[valid].float())`"
        )
    if encoding is _Encoding.SIGNS:
        return (
            f"the target holds {{-1, 1}} labels: map them to {{0, 1}} with `{name} = ({name} + 1) / 2`"
            + (f", or keep the signs with {context.spec.on_signs}" if context.spec.on_signs else "")
        )
    if encoding is _Encoding.PADDING:
        return (
            f"-1 looks like padding or an ignore label: drop those entries, "
            f"`valid = {name} >= 0; loss_fn(input[valid], {name}[valid])`"
        )
    if encoding is _Encoding.TWO_LABELS:
        negative, positive = _two_labels(kind.distinct)
        return (
            f"the target holds two labels, {negative} and {positive}: map them to 0 and 1, "
            f"`{name} = ({name} == {positive}).float()`"
        )
    if encoding is _Encoding.PIXELS:
        return f"whole numbers up to {text.number(kind.max)} look like 0-255 pixel values: `{name} = {name} / 255`"
    if encoding is _Encoding.CLASS_INDICES:
        return (
            f"whole numbers from {text.number(kind.min)} to {text.number(kind.max)} look like class indices: for one class "
            "per sample use cross-entropy on one logit per class (F.cross_entropy); for several labels per "
            f"sample pass one 0/1 column per class, `F.one_hot({name}, num_classes).float()`"
        )
    return (
        f"scale {name} into [0, 1] (the probability of the positive class); if these are regression "
        "targets, use a regression loss (F.mse_loss)"
    )


def _unit_interval_remedies(
    context: CheckContext, name: str, encoding: _Encoding, kind: ArrayKind
) -> tuple[Remedy, ...]:
    """Maps from ``encoding`` onto [0, 1].

    Class indices get cross-entropy when the input has one logit per class for each of
    them. No remedy for a 255 void label or -1 padding (dropping those entries is not a
    map), nor for continuous values (no scale can be read from the data).
    """
    if encoding in (_Encoding.MASK_255, _Encoding.PIXELS):
        return (Remedy(maps=(f"{name} = {name} / 255",), note=encoding.value),)
    if encoding is _Encoding.SIGNS:
        signs = Remedy(maps=(f"{name} = ({name} + 1) / 2",), note="-1/+1 labels: -1 becomes 0")
        if context.spec.on_signs:
            return (
                signs,
                Remedy(
                    loss=context.spec.on_signs,
                    note=f"-1/+1 labels kept as signs: {context.spec.on_signs} on the logits",
                ),
            )
        return (signs,)
    if encoding is _Encoding.TWO_LABELS:
        negative, positive = _two_labels(kind.distinct)
        return (
            Remedy(
                maps=(f"{name} = ({name} == {positive}).float()",),
                note=f"two labels: {positive} is the positive class, {negative} the negative",
            ),
        )
    if encoding is _Encoding.CLASS_INDICES and context.spec.on_class_indices:
        _, scores = prediction(context)
        target = np.asarray(context.arrays[name])
        one_logit_per_class = (
            scores.ndim == target.ndim + 1
            and scores.ndim >= 2
            and scores.shape[0] == target.shape[0]
            and scores.shape[1] > kind.max
        )
        if one_logit_per_class:
            return (
                Remedy(
                    loss=context.spec.on_class_indices,
                    note=f"one class per sample: the {scores.shape[1]} columns are logits of classes",
                ),
            )
    return ()


def check_sign_target(context: CheckContext) -> Iterator[Finding]:
    """Targets that must be -1 or 1."""
    spec = context.spec
    for argument in spec.arguments:
        if argument.role is not Role.SIGN_TARGET:
            continue
        targets = as_float(context.arrays[argument.name])
        wrong = np.isfinite(targets) & (targets != 1) & (targets != -1)
        count = int(wrong.sum())
        if not count:
            continue
        kind = classify(context.inputs[argument.name].values)
        first = text.first(context, argument.name, wrong)
        source = context.source(argument.name)
        name = argument.name
        if kind.integral and kind.distinct:
            values, counts = np.unique(targets[wrong], return_counts=True)
            seen = ", ".join(
                f"{text.number(v)} ×{int(c)}" for v, c in list(zip(values, counts, strict=True))[:6]
            )
            seen_text = f"values {seen}"
        else:
            fractional = int((np.isfinite(targets) & (np.floor(targets) != targets)).sum())
            seen_text = (
                f"continuous values from {text.number(kind.min)} to {text.number(kind.max)}, "
                f"{fractional} not whole numbers"
            )
        message = (
            f"{spec.name} wants {name} in {{-1, 1}}, but {name} ({source}) holds {count} of "
            f"{targets.size} values that are neither ({text.percent(count, targets.size)}: {seen_text}; "
            f"first at {text.position(first)}: {text.number(targets[wrong][0])})"
        )
        remedies: tuple[Remedy, ...] = ()
        if kind.zero_one:
            message += f"; {spec.name} has no class 0, so every 0 label adds a meaningless term"
            fix = f"map {{0, 1}} labels to {{-1, 1}}: `{name} = {name} * 2 - 1`"
            remedies = (
                Remedy(maps=(f"{name} = {name} * 2 - 1",), note="0/1 labels: 0 becomes -1"),
            )
        elif kind.integral and len(kind.distinct) == 2:
            negative, positive = (str(int(v)) for v in kind.distinct)
            fix = (
                f"map the two labels to {{-1, 1}}: "
                f"`{name} = torch.where({name} == {positive}, 1.0, -1.0)`"
            )
            remedies = (
                Remedy(
                    maps=(f"{name} = torch.where({name} == {positive}, 1.0, -1.0)",),
                    note=f"two labels: {positive} becomes 1, {negative} becomes -1",
                ),
            )
        elif kind.integral:
            fix = (
                f"build {{-1, 1}} labels: 1 for the similar (or first-ranked) pairs, -1 for the "
                f"others, `{name} = torch.where(same, 1.0, -1.0)`"
            )
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
            remedies=remedies,
            argument=name,
            count=count,
            min=kind.min,
            max=kind.max,
            first_position=list(first),
        )


def check_negative_poisson_target(context: CheckContext) -> Iterator[Finding]:
    """Poisson targets are counts, never negative."""
    for argument in context.spec.arguments:
        if argument.role is not Role.COUNT_TARGET:
            continue
        targets = as_float(context.arrays[argument.name])
        negative = np.isfinite(targets) & (targets < 0)
        count = int(negative.sum())
        if not count:
            continue
        name = argument.name
        first = text.first(context, name, negative)
        yield finding(
            "negative-poisson-target",
            Severity.ERROR,
            f"poisson-nll wants {name} as counts (>= 0), but {name} ({context.source(name)}) holds {count} "
            f"negative values of {targets.size} ({text.percent(count, targets.size)}; min "
            f"{text.number(float(targets[negative].min()))}; first at {text.position(first)}: "
            f"{text.number(targets[negative][0])})",
            f"pass the raw counts: if {name} was standardised or log-transformed for a regression loss, "
            "undo that (poisson-nll models the counts themselves)",
            argument=name,
            count=count,
            min=float(targets[negative].min()),
            first_position=list(first),
        )


# ---------------------------------------------------------------- kl-div distributions


def check_kl_target(context: CheckContext) -> Iterator[Finding]:
    """kl-div's target is a distribution per row (log-probabilities with log_target)."""
    spec = context.spec
    name = next(a.name for a in spec.arguments if a.role is Role.DISTRIBUTION_TARGET)
    input_name = spec.arguments[0].name
    targets = as_float(context.arrays[name])
    predictions = as_float(context.arrays[input_name])
    log_target = bool(context.options.get("log_target", False))
    source = context.source(name)
    finite = np.isfinite(targets)
    if not finite.any():
        return
    axes = class_axes(targets)
    eps = stored_eps(context, name)
    axis = 1 if targets.ndim >= 2 else 0  # the class dim of [batch, classes, ...]
    if not log_target:
        negative = finite & (targets < 0)
        count = int(negative.sum())
        if count:
            if looks_like_log_probabilities(targets, eps):
                if looks_like_probabilities(predictions, stored_eps(context, input_name)):
                    return  # the arguments are swapped: kl-input-not-log says so
                fix = (
                    f"{name} holds log-probabilities (rows of exp({name}) sum to 1): pass --log-target "
                    "(in PyTorch, nn.KLDivLoss(log_target=True))"
                )
                remedies: tuple[Remedy, ...] = (
                    Remedy(options=(("log_target", True),), note="log-probabilities as the target"),
                )
            else:
                fix = (
                    f"{name} must be probabilities: `{name} = F.softmax(teacher_logits, dim=1)` "
                    "(or pass log-probabilities with --log-target)"
                )
                remedies = (
                    Remedy(
                        maps=(f"{name} = {name}.softmax({axis})",),
                        note="if the target holds the teacher's logits",
                    ),
                )
            first = text.first(context, name, negative)
            yield finding(
                "kl-target-not-distribution",
                Severity.ERROR,
                f"kl-div wants {name} as probabilities, but {name} ({source}) holds {count} negative "
                f"values of {targets.size} ({text.percent(count, targets.size)}; min "
                f"{text.number(float(targets[negative].min()))}; first at {text.position(first)})",
                fix,
                remedies=remedies,
                argument=name,
                negative=count,
                first_position=list(first),
            )
            return
        probabilities = targets
    else:
        positive = finite & (targets > POSITIVE_SLACK)
        if positive.any():
            count = int(positive.sum())
            first = text.first(context, name, positive)
            probabilities_given = looks_like_probabilities(targets, eps)
            yield finding(
                "kl-target-not-distribution",
                Severity.ERROR,
                f"kl-div with --log-target wants {name} as log-probabilities (<= 0), but {name} ({source}) "
                f"holds {count} positive values of {targets.size} (max {text.number(float(targets[finite].max()))}; "
                f"first at {text.position(first)})"
                + ("; its rows are probabilities summing to 1" if probabilities_given else ""),
                (
                    "drop --log-target (log_target=False): the target holds probabilities"
                    if probabilities_given
                    else f"pass `{name} = F.log_softmax(teacher_logits, dim=1)` with --log-target"
                ),
                remedies=(
                    (Remedy(options=(("log_target", None),), note="probabilities as the target"),)
                    if probabilities_given
                    else (
                        Remedy(
                            maps=(f"{name} = {name}.log_softmax({axis})",),
                            note="if the target holds the teacher's logits",
                        ),
                    )
                ),
                argument=name,
                positive=count,
                first_position=list(first),
            )
            return
        probabilities = np.exp(targets)
    rows = row_sums(probabilities, axes, eps)
    if rows is None or not rows.off.any():
        return
    off = int(rows.off.sum())
    space = f"exp({name})" if log_target else name
    dim = "the only dim" if targets.ndim <= 1 else f"dim {rows.axis}"
    yield finding(
        "kl-target-not-distribution",
        Severity.ERROR,
        f"kl-div wants each row of {space} to sum to 1 (over {dim}), but {off} of {rows.sums.size} rows of "
        f"{name} ({source}) do not ({text.percent(off, rows.sums.size)}; sums from {text.number(float(rows.sums.min()))} "
        f"to {text.number(float(rows.sums.max()))}, median {text.number(float(np.median(rows.sums)))}; first: row "
        f"{_global_row(context, targets, rows.axis, rows.first_row)})",
        (
            f"pass `{name} = F.log_softmax(teacher_logits, dim={rows.axis})` with --log-target"
            if log_target
            else f"normalise the target: `{name} = F.softmax(teacher_logits, dim={rows.axis})` "
            f"(or `{name} / {name}.sum(dim={rows.axis}, keepdim=True)`)"
        ),
        remedies=(
            Remedy(
                maps=(f"{name} = {name}.log_softmax({rows.axis})",),
                note="renormalise the log-probabilities",
            )
            if log_target
            else Remedy(
                maps=(f"{name} = {name} / {name}.sum({rows.axis}, keepdim=True)",),
                note="if each row holds unnormalised weights",
            ),
        ),
        argument=name,
        rows_off=off,
        rows=int(rows.sums.size),
        dim=rows.axis,
        sum_min=float(rows.sums.min()),
        sum_max=float(rows.sums.max()),
    )


def _global_row(context: CheckContext, values: np.ndarray, axis: int, row: int) -> int:
    """Row ``row`` of ``rows_of(values, axis)`` numbered as a row of all the data.

    Each sample's rows are consecutive ([batch, classes] rows are the samples), so the
    row's sample maps through the context. A 1-D array is one row across the samples (a
    distribution over the batch dimension): there is no sample to name, so it stays row 0.
    """
    if values.ndim < 2:
        return row
    per_sample = values[0].size // values.shape[axis]
    return context.sample(row // per_sample) * per_sample + row % per_sample


# ---------------------------------------------------------------- ctc labels and lengths


def check_ctc_label_range(context: CheckContext) -> Iterator[Finding]:
    """CTC labels within the target lengths must be class indices 0..C-1 of the log_probs."""
    ctc = ctc_batch(context)
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
    padded = np.asarray(context.arrays[name]).ndim == 2
    remedies: tuple[Remedy, ...] = ()
    if low < 0:
        fix = (
            f"{low} inside the target lengths is padding counted as labels: pass {lengths_name} "
            f"that count only the real labels"
            + (f" (e.g. `{lengths_name} = ({name} >= 0).sum(1)`)" if padded else "")
        )
        if padded:  # (batch, S) targets padded at the end: count the labels before the padding
            remedies = (
                Remedy(
                    maps=(f"{lengths_name} = ({name} >= 0).sum(1)",),
                    note="if the negative values pad each row after its labels",
                ),
            )
    else:
        fix = (
            f"the log_probs have {classes} classes (the blank included) but labels reach {high}: "
            f"give the output layer {high + 1} classes, or check the label encoding"
        )
        remedies = (
            Remedy(
                outside=True,
                code=f"give the output layer {high + 1} classes (nn.Linear(..., {high + 1}))",
                note=f"if the labels 1..{high} are all characters",
            ),
        )
    yield finding(
        "class-index-out-of-range",
        Severity.ERROR,
        f"ctc {name} ({context.source(name)}) hold {wrong.size} labels outside 0..{classes - 1} "
        f"inside their target lengths in {len(hits)} of {len(ctc.labels)} samples (values "
        f"{text.number(low)} to {text.number(high)}; first: sample {context.sample(first_sample)}, position "
        f"{int(first_where[0])}): torch reads a log-probability that does not exist",
        fix,
        blocking=True,  # out of range: torch reads outside the class dim
        remedies=remedies,
        argument=name,
        count=int(wrong.size),
        min=low,
        max=high,
        samples=[context.sample(n) for n, _ in hits[:10]],
    )


def check_ctc_blank_in_targets(context: CheckContext) -> Iterator[Finding]:
    """The blank index is reserved: a label equal to it cannot be emitted as a label."""
    ctc = ctc_batch(context)
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
    unused = sorted(set(range(classes)) - {int(label) for label in used})
    # the model's last class, when no label uses it, may be the blank it was trained with
    last_free = (
        Remedy(
            options=(("blank", classes - 1),),
            note=f"if the model's last class ({classes - 1}) is its blank",
        )
        if unused and unused[-1] == classes - 1
        else None
    )
    remedies: tuple[Remedy, ...]
    if blank == 0 and highest + 1 <= classes - 1:
        fix = (
            f"the labels start at 0, which CTC reserves for the blank: shift them, `{name} = {name} + 1` "
            f"(labels 1..{highest + 1} still fit the {classes} classes)"
        )
        shift = Remedy(
            maps=(f"{name} = {name} + 1",),
            note="if the labels are 0-based and the model's class 0 is the blank",
        )
        remedies = (shift,) if last_free is None else (shift, last_free)
    elif blank == 0:
        fix = (
            f"the labels start at 0, which CTC reserves for the blank: give the model one more output "
            f"class and shift the labels, `{name} = {name} + 1`"
        )
        remedies = (
            Remedy(
                outside=True,
                code=f"give the output layer {classes + 1} classes (nn.Linear(..., {classes + 1})) "
                f"and pass {name} + 1",
                note="class 0 kept for the blank",
            ),
        )
    else:
        fix = (
            f"choose a blank no label uses: --blank {unused[-1]}"
            if unused
            else "every class index is used as a label: give the model one more output class for the blank"
        )
        remedies = (
            (Remedy(options=(("blank", unused[-1]),), note="a class no label uses"),)
            if unused
            else (
                Remedy(
                    outside=True,
                    code=f"give the output layer {classes + 1} classes (nn.Linear(..., "
                    f"{classes + 1})) and pass blank={classes}",
                    note="one more class for the blank",
                ),
            )
        )
    yield finding(
        "ctc-blank-in-targets",
        Severity.ERROR,
        f"ctc {name} ({context.source(name)}) hold the blank index {blank} inside their target lengths "
        f"{'once' if total == 1 else f'{total} times'} in {len(hits)} of {len(ctc.labels)} samples "
        f"(first: sample {context.sample(first_sample)}, position {int(first_where[0])}): the blank "
        "means 'no label', so those labels can never be matched",
        fix,
        remedies=remedies,
        argument=name,
        blank=blank,
        count=total,
        samples=[context.sample(n) for n, _ in hits[:10]],
    )


def check_ctc_target_too_long(context: CheckContext) -> Iterator[Finding]:
    """A target needs one frame per label plus one per repeated adjacent pair."""
    ctc = ctc_batch(context)
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
            f"{beyond.size} of {ctc.input_lengths.size} samples (first: sample {context.sample(n)}, length "
            f"{int(ctc.input_lengths[n])}): torch rejects it",
            f"pass the lengths after the model's downsampling, at most T={time} "
            f"(e.g. `{lengths[0]} = (raw_lengths + stride - 1) // stride`)",
            blocking=True,
            samples=[context.sample(int(i)) for i in beyond[:10]],
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
        f"sample {context.sample(int(n))} needs {int(needed[n])} frames ({int(ctc.target_lengths[n])} labels + "
        f"{int(needed[n] - ctc.target_lengths[n])} repeated pairs) but has {int(ctc.input_lengths[n])}"
        for n in short[:_LISTED_SAMPLES]
    )
    zero_infinity = bool(context.options.get("zero_infinity", False))
    few = short.size <= _FEW_IMPOSSIBLE * needed.size
    if zero_infinity and few:
        return  # the user skips a few impossible samples: the rest still teach
    outcome = (
        "--zero-infinity sets their loss to 0, so they teach nothing"
        if zero_infinity
        else "their loss is inf, and so is the mean"
    )
    remedies = (
        (
            Remedy(
                options=(("zero_infinity", True),),
                note=f"skip the {short.size} impossible samples (their loss becomes 0)",
            ),
        )
        if few and not zero_infinity
        else ()
    )
    yield finding(
        "ctc-target-too-long",
        Severity.WARNING if zero_infinity else Severity.ERROR,
        f"{short.size} of {needed.size} ctc targets need more frames than their input length allows "
        f"({listed}): {outcome}",
        (
            "downsample the time axis less, or drop/split these samples"
            if zero_infinity
            else "downsample the time axis less or shorten the targets; to skip impossible samples, "
            "pass --zero-infinity (in PyTorch, nn.CTCLoss(zero_infinity=True))"
        ),
        remedies=remedies,
        samples=[context.sample(int(n)) for n in short[:10]],
        needed=[int(needed[n]) for n in short[:10]],
        input_lengths=[int(ctc.input_lengths[n]) for n in short[:10]],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        check_class_index_range,
        ("class-index-out-of-range",),
        Scope.CHUNK,
        applies=_indexes_classes,
    ),
    # every target ignored in all of the data is every target ignored in every chunk
    Check(
        check_all_targets_ignored,
        ("all-targets-ignored",),
        Scope.CHUNK,
        applies=_ignores_an_index,
        combine=Combine.ALL,
    ),
    # the ends of whole sequences (rows), counted per class over every chunk of rows
    Check(
        check_padding_not_ignored,
        ("padding-not-ignored",),
        Scope.TOTALS,
        applies=_takes_token_targets,
        collect=count_sequence_ends,
    ),
    # one-hot, multi-hot or not summing to 1: judged on the rows as a whole
    Check(
        check_soft_targets,
        ("one-hot-target", "multilabel-target", "soft-target-not-distribution"),
        Scope.SAMPLE,
        applies=_takes_class_probabilities,
    ),
    Check(
        check_multi_hot_index_target,
        ("multilabel-target",),
        Scope.SAMPLE,
        applies=_takes_multilabel_indices,
    ),
    Check(
        check_target_unit_interval,
        ("target-outside-unit-interval",),
        Scope.CHUNK,
        applies=has_role(Role.BINARY_TARGET),
    ),
    Check(
        check_sign_target,
        ("sign-target-expected",),
        Scope.CHUNK,
        applies=has_role(Role.SIGN_TARGET),
    ),
    Check(
        check_negative_poisson_target,
        ("negative-poisson-target",),
        Scope.CHUNK,
        applies=has_role(Role.COUNT_TARGET),
    ),
    # row by row: each sample's distribution lies in its chunk
    Check(
        check_kl_target,
        ("kl-target-not-distribution",),
        Scope.CHUNK,
        applies=has_role(Role.DISTRIBUTION_TARGET),
    ),
    Check(check_ctc_label_range, ("class-index-out-of-range",), Scope.CHUNK, applies=is_ctc),
    Check(check_ctc_blank_in_targets, ("ctc-blank-in-targets",), Scope.CHUNK, applies=is_ctc),
    Check(check_ctc_target_too_long, ("ctc-target-too-long",), Scope.CHUNK, applies=is_ctc),
)
