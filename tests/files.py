"""What a directory holds, to prove a run changed nothing: shared by the hostile suites."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every regular file under ``directory``: its content hash and mtime.

    A rewrite with the same bytes shows in the mtime. Symlinks are not followed (one may
    name a device or a FIFO, which must never be read here).
    """
    return {
        str(path.relative_to(directory)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
