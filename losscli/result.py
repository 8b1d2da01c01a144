"""Computation: the numbers torch produced for one loss (torch-free, so checks can read it)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """

    value: float | None
    dtype: str
    per_sample: np.ndarray
    denominator: float | None
    ignored: np.ndarray | None = None
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    streamed: bool = False
