"""Loaders: read one Source into a :class:`LoadedArray`; one module per format.

Adding a format is one module with ``read_path(path, selector, display)`` (and
``read_bytes(data, selector, display)`` when it can come from standard input) and one
:class:`Format` line in :data:`FORMATS`. Every loader opens its input read-only, never
unpickles, checks any size a header claims against the bytes that are really there before
allocating, and turns bad input into :class:`~losscli.errors.LoadError`.

The formats that stream (``.npy`` and delimited text) also read a block of samples at a
time through a :class:`ChunkReader` (:func:`open_chunk_readers`). A chunk reader is built
inside its format's module from the loader's own decisions (the ``.npy`` header reader; the
CSV layout, pyarrow options, column selection and dtype rules), so an input streamed in
chunks is read exactly as the same input read whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast, runtime_checkable

import numpy as np

from losscli.errors import LoadError
from losscli.sources import Source, SourceKind


@dataclass(frozen=True)
class LoadedArray:
    """A numeric array read from one source.

    Attributes:
        values: the numbers, any shape; a real (bool, int, uint or float) dtype.
        source: how messages name it (``pred.npy``, ``labels.csv:label``, ``inline``).
        columns: the column names the values came from, for tabular sources.
        stored_dtype: the dtype the file stored when ``values`` had to be widened to be
            represented in NumPy (a bfloat16 tensor arrives as float32 with
            ``stored_dtype="bfloat16"``); None when ``values.dtype`` is what was stored.
        from_text: the numbers were read from text (CSV, standard input as CSV, an inline
            or JSON array), which has no dtype: a cast that keeps every value is no finding.
    """

    values: np.ndarray
    source: str
    columns: tuple[str, ...] | None = None
    stored_dtype: str | None = None
    from_text: bool = False


@dataclass(frozen=True)
class Format:
    """One input format.

    Attributes:
        name: what ``--stdin-format`` and messages call it.
        module: the module under ``losscli.loaders`` that reads it.
        suffixes: the file suffixes (lower case) that select it.
        gzip: whether ``name.SUFFIX.gz`` is read too.
        stdin: whether it can come from standard input (the module has ``read_bytes``).
    """

    name: str
    module: str
    suffixes: tuple[str, ...]
    gzip: bool = False
    stdin: bool = False


FORMATS: tuple[Format, ...] = (
    Format("npy", "npy", (".npy",), stdin=True),
    Format("npz", "npz", (".npz",), stdin=True),
    Format("csv", "csv", (".csv", ".txt"), gzip=True, stdin=True),
    Format("tsv", "csv", (".tsv", ".tab"), gzip=True, stdin=True),
    Format("parquet", "arrow", (".parquet", ".pq")),
    Format("feather", "arrow", (".feather", ".arrow", ".ipc")),
    Format("pt", "torchfile", (".pt", ".pth")),
    Format("json", "inline", (".json",), stdin=True),
)

# Exceptions that a format library raises on malformed bytes (not on a bug in losscli): a
# last line of defence that still names the file. Anything else is an internal error.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    UnicodeError,
    OverflowError,
    MemoryError,
)


@runtime_checkable
class ChunkReader(Protocol):
    """Reads one input a block of samples (rows along dimension 0) at a time.

    Attributes:
        source: how messages and reports name the input (``Source.display``).
        sample_shape: the shape of one sample (everything after dimension 0).
        from_text: the numbers are read from text, as :attr:`LoadedArray.from_text`.
    """

    source: str
    sample_shape: tuple[int, ...]
    from_text: bool

    @property
    def dtype(self) -> np.dtype:
        """The widest dtype of the chunks read so far; final once read to the end.

        Before the first read, the dtype the first chunk is expected to have. Text can widen
        as it is read: an integer column that holds a float further down gives int64 chunks,
        then float64 ones (the whole loader gives float64 for all of it:
        ``np.result_type`` over the chunks).
        """
        ...

    @property
    def rows(self) -> int | None:
        """The number of samples in the input; None until known (text: at its end)."""
        ...

    def read(self, count: int) -> np.ndarray | None:
        """The next ``count`` samples (fewer at the end), ``[count, *sample_shape]``.

        None at the end. The array may be a view into a reused buffer (and may be
        read-only): it stays valid until the second ``read`` after this one, since two
        buffers alternate, so the next chunk can be read in a thread while this one is used.

        Raises:
            LoadError: the input turns out to be malformed further down (a truncated file,
                a ragged row, a cell that is not a number), with the whole loader's message.
        """
        ...

    def close(self) -> None:
        """Release the file; reading after this is an error."""
        ...


@dataclass(frozen=True)
class Estimate:
    """What is known about one input before it is read.

    Attributes:
        nbytes: its size: the data bytes of a ``.npy``, the file size of anything else (of a
            ``.gz`` too: compressed), 0 when unknown (standard input, inline arrays).
        chunkable: :func:`open_chunk_readers` can read it in chunks.
        shape: the full shape when a header says it (``.npy``), else None.
        dtype: the dtype the chunks will have when a header says it (``.npy``), else None.
    """

    nbytes: int
    chunkable: bool
    shape: tuple[int, ...] | None = None
    dtype: np.dtype | None = None


class ChunkBuffers:
    """Two chunk buffers used in turn, each allocated once and reused while it fits.

    A chunk handed out from one stays valid until the second ``next`` after it, which lets
    a consumer read the next chunk in a thread while it works on this one.
    """

    def __init__(self) -> None:
        self._pair: list[np.ndarray | None] = [None, None]
        self._turn = 0

    def next(self, rows: int, sample_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A ``[rows, *sample_shape]`` array of ``dtype`` (a view into the next buffer)."""
        self._turn ^= 1
        buffer = self._pair[self._turn]
        if (
            buffer is None
            or buffer.dtype != dtype
            or buffer.shape[1:] != sample_shape
            or buffer.shape[0] < rows
        ):
            buffer = np.empty((rows, *sample_shape), dtype=dtype)
            self._pair[self._turn] = buffer
        return buffer[:rows]


class _PathReader(Protocol):
    def read_path(self, path: Path, selector: str | None, display: str) -> LoadedArray: ...


class _BytesReader(Protocol):
    def read_bytes(self, data: bytes, selector: str | None, display: str) -> LoadedArray: ...


def supported_suffixes() -> list[str]:
    """The file suffixes losscli reads."""
    return sorted(suffix for fmt in FORMATS for suffix in fmt.suffixes)


def stdin_formats() -> list[str]:
    """The names ``--stdin-format`` accepts."""
    return [fmt.name for fmt in FORMATS if fmt.stdin]


def format_of(path: Path) -> Format | None:
    """The format of ``path`` from its suffix (``x.csv.gz`` is csv); None when unknown."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    if not suffixes:
        return None
    for fmt in FORMATS:
        if suffixes[-1] in fmt.suffixes and (fmt.gzip or not compressed):
            return fmt
    return None


def load(source: Source, stdin_format: str = "csv") -> LoadedArray:
    """Read ``source`` into a LoadedArray.

    Raises:
        LoadError: the input is missing, unreadable, hostile or holds no numbers.
    """
    if source.kind is SourceKind.INLINE:
        from losscli.loaders import inline

        return _checked(inline.read_text(source.text, source.display))
    if source.kind is SourceKind.STDIN:
        return _checked(_read_stdin(source, stdin_format))
    assert source.path is not None
    path = source.path
    name = source.file_name
    fmt = _file_format(path, name, source.text)
    reader = cast(_PathReader, importlib.import_module(f"losscli.loaders.{fmt.module}"))
    with _guarded(name, fmt.name):
        loaded = reader.read_path(path, source.selector, source.display)
    return _checked(loaded)


def chunk_estimate(source: Source) -> Estimate:
    """How big ``source`` is and whether it can be read in chunks, from its header or size.

    Never raises: a file that cannot be read is reported by whatever reads it.
    """
    if source.kind is not SourceKind.FILE or source.path is None:
        return Estimate(0, False)
    path = source.path
    try:
        size = path.stat().st_size
    except OSError:
        return Estimate(0, False)
    fmt = format_of(path)
    if fmt is None or fmt.module not in _CHUNKED:
        return Estimate(size, False)
    if fmt.module == "csv":
        return Estimate(size, True)
    if source.selector is not None:
        return Estimate(size, False)  # the loader says that a .npy has no keys
    from losscli.loaders import npy

    try:
        with path.open("rb") as stream:
            header = npy.read_header(stream, source.file_name)
            npy.check_size(header, size - header.offset, source.file_name)
    except (LoadError, OSError):
        return Estimate(size, False)  # the loader reports what is wrong
    return Estimate(
        header.nbytes,
        npy.chunkable(header),
        header.shape,
        header.dtype.newbyteorder("="),
    )


# the loader modules that have chunk readers
_CHUNKED = ("npy", "csv")


def open_chunk_readers(sources: dict[str, Source]) -> dict[str, ChunkReader]:
    """A chunk reader for each source: argument name → reader, in the order given.

    Inputs that are columns of the same text file share one parse of it and must be read
    in lockstep (each reads once, with the same count, before any reads again).

    Raises:
        LoadError: a source cannot be read in chunks (see :func:`chunk_estimate`), or is
            malformed as far as opening it shows. Readers opened before are closed.
    """
    from losscli.loaders import csv, npy

    readers: dict[str, ChunkReader] = {}
    texts: dict[Path, list[str]] = {}
    try:
        for name, source in sources.items():
            if source.kind is not SourceKind.FILE or source.path is None:
                raise LoadError(source.display, "cannot be read in chunks (only files can)")
            fmt = _file_format(source.path, source.file_name, source.text)
            if fmt.module == "npy":
                with _guarded(source.file_name, fmt.name):
                    readers[name] = npy.NpyChunks(source.path, source.selector, source.display)
            elif fmt.module == "csv":
                texts.setdefault(source.path.resolve(), []).append(name)
            else:
                raise LoadError(
                    source.display,
                    f"cannot be read in chunks ({fmt.name} does not stream; .npy and text do)",
                )
        for names in texts.values():
            path = sources[names[0]].path
            assert path is not None
            selections = [(sources[n].selector, sources[n].display) for n in names]
            with _guarded(str(path), "csv"):
                opened = csv.open_chunks(path, selections)
            readers.update(zip(names, opened, strict=True))
    except BaseException:
        for reader in readers.values():
            reader.close()
        raise
    return {name: readers[name] for name in sources}


def _file_format(path: Path, name: str, text: str) -> Format:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        tip = ""
        if text.replace(",", "").replace(".", "").replace("-", "").replace(" ", "").isdigit():
            tip = f"an inline array needs brackets: '[{text}]'"
        raise LoadError(name, "no such file", tip=tip) from None
    except OSError as error:
        raise LoadError(name, f"cannot be opened ({error.strerror or error})") from None
    import stat

    if stat.S_ISDIR(mode):
        raise LoadError(name, "is a directory, not a file")
    fmt = format_of(path)
    if fmt is None:
        suffix = "".join(path.suffixes[-2:]) or "(no suffix)"
        known = ", ".join(supported_suffixes())
        tip = ""
        if path.suffix.lower() == ".gz":
            tip = "only CSV/TSV/TXT files are read gzipped; decompress it first"
        raise LoadError(name, f"has an unknown file type {suffix!r} (losscli reads {known})", tip)
    if not stat.S_ISREG(mode) and fmt.module in ("npy", "npz", "arrow", "torchfile"):
        raise LoadError(name, "is not a regular file (a pipe or a device); use '-' for a pipe")
    if not os.access(path, os.R_OK):
        raise LoadError(name, "cannot be read (permission denied)")
    return fmt


def _read_stdin(source: Source, stdin_format: str) -> LoadedArray:
    fmt = next((f for f in FORMATS if f.stdin and f.name == stdin_format), None)
    if fmt is None:
        raise LoadError(
            "<stdin>",
            f"--stdin-format {stdin_format!r} is not known (use {', '.join(stdin_formats())})",
        )
    stream = sys.stdin
    if stream is None:
        raise LoadError("<stdin>", "is closed", tip="pipe a file into '-'")
    if stream.isatty():
        raise LoadError("<stdin>", "is a terminal, not a pipe", tip="pipe a file into '-'")
    buffer = getattr(stream, "buffer", None)
    data = buffer.read() if buffer is not None else stream.read().encode()
    if not data:
        raise LoadError("<stdin>", "is empty (nothing was piped in)", tip="pipe a file into '-'")
    reader = cast(_BytesReader, importlib.import_module(f"losscli.loaders.{fmt.module}"))
    with _guarded("<stdin>", fmt.name):
        return reader.read_bytes(data, source.selector, source.display)


@contextlib.contextmanager
def _guarded(name: str, format_name: str) -> Iterator[None]:
    """Turn a data error a format library raised on malformed bytes into a LoadError.

    Loaders raise LoadError themselves for everything they anticipate; this catches what a
    library raises on bytes nobody anticipated (a CRC error deep in zlib, say). Library
    warnings are silenced: stderr carries one line or nothing. ``LOSSCLI_DEBUG=1`` re-raises.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except LoadError:
            raise
        except _DATA_ERRORS as error:
            if os.environ.get("LOSSCLI_DEBUG"):
                raise
            detail = " ".join(str(error).split())[:160] or type(error).__name__
            raise LoadError(name, f"cannot be read as {format_name} ({detail})") from None


def _checked(loaded: LoadedArray) -> LoadedArray:
    """Refuse dtypes no loss can use (complex, strings, objects, records); native byte order."""
    values = loaded.values
    kind = values.dtype.kind
    if kind not in "biuf":
        raise LoadError(loaded.source, f"holds {dtype_description(values.dtype)}; {_NEEDS}")
    if not values.dtype.isnative:
        # torch reads only native byte order; a big-endian file costs one copy
        values = values.astype(values.dtype.newbyteorder("="))
        loaded = dataclasses.replace(loaded, values=values)
    return loaded


_NEEDS = "losscli needs real numbers (bool, int or float)"


def dtype_description(dtype: np.dtype) -> str:
    """``complex numbers``, ``strings``, ... for a dtype no loss can use."""
    return {
        "c": f"complex numbers ({dtype})",
        "U": "strings",
        "S": "bytes",
        "O": "Python objects",
        "V": "structured records",
        "M": "dates",
        "m": "time deltas",
    }.get(dtype.kind, f"dtype {dtype}")


def refuse_dtype(name: str, dtype: np.dtype) -> None:
    """Raise the LoadError for a dtype no loss can use, before any data is read.

    Raises:
        LoadError: ``dtype`` is complex, string, object, record, date, ...
    """
    if dtype.hasobject:
        raise LoadError(
            name,
            "holds Python objects; losscli never unpickles data (save it with a numeric dtype)",
        )
    if dtype.kind not in "biuf":
        raise LoadError(name, f"holds {dtype_description(dtype)}; {_NEEDS}")
