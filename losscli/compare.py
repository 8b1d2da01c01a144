"""Comparison: several losses evaluated on the same inputs, each through the one pipeline.

Inputs that fit the memory budget are loaded once and shared; an input over it is streamed
for each loss. A loss whose inputs do not fit (another number of inputs, an option value it
refuses) is an :class:`~losscli.report.Entry` with an ``error`` instead of a report; one that
torch rejects is a report with a ``torch-rejected`` finding. Neither stops the other losses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from losscli import options as loss_options
from losscli import pipeline
from losscli.errors import UsageError
from losscli.loaders import LoadedArray
from losscli.losses import LossSpec, flag_for
from losscli.report import Entry, Gates, tripped_gates


def options_for(spec: LossSpec, given: dict[str, Any]) -> dict[str, Any]:
    """The given options that ``spec`` takes (the others are meant for other losses)."""
    return {name: value for name, value in given.items() if spec.option(name) is not None}


def check_options_apply(specs: Sequence[LossSpec], given: dict[str, Any]) -> None:
    """A given option that none of ``specs`` takes is a usage error, never ignored."""
    for name, value in given.items():
        if value is not None and all(spec.option(name) is None for spec in specs):
            losses = ", ".join(spec.name for spec in specs)
            raise UsageError(f"{flag_for(name)} applies to none of the compared losses ({losses})")


def evaluate_all(
    specs: Sequence[LossSpec],
    arguments: Sequence[str],
    given: dict[str, Any],
    settings: pipeline.Settings,
    budget: int,
    stdin_format: str = "csv",
    cache: dict[str, LoadedArray] | None = None,
    maps: Sequence[str] = (),
    memory_budget: str | None = None,
    dask: str | None = None,
) -> list[Entry]:
    """Evaluate every loss on the same inputs, each through :func:`losscli.runner.run`.

    Args:
        specs: the losses, in the order to report them.
        arguments: the INPUT texts, in the order given.
        given: torch keyword → value as typed (None: not given); each loss gets the ones it takes.
        settings: dtype, strictness and the other evaluation settings.
        budget: the memory budget in bytes (above it, inputs stream).
        stdin_format: the format of ``-``.
        cache: INPUT text → array already loaded whole, shared between the losses.
        maps: the ``--map`` lines; a loss whose inputs they do not name is an entry with an
            error.
        memory_budget: ``--memory-budget`` as typed, when given (the fixes' commands repeat it).
        dask: compute shards on this Dask cluster (``--dask``), or None.
    """
    from losscli import runner
    from losscli.invocation import Invocation

    check_options_apply(specs, given)
    cache = {} if cache is None else cache
    entries: list[Entry] = []
    for spec in specs:
        chosen = options_for(spec, given)
        try:
            pipeline.bind(spec, arguments)
            invocation = Invocation.typed(
                spec,
                arguments,
                chosen,
                maps,
                dtype=settings.float_dtype,
                strict=settings.strict,
                stdin_format=stdin_format,
                memory_budget=memory_budget,
            )
            resolved = loss_options.resolve(spec, chosen)
            report = runner.run(invocation, resolved, budget, settings, cache, dask)
        except UsageError as error:  # this loss cannot take these inputs: the others can
            entries.append(Entry(spec, error=error.line()))
            continue
        entries.append(Entry(spec, report=report))
    return entries


def tripped(entry: Entry, gates: Gates) -> list[str]:
    """The gates one entry trips; an entry that could not be set up fails unless ``never``."""
    if entry.report is not None:
        return tripped_gates(entry.report, gates)
    if gates.fail_on == "never":
        return []
    return [f"could not run: {entry.error}"]
