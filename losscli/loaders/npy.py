"""NumPy ``.npy`` loader: never unpickles, checks the header against the file size first.

The data are read with ``readinto`` into one array, never memory-mapped: a mapped file that
another process truncates kills the reader with SIGBUS when it touches the missing pages,
where a read that comes up short is an error with the file's name.
:class:`NpyChunks` reads the same file a block of samples at a time, through the same
header reader and size check.
"""

from __future__ import annotations

import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import ChunkBuffers, Estimate, LoadedArray, refuse_dtype

# numpy's own limit on the header dictionary (np.lib.format's default max_header_size)
_MAX_HEADER = 10_000
# the most dimensions a header may declare (NumPy 1's limit; torch's too)
MAX_DIMS = 32
# the most bytes any array may declare, zero-length dimensions aside: NumPy's own limit
_MAX_ARRAY_BYTES = np.iinfo(np.intp).max
# the most bytes one readinto asks for (a read of 2 GiB or more can come back short)
_READ_BYTES = 1 << 30


@dataclass(frozen=True)
class NpyHeader:
    """What a .npy header declares, checked to be a plain numeric array.

    Attributes:
        shape: the array's shape (every dimension ≥ 0).
        dtype: a bool, int, uint or float dtype.
        fortran_order: whether the data are stored column-major.
        offset: where the data start, in bytes from the start of the .npy image.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def count(self) -> int:
        """How many values the header declares."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        """How many bytes of data the header declares."""
        return self.count * self.dtype.itemsize


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read a .npy file into memory (never memory-mapped: see the module docstring)."""
    name = str(path)
    _refuse_selector(selector, name)
    with path.open("rb", buffering=0) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            raise LoadError(name, "is empty (0 bytes)")
        header = read_header(stream, name)
        check_size(header, size - header.offset, name)
        flat = np.empty(header.count, dtype=header.dtype)
        read_exactly(stream, flat, name, before=0, declared=header.nbytes)
    return LoadedArray(values=_shaped(flat, header, name), source=display)


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """The data bytes the header declares, its shape and dtype, and whether it streams.

    Raises:
        LoadError: what :func:`read_path` says of a selector, an empty file, a bad header
            or truncated data.
    """
    name = str(path)
    _refuse_selector(selector, name)
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    with path.open("rb") as stream:
        header = read_header(stream, name)
    check_size(header, size - header.offset, name)
    return Estimate(header.nbytes, chunkable(header), header.shape, header.dtype.newbyteorder("="))


def read_bytes(
    data: bytes, selector: str | None, display: str, name: str = "<stdin>"
) -> LoadedArray:
    """Read a .npy image from memory (standard input); the array shares ``data``."""
    if selector is not None:
        raise LoadError(name, f"holds a single array, so ':{selector}' selects nothing")
    header = read_header(io.BytesIO(data), name)
    check_size(header, len(data) - header.offset, name)
    flat = np.frombuffer(data, dtype=header.dtype, count=header.count, offset=header.offset)
    return LoadedArray(values=_shaped(flat, header, name), source=display)


def _refuse_selector(selector: str | None, name: str) -> None:
    if selector is not None:
        raise LoadError(name, f"holds a single array, so ':{selector}' selects nothing; drop it")


class _ReadsInto(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def read_exactly(
    stream: _ReadsInto, into: np.ndarray, name: str, before: int, declared: int
) -> None:
    """Fill ``into`` (contiguous) from ``stream`` with ``readinto``, a short read an error.

    The size was checked against the header when the file was opened, so a read that
    comes up short means the file shrank since (another process truncated it).

    Args:
        stream: an unbuffered binary file, at the first byte to read.
        into: the array to fill, in place.
        name: the file, for messages.
        before: data bytes of the file read before this call (for the message).
        declared: the data bytes the header declares (for the message).

    Raises:
        LoadError: the file ends before ``into`` is full.
    """
    target = into.reshape(-1).view(np.uint8).data
    wanted = len(target)
    got = 0
    while got < wanted:
        count = stream.readinto(target[got : min(wanted, got + _READ_BYTES)])
        if not count:
            raise LoadError(
                name,
                f"was truncated while it was read ({before + got:,} of the {declared:,} bytes "
                "of data its header declares were there)",
                tip="another process is writing the file; read it once it is complete",
            )
        got += count


def read_header(stream: BinaryIO, name: str) -> NpyHeader:
    """Read and vet a .npy header; ``stream`` is left at the first data byte.

    Raises:
        LoadError: bad magic, a corrupt header, negative dimensions, or a dtype no loss
            can use (objects are refused here, before a single pickle byte is read).
    """
    start = stream.tell()
    try:
        version = np.lib.format.read_magic(stream)
    except (ValueError, EOFError):
        raise LoadError(name, "is not a .npy file (bad magic bytes)") from None
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise LoadError(name, f"has an unknown .npy format version {version[0]}.{version[1]}")
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                stream, max_header_size=_MAX_HEADER
            )
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                stream, max_header_size=_MAX_HEADER
            )
    except (
        ValueError,
        SyntaxError,
        TypeError,
        EOFError,
        tokenize.TokenError,
        RecursionError,
    ) as error:
        detail = " ".join(str(error).split())[:120]
        raise LoadError(name, f"has a corrupt .npy header ({detail})") from None
    refuse_dtype(name, dtype)
    _check_shape(shape, dtype.itemsize, name)
    return NpyHeader(tuple(shape), dtype, bool(fortran), stream.tell() - start)


def _check_shape(shape: tuple[int, ...], itemsize: int, name: str) -> None:
    """Refuse a shape no array can have: NumPy's header reader takes ``(True,)``, 70
    dimensions and products no memory holds.

    Raises:
        LoadError: a dimension that is not a plain integer or is negative, more than
            :data:`MAX_DIMS` dimensions, or sizes whose product overflows.
    """
    if any(type(dim) is not int for dim in shape):  # not isinstance: True is an int
        raise LoadError(
            name, f"has a corrupt .npy header (a dimension is not an integer in {shape})"
        )
    if any(dim < 0 for dim in shape):
        raise LoadError(name, f"has a corrupt .npy header (negative dimension in {shape})")
    if len(shape) > MAX_DIMS:
        raise LoadError(
            name, f"has a corrupt .npy header ({len(shape)} dimensions; at most {MAX_DIMS})"
        )
    product = itemsize
    for dim in shape:
        product *= max(dim, 1)  # NumPy refuses these even when another dimension is 0
    if product > _MAX_ARRAY_BYTES:
        raise LoadError(
            name, f"has a corrupt .npy header (the shape {shape} overflows any array's size)"
        )


def check_size(header: NpyHeader, available: int, name: str) -> None:
    """Refuse a header that declares more data than there are bytes after it.

    Raises:
        LoadError: ``available`` (bytes after the header) is less than the header declares.
    """
    if header.nbytes > available:
        raise LoadError(
            name,
            f"the header declares {header.count} {header.dtype.name} values but the file "
            f"holds {max(available, 0)} bytes of data ({header.nbytes} needed)",
            tip="the file is truncated or its header is corrupt; save it again",
        )


def array_from(raw: bytes | bytearray, header: NpyHeader, name: str) -> np.ndarray:
    """The array a header describes, from exactly ``header.nbytes`` bytes of data."""
    flat = np.frombuffer(raw, dtype=header.dtype, count=header.count)
    return _shaped(flat, header, name)


def _shaped(flat: np.ndarray, header: NpyHeader, name: str) -> np.ndarray:
    if flat.size != header.count:
        raise LoadError(
            name, f"ends early: {flat.size} of the {header.count} declared values are there"
        )
    if header.fortran_order:
        return flat.reshape(header.shape[::-1]).transpose()
    return flat.reshape(header.shape)


def chunkable(header: NpyHeader) -> bool:
    """Whether :class:`NpyChunks` can read the array: C order, at least one dimension."""
    return not header.fortran_order and len(header.shape) >= 1


class NpyChunks:
    """Samples of a C-ordered ``.npy`` file, read with ``readinto`` into two reused buffers.

    Never memory-mapped (the pages of a mapping count toward the peak as they are touched)
    and never unpickled. Big-endian data are swapped in place, so chunks have the native
    dtype the whole loader gives.
    """

    def __init__(self, path: Path, selector: str | None, display: str) -> None:
        """Open ``path`` and vet its header.

        Raises:
            LoadError: as :func:`read_path` would (empty, bad magic, corrupt header, a dtype
                no loss can use, truncated data, a selector), or the array is Fortran-ordered
                or 0-d, which cannot be read a sample at a time.
        """
        self.source = display
        self.from_text = False
        self._name = name = str(path)
        _refuse_selector(selector, name)
        self._stream = path.open("rb", buffering=0)
        try:
            size = os.fstat(self._stream.fileno()).st_size
            if size == 0:
                raise LoadError(name, "is empty (0 bytes)")
            header = read_header(self._stream, name)
            check_size(header, size - header.offset, name)
            if not chunkable(header):
                raise LoadError(name, "is Fortran-ordered or 0-d; it cannot be read in chunks")
        except BaseException:
            self._stream.close()
            raise
        self._header = header
        self._swap = not header.dtype.isnative
        self._dtype = header.dtype.newbyteorder("=")
        self.sample_shape: tuple[int, ...] = header.shape[1:]
        self._row_bytes = header.dtype.itemsize
        for dim in self.sample_shape:
            self._row_bytes *= dim
        self._left = header.shape[0]
        self._buffers = ChunkBuffers()

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype (native byte order), known from the header."""
        return self._dtype

    @property
    def rows(self) -> int:
        """The first dimension the header declares."""
        return self._header.shape[0]

    def read(self, count: int) -> np.ndarray | None:
        """The next ``count`` samples (fewer at the end); None at the end.

        Raises:
            LoadError: the file was truncated while it was read (it ends before the data its
                header declares, which it held when it was opened).
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if self._left == 0:
            return None
        rows = min(count, self._left)
        chunk = self._buffers.next(rows, self.sample_shape, self._dtype)
        before = (self.rows - self._left) * self._row_bytes
        read_exactly(self._stream, chunk, self._name, before, self._header.nbytes)
        if self._swap:
            chunk.byteswap(inplace=True)  # the file's bytes, read into a native-order buffer
        self._left -= rows
        return chunk

    def close(self) -> None:
        """Close the file."""
        self._stream.close()
