"""Chunk readers: read a ``.npy`` or CSV input a block of samples at a time, into reused buffers.

Streaming (:mod:`losscli.streaming`) reads its inputs through these instead of the loaders,
so memory stays flat however large a file is:

- ``.npy``: the header (``np.lib.format``) gives the shape and dtype; samples are read with
  ``readinto`` into one buffer allocated once. Never memory-mapped: the pages of a mapping
  count toward the peak as they are touched, and glibc may keep a freed buffer per chunk.
- CSV (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``): pyarrow's streaming reader
  (``pyarrow.csv.open_csv``); its record batches are copied into one reused buffer so that
  every input yields chunks of exactly the same number of samples.

pyarrow is imported inside the functions that read CSV.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from losscli.errors import LoadError
from losscli.sources import Source, SourceKind

_NPY = (".npy",)
CSV_THREADS = False
_CSV = (".csv", ".tsv", ".txt")


class ChunkReader(Protocol):
    """Reads one input a block of samples (rows along dimension 0) at a time."""

    source: str
    dtype: np.dtype
    sample_shape: tuple[int, ...]

    @property
    def rows(self) -> int | None:
        """The number of samples; None while unknown (CSV: known once the file is read)."""
        ...

    def read(self, count: int) -> np.ndarray | None:
        """The next ``count`` samples (fewer at the end), shaped ``[count, *sample_shape]``.

        The array is a view into a reused buffer that the second call after this one
        overwrites (two buffers alternate); None at the end.
        """
        ...

    def close(self) -> None: ...


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


@dataclass(frozen=True)
class Estimate:
    """What is known about one input before it is read.

    Attributes:
        nbytes: its size: the data bytes of a ``.npy``, the file size of anything else, 0 when
            unknown (standard input, inline arrays).
        chunkable: :func:`open_reader` can read it in chunks.
        shape: the full shape when the header says it (``.npy``), else None.
        dtype: the dtype when the header says it, else None.
    """

    nbytes: int
    chunkable: bool
    shape: tuple[int, ...] | None = None
    dtype: np.dtype | None = None


def estimate(source: Source) -> Estimate:
    """How big ``source`` is and whether it can be read in chunks, from its header or size."""
    if source.kind is not SourceKind.FILE or source.path is None:
        return Estimate(0, False)
    path = source.path
    try:
        size = path.stat().st_size
    except OSError:
        return Estimate(0, False)  # the loader reports the missing file
    suffix = _suffix(path)
    if suffix in _NPY and source.selector is None and path.suffix.lower() != ".gz":
        try:
            with path.open("rb") as stream:
                shape, dtype, fortran = _npy_header(stream, source.display)
                data_bytes = size - stream.tell()
        except (LoadError, OSError):
            return Estimate(size, False)  # the loader reports what is wrong
        count = 1
        for dim in shape:
            count *= int(dim)
        if count < 0 or count * dtype.itemsize > data_bytes:
            return Estimate(
                size, False
            )  # a header that claims more than the file holds: the loader says so
        return Estimate(count * dtype.itemsize, not fortran and len(shape) >= 1, shape, dtype)
    return Estimate(size, suffix in _CSV)


def open_readers(sources: dict[str, Source]) -> dict[str, ChunkReader]:
    """A chunk reader for each source (``.npy`` or CSV files; see :func:`estimate`).

    Inputs that are columns of one CSV file share one parse of it.
    """
    readers: dict[str, ChunkReader] = {}
    tables: dict[Path, list[str]] = {}
    try:
        for name, source in sources.items():
            assert source.path is not None
            if _suffix(source.path) in _NPY:
                readers[name] = NpyChunks(source.path, source.display)
            else:
                tables.setdefault(source.path.resolve(), []).append(name)
        for names in tables.values():
            first = sources[names[0]]
            assert first.path is not None
            table = CsvChunks(first.path, [sources[n].selector for n in names], first.display)
            for selection, name in enumerate(names):
                readers[name] = CsvColumns(table, selection, sources[name].display)
    except BaseException:
        for reader in readers.values():
            reader.close()
        raise
    return {name: readers[name] for name in sources}


def _npy_header(stream: BinaryIO, name: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """The loader's own header reader (:func:`losscli.loaders.npy.read_header`)."""
    from losscli.loaders.npy import read_header

    header = read_header(stream, name)
    return header.shape, header.dtype, header.fortran_order


class _Buffers:
    """Two chunk buffers used in turn, allocated once: one is filled while the other is read.

    A chunk returned by ``read`` therefore stays valid until the second ``read`` after it,
    which lets :func:`losscli.streaming` read the next chunk in a thread.
    """

    def __init__(self, sample_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self._shape = sample_shape
        self._dtype = dtype
        self._pair: list[np.ndarray | None] = [None, None]
        self._turn = 0

    def next(self, rows: int) -> np.ndarray:
        self._turn ^= 1
        buffer = self._pair[self._turn]
        if buffer is None or buffer.shape[0] < rows:
            buffer = np.empty((rows, *self._shape), dtype=self._dtype)
            self._pair[self._turn] = buffer
        return buffer


class NpyChunks:
    """Samples of a C-ordered ``.npy`` file, read with ``readinto`` into one reused buffer."""

    def __init__(self, path: Path, display: str) -> None:
        self.source = display
        self._stream = path.open("rb", buffering=0)
        shape, dtype, fortran = _npy_header(self._stream, display)
        if fortran or not shape:
            raise LoadError(display, "is Fortran-ordered or 0-d; it cannot be read in chunks")
        self.dtype = dtype
        self.rows: int | None = shape[0]
        self.sample_shape = tuple(shape[1:])
        self._row_bytes = int(np.prod(self.sample_shape, dtype=np.int64)) * dtype.itemsize
        available = os.fstat(self._stream.fileno()).st_size - self._stream.tell()
        if shape[0] * self._row_bytes > available:
            raise LoadError(
                display,
                f"the header declares {shape[0] * self._row_bytes} bytes of data but the file "
                f"holds {available} (truncated?)",
            )
        self._left = shape[0]
        self._buffers = _Buffers(self.sample_shape, self.dtype)

    def read(self, count: int) -> np.ndarray | None:
        if self._left == 0:
            return None
        rows = min(count, self._left)
        view = self._buffers.next(count)[:rows]
        wanted = rows * self._row_bytes
        target = memoryview(view.reshape(-1).view(np.uint8).data)
        got = 0
        while got < wanted:
            n = self._stream.readinto(target[got:wanted])
            if not n:
                raise LoadError(self.source, "ended early while streaming (truncated?)")
            got += n
        self._left -= rows
        return view

    def close(self) -> None:
        self._stream.close()


class CsvChunks:
    """Columns of a delimited text file, through pyarrow's streaming CSV reader.

    Header detection and column selection follow :mod:`losscli.loaders.csv`: a first line
    whose cells are not all numbers is a header; ``file.csv:col`` or ``file.csv:c1,c2`` picks
    columns by name, or by 0-based index without a header. Only the selected columns are
    converted (``include_columns``). Several inputs on one file share one reader
    (:class:`CsvColumns`), so the file is parsed once.
    """

    # bytes pyarrow parses at a time: large enough to parse in parallel, small enough to stay flat
    BLOCK_SIZE = 8 << 20

    def __init__(self, path: Path, selectors: Sequence[str | None], display: str) -> None:
        from pyarrow import csv as pacsv

        self.source = display
        self._name = str(path)
        if path.stat().st_size == 0:
            raise LoadError(self._name, "is empty (0 bytes)")
        first = self._first_line(path)
        delimiter = "\t" if _suffix(path) == ".tsv" else _sniff(first)
        cells = [cell.strip().strip('"') for cell in first.split(delimiter)]
        self._has_header = not all(_is_number(cell) for cell in cells if cell != "")
        # one parsing thread (measured no slower on two cores, where the import of torch
        # runs beside it, and steadier); CSV_THREADS = True gives pyarrow every core
        read_options = pacsv.ReadOptions(
            autogenerate_column_names=not self._has_header,
            block_size=self.BLOCK_SIZE,
            use_threads=CSV_THREADS,
        )
        parse_options = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True)
        probe = self._open(path, read_options, parse_options, None)
        arrow_names = list(probe.schema.names)
        probe.close()
        names = arrow_names if self._has_header else [str(i) for i in range(len(arrow_names))]
        chosen = [_select(names, selector, self._name, self._has_header) for selector in selectors]
        union = list(dict.fromkeys(name for selection in chosen for name in selection))
        self.selections = [[union.index(name) for name in selection] for selection in chosen]
        self.columns = tuple(union)
        include = [arrow_names[names.index(name)] for name in union]
        self._reader = self._open(
            path, read_options, parse_options, pacsv.ConvertOptions(include_columns=include)
        )
        self.dtypes = self._column_dtypes()
        self.rows: int | None = None
        self._pending: list[list[np.ndarray]] = []  # parsed blocks not handed out, in order
        self._pending_rows = 0
        self._done = False
        self._row = 0  # rows parsed so far, for messages
        self._buffers = [_Buffers((), dtype) for dtype in self.dtypes]
        # lockstep for CsvColumns: chunks handed out so far, and the latest one
        self.steps = 0
        self.chunk: list[np.ndarray] | None = None

    @staticmethod
    def _first_line(path: Path) -> str:
        import gzip

        opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
        try:
            with opener(path, "rb") as stream:
                for raw in stream:
                    line = raw.decode("utf-8", errors="replace").strip()
                    if line:
                        return line
        except (OSError, EOFError) as error:
            raise LoadError(str(path), f"cannot be read ({error})") from None
        raise LoadError(str(path), "holds no data (only blank lines)")

    def _open(self, path: Path, read_options: Any, parse_options: Any, convert_options: Any) -> Any:
        import pyarrow as pa
        from pyarrow import csv as pacsv

        try:
            stream = pa.input_stream(str(path), compression="detect")
            return pacsv.open_csv(
                stream,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
            raise LoadError(self._name, str(error).splitlines()[0]) from None

    def _column_dtypes(self) -> list[np.dtype]:
        import pyarrow as pa

        dtypes: list[np.dtype] = []
        for field in self._reader.schema:
            kind = field.type
            if pa.types.is_boolean(kind):
                dtypes.append(np.dtype(np.bool_))
            elif pa.types.is_integer(kind):
                dtypes.append(np.dtype(np.int64))
            elif pa.types.is_floating(kind) or pa.types.is_null(kind):
                dtypes.append(np.dtype(np.float64))
            else:
                raise LoadError(self._name, f"column {field.name!r} is not numeric ({kind})")
        return dtypes

    def _next_batch(self) -> list[np.ndarray] | None:
        import pyarrow as pa

        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            return None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            first = str(error).splitlines()[0]
            raise LoadError(
                self._name, f"near row {self._row + 1}: {first} (types are fixed by the first rows)"
            ) from None
        arrays = []
        for index, dtype in enumerate(self.dtypes):
            column = batch.column(index)
            if column.null_count and dtype.kind != "f":
                raise LoadError(
                    self._name, f"has an empty cell in an integer column near row {self._row + 1}"
                )
            arrays.append(column.to_numpy(zero_copy_only=False))
        self._row += batch.num_rows
        return arrays

    def read_columns(self, count: int) -> list[np.ndarray] | None:
        """The next ``count`` rows (fewer at the end) of every column, each ``[rows]``."""
        while self._pending_rows < count and not self._done:
            block = self._next_batch()
            if block is None:
                self._done = True
                self.rows = self._row
            elif len(block[0]):
                self._pending.append(block)
                self._pending_rows += len(block[0])
        if self._pending_rows == 0:
            if self._row == 0:
                raise LoadError(self._name, "has a header but no rows of data")
            return None
        rows = min(count, self._pending_rows)
        views = [buffers.next(max(rows, count))[:rows] for buffers in self._buffers]
        filled = 0
        while filled < rows:
            block = self._pending[0]
            take = min(len(block[0]), rows - filled)
            for view, column in zip(views, block, strict=True):
                view[filled : filled + take] = column[:take]
            filled += take
            if take == len(block[0]):
                self._pending.pop(0)
            else:
                self._pending[0] = [column[take:] for column in block]
        self._pending_rows -= rows
        return views

    def close(self) -> None:
        self._pending.clear()
        self._reader.close()


class CsvColumns:
    """One input's columns of a (possibly shared) :class:`CsvChunks`, as a :class:`ChunkReader`.

    Inputs on the same file read in lockstep: the first to ask for the next chunk makes the
    shared reader parse it, the others take their columns of the same chunk.
    """

    def __init__(self, table: CsvChunks, selection: int, display: str) -> None:
        self._table = table
        self._columns = table.selections[selection]
        self.source = display
        self.dtype = np.result_type(*(table.dtypes[i] for i in self._columns))
        self.sample_shape: tuple[int, ...] = (
            () if len(self._columns) == 1 else (len(self._columns),)
        )
        self._buffers = _Buffers(self.sample_shape, self.dtype)
        self._steps = 0

    @property
    def rows(self) -> int | None:
        return self._table.rows

    def read(self, count: int) -> np.ndarray | None:
        table = self._table
        if self._steps == table.steps:
            table.chunk = table.read_columns(count)
            table.steps += 1
        self._steps += 1
        columns = table.chunk
        if columns is None:
            return None
        if len(self._columns) == 1:
            return columns[self._columns[0]]
        stacked = self._buffers.next(max(count, len(columns[0])))[: len(columns[0])]
        for position, index in enumerate(self._columns):
            stacked[:, position] = columns[index]
        return stacked

    def close(self) -> None:
        self._table.close()


def _sniff(first_line: str) -> str:
    for candidate in ("\t", ",", ";"):
        if candidate in first_line:
            return candidate
    return " " if " " in first_line.strip() else ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _select(columns: list[str], selector: str | None, name: str, has_header: bool) -> list[str]:
    """The columns ``selector`` names (as :mod:`losscli.loaders.csv` reads them)."""
    if selector is None:
        return columns
    chosen = []
    for part in (p.strip() for p in selector.split(",")):
        if part in columns:
            chosen.append(part)
        elif part.lstrip("-").isdigit() and -len(columns) <= int(part) < len(columns):
            chosen.append(columns[int(part)])
        else:
            have = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            kind = "column" if has_header else "column index"
            raise LoadError(name, f"has no {kind} {part!r} (it has: {have})")
    return chosen
