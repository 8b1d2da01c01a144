"""Arguments: a loss's arguments read the way its layout arranges them, for several checks.

The prediction and its class dimension, class-index targets, the rows of a distribution,
and ctc's inputs per sample. These read the :class:`CheckContext`; they judge nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from losscli.checks import CheckContext
from losscli.kinds import BFLOAT16_EPS, ROW_TOLERANCE, carried_eps, rows_of
from losscli.losses import Layout, LossSpec, Role

Shape = tuple[int, ...]

CLASS_LAYOUTS = (Layout.CLASS_SCORES, Layout.CLASS_SCORES_FLAT)
INDEX_ROLES = (Role.CLASS_TARGET, Role.CLASS_INDEX)
# log-softmax output can round a hair above 0; anything above this is a positive entry
POSITIVE_SLACK = 1e-5
# rows of probabilities rounded on export may be off by this much at most and still sum to 1
ROUNDING_SLACK_CAP = 0.1


def has_role(role: Role) -> Callable[[LossSpec], bool]:
    """A registry predicate: the loss has an argument that holds ``role``."""

    def applies(spec: LossSpec) -> bool:
        return spec.argument(role) is not None

    applies.__name__ = f"has_{role.name.lower()}"
    return applies


def is_ctc(spec: LossSpec) -> bool:
    return spec.layout is Layout.CTC


def takes_class_indices(spec: LossSpec) -> bool:
    """input [batch, classes, ...] and a class-index target (cross-entropy, nll, multi-margin)."""
    return spec.layout in CLASS_LAYOUTS and spec.arguments[1].role in INDEX_ROLES


# ---------------------------------------------------------------- class scores


def prediction(context: CheckContext) -> tuple[str, np.ndarray]:
    """The first argument's name and values as torch sees them."""
    name = context.spec.arguments[0].name
    return name, np.asarray(context.arrays[name])


def class_count(scores: np.ndarray) -> int:
    """C of a ``[batch, classes, ...]`` (or unbatched ``[classes]``) input."""
    return int(scores.shape[1] if scores.ndim >= 2 else scores.shape[0])


def class_axis(scores: np.ndarray) -> int:
    return 1 if scores.ndim >= 2 else 0


def ignore_index(context: CheckContext) -> int | None:
    if context.spec.option("ignore_index") is None:
        return None
    value = context.options.get("ignore_index")
    return None if value is None else int(value)


def hard_target(context: CheckContext) -> tuple[str, np.ndarray] | None:
    """The class-index target as int64, when it holds whole numbers (not class probabilities).

    For a loss that :func:`takes_class_indices`.
    """
    if context.soft_target:
        return None
    argument = context.spec.arguments[1]
    values = np.asarray(context.arrays[argument.name])
    if values.size == 0:
        return None
    if values.dtype.kind == "f" and (
        not np.all(np.isfinite(values)) or np.any(np.floor(values) != values)
    ):
        return None  # float-class-target says it
    return argument.name, values.astype(np.int64, copy=False)


def extra_target_dim(shape_i: Shape, shape_t: Shape) -> int | None:
    """The axis of a size-1 dimension that turns the wanted class-index target into ``shape_t``.

    For input ``[batch, classes, d1, ...]`` the wanted target is ``[batch, d1, ...]``; a
    target ``[batch, 1, d1, ...]`` (a mask with a channel) gives 1, ``[batch, d1, ..., 1]``
    gives -1. None when ``shape_t`` is not such a shape, or when the input has a single
    class column (then the target is simply shaped like the input).
    """
    if len(shape_i) < 2 or len(shape_t) != len(shape_i) or shape_i[1] == 1:
        return None
    wanted = (shape_i[0], *shape_i[2:])
    if shape_t == (shape_i[0], 1, *shape_i[2:]):
        return 1
    if shape_t == (*wanted, 1):
        return -1
    return None


def target_lines_up(context: CheckContext) -> bool:
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


# ---------------------------------------------------------------- values and distributions


def as_float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


# rounding units of dtypes NumPy cannot hold (loaded widened to float32)
_WIDENED_EPS = {"bfloat16": BFLOAT16_EPS, "float8_e4m3fn": 2.0**-3, "float8_e5m2": 2.0**-2}


def stored_eps(context: CheckContext, argument: str) -> float:
    """The rounding unit of the precision an argument carries (0 for integers): its stored
    dtype's, or a narrower float's whose numbers it holds (:func:`losscli.kinds.carried_eps`:
    a bfloat16 softmax cast to float32 rounds as bfloat16)."""
    loaded = context.inputs[argument]
    if loaded.stored_dtype in _WIDENED_EPS:
        return _WIDENED_EPS[loaded.stored_dtype]
    return carried_eps(loaded.values)


def sum_tolerance(length: int, eps: float) -> float:
    """Rows sum to 1 within 1e-3, or within the rounding of ``length`` stored terms if larger."""
    return max(ROW_TOLERANCE, 4.0 * max(length, 1) * eps)


def class_axes(values: np.ndarray) -> tuple[int, ...]:
    """The axes a distribution may run along: the class dim (1) and the last one."""
    if values.ndim == 0:
        return ()
    if values.ndim == 1:
        return (0,)
    return tuple(dict.fromkeys((1, values.ndim - 1)))


@dataclass(frozen=True)
class RowSums:
    """Row sums of a (would-be) distribution along one axis, all-zero rows left out.

    ``first_row`` is a row of ``rows_of(values, axis)``: the other axes flattened in order,
    so each sample's rows are consecutive (-1 when no row is off).
    """

    axis: int
    sums: np.ndarray
    off: np.ndarray  # bool, per row: farther than the tolerance from 1
    first_row: int


def row_sums(probabilities: np.ndarray, axes: tuple[int, ...], eps: float) -> RowSums | None:
    """The axis along which rows best sum to 1 (None: no finite, non-zero row)."""
    best: RowSums | None = None
    for axis in axes:
        rows = rows_of(probabilities, axis)
        # an all-zero row is masked out (padding): it adds nothing to the KL
        keep = np.isfinite(rows).all(axis=1) & (rows != 0).any(axis=1)
        if not keep.any():
            continue
        sums = rows[keep].sum(axis=1)
        off = np.abs(sums - 1) > sum_tolerance(probabilities.shape[axis], eps)
        first = int(np.flatnonzero(keep)[np.argmax(off)]) if off.any() else -1
        found = RowSums(axis=axis, sums=sums, off=off, first_row=first)
        if best is None or off.sum() < best.off.sum():
            best = found
    return best


def looks_like_log_probabilities(values: np.ndarray, eps: float) -> bool:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.max() > POSITIVE_SLACK:
        return False
    found = row_sums(np.exp(values), class_axes(values), eps)
    return found is not None and not found.off.any()


def looks_like_probabilities(values: np.ndarray, eps: float) -> bool:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() < 0 or finite.max() > 1:
        return False
    found = row_sums(values, class_axes(values), eps)
    return found is not None and not found.off.any()


# ---------------------------------------------------------------- ctc


@dataclass(frozen=True)
class CtcBatch:
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


def ctc_batch(context: CheckContext) -> CtcBatch | None:
    """The CTC inputs per sample, or None when their shapes do not fit together (torch says so)."""
    spec = context.spec
    log_probs_argument = spec.argument(Role.LOG_PROBS)
    targets_argument = spec.argument(Role.CTC_TARGETS)
    lengths = [a for a in spec.arguments if a.role is Role.LENGTHS]
    if log_probs_argument is None or targets_argument is None or len(lengths) != 2:
        return None
    log_probs = as_float(context.arrays[log_probs_argument.name])
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
    return CtcBatch(
        log_probs, labels, input_lengths.astype(np.int64), target_lengths.astype(np.int64)
    )
