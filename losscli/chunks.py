"""Chunks: the inputs as a sequence of aligned blocks of samples; whole tensors are one chunk.

A :class:`Feed` hands the pipeline its inputs chunk by chunk. :class:`WholeFeed` holds
tensors already loaded and yields them as one chunk; :class:`StreamFeed` reads ``.npy`` and
delimited text through the loaders' chunk readers (:func:`losscli.loaders.open_chunk_readers`),
which make every parsing decision the whole-file loaders make, and yields blocks of samples
sized to the memory budget, reading the next block in a thread while torch computes. The
pipeline does the same to a chunk whichever feed it came from. :func:`plan` decides, from
the inputs' headers and sizes, whether they must stream.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from losscli.errors import UsageError
from losscli.loaders import (
    Allowance,
    ChunkReader,
    Estimate,
    LoadedArray,
    chunk_estimate,
    load,
    load_many,
    open_chunk_readers,
    size_text,
)
from losscli.losses import LossSpec, Option
from losscli.report import InputInfo
from losscli.sources import Source, SourceKind, parse_source

DEFAULT_BUDGET = "auto"  # parameters.py repeats it, so that --help need not import this module
# the default budget is this share of the memory available when the command starts...
DEFAULT_SHARE = 4
# ...and never less than this (the fixed default of earlier versions)
LEAST_DEFAULT_BUDGET = 512 << 20
# The whole-tensor path holds the inputs, their converted copies, the unreduced loss, the
# float64 per-sample losses, the gradients and the summaries' temporaries: measured 5.7x the
# input bytes for mse on 2 x 3e7 float32 (1.68 GB peak, 0.3 GB of it torch itself).
WHOLE_TENSOR_FACTOR = 6
# A streamed chunk needs about this many bytes per input byte (buffers, casts, loss, grads).
CHUNK_FACTOR = 8
# no chunk holds more than this many elements of one input: larger chunks stop paying off
MAX_CHUNK_ELEMENTS = 1 << 22
# ...nor, from binary files, more samples than this: the per-sample passes (the losses
# summed, ranked and sampled in float32 and float64, the gradient's statistics) then run on
# arrays that stay in the cache. Measured on 2 x 1e8 float32 (mse, streamed, 2 cores): 0.52 s
# with chunks of 2^22 samples, 0.46 s with 2^21, 0.41 s with 2^20, 0.39 s with 2^19; with
# 100 classes a sample (cross-entropy), 2^22 elements is still the faster cap.
MAX_CHUNK_SAMPLES = 1 << 20
# Text is parsed ahead by one chunk, and its first chunk is parsed while torch imports:
# smaller chunks would leave the rest of the parse until after the import (4e6 rows: 0.65
# of numpy.loadtxt's time in chunks of 2^20 samples, 0.61 in one of 2^22).
# read the next chunk in a thread while torch computes on this one
PREFETCH = True

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def available_memory() -> int | None:
    """Bytes of memory this process can still take, or None where the system does not say.

    Linux's ``MemAvailable`` (what can be allocated without swapping), lowered to what the
    process's control group still allows (a container's limit); elsewhere the free pages
    ``os.sysconf`` reports.
    """
    import os

    found = _meminfo_available()
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    allowed = _cgroup_allowance()
    return found if allowed is None else min(found, allowed)


def _meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; None without it."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_allowance() -> int | None:
    """What the cgroup v2 memory limit still allows (``memory.max - memory.current``)."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit_file:
            limit = limit_file.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as current_file:
            current = int(current_file.read().strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def default_budget(available: int | None = None) -> int:
    """The budget when none is given: a :data:`DEFAULT_SHARE`-th of the memory available
    (:func:`available_memory` when ``available`` is None), at least
    :data:`LEAST_DEFAULT_BUDGET`."""
    if available is None:
        available = available_memory()
    return max(LEAST_DEFAULT_BUDGET, (available or 0) // DEFAULT_SHARE)


@functools.cache
def _startup() -> tuple[int, int | None]:
    """The default budget of this run and the memory available it came from, judged once."""
    available = available_memory()
    return default_budget(available), available


def budget_rule(budget: int) -> str:
    """How ``budget`` was chosen, for the JSON: the default's rule with its numbers, or
    ``--memory-budget`` when it was given."""
    chosen, available = _startup() if _startup.cache_info().currsize else (None, None)
    if budget != chosen:
        return "--memory-budget"
    seen = "unknown" if available is None else size_text(available)
    return (
        f"auto: a quarter of the memory available when the command started ({seen}), "
        f"at least {size_text(LEAST_DEFAULT_BUDGET)}"
    )


def parse_size(text: str) -> int:
    """Bytes in a size such as ``300MB``, ``1.5G``, ``64KiB`` or ``1000000``; ``auto`` is
    :func:`default_budget`, judged once per run."""
    if text.strip().lower() == DEFAULT_BUDGET:
        return _startup()[0]
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise UsageError(
            f"--memory-budget {text!r} is not a size (write it like 300MB, 2GB or 64KB)"
        )
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size <= 0:
        raise UsageError("--memory-budget must be more than 0 bytes")
    return size


def _rounded_up(size: int) -> str:
    """A budget that holds ``size`` bytes, as --memory-budget takes it (``8KB``, ``300MB``, ``2GB``)."""
    for unit, scale in (("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30)):
        if size <= 1000 * scale or unit == "GB":
            return f"{math.ceil(size / scale)}{unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Plan:
    """Whether to stream, and why.

    Attributes:
        stream: read the inputs chunk by chunk.
        input_bytes: the bytes the inputs will occupy once decoded (:class:`Estimate`).
        budget: the memory budget in bytes.
        estimates: argument name → what was known of the input before reading it.
    """

    stream: bool
    input_bytes: int
    budget: int
    estimates: dict[str, Estimate]

    @classmethod
    def of(cls, estimates: dict[str, Estimate], budget: int) -> Plan:
        """Stream when computing on whole tensors would need more than ``budget``."""
        input_bytes = sum(e.nbytes for e in estimates.values())
        return cls(WHOLE_TENSOR_FACTOR * input_bytes > budget, input_bytes, budget, estimates)

    @property
    def needed(self) -> int:
        """The bytes computing on whole tensors needs (about)."""
        return WHOLE_TENSOR_FACTOR * self.input_bytes

    def allowance(self) -> Allowance:
        """What standard input or a pipe, read whole, may hold beside the other inputs:
        what is left of the budget once the whole-tensor computation on them is counted."""
        spare = self.budget // WHOLE_TENSOR_FACTOR - self.input_bytes
        return Allowance(max(spare, 0), self.budget)


def estimates_of(sources: dict[str, Source], budget: int) -> dict[str, Estimate]:
    """:func:`chunk_estimate` of each source, counting no further than ``budget`` needs.

    Raises:
        LoadError: an input cannot be judged (the loader's own message).
    """
    cap = budget // WHOLE_TENSOR_FACTOR + 1
    return {name: chunk_estimate(source, cap) for name, source in sources.items()}


def plan(spec: LossSpec, sources: dict[str, Source], budget: int, options: dict[str, Any]) -> Plan:
    """Decide whether ``spec`` on ``sources`` must stream to stay within ``budget`` bytes.

    The inputs are judged by the bytes they will occupy once decoded (:func:`chunk_estimate`),
    before anything big is decoded.

    Raises:
        UsageError: the whole-tensor computation would exceed the budget and this loss, one
            of these inputs or a per-sample tensor option cannot be streamed.
        LoadError: an input cannot be judged (the loader's own message).
    """
    estimates = estimates_of(sources, budget)
    judged = Plan.of(estimates, budget)
    if not judged.stream:
        return judged
    needed = judged.needed
    over = _over(sources, estimates, budget)
    above = "above" if any(e.at_least for e in estimates.values()) else "to"
    whole = f"raise --memory-budget {above} {_rounded_up(needed)} to compute on whole tensors"
    if not spec.streamable:
        raise UsageError(
            f"{spec.name} does not decompose over samples, so it cannot be streamed; {over}",
            tip=whole,
        )
    prediction = spec.arguments[0].name
    for name, found in estimates.items():
        if found.chunkable or (name != prediction and _small(sources[name], found)):
            continue  # a small input that cannot be cut goes whole to every chunk
        raise _cannot_stream(f"{name} ({sources[name].display})", found, over, whole)
    shape = estimates[prediction].shape
    if shape is not None and len(shape) < spec.batched_ndim:
        raise UsageError(
            f"{prediction} {tuple(shape)} has no batch dimension: {spec.name} reads it as one "
            f"sample, which cannot be split into chunks; {over}",
            tip=whole,
        )
    spanning = per_sample_option(spec, options, shape)
    if spanning is not None:
        raise UsageError(
            f"{spanning.flag} holds one value per sample, which streaming does not split; {over}",
            tip=whole,
        )
    return judged


def per_sample_option(
    spec: LossSpec, options: dict[str, Any], shape: tuple[int, ...] | None
) -> Option | None:
    """The tensor option holding one value per sample of a prediction of ``shape`` (bce's
    per-element weight), which neither chunks nor shards can split; None when there is none
    or the shape is not known."""
    rows = shape[0] if shape else None
    for option in spec.options:
        value = options.get(option.name)
        if (
            isinstance(value, np.ndarray)
            and rows is not None
            and rows > 1
            and value.ndim == len(shape or ())
            and value.shape[0] == rows
        ):
            return option
    return None


def _over(sources: dict[str, Source], estimates: dict[str, Estimate], budget: int) -> str:
    """Why the inputs are over the budget, in words, with each input's decoded size (``more
    than`` where counting stopped)."""
    input_bytes = sum(e.nbytes for e in estimates.values())
    more = any(e.at_least for e in estimates.values())
    each = ", ".join(
        f"{sources[name].display}: {'more than ' if found.at_least else ''}"
        f"{size_text(found.nbytes)}"
        for name, found in estimates.items()
        if found.nbytes or found.at_least
    )
    return (
        f"the inputs hold {'more than ' if more else ''}{size_text(input_bytes)} once decoded "
        f"({each}), and computing on whole tensors needs "
        f"{'more than' if more else 'about'} {size_text(WHOLE_TENSOR_FACTOR * input_bytes)}, "
        f"over --memory-budget {size_text(budget)}"
    )


def _cannot_stream(what: str, found: Estimate, over: str, whole: str) -> UsageError:
    """The refusal of an input that must be read whole when the inputs are over the budget."""
    if found.pipe:
        return UsageError(
            f"{what} is a pipe, which is read once and whole, not in chunks; {over}",
            tip=f"save it to a file, or {whole}",
        )
    return UsageError(
        f"{what} cannot be read in chunks (losscli streams C-ordered .npy and CSV files, and "
        f"reads inputs under {size_text(SMALL_INPUT)} whole); {over}",
        tip=f"save it as .npy, or {whole}",
    )


# an input this small that cannot be cut into chunks (a scalar variance, an inline array, a
# single-row file) is read whole and given, as it is, to every chunk
SMALL_INPUT = 1 << 20


def _small(source: Source, found: Estimate) -> bool:
    """Small enough to read whole beside a streamed input (standard input's size is unknown)."""
    if source.kind is SourceKind.INLINE:
        return True
    return source.kind is SourceKind.FILE and 0 < found.nbytes <= SMALL_INPUT and not found.at_least


@dataclass(frozen=True)
class Chunk:
    """One block of samples of every input.

    Attributes:
        offset: the global index of the chunk's first sample.
        loaded: argument name → the chunk's rows as loaded.
    """

    offset: int
    loaded: dict[str, LoadedArray]

    @property
    def rows(self) -> int:
        first = next(iter(self.loaded.values()))
        return int(first.values.shape[0]) if first.values.ndim else 1


class Unaligned(Exception):
    """The inputs hold different numbers of samples (text lengths are known only at the end).

    Attributes:
        rows: argument name → the samples that input holds.
    """

    def __init__(self, rows: dict[str, int]) -> None:
        super().__init__(rows)
        self.rows = rows


class Feed(Protocol):
    """The inputs, chunk by chunk."""

    @property
    def whole(self) -> bool:
        """One chunk holds everything (tensors already in memory)."""
        ...

    @property
    def total(self) -> int | None:
        """Samples per input, when known before reading (None: known at the end)."""
        ...

    @property
    def budget(self) -> int | None:
        """The memory budget the chunks are sized to (None: tensors already in memory)."""
        ...

    def info(self) -> dict[str, InputInfo]:
        """Where each input came from and its shape (final once every chunk was read)."""
        ...

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of one sample of each input."""
        ...

    def chunks(self) -> Iterator[Chunk]:
        """Every chunk in sample order; raises :class:`Unaligned` when lengths differ."""
        ...

    def describe(self) -> dict[str, Any] | None:
        """What the JSON says about the streaming (None for whole tensors)."""
        ...

    def close(self) -> None:
        """Close what the feed opened."""
        ...

    def templates(self) -> dict[str, LoadedArray]:
        """Each input with no rows but its dtype and file details: for a chunk that never came."""
        ...


class WholeFeed:
    """Tensors already in memory: one chunk."""

    whole = True
    budget = None

    def __init__(self, inputs: dict[str, LoadedArray]) -> None:
        self.inputs = inputs

    @property
    def total(self) -> int | None:
        first = next(iter(self.inputs.values()))
        return int(first.values.shape[0]) if first.values.ndim else 1

    def info(self) -> dict[str, InputInfo]:
        return {
            name: InputInfo(loaded.source, tuple(loaded.values.shape), str(loaded.values.dtype))
            for name, loaded in self.inputs.items()
        }

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(a.values.shape[1:]) for name, a in self.inputs.items()}

    def chunks(self) -> Iterator[Chunk]:
        yield Chunk(0, dict(self.inputs))

    def describe(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        """Nothing to close: the tensors are in memory."""

    def templates(self) -> dict[str, LoadedArray]:
        return dict(self.inputs)


class StreamFeed:
    """``.npy`` and delimited text read chunk by chunk, within a memory budget.

    Inputs of one sample (a single-row ``.npy``) and small inputs that cannot be cut (a scalar
    variance, an inline array) are read whole and given as they are to every chunk, as torch
    broadcasts them against every batch.

    Args:
        sources: argument name → a source :func:`plan` accepted for streaming.
        budget: the memory budget in bytes; it sets the chunk size.
        float_itemsize: bytes per value of the float dtype torch computes in.
        stdin_format: the format of ``-``.
        estimates: the inputs' estimates from :func:`plan` (judged again when not given).
        given_whole: the inputs to read whole and give to every chunk; None: those that hold
            one sample or cannot be cut (a shard of one sample is cut like any other).
    """

    whole = False

    def __init__(
        self,
        sources: dict[str, Source],
        budget: int,
        float_itemsize: int = 4,
        stdin_format: str = "csv",
        estimates: dict[str, Estimate] | None = None,
        given_whole: frozenset[str] | None = None,
    ) -> None:
        self.sources = sources
        self.budget = budget
        self.names = list(sources)
        if estimates is None:
            estimates = estimates_of(sources, budget)
        cut = {
            name: source
            for name, source in sources.items()
            if (
                name not in given_whole
                if given_whole is not None
                else estimates[name].chunkable and not one_sample(estimates[name])
            )
        }
        self.whole_inputs = {
            name: load(source, stdin_format) for name, source in sources.items() if name not in cut
        }
        self.readers: dict[str, ChunkReader] = open_chunk_readers(cut, budget)
        self.rows = chunk_rows(self.readers, budget, float_itemsize)
        self.chunk_count = 0
        self._counted: dict[str, int] = {}

    @property
    def total(self) -> int | None:
        known = [reader.rows for reader in self.readers.values()]
        known = known or [None]
        return (
            known[0]
            if known and all(r is not None for r in known) and len(set(known)) == 1
            else None
        )

    def info(self) -> dict[str, InputInfo]:
        """Shapes and dtypes; a text's length is known at its end, and meanwhile assumed to be
        that of an input that declares one (the pipeline judges the final shapes again)."""
        declared = [reader.rows for reader in self.readers.values() if reader.rows is not None]
        assumed = declared[0] if declared else 1
        found = {}
        for name in self.names:
            if name in self.whole_inputs:
                values = self.whole_inputs[name].values
                found[name] = InputInfo(
                    self.whole_inputs[name].source, values.shape, str(values.dtype)
                )
                continue
            reader = self.readers[name]
            rows = self._counted.get(name, reader.rows if reader.rows is not None else assumed)
            found[name] = InputInfo(reader.source, (rows, *reader.sample_shape), str(reader.dtype))
        return found

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(reader.sample_shape) for name, reader in self.readers.items()}

    def describe(self) -> dict[str, Any] | None:
        return {
            "chunk_samples": self.rows,
            "memory_budget_bytes": self.budget,
            "memory_budget_rule": budget_rule(self.budget),
            "chunks": self.chunk_count,
        }

    def chunks(self) -> Iterator[Chunk]:
        """Aligned chunks; the next one is read in a thread while the caller computes.

        The readers alternate two buffers, so a chunk stays valid while the next is read.
        """
        from concurrent.futures import ThreadPoolExecutor

        def read_next() -> dict[str, np.ndarray | None]:
            return {name: reader.read(self.rows) for name, reader in self.readers.items()}

        offset = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-chunk") as pool:
            nexts = read_next()
            while True:
                ended = [name for name, values in nexts.items() if values is None]
                if len(ended) == len(nexts):
                    self._check_whole_lengths(offset)
                    return
                lengths = {name: len(v) for name, v in nexts.items() if v is not None}
                if ended or len(set(lengths.values())) > 1:
                    raise Unaligned(self._count_rest(offset, nexts))
                chunk = Chunk(offset, self._loaded(nexts, offset))
                if PREFETCH:
                    pending = pool.submit(read_next)
                    self.chunk_count += 1
                    yield chunk
                    nexts = pending.result()
                else:
                    self.chunk_count += 1
                    yield chunk
                    nexts = read_next()
                offset += chunk.rows

    def _loaded(self, arrays: dict[str, np.ndarray | None], offset: int) -> dict[str, LoadedArray]:
        loaded = {}
        rows = next((len(v) for v in arrays.values() if v is not None), 0)
        for name in self.names:
            whole = self.whole_inputs.get(name)
            if whole is not None:  # broadcast as it is, or a small per-sample input: its rows
                if whole.values.ndim and whole.values.shape[0] > 1:
                    whole = replace(whole, values=whole.values[offset : offset + rows])
                loaded[name] = whole
                continue
            values = arrays[name]
            assert values is not None
            reader = self.readers[name]
            loaded[name] = LoadedArray(
                values=values,
                source=reader.source,
                columns=getattr(reader, "columns", None),
                from_text=reader.from_text,
            )
        return loaded

    def templates(self) -> dict[str, LoadedArray]:
        found = {}
        for name in self.names:
            if name in self.whole_inputs:
                found[name] = self.whole_inputs[name]
                continue
            reader = self.readers[name]
            empty = np.empty((0, *reader.sample_shape), dtype=reader.dtype)
            found[name] = LoadedArray(
                empty, reader.source, getattr(reader, "columns", None), from_text=reader.from_text
            )
        return found

    def _check_whole_lengths(self, samples: int) -> None:
        """A small per-sample input read whole must hold as many samples as the streamed ones."""
        counted = {
            name: int(whole.values.shape[0])
            for name, whole in self.whole_inputs.items()
            if whole.values.ndim and whole.values.shape[0] > 1
        }
        if any(count != samples for count in counted.values()):
            self._counted.update({name: samples for name in self.readers})
            raise Unaligned({**self._counted, **counted})

    def _count_rest(self, offset: int, nexts: dict[str, np.ndarray | None]) -> dict[str, int]:
        """Read every input to its end to count its samples (the lengths differ)."""
        for name, reader in self.readers.items():
            values = nexts[name]
            count = offset + (0 if values is None else len(values))
            if values is not None:
                while (more := reader.read(self.rows)) is not None:
                    count += len(more)
            self._counted[name] = reader.rows if reader.rows is not None else count
        return dict(self._counted)

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()


def open_feed(
    spec: LossSpec,
    bound: dict[str, str],
    options: dict[str, Any],
    budget: int,
    float_dtype: str = "float32",
    stdin_format: str = "csv",
    cache: dict[str, LoadedArray] | None = None,
    dask: str | None = None,
) -> Feed:
    """The inputs of ``spec`` (argument name → INPUT as typed): whole, or streamed over
    ``budget``, or shard by shard when an INPUT is a glob (:mod:`losscli.shards`).

    Args:
        spec: the loss.
        bound: argument name → the INPUT text (``pipeline.bind``).
        options: the resolved options (a per-sample tensor option cannot stream).
        budget: the memory budget in bytes.
        float_dtype: the float dtype torch computes in (it sizes the chunks).
        stdin_format: the format of ``-``.
        cache: INPUT text → array already loaded whole (``compare`` loads each input once).
        dask: evaluate the shards on this Dask cluster (``--dask``: an address or ``local``).

    Raises:
        UsageError: the inputs would exceed the budget and cannot stream, or ``dask`` is
            given without shards.
        LoadError: an input cannot be read, or the shards do not pair.
    """
    from losscli import shards
    from losscli.conversion import FLOAT_DTYPES

    itemsize = np.dtype(FLOAT_DTYPES[float_dtype]).itemsize
    sources = {name: parse_source(text) for name, text in bound.items()}
    sharded = shards.find(spec, sources, budget, options)
    if sharded is not None:
        return shards.ShardFeed(spec, sharded, budget, itemsize, stdin_format, dask)
    if dask is not None:
        raise shards.dask_without_shards()
    decided = plan(spec, sources, budget, options)
    if decided.stream:
        return StreamFeed(sources, budget, itemsize, stdin_format, decided.estimates)
    cache = {} if cache is None else cache
    missing = {text: sources[name] for name, text in bound.items() if text not in cache}
    cache.update(load_many(missing, stdin_format, decided.allowance()))
    return WholeFeed({name: cache[text] for name, text in bound.items()})


# debug infers the task from at most this many leading samples of each input
HEAD_SAMPLES = 1 << 16


def heads(
    texts: list[str],
    budget: int,
    stdin_format: str = "csv",
    cache: dict[str, LoadedArray] | None = None,
) -> list[LoadedArray]:
    """The first :data:`HEAD_SAMPLES` samples of each INPUT, for task inference.

    Inputs that fit ``budget`` together are loaded whole (into ``cache``, for the evaluation
    that follows) and cut; larger ones are read through their chunk reader, only as far as
    the head. Either way inference sees the same samples.
    """
    from losscli import shards
    from losscli.sources import check_one_stdin

    check_one_stdin(texts)
    cache = {} if cache is None else cache
    sources = [parse_source(text) for text in texts]
    if any(shards.is_pattern(source) for source in sources):
        return [
            shards.head(source, HEAD_SAMPLES, budget)
            if shards.is_pattern(source)
            else heads([text], budget, stdin_format, cache)[0]
            for text, source in zip(texts, sources, strict=True)
        ]
    named = estimates_of({str(i): source for i, source in enumerate(sources)}, budget)
    judged = Plan.of(named, budget)
    stream, allowance = judged.stream, judged.allowance()
    if not stream:  # all of them whole: columns of one text file parsed once
        wanted = {t: s for t, s in zip(texts, sources, strict=True) if t not in cache}
        cache.update(load_many(wanted, stdin_format, allowance))
    found = []
    for text, source, estimate in zip(texts, sources, named.values(), strict=True):
        if stream and not estimate.chunkable and not _small(source, estimate):
            raise _cannot_stream(
                source.display,
                estimate,
                _over(dict(zip(named, sources, strict=True)), named, budget),
                f"raise --memory-budget to {_rounded_up(judged.needed)} to read them whole",
            )
        if stream and estimate.chunkable:
            reader = open_chunk_readers({"input": source}, budget)["input"]
            try:
                values = reader.read(HEAD_SAMPLES)
            finally:
                reader.close()
            if values is None:
                values = np.empty((0, *reader.sample_shape), dtype=reader.dtype)
            found.append(LoadedArray(np.array(values), reader.source, from_text=reader.from_text))
            continue
        if text not in cache:
            cache[text] = load(source, stdin_format, allowance)
        whole = cache[text]
        head = whole.values[:HEAD_SAMPLES] if whole.values.ndim else whole.values
        found.append(replace(whole, values=head))
    return found


def one_sample(found: Estimate) -> bool:
    """A ``.npy`` that holds one sample (shape (1, ...)) or none at all."""
    return found.shape is not None and (len(found.shape) == 0 or found.shape[0] == 1)


def chunk_rows(readers: dict[str, ChunkReader], budget: int, float_itemsize: int) -> int:
    """Samples per chunk: the chunk's working set stays well inside the budget."""
    per_sample_bytes = 0
    widest = 1
    for reader in readers.values():
        elements = math.prod(reader.sample_shape) if reader.sample_shape else 1
        per_sample_bytes += elements * max(reader.dtype.itemsize, float_itemsize)
        widest = max(widest, elements)
    rows = budget // (CHUNK_FACTOR * max(per_sample_bytes, 1))
    most = MAX_CHUNK_ELEMENTS // widest
    if not any(reader.from_text for reader in readers.values()):
        most = min(most, MAX_CHUNK_SAMPLES)
    return int(max(1, min(rows, most)))


def stand_ins(info: dict[str, InputInfo], loaded: dict[str, LoadedArray]) -> dict[str, LoadedArray]:
    """Zero-strided arrays of the full shapes, for the checks that judge shapes only.

    ``loaded`` gives each input's dtype and file details (its first chunk).
    """
    return {
        name: replace(
            loaded[name],
            values=np.broadcast_to(np.zeros((), loaded[name].values.dtype), info[name].shape),
        )
        for name in info
    }


def zeros_like(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Zero-strided arrays of ``shapes``, each with the dtype of the array of its name.

    The converted counterpart of :func:`stand_ins`: it costs no memory whatever the shapes.
    """
    return {
        name: np.broadcast_to(np.zeros((), arrays[name].dtype), shape)
        for name, shape in shapes.items()
    }
