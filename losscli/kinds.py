"""Kinds: what an array's numbers look like, independent of any loss.

``classify(values, class_axis)`` returns an :class:`ArrayKind`: one label (:class:`Kind`)
plus the numbers behind it (min, max, integrality, distinct values, and, when a class axis
is given, per-row statistics: row sums, row logsumexps, ones per row). Checks compare the
kind with what a ``LossSpec`` wants; this module never looks at a loss (STYLE habit 3).

The label is the first of these that matches (finite values only; NaN/Inf are counted and
left out of every statistic):

====================  ==================================================================
``EMPTY``             zero elements
``NON_FINITE``        no finite value at all
``ONE_HOT``           class axis of size >= 2, values in {0, 1}, exactly one 1 per row
``MULTI_HOT``         class axis of size >= 2, values in {0, 1}, otherwise (0 or >= 2 ones)
``ZERO_ONE``          values in {0, 1} (binary targets, masks)
``SIGNS``             values in {-1, 1}
``MASK_255``          values in {0, 255} with some 255 (image masks saved as uint8)
``CONSTANT``          at least two values, all equal
``CLASS_INDICES``     whole numbers, no class axis given (min, max, n_distinct say more)
``COUNTS``            whole numbers >= 0 with a class axis given (a table of counts)
``PROBABILITIES``     class axis given, values in [0, 1], >= 90 % of rows sum to 1 (1e-3 *)
``LOG_PROBABILITIES`` class axis given, values <= 0, >= 90 % of rows have logsumexp 0 (1e-3 *)
``UNIT_INTERVAL``     values in [0, 1] (sigmoid output, independent probabilities)
``LOGITS``            any other float values with a class axis given (unnormalised scores)
``CONTINUOUS``        any other values
====================  ==================================================================

(*) widened for float16 and bfloat16 values by their rounding: :func:`row_tolerance`.

Arrays are often several things at once ({0, 1} values are also class indices and lie in
[0, 1]); the boolean attributes (``integral``, ``zero_one``, ``in_unit_interval`` ...)
answer those questions directly, whatever the label.

Example:
    >>> kind = classify(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), class_axis=1)
    >>> kind.kind
    <Kind.PROBABILITIES: 'probabilities'>
    >>> kind.rows.fraction_sum_to_one
    1.0
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from losscli import stable
from losscli.text import number

# "rows sum to 1" / "logsumexp is 0" means within this (SPEC: Thresholds); float16 and
# bfloat16 rows get their rounding on top (see row_tolerance)
ROW_TOLERANCE = 1e-3
# the fraction of rows that must sum to 1 (or have logsumexp 0) for the label
ROW_FRACTION = 0.9
# log-softmax output can round a hair above 0
_NONPOSITIVE_SLACK = 1e-6
# decimal_places: a dtype whose rounding exceeds this fraction of the last place cannot say
_MAX_PLACE_SLACK = 0.05
# distinct values are listed when there are at most this many
_MAX_LISTED = 16


class Kind(str, enum.Enum):
    """What an array looks like; see the module docstring for the exact rules and order."""

    EMPTY = "empty"
    NON_FINITE = "non-finite"
    ONE_HOT = "one-hot"
    MULTI_HOT = "multi-hot"
    ZERO_ONE = "zero-one"
    SIGNS = "signs"
    MASK_255 = "0/255 mask"
    CONSTANT = "constant"
    CLASS_INDICES = "class indices"
    COUNTS = "counts"
    PROBABILITIES = "probabilities"
    LOG_PROBABILITIES = "log-probabilities"
    UNIT_INTERVAL = "values in [0, 1]"
    LOGITS = "logits"
    CONTINUOUS = "continuous"


@dataclass(frozen=True)
class RowStats:
    """Statistics of the vectors along the class axis ("rows"), finite rows only.

    For an array ``[batch, classes, d1, ...]`` with ``class_axis=1`` a row is one
    ``values[i, :, j, k]``; there are ``batch * d1 * ...`` rows of length ``classes``.

    Attributes:
        count: rows with every value finite (the ones the statistics describe).
        length: the size of the class axis (C).
        sum_min: the smallest row sum.
        sum_median: the median row sum.
        sum_max: the largest row sum.
        sum_spread: the interquartile range of the row sums (p75 - p25).
        fraction_sum_to_one: fraction of rows whose sum is within ``tolerance`` of 1.
        logsumexp_median: the median of each row's log(sum(exp(row))).
        fraction_logsumexp_zero: fraction of rows whose logsumexp is within ``tolerance`` of 0.
        ones_min: fewest entries equal to 1 in a row (meaningful for 0/1 arrays).
        ones_max: most entries equal to 1 in a row.
        fraction_several_ones: fraction of rows with two or more entries equal to 1.
        example_sums: the first few row sums, for messages.
        tolerance: the tolerance used (:func:`row_tolerance` of the dtype and C).
    """

    count: int
    length: int
    sum_min: float
    sum_median: float
    sum_max: float
    sum_spread: float
    fraction_sum_to_one: float
    logsumexp_median: float
    fraction_logsumexp_zero: float
    ones_min: int
    ones_max: int
    fraction_several_ones: float
    example_sums: tuple[float, ...]
    tolerance: float = ROW_TOLERANCE


@dataclass(frozen=True)
class ArrayKind:
    """What one array looks like.

    Statistics are over the finite values; with none, they are NaN (``min``/``max``...)
    or False (the boolean attributes).

    Attributes:
        kind: the label (see :class:`Kind`).
        shape: the array's shape.
        size: the number of elements.
        class_axis: the axis read as classes, or None.
        non_finite: how many values are NaN or Inf.
        min: the smallest finite value.
        max: the largest finite value.
        integral: every finite value is a whole number (integer dtypes always are).
        n_distinct: the number of distinct finite values when integral, else None.
        distinct: the distinct finite values, sorted, when there are at most 16 (else ()).
        constant: at least two values and all finite values equal.
        in_unit_interval: every finite value lies in [0, 1].
        nonnegative: every finite value is >= 0.
        nonpositive: every finite value is <= 0 (1e-6 slack for log-softmax rounding).
        zero_one: every finite value is 0 or 1.
        signs: every finite value is -1 or 1.
        mask_255: every finite value is 0 or 255, and some are 255.
        rows: row statistics when ``class_axis`` was given and the array has elements.
    """

    kind: Kind
    shape: tuple[int, ...]
    size: int
    class_axis: int | None
    non_finite: int
    min: float
    max: float
    integral: bool
    n_distinct: int | None
    distinct: tuple[float, ...]
    constant: bool
    in_unit_interval: bool
    nonnegative: bool
    nonpositive: bool
    zero_one: bool
    signs: bool
    mask_255: bool
    rows: RowStats | None

    @property
    def is_probabilities(self) -> bool:
        """Rows in [0, 1] summing to 1 (softmax output or a one-hot table)."""
        return self.kind in (Kind.PROBABILITIES, Kind.ONE_HOT)

    @property
    def is_log_probabilities(self) -> bool:
        """Rows <= 0 whose logsumexp is 0 (log-softmax output)."""
        return self.kind is Kind.LOG_PROBABILITIES

    def describe(self) -> str:
        """One phrase for messages: the label and the numbers that earned it."""
        label = self.kind.value
        if self.kind in (Kind.EMPTY, Kind.NON_FINITE):
            return label
        span = f"{number(self.min)} to {number(self.max)}"
        if self.kind in (Kind.PROBABILITIES, Kind.LOG_PROBABILITIES, Kind.LOGITS) and self.rows:
            if self.kind is Kind.LOG_PROBABILITIES:
                return (
                    f"{label} ({span}; median row logsumexp {number(self.rows.logsumexp_median)})"
                )
            return f"{label} ({span}; median row sum {number(self.rows.sum_median)})"
        if self.kind in (Kind.ONE_HOT, Kind.MULTI_HOT) and self.rows:
            return f"{label} ({self.rows.ones_min} to {self.rows.ones_max} ones per row)"
        if self.integral and self.n_distinct is not None:
            return f"{label} ({span}, {self.n_distinct} distinct)"
        return f"{label} ({span})"


# whole numbers spanning at most this many values are told apart by counting, not sorting
_COUNTED_SPAN = 1 << 16


def _distinct(whole: np.ndarray, low: float, high: float) -> np.ndarray:
    """The distinct values of ``whole`` (whole numbers from ``low`` to ``high``), sorted, in
    its dtype: counted in one pass when they span few values (labels, classes, masks), sorted
    otherwise. The offsets are taken in int64 or float64: int8 or float16 would wrap or round."""
    if whole.size <= _COUNTED_SPAN or high - low >= _COUNTED_SPAN or whole.dtype == np.uint64:
        if whole.dtype == np.float16:  # numpy 2.4's sort of many float16 repeats values
            return np.unique(whole.astype(np.float64)).astype(np.float16)
        return np.unique(whole)
    if whole.dtype.kind == "f":
        base: float | int = low
        offsets = np.subtract(whole, low, dtype=np.float64).astype(np.intp)
    else:  # exact for any int64, where float(low) may not be
        base = int(whole.min())
        offsets = np.subtract(whole, base, dtype=np.int64)
    return (np.flatnonzero(np.bincount(offsets)) + base).astype(whole.dtype)


def _finite_values(array: np.ndarray) -> np.ndarray:
    """The finite values, flat: a view when every value is finite (two fast passes find it
    out: NaN or Inf would be one of the ends), a copy of the finite ones otherwise."""
    flat = array.reshape(-1)
    if array.dtype.kind != "f" or (
        math.isfinite(float(flat.min())) and math.isfinite(float(flat.max()))
    ):
        return flat
    return flat[np.isfinite(flat)]


# integrality is first judged on this many leading values: one that is not whole settles it
_WHOLE_HEAD = 4096


def _whole_numbers(finite: np.ndarray) -> bool:
    """Every value is a whole number (exact in any float dtype: floor(x) == x)."""
    head = finite[:_WHOLE_HEAD]
    if not np.array_equal(np.floor(head), head):
        return False
    return head.size == finite.size or bool(np.array_equal(np.floor(finite), finite))


def classify(values: np.ndarray, class_axis: int | None = None) -> ArrayKind:
    """Say what ``values`` look like.

    Args:
        values: any shape, a real dtype (bool, int, uint, float).
        class_axis: the axis that indexes classes (1 for ``[batch, classes, ...]``, -1 for
            ``[..., classes]``), or None when the array has no class axis. Row statistics,
            one-hot, probabilities, log-probabilities and logits need it. An axis out of
            range for ``values`` is treated as None.

    Returns:
        The kind, with its numbers.
    """
    array = np.asarray(values)
    if array.dtype == np.bool_:
        array = array.astype(np.int8)
    axis = _normalised_axis(class_axis, array.ndim)
    if array.size == 0:
        return _empty(array, axis)
    finite = _finite_values(array)
    non_finite = int(array.size - finite.size)
    if finite.size == 0:
        return _empty(array, axis, kind=Kind.NON_FINITE, non_finite=non_finite)
    low, high = float(finite.min()), float(finite.max())
    integral = array.dtype.kind in "biu" or _whole_numbers(finite)
    n_distinct: int | None = None
    distinct: tuple[float, ...] = ()
    if integral:
        unique = _distinct(finite, low, high)
        n_distinct = int(unique.size)
        if unique.size <= _MAX_LISTED:
            distinct = tuple(float(v) for v in unique)
    zero_one = low >= 0 and high <= 1 and integral
    signs = integral and n_distinct is not None and set(distinct) <= {-1.0, 1.0} and bool(distinct)
    mask_255 = integral and bool(distinct) and set(distinct) <= {0.0, 255.0} and high == 255
    rows = _row_stats(array, axis) if axis is not None else None
    kind = _label(
        array,
        axis,
        rows,
        low=low,
        high=high,
        integral=integral,
        zero_one=zero_one,
        signs=bool(signs),
        mask_255=bool(mask_255),
    )
    return ArrayKind(
        kind=kind,
        shape=tuple(array.shape),
        size=int(array.size),
        class_axis=axis,
        non_finite=non_finite,
        min=low,
        max=high,
        integral=integral,
        n_distinct=n_distinct,
        distinct=distinct,
        constant=finite.size >= 2 and low == high,
        in_unit_interval=low >= 0 and high <= 1,
        nonnegative=low >= 0,
        nonpositive=high <= _NONPOSITIVE_SLACK,
        zero_one=zero_one,
        signs=bool(signs),
        mask_255=bool(mask_255),
        rows=rows,
    )


def rows_of(values: np.ndarray, class_axis: int) -> np.ndarray:
    """The vectors along ``class_axis`` as a 2-D float64 array ``[rows, classes]``.

    For ``[batch, classes, d1, ...]`` and ``class_axis=1`` the rows are ordered by batch,
    then d1, ...; a 1-D array is one row.
    """
    array = np.asarray(values, dtype=np.float64)
    axis = _normalised_axis(class_axis, array.ndim)
    if axis is None:
        return array.reshape(1, -1)
    moved = np.moveaxis(array, axis, -1)
    return moved.reshape(-1, array.shape[axis])


def decimal_places(values: np.ndarray, most: int = 4) -> int | None:
    """The fewest decimal places that write every finite value exactly, or None if more than ``most``.

    Hand-typed tables (``[0.7, 0.2, 0.1]``) and CSV files rounded on export
    (``0.33, 0.33, 0.33``) have few places; model output has none short of the dtype's
    precision. A value counts as written with ``p`` places when ``value * 10**p`` is a whole
    number up to the dtype's rounding (float32 ``0.7`` is 0.699999988...). Integer dtypes
    have 0 places.

    Args:
        values: any shape, a real dtype.
        most: the most places tried.

    Returns:
        0..``most``, or None (also for an array with no finite value).
    """
    array = np.asarray(values)
    if array.dtype.kind in "biu":
        return 0 if array.size else None
    finite = array[np.isfinite(array)].astype(np.float64) if array.dtype.kind == "f" else None
    if finite is None or finite.size == 0:
        return None
    eps = float(np.finfo(array.dtype).eps)
    magnitude = np.abs(finite)
    for places in range(most + 1):
        scale = 10.0**places
        scaled = finite * scale
        # the dtype's rounding of each value, scaled, plus float64's own for the product
        slack = 4.0 * eps * scale * magnitude + 1e-9
        if float(slack.max()) > _MAX_PLACE_SLACK:
            return None  # the dtype cannot tell this many places apart (float16 beyond ~1 place)
        if bool(np.all(np.abs(scaled - np.round(scaled)) <= slack)):
            return places
    return None


def row_tolerance(eps: float, length: int) -> float:
    """How far a row sum may be from 1 (or a logsumexp from 0) and still count as exact.

    ``ROW_TOLERANCE`` (1e-3), widened for low-precision values by their rounding unit
    ``eps`` (:func:`carried_eps`) over a row of ``length`` values (float16 rows of 10
    classes: about 0.012). float32 and float64 rows up to a million classes stay at 1e-3.
    """
    return max(ROW_TOLERANCE, 4.0 * eps * math.sqrt(max(length, 1)))


# bfloat16's rounding unit (NumPy has no bfloat16 dtype)
BFLOAT16_EPS = 2.0**-7


def carried_eps(values: np.ndarray) -> float:
    """The rounding unit of the precision ``values`` carry (0 for integers and booleans).

    Their dtype's, or a narrower float's when every finite value is one of that float's
    numbers: a bfloat16 teacher's softmax cast with ``.float()`` is float32 holding bfloat16
    values, rounded as bfloat16 rounds (its rows sum to 1 within about 2e-3, not 1e-7).
    Values computed in float32 are bfloat16 or float16 numbers only by chance (one in 2^16
    or 2^13 each), so a real float32 array keeps float32's unit.
    """
    array = np.asarray(values)
    if array.dtype.kind != "f":
        return 0.0
    eps = float(np.finfo(array.dtype).eps)
    finite = array[np.isfinite(array)]
    if array.dtype.itemsize <= 2 or finite.size == 0:
        return eps
    single = finite.astype(np.float32)
    if array.dtype != np.float32 and not np.array_equal(single, finite):
        return eps
    if not (single.view(np.uint32) & 0xFFFF).any():
        return BFLOAT16_EPS
    if np.array_equal(single.astype(np.float16).astype(np.float32), single):
        return float(np.finfo(np.float16).eps)
    return float(np.finfo(np.float32).eps)


def _normalised_axis(class_axis: int | None, ndim: int) -> int | None:
    if class_axis is None or ndim == 0 or not -ndim <= class_axis < ndim:
        return None
    return class_axis % ndim


def _label(
    array: np.ndarray,
    axis: int | None,
    rows: RowStats | None,
    *,
    low: float,
    high: float,
    integral: bool,
    zero_one: bool,
    signs: bool,
    mask_255: bool,
) -> Kind:
    has_classes = axis is not None and rows is not None and rows.length >= 2
    if zero_one and has_classes and rows is not None and rows.count:
        one_per_row = rows.ones_min == 1 and rows.ones_max == 1
        return Kind.ONE_HOT if one_per_row else Kind.MULTI_HOT
    if zero_one:
        return Kind.ZERO_ONE
    if signs:
        return Kind.SIGNS
    if mask_255:
        return Kind.MASK_255
    if array.size >= 2 and low == high:
        return Kind.CONSTANT
    if integral:
        return Kind.COUNTS if axis is not None and low >= 0 else Kind.CLASS_INDICES
    if has_classes and rows is not None and rows.count:
        if low >= 0 and high <= 1 and rows.fraction_sum_to_one >= ROW_FRACTION:
            return Kind.PROBABILITIES
        if high <= _NONPOSITIVE_SLACK and rows.fraction_logsumexp_zero >= ROW_FRACTION:
            return Kind.LOG_PROBABILITIES
    if low >= 0 and high <= 1:
        return Kind.UNIT_INTERVAL
    return Kind.LOGITS if axis is not None else Kind.CONTINUOUS


def _row_stats(array: np.ndarray, axis: int) -> RowStats | None:
    rows = rows_of(array, axis)
    rows = rows[np.isfinite(rows).all(axis=1)]
    length = int(array.shape[axis])
    if rows.shape[0] == 0 or length == 0:
        return None
    sums = rows.sum(axis=1)
    logsumexp = stable.logsumexp(rows, axis=1)
    eps = float(np.finfo(array.dtype).eps) if array.dtype.kind == "f" else 0.0
    tolerance = row_tolerance(eps, length)
    if (np.abs(sums - 1) > tolerance).any() and (np.abs(logsumexp) > tolerance).any():
        # rows off at the dtype's rounding: values carried in a narrower float round more
        tolerance = row_tolerance(carried_eps(array), length)
    ones = (rows == 1).sum(axis=1)
    p25, p50, p75 = np.percentile(sums, [25, 50, 75])
    return RowStats(
        count=int(rows.shape[0]),
        length=length,
        sum_min=float(sums.min()),
        sum_median=float(p50),
        sum_max=float(sums.max()),
        sum_spread=float(p75 - p25),
        fraction_sum_to_one=float(np.mean(np.abs(sums - 1) <= tolerance)),
        logsumexp_median=float(np.median(logsumexp)),
        fraction_logsumexp_zero=float(np.mean(np.abs(logsumexp) <= tolerance)),
        ones_min=int(ones.min()),
        ones_max=int(ones.max()),
        fraction_several_ones=float(np.mean(ones >= 2)),
        example_sums=tuple(float(s) for s in sums[:3]),
        tolerance=tolerance,
    )


def _empty(
    array: np.ndarray, axis: int | None, kind: Kind = Kind.EMPTY, non_finite: int = 0
) -> ArrayKind:
    nan = float("nan")
    return ArrayKind(
        kind=kind,
        shape=tuple(array.shape),
        size=int(array.size),
        class_axis=axis,
        non_finite=non_finite,
        min=nan,
        max=nan,
        integral=False,
        n_distinct=None,
        distinct=(),
        constant=False,
        in_unit_interval=False,
        nonnegative=False,
        nonpositive=False,
        zero_one=False,
        signs=False,
        mask_255=False,
        rows=None,
    )
