"""Inline loader: a JSON array typed on the command line, e.g. ``'[1, 2.5, 4]'``.

Also reads a ``.json`` file or ``--stdin-format json``: the same array, from a file or a pipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import TEXT_VALUE_FACTOR, Estimate, LoadedArray

_MAX_TEXT = 1 << 30  # a JSON text this large belongs in a binary file


def read_text(text: str, display: str = "inline", name: str | None = None) -> LoadedArray:
    """Parse a (nested) JSON array of numbers; integers stay integers.

    ``NaN``, ``Infinity`` and ``-Infinity`` are accepted, as Python's json module does.

    Args:
        text: the JSON text.
        display: how the report names the source.
        name: how error messages name it (default: a preview of ``text``).
    """
    who = name or f"inline array {_preview(text)}"
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise LoadError(
            who,
            f"is not valid JSON ({error.msg} at column {error.colno})",
            tip="write an inline array as '[1, 2.5, 4]' (quote it for the shell)",
        ) from None
    except RecursionError:
        raise LoadError(who, "is nested too deeply to be an array of numbers") from None
    _check_numbers(parsed, who)
    floats = _has_floats(parsed)
    try:
        values = np.array(parsed, dtype=np.float64 if floats else None)
    except (ValueError, OverflowError):
        raise LoadError(who, "is ragged: nested lists of different lengths") from None
    if values.dtype == object or values.dtype.kind not in "biuf":
        if not floats and _has_big_int(parsed):
            raise LoadError(who, "holds an integer too large for int64")
        raise LoadError(who, "must hold only numbers (nested lists of equal length)")
    if values.dtype.kind == "u":
        raise LoadError(who, "holds an integer too large for int64")
    if values.dtype.kind == "f" and not floats:
        values = values.astype(np.int64)
    return LoadedArray(values=values, source=display, from_text=True)


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read a ``.json`` file holding one array."""
    name = str(path)
    if selector is not None:
        raise LoadError(name, f"holds a single array, so ':{selector}' selects nothing; drop it")
    size = path.stat().st_size
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    if size > _MAX_TEXT:
        raise LoadError(name, f"is {size} bytes of JSON; save large arrays as .npy")
    return read_bytes(path.read_bytes(), None, display, name)


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """A JSON array is text: :data:`TEXT_VALUE_FACTOR` bytes of values per byte (``0,``
    becomes an 8-byte number); it does not stream."""
    return Estimate(size * TEXT_VALUE_FACTOR, False)


def read_bytes(
    data: bytes, selector: str | None, display: str, name: str = "<stdin>"
) -> LoadedArray:
    """Read a JSON array from bytes (standard input, or a ``.json`` file)."""
    if selector is not None:
        raise LoadError(name, f"holds a single array, so ':{selector}' selects nothing")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError(name, "is not text (binary data where JSON was expected)") from None
    return read_text(text, display, name)


def _check_numbers(parsed: Any, who: str) -> None:
    if not isinstance(parsed, list):
        raise LoadError(who, "is not a JSON array (write it as [1, 2, 3])")
    stack = [parsed]
    while stack:
        item = stack.pop()
        for element in item:
            if isinstance(element, list):
                stack.append(element)
            elif isinstance(element, bool) or not isinstance(element, (int, float)):
                raise LoadError(who, f"holds {json.dumps(element)[:40]}, which is not a number")


def _has_floats(parsed: Any) -> bool:
    stack = [parsed]
    while stack:
        for element in stack.pop():
            if isinstance(element, list):
                stack.append(element)
            elif isinstance(element, float):
                return True
    return False


def _has_big_int(parsed: Any) -> bool:
    stack = [parsed]
    while stack:
        for element in stack.pop():
            if isinstance(element, list):
                stack.append(element)
            elif isinstance(element, int) and not -(2**63) <= element < 2**63:
                return True
    return False


def _preview(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
