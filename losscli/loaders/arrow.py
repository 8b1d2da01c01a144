"""Columnar loader: Parquet (``.parquet``, ``.pq``) and Arrow IPC / Feather (``.feather``,
``.arrow``, ``.ipc``) through pyarrow.

``file.parquet:col`` or ``file.parquet:c1,c2`` picks columns (names, or 0-based indices).
One numeric column gives [rows]; several, or one list / fixed-size-list column, give
[rows, columns]. Without a selector every column is used when all are numeric.

Only the selected columns are decoded. Their decoded size is known before: Parquet's
metadata counts the values of every column chunk, and an Arrow IPC file's footer leads to
every record batch's row count (:func:`estimate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from losscli.errors import LoadError
from losscli.loaders import Estimate, LoadedArray

_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class _Selection:
    """What the loader will read from one file, decided from its schema alone.

    Attributes:
        parquet: a Parquet file (else Arrow IPC / Feather).
        schema: the file's Arrow schema.
        chosen: the selected columns, in order.
        kinds: column → ``number`` or ``list``.
    """

    parquet: bool
    schema: Any
    chosen: list[str]
    kinds: dict[str, str]


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read the selected column(s) of a Parquet or Arrow IPC / Feather file."""
    name = str(path)
    selection = _selection(path, selector, name)
    chosen, kinds = selection.chosen, selection.kinds
    try:
        if selection.parquet:
            table = pq.read_table(path, columns=chosen, memory_map=True)
        else:
            table = _read_ipc(path, chosen, selection.schema)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise LoadError(name, f"cannot be read ({_short(error)})") from None
    if table.num_rows == 0:
        raise LoadError(name, "holds no rows of data")
    if len(chosen) == 1 and kinds[chosen[0]] == "list":
        values = _list_column(table.column(chosen[0]), chosen[0], name)
    else:
        values = _stack(table, chosen)
    return LoadedArray(values=values, source=display, columns=tuple(chosen))


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """The bytes the selected columns decode to, from metadata; Parquet and Arrow do not
    stream.

    Parquet: each column chunk's value count times the column's width (8 bytes where
    missing values make it float64). Arrow IPC file: the row count (from each record
    batch's metadata, nothing decompressed) times the widths. Lists of varying length in
    an IPC file, and IPC streams (no footer), are counted a record batch at a time, only
    the selected columns decoded, until past ``cap``. Feather version 1 is uncompressed:
    its size.

    Raises:
        LoadError: what :func:`read_path` says of the schema and the selection.
    """
    name = str(path)
    selection = _selection(path, selector, name)
    if selection.parquet:
        return Estimate(_parquet_bytes(path, selection), False)
    found = _ipc_estimate(path, selection, cap)
    return Estimate(size, False) if found is None else found  # None: Feather version 1


def _selection(path: Path, selector: str | None, name: str) -> _Selection:
    """The columns ``selector`` picks and their kinds, checked as the loader checks them.

    Raises:
        LoadError: an empty file, one pyarrow cannot read, no columns, an unknown column,
            columns that are not numbers.
    """
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
    return _Selection(parquet, schema, chosen, kinds)


def _width(arrow_type: Any) -> int:
    """Bytes per value of a number column (bool: NumPy's 1 byte), or of a list's values."""
    if not _is_number(arrow_type):
        arrow_type = arrow_type.value_type
    return max(arrow_type.bit_width // 8, 1)


def _parquet_bytes(path: Path, selection: _Selection) -> int:
    """Σ over the selected columns' chunks: values × width (8 where values are missing)."""
    metadata = pq.read_metadata(path)
    widths = {column: _width(selection.schema.field(column).type) for column in selection.chosen}
    total = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            column = chunk.path_in_schema.split(".")[0]
            if column not in widths:
                continue
            statistics = chunk.statistics
            missing = statistics is None or not statistics.has_null_count or statistics.null_count
            total += chunk.num_values * (8 if missing else widths[column])
    return total


def _ipc_estimate(path: Path, selection: _Selection, cap: int) -> Estimate | None:
    """The selected columns' decoded bytes in an IPC file or stream; None for Feather v1."""
    indices = [selection.schema.get_field_index(column) for column in selection.chosen]
    options = ipc.IpcReadOptions(included_fields=indices)
    types = [selection.schema.field(column).type for column in selection.chosen]
    fixed = all(_is_number(t) or pa.types.is_fixed_size_list(t) for t in types)
    try:
        with pa.OSFile(str(path), "rb") as source:
            reader = ipc.open_file(source, options=options)
            if fixed:
                row_bytes = sum(
                    _width(t) * (t.list_size if pa.types.is_fixed_size_list(t) else 1)
                    for t in types
                )
                return Estimate(int(reader.count_rows()) * row_bytes, False)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            return _batch_estimate(batches, cap)
    except (pa.ArrowInvalid, OSError):
        pass
    try:
        with pa.OSFile(str(path), "rb") as source:
            return _batch_estimate(ipc.open_stream(source, options=options), cap)
    except (pa.ArrowInvalid, OSError):
        return None


def _batch_estimate(batches: Iterable[Any], cap: int) -> Estimate:
    """The bytes of ``batches`` (each decoded, then dropped), until the total is past ``cap``."""
    total = 0
    for batch in batches:
        total += sum(_column_bytes(column) for column in batch.columns)
        if total > cap:
            return Estimate(total, False, at_least=True)
    return Estimate(total, False)


def _column_bytes(column: Any) -> int:
    """The bytes a decoded column becomes in NumPy: its values (or a list's) × width."""
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return len(column.flatten()) * _width(column.type)
    if pa.types.is_fixed_size_list(column.type):
        return len(column) * column.type.list_size * _width(column.type)
    return len(column) * _width(column.type)


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


def _read_ipc(path: Path, columns: list[str], schema: Any) -> Any:
    """The selected columns of an IPC file or stream (or Feather v1), no other decoded."""
    options = ipc.IpcReadOptions(included_fields=[schema.get_field_index(c) for c in columns])
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_file(source, options=options).read_all().select(columns)
    except (pa.ArrowInvalid, OSError):
        pass
    try:
        with pa.memory_map(str(path), "r") as source:
            return ipc.open_stream(source, options=options).read_all().select(columns)
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
