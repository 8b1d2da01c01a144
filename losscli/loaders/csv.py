"""Delimited-text loader (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``) through pyarrow."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import LoadedArray


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read a delimited text file; the delimiter follows the suffix (tab for .tsv)."""
    if path.stat().st_size == 0:
        raise LoadError(str(path), "is empty (0 bytes)")
    try:
        data = path.read_bytes()
        if path.suffix.lower() == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError) as error:
        raise LoadError(str(path), f"cannot be decompressed ({error})") from None
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    delimiter = "\t" if suffixes and suffixes[-1] == ".tsv" else None
    return _parse(data, selector, display, str(path), delimiter)


def read_bytes(data: bytes, selector: str | None, display: str) -> LoadedArray:
    """Read CSV text from memory (standard input)."""
    return _parse(data, selector, display, display, None)


def _sniff_delimiter(first_line: str) -> str:
    for candidate in ("\t", ",", ";"):
        if candidate in first_line:
            return candidate
    return " " if " " in first_line.strip() else ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse(
    data: bytes, selector: str | None, display: str, name: str, delimiter: str | None
) -> LoadedArray:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    try:
        text_start = data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        raise LoadError(name, "is not text (binary data in a CSV file?)") from None
    if "\x00" in text_start:
        raise LoadError(name, "is not text (binary data in a CSV file?)")
    lines = [line for line in text_start.splitlines() if line.strip()]
    if not lines:
        raise LoadError(name, "holds no data (only blank lines)")
    delimiter = delimiter or _sniff_delimiter(lines[0])
    first_cells = [cell.strip().strip('"') for cell in lines[0].split(delimiter)]
    has_header = not all(_is_number(cell) for cell in first_cells if cell != "")
    if has_header and len(lines) == 1:
        raise LoadError(name, "has a header but no rows of data")
    read_options = pacsv.ReadOptions(autogenerate_column_names=not has_header)
    parse_options = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data), read_options=read_options, parse_options=parse_options
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise LoadError(name, _arrow_message(str(error))) from None
    columns = list(table.column_names)
    if not has_header:
        columns = [str(i) for i in range(len(columns))]
        table = table.rename_columns(columns)
    chosen = _select(columns, selector, name, has_header)
    arrays = []
    for column in chosen:
        chunked = table.column(column)
        if not (
            pa.types.is_integer(chunked.type)
            or pa.types.is_floating(chunked.type)
            or pa.types.is_boolean(chunked.type)
        ):
            raise LoadError(name, _text_cell_message(chunked, column, has_header))
        if chunked.null_count:
            arrays.append(chunked.to_numpy(zero_copy_only=False).astype(np.float64))
        else:
            arrays.append(chunked.to_numpy())
    if table.num_rows == 0:
        raise LoadError(name, "has a header but no rows of data")
    values = arrays[0] if len(arrays) == 1 else np.column_stack(arrays)
    return LoadedArray(values=np.ascontiguousarray(values), source=display, columns=tuple(chosen))


def _select(columns: list[str], selector: str | None, name: str, has_header: bool) -> list[str]:
    if selector is None:
        return columns
    chosen = []
    for part in (p.strip() for p in selector.split(",")):
        if part in columns:
            chosen.append(part)
        elif part.lstrip("-").isdigit() and -len(columns) <= int(part) < len(columns):
            chosen.append(columns[int(part)])
        else:
            have = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            kind = "column" if has_header else "column index"
            raise LoadError(name, f"has no {kind} {part!r} (it has: {have})")
    return chosen


def _text_cell_message(chunked: object, column: str, has_header: bool) -> str:
    import pyarrow.compute as pc

    values = chunked.to_pylist()  # type: ignore[attr-defined]
    for row, cell in enumerate(values, start=1):
        if cell is None:
            continue
        if not _is_number(str(cell)):
            label = f"column '{column}'" if has_header else f"column {column}"
            return f"row {row}, {label}: {str(cell)!r} is not a number"
    del pc
    return f"column {column!r} is not numeric"


def _arrow_message(message: str) -> str:
    # pyarrow: "CSV parse error: Expected 2 columns, got 3: 1,2,3" → a short, plain sentence
    first = message.splitlines()[0]
    if "Expected" in first and "columns, got" in first:
        return first.replace("CSV parse error: ", "rows have different numbers of fields: ")
    return first
