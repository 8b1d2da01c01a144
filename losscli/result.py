"""Computation: the numbers torch produced for one loss, accumulated over every chunk.

Torch-free, so that checks and renderers can read it. Whole tensors are one chunk: their
value is torch's reduced value, bit for bit; a streamed value is accumulated in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SampleRows:
    """The inputs of a few samples, as torch saw them, for messages about those samples.

    Attributes:
        index: the global sample index.
        arrays: argument name → that sample's values (its slice along the batch dimension).
    """

    index: int
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class GradientTotals:
    """NaN/Inf in one gradient, over every chunk.

    Attributes:
        count: how many elements are NaN/Inf.
        first_positions: the first few, as global positions.
        samples: the first few samples holding one.
        only_in_bad_samples: every sample holding one also has a NaN/Inf per-sample loss.
    """

    count: int = 0
    first_positions: tuple[tuple[int, ...], ...] = ()
    samples: tuple[int, ...] = ()
    only_in_bad_samples: bool = True


@dataclass(frozen=True)
class PrecisionProbe:
    """The loss recomputed in float64 and in the low precision an input was stored in.

    Attributes:
        precision: the low precision (``float16`` or ``bfloat16``).
        exact: the loss with every float argument in float64.
        low: the loss in ``low_dtype`` (the summed loss for reduction ``none``).
        low_dtype: the dtype torch computed ``low`` in.
        promoted: only the low-precision arguments were cast, and torch promoted the rest.
        no_kernel: torch has no kernel in that precision here, so ``low`` is losscli's own
            value (computed in ``Computation.dtype``).
    """

    precision: str
    exact: float
    low: float
    low_dtype: str
    promoted: bool = False
    no_kernel: bool = False


@dataclass(frozen=True)
class LossTotals:
    """What every per-sample loss and gradient showed, accumulated over the chunks.

    Attributes:
        nan: per-sample losses that are NaN.
        positive_inf: per-sample losses that are +Inf.
        negative_inf: per-sample losses that are -Inf.
        bad_samples: the first samples whose loss is NaN/Inf (at most 10).
        described: the inputs of the first few of ``bad_samples``.
        negative: finite per-sample losses clearly below 0 (:func:`clearly_negative`).
        minimum: the smallest finite per-sample loss (NaN when there is none).
        argmin: its sample.
        largest: the largest finite |per-sample loss| (0 when there is none).
        gradients: argument name → NaN/Inf in its gradient.
        precision: the low-precision probe, when an input was stored in float16/bfloat16.
    """

    nan: int = 0
    positive_inf: int = 0
    negative_inf: int = 0
    bad_samples: tuple[int, ...] = ()
    described: tuple[SampleRows, ...] = ()
    negative: int = 0
    minimum: float = float("nan")
    argmin: int | None = None
    largest: float = 0.0
    gradients: dict[str, GradientTotals] = field(default_factory=dict)
    precision: PrecisionProbe | None = None

    @property
    def non_finite(self) -> int:
        """Per-sample losses that are NaN or Inf."""
        return self.nan + self.positive_inf + self.negative_inf


@dataclass(frozen=True)
class ClassTotals:
    """Predicted (argmax) versus true classes of a class-index loss, over every chunk.

    Attributes:
        classes: C, the size of the prediction's class dimension.
        names: a name per class when the prediction came from a table with C named columns.
        true: ``[C]`` counted positions whose target is each class.
        predicted: ``[C]`` counted positions whose argmax is each class.
        correct: ``[C]`` counted positions where both are that class.
        loss_sum: ``[C]`` the summed element loss of the positions whose target is each class;
            None when torch did not compute every chunk.
        out_of_range: counted targets outside ``0..C-1``.
        ignored: targets equal to ``ignore_index``.
        total: counted targets (in range or not).
    """

    classes: int
    names: tuple[str, ...] | None
    true: np.ndarray
    predicted: np.ndarray
    correct: np.ndarray
    loss_sum: np.ndarray | None
    out_of_range: int
    ignored: int
    total: int

    @property
    def accuracy(self) -> float | None:
        """The share of counted positions where argmax equals the target."""
        return float(self.correct.sum() / self.total) if self.total else None

    @property
    def recall(self) -> list[float | None]:
        """Each class's share of its targets predicted right (None for a class never the target)."""
        return [
            float(correct / true) if true else None
            for correct, true in zip(self.correct, self.true, strict=True)
        ]

    @property
    def mean_loss(self) -> list[float | None] | None:
        """Each class's mean element loss (None for a class that is never the target, or NaN/Inf)."""
        if self.loss_sum is None:
            return None
        means = []
        for total, count in zip(self.loss_sum, self.true, strict=True):
            mean = float(total / count) if count else None
            means.append(mean if mean is not None and math.isfinite(mean) else None)
        return means

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "names": list(self.names) if self.names else None,
            "true": [int(c) for c in self.true],
            "predicted": [int(c) for c in self.predicted],
            "correct": [int(c) for c in self.correct],
            "recall": self.recall,
            "accuracy": self.accuracy,
            "mean_loss": self.mean_loss,
            "out_of_range": self.out_of_range,
            "ignored": self.ignored,
            "total": self.total,
        }


@dataclass(frozen=True)
class Computation:
    """What torch computed, over every chunk.

    Attributes:
        value: the reduced loss, or None for ``reduction='none'``.
        dtype: the dtype torch computed in.
        denominator: ``value == sum(per_sample) / denominator``; None for ``none``.
        per_sample: float64: the per-sample losses of ``rows`` (see
            ``compute.per_sample_losses``); every one of them, in order, when ``rows`` is
            None, and empty when they were not kept (a large streamed input).
        rows: the global sample index of each entry of ``per_sample`` (and of the first
            dimension of ``gradients``), or None.
        ignored: bool, per entry of ``per_sample``: every target of that sample equals
            ignore_index; None when the loss has no ignore_index.
        gradients: argument name → d(value)/d(argument) for the same rows.
        warnings: what torch warned about while computing.
        streamed: computed chunk by chunk (the value accumulated in float64).
        chunks: how many chunks were computed.
        summary: the per-sample summary of every sample (n, mean, min, max, argmax, p50,
            p90, p99).
        gradient_summaries: argument name → norm, max |g|, zero fraction, non-finite count.
        worst: the worst samples, ``(sample, loss)``, worst first.
        totals: NaN/Inf, negative losses and the precision probe, over every sample.
        predicted: the argmax class of each entry of ``per_sample``, for class-index losses
            with one target per sample; None otherwise.
        losses_sampled: a uniform sample of the finite per-sample losses (every one of
            them when there are at most 2^20), for histograms; ``quantiles_exact`` says which.
        quantiles_exact: ``losses_sampled`` holds every finite per-sample loss.
    """

    value: float | None
    dtype: str
    denominator: float | None
    per_sample: np.ndarray
    rows: np.ndarray | None = None
    ignored: np.ndarray | None = None
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    streamed: bool = False
    chunks: int = 1
    summary: dict[str, Any] = field(default_factory=dict)
    gradient_summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    worst: tuple[tuple[int, float], ...] = ()
    totals: LossTotals = field(default_factory=LossTotals)
    predicted: np.ndarray | None = None
    losses_sampled: np.ndarray = field(default_factory=lambda: np.empty(0))
    quantiles_exact: bool = True

    @property
    def complete(self) -> bool:
        """``per_sample`` holds every sample's loss, in order."""
        return self.rows is None and self.per_sample.size == self.summary.get("n", -1)


@dataclass(frozen=True)
class ChunkResult:
    """What torch computed on one chunk of samples (whole tensors are one chunk).

    Attributes:
        value: torch's reduced value, when ``reduced``; else None.
        reduced: computed with the user's reduction on the whole input, so ``value`` and
            ``gradients`` are those of the value; otherwise ``gradients`` are those of the
            sum of the chunk's unreduced losses (scaled once the denominator is known).
        dtype: the dtype torch computed in.
        per_sample: float64 ``[rows]``: each sample's loss (``compute.per_sample_losses``).
        denominator: this chunk's share of the denominator (summed over chunks); None for
            reduction ``none``.
        ignored: bool ``[rows]``: samples whose every target is ignore_index, or None.
        gradients: argument name → gradient, same shape as the argument.
        elements: elements of the unreduced loss per sample.
        unreduced: torch's ``reduction='none'`` output, ``[rows, ...]``.
        warnings: what torch warned about.
        precision: the loss in float64 and in a low precision, when asked for: the loss
            itself for a whole input; for a chunk of a streamed one, the sum of its unreduced
            losses (the accumulator divides by the denominator at the end).
    """

    value: float | None
    reduced: bool
    dtype: str
    per_sample: np.ndarray
    denominator: float | None
    ignored: np.ndarray | None = None
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    elements: int = 1
    unreduced: np.ndarray = field(default_factory=lambda: np.empty(0))
    warnings: tuple[str, ...] = ()
    precision: PrecisionProbe | None = None


def clearly_negative(losses: np.ndarray | float, dtype: str) -> np.ndarray:
    """Which losses are below 0 by more than the rounding of ``dtype`` can explain.

    1 - cos(x, x) can round to -1e-7 in float32: a loss counts as negative only below
    -16 eps max(1, |loss|), eps that of the dtype torch computed in (float32's otherwise).
    """
    values = np.asarray(losses, dtype=np.float64)
    kind = np.dtype(dtype) if dtype in ("float16", "float32", "float64") else np.dtype(np.float32)
    eps = float(np.finfo(kind).eps)
    return values < -16 * eps * np.maximum(1.0, np.abs(values))
