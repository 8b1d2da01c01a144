"""Inline loader: a JSON array typed on the command line, e.g. ``'[1, 2.5, 4]'``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import LoadedArray


def read_text(text: str, display: str = "inline") -> LoadedArray:
    """Parse a (nested) JSON array of numbers; integers stay integers.

    ``NaN``, ``Infinity`` and ``-Infinity`` are accepted, as Python's json module does.
    """
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise LoadError(
            f"inline array {_preview(text)}",
            f"is not valid JSON ({error.msg} at column {error.colno})",
        ) from None
    _check_numbers(parsed, text)
    try:
        values = np.array(parsed)
    except ValueError:
        raise LoadError(
            f"inline array {_preview(text)}", "is ragged: nested lists of different lengths"
        ) from None
    if values.dtype == object or values.dtype.kind not in "biuf":
        raise LoadError(
            f"inline array {_preview(text)}",
            "must hold only numbers (nested lists of equal length)",
        )
    if values.dtype.kind == "f" and not any(_floats_in(parsed)):
        values = values.astype(np.int64)
    return LoadedArray(values=values, source=display)


def _check_numbers(parsed: Any, text: str) -> None:
    if not isinstance(parsed, list):
        raise LoadError(
            f"inline array {_preview(text)}", "is not a JSON array (write it as [1, 2, 3])"
        )
    stack = [parsed]
    while stack:
        item = stack.pop()
        for element in item:
            if isinstance(element, list):
                stack.append(element)
            elif isinstance(element, bool) or not isinstance(element, (int, float)):
                raise LoadError(
                    f"inline array {_preview(text)}",
                    f"holds {json.dumps(element)}, which is not a number",
                )


def _floats_in(parsed: Any) -> list[bool]:
    found = []
    stack = [parsed]
    while stack:
        item = stack.pop()
        for element in item:
            if isinstance(element, list):
                stack.append(element)
            elif isinstance(element, float):
                found.append(True)
    return found


def _preview(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
