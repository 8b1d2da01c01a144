"""Sources: parse one INPUT argument (path, path:selector, '-', inline JSON) into what to read.

This module owns the INPUT syntax; nothing else splits an argument on ``:``.

* ``-`` is standard input; ``-:label`` selects from it (a CSV column, an npz key).
* ``[1, 2.5, 4]`` (an argument that starts with ``[``) is an inline JSON array.
* Anything else is a file. An existing path always wins, so a file literally named
  ``a:b.csv`` is read as itself. Otherwise the last ``:`` separates a path from a selector
  when the part before it names a file with a suffix: ``z.npz:key``, ``t.csv:label``,
  ``t.csv:0,2``, ``x.pt:3``, ``ckpt.pt:outputs.logits``; a selector holds a ``/`` only after
  an existing file (``ckpt.pt:outputs/logits``), since ``a:b/c.csv`` may be a directory.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from losscli.errors import UsageError
from losscli.printable import printable


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
        """How messages and reports name this source (control characters escaped)."""
        if self.kind is SourceKind.STDIN:
            return "<stdin>" if self.selector is None else printable(f"<stdin>:{self.selector}")
        if self.kind is SourceKind.INLINE:
            return "inline"
        return printable(self.text)

    @property
    def file_name(self) -> str:
        """The file alone, without the selector (for messages about the whole file)."""
        if self.kind is SourceKind.STDIN:
            return "<stdin>"
        if self.kind is SourceKind.INLINE:
            return "inline"
        return printable(str(self.path))


def parse_source(text: str) -> Source:
    """Parse one INPUT argument.

    Args:
        text: the argument as typed on the command line.

    Returns:
        The Source to read. Whether the file exists is the loader's concern, except that an
        existing path is never split at a ``:``.

    Raises:
        UsageError: the argument is empty, or a selector after ``:`` is empty.
    """
    stripped = text.strip()
    if not stripped:
        raise UsageError("an INPUT argument is empty (give a file, '-' or an inline '[1, 2, 3]')")
    if stripped == "-":
        return Source(SourceKind.STDIN, text)
    if stripped.startswith("-:"):
        return Source(SourceKind.STDIN, text, selector=_selector(stripped[2:], text))
    if _exists(text):
        return Source(SourceKind.FILE, text, path=Path(text))
    if stripped.startswith("["):
        return Source(SourceKind.INLINE, text)
    head, sep, tail = text.rpartition(":")
    if sep and head and (_is_file(head) or (_looks_like_file(head) and not _has_separator(tail))):
        return Source(SourceKind.FILE, text, path=Path(head), selector=_selector(tail, text))
    return Source(SourceKind.FILE, text, path=Path(text))


def check_one_stdin(arguments: Sequence[str]) -> None:
    """Raise UsageError when more than one INPUT reads standard input (``-`` or ``-:selector``).

    Standard input can be read only once; the second reader would find it empty.
    """
    if sum(1 for text in arguments if _reads_stdin(text)) > 1:
        raise UsageError("only one input can come from standard input ('-')")


def _reads_stdin(text: str) -> bool:
    """Whether ``parse_source`` reads this argument from standard input."""
    stripped = text.strip()
    return stripped == "-" or stripped.startswith("-:")


def _exists(text: str) -> bool:
    try:
        return os.path.lexists(text)
    except (OSError, ValueError):  # embedded NUL, a name too long for the OS
        return False


def _is_file(head: str) -> bool:
    """An existing regular file: what follows its ``:`` is a selector, even a path through a
    checkpoint (``ckpt.pt:outputs/logits``)."""
    try:
        return os.path.isfile(head)
    except (OSError, ValueError):
        return False


def _looks_like_file(head: str) -> bool:
    """``data.csv`` or ``dir/x.pt`` (a name with a suffix), not ``C`` from ``C:\\x.csv``."""
    return bool(Path(head).suffix) or _exists(head)


def _has_separator(tail: str) -> bool:
    return "/" in tail or (os.sep != "/" and os.sep in tail)


def _selector(tail: str, text: str) -> str:
    selector = tail.strip()
    if not selector:
        raise UsageError(
            f"{text}: nothing after ':' (write FILE:KEY or FILE:COLUMN, e.g. z.npz:logits)"
        )
    return selector
