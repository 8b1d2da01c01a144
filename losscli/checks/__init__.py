"""Checks: small pure functions that compare the inputs (and the result) with what a loss wants.

Input checks see only shapes, dtypes and values, and run before torch is needed; result
checks also see the :class:`~losscli.result.Computation`. Checks report; they never
convert or repair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from losscli.findings import Finding
from losscli.loaders import LoadedArray
from losscli.losses import LossSpec
from losscli.result import Computation


@dataclass(frozen=True)
class CheckContext:
    """Everything an input check may look at.

    Attributes:
        spec: the loss.
        inputs: argument name → the array as loaded (original dtype).
        arrays: argument name → the array torch will see (after conversion).
        options: torch keyword → value (tensor options as numpy arrays), with defaults filled in.
        soft_target: cross-entropy's target holds class probabilities.
        strict: nothing was converted.
    """

    spec: LossSpec
    inputs: dict[str, LoadedArray]
    arrays: dict[str, np.ndarray]
    options: dict[str, Any]
    soft_target: bool = False
    strict: bool = False

    def source(self, argument: str) -> str:
        """How messages name the file an argument came from."""
        return self.inputs[argument].source


InputCheck = Callable[[CheckContext], Iterable[Finding]]
ResultCheck = Callable[[CheckContext, Computation], Iterable[Finding]]


def input_checks() -> tuple[InputCheck, ...]:
    """Every input check, in the order their findings are reported."""
    from losscli.checks import classes, domains, dtypes, numerics, shapes

    return (
        *shapes.CHECKS,
        *classes.CHECKS,
        *domains.CHECKS,
        *dtypes.CHECKS,
        *numerics.INPUT_CHECKS,
    )


def result_checks() -> tuple[ResultCheck, ...]:
    """Every check that needs the computed loss."""
    from losscli.checks import classes, domains, dtypes, numerics

    return (
        *classes.RESULT_CHECKS,
        *domains.RESULT_CHECKS,
        *dtypes.RESULT_CHECKS,
        *numerics.RESULT_CHECKS,
    )


def run_input_checks(context: CheckContext) -> list[Finding]:
    """Run every input check on ``context``."""
    return [f for check in input_checks() for f in check(context)]


def run_result_checks(context: CheckContext, computation: Computation) -> list[Finding]:
    """Run every result check."""
    return [f for check in result_checks() for f in check(context, computation)]
