"""Mapping: the ``--map`` transforms applied to the inputs, whole or chunk by chunk.

:mod:`losscli.transforms` parses and evaluates one map; this module applies the maps of a
command to what the pipeline is fed, before any check: to tensors in memory
(:func:`mapped`), or to every chunk of a streamed input (:class:`MappedFeed`), after
making sure the maps treat each sample on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from losscli.chunks import Chunk, Feed, WholeFeed
from losscli.errors import UsageError
from losscli.loaders import LoadedArray
from losscli.report import InputInfo
from losscli.shards import ShardFeed
from losscli.transforms import Map, apply_maps, mixing_problem

# the samples of the first chunk the maps are tried on, whole and in two parts
_TRIED_ROWS = 8


def mapped_feed(feed: Feed, maps: Sequence[Map], limit_bytes: int) -> Feed:
    """``feed`` with the maps applied: tensors in memory at once, a stream chunk by chunk."""
    if not maps:
        return feed
    if isinstance(feed, WholeFeed):
        return WholeFeed(mapped(feed.inputs, maps, limit_bytes))
    if isinstance(feed, ShardFeed):  # each shard's chunks, wherever the shard is evaluated
        return feed.with_maps(maps, limit_bytes)
    return MappedFeed(feed, maps, limit_bytes)


def mapped(
    inputs: dict[str, LoadedArray], maps: Sequence[Map], limit_bytes: int
) -> dict[str, LoadedArray]:
    """``inputs`` with every map applied (each map reads the inputs as given)."""
    if not maps:
        return inputs
    values = apply_maps(maps, {name: a.values for name, a in inputs.items()}, limit_bytes)
    found = dict(inputs)
    for item in maps:
        found[item.name] = _result(inputs, item, values[item.name])
    return found


def _result(inputs: dict[str, LoadedArray], item: Map, values: Any) -> LoadedArray:
    """A map's output as a loaded input: it keeps the file of the input it replaces.

    The stored dtype and the column names survive only a map that keeps the values' dtype
    and shape (``target - 1`` on an int column keeps both; ``input.log()`` on bfloat16 does
    not keep the stored precision's meaning, so it is dropped).
    """
    original = inputs[item.name]
    reads = [inputs[name] for name in sorted(item.reads())] or [original]
    same_layout = values.dtype == original.values.dtype and values.shape == original.values.shape
    return LoadedArray(
        values=values,
        source=original.source,
        columns=original.columns if values.shape == original.values.shape else None,
        stored_dtype=original.stored_dtype if same_layout else None,
        from_text=all(a.from_text for a in reads),
    )


class MappedFeed:
    """A streamed feed whose chunks have the maps applied; it reports the mapped shapes.

    The maps are tried on the first samples before the first chunk is handed on: one that
    mixes samples (a reduction over the batch, a class count read from all the data) would
    give each chunk a different answer, so it stops with a usage error instead.
    """

    def __init__(self, feed: Feed, maps: Sequence[Map], limit_bytes: int) -> None:
        self.feed = feed
        self.maps = tuple(maps)
        self.limit_bytes = limit_bytes
        self._first: dict[str, LoadedArray] | None = None

    @property
    def whole(self) -> bool:
        return self.feed.whole

    @property
    def total(self) -> int | None:
        return self.feed.total

    @property
    def budget(self) -> int | None:
        return self.feed.budget

    def info(self) -> dict[str, InputInfo]:
        found = self.feed.info()
        if self._first is None:
            return found
        for item in self.maps:
            values = self._first[item.name].values
            rows = found[item.name].shape[:1]  # a map keeps one row per sample (checked)
            shape = (*rows, *values.shape[1:])
            found[item.name] = InputInfo(found[item.name].source, shape, str(values.dtype))
        return found

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        found = self.feed.sample_shapes()
        if self._first is not None:
            for item in self.maps:
                found[item.name] = tuple(self._first[item.name].values.shape[1:])
        return found

    def chunks(self) -> Iterator[Chunk]:
        for chunk in self.feed.chunks():
            if self._first is None:
                self._check_per_sample(chunk)
            loaded = mapped(chunk.loaded, self.maps, self.limit_bytes)
            if self._first is None:
                self._first = loaded
            yield Chunk(chunk.offset, loaded)

    def _check_per_sample(self, chunk: Chunk) -> None:
        rows = {name: a.values[:_TRIED_ROWS] for name, a in chunk.loaded.items()}
        problem = mixing_problem(self.maps, rows, self.limit_bytes)
        if problem is not None:
            raise UsageError(problem)

    def describe(self) -> dict[str, Any] | None:
        return self.feed.describe()

    def close(self) -> None:
        self.feed.close()

    def templates(self) -> dict[str, LoadedArray]:
        found = self.feed.templates()
        if self._first is not None:
            for item in self.maps:
                first = self._first[item.name]
                found[item.name] = replace(first, values=first.values[:0])
        return found
