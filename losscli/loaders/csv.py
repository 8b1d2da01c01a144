"""Delimited-text loader (``.csv``, ``.tsv``, ``.txt``, and each ``.gz``) through pyarrow.

pyarrow's multithreaded reader does the parsing; the first 64 KiB are inspected in Python
to find the delimiter, whether the first row is a header, and which columns to convert.
When pyarrow refuses the file, a second (slow, error-path only) pass with :mod:`csv` finds
the row and column to name in the message.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import LoadedArray

_SAMPLE_BYTES = 1 << 16
# pyarrow parses blocks of this size in parallel (its default; 4 and 16 MiB were slower)
_BLOCK_BYTES = 1 << 20
# Cells read as missing (NaN). "nan", "NaN", "inf" are not here: they parse as floats.
_MISSING = ("", "NA", "N/A", "n/a", "NULL", "null", "None")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class _Layout:
    delimiter: str
    names: list[str]  # column names (the header, or "0", "1", ... without one)
    has_header: bool
    squeeze_spaces: bool  # whitespace-aligned text: runs of blanks are one delimiter
    skip_rows: int  # physical lines up to and including the header


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read a delimited text file: tab for ``.tsv``, otherwise sniffed from the first line."""
    name = str(path)
    if path.stat().st_size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    compressed = path.suffix.lower() == ".gz"
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""

    def open_binary() -> io.BufferedIOBase:
        if compressed:
            return gzip.GzipFile(path, "rb")
        return path.open("rb")

    sample = _sample(open_binary, name)
    layout = _layout(sample, name, suffix)
    if layout.squeeze_spaces:
        with open_binary() as stream:
            data = _read_all(stream, name)
        squeezed = _squeeze(data)
        return _parse(_Inputs.of_bytes(squeezed), layout, selector, display, name)
    inputs = _Inputs(lambda: _arrow_input(path, compressed), open_binary)
    return _parse(inputs, layout, selector, display, name)


def read_bytes(data: bytes, selector: str | None, display: str) -> LoadedArray:
    """Read CSV text (optionally gzipped) from memory (standard input)."""
    name = "<stdin>"
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise LoadError(name, f"is not valid gzip data ({error})") from None
    sample = data[:_SAMPLE_BYTES]
    layout = _layout(sample, name, "")
    if layout.squeeze_spaces:
        data = _squeeze(data)
    return _parse(_Inputs.of_bytes(data), layout, selector, display, name)


@dataclass(frozen=True)
class _Inputs:
    """Two ways to reopen the same text: for pyarrow (fast) and for :mod:`csv` (messages)."""

    arrow: Callable[[], Any]
    python: Callable[[], io.BufferedIOBase]

    @staticmethod
    def of_bytes(data: bytes) -> _Inputs:
        return _Inputs(lambda: io.BytesIO(data), lambda: io.BytesIO(data))


def _arrow_input(path: Path, compressed: bool) -> Any:
    import pyarrow as pa

    return pa.input_stream(str(path), compression="gzip" if compressed else None)


def _sample(open_binary: Callable[[], io.BufferedIOBase], name: str) -> bytes:
    try:
        with open_binary() as stream:
            return stream.read(_SAMPLE_BYTES)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise LoadError(name, f"is not valid gzip data ({error})") from None


def _read_all(stream: io.BufferedIOBase, name: str) -> bytes:
    try:
        return stream.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise LoadError(name, f"is not valid gzip data ({error})") from None


def _squeeze(data: bytes) -> bytes:
    """Whitespace-aligned columns → single spaces, no leading or trailing blanks."""
    data = re.sub(rb"[ \t]+", b" ", data)
    return re.sub(rb"(?m)^ | (?=\r?$)", b"", data)


def _layout(sample: bytes, name: str, suffix: str) -> _Layout:
    """Delimiter, header and column names, from the first 64 KiB."""
    if not sample:
        raise LoadError(name, "holds no data (0 bytes of text)")
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(sample, final=False)
    except UnicodeDecodeError:
        raise LoadError(
            name, "is not text (binary data in a CSV file?)", tip=_binary_tip(sample)
        ) from None
    if "\x00" in text:
        raise LoadError(name, "is not text (binary data in a CSV file?)", tip=_binary_tip(sample))
    physical = re.split(r"\r\n|\r|\n", text)  # the line breaks pyarrow knows
    if len(sample) == _SAMPLE_BYTES and len(physical) > 1:
        physical = physical[:-1]  # the last line may be cut in the middle
    lines = [line for line in physical if line.strip()]
    if not lines:
        raise LoadError(name, "holds no data (only blank lines)")
    first_at = next(i for i, line in enumerate(physical) if line.strip())
    delimiter, squeeze = _delimiter(lines[0], suffix)
    rows = list(csv.reader(_squeezed_lines(lines[:2], squeeze), delimiter=delimiter))
    first = [cell.strip() for cell in rows[0]] if rows and rows[0] else [""]
    has_header = not all(_is_numberlike(cell) for cell in first)
    names = _unique(first) if has_header else [str(i) for i in range(len(first))]
    if has_header and len(lines) == 1 and len(sample) < _SAMPLE_BYTES:
        raise LoadError(name, "has a header but no rows of data")
    return _Layout(delimiter, names, has_header, squeeze, first_at + 1 if has_header else 0)


def _unique(names: list[str]) -> list[str]:
    """Header names, a repeated one numbered (``a``, ``a.1``) so each column has a name."""
    seen: dict[str, int] = {}
    unique = []
    for column in names:
        count = seen.get(column, 0)
        seen[column] = count + 1
        unique.append(column if count == 0 else f"{column}.{count}")
    return unique if len(set(unique)) == len(unique) else [str(i) for i in range(len(names))]


def _squeezed_lines(lines: list[str], squeeze: bool) -> list[str]:
    return [" ".join(line.split()) for line in lines] if squeeze else lines


def _delimiter(first_line: str, suffix: str) -> tuple[str, bool]:
    if suffix in (".tsv", ".tab"):
        return "\t", False
    candidates = (",", "\t", ";") if suffix == ".csv" else ("\t", ",", ";")
    for candidate in candidates:
        if candidate in first_line:
            return candidate, False
    if " " in first_line.strip():
        return " ", True
    return ",", False


def _binary_tip(sample: bytes) -> str:
    if sample.startswith(b"\x93NUMPY"):
        return "it is a NumPy file; name it .npy"
    if sample.startswith(b"PK"):
        return "it is a zip archive (.npz or a torch .pt file?); name it accordingly"
    if sample.startswith(b"PAR1"):
        return "it is a Parquet file; name it .parquet"
    if sample.startswith(_GZIP_MAGIC):
        return "it is gzip-compressed; name it .csv.gz"
    return ""


def _is_numberlike(cell: str) -> bool:
    """A number pyarrow parses, or a missing-value marker; ``1_000`` is not a number."""
    cell = cell.strip()
    if cell in _MISSING:
        return True
    if "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return cell.lower() in ("true", "false")
    return True


def _parse(
    inputs: _Inputs,
    layout: _Layout,
    selector: str | None,
    display: str,
    name: str,
) -> LoadedArray:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    chosen = _select(layout, selector, name)
    read_options = pacsv.ReadOptions(
        column_names=layout.names,
        skip_rows=layout.skip_rows,
        block_size=_BLOCK_BYTES,
    )
    parse_options = pacsv.ParseOptions(delimiter=layout.delimiter, ignore_empty_lines=True)
    convert_options = pacsv.ConvertOptions(
        include_columns=chosen,
        null_values=list(_MISSING),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        with inputs.arrow() as stream:
            table = pacsv.read_csv(
                stream,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowKeyError) as error:
        raise LoadError(name, _diagnose_parse(inputs.python, layout, name, str(error))) from None
    except (OSError, EOFError, zlib.error) as error:
        raise LoadError(name, f"is not valid gzip data ({error})") from None
    if table.num_rows == 0:
        if layout.has_header:
            raise LoadError(name, "has a header but no rows of data")
        raise LoadError(name, "holds no rows of data")
    for column in chosen:
        column_type = table.column(column).type
        if not (
            pa.types.is_integer(column_type)
            or pa.types.is_floating(column_type)
            or pa.types.is_boolean(column_type)
        ):
            raise LoadError(name, _diagnose_cell(inputs.python, layout, column, column_type))
    values = _to_numpy(table, chosen)
    return LoadedArray(values=values, source=display, columns=tuple(chosen))


def _to_numpy(table: Any, chosen: list[str]) -> np.ndarray:
    """One column → [rows]; several → [rows, columns], filled chunk by chunk (one copy)."""
    dtypes = []
    for column in chosen:
        chunked = table.column(column)
        dtype = _numpy_dtype(chunked.type)
        if chunked.null_count:
            dtype = np.dtype(np.float64)  # a missing cell is NaN
        dtypes.append(dtype)
    if len(chosen) == 1:
        chunked = table.column(chosen[0])
        if chunked.null_count:
            return np.asarray(chunked.to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.asarray(chunked.to_numpy(zero_copy_only=False), dtype=dtypes[0])
    out = np.empty((table.num_rows, len(chosen)), dtype=np.result_type(*dtypes))
    for index, column in enumerate(chosen):
        start = 0
        for chunk in table.column(column).chunks:
            stop = start + len(chunk)
            out[start:stop, index] = chunk.to_numpy(zero_copy_only=False)
            start = stop
    return out


def _numpy_dtype(arrow_type: Any) -> np.dtype:
    """The NumPy dtype of an Arrow number type (without importing pandas, as to_pandas_dtype does)."""
    import pyarrow as pa

    return np.asarray(pa.array([], type=arrow_type).to_numpy(zero_copy_only=False)).dtype


def _select(layout: _Layout, selector: str | None, name: str) -> list[str]:
    names = layout.names
    if selector is None:
        return list(names)
    stripped = [n.strip() for n in names]
    chosen: list[str] = []
    for part in (p.strip() for p in selector.split(",")):
        if part in names:
            chosen.append(part)
        elif part in stripped:
            chosen.append(names[stripped.index(part)])
        elif re.fullmatch(r"-?\d+", part) and -len(names) <= int(part) < len(names):
            chosen.append(names[int(part)])
        else:
            if layout.has_header:
                have = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                raise LoadError(name, f"has no column {part!r} (it has: {have})")
            raise LoadError(
                name,
                f"has no column {part} (it has {len(names)} columns, 0 to {len(names) - 1}, "
                "and no header)",
            )
    if len(set(chosen)) != len(chosen):
        raise LoadError(name, f"the selector {selector!r} names a column twice")
    return chosen


def _records(
    open_input: Callable[[], io.BufferedIOBase], layout: _Layout
) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record, header included; error path only."""
    with open_input() as stream:
        text = io.TextIOWrapper(
            cast(Any, stream), encoding="utf-8-sig", errors="replace", newline=""
        )
        lines: Iterator[str] = text
        if layout.squeeze_spaces:
            lines = (" ".join(line.split()) + "\n" for line in text)
        reader = csv.reader(lines, delimiter=layout.delimiter)
        start = 1
        for cells in reader:
            if cells and any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1


def _diagnose_parse(
    open_input: Callable[[], io.BufferedIOBase], layout: _Layout, name: str, arrow_message: str
) -> str:
    """'row 5 has 3 fields, row 1 has 2', or pyarrow's own words when no row explains it."""
    try:
        records = _records(open_input, layout)
        first_line, first_cells = next(records)
        for line, cells in records:
            if len(cells) != len(first_cells):
                return (
                    f"row {line} has {len(cells)} field{'s' * (len(cells) != 1)}, "
                    f"row {first_line} has {len(first_cells)}"
                )
    except (StopIteration, csv.Error, OSError, EOFError, zlib.error):
        pass
    detail = " ".join(arrow_message.split())[:160].replace("CSV parse error: ", "")
    return f"cannot be parsed as CSV ({detail})"


def _diagnose_cell(
    open_input: Callable[[], io.BufferedIOBase], layout: _Layout, column: str, column_type: object
) -> str:
    """'row 3, column 'label': 'cat' is not a number' for the first offending cell."""
    index = layout.names.index(column)
    label = f"column {column!r}" if layout.has_header else f"column {column}"
    try:
        records = _records(open_input, layout)
        if layout.has_header:
            next(records)
        for line, cells in records:
            cell = cells[index] if index < len(cells) else ""
            if not _is_numberlike(cell):
                return f"row {line}, {label}: {cell.strip()!r} is not a number"
    except (StopIteration, csv.Error, OSError, EOFError, zlib.error):
        pass
    if str(column_type) == "null":
        return f"{label} is empty (no numbers at all)"
    return f"{label} holds {column_type} values, not numbers"
