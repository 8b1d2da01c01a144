"""Shape checks: empty inputs, shapes and layouts that cannot work, options that do not fit the shapes.

The SHAPES checks read shapes, dtypes and options only (streamed input gives them zero
stand-ins of the full shapes); ``class-dim-last`` and ``unbatched-input`` also quote a
target's values, so they see the sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from losscli import text
from losscli.checks import Check, CheckContext, Scope, layouts
from losscli.checks.arguments import (
    class_axis,
    extra_target_dim,
    hard_target,
    ignore_index,
    prediction,
    takes_class_indices,
)
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.losses import Activation, Layout, LossSpec


def check_empty(context: CheckContext) -> Iterator[Finding]:
    """Every input needs at least one element."""
    for argument in context.spec.arguments:
        values = context.inputs[argument.name].values
        if values.size == 0:
            yield finding(
                "empty-input",
                Severity.ERROR,
                f"{argument.name} ({context.source(argument.name)}) has zero elements "
                f"(shape {text.shape_text(values.shape)})",
                "check the file or the column selection: an empty batch has no loss",
                blocking=True,
                argument=argument.name,
                shape=list(values.shape),
            )


def check_shapes(context: CheckContext) -> Iterator[Finding]:
    """Shapes that cannot work as the loss's layout pairs them: torch raises, or pairs the wrong samples."""
    yield from (f for f in layouts.compare(context) if f.name != "silent-broadcast")


def check_silent_broadcast(context: CheckContext) -> Iterator[Finding]:
    """Shapes that differ but broadcast: torch computes a wrong value and at most warns."""
    yield from (f for f in layouts.compare(context) if f.name == "silent-broadcast")


# ---------------------------------------------------------------- class scores


def _takes_softmax(spec: LossSpec) -> bool:
    return spec.activation is Activation.SOFTMAX


def _takes_class_scores(spec: LossSpec) -> bool:
    return spec.layout is Layout.CLASS_SCORES


def check_target_extra_dim(context: CheckContext) -> Iterator[Finding]:
    """A class-index target (N, 1) (or a mask (N, 1, H, W)) where torch wants (N,) / (N, H, W)."""
    spec = context.spec
    name, scores = prediction(context)
    target = spec.arguments[1].name
    shape_t = tuple(context.arrays[target].shape)
    axis = extra_target_dim(tuple(scores.shape), shape_t)
    if axis is None or scores.size == 0 or context.arrays[target].size == 0:
        return
    wanted = (scores.shape[0], *scores.shape[2:])
    yield finding(
        "target-has-extra-dim",
        Severity.ERROR,
        f"{target} {text.shape_text(shape_t)} from {context.source(target)} holds class indices with an "
        f"extra dimension of size 1: {spec.name} wants {text.shape_text(wanted)} for {name} "
        f"{text.shape_text(scores.shape)}"
        + (
            " (torch: '0D or 1D target tensor expected, multi-target not supported')"
            if scores.ndim == 2
            else ""
        ),
        f"squeeze it: {target}.squeeze({axis}).long()",
        blocking=True,
        remedies=(Remedy(maps=(f"{target} = {target}.squeeze({axis})",)),),
        shape=list(shape_t),
        wanted=list(wanted),
    )


def check_class_dim_last(context: CheckContext) -> Iterator[Finding]:
    """Channels-last logits (N, H, W, C) against targets (N, H, W)."""
    hard = hard_target(context)
    name, scores = prediction(context)
    if hard is None or scores.ndim < 3:
        return
    target, indices = hard
    shape_i, shape_t = tuple(scores.shape), tuple(indices.shape)
    torch_reading = (shape_i[0], *shape_i[2:])
    if shape_t != shape_i[:-1]:
        return
    ignore = ignore_index(context)
    if shape_t == torch_reading:  # both readings line up ((N, T, C) with T == C): judge by fit
        yield from _classes_last_by_fit(context, name, scores, target, indices, ignore)
        return
    kept = indices[indices != ignore] if ignore is not None else indices.reshape(-1)
    classes_last = shape_i[-1]
    if kept.size == 0 or int(kept.min()) < 0 or int(kept.max()) >= classes_last:
        return  # the targets do not fit classes on the last dimension either
    order = ", ".join(str(a) for a in (0, len(shape_i) - 1, *range(1, len(shape_i) - 1)))
    yield finding(
        "class-dim-last",
        Severity.WARNING,
        f"{name} {text.shape_text(shape_i)} from {context.source(name)} looks channels-last: "
        f"its last dimension ({classes_last}) fits the target classes {int(kept.min())}..{int(kept.max())} "
        f"and the rest matches {target} {text.shape_text(shape_t)}, but torch reads dimension 1 "
        f"({shape_i[1]}) as the classes",
        f"move the classes to dimension 1: {name}.permute({order})",
        remedies=(Remedy(maps=(f"{name} = {name}.permute({order})",)),),
        shape=list(shape_i),
        classes=classes_last,
    )


def _classes_last_by_fit(
    context: CheckContext,
    name: str,
    scores: np.ndarray,
    target: str,
    indices: np.ndarray,
    ignore: int | None,
) -> Iterator[Finding]:
    """Logits whose shape reads both ways: classes last when that reading fits far better."""
    fit = layouts.classes_last_fits_better(scores, indices, ignore)
    if fit is None:
        return
    shape_i = tuple(scores.shape)
    order = ", ".join(str(a) for a in (0, len(shape_i) - 1, *range(1, len(shape_i) - 1)))
    code = f"{name}.transpose(1, 2)" if len(shape_i) == 3 else f"{name}.permute({order})"
    yield finding(
        "class-dim-last",
        Severity.WARNING,
        f"{name} {text.shape_text(shape_i)} from {context.source(name)} lines up with {target} "
        f"{text.shape_text(indices.shape)} whether its classes are dimension 1 (as torch reads "
        f"them) or the last dimension, since both are {shape_i[1]}; over {fit.positions} targets "
        f"the classes-last reading fits far better: cross-entropy "
        f"{text.number(fit.classes_last)} against {text.number(fit.as_given)} as torch reads it, "
        f"accuracy {fit.accuracy_classes_last:.0%} against {fit.accuracy_as_given:.0%}. "
        "The model output is (N, T, C) and torch mixes up time steps and classes without an error",
        f"move the classes to dimension 1: {context.spec.call}({code}, {target})",
        remedies=(Remedy(maps=(f"{name} = {code}",)),),
        shape=list(shape_i),
        classes=shape_i[-1],
        cross_entropy_as_given=fit.as_given,
        cross_entropy_classes_last=fit.classes_last,
    )


def check_single_logit(context: CheckContext) -> Iterator[Finding]:
    """Cross-entropy with one class column: log_softmax over one class is 0."""
    name, scores = prediction(context)
    if scores.ndim < 2 or scores.shape[1] != 1 or scores.size == 0:
        return
    target = context.spec.arguments[1].name
    shape_t = tuple(context.arrays[target].shape)
    maps = []
    if shape_t != tuple(scores.shape):  # (N, 1) logits against (N,) labels
        maps.append(f"{name} = {name}.squeeze(1)")
    if np.asarray(context.arrays[target]).dtype.kind in "biu":
        maps.append(f"{target} = {target}.float()")
    labels = f"{target}.squeeze(1).float()" if len(shape_t) == scores.ndim else f"{target}.float()"
    yield finding(
        "single-logit-cross-entropy",
        Severity.ERROR,
        f"{name} {text.shape_text(scores.shape)} from {context.source(name)} has one class column: "
        "softmax over one class is always 1, so the loss is 0 for every sample and the gradient is 0",
        f"one logit per sample is binary classification: F.binary_cross_entropy_with_logits("
        f"{name}.squeeze(1), {labels}); or give the model 2 outputs",
        remedies=(
            Remedy(
                loss="bce-logits",
                maps=tuple(maps),
                note="one logit per sample with 0/1 labels: the binary loss",
            ),
            Remedy(
                outside=True,
                code="give the output layer 2 classes (nn.Linear(..., 2))",
                note="to keep cross-entropy",
            ),
        ),
        shape=list(scores.shape),
    )


def check_unbatched(context: CheckContext) -> Iterator[Finding]:
    """A 1-D cross-entropy input is read as one sample with N classes."""
    spec = context.spec
    name, scores = prediction(context)
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
        f"{name} {text.shape_text(scores.shape)} from {context.source(name)} is 1-D: {spec.name} "
        f"reads it as ONE sample with {scores.shape[0]} classes; {reading}",
        f"one score per sample is binary: F.binary_cross_entropy_with_logits({name}, "
        f"{target}.float()); one sample of class scores: pass {name}.unsqueeze(0) to say so "
        f"(shape (1, {scores.shape[0]}))",
        remedies=layouts.unbatched_remedies(context, name, target),
        shape=list(scores.shape),
    )


# ---------------------------------------------------------------- options against the shapes


def _takes_weights(spec: LossSpec) -> bool:
    return spec.option("weight") is not None or spec.option("pos_weight") is not None


def check_weight_length(context: CheckContext) -> Iterator[Finding]:
    """--weight must hold one weight per class; --pos-weight must broadcast over the classes."""
    spec = context.spec
    name, scores = prediction(context)
    if scores.size == 0:
        return
    weight = context.options.get("weight")
    if spec.option("weight") is not None and weight is not None:
        weights = np.asarray(weight)
        if spec.class_weight:
            yield from _class_weight(context, name, scores, weights)
        else:
            yield from _broadcast_weight(context, "--weight", name, scores, weights)
    pos_weight = context.options.get("pos_weight")
    if spec.option("pos_weight") is not None and pos_weight is not None:
        yield from _broadcast_weight(context, "--pos-weight", name, scores, np.asarray(pos_weight))


def _class_weight(
    context: CheckContext, name: str, scores: np.ndarray, weights: np.ndarray
) -> Iterator[Finding]:
    spec = context.spec
    axis = class_axis(scores) if spec.layout is not Layout.ELEMENTWISE else scores.ndim - 1
    classes = int(scores.shape[axis]) if scores.ndim else 1
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
        f"--weight holds {weights.size} value(s) {text.shape_text(weights.shape)} but {name} "
        f"{text.shape_text(scores.shape)} from {context.source(name)} has C={classes} classes"
        + ("; torch broadcasts it silently" if torch_broadcasts else ""),
        f"give one weight per class, in class-index order: {classes} values",
        blocking=not torch_broadcasts,
        length=int(weights.size),
        classes=classes,
    )


def _broadcast_weight(
    context: CheckContext, flag: str, name: str, scores: np.ndarray, weights: np.ndarray
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
        f"{flag} {text.shape_text(weights.shape)} does not broadcast over {name} "
        f"{text.shape_text(scores.shape)} from {context.source(name)} (last dimension C={classes})",
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


def _takes_batchmean(spec: LossSpec) -> bool:
    reduction = spec.option("reduction")
    return reduction is not None and "batchmean" in reduction.choices


def check_kl_mean_reduction(context: CheckContext) -> Iterator[Finding]:
    """reduction='mean' divides kl-div by every element; 'batchmean' is the KL divergence."""
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
        remedies=(Remedy(options=(("reduction", "batchmean"),)),),
        elements=int(predictions.size),
        batch=int(batch),
        factor=int(factor),
    )


CHECKS: tuple[Check, ...] = (
    Check(check_empty, ("empty-input",), Scope.SHAPES),
    Check(check_shapes, ("shape-mismatch", "batch-size-mismatch"), Scope.SHAPES),
    Check(
        check_silent_broadcast, ("silent-broadcast",), Scope.SHAPES, applies=layouts.may_broadcast
    ),
    Check(
        check_target_extra_dim, ("target-has-extra-dim",), Scope.SHAPES, applies=takes_class_indices
    ),
    # reads the target's class range: do its values fit classes on the last dimension?
    Check(check_class_dim_last, ("class-dim-last",), Scope.SAMPLE, applies=_takes_class_scores),
    Check(
        check_single_logit, ("single-logit-cross-entropy",), Scope.SHAPES, applies=_takes_softmax
    ),
    # quotes the target's value when it is a single index
    Check(check_unbatched, ("unbatched-input",), Scope.SAMPLE, applies=_takes_softmax),
    # weights are options, read whole; the input only for its shape
    Check(check_weight_length, ("weight-length-mismatch",), Scope.SHAPES, applies=_takes_weights),
    Check(check_kl_mean_reduction, ("kl-mean-reduction",), Scope.SHAPES, applies=_takes_batchmean),
)
