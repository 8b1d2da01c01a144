"""Domain checks: values outside what a loss accepts (unit interval, signs, counts, variances, distributions, CTC)."""

from __future__ import annotations

from losscli.checks import InputCheck, ResultCheck

CHECKS: tuple[InputCheck, ...] = ()
RESULT_CHECKS: tuple[ResultCheck, ...] = ()
