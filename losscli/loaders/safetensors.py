"""safetensors loader (``.safetensors``): ``file.safetensors:KEY`` picks one tensor.

Read with the ``safetensors`` package, which holds no pickle at all: a JSON header (each
tensor's dtype, shape and byte range, checked against the file by the package) and raw
little-endian data. NumPy reads every dtype but bfloat16 and float8, which are read through
torch and widened exactly to float32, with :attr:`LoadedArray.stored_dtype` naming what
was stored (as the ``.pt`` loader does). The header gives every size before anything is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import Estimate, LoadedArray

# safetensors dtypes NumPy cannot hold: read through torch, widened to float32
_WIDENED = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
# bytes per element of each safetensors dtype as NumPy holds it
_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 4, "U32": 4, "I32": 4,
    "F32": 4, "U64": 8, "I64": 8, "F64": 8, "F8_E4M3": 4, "F8_E5M2": 4,
}  # fmt: skip
# at most this many keys are listed in a message
_LISTED = 12


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read one tensor (the only one, or the one ``selector`` names)."""
    name = str(path)
    with _opened(path, name, "np") as header:
        key = _choose(list(header.keys()), selector, name)
        dtype = header.get_slice(key).get_dtype()
        if dtype not in _WIDENED:
            return LoadedArray(values=_read(header, key, name), source=display)
    with _opened(path, name, "pt") as tensors:
        import torch

        stored = tensors.get_tensor(key)
        values = stored.to(torch.float32).numpy()
    return LoadedArray(values=values, source=display, stored_dtype=_WIDENED[dtype])


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """The bytes the chosen tensor occupies once decoded, from the header; no streaming.

    Raises:
        LoadError: what :func:`read_path` says of a malformed file or a missing key.
    """
    name = str(path)
    with _opened(path, name, "np") as header:
        key = _choose(list(header.keys()), selector, name)
        found = header.get_slice(key)
        dtype, shape = found.get_dtype(), found.get_shape()
    return Estimate(math.prod(shape) * _ITEMSIZE.get(dtype, 8), False, shape=tuple(shape))


@contextmanager
def _opened(path: Path, name: str, framework: str) -> Iterator[Any]:
    """The file opened by ``safe_open``, its header checked by the package.

    Raises:
        LoadError: empty, or not a safetensors file (a bad or oversized header, offsets past
            the end of the file).
    """
    from safetensors import SafetensorError, safe_open

    if path.stat().st_size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    try:
        handle = safe_open(str(path), framework=framework)
    except SafetensorError as error:
        raise LoadError(name, f"is not a safetensors file ({_short(error)})") from None
    with handle as opened:
        yield opened


def _read(header: Any, key: str, name: str) -> np.ndarray:
    try:
        return np.asarray(header.get_tensor(key))
    except (TypeError, ValueError) as error:  # a dtype NumPy has no name for
        raise LoadError(
            f"{name}:{key}", f"holds values NumPy cannot hold ({_short(error)})"
        ) from None


def _choose(keys: list[str], selector: str | None, name: str) -> str:
    """The key ``selector`` names, or the only one; else the error listing the keys."""
    if selector is not None:
        if selector in keys:
            return selector
        raise LoadError(name, f"has no tensor {selector!r}{_listing(keys)}")
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise LoadError(name, "holds no tensors")
    raise LoadError(name, f"holds {len(keys)} tensors; pick one with {name}:KEY{_listing(keys)}")


def _listing(keys: list[str]) -> str:
    """`` (its tensors: a, b, ... and 3 more)``."""
    shown = ", ".join(keys[:_LISTED])
    more = f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else ""
    return f" (its tensors: {shown}{more})" if keys else " (it holds no tensors)"


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:160] or type(error).__name__
