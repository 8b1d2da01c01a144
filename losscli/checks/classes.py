"""Class checks: cross-entropy/nll/multi-margin targets and inputs (indices, one-hot, logits versus probabilities)."""

from __future__ import annotations

from losscli.checks import InputCheck, ResultCheck

CHECKS: tuple[InputCheck, ...] = ()
RESULT_CHECKS: tuple[ResultCheck, ...] = ()
