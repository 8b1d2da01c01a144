"""Printable text: control characters in names and messages become visible escapes.

A file name may hold a newline, an escape sequence or a bidirectional override. Written as
it is, it splits an error over two lines, recolours a terminal, or injects a workflow
command into ``--format github`` output. Every message and name losscli prints passes
through :func:`printable`, which writes those characters as Python writes them in a string
literal (``\\n``, ``\\x1b``, ``\\u202e``) and leaves everything else, accents and emoji
included, as it is.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates (the "Trojan Source" characters)
_CONTROLS = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _escape(code) for code in _CONTROLS}


def printable(text: str) -> str:
    """``text`` with every control character written as a visible escape (idempotent)."""
    return text.translate(_TABLE)
