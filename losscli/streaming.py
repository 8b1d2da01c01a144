"""Streaming: a loss computed chunk by chunk, for inputs larger than the memory budget.

A loss whose :class:`~losscli.losses.LossSpec` is ``streamable`` decomposes over samples:
the element-wise losses (l1, mse, huber, smooth-l1, bce, bce-logits, soft-margin,
hinge-embedding, poisson-nll, gaussian-nll, kl-div, focal) and the per-sample losses
(cross-entropy, nll, multi-margin, multilabel-margin, multilabel-soft-margin,
margin-ranking, cosine-embedding, the triplet losses, dice). ctc does not stream.

Every input is read in aligned chunks of samples (:mod:`losscli.chunks`) into reused
buffers, and for each chunk torch computes ``reduction='none'`` with autograd, then the
gradient of the chunk's sum. Accumulated across chunks, in float64:

- the value: the per-sample losses summed (float32 chunks in blocks of 1024, the blocks in
  float64) and divided by the denominator summed over chunks (the sample count, or for
  cross-entropy/nll with class indices the summed weight of the non-ignored targets);
- the per-sample summary: n, mean, min, max, argmax exactly; p50/p90/p99 from a seeded
  uniform random sample of the per-sample losses (:class:`QuantileSample`): exact while
  there are at most 2^20 samples, otherwise the rank of a reported quantile p is within
  ±3·sqrt(p(1-p)/2^20) of p (±0.0015 for p50, ±0.0003 for p99) in 99.7 % of runs;
- each gradient's summary: the gradient of the chunk sum, scaled at the end by the global
  1/denominator (``mean`` divides by the count, known only at the end for CSV);
- the worst samples, and optionally every per-sample loss, written to ``--per-sample-out``.

Checks on streamed input: the shape checks see the full shapes; non-finite-input,
non-finite-loss and non-finite-gradient see every value; the other value checks (domains,
classes, kinds, dtypes) see the first :data:`HEAD_SAMPLES` samples, and the JSON says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from losscli.chunks import ChunkReader, estimate, open_readers
from losscli.errors import UsageError
from losscli.findings import Finding, Severity, finding
from losscli.loaders import LoadedArray
from losscli.losses import LossSpec, PerSampleRule
from losscli.report import InputInfo, Report
from losscli.result import Computation
from losscli.sources import Source

DEFAULT_BUDGET = "512MB"  # cli.py repeats it, so that --help need not import this module
# The whole-tensor path holds the inputs, their converted copies, the unreduced loss, the
# float64 per-sample losses, the gradients and the summaries' temporaries: measured 5.7x the
# input bytes for mse on 2 x 3e7 float32 (1.68 GB peak, 0.3 GB of it torch itself).
WHOLE_TENSOR_FACTOR = 6
# A streamed chunk needs about this many bytes per input byte (buffers, casts, loss, grads).
CHUNK_FACTOR = 8
# no chunk holds more than this many elements of one input: larger chunks stop paying off
MAX_CHUNK_ELEMENTS = 1 << 22
# the value checks (domains, kinds, classes, dtypes) look at this many leading samples
HEAD_SAMPLES = 1 << 16
# at most twice this many per-sample losses are kept for the quantiles
SKETCH_CAPACITY = 1 << 20
# per-sample losses (and ignored marks) are kept whole up to this many samples
KEEP_SAMPLES = 1000
PREFETCH = True
_BLOCK = 1024  # float32 values summed together before the float64 accumulation

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in a size such as ``300MB``, ``1.5G``, ``64KiB`` or ``1000000``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise UsageError(
            f"--memory-budget {text!r} is not a size (write it like 300MB, 2GB or 64KB)"
        )
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size <= 0:
        raise UsageError("--memory-budget must be more than 0 bytes")
    return size


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MB" if size >= 1 << 20 else f"{size:,} bytes"


@dataclass(frozen=True)
class Plan:
    """Whether to stream, and why.

    Attributes:
        stream: read the inputs chunk by chunk.
        input_bytes: the inputs' total size (``.npy`` data bytes, other files' size on disk).
        budget: the memory budget in bytes.
    """

    stream: bool
    input_bytes: int
    budget: int


def plan(spec: LossSpec, sources: dict[str, Source], budget: int, options: dict[str, Any]) -> Plan:
    """Decide whether ``spec`` on ``sources`` must stream to stay within ``budget`` bytes.

    Raises:
        UsageError: the whole-tensor computation would exceed the budget and this loss,
            one of these inputs or a per-sample tensor option cannot be streamed.
    """
    estimates = {name: estimate(source) for name, source in sources.items()}
    input_bytes = sum(e.nbytes for e in estimates.values())
    needed = WHOLE_TENSOR_FACTOR * input_bytes
    if needed <= budget:
        return Plan(False, input_bytes, budget)
    over = (
        f"the inputs hold {_megabytes(input_bytes)}, and computing on whole tensors needs about "
        f"{_megabytes(needed)}, over --memory-budget {_megabytes(budget)}"
    )
    whole = (
        f"raise --memory-budget to {math.ceil(needed / (1 << 30))}GB to compute on whole tensors"
    )
    if not spec.streamable:
        raise UsageError(
            f"{spec.name} does not decompose over samples, so it cannot be streamed; {over}",
            tip=whole,
        )
    for name, found in estimates.items():
        if not found.chunkable:
            raise UsageError(
                f"{name} ({sources[name].display}) cannot be read in chunks (losscli streams C-ordered "
                f".npy and CSV files); {over}",
                tip=f"save it as .npy, or {whole}",
            )
    for option in spec.options:
        value = options.get(option.name)
        if isinstance(value, np.ndarray) and _per_sample_option(value, estimates):
            raise UsageError(
                f"{option.flag} holds one value per sample, which streaming does not split; {over}",
                tip=whole,
            )
    return Plan(True, input_bytes, budget)


def _per_sample_option(value: np.ndarray, estimates: dict[str, Any]) -> bool:
    """A tensor option that spans the batch dimension (bce's per-element weight)."""
    first = next(iter(estimates.values()))
    if first.shape is None or value.ndim < len(first.shape):
        return False
    return value.shape[0] != 1


class QuantileSample:
    """A seeded uniform random sample of the finite per-sample losses, for their quantiles.

    Every loss is kept with the same probability ``rate``; when more than twice
    :data:`SKETCH_CAPACITY` are kept, each kept one survives with probability 1/2 and the
    rate halves, so the sample stays uniform and bounded however many losses stream past.
    """

    def __init__(self, expected: int | None, capacity: int | None = None) -> None:
        self.capacity = SKETCH_CAPACITY if capacity is None else capacity
        self.rate = 1.0 if not expected else min(1.0, self.capacity / expected)
        self._random = np.random.default_rng(0)
        self._kept: list[np.ndarray] = []
        self._count = 0

    def add(self, losses: np.ndarray) -> None:
        """Offer one chunk of per-sample losses (finite ones only)."""
        if self.rate >= 1.0:
            picked = np.array(losses, dtype=np.float64)
        else:
            count = int(self._random.binomial(losses.size, self.rate))
            positions = self._random.choice(losses.size, size=count, replace=False)
            picked = losses[np.sort(positions)].astype(np.float64)
        self._kept.append(picked)
        self._count += picked.size
        while self._count > 2 * self.capacity:
            merged = np.concatenate(self._kept)
            merged = merged[self._random.random(merged.size) < 0.5]
            self._kept = [merged]
            self._count = merged.size
            self.rate /= 2

    @property
    def size(self) -> int:
        """How many losses are kept."""
        return self._count

    @property
    def exact(self) -> bool:
        """Every finite loss was kept, so the quantiles are exact."""
        return self.rate >= 1.0

    def quantiles(self, levels: Sequence[float]) -> list[float] | None:
        if not self._count:
            return None
        return [float(q) for q in np.quantile(np.concatenate(self._kept), levels)]


class PerSampleWriter:
    """Per-sample losses written to ``FILE.npy`` or ``FILE.csv`` chunk by chunk."""

    # a .npy header with room for any shape, rewritten with the final count at the end
    _NPY_HEADER = 128

    @staticmethod
    def check_path(path: str | Path) -> None:
        """Refuse a ``--per-sample-out`` that is neither ``.npy`` nor ``.csv``, before any work."""
        if Path(path).suffix.lower() not in (".npy", ".csv"):
            raise UsageError(f"--per-sample-out {path}: write a .npy or a .csv file")

    def __init__(self, path: Path) -> None:
        self.check_path(path)
        self.path = path
        self.suffix = path.suffix.lower()
        try:
            self._stream: BinaryIO = path.open("wb")
        except OSError as error:
            raise UsageError(f"--per-sample-out {path}: cannot write ({error.strerror})") from None
        self._count = 0
        if self.suffix == ".npy":
            self._stream.write(self._npy_header(0))
        else:
            self._stream.write(b"per_sample\n")

    def _npy_header(self, count: int) -> bytes:
        text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({count},), }}"
        length = self._NPY_HEADER - 10
        return (
            b"\x93NUMPY\x01\x00"
            + length.to_bytes(2, "little")
            + text.ljust(length - 1).encode()
            + b"\n"
        )

    def write(self, losses: np.ndarray) -> None:
        """Append float64 per-sample losses."""
        values = np.asarray(losses, dtype="<f8").reshape(-1)
        if self.suffix == ".npy":
            self._stream.write(np.ascontiguousarray(values).data)
        elif values.size:
            # repr of a float64 reads back bit for bit; NaN/Inf as nan/inf
            self._stream.write(("\n".join(map(repr, values.tolist())) + "\n").encode())
        self._count += values.size

    def close(self) -> None:
        if self.suffix == ".npy":
            self._stream.seek(0)
            self._stream.write(self._npy_header(self._count))
        self._stream.close()


def write_per_sample(path: str, per_sample: np.ndarray) -> None:
    """Write a whole-tensor computation's per-sample losses (``--per-sample-out``)."""
    writer = PerSampleWriter(Path(path))
    writer.write(per_sample)
    writer.close()


ProgressCallback = Callable[[int], None]


@dataclass
class _Totals:
    """Running sums over the chunks, in float64."""

    loss_sum: float = 0.0  # every per-sample loss, non-finite ones included (the value)
    denominator: float = 0.0
    samples: int = 0
    finite: int = 0
    finite_sum: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    argmax: int | None = None
    non_finite_samples: list[int] = field(default_factory=list)
    non_finite_count: int = 0
    worst: list[tuple[float, int, float]] = field(default_factory=list)  # (rank key, index, loss)
    kept: list[np.ndarray] = field(default_factory=list)
    kept_ignored: list[np.ndarray] = field(default_factory=list)


@dataclass
class _GradientTotals:
    shape: tuple[int, ...]
    squares: float = 0.0
    max_abs: float = 0.0
    zeros: int = 0
    non_finite: int = 0
    first_bad: list[list[int]] = field(default_factory=list)


@dataclass
class _InputTotals:
    nan: int = 0
    inf: int = 0
    samples: int = 0  # samples holding at least one NaN/Inf
    first_bad: list[list[int]] = field(default_factory=list)


def _chunk_rows(readers: dict[str, ChunkReader], budget: int, float_itemsize: int) -> int:
    """Samples per chunk: the chunk's working set stays well inside the budget."""
    per_sample_bytes = 0
    widest = 1
    for reader in readers.values():
        elements = int(np.prod(reader.sample_shape, dtype=np.int64)) if reader.sample_shape else 1
        per_sample_bytes += elements * max(reader.dtype.itemsize, float_itemsize)
        widest = max(widest, elements)
    rows = budget // (CHUNK_FACTOR * max(per_sample_bytes, 1))
    return int(max(1, min(rows, MAX_CHUNK_ELEMENTS // widest)))


def _sum64(values: Any) -> float:
    """Sum a 1-D torch tensor: float32 blocks of 1024, the blocks in float64."""
    import torch

    if values.dtype == torch.float64:
        return float(values.sum())
    flat = values.reshape(-1)
    whole = (flat.numel() // _BLOCK) * _BLOCK
    total = 0.0
    if whole:
        total += float(flat[:whole].view(-1, _BLOCK).sum(dim=1).to(torch.float64).sum())
    if whole < flat.numel():
        total += float(flat[whole:].to(torch.float64).sum())
    return total


def _squares64(values: Any) -> float:
    """Sum of squares of a torch tensor, accumulated like :func:`_sum64`."""
    import torch

    flat = values.reshape(-1)
    if flat.dtype == torch.float64:
        return float(torch.dot(flat, flat))
    whole = (flat.numel() // _BLOCK) * _BLOCK
    total = 0.0
    if whole:
        blocks = flat[:whole].view(-1, _BLOCK)
        norms = torch.linalg.vector_norm(blocks, dim=1).to(torch.float64)
        total += float(torch.dot(norms, norms))
    if whole < flat.numel():
        tail = flat[whole:].to(torch.float64)
        total += float(torch.dot(tail, tail))
    return total


def _positions(mask: np.ndarray, offset: int, limit: int = 3) -> list[list[int]]:
    found = np.argwhere(mask)[:limit]
    return [[int(index[0]) + offset, *(int(i) for i in index[1:])] for index in found]


def _iterate(
    readers: dict[str, ChunkReader], rows: int, first: dict[str, np.ndarray]
) -> Iterator[dict[str, np.ndarray]]:
    """Aligned chunks of every input; the first was read already. Unequal lengths raise.

    The next chunk is read in a thread while the caller computes on the current one (the
    readers alternate two buffers, and reading releases the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    def read_next() -> dict[str, np.ndarray | None]:
        return {name: reader.read(rows) for name, reader in readers.items()}

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-chunk") as pool:
        chunk = first
        while True:
            if PREFETCH:
                pending = pool.submit(read_next)
                yield chunk
                nexts = pending.result()
            else:
                yield chunk
                nexts = read_next()
            ended = [name for name, values in nexts.items() if values is None]
            if len(ended) == len(nexts):
                return
            lengths = {name: 0 if v is None else len(v) for name, v in nexts.items()}
            if ended or len(set(lengths.values())) > 1:
                raise _Unaligned()
            chunk = {name: values for name, values in nexts.items() if values is not None}


class _Unaligned(Exception):
    """The inputs ran out at different samples (CSV lengths are known only at the end)."""


def evaluate(
    spec: LossSpec,
    sources: dict[str, Source],
    options: dict[str, Any],
    float_dtype: str,
    strict: bool,
    budget: int,
    per_sample_out: str | None = None,
    top: int = 10,
    progress: Callable[[int | None], ProgressCallback] | None = None,
) -> Report:
    """Check and compute ``spec`` on ``sources`` chunk by chunk, within ``budget`` bytes.

    Args:
        spec: a streamable loss.
        sources: argument name → a chunkable source (see :func:`plan`).
        options: resolved torch options.
        float_dtype: the float dtype torch computes in.
        strict: convert nothing.
        budget: the memory budget in bytes; it sets the chunk size.
        per_sample_out: a ``.npy`` or ``.csv`` file for every per-sample loss.
        top: how many of the worst samples to keep.
        progress: called once with the total samples (None when unknown); returns a callback
            that receives each chunk's sample count.
    """
    writer = PerSampleWriter(Path(per_sample_out)) if per_sample_out else None
    readers: dict[str, ChunkReader] = {}
    try:
        readers = open_readers(sources)
        return _evaluate(spec, readers, options, float_dtype, strict, budget, writer, top, progress)
    finally:
        for reader in readers.values():
            reader.close()
        if writer is not None:
            writer.close()


def _input_info(readers: dict[str, ChunkReader], rows: dict[str, int]) -> dict[str, InputInfo]:
    return {
        name: InputInfo(
            source=reader.source,
            shape=(rows[name], *reader.sample_shape),
            dtype=str(reader.dtype),
        )
        for name, reader in readers.items()
    }


def _shape_findings(
    spec: LossSpec,
    readers: dict[str, ChunkReader],
    rows: dict[str, int],
    options: dict[str, Any],
    float_dtype: str,
    strict: bool,
) -> list[Finding]:
    """The SHAPES checks on the full shapes (zero-strided stand-ins; no values are read)."""
    from losscli.checks import CheckContext, Scope, checks_for, run
    from losscli.conversion import convert

    def stand_in(name: str, dtype: np.dtype) -> np.ndarray:
        return np.broadcast_to(np.zeros((), dtype), (rows[name], *readers[name].sample_shape))

    stand_ins = {
        name: LoadedArray(values=stand_in(name, reader.dtype), source=reader.source)
        for name, reader in readers.items()
    }
    # the dtypes torch will see (mixed-float-dtypes quotes them), from converting no rows
    no_rows = {
        name: LoadedArray(np.zeros((0, *reader.sample_shape), reader.dtype), reader.source)
        for name, reader in readers.items()
    }
    converted = convert(spec, no_rows, float_dtype, strict).arrays
    context = CheckContext(
        spec=spec,
        inputs=stand_ins,
        arrays={name: stand_in(name, converted[name].dtype) for name in readers},
        options=options,
    )
    return [f for _, f in run(checks_for(spec, Scope.SHAPES), context)]


def _batch_mismatch(
    spec: LossSpec, readers: dict[str, ChunkReader], rows: dict[str, int]
) -> Finding:
    described = "; ".join(f"{name} has {rows[name]} in {readers[name].source}" for name in readers)
    return finding(
        "batch-size-mismatch",
        Severity.ERROR,
        f"{spec.name} needs the same number of samples in every input: {described}",
        "check that every file holds the same samples in the same order",
        blocking=True,
        sizes={name: rows[name] for name in readers},
    )


def _evaluate(
    spec: LossSpec,
    readers: dict[str, ChunkReader],
    options: dict[str, Any],
    float_dtype: str,
    strict: bool,
    budget: int,
    writer: PerSampleWriter | None,
    top: int,
    progress: Callable[[int | None], ProgressCallback] | None,
) -> Report:
    from losscli.checks import CheckContext, Scope, checks_for, numerics, run
    from losscli.conversion import FLOAT_DTYPES, convert
    from losscli.options import json_ready

    float_itemsize = np.dtype(FLOAT_DTYPES[float_dtype]).itemsize
    rows = _chunk_rows(readers, budget, float_itemsize)
    first = {name: reader.read(rows) for name, reader in readers.items()}
    known_rows = {name: reader.rows for name, reader in readers.items()}
    head_rows = {name: 0 if values is None else len(values) for name, values in first.items()}
    # a CSV's length is known only at its end: assume the length a header gives (checked at
    # the end, where unequal lengths become batch-size-mismatch), else the first chunk's
    declared = [count for count in known_rows.values() if count is not None]
    assumed = declared[0] if declared else max(head_rows.values(), default=0)
    full_rows: dict[str, int] = {}
    for name, count in known_rows.items():
        full_rows[name] = assumed if count is None else count

    def report(
        computation: Computation | None, findings: list[Finding], extra: dict[str, Any]
    ) -> Report:
        return Report(
            spec=spec,
            options=json_ready(options),
            inputs=_input_info(readers, full_rows),
            computation=computation,
            findings=tuple(findings),
            extra={"streaming": extra},
        )

    # the value checks see the leading samples the first chunk holds (at most HEAD_SAMPLES)
    checked = min((min(count, HEAD_SAMPLES) for count in head_rows.values()), default=0)
    streaming_note: dict[str, Any] = {
        "chunk_samples": rows,
        "memory_budget_bytes": budget,
        "value_checks_samples": checked,
        "checks": "shape checks saw the full shapes; non-finite-input, non-finite-loss and "
        f"non-finite-gradient saw every value; the other value checks saw the first {checked} samples",
    }
    findings = _shape_findings(spec, readers, full_rows, options, float_dtype, strict)
    # shapes that only broadcast would broadcast chunk against chunk, a different wrong value
    if any(f.blocking or f.name == "silent-broadcast" for f in findings):
        return report(None, findings, streaming_note)
    if any(values is None for values in first.values()) or len(set(full_rows.values())) > 1:
        return report(None, [*findings, _batch_mismatch(spec, readers, full_rows)], streaming_note)

    # conversion and the value checks on the leading samples
    head = {
        name: LoadedArray(values=np.array(values[:HEAD_SAMPLES]), source=readers[name].source)
        for name, values in first.items()
        if values is not None
    }
    converted = convert(spec, head, float_dtype, strict)
    context = CheckContext(
        spec=spec,
        inputs=head,
        arrays=converted.arrays,
        options=options,
        soft_target=converted.soft_target,
        strict=strict,
    )
    # the value checks on the head; non-finite-input counts every chunk, and without a
    # computation in the context the checks that read one return at once
    value_checks = [
        check
        for check in (*checks_for(spec, Scope.CHUNK), *checks_for(spec, Scope.SAMPLE))
        if check.function is not numerics.check_non_finite_input
    ]
    findings += converted.findings
    findings += [f for _, f in run(value_checks, context)]
    if converted.blocked or any(f.blocking for f in findings):
        return report(None, findings, streaming_note)
    target_dtypes = {name: array.dtype for name, array in converted.arrays.items()}

    from losscli.compute import TorchRejected

    try:
        outcome = _stream(
            spec,
            readers,
            rows,
            {name: values for name, values in first.items() if values is not None},
            target_dtypes,
            options,
            converted.soft_target,
            writer,
            top,
            progress,
        )
    except _Unaligned:
        for reader in readers.values():  # read to the end to count every input's samples
            while reader.rows is None and reader.read(rows) is not None:
                pass
        counted = {name: reader.rows or 0 for name, reader in readers.items()}
        full_rows.update(counted)
        return report(None, [*findings, _batch_mismatch(spec, readers, counted)], streaming_note)
    except TorchRejected as error:
        rejected = finding(
            "torch-rejected",
            Severity.ERROR,
            f"torch raised: {error}",
            f"run losscli debug --loss {spec.name} on the same inputs for an explanation",
        )
        return report(None, [*findings, rejected], streaming_note)
    full_rows.update({name: reader.rows or full_rows[name] for name, reader in readers.items()})
    streaming_note["chunks"] = outcome.chunks
    streaming_note["quantiles"] = (
        "exact (every per-sample loss kept)"
        if outcome.exact_quantiles
        else f"from a uniform random sample of {outcome.sampled} per-sample losses"
    )
    return report(
        outcome.computation,
        [*findings, *outcome.input_findings, *outcome.result_findings],
        streaming_note,
    )


def _stream(*args: Any) -> _Outcome:
    """:func:`_stream_chunks` with torch on one core fewer: the other reads the next chunk.

    Two OpenMP threads on two cores, one of them taken by the reader (or by anything else
    on the machine), wait on each other at every operation: measured 3.0 s against 1.2 s
    for 1e8 elements on two cores.
    """
    import os

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1) - 1))
    try:
        return _stream_chunks(*args)
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class _Outcome:
    computation: Computation
    result_findings: list[Finding]
    input_findings: list[Finding]
    chunks: int
    exact_quantiles: bool
    sampled: int


def _stream_chunks(
    spec: LossSpec,
    readers: dict[str, ChunkReader],
    rows: int,
    first: dict[str, np.ndarray],
    target_dtypes: dict[str, np.dtype],
    options: dict[str, Any],
    soft_target: bool,
    writer: PerSampleWriter | None,
    top: int,
    progress: Callable[[int | None], ProgressCallback] | None,
) -> _Outcome:
    import warnings

    import torch

    from losscli.compute import TorchRejected, loss_function, per_sample_losses

    reduction = str(options.get("reduction", "mean"))
    function = loss_function(spec, options, soft_target)
    total_rows = next(iter(readers.values())).rows
    advance = progress(total_rows) if progress is not None else None
    grad_names = [
        a.name for a in spec.arguments if a.differentiable and target_dtypes[a.name].kind == "f"
    ]
    cast_buffers: dict[str, np.ndarray] = {}
    totals = _Totals()
    gradient_totals: dict[str, _GradientTotals] = {}
    input_totals = {
        name: _InputTotals() for name, reader in readers.items() if reader.dtype.kind == "f"
    }
    sample = QuantileSample(total_rows)
    out_buffer: np.ndarray | None = None
    elements = 1
    out_dtype = "float32"
    caught: list[str] = []
    chunks = 0
    offset = 0
    for chunk in _iterate(readers, rows, first):
        count = len(next(iter(chunk.values())))
        chunks += 1
        tensors = []
        for argument in spec.arguments:
            raw = chunk[argument.name]
            if argument.name in input_totals:
                _count_non_finite(raw, offset, input_totals[argument.name])
            wanted = target_dtypes[argument.name]
            if raw.dtype != wanted:
                buffer = cast_buffers.get(argument.name)
                if buffer is None or buffer.shape[0] < count:
                    buffer = cast_buffers[argument.name] = np.empty(
                        (max(rows, count), *raw.shape[1:]), dtype=wanted
                    )
                np.copyto(buffer[:count], raw, casting="unsafe")
                raw = buffer[:count]
            tensor = torch.from_numpy(raw)
            if argument.name in grad_names:
                tensor.requires_grad_(True)
            tensors.append(tensor)
        try:
            with warnings.catch_warnings(record=True) as records:
                warnings.simplefilter("always")
                out = function(*tensors, reduction="none")
                if grad_names and out.requires_grad:
                    # backward of a scalar: a non-scalar grad_tensors makes autograd import
                    # torch.fx's symbolic shapes (sympy), 0.3 s, where the sum costs 1 pass
                    out.sum().backward()
                caught.extend(str(r.message) for r in records)
        except (RuntimeError, ValueError, IndexError, TypeError) as error:
            text = str(error).strip()
            raise TorchRejected(text.splitlines()[0] if text else type(error).__name__) from None
        out = out.detach()
        out_dtype = str(out.dtype).removeprefix("torch.")
        if out.dim() == 0:
            out = out.reshape(1)
        elements = max(1, out[0].numel()) if out.numel() else 1
        weighted_mean = (
            spec.per_sample_rule is PerSampleRule.WEIGHTED
            and not soft_target
            and reduction == "mean"
        )
        if out.dim() == 1 and not weighted_mean:
            # one loss per sample already: the same numbers per_sample_losses would return
            per_sample = out if out.dtype in (torch.float32, torch.float64) else out.float()
            chunk_denominator = float(count)
            ignored = None
        else:
            arrays = {
                a.name: t.detach().numpy() for a, t in zip(spec.arguments, tensors, strict=True)
            }
            values, chunk_share, ignored = per_sample_losses(
                spec, out, arrays, options, reduction, soft_target
            )
            per_sample = torch.from_numpy(values)
            chunk_denominator = float(chunk_share) if chunk_share is not None else 0.0
        totals.denominator += chunk_denominator
        _accumulate(per_sample, offset, totals, sample, top)
        if offset + count <= KEEP_SAMPLES:  # every value is kept only for small inputs
            totals.kept.append(per_sample.numpy().astype(np.float64))
            if ignored is not None:
                totals.kept_ignored.append(np.asarray(ignored))
        if writer is not None:
            if per_sample.dtype == torch.float64:
                writer.write(per_sample.numpy())
            else:
                if out_buffer is None or out_buffer.size < count:
                    out_buffer = np.empty(max(rows, count), dtype=np.float64)
                np.copyto(out_buffer[:count], per_sample.numpy())
                writer.write(out_buffer[:count])
        for argument, tensor in zip(spec.arguments, tensors, strict=True):
            if argument.name not in grad_names:
                continue
            shape = (total_rows or 0, *tuple(tensor.shape[1:]))
            state = gradient_totals.setdefault(argument.name, _GradientTotals(shape))
            grad = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
            _accumulate_gradient(grad, offset, state)
        totals.samples += count
        offset += count
        if advance is not None:
            advance(count)

    n = totals.samples
    denominator: float | None
    if reduction == "none":
        denominator = None
        value = None
        scale = 1.0
    elif reduction == "sum":
        denominator = 1.0
        value = totals.loss_sum
        scale = 1.0
    else:
        denominator = totals.denominator
        value = totals.loss_sum / denominator if denominator else math.nan
        # mean divides the sum by every element (or by the summed weights); batchmean by N
        divisor = denominator * (elements if reduction == "mean" else 1)
        scale = 1.0 / divisor if divisor else math.nan
    per_sample_kept = np.concatenate(totals.kept)[:n] if n <= KEEP_SAMPLES else np.empty(0)
    ignored_kept = (
        np.concatenate(totals.kept_ignored)[:n]
        if n <= KEEP_SAMPLES and totals.kept_ignored
        else None
    )
    quantiles = sample.quantiles([0.5, 0.9, 0.99])
    summary: dict[str, Any] = {
        "n": n,
        "mean": _finite(totals.finite_sum / totals.finite) if totals.finite else None,
        "min": _finite(totals.minimum) if totals.finite else None,
        "max": _finite(totals.maximum) if totals.finite else None,
        "argmax": totals.argmax if totals.finite else None,
        "p50": _finite(quantiles[0]) if quantiles else None,
        "p90": _finite(quantiles[1]) if quantiles else None,
        "p99": _finite(quantiles[2]) if quantiles else None,
    }
    gradient_summaries = {}
    for name, state in gradient_totals.items():
        size = n * int(np.prod(state.shape[1:], dtype=np.int64)) if state.shape[1:] else n
        gradient_summaries[name] = {
            "shape": [n, *state.shape[1:]],
            "norm": _finite(math.sqrt(state.squares) * abs(scale)),
            "max_abs": _finite(state.max_abs * abs(scale)),
            "zero_fraction": state.zeros / size if size else 0.0,
            "non_finite": state.non_finite,
        }
    worst = tuple((index, loss) for _, index, loss in totals.worst)
    computation = Computation(
        value=value,
        dtype=out_dtype,
        per_sample=per_sample_kept,
        denominator=denominator,
        ignored=ignored_kept,
        gradients={},
        warnings=tuple(dict.fromkeys(caught)),
        streamed=True,
        summary=summary,
        gradient_summaries=gradient_summaries,
        worst=worst,
    )
    return _Outcome(
        computation=computation,
        result_findings=_result_findings(value, totals, gradient_totals),
        input_findings=_input_findings(readers, input_totals),
        chunks=chunks,
        exact_quantiles=sample.exact,
        sampled=sample.size,
    )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _accumulate(
    per_sample: Any, offset: int, totals: _Totals, sample: QuantileSample, top: int
) -> None:
    """Fold one chunk of per-sample losses (a 1-D torch tensor) into the running totals."""
    import torch

    chunk_sum = _sum64(per_sample)
    losses = per_sample.numpy()
    if math.isfinite(chunk_sum):  # a finite sum means every loss is finite
        totals.loss_sum += chunk_sum
        totals.finite += per_sample.numel()
        totals.finite_sum += chunk_sum
        low, high = (float(v) for v in torch.aminmax(per_sample))
        finite_losses = losses
        ranked = per_sample
        ranked_top = high
    else:
        exact = per_sample.to(torch.float64)
        totals.loss_sum += float(exact.sum())
        good = torch.isfinite(per_sample)
        bad = (~good).nonzero().reshape(-1)
        totals.non_finite_count += int(bad.numel())
        room = 5 - len(totals.non_finite_samples)
        totals.non_finite_samples += [int(i) + offset for i in bad[:room]] if room > 0 else []
        finite_losses = losses[good.numpy()]
        totals.finite += int(finite_losses.size)
        totals.finite_sum += float(finite_losses.astype(np.float64).sum())
        if finite_losses.size:
            low, high = float(finite_losses.min()), float(finite_losses.max())
        else:
            low, high = math.inf, -math.inf
        ranked = torch.where(
            torch.isnan(per_sample), torch.full_like(per_sample, math.inf), per_sample
        )
        ranked_top = float(ranked.max())
        per_sample = torch.where(good, per_sample, torch.full_like(per_sample, -math.inf))
    totals.minimum = min(totals.minimum, low)
    if high > totals.maximum:
        totals.maximum = high
        totals.argmax = offset + int(torch.argmax(per_sample))
    sample.add(finite_losses)
    # the worst samples: only a chunk that can beat the current worst `top` is searched
    if top > 0:
        threshold = totals.worst[-1][0] if len(totals.worst) >= top else -math.inf
        if len(totals.worst) < top:
            keys, where = torch.topk(ranked, min(top, ranked.numel()))
        elif ranked_top > threshold:  # usually few beat the threshold: no top-k over the chunk
            where = _above(ranked, threshold)
            keys = ranked[where]
            if where.numel() > top:
                keys, best = torch.topk(keys, top)
                where = where[best]
        else:
            return
        for key, index in zip(keys.tolist(), where.tolist(), strict=True):
            totals.worst.append((key, offset + index, float(losses[index])))
        # worst first; among equal losses the later sample first, as the table orders them
        totals.worst.sort(key=lambda w: (-w[0], -w[1]))
        del totals.worst[top:]


def _above(values: Any, threshold: float) -> Any:
    """Positions of the values above ``threshold`` in a 1-D torch tensor.

    Searches only the blocks of 1024 whose maximum is above it: one max per block instead
    of a comparison and a nonzero over the whole chunk (a tenth of the time).
    """
    import torch

    whole = (values.numel() // _BLOCK) * _BLOCK
    parts = []
    if whole:
        hot = torch.nonzero(values[:whole].view(-1, _BLOCK).amax(dim=1) > threshold).reshape(-1)
        parts.append((hot[:, None] * _BLOCK + torch.arange(_BLOCK)).reshape(-1))
    parts.append(torch.arange(whole, values.numel()))
    positions = torch.cat(parts)
    return positions[values[positions] > threshold]


def _accumulate_gradient(grad: Any, offset: int, state: _GradientTotals) -> None:
    """Fold one chunk of the gradient of the chunk sum into its running summary."""
    import torch

    squares = _squares64(grad)
    low, high = (float(v) for v in torch.aminmax(grad.reshape(-1)))
    state.zeros += grad.numel() - int(torch.count_nonzero(grad))
    if math.isfinite(squares) and math.isfinite(low) and math.isfinite(high):
        state.squares += squares
        state.max_abs = max(state.max_abs, abs(low), abs(high))
        return
    good = torch.isfinite(grad)
    bad = ~good
    state.non_finite += int(bad.sum())
    if len(state.first_bad) < 3:
        state.first_bad += _positions(bad.numpy(), offset, 3 - len(state.first_bad))
    finite = grad[good].to(torch.float64)
    if finite.numel():
        state.squares += float(torch.dot(finite, finite))
        state.max_abs = max(state.max_abs, float(finite.abs().max()))


def _count_non_finite(raw: np.ndarray, offset: int, state: _InputTotals) -> None:
    """Count NaN/Inf in one chunk of a float input (a finite sum means there are none)."""
    import torch

    # a float32 sum can overflow on finite values; then the exact count below decides
    if math.isfinite(float(torch.from_numpy(raw).sum())):
        return
    bad = ~np.isfinite(raw)
    nans = int(np.isnan(raw).sum())
    state.nan += nans
    state.inf += int(bad.sum()) - nans
    state.samples += int(bad.reshape(len(raw), -1).any(axis=1).sum()) if raw.ndim else 1
    if len(state.first_bad) < 3:
        state.first_bad += _positions(bad, offset, 3 - len(state.first_bad))


def _input_findings(
    readers: dict[str, ChunkReader], totals: dict[str, _InputTotals]
) -> list[Finding]:
    found = []
    for name, state in totals.items():
        if not (state.nan or state.inf):
            continue
        reader = readers[name]
        size = (reader.rows or 0) * (
            int(np.prod(reader.sample_shape)) if reader.sample_shape else 1
        )
        first = state.first_bad[0] if state.first_bad else [0]
        where = f"index {first[0]}" if len(first) == 1 else f"position {first}"
        found.append(
            finding(
                "non-finite-input",
                Severity.ERROR,
                f"{name} ({reader.source}) holds {state.nan} NaN and {state.inf} Inf "
                f"of {size} values, in {state.samples} of {reader.rows} samples (first at {where})",
                "find where the NaN/Inf first appears in the model (torch.autograd.set_detect_anomaly(True)), "
                "or drop those samples before the loss",
                argument=name,
                nan=state.nan,
                inf=state.inf,
                samples=state.samples,
                first_positions=state.first_bad,
            )
        )
    return found


def _result_findings(
    value: float | None, totals: _Totals, gradients: dict[str, _GradientTotals]
) -> list[Finding]:
    found: list[Finding] = []
    value_bad = value is not None and not math.isfinite(value)
    if totals.non_finite_count or value_bad:
        described = (
            f"{totals.non_finite_count} of {totals.samples} per-sample losses are NaN/Inf "
            f"(samples {totals.non_finite_samples})"
            if totals.non_finite_count
            else ""
        )
        said = f"the value is {value}" if value_bad else ""
        found.append(
            finding(
                "non-finite-loss",
                Severity.ERROR,
                "; ".join(part for part in (said, described) if part),
                "run losscli debug on the same inputs to see which input or option produces it",
                samples=totals.non_finite_samples,
                count=totals.non_finite_count,
            )
        )
    for name, state in gradients.items():
        if state.non_finite:
            size = int(np.prod([totals.samples, *state.shape[1:]]))
            found.append(
                finding(
                    "non-finite-gradient",
                    Severity.ERROR,
                    f"the gradient for {name} holds {state.non_finite} NaN/Inf of {size} values "
                    f"(first at {state.first_bad[0] if state.first_bad else '?'})",
                    "look for inputs at the edge of the loss's domain (log(0), division by a zero variance)",
                    argument=name,
                    count=state.non_finite,
                    first_positions=state.first_bad,
                )
            )
    return found
