"""Output files: every per-sample loss written to ``--per-sample-out FILE.npy|.csv``, never half.

The losses go, chunk by chunk, to a temporary file beside the target, which is renamed into
place only when the run succeeds; a failed or interrupted run leaves the target as it was.
The target may not be one of the inputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from losscli.errors import UsageError
from losscli.printable import printable

_SUFFIXES = (".npy", ".csv")
# temporary files being written, removed by discard_all() when the run is interrupted
_LIVE: set[Path] = set()


def discard_all() -> None:
    """Remove every temporary output file still being written (an interrupt: Ctrl-C, SIGTERM)."""
    for path in list(_LIVE):
        with contextlib.suppress(OSError):
            path.unlink()
        _LIVE.discard(path)


def check_target(path: str, inputs: Iterable[Path]) -> Path:
    """The file to write: ``path`` with symlinks resolved, refused unless it can be replaced.

    Refused: a suffix other than ``.npy``/``.csv``; a directory, a pipe or a device (a rename
    would replace the device node, a write to a pipe cannot be taken back); a missing
    directory; and any of ``inputs`` (the same file by device and inode, so through a
    symlink or a hard link too).

    Raises:
        UsageError: before any input is read or any file written.
    """
    name = printable(path)
    target = Path(path)
    if target.suffix.lower() not in _SUFFIXES:
        raise UsageError(f"--per-sample-out {name}: write a .npy or a .csv file")
    target = Path(os.path.realpath(target))  # write beside the file a symlink names
    try:
        mode: int | None = target.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"--per-sample-out {name}: is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"--per-sample-out {name}: is a pipe or a device, not a file it can replace"
        )
    if not target.parent.is_dir():
        raise UsageError(
            f"--per-sample-out {name}: no such directory {printable(str(target.parent))!r}"
        )
    for source in inputs:
        with contextlib.suppress(OSError):
            if mode is not None and os.path.samefile(target, source):
                raise UsageError(
                    f"--per-sample-out {name} is an input ({printable(str(source))}); "
                    "it would be overwritten"
                )
    return target


class PerSampleWriter:
    """Per-sample losses written to a temporary file, renamed onto the target by :meth:`commit`."""

    # a .npy header with room for any shape, rewritten with the final count at the end
    _NPY_HEADER = 128

    def __init__(self, target: Path, name: str | None = None) -> None:
        """Open the temporary file beside ``target`` (:func:`check_target`'s path).

        Args:
            target: the file the losses replace when the run succeeds.
            name: how messages name it (the path as typed); ``target`` when None.
        """
        self.target = target
        self.name = printable(name if name is not None else str(target))
        self.suffix = target.suffix.lower()
        handle, self._temporary = self._created(target)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        self._stream: BinaryIO = os.fdopen(handle, "wb")
        self._count = 0
        self._write(self._npy_header(0) if self.suffix == ".npy" else b"per_sample\n")

    def _created(self, target: Path) -> tuple[int, Path]:
        """A new temporary file beside ``target``, as ``tempfile.mkstemp`` makes one (a random
        name, created exclusively, mode 0600), registered for discarding before it exists: an
        interrupt then finds it whenever it lands (the handler ends the process at once)."""
        # the name cut short: a target near the file-name limit must still fit
        stem = target.parent / f".{target.name[:64]}."
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _ in range(100):
            temporary = Path(f"{stem}{secrets.token_hex(4)}.part")
            _LIVE.add(temporary)
            try:
                return os.open(temporary, flags, 0o600), temporary
            except FileExistsError:
                _LIVE.discard(temporary)
            except OSError as error:
                _LIVE.discard(temporary)
                raise self._failed(error) from None
        raise self._failed(FileExistsError(errno.EEXIST, "no unused temporary name"))

    def _write(self, data: bytes | memoryview) -> None:
        try:
            self._stream.write(data)
        except OSError as error:
            self.discard()
            raise self._failed(error) from None

    def _npy_header(self, count: int) -> bytes:
        text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({count},), }}"
        length = self._NPY_HEADER - 10
        return (
            b"\x93NUMPY\x01\x00"
            + length.to_bytes(2, "little")
            + text.ljust(length - 1).encode()
            + b"\n"
        )

    def write(self, losses: np.ndarray) -> None:
        """Append float64 per-sample losses."""
        values = np.ascontiguousarray(np.asarray(losses, dtype="<f8").reshape(-1))
        if self.suffix == ".npy":
            self._write(values.data)
        elif values.size:
            # repr of a float64 reads back bit for bit; NaN/Inf as nan/inf
            self._write(("\n".join(map(repr, values.tolist())) + "\n").encode())
        self._count += values.size

    def finish(self) -> None:
        """Complete the temporary file and force it to disk (where a full disk shows).

        Raises:
            UsageError: the file cannot be written; it is discarded.
        """
        try:
            if self.suffix == ".npy":
                self._stream.seek(0)
                self._stream.write(self._npy_header(self._count))
            self._stream.flush()
            os.fsync(self._stream.fileno())  # on disk before the rename makes it the file
            self._stream.close()
        except OSError as error:
            self.discard()
            raise self._failed(error) from None

    def commit(self) -> None:
        """Rename the finished file onto the target (:meth:`finish` first, if not yet)."""
        if not self._stream.closed:
            self.finish()
        try:
            os.replace(self._temporary, self.target)
        except OSError as error:
            self.discard()
            raise self._failed(error) from None
        _LIVE.discard(self._temporary)

    def _failed(self, error: OSError) -> UsageError:
        """A write error (disk full, no permission) as one line naming the file."""
        return UsageError(f"--per-sample-out {self.name}: cannot write ({error.strerror or error})")

    def discard(self) -> None:
        """Drop the temporary file; the target stays as it was."""
        with contextlib.suppress(OSError):
            self._stream.close()
        with contextlib.suppress(OSError):
            self._temporary.unlink()
        _LIVE.discard(self._temporary)
