"""Runner: one command end to end, the one path every evaluating command takes.

Open the INPUTs (whole, or streamed over the memory budget), apply the ``--map`` lines,
run the pipeline, then try every remedy its findings propose (:func:`losscli.fixes.verify`).
``compute``, ``debug`` and ``compare`` all call :func:`run`, and the Python API
(:mod:`losscli.api`) calls :func:`run_loaded` on tensors already in memory, which differs
only in where the arrays come from. The fixes' trials evaluate
their commands on the tensors already in memory through the same :func:`evaluate_in_memory`
steps, so what a fix announces is what its command prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from losscli import chunks, fixes, pipeline, transforms
from losscli.invocation import Invocation
from losscli.loaders import LoadedArray
from losscli.mapping import mapped_feed
from losscli.report import Report


def run(
    invocation: Invocation,
    resolved: dict[str, Any],
    budget: int,
    settings: pipeline.Settings,
    cache: dict[str, LoadedArray] | None = None,
    dask: str | None = None,
) -> Report:
    """The report of ``invocation``, with its verified fixes.

    Args:
        invocation: the command.
        resolved: its loss options, resolved (``options.resolve``).
        budget: the memory budget in bytes.
        settings: how to evaluate (dtype, strictness, progress, per-sample sink).
        cache: INPUT text → array loaded whole, shared between commands (``compare``,
            ``debug``'s inference); filled in here.
        dask: compute the shards on this Dask cluster (an address, or ``local``).

    Raises:
        UsageError: a map does not fit, or the inputs cannot stream.
        LoadError: an input cannot be read.
    """
    spec = invocation.spec
    cache = {} if cache is None else cache
    feed: chunks.Feed = chunks.open_feed(
        spec,
        pipeline.bind(spec, list(invocation.arguments)),
        resolved,
        budget,
        settings.float_dtype,
        invocation.stdin_format,
        cache,
        dask,
    )
    return _verified(invocation, feed, resolved, budget, settings, cache)


def run_loaded(
    invocation: Invocation,
    resolved: dict[str, Any],
    loaded: Mapping[str, LoadedArray],
    budget: int,
    settings: pipeline.Settings,
) -> Report:
    """:func:`run` on INPUTs already in memory (INPUT text → array): the Python API's path.

    Raises:
        UsageError: a map does not fit.
    """
    bound = pipeline.bind(invocation.spec, list(invocation.arguments))
    feed = chunks.WholeFeed({name: loaded[typed] for name, typed in bound.items()})
    return _verified(invocation, feed, resolved, budget, settings, dict(loaded))


def _verified(
    invocation: Invocation,
    feed: chunks.Feed,
    resolved: dict[str, Any],
    budget: int,
    settings: pipeline.Settings,
    loaded: dict[str, LoadedArray],
) -> Report:
    """The pipeline's report on ``feed`` (its maps applied), with its remedies tried on
    ``loaded`` when the inputs were read whole."""
    try:
        feed = mapped_feed(feed, _maps(invocation), budget)
        report = pipeline.evaluate(invocation.spec, feed, resolved, settings=settings)
    finally:
        feed.close()
    report = dataclasses.replace(report, maps=invocation.maps)
    return fixes.verify(report, invocation, loaded if feed.whole else None, budget)


def evaluate_in_memory(
    invocation: Invocation, loaded: Mapping[str, LoadedArray], budget: int
) -> Report:
    """``invocation`` on INPUTs already loaded (INPUT text → array), without gradients.

    Raises:
        LossCliError: the command is a usage error (an option or a map that does not fit).
    """
    from losscli import options

    spec = invocation.spec
    resolved = options.resolve(spec, invocation.given())
    bound = pipeline.bind(spec, list(invocation.arguments))
    feed: chunks.Feed = chunks.WholeFeed({name: loaded[typed] for name, typed in bound.items()})
    feed = mapped_feed(feed, _maps(invocation), budget)
    settings = pipeline.Settings(invocation.dtype, invocation.strict, want_gradient=False)
    report = pipeline.evaluate(spec, feed, resolved, settings=settings)
    return dataclasses.replace(report, maps=invocation.maps)


def _maps(invocation: Invocation) -> tuple[transforms.Map, ...]:
    names = [a.name for a in invocation.spec.arguments]
    return transforms.parse_maps(invocation.maps, names, loss=invocation.loss)
