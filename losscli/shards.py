"""Shards: an INPUT that is a glob (``'preds/part-*.npy'``) is one input cut into files.

The shards, in natural order (``part-2`` before ``part-10``), are one input concatenated
along dimension 0. Every input that holds samples is sharded the same way, pair by pair (the
same count, the same first dimension), so shard ``i`` of every input is a self-contained
block of samples: the pipeline folds each pair's chunks into a partial result
(:class:`losscli.pipeline.Partial`) and merges the partials in shard order, here one shard
after another (:class:`ShardFeed`), or on a Dask cluster (:mod:`losscli.dask_engine`).
Either way a shard is read by the streaming readers, chunk by chunk, and never concatenated.

This module decides what the shards are and checks, before anything big is read, what the
headers say (counts, first dimensions, dtypes, sample shapes); what only reading shows (the
rows of a text shard) is checked as each shard is read (:class:`ShardWork`).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from losscli.chunks import (
    Chunk,
    Feed,
    StreamFeed,
    Unaligned,
    estimates_of,
    one_sample,
    per_sample_option,
)
from losscli.errors import LoadError, UsageError
from losscli.loaders import Estimate, LoadedArray, dtype_description
from losscli.losses import LossSpec
from losscli.report import InputInfo, ShardInfo
from losscli.sources import Source, SourceKind

if TYPE_CHECKING:
    from losscli.pipeline import ChunkSteps, Partial
    from losscli.transforms import Map

# a path holding a wildcard or a bracket expression (``[0-9]``), as glob reads them
_GLOB = re.compile(r"[*?]|\[[^\]]+\]")


def is_pattern(source: Source) -> bool:
    """A file INPUT whose path holds ``*``, ``?`` or ``[...]`` and does not exist: a glob.

    An existing path always wins (a file literally named ``a[1].npy`` is read as itself),
    and a lone ``[`` is a character of a name, as glob reads it.
    """
    if source.kind is not SourceKind.FILE or source.path is None:
        return False
    text = str(source.path)
    return _GLOB.search(text) is not None and not os.path.lexists(text)


def natural_key(path: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders the numbers in a path by value: ``part-2`` before ``part-10``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", path) if part
    )


def expand(source: Source) -> list[Source]:
    """The files ``source``'s glob matches, in natural order, each with its selector.

    Raises:
        LoadError: the pattern matches no file.
    """
    assert source.path is not None
    pattern = str(source.path)
    found = sorted(
        (p for p in glob.glob(pattern, recursive=True) if not os.path.isdir(p)), key=natural_key
    )
    if not found:
        raise LoadError(
            source.display,
            "matches no file (a glob of shards: quote it for the shell, as in 'preds/part-*.npy')",
        )
    return [
        Source(
            SourceKind.FILE,
            path if source.selector is None else f"{path}:{source.selector}",
            path=source.path.__class__(path),
            selector=source.selector,
        )
        for path in found
    ]


def dask_without_shards() -> UsageError:
    """The refusal of ``--dask`` when no INPUT is a glob: Dask computes shards."""
    return UsageError(
        "--dask computes shards on a Dask cluster, and no INPUT is a glob of shards",
        tip="give the inputs as quoted globs, as in 'preds/part-*.npy', or leave out --dask",
    )


def head(source: Source, samples: int, budget: int) -> LoadedArray:
    """The first ``samples`` samples of a glob's shards, read shard after shard (an empty
    or short first shard does not stand for the input), named by the glob."""
    from losscli.loaders import open_chunk_readers

    parts: list[np.ndarray] = []
    found = 0
    for shard in expand(source):
        reader = open_chunk_readers({"shard": shard}, budget)["shard"]
        try:
            while found < samples and (values := reader.read(samples - found)) is not None:
                parts.append(np.array(values))
                found += len(values)
        finally:
            reader.close()
        if found >= samples:
            break
    values = (
        np.concatenate(parts) if parts else np.empty((0, *reader.sample_shape), dtype=reader.dtype)
    )
    return LoadedArray(values, source.display, from_text=reader.from_text)


@dataclass(frozen=True)
class Sharded:
    """Every input of a command, cut into shards.

    Attributes:
        patterns: argument name → the glob as typed (its source), for each sharded input.
        shards: argument name → its shards in natural order (all of the same count).
        broadcast: argument name → an input of one sample given whole, as it is, to every
            shard (a scalar variance in a file, an inline ``[0.5]``).
        rows: the samples of each shard pair, where the headers say (``.npy``), else None.
        order: the argument names in torch's order.
    """

    patterns: dict[str, Source]
    shards: dict[str, list[Source]]
    broadcast: dict[str, Source]
    rows: tuple[int | None, ...]
    order: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.rows)

    def pair(self, index: int) -> dict[str, Source]:
        """Shard ``index`` of every input, with the inputs given whole, in argument order."""
        return {
            name: self.shards[name][index] if name in self.shards else self.broadcast[name]
            for name in self.order
        }

    @property
    def total(self) -> int | None:
        """Samples in all the shards, when every shard's header says."""
        known = [rows for rows in self.rows if rows is not None]
        return sum(known) if len(known) == len(self.rows) else None

    def info(self, name: str) -> ShardInfo | None:
        """What the JSON says of input ``name``'s shards (None: given whole)."""
        if name not in self.shards:
            return None
        files = self.shards[name]
        return ShardInfo(len(files), files[0].display, files[-1].display)

    def label(self, index: int) -> str:
        """Shard ``index`` as messages name it: the first sharded input's file."""
        first = next(iter(self.shards.values()))
        return first[index].display


def find(
    spec: LossSpec, sources: dict[str, Source], budget: int, options: dict[str, Any]
) -> Sharded | None:
    """The inputs' shards, checked pair by pair as far as their headers say (None: no glob).

    Raises:
        UsageError: the loss cannot be computed shard by shard, or an input holding samples
            is not sharded like the others.
        LoadError: a glob matches no file, or a shard disagrees with the others: a different
            count, first dimension, dtype or sample shape, or a format that does not stream.
    """
    patterns = {name: source for name, source in sources.items() if is_pattern(source)}
    if not patterns:
        return None
    if not spec.streamable:
        raise UsageError(
            f"{spec.name} does not decompose over samples, so it cannot be computed shard by shard",
            tip="concatenate the shards into one file",
        )
    shards = {name: expand(source) for name, source in patterns.items()}
    first_name, first_shards = next(iter(shards.items()))
    for name, files in shards.items():
        if len(files) != len(first_shards):
            raise _unpaired(patterns, (first_name, first_shards), (name, files))
    estimates = {
        name: [estimates_of({name: shard}, budget)[name] for shard in files]
        for name, files in shards.items()
    }
    broadcast = {}
    for name, source in sources.items():
        if name in patterns:
            continue
        if _broadcast(source, estimates_of({name: source}, budget)[name]):
            broadcast[name] = source
            continue
        what = (
            f"the inline {name} holds several samples"
            if source.kind is SourceKind.INLINE
            else f"{source.display} is one input"
        )
        raise UsageError(
            f"{what} but {patterns[first_name].display} is "
            f"{len(first_shards)} shards: every input that holds samples must be sharded "
            "the same way (an input of one sample goes whole to every shard)",
            tip=f"give {name} as a glob of as many shards, or concatenate the shards",
        )
    for name, found in estimates.items():
        _same_layout(shards[name], found)
    rows = tuple(_pair_rows(shards, estimates, index) for index in range(len(first_shards)))
    prediction = estimates.get(spec.arguments[0].name)
    first_shape = prediction[0].shape if prediction else None
    total = None if None in rows else sum(r or 0 for r in rows)
    whole_shape = (total, *first_shape[1:]) if first_shape and total is not None else None
    spanning = per_sample_option(spec, options, whole_shape)
    if spanning is not None:  # bce's per-element weight
        raise UsageError(
            f"{spanning.flag} holds one value per sample, which shards do not split",
            tip="concatenate the shards into one file",
        )
    return Sharded(patterns, shards, broadcast, rows, tuple(sources))


def _unpaired(patterns: dict[str, Source], *matched: tuple[str, list[Source]]) -> LoadError:
    """The error of two inputs with different shard counts, naming the first shard without
    a partner: where the parts their wildcards matched first differ (``rank3`` against
    ``rank4``), or else the first past the shorter input's end."""
    shorter, longer = sorted(matched, key=lambda item: len(item[1]))
    keys = {name: [_wildcard_part(patterns[name], s) for s in files] for name, files in matched}
    short_keys, long_keys = keys[shorter[0]], keys[longer[0]]
    extra = longer[1][len(shorter[1])]
    for index, key in enumerate(long_keys):
        if index >= len(short_keys) or key != short_keys[index]:
            lone = key not in short_keys
            extra = longer[1][index] if lone else shorter[1][index]
            break
    return LoadError(
        extra.display,
        f"has no partner: {patterns[longer[0]].display} matches {len(longer[1])} shards but "
        f"{patterns[shorter[0]].display} matches {len(shorter[1])} (sharded inputs pair "
        "shard by shard)",
    )


def _wildcard_part(pattern: Source, shard: Source) -> str:
    """What the pattern's wildcards matched in the shard's path (``3`` of ``rank3.npy``
    for ``rank*.npy``): the path between the pattern's literal head and tail."""
    parts = _GLOB.split(str(pattern.path))
    head, tail = parts[0], parts[-1]
    path = str(shard.path)
    return path[len(head) : len(path) - len(tail)]


def _broadcast(source: Source, found: Estimate) -> bool:
    """An input of at most one sample (a scalar, one row, an inline ``[0.5]``), which goes
    whole to every shard as torch broadcasts it."""
    if source.kind is SourceKind.INLINE:
        from losscli.loaders import load

        values = load(source).values
        return values.ndim == 0 or values.shape[0] <= 1
    return one_sample(found)


def _same_layout(files: list[Source], estimates: list[Estimate]) -> None:
    """Every shard of one input streams, with the first shard's dtype and sample shape."""
    first = estimates[0]
    for source, found in zip(files, estimates, strict=True):
        if not found.chunkable:
            raise LoadError(
                source.display,
                "cannot be read in chunks, and shards are read chunk by chunk (.npy and "
                "text stream)",
                tip="save the shards as .npy",
            )
        if found.dtype is not None and first.dtype is not None and found.dtype != first.dtype:
            raise LoadError(
                source.display,
                f"holds {dtype_description(found.dtype)} but {files[0].display} holds "
                f"{dtype_description(first.dtype)}: every shard of an input has one dtype",
            )
        sample, first_sample = _sample_shape(found), _sample_shape(first)
        if sample is not None and first_sample is not None and sample != first_sample:
            raise LoadError(
                source.display,
                f"holds samples of shape {sample} but {files[0].display} holds "
                f"{first_sample}: every shard of an input has one sample shape",
            )


def _sample_shape(found: Estimate) -> tuple[int, ...] | None:
    """One sample's shape, where the header says (a 0-d array: None, as it has no samples)."""
    return tuple(found.shape[1:]) if found.shape else None


def _pair_rows(
    shards: dict[str, list[Source]], estimates: dict[str, list[Estimate]], index: int
) -> int | None:
    """The samples of shard pair ``index`` (None: a text shard, counted as it is read)."""
    known = {}
    for name, found in estimates.items():
        shape = found[index].shape
        if shape is not None:
            known[name] = shape[0] if shape else 1
    if len(set(known.values())) > 1:
        raise mismatch({name: shards[name][index] for name in known}, known)
    if len(known) < len(shards):
        return None
    return next(iter(known.values()))


def mismatch(files: dict[str, Source], rows: dict[str, int]) -> LoadError:
    """The error of a shard pair whose inputs hold different numbers of samples."""
    (first, first_rows), *others = rows.items()
    name, count = next(((n, r) for n, r in others if r != first_rows), (first, first_rows))
    return LoadError(
        files[name].display,
        f"holds {count} samples but {files[first].display} holds {first_rows}: sharded "
        "inputs pair shard by shard, with the same first dimension",
    )


def open_shard(
    sharded: Sharded,
    index: int,
    budget: int,
    float_itemsize: int,
    stdin_format: str,
    maps: tuple[Map, ...] = (),
    limit_bytes: int = 0,
    sample_shapes: dict[str, tuple[int, ...]] | None = None,
) -> Feed:
    """Shard pair ``index`` as a stream of chunks (its maps applied), offsets from 0: every
    shard is cut into chunks (a shard of one sample too), the broadcast inputs given whole.

    Args:
        sample_shapes: the first shard's sample shapes as read (before any map): a text
            shard's, known once it is opened, must be the same.

    Raises:
        LoadError: the shard cannot be read, or its samples are not shaped like the first's.
    """
    feed: Feed = StreamFeed(
        sharded.pair(index),
        budget,
        float_itemsize,
        stdin_format,
        given_whole=frozenset(sharded.broadcast),
    )
    if sample_shapes is not None:
        try:
            _same_sample_shapes(sharded, index, feed.sample_shapes(), sample_shapes)
        except LoadError:
            feed.close()
            raise
    if maps:
        from losscli.mapping import MappedFeed

        feed = MappedFeed(feed, maps, limit_bytes)
    return feed


def _same_sample_shapes(
    sharded: Sharded,
    index: int,
    found: dict[str, tuple[int, ...]],
    first: dict[str, tuple[int, ...]],
) -> None:
    for name, shape in found.items():
        if name in first and tuple(shape) != tuple(first[name]):
            raise LoadError(
                sharded.pair(index)[name].display,
                f"holds samples of shape {tuple(shape)} but {sharded.pair(0)[name].display} "
                f"holds {tuple(first[name])}: every shard of an input has one sample shape",
            )


@dataclass(frozen=True)
class ShardWork:
    """Evaluating one shard pair into a partial result: what a local run does shard after
    shard and a Dask worker does for the shards it is given (picklable).

    Attributes:
        steps: the pipeline's per-chunk steps, set up from the first chunk of the first shard.
        sharded: the shards.
        sample_shapes: the first shard's sample shapes as read, before any map.
        budget, float_itemsize, stdin_format, maps, limit_bytes: how to open a shard
            (:func:`open_shard`).
    """

    steps: ChunkSteps
    sharded: Sharded
    sample_shapes: dict[str, tuple[int, ...]]
    budget: int
    float_itemsize: int
    stdin_format: str
    maps: tuple[Map, ...] = ()
    limit_bytes: int = 0

    def open(self, index: int, maps: bool = True) -> Feed:
        return open_shard(
            self.sharded,
            index,
            self.budget,
            self.float_itemsize,
            self.stdin_format,
            self.maps if maps else (),
            self.limit_bytes,
            self.sample_shapes,
        )

    def __call__(
        self, index: int, base: int, advance: Callable[[int], None] | None = None
    ) -> Partial:
        """Shard ``index``'s partial result; its first sample is sample ``base`` of the input.

        Args:
            index: the shard pair.
            base: how many samples the shards before it hold.
            advance: called with each chunk's samples (a local run's progress bar), or None.
        """
        opened = self.open(index)
        try:
            partial = self.steps.partial(index, opened.total)
            chunks = (Chunk(base + chunk.offset, chunk.loaded) for chunk in opened.chunks())
            try:
                self.steps.fold(chunks, partial, advance)
            except Unaligned as unaligned:
                raise mismatch(self.sharded.pair(index), unaligned.rows) from None
            return partial
        finally:
            opened.close()

    def count(self, index: int) -> int:
        """How many samples shard pair ``index`` holds, read to its end (a text shard's count
        is known only there); its inputs must hold as many."""
        opened = self.open(index, maps=False)  # a map keeps one row per sample
        try:
            return sum(chunk.rows for chunk in opened.chunks())
        except Unaligned as unaligned:
            raise mismatch(self.sharded.pair(index), unaligned.rows) from None
        finally:
            opened.close()


class ShardFeed:
    """Sharded inputs: the first shard is opened for the pipeline's first chunk; the shards
    are then evaluated one by one (:meth:`evaluate`), or by a Dask cluster.

    Args:
        sharded: the shards (:func:`find`).
        budget: the memory budget in bytes (it sizes each shard's chunks).
        float_itemsize: bytes per value of the float dtype torch computes in.
        stdin_format: the format of ``-`` (given whole to every shard).
        dask: the Dask scheduler's address, ``local``, or None to evaluate here.

    Raises:
        UsageError: the prediction has no batch dimension (one sample, which shards would cut).
    """

    whole = False

    def __init__(
        self,
        spec: LossSpec,
        sharded: Sharded,
        budget: int,
        float_itemsize: int,
        stdin_format: str = "csv",
        dask: str | None = None,
    ) -> None:
        self.sharded = sharded
        self.budget = budget
        self.float_itemsize = float_itemsize
        self.stdin_format = stdin_format
        self.dask = dask
        self.maps: tuple[Map, ...] = ()
        self.limit_bytes = 0
        self._first: Feed = open_shard(sharded, 0, budget, float_itemsize, stdin_format)
        prediction = spec.arguments[0].name
        sample_shape = self._first.sample_shapes().get(prediction)
        if sample_shape is not None and 1 + len(sample_shape) < spec.batched_ndim:
            self._first.close()
            raise UsageError(
                f"{sharded.patterns[prediction].display} holds samples of shape "
                f"{tuple(sample_shape)}, and {spec.name} reads a prediction of "
                f"{1 + len(sample_shape)} dimensions as one unbatched sample, which shards "
                "cannot cut",
                tip="save the shards with a batch dimension first",
            )
        self._read_shapes = self._first.sample_shapes()  # as read: before any map
        self._first_index = 0  # the shard whose chunks come first (empty ones are passed)
        self._reading: Generator[Chunk, None, None] | None = None
        self._rows: int | None = None  # every shard's samples, once evaluated
        self._chunks = 0
        self.workers = 1

    def with_maps(self, maps: Sequence[Map], limit_bytes: int) -> ShardFeed:
        """The same shards with ``maps`` applied to every chunk of every shard."""
        from losscli.mapping import MappedFeed

        self.maps, self.limit_bytes = tuple(maps), limit_bytes
        self._first = MappedFeed(self._first, self.maps, limit_bytes)
        return self

    @property
    def total(self) -> int | None:
        return self._rows if self._rows is not None else self.sharded.total

    def info(self) -> dict[str, InputInfo]:
        """The first shard's shapes with every shard's samples (assumed the same for every
        input until a text shard's length is known)."""
        first = self._first.info()
        rows = self.total if self.total is not None else self.sharded.rows[0] or 1
        found = {}
        for name, item in first.items():
            if name not in self.sharded.shards:
                found[name] = item
                continue
            found[name] = replace(
                item,
                source=self.sharded.patterns[name].display,
                shape=(rows, *item.shape[1:]),
                shards=self.sharded.info(name),
            )
        return found

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        return self._first.sample_shapes()

    def chunks(self) -> Iterator[Chunk]:
        """The first shard's chunks (the pipeline's first chunk, and shard 0 when local)."""
        self._reading = self._first_chunks()
        return self._reading

    def _first_chunks(self) -> Generator[Chunk, None, None]:
        """The chunks of the first shard that holds samples (a rank may have written none)."""
        while True:
            produced = False
            try:
                for chunk in self._first.chunks():
                    produced = True
                    yield chunk
            except Unaligned as unaligned:
                raise mismatch(self.sharded.pair(self._first_index), unaligned.rows) from None
            if produced or self._first_index + 1 >= self.sharded.count:
                return
            self._first.close()
            self._first_index += 1
            self._first = open_shard(
                self.sharded,
                self._first_index,
                self.budget,
                self.float_itemsize,
                self.stdin_format,
                self.maps,
                self.limit_bytes,
                self._read_shapes,
            )

    def describe(self) -> dict[str, Any] | None:
        found = dict(self._first.describe() or {})
        found["chunks"] = self._chunks
        found["shards"] = self.sharded.count
        return found

    def close(self) -> None:
        self._close_first()

    def engine(self) -> dict[str, Any]:
        """Where the shards were evaluated, for the JSON: ``local`` (here, one after another)
        or ``dask``, and how many worker processes took part."""
        return {"engine": "local" if self.dask is None else "dask", "workers": self.workers}

    def templates(self) -> dict[str, LoadedArray]:
        return self._first.templates()

    def evaluate(
        self,
        steps: ChunkSteps,
        started: Iterator[Chunk],
        advance: Callable[[int], None] | None,
    ) -> Partial:
        """Every shard's partial result, merged in shard order.

        Args:
            steps: the pipeline's per-chunk steps.
            started: the first shard's chunks, from the pipeline's first one on.
            advance: called with each shard's (or chunk's) samples as they are done, or None.
        """
        work = ShardWork(
            steps,
            self.sharded,
            self._read_shapes,
            self.budget,
            self.float_itemsize,
            self.stdin_format,
            self.maps,
            self.limit_bytes,
        )
        if self.dask is not None:
            from losscli import dask_engine

            self._close_first()
            merged, self.workers = dask_engine.evaluate(
                self.dask, replace(work, steps=steps.portable()), advance
            )
        else:
            merged = self._local(work, started, advance)
        self._rows = merged.samples
        self._chunks = merged.chunks
        return merged

    def _local(
        self, work: ShardWork, started: Iterator[Chunk], advance: Callable[[int], None] | None
    ) -> Partial:
        """Shard after shard in this process: the first one continues from its first chunk."""
        merged = work.steps.partial(self._first_index, self._first.total)
        try:
            work.steps.fold(started, merged, advance)  # as a worker would fold this shard
        finally:
            self._close_first()
        for index in range(self._first_index + 1, self.sharded.count):
            merged.merge(work(index, merged.samples, advance))
        return merged

    def _close_first(self) -> None:
        """Close the first shard: its chunks first (which waits for a read ahead in flight),
        then its readers."""
        if self._reading is not None:
            self._reading.close()
        self._first.close()
