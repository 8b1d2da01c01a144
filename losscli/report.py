"""Report: everything computed for one loss, plus findings; decides the exit code in one place."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losscli.errors import UsageError
from losscli.findings import Finding, Severity
from losscli.loaders import LoadedArray
from losscli.losses import LossSpec
from losscli.losses import get as get_loss
from losscli.result import ClassTotals, Computation

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class InputInfo:
    """Where one argument came from and what it was, as loaded."""

    source: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Report:
    """The outcome of one loss on one set of inputs.

    Attributes:
        spec: the loss.
        options: torch keyword → value, JSON-ready (tensor options as lists).
        inputs: argument name → where it came from.
        computation: what torch computed, or None when the inputs could not work.
        findings: every finding, input checks first.
        extra: what the checks saw (``checks``) and how the input streamed (``streaming``).
        loaded: argument name → the array as loaded, kept for the renderers that show the
            inputs (CSV prediction/target columns); empty when a streamed input was too large
            to keep.
        classes: predicted versus true classes, for losses on class-index targets.
    """

    spec: LossSpec
    options: dict[str, Any]
    inputs: dict[str, InputInfo]
    computation: Computation | None
    findings: tuple[Finding, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    loaded: dict[str, LoadedArray] = field(default_factory=dict, compare=False, repr=False)
    classes: ClassTotals | None = None

    @property
    def value(self) -> float | None:
        return None if self.computation is None else self.computation.value


@dataclass(frozen=True)
class Entry:
    """One loss of a comparison.

    Attributes:
        spec: the loss.
        report: what evaluating it produced, or None when it could not be set up.
        error: why it could not be set up (wrong number of inputs, an option it refuses).
    """

    spec: LossSpec
    report: Report | None = None
    error: str | None = None


@dataclass(frozen=True)
class Gates:
    """What makes a command exit 1.

    Attributes:
        fail_on: the lowest severity that fails (``error``, ``warning``, ``info``), or ``never``.
        max_loss: the value must not exceed this.
        baseline: a saved report's value to compare against.
        max_increase: the largest allowed relative increase over ``baseline`` (0.05 = 5 %).
    """

    fail_on: str = "error"
    max_loss: float | None = None
    baseline: float | None = None
    max_increase: float | None = None


def tripped_gates(report: Report, gates: Gates) -> list[str]:
    """Each gate the report trips, as a sentence for stderr; empty means exit 0."""
    tripped: list[str] = []
    if gates.fail_on != "never":
        threshold = Severity(gates.fail_on).rank
        failing = [f for f in report.findings if f.severity.rank >= threshold]
        if failing:
            names = ", ".join(dict.fromkeys(f.name for f in failing))
            tripped.append(
                f"{len(failing)} finding(s) at or above --fail-on {gates.fail_on}: {names}"
            )
    value = report.value
    if value is not None and not math.isfinite(value):
        tripped.append(f"the loss is {value}")
    if value is not None and math.isfinite(value):
        if gates.max_loss is not None and value > gates.max_loss:
            tripped.append(f"the loss {value:.6g} is above --max-loss {gates.max_loss:g}")
        if gates.baseline is not None:
            allowed = gates.baseline + abs(gates.baseline) * (gates.max_increase or 0.0)
            if value > allowed:
                increase = (
                    (value - gates.baseline) / abs(gates.baseline) if gates.baseline else math.inf
                )
                tripped.append(
                    f"the loss {value:.6g} is {increase:+.2%} over the baseline {gates.baseline:.6g} "
                    f"(--max-increase {gates.max_increase or 0:g})"
                )
    return tripped


def load_baselines(path: str) -> dict[str, float]:
    """Loss name → value from a saved report: compute's JSON, compare's JSON or NDJSON.

    A report without a ``loss`` key is filed under ``""`` and applies to any loss.
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such file (--baseline wants a report saved with --format json)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the baseline ({error})") from None
    try:
        saved: Any = json.loads(text)
    except json.JSONDecodeError as error:
        try:  # NDJSON: one report per line
            saved = {"losses": [json.loads(line) for line in text.splitlines() if line.strip()]}
        except json.JSONDecodeError:
            raise UsageError(f"{path}: not a JSON report ({error})") from None
    saved_reports = (
        saved.get("losses") if isinstance(saved, dict) and "losses" in saved else [saved]
    )
    values: dict[str, float] = {}
    for saved_report in saved_reports if isinstance(saved_reports, list) else []:
        if not isinstance(saved_report, dict):
            continue
        value = saved_report.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            name = str(saved_report.get("loss", ""))
            spec = get_loss(name) if name else None
            values[spec.name if spec else name] = float(value)
    if not values:
        raise UsageError(
            f"{path}: not a losscli report with a numeric 'value' "
            "(save one with --format json; a report whose value is null cannot be a baseline)"
        )
    return values


def exit_code(report: Report, gates: Gates) -> int:
    """0 when nothing trips a gate, else 1 (usage and load errors exit 2 before a report exists)."""
    return 1 if tripped_gates(report, gates) else 0
