"""NumPy ``.npy`` loader: never unpickles, checks the header against the file size."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import LoadedArray


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read a .npy file (memory-mapped when it is plain and large)."""
    if selector is not None:
        raise LoadError(display, f"a .npy file holds one array; drop ':{selector}'")
    size = path.stat().st_size
    if size == 0:
        raise LoadError(str(path), "is empty (0 bytes)")
    with path.open("rb") as stream:
        shape, dtype, _fortran, offset = _header(stream, str(path))
        _check_size(shape, dtype, size - offset, str(path))
        if _count(shape) * dtype.itemsize >= 1 << 26 and not dtype.hasobject:
            values = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            stream.seek(0)
            values = _load(stream, str(path))
    return LoadedArray(values=values, source=display)


def read_bytes(data: bytes, selector: str | None, display: str) -> LoadedArray:
    """Read a .npy image from memory (standard input)."""
    stream = io.BytesIO(data)
    shape, dtype, _fortran, offset = _header(stream, display)
    _check_size(shape, dtype, len(data) - offset, display)
    stream.seek(0)
    return LoadedArray(values=_load(stream, display), source=display)


def _header(stream: BinaryIO, name: str) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError:
        raise LoadError(name, "is not a .npy file (bad magic bytes)") from None
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, SyntaxError, TypeError) as error:
        raise LoadError(name, f"has a corrupt .npy header ({error})") from None
    if dtype.hasobject:
        raise LoadError(
            name,
            "holds Python objects; losscli never unpickles data (save it with a numeric dtype)",
        )
    return shape, dtype, fortran, stream.tell()


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _check_size(shape: tuple[int, ...], dtype: np.dtype, available: int, name: str) -> None:
    needed = _count(shape) * dtype.itemsize
    if needed > available:
        raise LoadError(
            name,
            f"the header declares {_count(shape)} {dtype} values ({needed} bytes) "
            f"but the file holds {available} bytes of data (truncated?)",
        )


def _load(stream: BinaryIO, name: str) -> np.ndarray:
    try:
        return np.load(stream, allow_pickle=False)
    except ValueError as error:
        raise LoadError(name, f"cannot be read as .npy ({error})") from None
