"""Numeric checks: non-finite inputs, and a loss or gradient that came out NaN/Inf."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from losscli.checks import CheckContext, InputCheck, ResultCheck
from losscli.findings import Finding, Severity, finding
from losscli.result import Computation


def _positions(mask: np.ndarray, limit: int = 3) -> list[list[int]]:
    return [[int(i) for i in index] for index in np.argwhere(mask)[:limit]]


def check_non_finite_input(context: CheckContext) -> Iterator[Finding]:
    for argument in context.spec.arguments:
        values = context.inputs[argument.name].values
        if values.dtype.kind != "f" or values.size == 0:
            continue
        bad = ~np.isfinite(values)
        count = int(bad.sum())
        if not count:
            continue
        nans = int(np.isnan(values).sum())
        first = _positions(bad)
        yield finding(
            "non-finite-input",
            Severity.ERROR,
            f"{argument.name} ({context.source(argument.name)}) holds {nans} NaN and {count - nans} Inf "
            f"of {values.size} values (first at {first[0] if len(first[0]) > 1 else first[0][0]})",
            "find where the NaN/Inf first appears in the model (torch.autograd.set_detect_anomaly(True)), "
            "or drop those samples before the loss",
            argument=argument.name,
            nan=nans,
            inf=count - nans,
            first_positions=first,
        )


def check_non_finite_loss(context: CheckContext, computation: Computation) -> Iterator[Finding]:
    per_sample = computation.per_sample
    bad = ~np.isfinite(per_sample)
    value_bad = computation.value is not None and not np.isfinite(computation.value)
    if not bad.any() and not value_bad:
        return
    samples = [int(i) for i in np.flatnonzero(bad)[:5]]
    described = (
        f"{int(bad.sum())} of {per_sample.size} per-sample losses are NaN/Inf (samples {samples})"
        if bad.any()
        else ""
    )
    value = f"the value is {computation.value}" if value_bad else ""
    yield finding(
        "non-finite-loss",
        Severity.ERROR,
        "; ".join(part for part in (value, described) if part),
        "run losscli debug on the same inputs to see which input or option produces it",
        samples=samples,
        count=int(bad.sum()),
    )


def check_non_finite_gradient(context: CheckContext, computation: Computation) -> Iterator[Finding]:
    for name, gradient in computation.gradients.items():
        bad = ~np.isfinite(gradient)
        if bad.any():
            first = _positions(bad)
            yield finding(
                "non-finite-gradient",
                Severity.ERROR,
                f"the gradient for {name} holds {int(bad.sum())} NaN/Inf of {gradient.size} values (first at {first[0]})",
                "look for inputs at the edge of the loss's domain (log(0), division by a zero variance)",
                argument=name,
                count=int(bad.sum()),
                first_positions=first,
            )


INPUT_CHECKS: tuple[InputCheck, ...] = (check_non_finite_input,)
RESULT_CHECKS: tuple[ResultCheck, ...] = (check_non_finite_loss, check_non_finite_gradient)
