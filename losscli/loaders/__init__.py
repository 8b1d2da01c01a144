"""Loaders: read one Source into a :class:`LoadedArray`; one module per format.

Adding a format is adding one module with ``read_path`` (and ``read_bytes`` when it can
come from standard input) and one line in :data:`_BY_SUFFIX`.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

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
    """

    values: np.ndarray
    source: str
    columns: tuple[str, ...] | None = None


class _FormatModule(Protocol):
    def read_path(self, path: Path, selector: str | None, display: str) -> LoadedArray: ...


# suffix (lower case, ``.gz`` stripped) → module under losscli.loaders
_BY_SUFFIX: dict[str, str] = {
    ".npy": "npy",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
}
_STDIN_FORMATS: dict[str, str] = {"csv": "csv", "npy": "npy"}


def supported_suffixes() -> list[str]:
    """The file suffixes losscli reads."""
    return sorted(_BY_SUFFIX)


def format_of(path: Path) -> str | None:
    """The loader module name for ``path``, from its suffix (``.gz`` looks one further)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if not suffixes:
        return None
    return _BY_SUFFIX.get(suffixes[-1])


def load(source: Source, stdin_format: str = "csv") -> LoadedArray:
    """Read ``source`` into a LoadedArray; unreadable input raises :class:`LoadError`."""
    if source.kind is SourceKind.INLINE:
        from losscli.loaders import inline

        return _checked(inline.read_text(source.text, source.display))
    if source.kind is SourceKind.STDIN:
        module = _STDIN_FORMATS.get(stdin_format)
        if module is None:
            raise LoadError("<stdin>", f"unknown --stdin-format {stdin_format!r} (use csv or npy)")
        data = sys.stdin.buffer.read()
        if not data:
            raise LoadError("<stdin>", "standard input is empty", tip="pipe a CSV or .npy into '-'")
        reader = importlib.import_module(f"losscli.loaders.{module}")
        return _checked(reader.read_bytes(data, None, source.display))
    assert source.path is not None
    path = source.path
    display = source.display
    if not path.exists():
        raise LoadError(str(path), "no such file")
    if path.is_dir():
        raise LoadError(str(path), "is a directory, not a file")
    module = format_of(path)
    if module is None:
        known = ", ".join(supported_suffixes())
        raise LoadError(
            str(path), f"unknown file type {path.suffix or '(no suffix)'!r} (losscli reads {known})"
        )
    format_reader = cast(_FormatModule, importlib.import_module(f"losscli.loaders.{module}"))
    return _checked(format_reader.read_path(path, source.selector, display))


def _checked(loaded: LoadedArray) -> LoadedArray:
    """Refuse dtypes no loss can use (complex, strings, objects, records)."""
    kind = loaded.values.dtype.kind
    if kind not in "biuf":
        what = {
            "c": "complex numbers",
            "U": "strings",
            "S": "bytes",
            "O": "Python objects",
            "V": "structured records",
            "M": "dates",
            "m": "time deltas",
        }.get(kind, f"dtype {loaded.values.dtype}")
        raise LoadError(loaded.source, f"holds {what}; losscli needs real numbers")
    return loaded
