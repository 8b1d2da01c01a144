"""Formats: the table of input formats losscli reads (suffixes, gzip, standard input).

Kept apart from :mod:`losscli.loaders`, which reads them, so that ``--help`` can list the
formats without importing NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One input format.

    Attributes:
        name: what ``--stdin-format`` and messages call it.
        module: the module under ``losscli.loaders`` that reads it.
        suffixes: the file suffixes (lower case) that select it.
        gzip: whether ``name.SUFFIX.gz`` is read too.
        stdin: whether it can come from standard input (the module has ``read_bytes``).
    """

    name: str
    module: str
    suffixes: tuple[str, ...]
    gzip: bool = False
    stdin: bool = False


FORMATS: tuple[Format, ...] = (
    Format("npy", "npy", (".npy",), stdin=True),
    Format("npz", "npz", (".npz",), stdin=True),
    Format("csv", "csv", (".csv", ".txt"), gzip=True, stdin=True),
    Format("tsv", "csv", (".tsv", ".tab"), gzip=True, stdin=True),
    Format("parquet", "arrow", (".parquet", ".pq")),
    Format("feather", "arrow", (".feather", ".arrow", ".ipc")),
    Format("pt", "torchfile", (".pt", ".pth")),
    Format("safetensors", "safetensors", (".safetensors",)),
    Format("json", "inline", (".json",), stdin=True),
)


def stdin_formats() -> list[str]:
    """The names ``--stdin-format`` accepts."""
    return [fmt.name for fmt in FORMATS if fmt.stdin]
