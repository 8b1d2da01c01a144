"""Accumulator: what torch computed on each chunk, folded into one Computation.

torchmetrics' update/compute: :meth:`Accumulator.add` takes each chunk's
:class:`~losscli.result.ChunkResult` in sample order, :meth:`Accumulator.finish` returns the
:class:`~losscli.result.Computation`. Whole tensors are one chunk, computed with the user's
reduction, so their value and gradients are torch's own; over several chunks, in float64:

- the value: every per-sample loss summed, divided by the denominator summed over chunks
  (the sample count, or for cross-entropy/nll with class indices the summed weight of the
  non-ignored targets); the gradients, of each chunk's summed losses, scaled by the same;
- the per-sample summary: n, mean, min, max, argmax exactly; p50/p90/p99 from a seeded
  uniform random sample of the per-sample losses (:class:`QuantileSample`): exact while
  there are at most 2^20 samples (and always for whole tensors), otherwise the rank of a
  reported quantile p is within ±3·sqrt(p(1-p)/2^20) of p in 99.7 % of runs (2^20: fewer
  under a small memory budget, :func:`sketch_capacity`);
- the worst samples, NaN/Inf and negative losses with their samples, NaN/Inf in the
  gradients, the low-precision probe, and predicted-versus-true class counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losscli.losses import LossSpec
from losscli.result import (
    ChunkResult,
    ClassTotals,
    Computation,
    GradientTotals,
    LossTotals,
    PrecisionProbe,
    SampleRows,
    clearly_negative,
)

# per-sample losses (and gradients up to as many elements) are kept whole up to this many
KEEP_SAMPLES = 1000
# at most twice this many per-sample losses are kept for the quantiles...
SKETCH_CAPACITY = 1 << 20
# ...and under a memory budget, capacity x 8 bytes (float64) is at most 1/this of it, so
# that twice the capacity and a halving's copies stay within about 1/10 of the budget:
# 2^20 from the least default budget (512 MB), 2^14 from 8 MB
SKETCH_BUDGET_SHARE = 64
_LEAST_SKETCH = 1 << 12


def sketch_capacity(budget: int | None) -> int:
    """The quantile sample's capacity under a memory budget (None: no budget): a power of
    two, ``1/SKETCH_BUDGET_SHARE`` of the budget in float64, at least 4096 and at most
    :data:`SKETCH_CAPACITY`."""
    if budget is None:
        return SKETCH_CAPACITY
    fits = max(budget // (SKETCH_BUDGET_SHARE * 8), 1)  # float64 values
    return min(SKETCH_CAPACITY, max(_LEAST_SKETCH, 1 << (fits.bit_length() - 1)))


# samples with a NaN/Inf loss that are listed, and of those, described with their inputs
_LISTED = 10
_DESCRIBED = 3
# gradient positions listed
_POSITIONS = 3
# the worst samples are searched for in slices of at most this many losses (a partition of
# 1e8 losses takes 2.7 s; slices past the worst so far cost one maximum each)
_RANKED_SLICE = 1 << 22


class QuantileSample:
    """A seeded uniform random sample of the finite per-sample losses, for their quantiles.

    Every loss is kept with the same probability ``rate``; when more than twice ``capacity``
    are kept, each kept one survives with probability 1/2 and the rate halves, so the sample
    stays uniform and bounded however many losses go past.
    """

    def __init__(self, expected: int | None, capacity: int | None = None, seed: int = 0) -> None:
        self.capacity = SKETCH_CAPACITY if capacity is None else capacity
        self.rate = 1.0 if not expected else min(1.0, self.capacity / expected)
        self._random = np.random.default_rng(seed)
        self._kept: list[np.ndarray] = []
        self._count = 0

    def add(self, losses: np.ndarray) -> None:
        """Offer one chunk of per-sample losses (finite ones only)."""
        if self.rate >= 1.0:
            picked = np.array(losses, dtype=np.float64)
        else:
            count = int(self._random.binomial(losses.size, self.rate))
            positions = self._random.choice(losses.size, size=count, replace=False)
            picked = losses[positions].astype(np.float64)  # in any order: only ranked
        self._kept.append(picked)
        self._count += picked.size
        self._bound()

    def merge(self, other: QuantileSample) -> None:
        """Fold in another sample of other losses: the one kept at the higher rate is thinned
        to the lower rate, so every loss of both was kept with the same probability."""
        rate = min(self.rate, other.rate)
        mine, theirs = (
            self._thinned(self.values(), rate / self.rate),
            other._thinned(other.values(), rate / other.rate, self._random),
        )
        self._kept = [mine, theirs]
        self._count = mine.size + theirs.size
        self.rate = rate
        self._bound()

    def _thinned(
        self, values: np.ndarray, keep: float, random: np.random.Generator | None = None
    ) -> np.ndarray:
        if keep >= 1.0:
            return values
        return values[(random or self._random).random(values.size) < keep]

    def _bound(self) -> None:
        """Halve the sample (and the rate) while it holds more than twice the capacity."""
        while self._count > 2 * self.capacity:
            merged = np.concatenate(self._kept)
            merged = merged[self._random.random(merged.size) < 0.5]
            self._kept = [merged]
            self._count = merged.size
            self.rate /= 2

    @property
    def size(self) -> int:
        """How many losses are kept."""
        return self._count

    @property
    def exact(self) -> bool:
        """Every finite loss was kept, so the quantiles are exact."""
        return self.rate >= 1.0

    def values(self) -> np.ndarray:
        """The kept losses (in no particular order)."""
        return np.concatenate(self._kept) if self._kept else np.empty(0)

    def quantiles(self, levels: Sequence[float]) -> list[float] | None:
        if not self._count:
            return None
        return [float(q) for q in np.quantile(self.values(), levels)]


@dataclass(frozen=True)
class ClassSetup:
    """How to count predicted versus true classes: the loss takes class indices that line up.

    Attributes:
        prediction: the argument holding ``[batch, classes, ...]`` scores.
        target: the argument holding ``[batch, ...]`` class indices (int64 once converted).
        classes: C.
        ignore_index: targets equal to it are not counted (None: the loss has none).
        names: a name per class, when the scores came from a table with C named columns.
    """

    prediction: str
    target: str
    classes: int
    ignore_index: int | None
    names: tuple[str, ...] | None = None


@dataclass
class _Gradient:
    shape: tuple[int, ...]
    squares: float = 0.0
    max_abs: float = 0.0
    zeros: int = 0
    elements: int = 0
    non_finite: int = 0
    positions: list[tuple[int, ...]] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    only_in_bad_samples: bool = True
    kept: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Classes:
    true: np.ndarray
    predicted: np.ndarray
    correct: np.ndarray
    loss_sum: np.ndarray
    out_of_range: int = 0
    ignored: int = 0
    total: int = 0
    chunks: int = 0
    with_losses: int = 0


class Accumulator:
    """Folds chunk results, in sample order, into one :class:`~losscli.result.Computation`.

    Args:
        spec: the loss.
        options: the resolved options (the reduction, ignore_index).
        keep_all: keep every per-sample loss and gradient (whole tensors, already in memory);
            otherwise only while there are at most ``KEEP_SAMPLES``.
        top: how many of the worst samples to keep.
        expected: how many samples will come, when known (sizes the quantile sample).
        classes: count predicted versus true classes this way, or None.
        budget: the memory budget of a stream (bounds the quantile sample), or None.
        seed: seeds the quantile sample (a shard's index: each shard's is drawn apart).
    """

    def __init__(
        self,
        spec: LossSpec,
        options: dict[str, Any],
        *,
        keep_all: bool,
        top: int = 10,
        expected: int | None = None,
        classes: ClassSetup | None = None,
        budget: int | None = None,
        seed: int = 0,
    ) -> None:
        self.spec = spec
        self.reduction = str(options.get("reduction", "mean"))
        self.keep_all = keep_all
        self.top = max(top, 0)
        self.class_setup = classes
        self._sample = QuantileSample(expected, sketch_capacity(budget), seed)
        self._results: list[ChunkResult] = []  # the first chunk's, kept for a single chunk
        self.chunks = 0
        self.samples = 0
        self.loss_sum = 0.0
        self.denominator = 0.0
        self.finite = 0
        self.finite_sum = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.argmax: int | None = None
        self.argmin: int | None = None
        self.largest = 0.0
        self.negative = 0
        self.nan = 0
        self.positive_inf = 0
        self.negative_inf = 0
        self.bad_samples: list[int] = []
        self.described: list[SampleRows] = []
        self.worst: list[tuple[float, int, float]] = []  # (rank key, sample, loss)
        self.gradients: dict[str, _Gradient] = {}
        self.kept: list[np.ndarray] | None = []
        self.kept_ignored: list[np.ndarray] | None = []
        self.kept_predicted: list[np.ndarray] = []
        self.kept_gradients = True
        self.elements = 1
        self.dtype = ""
        self.warnings: dict[str, None] = {}
        self.precision: list[Any] = []  # [exact, low, low dtype, promoted, no kernel]
        self.precision_seen = False
        self.precision_name = ""
        self.nan_in_chunk = False
        self.classes: _Classes | None = None
        self.ignored_samples = 0  # samples whose every target is ignore_index

    # ------------------------------------------------------------------ update

    def add(self, result: ChunkResult, offset: int, arrays: dict[str, np.ndarray]) -> None:
        """Fold in one chunk: ``result`` computed on ``arrays``, whose first sample is ``offset``."""
        if not self._results and result.reduced:  # whole tensors: torch's value as it is
            self._results.append(result)
        self.chunks += 1
        per_sample = np.asarray(result.per_sample)  # float64, or a streamed chunk's float32
        count = per_sample.size
        self.dtype = result.dtype
        self.elements = result.elements
        self.warnings.update(dict.fromkeys(result.warnings))
        if result.denominator is not None:
            self.denominator += float(result.denominator)
        highest = self._losses(per_sample, offset, arrays)
        if per_sample.size <= _RANKED_SLICE:
            self._rank(per_sample, offset, highest)
        else:  # whole tensors: a slice at a time, most passed over by its largest loss
            for start in range(0, per_sample.size, _RANKED_SLICE):
                part = per_sample[start : start + _RANKED_SLICE]
                top = float(part.max()) if highest is not None else None
                self._rank(part, offset + start, top)
        if result.ignored is not None:
            self.ignored_samples += int(np.count_nonzero(result.ignored))
        self._keep(result, per_sample)
        for argument in self.spec.arguments:
            gradient = result.gradients.get(argument.name)
            if gradient is not None:
                self._gradient(argument.name, argument.batch_dim, gradient, offset, per_sample)
        if result.precision is not None:
            self._precision(result)
        self.samples += count
        self.nan_in_chunk = False

    def _losses(
        self, per_sample: np.ndarray, offset: int, arrays: dict[str, np.ndarray]
    ) -> float | None:
        """Fold in the chunk's losses; return the largest when every one is finite, else None."""
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN: reported below
            total = float(np.sum(per_sample, dtype=np.float64))
        self.loss_sum += total
        finite = None
        if math.isfinite(total):  # a finite sum means every loss is finite
            good = per_sample
        else:
            finite = np.isfinite(per_sample)
            good = per_sample[finite]
            nans = int(np.isnan(per_sample).sum())
            self.nan_in_chunk = nans > 0
            positive = int(np.isposinf(per_sample).sum())
            self.nan += nans
            self.positive_inf += positive
            self.negative_inf += int((~finite).sum()) - nans - positive
            bad = np.flatnonzero(~finite)
            room = _LISTED - len(self.bad_samples)
            self.bad_samples += [offset + int(i) for i in bad[:room]] if room > 0 else []
            for row in bad[: max(0, _DESCRIBED - len(self.described))]:
                self.described.append(
                    SampleRows(offset + int(row), self._rows(arrays, int(row), per_sample.size))
                )
        if not good.size:
            self._sample.add(good)
            return None
        self.finite += int(good.size)
        self.finite_sum += total if finite is None else float(np.sum(good, dtype=np.float64))
        low, high = float(good.min()), float(good.max())
        if high > self.maximum:
            self.maximum = high
            masked = per_sample if finite is None else np.where(finite, per_sample, -np.inf)
            self.argmax = offset + int(np.argmax(masked))
        if low < self.minimum:
            self.minimum = low
            masked = per_sample if finite is None else np.where(finite, per_sample, np.inf)
            self.argmin = offset + int(np.argmin(masked))
        self.largest = max(self.largest, abs(low), abs(high))
        if low < 0:
            self.negative += int(clearly_negative(good, self.dtype).sum())
        self._sample.add(good)
        return high if finite is None else None

    def _rows(self, arrays: dict[str, np.ndarray], row: int, batch: int) -> dict[str, np.ndarray]:
        """Sample ``row`` of each argument along its batch dimension (arguments without one: none)."""
        found = {}
        for argument in self.spec.arguments:
            values = np.asarray(arrays[argument.name])
            axis = argument.batch_dim
            if values.ndim > axis and values.shape[axis] == batch:
                found[argument.name] = np.array(np.take(values, row, axis=axis))
        return found

    def _rank(self, per_sample: np.ndarray, offset: int, highest: float | None) -> None:
        """Keep the worst ``top`` samples; among equal losses, the later sample first.

        ``highest``: the chunk's largest loss when every one is finite (else None); a chunk
        whose largest loss is below the ``top``-th worst so far is not searched.
        """
        if not self.top or not per_sample.size:
            return
        if len(self.worst) >= self.top and highest is not None and highest < self.worst[-1][0]:
            return
        nans = self.nan_in_chunk
        ranked = np.where(np.isnan(per_sample), np.inf, per_sample) if nans else per_sample
        if len(self.worst) >= self.top:
            threshold = self.worst[-1][0]
            candidates = np.flatnonzero(ranked >= threshold)
        elif ranked.size > self.top:
            kth = np.partition(ranked, ranked.size - self.top)[ranked.size - self.top]
            candidates = np.flatnonzero(ranked >= kth)
        else:
            candidates = np.arange(ranked.size)
        if candidates.size > 4 * self.top:  # many ties: the latest of them rank first
            order = np.lexsort((candidates, ranked[candidates]))[::-1][: self.top]
            candidates = candidates[order]
        self.worst += [
            (float(ranked[i]), offset + int(i), float(per_sample[i])) for i in candidates
        ]
        self.worst.sort(key=lambda w: (-w[0], -w[1]))
        del self.worst[self.top :]

    def _keep(self, result: ChunkResult, per_sample: np.ndarray) -> None:
        if self.kept is None:
            return
        if not self.keep_all and self.samples + per_sample.size > KEEP_SAMPLES:
            self.kept = self.kept_ignored = None
            self.kept_predicted.clear()
            self.kept_gradients = False
            for state in self.gradients.values():
                state.kept.clear()
            return
        self.kept.append(per_sample)
        if result.ignored is not None and self.kept_ignored is not None:
            self.kept_ignored.append(np.asarray(result.ignored, dtype=bool))

    def _gradient(
        self, name: str, axis: int, gradient: np.ndarray, offset: int, per_sample: np.ndarray
    ) -> None:
        state = self.gradients.get(name)
        if state is None:
            state = self.gradients[name] = _Gradient(tuple(gradient.shape))
        flat = gradient.reshape(-1)
        state.elements += flat.size
        state.zeros += int(np.count_nonzero(flat == 0))  # a third of count_nonzero(flat)'s time
        if self.kept_gradients and (self.keep_all or state.elements <= KEEP_SAMPLES):
            state.kept.append(gradient)  # a fresh array from autograd
        else:
            self.kept_gradients = self.keep_all
            state.kept.clear()
        squares = _squares(flat)
        if math.isfinite(squares):  # a finite sum of squares means every element is finite
            if flat.size:
                state.squares += squares
                state.max_abs = max(state.max_abs, -float(flat.min()), float(flat.max()))
            return
        bad = ~np.isfinite(gradient)
        state.non_finite += int(bad.sum())
        if len(state.positions) < _POSITIONS:
            for index in np.argwhere(bad)[: _POSITIONS - len(state.positions)]:
                shifted = [int(i) for i in index]
                if gradient.ndim > axis:
                    shifted[axis] += offset
                state.positions.append(tuple(shifted))
        bad_loss = ~np.isfinite(per_sample)
        if gradient.ndim > axis and gradient.shape[axis] == bad_loss.size:
            bad_samples = np.moveaxis(bad, axis, 0).reshape(bad_loss.size, -1).any(axis=1)
            if (bad_samples & ~bad_loss).any():
                state.only_in_bad_samples = False
            room = _LISTED - len(state.samples)
            state.samples += [offset + int(i) for i in np.flatnonzero(bad_samples)[:room]]
        else:
            state.only_in_bad_samples = False
        good = flat[np.isfinite(flat)].astype(np.float64)
        if good.size:
            state.squares += float(np.dot(good, good))
            state.max_abs = max(state.max_abs, float(np.max(np.abs(good))))

    def _precision(self, result: ChunkResult) -> None:
        sums = result.precision
        assert sums is not None
        if not self.precision_seen:
            self.precision = [0.0, 0.0, sums.low_dtype, sums.promoted, sums.no_kernel]
            self.precision_name = sums.precision
            self.precision_seen = True
        self.precision[0] += sums.exact
        self.precision[1] += sums.low
        self.precision[3] = self.precision[3] and sums.promoted
        self.precision[4] = self.precision[4] or sums.no_kernel

    def count_classes(self, arrays: dict[str, np.ndarray], result: ChunkResult | None) -> None:
        """Count predicted versus true classes in one chunk (computed or not).

        Called for every chunk whose target converted to class indices, whether torch
        computed it or not, so the counts describe inputs that block the value too.
        """
        setup = self.class_setup
        if setup is None:
            return
        classes = setup.classes
        if self.classes is None:
            zeros = np.zeros(classes, dtype=np.int64)
            self.classes = _Classes(zeros, zeros.copy(), zeros.copy(), np.zeros(classes))
        state = self.classes
        scores = np.asarray(arrays[setup.prediction])
        labels = np.asarray(arrays[setup.target]).astype(np.int64, copy=False)
        # NaN scores would make argmax meaningless; they are findings of their own
        predicted = np.argmax(np.where(np.isfinite(scores), scores, -np.inf), axis=1)
        counted = (
            np.ones(labels.shape, dtype=bool)
            if setup.ignore_index is None
            else labels != setup.ignore_index
        )
        true = labels[counted]
        hits = predicted[counted]
        in_range = (true >= 0) & (true < classes)
        state.true += np.bincount(true[in_range], minlength=classes)
        state.predicted += np.bincount(hits, minlength=classes)[:classes]
        state.correct += np.bincount(true[in_range & (hits == true)], minlength=classes)
        if predicted.ndim == 1 and self.kept is not None:
            self.kept_predicted.append(predicted)
        unreduced = np.asarray(result.unreduced if result is not None else (), dtype=np.float64)
        state.chunks += 1
        if unreduced.shape == labels.shape:
            state.with_losses += 1
            losses = unreduced[counted]
            state.loss_sum += np.bincount(
                true[in_range], weights=losses[in_range], minlength=classes
            )
        state.out_of_range += int((~in_range).sum())
        state.ignored += int((~counted).sum())
        state.total += int(true.size)

    # ------------------------------------------------------------------ merge

    def merge(self, later: Accumulator) -> None:
        """Fold in the accumulator of the samples that follow these (a later shard's, whose
        sample indices are already global): every count, sum and list as if its chunks had
        been added here, in order; among equal extremes the earlier sample wins, as in
        :meth:`add`. ``later`` is taken over (its arrays are kept or changed here), so it is
        not used again."""
        if not self._results:
            self._results = later._results
        if later.chunks:
            self.dtype, self.elements = later.dtype, later.elements
        self.chunks += later.chunks
        self.loss_sum += later.loss_sum
        self.denominator += later.denominator
        self.finite += later.finite
        self.finite_sum += later.finite_sum
        if later.maximum > self.maximum:
            self.maximum, self.argmax = later.maximum, later.argmax
        if later.minimum < self.minimum:
            self.minimum, self.argmin = later.minimum, later.argmin
        self.largest = max(self.largest, later.largest)
        self.negative += later.negative
        self.ignored_samples += later.ignored_samples
        self.nan += later.nan
        self.positive_inf += later.positive_inf
        self.negative_inf += later.negative_inf
        self.bad_samples = (self.bad_samples + later.bad_samples)[:_LISTED]
        self.described = (self.described + later.described)[:_DESCRIBED]
        self.worst = sorted(self.worst + later.worst, key=lambda w: (-w[0], -w[1]))[: self.top]
        self.warnings.update(later.warnings)
        if self.samples:
            self._sample.merge(later._sample)
        else:  # nothing computed before (an empty first shard): the later sample as it is
            self._sample = later._sample
        self._merge_kept(later)
        for name, state in later.gradients.items():
            mine = self.gradients.get(name)
            if mine is None:
                self.gradients[name] = state
            else:
                _merge_gradient(mine, state)
        self._merge_precision(later)
        self._merge_classes(later)
        self.samples += later.samples

    def _merge_kept(self, later: Accumulator) -> None:
        """Every per-sample loss and gradient stays kept while the two hold few enough."""
        few = self.keep_all or self.samples + later.samples <= KEEP_SAMPLES
        if self.kept is None or later.kept is None or not few:
            self.kept = self.kept_ignored = None
            self.kept_predicted.clear()
        else:
            self.kept += later.kept
            if self.kept_ignored is not None and later.kept_ignored is not None:
                self.kept_ignored += later.kept_ignored
            self.kept_predicted += later.kept_predicted
        elements = {
            name: state.elements
            + (later.gradients[name].elements if name in later.gradients else 0)
            for name, state in self.gradients.items()
        }
        self.kept_gradients = (
            self.kept is not None
            and self.kept_gradients
            and later.kept_gradients
            and (self.keep_all or all(count <= KEEP_SAMPLES for count in elements.values()))
        )
        if not self.kept_gradients:
            for state in (*self.gradients.values(), *later.gradients.values()):
                state.kept.clear()

    def _merge_precision(self, later: Accumulator) -> None:
        if not later.precision_seen:
            return
        if not self.precision_seen:
            self.precision = list(later.precision)
            self.precision_name = later.precision_name
            self.precision_seen = True
            return
        self.precision[0] += later.precision[0]
        self.precision[1] += later.precision[1]
        self.precision[3] = self.precision[3] and later.precision[3]
        self.precision[4] = self.precision[4] or later.precision[4]

    def _merge_classes(self, later: Accumulator) -> None:
        theirs = later.classes
        if theirs is None:
            return
        mine = self.classes
        if mine is None:
            self.classes = theirs
            return
        mine.true += theirs.true
        mine.predicted += theirs.predicted
        mine.correct += theirs.correct
        mine.loss_sum += theirs.loss_sum
        mine.out_of_range += theirs.out_of_range
        mine.ignored += theirs.ignored
        mine.total += theirs.total
        mine.chunks += theirs.chunks
        mine.with_losses += theirs.with_losses

    # ------------------------------------------------------------------ compute

    def divisor(self) -> float:
        """What the summed losses (and the gradients of the sums) are divided by."""
        if self.reduction in ("none", "sum"):
            return 1.0
        if self.reduction == "mean":
            return self.denominator * self.elements
        return self.denominator  # batchmean

    @property
    def gradient_scale(self) -> float:
        """What a chunk's gradients (of its summed losses) are multiplied by to become the value's."""
        if self.single:
            return 1.0
        divisor = self.divisor()
        if divisor:
            return 1.0 / divisor
        # 0/0: torch's gradient is NaN, but 0 where no sample reaches the loss (every target
        # ignored: the gradients of the chunks' sums are 0 already)
        return 0.0 if self.samples and self.ignored_samples == self.samples else math.nan

    @property
    def single(self) -> bool:
        """One chunk computed with the user's reduction: torch's value and gradients as they are."""
        return self.chunks == 1 and bool(self._results) and self._results[0].reduced

    def finish(self) -> Computation:
        """The Computation of every chunk added."""
        first = self._results[0] if self._results else None
        divisor = self.divisor()
        scale = self.gradient_scale
        if self.reduction == "none":
            value: float | None = None
            denominator: float | None = None
        else:
            denominator = 1.0 if self.reduction == "sum" else self.denominator
            if self.single:
                assert first is not None
                value = first.value
                denominator = first.denominator
            elif self.reduction == "sum":
                value = self.loss_sum
            else:
                value = self.loss_sum / self.denominator if self.denominator else math.nan
            if value is not None and not self.single and self.dtype in ("float16", "bfloat16"):
                # torch returns the whole value in the dtype it computes in: so does the stream
                value = _rounded_to(value, self.dtype)
        if not self.single and math.isnan(scale):
            self._nan_gradients()  # 0/0: torch's gradient of a NaN mean is NaN everywhere
        per_sample = (
            np.concatenate(self.kept).astype(np.float64, copy=False) if self.kept else np.empty(0)
        )
        ignored = (
            np.concatenate(self.kept_ignored)
            if self.kept is not None and self.kept_ignored
            else None
        )
        gradients = {
            name: (np.concatenate(state.kept, axis=0) if len(state.kept) > 1 else state.kept[0])
            for name, state in self.gradients.items()
            if state.kept and self.kept_gradients
        }
        if not self.single:  # torch's own gradients when single; else scaled, in float64
            gradients = {name: (g * scale).astype(np.float64) for name, g in gradients.items()}
        return Computation(
            value=value,
            dtype=self.dtype,
            denominator=denominator,
            per_sample=per_sample,
            ignored=ignored,
            gradients=gradients,
            warnings=tuple(self.warnings),
            streamed=not self.single,
            chunks=self.chunks,
            summary=self._summary(per_sample),
            gradient_summaries=self._gradient_summaries(scale),
            worst=tuple((index, loss) for _, index, loss in self.worst),
            totals=self._totals(value, divisor),
            predicted=np.concatenate(self.kept_predicted)
            if self.kept is not None
            and self.kept_predicted
            and sum(p.size for p in self.kept_predicted) == per_sample.size
            else None,
            losses_sampled=self._sample.values(),
            quantiles_exact=self._sample.exact or (self.kept is not None and self.keep_all),
        )

    def _summary(self, per_sample: np.ndarray) -> dict[str, Any]:
        # how many losses the quantiles come from: every finite one, or the uniform sample
        quantile_samples = self._sample.size
        if not self.finite:
            quantiles = None
        elif self.keep_all and per_sample.size == self.samples:
            # one copy, partitioned in place (np.quantile would copy it again)
            finite = (
                per_sample.copy()
                if self.finite == per_sample.size
                else per_sample[np.isfinite(per_sample)]
            )
            levels = [0.5, 0.9, 0.99]
            quantiles = [float(q) for q in np.quantile(finite, levels, overwrite_input=True)]
            quantile_samples = finite.size
        else:
            quantiles = self._sample.quantiles([0.5, 0.9, 0.99])
        return {
            "n": self.samples,
            "mean": _finite(self.finite_sum / self.finite) if self.finite else None,
            "min": _finite(self.minimum) if self.finite else None,
            "max": _finite(self.maximum) if self.finite else None,
            "argmax": self.argmax if self.finite else None,
            "p50": _finite(quantiles[0]) if quantiles else None,
            "p90": _finite(quantiles[1]) if quantiles else None,
            "p99": _finite(quantiles[2]) if quantiles else None,
            "quantile_samples": int(quantile_samples),
        }

    def _full_shape(self, state: _Gradient) -> list[int]:
        shape = list(state.shape)
        if not self.single and shape:
            shape[0] = self.samples
        return shape

    def _nan_gradients(self) -> None:
        """Every gradient element NaN: the denominator is 0 (every weight or target ignored)."""
        for state in self.gradients.values():
            state.non_finite = state.elements
            state.squares = state.max_abs = 0.0
            state.zeros = 0
            shape = self._full_shape(state)
            first = range(min(_POSITIONS, state.elements))
            state.positions = [tuple(int(i) for i in np.unravel_index(k, shape)) for k in first]
            state.samples = list(range(min(_LISTED, self.samples)))
            state.only_in_bad_samples = False

    def _gradient_summaries(self, scale: float) -> dict[str, dict[str, Any]]:
        summaries = {}
        for name, state in self.gradients.items():
            finite_scale = 0.0 if math.isnan(scale) else abs(scale)
            summaries[name] = {
                "shape": self._full_shape(state),
                "norm": _finite(math.sqrt(state.squares) * finite_scale) if state.elements else 0.0,
                "max_abs": _finite(state.max_abs * finite_scale) if state.elements else 0.0,
                "zero_fraction": state.zeros / state.elements if state.elements else 0.0,
                "non_finite": state.non_finite,
            }
        return summaries

    def _totals(self, value: float | None, divisor: float) -> LossTotals:
        probe = None
        if self.precision_seen:
            exact, low, low_dtype, promoted, no_kernel = self.precision
            if not self.single and divisor:
                exact, low = exact / divisor, low / divisor
            probe = PrecisionProbe(
                precision=self.precision_name,
                exact=exact,
                low=low,
                low_dtype=low_dtype,
                promoted=promoted,
                no_kernel=no_kernel,
            )
        return LossTotals(
            nan=self.nan,
            positive_inf=self.positive_inf,
            negative_inf=self.negative_inf,
            bad_samples=tuple(self.bad_samples),
            described=tuple(self.described),
            negative=self.negative,
            minimum=self.minimum if self.finite else math.nan,
            argmin=self.argmin if self.finite else None,
            largest=self.largest,
            gradients={
                name: GradientTotals(
                    count=state.non_finite,
                    first_positions=tuple(state.positions),
                    samples=tuple(state.samples),
                    only_in_bad_samples=state.only_in_bad_samples,
                )
                for name, state in self.gradients.items()
            },
            precision=probe,
        )

    def class_totals(self) -> ClassTotals | None:
        """Predicted versus true classes over every chunk counted (None: not a class-index loss)."""
        setup, state = self.class_setup, self.classes
        if setup is None or state is None:
            return None
        return ClassTotals(
            classes=setup.classes,
            names=setup.names,
            true=state.true,
            predicted=state.predicted,
            correct=state.correct,
            loss_sum=state.loss_sum if state.with_losses == state.chunks else None,
            out_of_range=state.out_of_range,
            ignored=state.ignored,
            total=state.total,
        )


def _merge_gradient(mine: _Gradient, later: _Gradient) -> None:
    """Fold in a later shard's gradient statistics (its positions already global)."""
    mine.squares += later.squares
    mine.max_abs = max(mine.max_abs, later.max_abs)
    mine.zeros += later.zeros
    mine.elements += later.elements
    mine.non_finite += later.non_finite
    mine.positions = (mine.positions + later.positions)[:_POSITIONS]
    mine.samples = (mine.samples + later.samples)[:_LISTED]
    mine.only_in_bad_samples = mine.only_in_bad_samples and later.only_in_bad_samples
    mine.kept += later.kept


def _squares(values: np.ndarray) -> float:
    """The sum of squares of a flat array, in float64: float32 in blocks of 1024, then float64.

    One pass and no float64 copy of a whole chunk; the rounding of a block of 1024 float32
    squares (about 1e-5 relative at worst) stays far below what a gradient summary shows.
    """
    if values.dtype == np.float64 or values.size < 1024:
        as64 = values.astype(np.float64, copy=False)
        return float(np.dot(as64, as64))
    whole = values.size - values.size % 1024
    blocks = values[:whole].reshape(-1, 1024)
    total = float(np.einsum("ij,ij->i", blocks, blocks).sum(dtype=np.float64))
    tail = values[whole:].astype(np.float64)
    return total + float(np.dot(tail, tail))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _rounded_to(value: float, dtype: str) -> float:
    """``value`` rounded to float16 or bfloat16 (by torch: numpy has no bfloat16)."""
    if dtype == "float16":
        return float(np.float16(value))
    import torch

    return float(torch.tensor(value, dtype=torch.float64).to(torch.bfloat16))
