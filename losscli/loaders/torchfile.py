"""Torch loader (``.pt``, ``.pth``): ``torch.load(weights_only=True)``, never a full unpickle.

A file holds a tensor, or dicts / lists / tuples of tensors, nested (a checkpoint), from which
``file.pt:PATH`` picks one: dict keys and 0-based indices separated by ``.`` or ``/``
(``ckpt.pt:outputs.logits``, ``ckpt.pt:outputs/0``). bfloat16 (and float8) tensors, which NumPy cannot
hold, arrive as float32 with :attr:`LoadedArray.stored_dtype` naming what was stored.
"""

from __future__ import annotations

import contextlib
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
    """Read one tensor from a file ``torch.save`` wrote.

    A zip archive (what ``torch.save`` writes) is memory-mapped, so only the chosen tensor is
    read and copied: the other tensors of a checkpoint cost nothing.
    """
    name = str(path)
    payload = _opened(path, name)
    item, where = pick(payload, selector, name)
    return _to_loaded(item, where, display)


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """The bytes the chosen tensor occupies once decoded (bfloat16 and float8 widened to
    float32), from the archive's pickle alone: its storages are mapped, not read. An archive
    with compressed records counts them all uncompressed, and a legacy (pickle-stream) file
    its size: torch reads either whole. A ``.pt`` file does not stream.

    Raises:
        LoadError: what :func:`read_path` says of an empty file, a corrupt archive, or a
            selection that names no tensor.
    """
    name = str(path)
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    with path.open("rb") as stream:
        magic = stream.read(4)
    if magic != _ZIP_MAGIC:
        return Estimate(size, False)
    members = _check_archive(path, size, name)
    whole = Estimate(sum(info.file_size for info in members), False)
    if not _mapped(path):  # compressed records: torch.load decompresses every one of them
        return whole
    try:
        payload = _torch_load(path, name, looks_saved=True, mmap=True)
    except LoadError:  # torch cannot map it: the loader reads it whole (or says why not)
        return whole
    item, _ = pick(payload, selector, name)
    return Estimate(decoded_bytes(item), False)


def _opened(path: Path, name: str) -> Any:
    """What ``torch.load(weights_only=True)`` finds in the file, storages memory-mapped when
    the file is a zip archive whose records are stored uncompressed (``torch.save``'s own)."""
    size = path.stat().st_size
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    with path.open("rb") as stream:
        magic = stream.read(4)
    if magic == _ZIP_MAGIC:
        _check_archive(path, size, name)
    looks_saved = magic == _ZIP_MAGIC or magic[:1] == b"\x80"
    if _mapped(path):
        with contextlib.suppress(LoadError):  # an archive torch cannot map: read it whole
            return _torch_load(path, name, looks_saved, mmap=True)
    return _torch_load(path, name, looks_saved)


def _mapped(path: Path) -> bool:
    """A zip archive whose records are all stored uncompressed: torch can map it."""
    try:
        with zipfile.ZipFile(path, mode="r") as archive:
            return all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return False


def decoded_bytes(item: Any) -> int:
    """The bytes ``item`` occupies as NumPy holds it (bfloat16 and float8 widen to float32)."""
    import torch

    if not isinstance(item, torch.Tensor):
        return 8
    itemsize = item.element_size()
    if item.dtype == torch.bfloat16 or str(item.dtype).startswith("torch.float8"):
        itemsize = 4
    return int(item.numel()) * itemsize


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


def _torch_load(path: Path, name: str, looks_saved: bool, mmap: bool = False) -> Any:
    """torch.load with weights_only=True; ``looks_saved``: a zip archive or a pickle stream;
    ``mmap``: map the storages (copy-on-write: the file is never written) instead of reading
    them all."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
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


# at most this many tensor paths are listed in a message
_LISTED = 12
# containers nested deeper than this are not searched for tensors
_MAX_DEPTH = 32


def pick(payload: Any, selector: str | None, name: str) -> tuple[Any, str]:
    """The object ``selector`` names in ``payload``, and how messages name it.

    ``selector`` is a path through dicts (by key) and lists or tuples (by 0-based index),
    its steps separated by ``.`` or ``/`` (``outputs.logits``, ``outputs/0``); a key that
    itself holds a dot (``model.fc.weight``) is tried whole first. Without a selector, a
    payload that holds exactly one tensor, at any depth, gives it. A selection that lands on
    a container holding exactly one tensor gives that tensor.

    Raises:
        LoadError: no such path, a selection that holds no tensor or several, or a payload
            holding several tensors and no selector; the message lists the tensor paths.
    """
    import torch

    if isinstance(payload, torch.Tensor):
        if selector is not None:
            raise LoadError(
                name, f"holds a single tensor, so ':{selector}' selects nothing; drop it"
            )
        return payload, name
    if selector is None:
        return _only_tensor(payload, None, name)
    found = _walk(payload, selector, 0)
    if found is None:
        raise LoadError(name, f"has no {selector!r}{_in_it(tensor_paths(payload), name, 'PATH')}")
    item, path = found
    if isinstance(item, (dict, list, tuple)):
        return _only_tensor(item, path, name)
    if isinstance(item, torch.Tensor) or _is_number(item):
        return item, f"{name}:{path}"
    raise LoadError(
        f"{name}:{path}",
        f"holds a {type(item).__name__}, not a tensor{_in_it(tensor_paths(payload), name, 'PATH')}",
    )


def _only_tensor(container: Any, path: str | None, name: str) -> tuple[Any, str]:
    """The one tensor ``container`` holds (at any depth), or the error listing its tensors."""
    paths = tensor_paths(container, path)
    where = name if path is None else f"{name}:{path}"
    if len(paths) == 1:
        return paths[0][1], f"{name}:{paths[0][0]}"
    if not paths:
        return _refuse_empty(container, where, path is None)
    return _refuse_several(paths, where, name)


def _refuse_empty(container: Any, where: str, whole_file: bool) -> tuple[Any, str]:
    kind = type(container).__name__
    if whole_file and _is_number(container):
        raise LoadError(where, f"holds a {kind}, not a tensor")
    raise LoadError(where, f"holds a {kind} with no tensors in it")


def _refuse_several(paths: list[tuple[str, Any]], where: str, name: str) -> tuple[Any, str]:
    raise LoadError(
        where,
        f"holds {len(paths)} tensors; pick one{_in_it(paths, name, 'PATH', verb='with')}",
    )


def _in_it(paths: list[tuple[str, Any]], name: str, placeholder: str, verb: str = "") -> str:
    """`` with ckpt.pt:PATH (its tensors: a, b.c, ... and 3 more)``, or that it holds none."""
    if not paths:
        return " (it holds no tensors)"
    shown = ", ".join(path for path, _ in paths[:_LISTED])
    more = f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else ""
    lead = f" {verb} {name}:{placeholder}" if verb else ""
    return f"{lead} (its tensors: {shown}{more})"


def tensor_paths(payload: Any, prefix: str | None = None) -> list[tuple[str, Any]]:
    """Every tensor in ``payload`` as (dotted path, tensor), depth first, in stored order."""
    import torch

    found: list[tuple[str, Any]] = []

    def visit(item: Any, path: str | None, depth: int) -> None:
        if isinstance(item, torch.Tensor):
            found.append((path or "", item))
        elif depth < _MAX_DEPTH and isinstance(item, (dict, list, tuple)):
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, value in pairs:
                visit(value, str(key) if path is None else f"{path}.{key}", depth + 1)

    visit(payload, prefix, 0)
    return found


def _walk(item: Any, rest: str, depth: int) -> tuple[Any, str] | None:
    """The object at path ``rest`` inside ``item`` and its dotted path, or None.

    At a dict, the longest key that matches the start of ``rest`` (up to a ``.`` or ``/``,
    or all of it) is tried first, so a key holding dots is reachable; at a list or tuple,
    the leading step is an index (negative counts from the end).
    """
    if depth >= _MAX_DEPTH or not isinstance(item, (dict, list, tuple)):
        return None
    cuts = [len(rest)] + [i for i in range(len(rest) - 1, 0, -1) if rest[i] in "./"]
    for cut in cuts:
        step, tail = rest[:cut], rest[cut + 1 :]
        found = _child(item, step)
        if found is None:
            continue
        child, key = found
        if not tail:
            return child, key
        deeper = _walk(child, tail, depth + 1)
        if deeper is not None:
            return deeper[0], f"{key}.{deeper[1]}"
    return None


def _child(item: Any, step: str) -> tuple[Any, str] | None:
    """The entry ``step`` of a dict (by its key as text) or of a list/tuple (by index)."""
    if isinstance(item, dict):
        for key, value in item.items():
            if str(key) == step:
                return value, str(key)
        return None
    if re.fullmatch(r"-?\d+", step) and -len(item) <= int(step) < len(item):
        index = int(step) % len(item)
        return item[index], str(index)
    return None


def _is_number(item: Any) -> bool:
    return isinstance(item, (int, float, bool))


def _to_loaded(item: Any, where: str, display: str) -> LoadedArray:
    import torch

    if not isinstance(item, torch.Tensor):
        return LoadedArray(values=np.asarray(item), source=display)
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
    # a copy of the chosen elements only: nothing stays mapped from the file
    tensor = tensor.resolve_conj().resolve_neg().cpu().clone(memory_format=torch.contiguous_format)
    try:
        values = tensor.numpy()
    except (TypeError, RuntimeError) as error:
        raise LoadError(
            where, f"holds {dtype_name} values NumPy cannot hold ({_short(error)})"
        ) from None
    return LoadedArray(values=values, source=display, stored_dtype=stored)
