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

Before anything big is decoded, :func:`chunk_estimate` says how many bytes each input will
occupy once decoded, from what the format declares (a ``.npy`` header, a zip's central
directory, Parquet metadata, an Arrow file's row count) or from a bounded count (gzip), so
that the memory budget judges what will be in memory, not what is on disk. Standard input
and pipes have no size before they are read: they are read whole, at most as many bytes as
an :class:`Allowance` lets them hold.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import os
import stat
import sys
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast, runtime_checkable

import numpy as np

from losscli.errors import LoadError
from losscli.formats import FORMATS, Format, stdin_formats
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


# Bytes of values per byte of text, at most: a cell that holds a number is at least two bytes
# of text (a digit and its delimiter or line break, ``0\n``) and becomes one 8-byte value
# (int64 or float64). Typical floats (``0.8125371,``) are about 1 byte of values per byte of
# text, so this overstates them about fourfold: text is judged by what it could hold. An
# empty cell (one byte, a NaN) is denser still; a text made of them holds no numbers.
TEXT_VALUE_FACTOR = 4


@dataclass(frozen=True)
class Estimate:
    """What is known about one input before it is read.

    Attributes:
        nbytes: the bytes it will occupy once decoded: the data bytes of a ``.npy``, the
            uncompressed size of an ``.npz`` member or of a ``.pt`` file's records, rows
            times column widths of Parquet and Arrow files, :data:`TEXT_VALUE_FACTOR` times
            the (decompressed) bytes of text; 0 when unknown (standard input, a pipe,
            inline arrays).
        chunkable: :func:`open_chunk_readers` can read it in chunks.
        shape: the full shape when a header says it (``.npy``), else None.
        dtype: the dtype the chunks will have when a header says it (``.npy``), else None.
        at_least: counting stopped past the cap it was given (a gzip text is decompressed
            only that far): the input holds more than ``nbytes``.
        pipe: a pipe (a FIFO, ``<(command)``): read once and whole, its size unknown.
    """

    nbytes: int
    chunkable: bool
    shape: tuple[int, ...] | None = None
    dtype: np.dtype | None = None
    at_least: bool = False
    pipe: bool = False


@dataclass(frozen=True)
class Allowance:
    """How many bytes an input read whole (standard input, a pipe) may hold.

    Attributes:
        decoded_bytes: the most bytes of values it may decode to (text holds a
            :data:`TEXT_VALUE_FACTOR`-th of that in bytes of text).
        budget: the ``--memory-budget`` the allowance comes from, for messages.
    """

    decoded_bytes: int
    budget: int


def size_text(size: int) -> str:
    """``512 MB`` or ``4,096 bytes``: a size as messages write it."""
    return f"{size / (1 << 20):,.0f} MB" if size >= 1 << 20 else f"{size:,} bytes"


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
    def read_bytes(
        self, data: bytes, selector: str | None, display: str, name: str = "<stdin>"
    ) -> LoadedArray: ...


class _Estimator(Protocol):
    def estimate(self, path: Path, selector: str | None, size: int, cap: int) -> Estimate: ...


def supported_suffixes() -> list[str]:
    """The file suffixes losscli reads."""
    return sorted(suffix for fmt in FORMATS for suffix in fmt.suffixes)


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


def load(
    source: Source, stdin_format: str = "csv", allowance: Allowance | None = None
) -> LoadedArray:
    """Read ``source`` into a LoadedArray.

    Args:
        source: what to read.
        stdin_format: the format of standard input.
        allowance: how much standard input or a pipe may hold (both are read whole, and
            their size is known only once read); None reads them to their end.

    Raises:
        LoadError: the input is missing, unreadable, hostile, over the allowance, or holds
            no numbers.
    """
    if source.kind is SourceKind.INLINE:
        from losscli.loaders import inline

        return _checked(inline.read_text(source.text, source.display))
    if source.kind is SourceKind.STDIN:
        return _checked(_read_stdin(source, stdin_format, allowance))
    assert source.path is not None
    path = source.path
    name = source.file_name
    kind = _file_kind(path, name, source.text)
    fmt = kind.format
    if kind.pipe:
        with _opened_pipe(path, name) as stream:
            return _checked(_read_whole(stream, name, fmt, source, allowance))
    reader = cast(_PathReader, importlib.import_module(f"losscli.loaders.{fmt.module}"))
    with _guarded(name, fmt.name):
        loaded = reader.read_path(path, source.selector, source.display)
    return _checked(loaded)


def load_many(
    sources: dict[str, Source], stdin_format: str = "csv", allowance: Allowance | None = None
) -> dict[str, LoadedArray]:
    """:func:`load` of each source, in order; selections of one delimited text file are
    parsed once, when the first of them is loaded.

    ``losscli compute mse t.csv:pred t.csv:true`` reads ``t.csv`` once, for both columns.
    """
    on_file: dict[Path, list[str]] = {}
    for key, source in sources.items():
        if source.kind is SourceKind.FILE and source.path is not None:
            on_file.setdefault(source.path, []).append(key)
    found: dict[str, LoadedArray] = {}
    for key, source in sources.items():
        if key in found:
            continue
        keys = on_file.get(source.path, []) if source.path is not None else []
        if len(keys) > 1:
            # on failure each is loaded alone, in order: the error is the first input's
            with contextlib.suppress(LoadError):
                found.update(_parsed_once(source.path, {k: sources[k] for k in keys}))
        if key not in found:
            found[key] = load(source, stdin_format, allowance)
    return {key: found[key] for key in sources}


def _parsed_once(path: Path | None, sources: dict[str, Source]) -> dict[str, LoadedArray]:
    """Every selection of one delimited text file from one parse; nothing for other formats."""
    assert path is not None
    first = next(iter(sources.values()))
    kind = _file_kind(path, first.file_name, first.text)
    if kind.pipe or kind.format.module != "csv":
        return {}
    from losscli.loaders import csv

    with _guarded(first.file_name, kind.format.name):
        read = csv.read_path_columns(path, [(s.selector, s.display) for s in sources.values()])
    return {key: _checked(loaded) for key, loaded in zip(sources, read, strict=True)}


def chunk_estimate(source: Source, cap: int | None = None) -> Estimate:
    """How many bytes ``source`` will occupy once decoded, and whether it reads in chunks.

    Judged from what the format declares, before anything big is decoded; never opens
    anything but a regular file (a pipe is read once, by the loader).

    Args:
        source: the input.
        cap: decoded bytes past which the exact size does not matter (the budget is
            exceeded): a gzip text is decompressed only until it holds more than this.

    Raises:
        LoadError: the file cannot be judged: missing, a directory, a device, unreadable,
            or malformed where its size is declared; the loader's own message.
    """
    if source.kind is not SourceKind.FILE or source.path is None:
        return Estimate(0, False)
    path = source.path
    kind = _file_kind(path, source.file_name, source.text)
    if kind.pipe:
        return Estimate(0, False, pipe=True)
    fmt = kind.format
    module = cast(_Estimator, importlib.import_module(f"losscli.loaders.{fmt.module}"))
    with _guarded(source.file_name, fmt.name):
        return module.estimate(path, source.selector, kind.size, _UNCAPPED if cap is None else cap)


# a cap that no input reaches: count everything
_UNCAPPED = 1 << 62


def open_chunk_readers(
    sources: dict[str, Source], budget: int | None = None
) -> dict[str, ChunkReader]:
    """A chunk reader for each source: argument name → reader, in the order given.

    Inputs that are columns of the same text file share one parse of it and must be read
    in lockstep (each reads once, with the same count, before any reads again). ``budget``
    (the memory budget) sizes what a text reader parses and reads ahead at a time.

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
            kind = _file_kind(source.path, source.file_name, source.text)
            fmt = kind.format
            if kind.pipe:
                raise LoadError(
                    source.display, "cannot be read in chunks (a pipe is read once, whole)"
                )
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
                opened = csv.open_chunks(path, selections, budget)
            readers.update(zip(names, opened, strict=True))
    except BaseException:
        for reader in readers.values():
            reader.close()
        raise
    return {name: readers[name] for name in sources}


@dataclass(frozen=True)
class _FileKind:
    """What ``stat`` says about an input file.

    Attributes:
        format: its format, from its suffix.
        pipe: a FIFO (a text format; binary formats need a regular file).
        size: its size in bytes (0 for a pipe).
    """

    format: Format
    pipe: bool
    size: int


# the formats that need a regular file: they seek, or are read more than once
_NEEDS_REGULAR_FILE = ("npy", "npz", "arrow", "torchfile", "safetensors")


def _file_kind(path: Path, name: str, text: str) -> _FileKind:
    """The format of an input file, after refusing what cannot be read as one.

    Never opens the file: a FIFO opened for reading blocks until something writes to it.

    Raises:
        LoadError: missing, a directory, an unknown suffix, a device or a socket, a pipe
            where a binary format needs a regular file, or not readable.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        tip = ""
        if text.replace(",", "").replace(".", "").replace("-", "").replace(" ", "").isdigit():
            tip = f"an inline array needs brackets: '[{text}]'"
        raise LoadError(name, "no such file", tip=tip) from None
    except OSError as error:
        raise LoadError(name, f"cannot be opened ({error.strerror or error})") from None
    mode = status.st_mode
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
    pipe = stat.S_ISFIFO(mode)
    if not stat.S_ISREG(mode) and fmt.module in _NEEDS_REGULAR_FILE:
        raise LoadError(name, "is not a regular file (a pipe or a device); use '-' for a pipe")
    if not (stat.S_ISREG(mode) or pipe):
        raise LoadError(
            name,
            f"is a {_special_kind(mode)}, not a file; losscli reads files, pipes and '-'",
        )
    if not os.access(path, os.R_OK):
        raise LoadError(name, "cannot be read (permission denied)")
    return _FileKind(fmt, pipe, 0 if pipe else status.st_size)


def _special_kind(mode: int) -> str:
    """``character device``, ``block device`` or ``socket``: what a special file is."""
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


@contextlib.contextmanager
def _opened_pipe(path: Path, name: str) -> Iterator[BinaryIO]:
    """A FIFO opened for reading without waiting for a writer.

    A plain open blocks until some process opens the FIFO for writing, which may never
    happen; opened non-blocking, a FIFO with no writer reads as empty at once. The
    descriptor is made blocking again, so reads wait for a writer that is still writing.

    Raises:
        LoadError: it cannot be opened, or is no longer a FIFO once opened.
    """
    import fcntl

    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise LoadError(name, f"cannot be opened ({error.strerror or error})") from None
    try:
        if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):  # replaced since it was judged
            raise LoadError(name, "changed while it was opened (it is no longer a pipe)")
        flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
        fcntl.fcntl(descriptor, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        stream = os.fdopen(descriptor, "rb", buffering=0)
    except BaseException:
        os.close(descriptor)
        raise
    with stream:
        yield cast(BinaryIO, stream)


def _read_stdin(source: Source, stdin_format: str, allowance: Allowance | None) -> LoadedArray:
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
    binary = buffer if buffer is not None else io.BytesIO(stream.read().encode())
    return _read_whole(cast(BinaryIO, binary), "<stdin>", fmt, source, allowance)


def _read_whole(
    stream: BinaryIO, name: str, fmt: Format, source: Source, allowance: Allowance | None
) -> LoadedArray:
    """Read a stream that has no size before it ends (standard input, a pipe), bounded.

    A stream that starts with the ``.npy`` magic is read as ``.npy`` whatever ``fmt`` says:
    nobody can name standard input ``.npy``.

    At most the bytes ``allowance`` lets the input hold are read; one byte more, and it is
    refused before anything is decoded. Compressed data are then decoded only as far as
    the allowance goes (a gzip text, an ``.npz`` member's declared size).

    Raises:
        LoadError: the stream is empty, holds more than the allowance, or is malformed.
    """
    magic = _read_start(stream, len(NPY_MAGIC))
    if magic == NPY_MAGIC:  # a .npy image, whatever --stdin-format or the pipe's name says
        fmt = next(f for f in FORMATS if f.name == "npy")
    text = fmt.module in _TEXT_MODULES
    limit = None if allowance is None else _stream_limit(allowance, text)
    data = magic + _read_bounded(stream, None if limit is None else limit - len(magic))
    if limit is not None and len(data) > limit:
        raise over_allowance(name, limit, allowance, "of text" if text else "")
    if not data:
        if name == "<stdin>":
            raise LoadError(name, "is empty (nothing was piped in)", tip="pipe a file into '-'")
        raise LoadError(
            name,
            "is empty (a pipe that nothing was written to)",
            tip="start the command that writes to it before losscli reads it",
        )
    reader = cast(_BytesReader, importlib.import_module(f"losscli.loaders.{fmt.module}"))
    with _guarded(name, fmt.name):
        if allowance is not None:
            _check_decoded(data, fmt, source.selector, name, allowance)
        return reader.read_bytes(data, source.selector, source.display, name)


GZIP_MAGIC = b"\x1f\x8b"
# the loader modules that read text: judged by TEXT_VALUE_FACTOR bytes of values per byte
_TEXT_MODULES = ("csv", "inline")
# room for what a binary image holds besides its values (a .npy header, zip directories)
_IMAGE_SLACK = 1 << 16


def _stream_limit(allowance: Allowance, text: bool) -> int:
    """The most bytes of a stream to read: text a fourth of the allowance, binary all of it."""
    if text:
        return max(allowance.decoded_bytes, 0) // TEXT_VALUE_FACTOR
    return max(allowance.decoded_bytes, 0) + _IMAGE_SLACK


NPY_MAGIC = b"\x93NUMPY"


def _read_start(stream: BinaryIO, count: int) -> bytes:
    """The first ``count`` bytes of ``stream`` (fewer when it ends first); a pipe may hand
    them out a few at a time."""
    start = b""
    while len(start) < count:
        piece = stream.read(count - len(start))
        if not piece:
            break
        start += piece
    return start


def _read_bounded(stream: BinaryIO, limit: int | None) -> bytes:
    """Everything ``stream`` holds, or the first ``limit + 1`` bytes when it holds more."""
    if limit is None:
        return stream.read()
    pieces = []
    wanted = limit + 1
    while wanted > 0:
        piece = stream.read(min(wanted, 1 << 20))
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces)


def _check_decoded(
    data: bytes, fmt: Format, selector: str | None, name: str, allowance: Allowance
) -> None:
    """Refuse compressed bytes that decode to more than ``allowance``, before decoding them.

    A gzip text is decompressed (and dropped) only until it is past its limit; an ``.npz``
    member's size is what the zip's central directory declares, the most zipfile yields.
    """
    if fmt.module == "npz":
        from losscli.loaders import npz

        decoded = npz.member_bytes(io.BytesIO(data), selector, name)
        if decoded > allowance.decoded_bytes:
            raise over_allowance(name, allowance.decoded_bytes, allowance, "once decompressed")
    elif fmt.module == "csv" and data.startswith(GZIP_MAGIC):
        from losscli.loaders import csv

        limit = _stream_limit(allowance, text=True)
        if csv.gzip_text_bytes(io.BytesIO(data), limit, name) > limit:
            raise over_allowance(name, limit, allowance, "of text once decompressed")


def over_allowance(name: str, limit: int, allowance: Allowance | None, what: str = "") -> LoadError:
    """The error for standard input or a pipe that holds more than its allowance."""
    budget = f" {size_text(allowance.budget)}" if allowance is not None else ""
    what = f" {what}" if what else ""
    return LoadError(
        name,
        f"holds more than {size_text(limit)}{what}, over what --memory-budget{budget} allows "
        "for an input that is read whole (standard input and pipes cannot stream)",
        tip="save it to a file, which can stream (.npy, .csv), or raise --memory-budget",
    )


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
