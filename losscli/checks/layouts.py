"""Layouts: how each loss family pairs its arguments' shapes, and what torch does when they differ.

Each loss family (``LossSpec.layout``) pairs its arguments differently; one function per
layout compares the shapes torch will see and names the dimensions the way a reader thinks
of them ("cross-entropy wants input (N, C) and target (N,); N=4 in pred.npy but N=3 in
true.csv"). A finding is ``blocking`` when torch cannot compute at all; a broadcast that
torch computes silently is an error that still lets torch run, so the wrong value is shown.

Class-index patterns with a finding of their own (an (N, 1) target, channels-last logits)
are left to their checks in :mod:`losscli.checks.shapes`, except that channels-last logits
also get the blocking ``shape-mismatch`` here when torch cannot compute them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from losscli import stable, text
from losscli.checks import CheckContext
from losscli.checks.arguments import Shape, extra_target_dim, ignore_index
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.losses import Activation, Broadcasting, Domain, DType, Layout, LossSpec, Role

# target roles that must match the prediction's shape element for element
_ELEMENTWISE_TARGETS = (
    Role.TARGET,
    Role.BINARY_TARGET,
    Role.SIGN_TARGET,
    Role.COUNT_TARGET,
    Role.DISTRIBUTION_TARGET,
)
# layouts whose arguments torch broadcasts against each other whatever the loss's broadcasting
_GROUPS = (Layout.PAIRED_SCORES, Layout.PAIRED_EMBEDDINGS, Layout.TRIPLET)


def compare(context: CheckContext) -> Iterator[Finding]:
    """The shape findings of the loss's layout (nothing when an input is empty)."""
    if any(context.arrays[a.name].size == 0 for a in context.spec.arguments):
        return  # empty-input says it; nothing else about shapes is meaningful
    yield from _BY_LAYOUT[context.spec.layout](context)


def may_broadcast(spec: LossSpec) -> bool:
    """torch broadcasts some pair of this loss's arguments silently (``silent-broadcast``).

    Element-wise pairs broadcast unless ``spec.broadcasting`` is NONE; the pairs, triplets
    and embeddings broadcast together; class scores and ctc never do.
    """
    if spec.layout in (Layout.ELEMENTWISE, Layout.GAUSSIAN):
        return spec.broadcasting is not Broadcasting.NONE
    return spec.layout in _GROUPS


def class_dim_names(ndim: int) -> tuple[str, ...]:
    """Dimension names of a ``[batch, classes, ...]`` input: N, C, then L / H, W / D, H, W."""
    spatial = {0: (), 1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(
        ndim - 2, tuple(f"d{i + 1}" for i in range(ndim - 2))
    )
    return ("N", "C", *spatial)[:ndim]


def _names(names: Sequence[str]) -> str:
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def _mismatch(
    name: str, message: str, fix: str, remedies: tuple[Remedy, ...] = (), **evidence: Any
) -> Finding:
    return finding(name, Severity.ERROR, message, fix, blocking=True, remedies=remedies, **evidence)


def _batches_differ(
    message: str, fix: str, remedies: tuple[Remedy, ...] = (), **evidence: Any
) -> Finding:
    """``batch-size-mismatch``: whatever else may help, the batches themselves differ."""
    return _mismatch("batch-size-mismatch", message, fix, (*remedies, _OTHER_BATCHES), **evidence)


# inputs with different batch sizes hold different samples: nothing in them can pair them
_OTHER_BATCHES = Remedy(
    outside=True,
    code="save every input from the same batch, in the same order",
    note="the inputs hold different samples (a dropped last batch, a shuffled loader on one "
    "side, files from different runs)",
)


# ---------------------------------------------------------------- element-wise pairs


def _elementwise(context: CheckContext) -> Iterator[Finding]:
    """Element-wise losses need every target shaped exactly like the prediction."""
    spec = context.spec
    prediction = spec.arguments[0].name
    for argument in spec.arguments[1:]:
        if argument.role in _ELEMENTWISE_TARGETS:
            yield from _pair(context, prediction, argument.name, spec.broadcasting)


def _pair(
    context: CheckContext, first: str, second: str, broadcasting: Broadcasting
) -> Iterator[Finding]:
    """``second`` must be shaped like ``first``; say what torch does when it is not."""
    spec = context.spec
    shape_a: Shape = context.arrays[first].shape
    shape_b: Shape = context.arrays[second].shape
    if shape_a == shape_b:
        return
    shapes = {first: list(shape_a), second: list(shape_b)}
    broadcast = _broadcast(shape_a, shape_b)
    wants = f"{spec.name} wants {second} shaped like {first}"
    if broadcast is None:
        if len(shape_a) >= 2 and len(shape_b) >= 1 and shape_a[0] != shape_b[0]:
            yield _batches_differ(
                f"{wants} (N, ...); N={shape_a[0]} in {context.source(first)} but "
                f"N={shape_b[0]} in {context.source(second)} "
                f"({first} {text.shape_text(shape_a)}, {second} {text.shape_text(shape_b)})",
                _same_samples_fix(first, second),
                shapes=shapes,
            )
            return
        yield _mismatch(
            "shape-mismatch",
            f"{wants}: {text.described(context, first)}, {text.described(context, second)}",
            _reshape_fix(shape_a, shape_b, first, second),
            _pair_remedies(context, first, second),
            shapes=shapes,
        )
        return
    raises = broadcasting is Broadcasting.NONE or (
        broadcasting is Broadcasting.INTO_INPUT and broadcast != shape_a
    )
    if raises:
        yield _mismatch(
            "shape-mismatch",
            f"{wants} exactly (torch raises otherwise): {text.described(context, first)}, "
            f"{text.described(context, second)}",
            _channel_fix(context, first, second) or _reshape_fix(shape_a, shape_b, first, second),
            _pair_remedies(context, first, second),
            shapes=shapes,
        )
        return
    fix = _channel_fix(context, first, second) or _reshape_fix(shape_a, shape_b, first, second)
    remedies = _pair_remedies(context, first, second)
    if not remedies and len(shape_b) >= 2 and shape_b[0] == 1 and broadcast[0] > 1:
        fix = f"give {second} one row per sample, shaped {text.shape_text(shape_a)}"
        remedies = (
            Remedy(
                outside=True,
                code=f"save {second} with one row per sample, shaped {text.shape_text(shape_a)}",
                note=f"{second} holds one row that torch repeats for every sample",
            ),
        )
    elif not remedies and len(shape_a) >= 2 and shape_a[0] == 1 and broadcast[0] > 1:
        # the prediction holds one sample: the model ran on one example (or a batch was averaged)
        fix = (
            f"{first} holds predictions for 1 sample but {second} has {shape_b[0]}: run the model on "
            f"the whole batch so that {first} is shaped {text.shape_text(shape_b)} (check for a "
            f"batch size of 1, a [0] index or a mean over dim 0 before the loss)"
        )
        remedies = (
            Remedy(
                outside=True,
                code=f"run the model on the whole batch so that {first} is shaped "
                f"{text.shape_text(shape_b)}",
                note=f"{first} holds predictions for one sample",
            ),
        )
    yield finding(
        "silent-broadcast",
        Severity.ERROR,
        _broadcast_message(context, first, second, broadcast),
        fix,
        remedies=remedies,
        shapes=shapes,
        broadcast=list(broadcast),
    )


def _broadcast(*shapes: Shape) -> Shape | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _broadcast_message(context: CheckContext, first: str, second: str, broadcast: Shape) -> str:
    size_a = context.arrays[first].size
    size_b = context.arrays[second].size
    terms = math.prod(broadcast)
    head = (
        f"{text.described(context, first)} and {text.described(context, second)} broadcast to "
        f"{text.shape_text(broadcast)}"
    )
    if terms > max(size_a, size_b):
        verb = {"sum": "sums", "none": "returns"}.get(
            str(context.options.get("reduction")), "averages"
        )
        return (
            f"{head}: torch pairs every {first} with every {second} and {verb} {terms} terms "
            f"instead of {max(size_a, size_b)}; the value is wrong and torch at most warns"
        )
    smaller = second if size_b < size_a else first
    shape_small = context.arrays[smaller].shape
    if len(shape_small) >= 2 and shape_small[0] == 1 and broadcast[0] > 1:
        return (
            f"{head}: {smaller} holds one sample that torch repeats for all {broadcast[0]} "
            "samples, instead of pairing sample with sample"
        )
    return (
        f"{head}: torch repeats the {context.arrays[smaller].size} value(s) of {smaller} "
        f"across the other's {max(size_a, size_b)}, instead of pairing sample with sample"
    )


def _reshape_fix(shape_a: Shape, shape_b: Shape, first: str, second: str) -> str:
    """The one-line PyTorch change that makes ``second`` line up with ``first``."""
    squeezed = _squeeze_axis(shape_a, shape_b)
    if squeezed is not None:
        return f"squeeze the extra dimension: pass {first}.squeeze({squeezed}) (shape {text.shape_text(shape_b)})"
    squeezed = _squeeze_axis(shape_b, shape_a)
    if squeezed is not None:
        return f"squeeze the extra dimension: pass {second}.squeeze({squeezed}) (shape {text.shape_text(shape_a)})"
    if math.prod(shape_a) == math.prod(shape_b):
        return f"same number of values in another layout: pass {second}.view_as({first}) if the order matches"
    return (
        f"give {second} one value per element of {first} ({math.prod(shape_a)} values shaped "
        f"{text.shape_text(shape_a)}); {math.prod(shape_b)} were given"
    )


def _squeeze_remedies(
    shape_a: Shape, shape_b: Shape, first: str, second: str
) -> tuple[Remedy, ...]:
    """Squeeze ``second``'s extra dimension of size 1 (only ``second``: ``first`` is the reference)."""
    axis = _squeeze_axis(shape_b, shape_a)
    if axis is None:
        return ()
    return (Remedy(maps=(f"{second} = {second}.squeeze({axis})",)),)


def _pair_remedies(context: CheckContext, first: str, second: str) -> tuple[Remedy, ...]:
    """The changes that line ``second`` up with ``first``, element for element.

    An extra dimension of size 1 on either side is squeezed; a flattened side is given the
    other's shape (when the values are in the same order); C channels against a one-channel
    target are a model with too many outputs (or, for logits against class indices, class
    scores for cross-entropy). Empty when the shapes alone say nothing concrete.
    """
    shape_a: Shape = context.arrays[first].shape
    shape_b: Shape = context.arrays[second].shape
    axis = _squeeze_axis(shape_a, shape_b)
    if axis is not None:
        # or the target gains the dimension: other arguments may be shaped like the
        # prediction (gaussian-nll's var (N, 1) beside means (N, 1))
        return (
            Remedy(maps=(f"{first} = {first}.squeeze({axis})",)),
            Remedy(
                maps=(f"{second} = {second}.unsqueeze({axis})",),
                note=f"if the other inputs are shaped like {first}",
            ),
        )
    axis = _squeeze_axis(shape_b, shape_a)
    if axis is not None:
        return (Remedy(maps=(f"{second} = {second}.squeeze({axis})",)),)
    channels = _channels(shape_a, shape_b)
    if channels is not None:
        return _channel_remedies(context, first, second, channels)
    if math.prod(shape_a) == math.prod(shape_b) and 1 in (len(shape_a), len(shape_b)):
        flat, other = (second, shape_a) if len(shape_b) == 1 else (first, shape_b)
        dims = ", ".join(str(d) for d in other)
        return (
            Remedy(
                maps=(f"{flat} = {flat}.reshape({dims})",),
                note=f"if {flat} holds the same values flattened in row-major order",
            ),
        )
    return ()


def _channels(shape_a: Shape, shape_b: Shape) -> int | None:
    """C when ``shape_a`` is [batch, C, ...] with C > 1 and ``shape_b`` the same with C = 1."""
    if len(shape_a) < 2 or len(shape_a) != len(shape_b) or shape_b[1] != 1 or shape_a[1] < 2:
        return None
    if shape_a[:1] + shape_a[2:] != shape_b[:1] + shape_b[2:]:
        return None
    return int(shape_a[1])


_HEAD = {2: "nn.Linear(..., {c})", 3: "nn.Conv1d(..., {c}, kernel_size=1)"}


def _channel_remedies(
    context: CheckContext, first: str, second: str, channels: int
) -> tuple[Remedy, ...]:
    """C output channels against a one-channel target: one output channel, or C classes."""
    ndim = context.arrays[first].ndim
    head = _HEAD.get(ndim, f"nn.Conv{ndim - 2}d(..., {{c}}, kernel_size=1)").format(c=1)
    one = Remedy(
        outside=True,
        code=f"give the model one output channel ({head}) so that {first} is shaped "
        f"{text.shape_text(context.arrays[second].shape)}",
        note=f"{second} is a binary target: one logit per element",
    )
    target = np.asarray(context.arrays[second])
    integral = (
        target.size > 0
        and target.dtype.kind in "biuf"
        and bool(np.all(np.isfinite(target)))
        and bool(np.all(target == np.round(target)))
        and float(target.min()) >= 0
        and float(target.max()) < channels
    )
    if context.spec.activation is not Activation.SIGMOID or not integral:
        return (one,)
    return (
        one,
        Remedy(
            loss="cross-entropy",
            maps=(f"{second} = {second}.squeeze(1).long()",),
            note=f"if the {channels} channels are class scores (softmax over them) and {second} "
            "holds class indices",
        ),
    )


def _channel_fix(context: CheckContext, first: str, second: str) -> str:
    """The sentence for C output channels against a one-channel target; empty otherwise."""
    channels = _channels(context.arrays[first].shape, context.arrays[second].shape)
    if channels is None:
        return ""
    return (
        f"{first} has {channels} channels where {second} has 1: a binary target wants one output "
        f"channel; {channels} channels of class scores go to F.cross_entropy with "
        f"{second}.squeeze(1).long()"
    )


def _squeeze_axis(longer: Shape, shorter: Shape) -> int | None:
    """The axis of size 1 in ``longer`` whose removal gives ``shorter``."""
    if len(longer) != len(shorter) + 1:
        return None
    for axis, size in enumerate(longer):
        if size == 1 and longer[:axis] + longer[axis + 1 :] == shorter:
            return axis
    return None


def _same_samples_fix(first: str, second: str) -> str:
    return (
        f"pass {first} and {second} from the same batch, in the same order (a dropped last batch, "
        "a shuffled loader on one side, or files from different runs)"
    )


# ---------------------------------------------------------------- gaussian-nll


def _gaussian(context: CheckContext) -> Iterator[Finding]:
    """input and target element-wise; var like input, one dimension fewer, or 1 in one dimension."""
    spec = context.spec
    prediction = spec.arguments[0].name
    shape_i: Shape = context.arrays[prediction].shape
    for argument in spec.arguments[1:]:
        if argument.role not in _ELEMENTWISE_TARGETS:
            continue
        if _gaussian_target_fits(shape_i, context.arrays[argument.name].shape):
            continue
        yield from _pair(context, prediction, argument.name, spec.broadcasting)
    variance = spec.argument(Role.VARIANCE)
    if variance is None:
        return
    shape_v: Shape = context.arrays[variance.name].shape
    if _variance_fits(shape_i, shape_v):
        return
    accepted = [text.shape_text(shape_i)]
    if shape_i:
        accepted.append(text.shape_text(shape_i[:-1]))
        accepted.append(text.shape_text((*shape_i[:-1], 1)))
    shapes = {prediction: list(shape_i), variance.name: list(shape_v)}
    if shape_i and shape_v and shape_v[0] not in (shape_i[0], 1):
        yield _batches_differ(
            f"{spec.name} wants {variance.name} with one variance per sample of {prediction}; "
            f"N={shape_i[0]} in {context.source(prediction)} but N={shape_v[0]} in "
            f"{context.source(variance.name)}",
            _same_samples_fix(prediction, variance.name),
            shapes=shapes,
        )
        return
    yield _mismatch(
        "shape-mismatch",
        f"{spec.name} wants {variance.name} shaped {' or '.join(dict.fromkeys(accepted))} "
        f"against {text.described(context, prediction)} (torch: 'var is of incorrect size'); "
        f"got {text.described(context, variance.name)}",
        _reshape_fix(shape_i, shape_v, prediction, variance.name),
        _squeeze_remedies(shape_i, shape_v, prediction, variance.name),
        shapes=shapes,
    )


def _gaussian_target_fits(shape_i: Shape, shape_t: Shape) -> bool:
    """torch's documented target broadcasting in ``GaussianNLLLoss`` ("same shape as the input
    but with one dimension equal to 1"), within each sample.

    A target (N, 1) against means (N, K) (K heads or K draws predicting one value), or
    (N, 1, H, W) against (N, C, H, W): every element of the result pairs a mean with its own
    sample's target, and the result keeps the input's shape. The batch dimension is not
    among them: a target of 1 sample against N is not the same samples. Different numbers of
    dimensions ((N,) against (N, 1)) broadcast into an (N, N) grid and stay findings.
    """
    if len(shape_t) != len(shape_i) or len(shape_i) < 2 or shape_t[0] != shape_i[0]:
        return False
    differ = [axis for axis, (i, t) in enumerate(zip(shape_i, shape_t, strict=True)) if i != t]
    return len(differ) == 1 and shape_t[differ[0]] == 1


def _variance_fits(shape_i: Shape, shape_v: Shape) -> bool:
    """torch's rule in ``gaussian_nll_loss``: the legitimate variance shapes."""
    if shape_v == shape_i or shape_v == shape_i[:-1]:
        return True
    if len(shape_v) != len(shape_i):
        return False
    return sum(v for i, v in zip(shape_i, shape_v, strict=True) if i != v) == 1


# ---------------------------------------------------------------- class scores


def _class_scores(context: CheckContext) -> Iterator[Finding]:
    """cross-entropy / nll: input [batch, classes, d1, ...], target [batch, d1, ...] or like input."""
    spec = context.spec
    prediction, target = spec.arguments[0].name, spec.arguments[1].name
    shape_i: Shape = context.arrays[prediction].shape
    shape_t: Shape = context.arrays[target].shape
    shapes = {prediction: list(shape_i), target: list(shape_t)}
    if len(shape_i) == 0:
        yield _mismatch(
            "shape-mismatch",
            f"{spec.name} wants {prediction} (N, C) with one score per class; "
            f"{text.described(context, prediction)} is a single number",
            "pass the class scores of every sample, shaped (N, C); one score per sample is a "
            "binary task (F.binary_cross_entropy_with_logits)",
            shapes=shapes,
        )
        return
    if len(shape_i) == 1:
        yield from _unbatched_class_scores(context, prediction, target)
        return
    names = class_dim_names(len(shape_i))
    wanted: Shape = (shape_i[0], *shape_i[2:])
    takes_probabilities = spec.arguments[1].dtype is DType.CLASS
    if shape_t == wanted or (shape_t == shape_i and takes_probabilities):
        return
    if extra_target_dim(shape_i, shape_t) is not None:
        return  # target-has-extra-dim (shapes.check_target_extra_dim)
    hard_names = _names((names[0], *names[2:]))
    wants = f"{spec.name} wants {prediction} {_names(names)} and {target} {hard_names}"
    if takes_probabilities and len(shape_t) == len(shape_i):
        wants += f" (class indices) or {_names(names)} (class probabilities)"
    if len(shape_i) >= 3 and shape_t == shape_i[:-1]:
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; {text.described(context, prediction)} has its classes last "
            f"(C={shape_i[-1]}), so it does not line up with {text.described(context, target)}",
            f"move the class dimension to position 1: {prediction}.permute({_permute_last_to_1(len(shape_i))})",
            (
                Remedy(
                    maps=(
                        f"{prediction} = {prediction}.permute({_permute_last_to_1(len(shape_i))})",
                    ),
                ),
            )
            if _indices_below(context, target, shape_i[-1])
            else (),
            shapes=shapes,
        )
        return
    if shape_t and shape_t[0] != shape_i[0] and len(shape_t) in (len(shape_i) - 1, len(shape_i)):
        yield _batches_differ(
            f"{wants}; N={shape_i[0]} in {context.source(prediction)} but N={shape_t[0]} in "
            f"{context.source(target)} ({prediction} {text.shape_text(shape_i)}, {target} {text.shape_text(shape_t)})",
            _flatten_fix(shape_i, shape_t, prediction, target)
            or _reorder_fix(shape_i, shape_t, prediction)
            or _same_samples_fix(prediction, target),
            _layout_remedies(shape_i, shape_t, prediction, target),
            shapes=shapes,
        )
        return
    fix = (
        _flatten_fix(shape_i, shape_t, prediction, target)
        or _reorder_fix(shape_i, shape_t, prediction)
        or _resolution_fix(shape_i, shape_t, prediction, target)
    )
    remedies = _layout_remedies(shape_i, shape_t, prediction, target) or _resolution_remedies(
        shape_i, shape_t, prediction
    )
    if not fix and len(shape_t) == len(shape_i) and takes_probabilities:
        fix = (
            f"probability targets need one column per class: {target} shaped "
            f"{text.shape_text(shape_i)}; class indices need {text.shape_text(wanted)}"
        )
    elif not fix and len(shape_t) == len(shape_i):
        fix = f"{spec.name} takes class indices {text.shape_text(wanted)}: pass {target}.argmax(1) if {target} is one-hot"
    if not remedies and shape_t == shape_i:
        remedies = _one_hot_remedies(context, target)
    yield _mismatch(
        "shape-mismatch",
        f"{wants}; got {text.described(context, prediction)} and {text.described(context, target)}",
        fix or f"reshape {target} to {text.shape_text(wanted)}",
        remedies,
        shapes=shapes,
    )


# ---------------------------------------------------------------- classes first or last, by fit


# the classes-last reading must beat torch's reading by this many nats per target position
# (cross-entropy of the targets under log_softmax over each candidate class dimension). An
# untrained token model's logits differ by under 0.05 nats between the readings; a trained
# one by 1 nat or more in favour of the dimension it was trained with
LAYOUT_NATS = 0.25
# ... on at least this many target positions
LAYOUT_MIN_POSITIONS = 32
# ... and beyond chance: the mean of the per-position differences at least this many standard
# errors above zero. Random logits against random labels differ between the readings by
# 0.25 nats on 32 positions often enough to matter (a near miss of the check corpus did);
# 4 standard errors happens by chance about once in 30,000 batches, while a trained model's
# 1 nat or more stands 5 or more standard errors clear from 32 positions on
LAYOUT_STANDARD_ERRORS = 4.0


@dataclass(frozen=True)
class LayoutFit:
    """The targets' fit when the class scores are read along dimension 1 and along the last."""

    as_given: float
    classes_last: float
    accuracy_as_given: float
    accuracy_classes_last: float
    positions: int


def _fit_along(
    scores: np.ndarray, indices: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, float]:
    """The cross-entropy of each kept target position under ``scores`` [N, C, ...] (classes
    at 1), and the accuracy."""
    log_probs = stable.log_softmax(scores, axis=1)
    safe = np.where(keep, indices, 0)
    picked = np.take_along_axis(log_probs, safe[:, None], axis=1)[:, 0]
    predicted = scores.argmax(axis=1)
    return -picked[keep], float((predicted == indices)[keep].mean())


def classes_last_fits_better(
    scores: np.ndarray, indices: np.ndarray, ignore: int | None
) -> LayoutFit | None:
    """The fit when ``scores`` read with the classes on the last dimension fits the targets
    clearly better than torch's reading (classes on dimension 1); None otherwise.

    For shapes where both readings line up with the targets ((N, T, C) logits with T == C).
    """
    values = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return None
    keep = indices != ignore if ignore is not None else np.ones(indices.shape, dtype=bool)
    classes = values.shape[1]
    if int(keep.sum()) < LAYOUT_MIN_POSITIONS or not np.all(
        (indices[keep] >= 0) & (indices[keep] < classes)
    ):
        return None
    moved = np.moveaxis(values, -1, 1)
    as_given, accuracy_given = _fit_along(values, indices, keep)
    classes_last, accuracy_last = _fit_along(moved, indices, keep)
    better = as_given - classes_last
    gain = float(better.mean())
    standard_error = float(better.std(ddof=1)) / np.sqrt(better.size)
    if gain < LAYOUT_NATS or gain < LAYOUT_STANDARD_ERRORS * standard_error:
        return None
    return LayoutFit(
        float(as_given.mean()),
        float(classes_last.mean()),
        accuracy_given,
        accuracy_last,
        int(keep.sum()),
    )


def _indices_below(context: CheckContext, target: str, classes: int) -> bool:
    """Every class index of ``target`` (but ``ignore_index``) lies in 0..classes-1."""
    values = np.asarray(context.arrays[target])
    if values.dtype.kind not in "biuf" or not bool(np.all(np.isfinite(values))):
        return False
    ignore = ignore_index(context)
    kept = values[values != ignore] if ignore is not None else values.reshape(-1)
    return kept.size > 0 and float(kept.min()) >= 0 and float(kept.max()) < classes


def _one_hot_remedies(context: CheckContext, target: str) -> tuple[Remedy, ...]:
    """``target.argmax(1)`` when ``target`` is one-hot along dimension 1 (0/1, one 1 per row)."""
    values = np.asarray(context.arrays[target])
    if values.ndim < 2 or values.size == 0 or values.dtype.kind not in "biuf":
        return ()
    if not bool(np.all((values == 0) | (values == 1))) or not bool(np.all(values.sum(axis=1) == 1)):
        return ()
    maps = [f"{target} = {target}.argmax(1)"]
    prediction = context.spec.arguments[0].name
    scores = np.asarray(context.arrays[prediction])
    if context.spec.input_domain is Domain.LOG_PROBABILITIES and bool((scores > 0).any()):
        # nll on raw scores: the argmax alone would uncover logits-to-nll
        maps.append(f"{prediction} = {prediction}.log_softmax(1)")
        return (
            Remedy(
                maps=tuple(maps),
                note=f"{target} is one-hot and {prediction} holds logits (positive scores)",
            ),
        )
    return (Remedy(maps=tuple(maps), note=f"{target} is one-hot"),)


def _layout_remedies(
    shape_i: Shape, shape_t: Shape, prediction: str, target: str
) -> tuple[Remedy, ...]:
    """The maps behind :func:`_flatten_fix` and :func:`_reorder_fix`: one side flattened,
    or the input's axes in another order."""
    if len(shape_i) == 2 and len(shape_t) >= 2 and math.prod(shape_t) == shape_i[0]:
        return (
            Remedy(
                maps=(f"{target} = {target}.reshape(-1)",),
                note=f"{prediction} is flattened to (N*..., C)",
            ),
        )
    if (
        len(shape_i) >= 3
        and len(shape_t) == 1
        and shape_t[0] == math.prod((shape_i[0], *shape_i[2:]))
    ):
        dims = ", ".join(str(d) for d in (shape_i[0], *shape_i[2:]))
        return (
            Remedy(maps=(f"{target} = {target}.reshape({dims})",), note=f"{target} is flattened"),
        )
    order = _reorder(shape_i, shape_t)
    if order is None:
        return ()
    axes = ", ".join(str(axis) for axis in order)
    return (
        Remedy(
            maps=(f"{prediction} = {prediction}.permute({axes})",),
            note=f"{prediction} holds the right sizes in another order",
        ),
    )


def _resolution_remedies(shape_i: Shape, shape_t: Shape, prediction: str) -> tuple[Remedy, ...]:
    """Segmentation logits at another resolution: resize them (a change to the model code)."""
    if len(shape_i) < 3 or len(shape_t) != len(shape_i) - 1 or shape_t[0] != shape_i[0]:
        return ()
    if shape_i[2:] == shape_t[1:]:
        return ()
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(len(shape_i) - 2, "nearest")
    size = ", ".join(str(d) for d in shape_t[1:])
    return (
        Remedy(
            outside=True,
            code=f"{prediction} = F.interpolate({prediction}, size=({size}), mode='{mode}') "
            "before the loss",
            note="the logits come out at another resolution than the mask",
        ),
    )


def _unbatched_class_scores(
    context: CheckContext, prediction: str, target: str
) -> Iterator[Finding]:
    """A 1-D input is one sample with C classes: the target must be one class index."""
    spec = context.spec
    shape_i: Shape = context.arrays[prediction].shape
    shape_t: Shape = context.arrays[target].shape
    if context.arrays[target].size == 1 and len(shape_t) <= 1:
        return
    if shape_t == shape_i and context.soft_target:
        return
    yield _mismatch(
        "shape-mismatch",
        f"{spec.name} reads the 1-D {text.described(context, prediction)} as ONE sample with "
        f"C={shape_i[0]} classes, so it wants a single target index; got {text.described(context, target)}",
        "one score per sample is a binary task (F.binary_cross_entropy_with_logits); a batch "
        "of class scores must be shaped (N, C)",
        unbatched_remedies(context, prediction, target),
        shapes={prediction: list(shape_i), target: list(shape_t)},
    )


def unbatched_remedies(context: CheckContext, name: str, target: str) -> tuple[Remedy, ...]:
    """A 1-D class-score input: binary scores of N samples (bce-logits), or one sample.

    One target value per score reads as N binary samples; a single class index as one sample
    of C classes, given its batch dimension.
    """
    scores = context.arrays[name]
    targets = context.arrays[target]
    if targets.size == 1 and scores.size > 1:
        maps = [f"{name} = {name}.unsqueeze(0)"]
        if targets.ndim == 0:
            maps.append(f"{target} = {target}.unsqueeze(0)")
        return (Remedy(maps=tuple(maps), note="if this is one sample of class scores"),)
    if tuple(targets.shape) != tuple(scores.shape):
        return ()
    cast = (f"{target} = {target}.float()",) if np.asarray(targets).dtype.kind in "biu" else ()
    return (
        Remedy(
            loss="bce-logits",
            maps=cast,
            note="if these are binary scores, one per sample, with 0/1 labels",
        ),
    )


def _reorder_fix(shape_i: Shape, shape_t: Shape, prediction: str) -> str:
    """The permute that turns ``prediction`` into [batch, classes, ...] lined up with ``shape_t``.

    A time-major decoder output (T, N, C) against batch-first targets (N, T) needs
    ``permute(1, 2, 0)``. Empty when no reordering of the input's axes lines up, or when
    several do and disagree (then the shapes alone cannot say which axis is which).
    """
    order = _reorder(shape_i, shape_t)
    if order is None:
        return ""
    return (
        f"{prediction} {text.shape_text(shape_i)} holds the right sizes in another order: pass "
        f"{prediction}.permute({', '.join(str(axis) for axis in order)}) (shape "
        f"{text.shape_text(tuple(shape_i[axis] for axis in order))}, classes at dimension 1)"
    )


def _reorder(shape_i: Shape, shape_t: Shape) -> tuple[int, ...] | None:
    """The axis order of :func:`_reorder_fix`, or None."""
    if len(shape_i) != len(shape_t) + 1 or len(shape_i) > 5:
        return None
    found: set[tuple[int, ...]] = set()
    for order in itertools.permutations(range(len(shape_i))):
        moved = tuple(shape_i[axis] for axis in order)
        if order != tuple(range(len(shape_i))) and (moved[0], *moved[2:]) == shape_t:
            found.add(order)
    orders = sorted(found, key=lambda order: order[1] != len(shape_i) - 1)  # classes last first
    if not orders:
        return None
    moved_shapes = {tuple(shape_i[axis] for axis in order) for order in orders}
    if len(moved_shapes) > 1:
        return None
    return orders[0]


def _resolution_fix(shape_i: Shape, shape_t: Shape, prediction: str, target: str) -> str:
    """Segmentation logits at another resolution than the mask (an output stride, a resize)."""
    if len(shape_i) < 3 or len(shape_t) != len(shape_i) - 1 or shape_t[0] != shape_i[0]:
        return ""
    size_i, size_t = shape_i[2:], shape_t[1:]
    if size_i == size_t:
        return ""
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(len(size_i), "nearest")
    size = ", ".join(str(d) for d in size_t)
    return (
        f"{prediction} is {'x'.join(map(str, size_i))} but {target} is {'x'.join(map(str, size_t))}: "
        f"resize the logits to the mask, F.interpolate({prediction}, size=({size}), mode='{mode}'), "
        f"or resize {target} to {text.shape_text((shape_t[0], *size_i))} with mode='nearest' (an "
        "interpolating resize would invent class indices)"
    )


def _permute_last_to_1(ndim: int) -> str:
    return ", ".join(str(axis) for axis in (0, ndim - 1, *range(1, ndim - 1)))


def _flatten_fix(shape_i: Shape, shape_t: Shape, prediction: str, target: str) -> str:
    """Fixes for a flattened side: (N*H*W, C) logits against (N, H, W) targets, or the reverse."""
    if len(shape_i) == 2 and len(shape_t) >= 2 and math.prod(shape_t) == shape_i[0]:
        return f"{prediction} is flattened to (N*..., C): flatten the target the same way, {target}.view(-1)"
    if (
        len(shape_i) >= 3
        and len(shape_t) == 1
        and shape_t[0] == math.prod((shape_i[0], *shape_i[2:]))
    ):
        wanted = text.shape_text((shape_i[0], *shape_i[2:]))
        return f"{target} is flattened: pass {target}.view{wanted}"
    return ""


def _class_scores_flat(context: CheckContext) -> Iterator[Finding]:
    """multi-margin: input [batch, classes] (or [classes]) and target [batch] (or one index)."""
    spec = context.spec
    prediction, target = spec.arguments[0].name, spec.arguments[1].name
    shape_i: Shape = context.arrays[prediction].shape
    shape_t: Shape = context.arrays[target].shape
    shapes = {prediction: list(shape_i), target: list(shape_t)}
    if len(shape_i) not in (1, 2):
        yield _mismatch(
            "shape-mismatch",
            f"{spec.name} wants {prediction} (N, C) and {target} (N,); got {text.described(context, prediction)}",
            f"{spec.name} has no spatial form: flatten to (N*..., C) with "
            f"{prediction}.movedim(1, -1).reshape(-1, C) and {target}.view(-1)",
            shapes=shapes,
        )
        return
    if len(shape_i) == 1:
        if context.arrays[target].size == 1 and len(shape_t) <= 1:
            return
        yield _mismatch(
            "shape-mismatch",
            f"{spec.name} reads the 1-D {text.described(context, prediction)} as one sample with "
            f"C={shape_i[0]} classes and wants one target index; got {text.described(context, target)}",
            f"give {prediction} as (N, C), one row of class scores per sample",
            shapes=shapes,
        )
        return
    if shape_t == (shape_i[0],) or extra_target_dim(shape_i, shape_t) is not None:
        return  # target-has-extra-dim (shapes.check_target_extra_dim) covers (N, 1)
    wants = f"{spec.name} wants {prediction} (N, C) and {target} (N,)"
    if shape_t and shape_t[0] != shape_i[0] and len(shape_t) == 1:
        yield _batch_mismatch(context, wants, prediction, target, shapes)
        return
    yield _mismatch(
        "shape-mismatch",
        f"{wants}; got {text.described(context, prediction)} and {text.described(context, target)}",
        f"pass class indices shaped ({shape_i[0]},)"
        + (f": {target}.argmax(1) if {target} is one-hot" if shape_t == shape_i else ""),
        _one_hot_remedies(context, target) if shape_t == shape_i else (),
        shapes=shapes,
    )


def _batch_mismatch(
    context: CheckContext, wants: str, prediction: str, target: str, shapes: dict[str, list[int]]
) -> Finding:
    """N differs between the prediction and the target: name N in each file."""
    n_prediction, n_target = shapes[prediction][0], shapes[target][0]
    return _batches_differ(
        f"{wants}; N={n_prediction} in {context.source(prediction)} but N={n_target} in "
        f"{context.source(target)}",
        _same_samples_fix(prediction, target),
        shapes=shapes,
    )


def _multilabel_indices(context: CheckContext) -> Iterator[Finding]:
    """multilabel-margin: target class indices shaped like the input, padded with -1."""
    spec = context.spec
    prediction, target = spec.arguments[0].name, spec.arguments[1].name
    shape_i: Shape = context.arrays[prediction].shape
    shape_t: Shape = context.arrays[target].shape
    shapes = {prediction: list(shape_i), target: list(shape_t)}
    wants = (
        f"{spec.name} wants {prediction} (N, C) and {target} (N, C): class indices padded with -1"
    )
    if len(shape_i) not in (1, 2):
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; got {text.described(context, prediction)}",
            f"flatten to (N*..., C): {prediction}.movedim(1, -1).reshape(-1, C)",
            shapes=shapes,
        )
        return
    if shape_t == shape_i:
        return
    if len(shape_i) == 2 and len(shape_t) == 2 and shape_t[0] != shape_i[0]:
        yield _batch_mismatch(context, wants, prediction, target, shapes)
        return
    columns = shape_i[-1]
    fix = (
        f"pad each row of {target} with -1 up to C={columns} columns: "
        f"F.pad({target}, (0, {columns - shape_t[-1]}), value=-1)"
        if len(shape_t) == len(shape_i) and shape_t[-1] < columns
        else f"give {target} shaped {text.shape_text(shape_i)}: each row lists the sample's classes, then -1"
    )
    yield _mismatch(
        "shape-mismatch",
        f"{wants}; got {text.described(context, prediction)} and {text.described(context, target)}",
        fix,
        shapes=shapes,
    )


# ---------------------------------------------------------------- ranking, embeddings, triplets


def _same_shape_group(context: CheckContext, names: Sequence[str], wants: str) -> Iterator[Finding]:
    """Arguments that torch wants with the same number of dimensions and broadcasts together."""
    shapes: dict[str, Shape] = {name: context.arrays[name].shape for name in names}
    evidence = {name: list(shape) for name, shape in shapes.items()}
    ndims = {len(shape) for shape in shapes.values()}
    first = names[0]
    if len(ndims) > 1:
        described = ", ".join(text.described(context, name) for name in names)
        longest = max(names, key=lambda name: len(shapes[name]))
        shortest = min(names, key=lambda name: len(shapes[name]))
        axis = _squeeze_axis(shapes[longest], shapes[shortest])
        fix = (
            f"squeeze the extra dimension: {longest}.squeeze({axis})"
            if axis is not None
            else f"give every input the same number of dimensions as {shortest}"
        )
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; torch needs the same number of dimensions in each: {described}",
            fix,
            _squeeze_group(shapes, shortest),
            shapes=evidence,
        )
        return
    for position, one in enumerate(names):
        for other in names[position + 1 :]:
            shape_a, shape_b = shapes[one], shapes[other]
            if _broadcast(shape_a, shape_b) is not None:
                continue
            if shape_a and shape_b and shape_a[0] != shape_b[0]:
                yield _batches_differ(
                    f"{wants}; N={shape_a[0]} in {context.source(one)} but N={shape_b[0]} in "
                    f"{context.source(other)}",
                    _same_samples_fix(one, other),
                    shapes=evidence,
                )
            else:
                yield _mismatch(
                    "shape-mismatch",
                    f"{wants}; {text.described(context, one)} and {text.described(context, other)} do not line up",
                    _reshape_fix(shape_a, shape_b, one, other),
                    shapes=evidence,
                )
            return
    broadcast = _broadcast(*shapes.values())
    if broadcast is None:
        return
    reference = next((name for name in names if shapes[name] == broadcast), first)
    for other in names:
        if shapes[other] == broadcast or other == reference:
            continue
        yield finding(
            "silent-broadcast",
            Severity.ERROR,
            _broadcast_message(context, reference, other, broadcast),
            f"give {other} one row per sample, shaped {text.shape_text(broadcast)}",
            shapes=evidence,
            broadcast=list(broadcast),
        )


def _squeeze_group(shapes: dict[str, Shape], shortest: str) -> tuple[Remedy, ...]:
    """Squeeze every input with an extra dimension of size 1 down to ``shortest``'s shape."""
    maps = []
    for name, shape in shapes.items():
        if len(shape) == len(shapes[shortest]):
            continue
        axis = _squeeze_axis(shape, shapes[shortest])
        if axis is None:
            return ()
        maps.append(f"{name} = {name}.squeeze({axis})")
    return (Remedy(maps=tuple(maps)),) if maps else ()


def _paired_scores(context: CheckContext) -> Iterator[Finding]:
    """margin-ranking: x1, x2 and y all [batch]."""
    names = [a.name for a in context.spec.arguments]
    wants = f"{context.spec.name} wants {', '.join(names)} all shaped (N,)"
    yield from _same_shape_group(context, names, wants)


def _triplet(context: CheckContext) -> Iterator[Finding]:
    """triplets: anchor, positive and negative all [batch, features]."""
    names = [a.name for a in context.spec.arguments]
    wants = f"{context.spec.name} wants {', '.join(names)} all shaped (N, D)"
    yield from _same_shape_group(context, names, wants)


def _paired_embeddings(context: CheckContext) -> Iterator[Finding]:
    """cosine-embedding: x1, x2 [batch, features] and y [batch] (or [features], [features], ())."""
    spec = context.spec
    first, second, labels = (a.name for a in spec.arguments)
    wants = f"{spec.name} wants {first} (N, D), {second} (N, D) and {labels} (N,)"
    shape_1: Shape = context.arrays[first].shape
    shape_y: Shape = context.arrays[labels].shape
    if len(shape_1) not in (1, 2) or len(context.arrays[second].shape) not in (1, 2):
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; got {text.described(context, first)} and {text.described(context, second)}",
            f"flatten each embedding to one vector per sample: {first}.flatten(1), {second}.flatten(1)",
            shapes={first: list(shape_1), second: list(context.arrays[second].shape)},
        )
        return
    group = list(_same_shape_group(context, [first, second], wants))
    yield from group
    if any(f.blocking for f in group):
        return
    evidence = {first: list(shape_1), labels: list(shape_y)}
    if len(shape_1) == 1:
        if shape_y == ():
            return
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; 1-D {text.described(context, first)} is one pair, so {labels} must be a single "
            f"number, not {text.shape_text(shape_y)} from {context.source(labels)}",
            f"give {first} and {second} as (N, D), one embedding per row",
            shapes=evidence,
        )
        return
    if len(shape_y) != 1:
        axis = _squeeze_axis(shape_y, (shape_1[0],))
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; got {text.described(context, labels)} (torch: '0D or 1D target tensor expected')",
            f"pass {labels}.squeeze({axis})" if axis is not None else f"pass {labels}.view(-1)",
            (Remedy(maps=(f"{labels} = {labels}.squeeze({axis})",)),) if axis is not None else (),
            shapes=evidence,
        )
        return
    if shape_y[0] == shape_1[0]:
        return
    if shape_y[0] == 1:
        yield finding(
            "silent-broadcast",
            Severity.ERROR,
            f"{text.described(context, labels)} holds one label that torch repeats for all "
            f"{shape_1[0]} pairs of {first}",
            f"give {labels} one label per pair: {shape_1[0]} values",
            shapes=evidence,
            broadcast=[shape_1[0]],
        )
        return
    yield _batches_differ(
        f"{wants}; N={shape_1[0]} in {context.source(first)} but N={shape_y[0]} in {context.source(labels)}",
        _same_samples_fix(first, labels),
        shapes=evidence,
    )


# ---------------------------------------------------------------- ctc


def _ctc(context: CheckContext) -> Iterator[Finding]:
    """ctc: log_probs [time, batch, classes], targets [batch, S] or concatenated, lengths [batch]."""
    spec = context.spec
    log_probs, targets, input_lengths, target_lengths = (a.name for a in spec.arguments)
    arrays = context.arrays
    shape_lp: Shape = arrays[log_probs].shape
    wants = (
        f"{spec.name} wants {log_probs} (T, N, C), {targets} (N, S) or concatenated "
        f"(sum of {target_lengths},), {input_lengths} (N,) and {target_lengths} (N,)"
    )
    evidence = {a.name: list(arrays[a.name].shape) for a in spec.arguments}
    if len(shape_lp) not in (2, 3):
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; got {text.described(context, log_probs)}",
            "give log_probs as (time, batch, classes): the model output after log_softmax(dim=2)",
            shapes=evidence,
        )
        return
    batch = shape_lp[1] if len(shape_lp) == 3 else 1
    steps = shape_lp[0]
    for lengths in (input_lengths, target_lengths):
        count = arrays[lengths].size
        if arrays[lengths].ndim > 2 or count == batch:
            continue
        fix = _same_samples_fix(log_probs, lengths)
        remedies: tuple[Remedy, ...] = ()
        if len(shape_lp) == 3 and shape_lp[0] == count:
            fix = (
                f"{log_probs} looks batch-first (N={shape_lp[0]}, T={shape_lp[1]}): "
                f"pass {log_probs}.transpose(0, 1)"
            )
            remedies = (
                Remedy(
                    maps=(f"{log_probs} = {log_probs}.transpose(0, 1)",),
                    note=f"{log_probs} is batch-first (batch, time, classes)",
                ),
            )
        yield _batches_differ(
            f"{wants}; N={batch} in {context.source(log_probs)} (dimension 1 of "
            f"{text.shape_text(shape_lp)}) but {lengths} from {context.source(lengths)} holds {count} lengths",
            fix,
            remedies,
            shapes=evidence,
        )
        return
    # the only values a shape check reads: ctc is never streamed, so these are all of them
    lengths_t = _finite_lengths(arrays[target_lengths])
    lengths_i = _finite_lengths(arrays[input_lengths])
    if lengths_i.size and float(lengths_i.max()) > steps:
        yield _mismatch(
            "shape-mismatch",
            f"{input_lengths} from {context.source(input_lengths)} goes up to {int(lengths_i.max())} "
            f"but {log_probs} has T={steps} time steps",
            f"input lengths count time steps of {log_probs} (dimension 0): at most {steps}",
            shapes=evidence,
        )
        return
    shape_t: Shape = arrays[targets].shape
    total = int(lengths_t.sum())
    longest = int(lengths_t.max()) if lengths_t.size else 0
    if len(shape_t) == 2 and len(shape_lp) == 3:
        if shape_t[0] != batch:
            yield _batches_differ(
                f"{wants}; N={batch} in {context.source(log_probs)} but N={shape_t[0]} in "
                f"{context.source(targets)}",
                _same_samples_fix(log_probs, targets),
                shapes=evidence,
            )
        elif shape_t[1] < longest:
            yield _mismatch(
                "shape-mismatch",
                f"{targets} from {context.source(targets)} has S={shape_t[1]} columns but "
                f"{target_lengths} goes up to {longest}",
                f"pad {targets} to the longest target ({longest} columns) or fix {target_lengths}",
                shapes=evidence,
            )
    elif len(shape_t) == 1 and len(shape_lp) == 3:
        if shape_t[0] != total:
            yield _mismatch(
                "shape-mismatch",
                f"concatenated {targets} from {context.source(targets)} hold {shape_t[0]} labels but "
                f"{target_lengths} from {context.source(target_lengths)} sum to {total}",
                f"concatenate exactly the labels counted by {target_lengths}, or pass {targets} "
                f"padded as (N, S)",
                shapes=evidence,
            )
    elif len(shape_t) > 2:
        yield _mismatch(
            "shape-mismatch",
            f"{wants}; got {text.described(context, targets)}",
            f"pass {targets} as (N, S) padded rows or one concatenated 1-D array",
            shapes=evidence,
        )


def _finite_lengths(values: np.ndarray) -> np.ndarray:
    """Lengths as a flat int64 array; empty when any is not a finite number (other checks say so)."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "biuf" or not np.all(np.isfinite(flat)):
        return np.zeros(0, dtype=np.int64)
    return flat.astype(np.int64)


_BY_LAYOUT: dict[Layout, Callable[[CheckContext], Iterator[Finding]]] = {
    Layout.ELEMENTWISE: _elementwise,
    Layout.GAUSSIAN: _gaussian,
    Layout.CLASS_SCORES: _class_scores,
    Layout.CLASS_SCORES_FLAT: _class_scores_flat,
    Layout.MULTILABEL_INDICES: _multilabel_indices,
    Layout.PAIRED_SCORES: _paired_scores,
    Layout.PAIRED_EMBEDDINGS: _paired_embeddings,
    Layout.TRIPLET: _triplet,
    Layout.CTC: _ctc,
}
