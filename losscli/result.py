"""Computation: the numbers torch produced for one loss (torch-free, so checks can read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Computation:
    """What torch computed.

    Attributes:
        value: the reduced loss, or None for ``reduction='none'``.
        dtype: the dtype torch computed in.
        per_sample: float64 ``[batch]``: each sample's loss (see ``compute.per_sample_losses``).
        denominator: ``value == per_sample.sum() / denominator``; None for ``none``.
        ignored: bool ``[batch]``: samples whose every target equals ignore_index, or None.
        gradients: argument name → d(value)/d(argument), same shape as the argument.
        warnings: what torch warned about while computing.
        streamed: computed chunk by chunk (value accumulated in float64).
        summary: a streamed computation's per-sample summary, accumulated chunk by chunk
            (``per_sample`` then holds every value only when the input is small); None when
            the summary is computed from ``per_sample``.
        gradient_summaries: a streamed computation's gradient summaries by argument name
            (``gradients`` is then empty).
        worst: a streamed computation's worst samples, ``(index, loss)`` worst first.
    """

    value: float | None
    dtype: str
    per_sample: np.ndarray
    denominator: float | None
    ignored: np.ndarray | None = None
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    streamed: bool = False
    summary: dict[str, Any] | None = None
    gradient_summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    worst: tuple[tuple[int, float], ...] = ()
