"""Report: everything computed for one loss, plus findings; decides the exit code in one place."""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losscli.errors import UsageError
from losscli.findings import Finding, Severity
from losscli.loaders import LoadedArray
from losscli.losses import LossSpec
from losscli.losses import get as get_loss
from losscli.printable import printable
from losscli.result import ClassTotals, Computation

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ShardInfo:
    """The files of a sharded input (a glob): how many, and the first and last in order."""

    count: int
    first: str
    last: str

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": self.first, "last": self.last}


@dataclass(frozen=True)
class InputInfo:
    """Where one argument came from and what it was.

    Attributes:
        source: how messages name it.
        shape: its shape.
        dtype: the dtype as stored (``bfloat16`` for a bfloat16 tensor, which is widened
            to float32 when loaded), or as read from text (float64, int64).
        torch_dtype: the dtype of the tensor torch was given (after conversion; None when
            nothing was converted yet).
        shards: the files of an input given as a glob of shards, else None.
    """

    source: str
    shape: tuple[int, ...]
    dtype: str
    torch_dtype: str | None = None
    shards: ShardInfo | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", printable(self.source))

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "source": self.source,
            "shape": list(self.shape),
            "dtype": self.dtype,
        }
        if self.torch_dtype is not None:
            record["torch_dtype"] = self.torch_dtype
        if self.shards is not None:
            record["shards"] = self.shards.to_dict()
        return record


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
        maps: the ``--map`` lines applied to the inputs before any check.
    """

    spec: LossSpec
    options: dict[str, Any]
    inputs: dict[str, InputInfo]
    computation: Computation | None
    findings: tuple[Finding, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    loaded: dict[str, LoadedArray] = field(default_factory=dict, compare=False, repr=False)
    classes: ClassTotals | None = None
    maps: tuple[str, ...] = ()

    @property
    def value(self) -> float | None:
        """torch's value, or None when the inputs could not work (or ``reduction='none'``)."""
        return None if self.computation is None else self.computation.value

    @property
    def ok(self) -> bool:
        """No finding at warning or error severity."""
        return all(f.severity is Severity.INFO for f in self.findings)

    @property
    def per_sample(self) -> np.ndarray | None:
        """Each sample's loss (float64), or None when nothing was computed."""
        return None if self.computation is None else self.computation.per_sample

    @property
    def gradient(self) -> dict[str, np.ndarray]:
        """Argument name → the gradient of the value with respect to it (float arguments
        torch differentiates; empty when nothing was computed)."""
        return {} if self.computation is None else dict(self.computation.gradients)

    def to_dict(self, all_values: bool = False) -> dict[str, Any]:
        """The report as the JSON contract (``losscli compute --format json``) holds it."""
        from losscli.render.json import report_dict

        return report_dict(self, all_values)

    def __rich__(self) -> Any:
        """The table view of ``losscli compute``, for ``rich.print(report)``."""
        from losscli.render.table import render

        return render(self)

    def __repr__(self) -> str:
        names = [f.name for f in self.findings]
        return f"Report(loss={self.spec.name!r}, value={self.value!r}, findings={names!r}, ok={self.ok})"


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


# a saved report is a few KB (compare's, with every loss, a few tens); anything near this
# size is not a report, and is not read
MAX_BASELINE_BYTES = 8 << 20


def load_baselines(path: str) -> dict[str, float]:
    """Loss name → value from a saved report: compute's JSON, compare's JSON or NDJSON.

    A report without a ``loss`` key is filed under ``""`` and applies to any loss. The gate
    that compares with it must be able to trip, so the file must be a regular file of at most
    :data:`MAX_BASELINE_BYTES`, and every value a finite number.

    Raises:
        UsageError: the baseline is missing, not a regular file, too big, not a report, or
            holds a value that is not a finite number (NaN, Infinity, 1e400).
    """
    name = printable(path)
    text = _baseline_text(path, name)
    try:
        saved = _parse_report(text)
    except ValueError as error:
        raise UsageError(f"{name}: not a JSON report ({error})") from None
    except RecursionError:
        raise UsageError(f"{name}: not a JSON report (nested too deep)") from None
    saved_reports = (
        saved.get("losses") if isinstance(saved, dict) and "losses" in saved else [saved]
    )
    values: dict[str, float] = {}
    for saved_report in saved_reports if isinstance(saved_reports, list) else []:
        if not isinstance(saved_report, dict):
            continue
        value = saved_report.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            loss = str(saved_report.get("loss", ""))
            if not math.isfinite(value):
                raise UsageError(
                    f"{name}: the baseline value{f' of {loss}' if loss else ''} is {value}, "
                    "not a finite number; a gate against it could never trip"
                )
            spec = get_loss(loss) if loss else None
            values[spec.name if spec else loss] = float(value)
    if not values:
        raise UsageError(
            f"{name}: not a losscli report with a numeric 'value' "
            "(save one with --format json; a report whose value is null cannot be a baseline)"
        )
    return values


def _baseline_text(path: str, name: str) -> str:
    """The baseline's text: a regular file, read without blocking and at most the limit."""
    try:
        # O_NONBLOCK: a FIFO with no writer must not hang the run (it is refused below)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UsageError(
            f"{name}: no such file (--baseline wants a report saved with --format json)"
        ) from None
    except (OSError, ValueError) as error:
        detail = getattr(error, "strerror", None) or error
        raise UsageError(f"{name}: cannot read the baseline ({detail})") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a directory" if stat.S_ISDIR(mode) else "a pipe or a device"
        raise UsageError(f"{name}: the baseline is {kind}, not a saved report file")
    with os.fdopen(descriptor, "rb") as stream:
        try:
            data = stream.read(MAX_BASELINE_BYTES + 1)
        except OSError as error:
            raise UsageError(
                f"{name}: cannot read the baseline ({error.strerror or error})"
            ) from None
    if len(data) > MAX_BASELINE_BYTES:
        raise UsageError(
            f"{name}: over {MAX_BASELINE_BYTES >> 20} MB, too big to be a saved report"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not a JSON report (not UTF-8 text)") from None


def _not_a_number(constant: str) -> Any:
    raise ValueError(f"{constant} is not a number a gate can compare with")


def _parse_report(text: str) -> Any:
    """One JSON document, or NDJSON (one report per line); NaN and Infinity refused.

    Raises:
        ValueError: not JSON, or a bare NaN/Infinity.
        RecursionError: nested deeper than the parser can go.
    """
    try:
        return json.loads(text, parse_constant=_not_a_number)
    except json.JSONDecodeError as error:
        try:
            lines = [line for line in text.splitlines() if line.strip()]
            return {"losses": [json.loads(line, parse_constant=_not_a_number) for line in lines]}
        except json.JSONDecodeError:
            raise ValueError(str(error)) from None


def exit_code(report: Report, gates: Gates) -> int:
    """0 when nothing trips a gate, else 1 (usage and load errors exit 2 before a report exists)."""
    return 1 if tripped_gates(report, gates) else 0
