"""Torch loader (``.pt``, ``.pth``): ``torch.load(weights_only=True)``, never a full unpickle.

A file holds a tensor, or a dict / list / tuple of tensors from which ``file.pt:KEY`` (a
dict key, or a 0-based index) picks one. bfloat16 (and float8) tensors, which NumPy cannot
hold, arrive as float32 with :attr:`LoadedArray.stored_dtype` naming what was stored.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import Estimate, LoadedArray

_ZIP_MAGIC = b"PK\x03\x04"
# torch.save stores members uncompressed; allow compressed archives a DEFLATE-like ratio
_MAX_EXPANSION = 1100
_SLACK = 4096
_REFUSED_TIP = (
    "losscli never runs pickled code; save tensors only, e.g. "
    "torch.save({'logits': logits.detach().cpu()}, path)"
)


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read one tensor from a file ``torch.save`` wrote."""
    name = str(path)
    size = path.stat().st_size
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    with path.open("rb") as stream:
        magic = stream.read(4)
    if magic == _ZIP_MAGIC:
        _check_archive(path, size, name)
    payload = _torch_load(path, name, looks_saved=magic == _ZIP_MAGIC or magic[:1] == b"\x80")
    item, where = _pick(payload, selector, name)
    return _to_loaded(item, where, display)


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """The bytes ``torch.load`` decodes: every record of a zip archive uncompressed (it
    materialises all the tensors in the file, whichever one a selector picks), or the size
    of a legacy (pickle-stream) file. A ``.pt`` file does not stream.

    Raises:
        LoadError: what :func:`read_path` says of an empty file or a corrupt archive.
    """
    name = str(path)
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    with path.open("rb") as stream:
        magic = stream.read(4)
    if magic != _ZIP_MAGIC:
        return Estimate(size, False)
    members = _check_archive(path, size, name)
    return Estimate(sum(info.file_size for info in members), False)


def _check_archive(path: Path, size: int, name: str) -> list[zipfile.ZipInfo]:
    """The archive's members, after refusing any that claim more bytes than the file can
    hold (the sizes come from the zip's central directory; nothing is decompressed)."""
    try:
        with zipfile.ZipFile(path, mode="r") as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        raise LoadError(name, f"is a corrupt torch archive ({_short(error)})") from None
    for info in members:
        stored = info.compress_type == zipfile.ZIP_STORED
        limit = info.compress_size if stored else info.compress_size * _MAX_EXPANSION + _SLACK
        if info.compress_size > size or info.file_size > limit:
            raise LoadError(
                name,
                f"member {info.filename!r} declares {info.file_size} bytes but the file holds "
                f"{size} (a corrupt or hostile archive)",
            )
    return members


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:160] or type(error).__name__


def _torch_load(path: Path, name: str, looks_saved: bool) -> Any:
    """torch.load with weights_only=True; ``looks_saved``: a zip archive or a pickle stream."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = " ".join(str(error).split())
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
        if found or looks_saved:
            what = found.group(1) if found else _detail(message)
            raise LoadError(
                name,
                "holds Python objects beyond tensors; torch.load(weights_only=True) "
                f"refuses to unpickle them ({what})",
                tip=_REFUSED_TIP,
            ) from None
        raise LoadError(name, f"is not a file torch.save wrote ({_detail(message)})") from None
    except Exception as error:  # torch raises almost anything on bytes it cannot read
        raise LoadError(name, f"is not a file torch.save wrote ({_short(error)})") from None


def _detail(message: str) -> str:
    found = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", message)
    return (found.group(1) if found else message)[:120].strip()


def _pick(payload: Any, selector: str | None, name: str) -> tuple[Any, str]:
    """The object ``selector`` names in ``payload``, and how messages name it."""
    import torch

    if isinstance(payload, torch.Tensor):
        if selector is not None:
            raise LoadError(
                name, f"holds a single tensor, so ':{selector}' selects nothing; drop it"
            )
        return payload, name
    if isinstance(payload, dict):
        keys = [str(key) for key in payload]
        listing = ", ".join(keys[:20]) + (", ..." if len(keys) > 20 else "")
        if selector is None:
            tensors = [key for key, value in payload.items() if isinstance(value, torch.Tensor)]
            if len(payload) == 1 and len(tensors) == 1:
                return payload[tensors[0]], f"{name}:{tensors[0]}"
            if not payload:
                raise LoadError(name, "holds an empty dict, no tensors")
            raise LoadError(
                name,
                f"holds several tensors; pick one with {name}:KEY (it has: {listing})",
            )
        for key, value in payload.items():
            if str(key) == selector:
                return value, f"{name}:{selector}"
        raise LoadError(name, f"has no key {selector!r} (it has: {listing})")
    if isinstance(payload, (list, tuple)):
        kind = type(payload).__name__
        if selector is None:
            if len(payload) == 1:
                return payload[0], f"{name}:0"
            raise LoadError(
                name,
                f"holds a {kind} of {len(payload)} items; pick one with {name}:INDEX "
                f"(0 to {len(payload) - 1})",
            )
        if not re.fullmatch(r"-?\d+", selector) or not -len(payload) <= int(selector) < len(
            payload
        ):
            raise LoadError(
                name,
                f"has no item {selector!r} (it holds a {kind} of {len(payload)}: "
                f"use an index from 0 to {len(payload) - 1})",
            )
        return payload[int(selector)], f"{name}:{selector}"
    raise LoadError(name, f"holds a {type(payload).__name__}, not a tensor")


def _to_loaded(item: Any, where: str, display: str) -> LoadedArray:
    import torch

    if not isinstance(item, torch.Tensor):
        if isinstance(item, (int, float, bool)) and not isinstance(item, complex):
            return LoadedArray(values=np.asarray(item), source=display)
        raise LoadError(
            where, f"holds a {type(item).__name__}, not a tensor (select a tensor inside it)"
        )
    tensor = item.detach()
    if tensor.layout != torch.strided:
        raise LoadError(where, f"holds a {tensor.layout} tensor; save t.to_dense() instead", tip="")
    if tensor.is_quantized:
        raise LoadError(where, "holds a quantized tensor; save t.dequantize() instead")
    if tensor.device.type == "meta":
        raise LoadError(where, "holds a meta tensor (no data)")
    if tensor.is_complex():
        raise LoadError(
            where, f"holds complex numbers ({tensor.dtype}); losscli needs real numbers"
        )
    stored: str | None = None
    dtype_name = str(tensor.dtype).removeprefix("torch.")
    if tensor.dtype == torch.bfloat16 or dtype_name.startswith("float8"):
        # NumPy has no bfloat16/float8: widen exactly to float32, remember what was stored
        stored = dtype_name
        tensor = tensor.to(torch.float32)
    tensor = tensor.resolve_conj().resolve_neg().cpu()
    try:
        values = tensor.numpy()
    except (TypeError, RuntimeError) as error:
        raise LoadError(
            where, f"holds {dtype_name} values NumPy cannot hold ({_short(error)})"
        ) from None
    return LoadedArray(values=values, source=display, stored_dtype=stored)
