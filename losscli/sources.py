"""Sources: parse one INPUT argument (path, path:selector, '-', inline JSON) into what to read."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class SourceKind(str, enum.Enum):
    FILE = "file"
    STDIN = "stdin"
    INLINE = "inline"


@dataclass(frozen=True)
class Source:
    """What one INPUT argument asks to read.

    Attributes:
        kind: a file, standard input, or an inline JSON array.
        text: the argument as typed (for messages).
        path: the file to read (``kind == FILE``).
        selector: what follows ``:`` — an npz/pt key, or CSV/Parquet column(s).
    """

    kind: SourceKind
    text: str
    path: Path | None = None
    selector: str | None = None

    @property
    def display(self) -> str:
        """How messages and reports name this source."""
        if self.kind is SourceKind.STDIN:
            return "<stdin>"
        if self.kind is SourceKind.INLINE:
            return "inline"
        return self.text


def parse_source(text: str) -> Source:
    """Parse one INPUT argument.

    An existing path always wins over selector parsing, so ``a:b.csv`` that exists is a file.
    Otherwise the last ``:`` separates a path from a selector when what precedes it exists
    (``z.npz:key``, ``t.csv:label``, ``t.csv:0,2``) or looks like a supported file name.
    """
    stripped = text.strip()
    if stripped == "-":
        return Source(SourceKind.STDIN, text)
    if stripped.startswith("["):
        return Source(SourceKind.INLINE, text)
    path = Path(text)
    if path.exists():
        return Source(SourceKind.FILE, text, path=path)
    head, sep, tail = text.rpartition(":")
    if sep and head and tail and (Path(head).exists() or Path(head).suffix):
        return Source(SourceKind.FILE, text, path=Path(head), selector=tail)
    return Source(SourceKind.FILE, text, path=path)
