"""NumPy ``.npz`` loader: ``file.npz:key`` picks one array; never unpickles.

The archive is read with :mod:`zipfile`, not ``np.load``: numpy allocates an array from the
size its header claims before reading the data, so every claim is checked first against the
member's size and the member's size against its compressed size (a zip bomb stops here).
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from losscli.errors import LoadError
from losscli.loaders import Estimate, LoadedArray
from losscli.loaders.npy import array_from, check_size, read_header

# DEFLATE cannot expand more than about 1032:1; bzip2 and LZMA can do more on runs of zeros,
# which real arrays rarely are. A member claiming more than this is refused unread.
MAX_EXPANSION = 1100
_SLACK = 4096  # small members (headers, tiny arrays) may legitimately grow a little


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read one array from an .npz file (the only one, or the one ``selector`` names)."""
    with path.open("rb") as stream:
        return _read(stream, selector, display, str(path))


def read_bytes(
    data: bytes, selector: str | None, display: str, name: str = "<stdin>"
) -> LoadedArray:
    """Read one array from an .npz image in memory (standard input)."""
    return _read(io.BytesIO(data), selector, display, name)


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """The uncompressed size of the member the loader would read; npz does not stream.

    Raises:
        LoadError: what :func:`read_path` says of an archive it cannot open, a missing or
            ambiguous key, or a member that claims more than any compressor produces.
    """
    with path.open("rb") as stream:
        return Estimate(member_bytes(stream, selector, str(path)), False)


def member_bytes(stream: BinaryIO, selector: str | None, name: str) -> int:
    """The uncompressed size the zip's central directory declares for the chosen member.

    zipfile never yields more than this (it stops a member at its declared size), so it
    bounds what decompressing the member can cost, before any of it is decompressed.

    Raises:
        LoadError: as :func:`read_path` would, before decompressing.
    """
    with _chosen(stream, selector, name) as (_, info, _):
        return info.file_size


@contextlib.contextmanager
def _chosen(
    stream: BinaryIO, selector: str | None, name: str
) -> Iterator[tuple[zipfile.ZipFile, zipfile.ZipInfo, str]]:
    """The open archive, the member ``selector`` picks (checked, not yet decompressed), and
    how messages name it (``file.npz:key``)."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    with _archive(stream, name) as archive:
        info = _choose(_members(archive), selector, name)
        member_name = f"{name}:{info.filename[: -len('.npy')]}"
        _check_member(info, size, member_name)
        yield archive, info, member_name


def _archive(stream: BinaryIO, name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream, mode="r")
    except zipfile.BadZipFile:
        raise LoadError(name, "is not an .npz file (not a zip archive)") from None
    except (NotImplementedError, ValueError, OSError, EOFError) as error:
        raise LoadError(name, f"is a corrupt .npz archive ({error})") from None


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Key (the member's name without ``.npy``) → member, for the arrays in ``archive``."""
    return {
        info.filename[: -len(".npy")]: info
        for info in archive.infolist()
        if info.filename.endswith(".npy") and not info.is_dir()
    }


def _read(stream: BinaryIO, selector: str | None, display: str, name: str) -> LoadedArray:
    with _chosen(stream, selector, name) as (archive, info, member_name):
        try:
            with archive.open(info, mode="r") as member:
                header = read_header(member, member_name)  # type: ignore[arg-type]
                check_size(header, info.file_size - header.offset, member_name)
                raw = _read_exactly(member, header.nbytes, member_name)
                member.read()  # reach the end so zipfile verifies the CRC
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as error:
            detail = " ".join(str(error).split())[:120]
            raise LoadError(member_name, f"cannot be decompressed ({detail})") from None
    values = array_from(raw, header, member_name)
    return LoadedArray(values=values, source=display)


def _choose(
    members: dict[str, zipfile.ZipInfo], selector: str | None, name: str
) -> zipfile.ZipInfo:
    keys = ", ".join(members) if members else "nothing"
    if selector is not None:
        if selector not in members:
            raise LoadError(name, f"has no array {selector!r} (it has: {keys})")
        return members[selector]
    if not members:
        raise LoadError(name, "holds no arrays")
    if len(members) > 1:
        raise LoadError(
            name,
            f"holds several arrays; pick one with {name}:KEY (it has: {keys})",
        )
    return next(iter(members.values()))


def _check_member(info: zipfile.ZipInfo, archive_size: int, name: str) -> None:
    if info.flag_bits & 0x1:
        raise LoadError(name, "is encrypted")
    if info.compress_size > archive_size:
        raise LoadError(
            name,
            f"declares {info.compress_size} compressed bytes but the archive holds "
            f"{archive_size} (truncated?)",
        )
    stored = info.compress_type == zipfile.ZIP_STORED
    limit = info.compress_size if stored else info.compress_size * MAX_EXPANSION + _SLACK
    if info.file_size > limit:
        raise LoadError(
            name,
            f"declares {info.file_size} bytes from {info.compress_size} stored bytes, more "
            "than any compressor produces (a corrupt or hostile archive)",
        )


def _read_exactly(member: IO[bytes], nbytes: int, name: str) -> bytearray:
    """``nbytes`` bytes from ``member``, read in chunks into one buffer (no second copy)."""
    raw = bytearray(nbytes)
    view = memoryview(raw)
    filled = 0
    while filled < nbytes:
        chunk = member.read(min(nbytes - filled, 1 << 24))
        if not chunk:
            raise LoadError(
                name, f"ends early: {filled} of the {nbytes} declared bytes of data are there"
            )
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return raw
