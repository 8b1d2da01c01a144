"""Columnar loader: Parquet (``.parquet``, ``.pq``) and Arrow IPC / Feather (``.feather``,
``.arrow``, ``.ipc``) through pyarrow.

``file.parquet:col`` or ``file.parquet:c1,c2`` picks columns (names, or 0-based indices).
One numeric column gives [rows]; several, or one list / fixed-size-list column, give
[rows, columns]. Without a selector every column is used when all are numeric.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from losscli.errors import LoadError
from losscli.loaders import LoadedArray

_PARQUET_SUFFIXES = (".parquet", ".pq")


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read the selected column(s) of a Parquet or Arrow IPC / Feather file."""
    name = str(path)
    size = path.stat().st_size
    if size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    parquet = path.suffix.lower() in _PARQUET_SUFFIXES
    schema = _parquet_schema(path, name, size) if parquet else _ipc_schema(path, name)
    names = list(schema.names)
    if not names:
        raise LoadError(name, "holds no columns")
    chosen = _select(names, selector, name)
    kinds = {column: _column_kind(schema.field(column).type) for column in chosen}
    _check_kinds(kinds, chosen, selector, name, schema)
    try:
        if parquet:
            table = pq.read_table(path, columns=chosen, memory_map=True)
        else:
            table = _read_ipc(path, chosen)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise LoadError(name, f"cannot be read ({_short(error)})") from None
    if table.num_rows == 0:
        raise LoadError(name, "holds no rows of data")
    if len(chosen) == 1 and kinds[chosen[0]] == "list":
        values = _list_column(table.column(chosen[0]), chosen[0], name)
    else:
        values = _stack(table, chosen)
    return LoadedArray(values=values, source=display, columns=tuple(chosen))


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:160] or type(error).__name__


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def _parquet_schema(path: Path, name: str, size: int) -> Any:
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise LoadError(name, f"is not a Parquet file ({_short(error)})") from None
    # Parquet compresses runs very well, so the ratio alone proves nothing; but data that
    # would not fit in this machine's memory is refused before pyarrow allocates it.
    declared = sum(
        max(metadata.row_group(i).total_byte_size, 0) for i in range(metadata.num_row_groups)
    )
    if declared > _memory_bytes():
        raise LoadError(
            name,
            f"declares {declared} bytes of data in {size} bytes of file, more than this "
            "machine's memory (a corrupt or hostile file?)",
        )
    try:
        return metadata.schema.to_arrow_schema()
    except (pa.ArrowException, ValueError) as error:
        raise LoadError(
            name, f"has a Parquet schema pyarrow cannot read ({_short(error)})"
        ) from None


def _ipc_schema(path: Path, name: str) -> Any:
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_file(source).schema
    except (pa.ArrowException, OSError, ValueError):
        pass
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_stream(source).schema
    except (pa.ArrowException, OSError, ValueError):
        pass
    try:
        # Feather version 1 (before Arrow IPC): read_table knows it
        return feather.read_table(str(path), memory_map=True).schema
    except (pa.ArrowException, OSError, ValueError) as error:
        raise LoadError(name, f"is not an Arrow IPC / Feather file ({_short(error)})") from None


def _read_ipc(path: Path, columns: list[str]) -> Any:
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_file(source).read_all().select(columns)
    except (pa.ArrowInvalid, OSError):
        pass
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_stream(source).read_all().select(columns)
    except (pa.ArrowInvalid, OSError):
        pass
    return feather.read_table(str(path), columns=columns, memory_map=True)


def _select(names: list[str], selector: str | None, name: str) -> list[str]:
    if selector is None:
        return names
    chosen: list[str] = []
    for part in (p.strip() for p in selector.split(",")):
        if part in names:
            chosen.append(part)
        elif part.lstrip("-").isdigit() and -len(names) <= int(part) < len(names):
            chosen.append(names[int(part)])
        else:
            have = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise LoadError(name, f"has no column {part!r} (it has: {have})")
    if len(set(chosen)) != len(chosen) or len(set(names)) != len(names):
        raise LoadError(name, "names a column twice (select columns by 0-based index)")
    return chosen


def _column_kind(arrow_type: Any) -> str:
    """``number``, ``list`` (of numbers), or the type's name for anything else."""
    if _is_number(arrow_type):
        return "number"
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    ) and _is_number(arrow_type.value_type):
        return "list"
    return str(arrow_type)


def _is_number(arrow_type: Any) -> bool:
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
    )


def _check_kinds(
    kinds: dict[str, str], chosen: list[str], selector: str | None, name: str, schema: Any
) -> None:
    bad = [column for column in chosen if kinds[column] not in ("number", "list")]
    if bad and selector is None and len(chosen) > 1:
        numeric = [column for column in chosen if kinds[column] == "number"]
        raise LoadError(
            name,
            f"has non-numeric columns ({', '.join(repr(c) for c in bad[:5])}); pick the "
            f"columns to use with {name}:COL or {name}:C1,C2 (numeric: {', '.join(numeric) or 'none'})",
        )
    if bad:
        column = bad[0]
        raise LoadError(name, f"column {column!r} holds {kinds[column]} values, not numbers")
    if len(chosen) > 1 and any(kinds[column] == "list" for column in chosen):
        raise LoadError(
            name,
            "mixes list columns with other columns; select one list column, or only number columns",
        )


def _stack(table: Any, chosen: list[str]) -> np.ndarray:
    """Number columns → [rows] for one, [rows, columns] for several; nulls become NaN."""
    arrays = []
    for column in chosen:
        chunked = table.column(column)
        values = np.asarray(chunked.to_numpy(zero_copy_only=False))
        if chunked.null_count:
            values = values.astype(np.float64)
        arrays.append(values)
    if len(arrays) == 1:
        return arrays[0]
    return np.column_stack(arrays)


def _list_column(chunked: Any, column: str, name: str) -> np.ndarray:
    """A list column whose rows all have the same length C → [rows, C]."""
    combined = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    if combined.null_count:
        raise LoadError(name, f"column {column!r} has missing rows (null lists)")
    if pa.types.is_fixed_size_list(combined.type):
        width = combined.type.list_size
    else:
        lengths = np.asarray(pc.list_value_length(combined).to_numpy(zero_copy_only=False))
        width = int(lengths[0])
        uneven = np.flatnonzero(lengths != width)
        if uneven.size:
            row = int(uneven[0])
            raise LoadError(
                name,
                f"column {column!r} holds lists of different lengths (row {row + 1} has "
                f"{int(lengths[row])} values, row 1 has {width})",
            )
    flat = combined.flatten()
    values = np.asarray(flat.to_numpy(zero_copy_only=False))
    if flat.null_count:
        values = values.astype(np.float64)
    return values.reshape(len(combined), width)
