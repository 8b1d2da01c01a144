"""NumPy ``.npy`` loader: never unpickles, checks the header against the file size first.

Large plain files are memory-mapped read-only, so a multi-GB prediction file costs no copy.
:class:`NpyChunks` reads the same file a block of samples at a time, through the same
header reader and size check.
"""

from __future__ import annotations

import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import ChunkBuffers, LoadedArray, refuse_dtype

# Files whose data reach this many bytes are memory-mapped instead of read.
MMAP_BYTES = 1 << 26

# numpy's own limit on the header dictionary (np.lib.format's default max_header_size)
_MAX_HEADER = 10_000


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
    """Read a .npy file: memory-mapped (read-only) when its data reach :data:`MMAP_BYTES`."""
    name = str(path)
    if selector is not None:
        raise LoadError(name, f"holds a single array, so ':{selector}' selects nothing; drop it")
    with path.open("rb") as stream:
        size = _size(stream)
        if size == 0:
            raise LoadError(name, "is empty (0 bytes)")
        header = read_header(stream, name)
        check_size(header, size - header.offset, name)
        if header.nbytes >= MMAP_BYTES:
            values: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            flat = np.fromfile(stream, dtype=header.dtype, count=header.count)
            values = _shaped(flat, header, name)
    return LoadedArray(values=values, source=display)


def read_bytes(data: bytes, selector: str | None, display: str) -> LoadedArray:
    """Read a .npy image from memory (standard input); the array shares ``data``."""
    if selector is not None:
        raise LoadError(display, f"holds a single array, so ':{selector}' selects nothing")
    header = read_header(io.BytesIO(data), display)
    check_size(header, len(data) - header.offset, display)
    flat = np.frombuffer(data, dtype=header.dtype, count=header.count, offset=header.offset)
    return LoadedArray(values=_shaped(flat, header, display), source=display)


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
    if any(dim < 0 for dim in shape):
        raise LoadError(name, f"has a corrupt .npy header (negative dimension in {shape})")
    refuse_dtype(name, dtype)
    return NpyHeader(tuple(shape), dtype, bool(fortran), stream.tell() - start)


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


def _size(stream: BinaryIO) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


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
        if selector is not None:
            raise LoadError(
                name, f"holds a single array, so ':{selector}' selects nothing; drop it"
            )
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
            LoadError: the file ends before the data its header declares (it shrank while
                being read).
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if self._left == 0:
            return None
        rows = min(count, self._left)
        chunk = self._buffers.next(rows, self.sample_shape, self._dtype)
        wanted = rows * self._row_bytes
        target = chunk.reshape(-1).view(np.uint8).data
        got = 0
        while got < wanted:
            n = self._stream.readinto(target[got:wanted])
            if not n:
                there = (self.rows - self._left) * self._row_bytes + got
                raise LoadError(
                    self._name,
                    f"ends early: {there // self._header.dtype.itemsize} of the "
                    f"{self._header.count} declared values are there",
                )
            got += n
        if self._swap:
            chunk.byteswap(inplace=True)  # the file's bytes, read into a native-order buffer
        self._left -= rows
        return chunk

    def close(self) -> None:
        """Close the file."""
        self._stream.close()
