"""Comparison: several losses evaluated on the same inputs, loaded once.

A loss whose inputs do not fit (another number of inputs, an option value it refuses) is
an :class:`Entry` with an ``error`` instead of a report; one that torch rejects is a report
with a ``torch-rejected`` finding. Neither stops the other losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from losscli import options as loss_options
from losscli import pipeline
from losscli.errors import UsageError
from losscli.loaders import LoadedArray, load
from losscli.losses import LossSpec, flag_for
from losscli.report import Gates, Report, tripped_gates
from losscli.sources import check_one_stdin, parse_source


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


def load_once(arguments: Sequence[str], stdin_format: str = "csv") -> list[LoadedArray]:
    """Load each INPUT argument once, in order; unreadable input raises LoadError."""
    check_one_stdin(arguments)
    return [load(parse_source(text), stdin_format) for text in arguments]


def options_for(spec: LossSpec, given: dict[str, Any]) -> dict[str, Any]:
    """The given options that ``spec`` takes (the others are meant for other losses)."""
    return {name: value for name, value in given.items() if spec.option(name) is not None}


def check_options_apply(specs: Sequence[LossSpec], given: dict[str, Any]) -> None:
    """A given option that none of ``specs`` takes is a usage error, never ignored."""
    for name, value in given.items():
        if value is not None and all(spec.option(name) is None for spec in specs):
            flag = flag_for(name)
            losses = ", ".join(spec.name for spec in specs)
            raise UsageError(f"{flag} applies to none of the compared losses ({losses})")


def evaluate_all(
    specs: Sequence[LossSpec],
    loaded: Sequence[LoadedArray],
    arguments: Sequence[str],
    given: dict[str, Any],
    float_dtype: str = "float32",
    strict: bool = False,
) -> list[Entry]:
    """Evaluate every loss on the same loaded inputs.

    Args:
        specs: the losses, in the order to report them.
        loaded: the inputs, loaded once, in the order given.
        arguments: the INPUT texts the inputs came from (for messages).
        given: torch keyword → value as typed (None: not given); each loss gets the ones it takes.
        float_dtype: the float dtype torch computes in.
        strict: convert nothing.
    """
    check_options_apply(specs, given)
    entries: list[Entry] = []
    for spec in specs:
        try:
            names = pipeline.bind(spec, arguments)
            resolved = loss_options.resolve(spec, options_for(spec, given))
        except UsageError as error:
            entries.append(Entry(spec, error=error.line()))
            continue
        inputs = dict(zip(names, loaded, strict=True))
        report = pipeline.evaluate(spec, inputs, resolved, float_dtype, strict)
        entries.append(Entry(spec, report=report))
    return entries


def tripped(entry: Entry, gates: Gates) -> list[str]:
    """The gates one entry trips; an entry that could not be set up fails unless ``never``."""
    if entry.report is not None:
        return tripped_gates(entry.report, gates)
    if gates.fail_on == "never":
        return []
    return [f"could not run: {entry.error}"]
