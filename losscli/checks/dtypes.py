"""Dtype checks: mixed float dtypes and low precision."""

from __future__ import annotations

from losscli.checks import InputCheck, ResultCheck

CHECKS: tuple[InputCheck, ...] = ()
RESULT_CHECKS: tuple[ResultCheck, ...] = ()
