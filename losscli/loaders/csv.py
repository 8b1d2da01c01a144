"""Delimited-text loader (``.csv``, ``.tsv``, ``.txt``, and each ``.gz``) through pyarrow.

pyarrow's multithreaded reader does the parsing; the first 64 KiB are inspected in Python
to find the delimiter, whether the first row is a header, and which columns to convert.
When pyarrow refuses the file, a second (slow, error-path only) pass with :mod:`csv` finds
the row and column to name in the message.

:class:`CsvChunks` reads the same file a block of rows at a time through pyarrow's
streaming reader, with the same layout, the same pyarrow options, the same column
selection and the same dtype rules, so a streamed file is read exactly as it is read whole.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from losscli.errors import LoadError
from losscli.loaders import (
    GZIP_MAGIC,
    TEXT_VALUE_FACTOR,
    ChunkBuffers,
    Estimate,
    LoadedArray,
    size_text,
)

_SAMPLE_BYTES = 1 << 16
# pyarrow parses blocks of this size in parallel (its default; 4 and 16 MiB were slower)
_BLOCK_BYTES = 1 << 20
# the streaming reader's block, at most: what one parsed batch holds (measured on 100 MB of
# numbers: 1 MiB 10% slower, 8 MiB no faster)
_STREAM_BLOCK_BYTES = 4 << 20
# pyarrow's streaming reader reads ahead in a background thread, up to 32 blocks (Arrow's
# default background queue); measured on 32 MB of text, its pool peaks near 28 blocks (115 MB
# at 4 MiB, 4.7 MB at 64 KiB, no slower). A budget holds this many blocks, so that the
# read-ahead stays under half of it...
_BLOCKS_PER_BUDGET = 64
# ...down to blocks of this size
_LEAST_STREAM_BLOCK = 64 << 10
# Cells read as missing (NaN). "nan", "NaN", "inf" are not here: they parse as floats.
_MISSING = ("", "NA", "N/A", "n/a", "NULL", "null", "None")
# Cells read as booleans; "1" and "0" stay numbers (pyarrow's defaults would make a column
# of 0/1 with one TRUE in it a bool column, and a column typed int64 could not become one)
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
# the longest line read: the first lines must fit in the sample that finds the layout, and
# every row in one block of pyarrow's (which grows to hold it)
_MAX_LINE_BYTES = 1 << 28
_BOM = codecs.BOM_UTF8
# how much text the blank-squeezing reader (and the line counter) takes at a time
_SQUEEZE_BYTES = 1 << 20


@dataclass(frozen=True)
class _Layout:
    delimiter: str
    names: list[str]  # column names (the header, or "0", "1", ... without one)
    has_header: bool
    squeeze_spaces: bool  # whitespace-aligned text: runs of blanks are one delimiter
    skip_rows: int  # physical lines up to and including the header
    line_bytes: int  # the longest whole line of the sample (pyarrow's blocks must hold a row)

    @property
    def blank_rows(self) -> bool:
        """A blank line is a row: one column, where an empty line is an empty cell (what
        pandas writes for a missing value); several columns write separators (``,,``)."""
        return len(self.names) == 1


@dataclass(frozen=True)
class _Inputs:
    """Ways to reopen the same text, each from its start.

    Attributes:
        parsed: the bytes pyarrow parses, as a Python stream: the file's text, decompressed,
            with runs of blanks squeezed for whitespace-aligned text. :mod:`csv` reads it for
            messages, so their row numbers are pyarrow's lines.
        arrow: the same bytes, opened for pyarrow (a native stream where one exists).
    """

    parsed: Callable[[], BinaryIO]
    arrow: Callable[[], Any]


def read_path(path: Path, selector: str | None, display: str) -> LoadedArray:
    """Read a delimited text file: tab for ``.tsv``, otherwise sniffed from the first line."""
    name = str(path)
    inputs, layout = _open_path(path, name)
    return _parse(inputs, layout, selector, display, name)


def read_path_columns(path: Path, selections: list[tuple[str | None, str]]) -> list[LoadedArray]:
    """Several selections of one delimited text file (``t.csv:a``, ``t.csv:b``), parsed once.

    Each comes out as :func:`read_path` gives it; the file is parsed once for the columns
    they name together. ``selections``: (selector, display) pairs, in the order wanted.
    """
    name = str(path)
    inputs, layout = _open_path(path, name)
    chosen = [_select(layout, selector, name) for selector, _ in selections]
    table = _table(
        inputs, layout, list(dict.fromkeys(c for columns in chosen for c in columns)), name
    )
    return [
        LoadedArray(
            values=_to_numpy(table, columns), source=display, columns=tuple(columns), from_text=True
        )
        for columns, (_, display) in zip(chosen, selections, strict=True)
    ]


def read_bytes(
    data: bytes, selector: str | None, display: str, name: str = "<stdin>"
) -> LoadedArray:
    """Read CSV text (optionally gzipped) from memory (standard input, a pipe).

    The caller bounds what gzipped ``data`` may decompress to (:func:`gzip_text_bytes`).
    """
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise LoadError(name, f"is not valid gzip data ({error})") from None
    layout = _layout(_sample(lambda: io.BytesIO(data), name), name, "", piped=True)
    inputs = _inputs(lambda: io.BytesIO(data), None, layout)
    return _parse(inputs, layout, selector, display, name)


def estimate(path: Path, selector: str | None, size: int, cap: int) -> Estimate:
    """Text streams; it is judged at :data:`TEXT_VALUE_FACTOR` bytes of values per byte.

    A plain file by its size, at no cost; a gzipped one by its decompressed size, counted
    only until it is past ``cap`` (so the count costs at most that much decompression).

    Raises:
        LoadError: a ``.gz`` file that is not valid gzip data before ``cap``.
    """
    if path.suffix.lower() != ".gz":
        return Estimate(size * TEXT_VALUE_FACTOR, True)
    limit = cap // TEXT_VALUE_FACTOR
    with path.open("rb") as compressed:
        text_bytes = gzip_text_bytes(compressed, limit, str(path))
    return Estimate(text_bytes * TEXT_VALUE_FACTOR, True, at_least=text_bytes > limit)


def gzip_text_bytes(compressed: BinaryIO, limit: int, name: str) -> int:
    """The decompressed size of gzip data, or a number past ``limit`` once it is past it.

    The text is decompressed a block at a time and dropped, so this holds one block and
    decompresses at most ``limit`` bytes and a block.

    Raises:
        LoadError: the data are not valid gzip data (as far as they are read).
    """
    counted = 0
    try:
        with gzip.GzipFile(fileobj=compressed, mode="rb") as text:
            while counted <= limit and (block := text.read(_SQUEEZE_BYTES)):
                counted += len(block)
    except (OSError, EOFError, zlib.error) as error:
        raise LoadError(name, f"is not valid gzip data ({error})") from None
    return counted


def _open_path(path: Path, name: str) -> tuple[_Inputs, _Layout]:
    """The layout of a text file and how to reopen it: one decision for both readers."""
    if path.stat().st_size == 0:
        raise LoadError(name, "is empty (0 bytes)")
    compressed = path.suffix.lower() == ".gz"
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""

    def open_binary() -> BinaryIO:
        if compressed:
            return cast(BinaryIO, gzip.GzipFile(path, "rb"))
        return path.open("rb")

    layout = _layout(_sample(open_binary, name), name, suffix)

    def open_arrow() -> Any:
        import pyarrow as pa

        return pa.input_stream(str(path), compression="gzip" if compressed else None)

    return _inputs(open_binary, open_arrow, layout), layout


def _inputs(
    open_binary: Callable[[], BinaryIO], open_arrow: Callable[[], Any] | None, layout: _Layout
) -> _Inputs:
    if layout.blank_rows:  # blank lines are rows, except those that end the text

        def trimmed() -> BinaryIO:
            return cast(BinaryIO, io.BufferedReader(_EndTrimmed(open_binary())))

        return _Inputs(trimmed, trimmed)
    if layout.squeeze_spaces:

        def squeezed() -> BinaryIO:
            return cast(BinaryIO, io.BufferedReader(_Squeezed(open_binary())))

        return _Inputs(squeezed, squeezed)
    return _Inputs(open_binary, open_arrow or open_binary)


@dataclass(frozen=True)
class _Sample:
    """The start of a text, from which its layout is found.

    Attributes:
        data: the first 64 KiB, or more when its first two lines are longer.
        complete: ``data`` is the whole text.
    """

    data: bytes
    complete: bool


def _sample(open_binary: Callable[[], BinaryIO], name: str) -> _Sample:
    """The first 64 KiB of text, grown until it holds two whole lines (a file of 10,000
    classes has lines longer than that), or the whole text when it is shorter.

    Raises:
        LoadError: not valid gzip data, or no line break in the first 256 MB.
    """
    try:
        with open_binary() as stream:
            data = stream.read(_SAMPLE_BYTES)
            complete = len(data) < _SAMPLE_BYTES
            while not complete and not _holds_two_lines(data):
                if len(data) >= _MAX_LINE_BYTES:
                    raise LoadError(
                        name,
                        f"has a line longer than {size_text(_MAX_LINE_BYTES)} (is it text?)",
                    )
                more = stream.read(len(data))
                complete = len(more) < len(data)
                data += more
            return _Sample(data, complete)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise LoadError(name, f"is not valid gzip data ({error})") from None


def _holds_two_lines(data: bytes) -> bool:
    """Whether ``data`` holds two whole lines after its blank start (and byte-order mark)."""
    body = data.removeprefix(_BOM).lstrip(b" \t\r\n\x0b\x0c")
    return len(re.split(rb"\r\n|\r|\n", body, maxsplit=2)) > 2


def _longest_line(data: bytes) -> int:
    """The longest line of ``data`` in bytes (the last one too, whole or not)."""
    return max(len(line) for line in re.split(rb"\r\n|\r|\n", data))


# --- whitespace-aligned text ------------------------------------------------------------


def _squeeze(data: bytes) -> bytes:
    """Whitespace-aligned columns → single spaces, no blanks at the start or end of a line.

    Blanks are ASCII whitespace within a line; lines end with ``\\n``, ``\\r\\n`` or ``\\r``
    (as for pyarrow) and each comes out ending with ``\\n``, so lines keep their numbers.
    Applied to pieces cut just after a line break, it gives the same bytes as applied to the
    whole text (what :class:`_Squeezed` relies on).
    """
    lines = [b" ".join(line.split()) for line in data.splitlines()]
    lines.append(b"")
    return b"\n".join(lines) if len(lines) > 1 else b""


class _Filtered(io.RawIOBase):
    """The text of ``raw`` as a subclass's :meth:`_more` rewrites it, a block at a time."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._out = bytearray()  # rewritten text not handed out yet
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while len(self._out) < len(view) and not self._ended:
            self._more()
        count = min(len(view), len(self._out))
        view[:count] = self._out[:count]
        del self._out[:count]
        return count

    def _more(self) -> None:
        """Read the next block of ``raw`` into ``_out``; set ``_ended`` at its end."""
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _Squeezed(_Filtered):
    """The text of ``raw`` squeezed by :func:`_squeeze` as it is read, a block at a time.

    The UTF-8 byte-order mark is dropped first (it is never part of a cell), so the blanks
    after it are at the start of the line. Never holds more than a block and a line.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._carry = b""  # raw text after the last line break read so far
        self._started = False

    def _more(self) -> None:
        block = self._raw.read(_SQUEEZE_BYTES)
        data = self._carry + block
        if not self._started:
            if block and len(data) < len(_BOM):
                self._carry = data  # too short to tell whether it starts with a BOM
                return
            self._started = True
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if not block:
            self._out += _squeeze(data)
            self._carry = b""
            self._ended = True
            return
        # after the last line break; not after a \r that ends the block: a \n may follow
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
        self._out += _squeeze(data[:cut])
        self._carry = data[cut:]


class _EndTrimmed(_Filtered):
    """The text of ``raw`` without the blank lines (and blanks) that end it, as it is read.

    In a one-column text a blank line is an empty cell, a missing value; those after the
    last value are the end of the file, not rows. Blanks are held back until more text
    follows them, so nothing but the end changes; never holds more than a block and its
    blank end.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._held = b""  # blanks read but not handed out: the end, unless text follows

    def _more(self) -> None:
        block = self._raw.read(_SQUEEZE_BYTES)
        if not block:
            self._ended = True
            if self._held:
                self._out += b"\n"  # the last value's line break
            return
        data = self._held + block
        kept = len(data.rstrip(_BLANKS))
        self._out += data[:kept]
        self._held = data[kept:]


_BLANKS = b" \t\r\n\x0b\x0c"


# --- layout: delimiter and the one header rule ------------------------------------------


def _layout(found: _Sample, name: str, suffix: str, piped: bool = False) -> _Layout:
    """Delimiter, header and column names, from the first 64 KiB (or the first lines).

    ``piped``: the text came from standard input or a pipe (a tip cannot say to rename it).
    """
    sample = found.data
    if not sample:
        raise LoadError(name, "holds no data (0 bytes of text)")
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(sample, final=False)
    except UnicodeDecodeError:
        raise LoadError(
            name, "is not text (binary data in a CSV file?)", tip=_binary_tip(sample, piped)
        ) from None
    if "\x00" in text:
        raise LoadError(
            name, "is not text (binary data in a CSV file?)", tip=_binary_tip(sample, piped)
        )
    physical = re.split(r"\r\n|\r|\n", text)  # the line breaks pyarrow knows
    if not found.complete and len(physical) > 1:
        physical = physical[:-1]  # the last line may be cut in the middle
    lines = [line for line in physical if line.strip()]
    if not lines:
        raise LoadError(name, "holds no data (only blank lines)")
    first_at = next(i for i, line in enumerate(physical) if line.strip())
    comment = _comment(lines[0])
    if comment is not None:  # np.savetxt's header: '# pred,true'
        lines = [comment, *lines[1:]]
    # a comment may be free text: the delimiter is the data's
    sniffed = lines[1] if comment is not None and len(lines) > 1 else lines[0]
    delimiter, squeeze = _delimiter(sniffed, suffix)
    rows = [row for row in csv.reader(_squeezed_lines(lines, squeeze), delimiter=delimiter) if row]
    first = rows[0] if rows else [""]
    width = len(rows[1]) if len(rows) > 1 else len(first)
    has_header = _is_header(first, rows[1:]) and (comment is None or len(first) == width)
    names = _unique([c.strip() for c in first]) if has_header else [str(i) for i in range(width)]
    if (has_header or comment is not None) and len(lines) == 1 and found.complete:
        raise LoadError(name, "has a header but no rows of data")
    return _Layout(
        delimiter,
        names,
        has_header,
        squeeze,
        first_at + 1 if has_header or comment is not None else first_at,
        _longest_line(sample),
    )


def _comment(line: str) -> str | None:
    """The text of a first line that is a comment (``# pred,true``, what ``np.savetxt``
    writes for ``header=``), or None. Only the first line can be one: a comment is read as
    a header when it names every column (the one header rule), and is skipped otherwise."""
    stripped = line.lstrip().removeprefix("\ufeff")
    return stripped[1:].strip() if stripped.startswith("#") else None


def _is_header(first: list[str], later: list[list[str]]) -> bool:
    """The one header rule (SPEC): is the first row of a text file a header?

    It is when one of its cells is not a number and the cells below that cell are numbers
    (judged by the first cell below it that is not missing; a column missing everywhere
    below counts as numbers). Missing cells (empty, ``NA``, ...) and ``NaN``, ``inf``,
    ``-inf`` are numbers; ``TRUE``/``FALSE`` are not. A name over a column of TRUE/FALSE is
    a header too, so a boolean column can have a name; a TRUE over TRUE/FALSE is data.

    Judged cell by cell, not row by row, so that a file with a text column (ids, say) next
    to its numbers keeps its header and ``file.csv:pred`` still selects by name. When no
    cell qualifies (``a,b`` over ``x,y``), the first row is data and a column that holds
    text is refused, naming its first cell that is not a number.
    """
    for index, cell in enumerate(first):
        kind = _kind(cell)
        if kind in ("number", "missing"):
            continue
        below = next(
            (
                found
                for row in later
                if index < len(row) and (found := _kind(row[index])) != "missing"
            ),
            "number",
        )
        if below == "number" or (kind == "text" and below == "boolean"):
            return True
    return False


def _kind(cell: str) -> str:
    """``missing``, ``number``, ``boolean`` or ``text``: what pyarrow reads a cell as."""
    cell = cell.strip()
    if cell in _MISSING:
        return "missing"
    if cell in _TRUE or cell in _FALSE:
        return "boolean"
    return "number" if _is_number(cell) else "text"


def _is_number(cell: str) -> bool:
    """A number pyarrow parses, or a missing value; ``1_000`` and ``TRUE`` are not numbers."""
    cell = cell.strip()
    if cell in _MISSING:
        return True
    if "_" in cell or not cell.isascii():
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


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
    return [_squeeze_line(line) for line in lines] if squeeze else lines


def _squeeze_line(line: str) -> str:
    """One line of text as :func:`_squeeze` leaves it (blanks: ASCII whitespace)."""
    return " ".join(part for part in re.split(r"[ \t\x0b\x0c]+", line) if part)


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


def _binary_tip(sample: bytes, piped: bool = False) -> str:
    """What the binary data looks like, and what to do: rename a file, or for standard input
    and pipes (which have no name to change), the ``--stdin-format`` to give."""
    if sample.startswith(b"PK"):
        if piped:
            return "it is a zip archive; for an .npz file give --stdin-format npz"
        return "it is a zip archive (.npz or a torch .pt file?); name it accordingly"
    if sample.startswith(b"PAR1"):
        if piped:
            return "it is a Parquet file, which cannot come from a pipe; save it to a file"
        return "it is a Parquet file; name it .parquet"
    if sample.startswith(b"\x93NUMPY") and not piped:  # piped .npy is read as npy at once
        return "it is a NumPy file; name it .npy"
    if sample.startswith(GZIP_MAGIC) and not piped:  # piped gzip text is decompressed
        return "it is gzip-compressed; name it .csv.gz"
    return ""


# --- pyarrow: one set of options, one dtype rule ----------------------------------------


def _arrow_options(
    layout: _Layout,
    include: list[str],
    block_size: int,
    skip_rows_after_names: int = 0,
    column_types: dict[str, Any] | None = None,
) -> tuple[Any, Any, Any]:
    """pyarrow's read, parse and convert options for ``layout``: the whole loader's and the
    chunk reader's, so that both read every cell the same way."""
    from pyarrow import csv as pacsv

    read_options = pacsv.ReadOptions(
        column_names=layout.names,
        skip_rows=layout.skip_rows,
        skip_rows_after_names=skip_rows_after_names,
        block_size=block_size,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=layout.delimiter, ignore_empty_lines=not layout.blank_rows
    )
    convert_options = pacsv.ConvertOptions(
        include_columns=include,
        column_types=column_types or {},
        null_values=list(_MISSING),
        true_values=list(_TRUE),
        false_values=list(_FALSE),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return read_options, parse_options, convert_options


def block_bytes(layout: _Layout, least: int) -> int:
    """pyarrow's block size for ``layout``: ``least``, or room for two of its longest lines.

    A row must fit in one block; a longer row further down makes pyarrow say that it
    "straddles two block boundaries", and the read is retried with blocks four times the
    size (:func:`_row_outgrew`), on both paths.
    """
    return max(least, 1 << (2 * layout.line_bytes).bit_length())


def stream_block_bytes(budget: int | None) -> int:
    """The streaming reader's block for ``budget``: its read-ahead within half of it."""
    if budget is None:
        return _STREAM_BLOCK_BYTES
    return min(_STREAM_BLOCK_BYTES, max(_LEAST_STREAM_BLOCK, budget // _BLOCKS_PER_BUDGET))


def _row_outgrew(message: str, block: int) -> bool:
    """Whether pyarrow refused a row longer than its block (and a larger one may hold it)."""
    return "block size" in message and block < 2 * _MAX_LINE_BYTES


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
    )


def _column_numpy(column: Any) -> np.ndarray:
    """One Arrow column (array or chunked) as NumPy: a missing cell makes it float64 with NaN;
    otherwise its own dtype (int64, float64, bool)."""
    import pyarrow as pa

    if column.null_count:
        column = column.cast(pa.float64())
    return np.asarray(column.to_numpy(zero_copy_only=False))


def _parse(
    inputs: _Inputs,
    layout: _Layout,
    selector: str | None,
    display: str,
    name: str,
) -> LoadedArray:
    chosen = _select(layout, selector, name)
    table = _table(inputs, layout, chosen, name)
    values = _to_numpy(table, chosen)
    return LoadedArray(values=values, source=display, columns=tuple(chosen), from_text=True)


def _table(inputs: _Inputs, layout: _Layout, chosen: list[str], name: str) -> Any:
    """The ``chosen`` columns of the whole text as a pyarrow table, each one a number."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    block = block_bytes(layout, _BLOCK_BYTES)
    while True:
        read_options, parse_options, convert_options = _arrow_options(layout, chosen, block)
        try:
            with inputs.arrow() as stream:
                table = pacsv.read_csv(
                    stream,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
            break
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowKeyError) as error:
            if _row_outgrew(str(error), block):
                block *= 4
                continue
            raise LoadError(name, _diagnose_parse(inputs.parsed, layout, str(error))) from None
        except (OSError, EOFError, zlib.error) as error:
            raise LoadError(name, f"is not valid gzip data ({error})") from None
    if table.num_rows == 0:
        raise LoadError(name, _no_rows(layout))
    for column in chosen:
        column_type = table.column(column).type
        if not _is_numeric(column_type):
            raise LoadError(name, _diagnose_cell(inputs.parsed, layout, column, column_type))
    return table


def _no_rows(layout: _Layout) -> str:
    return "has a header but no rows of data" if layout.has_header else "holds no rows of data"


def _to_numpy(table: Any, chosen: list[str]) -> np.ndarray:
    """One column → [rows]; several → [rows, columns] of their ``np.result_type``."""
    if len(chosen) == 1:
        return _column_numpy(table.column(chosen[0]))
    dtypes = [_column_dtype(table.column(column)) for column in chosen]
    out = np.empty((table.num_rows, len(chosen)), dtype=np.result_type(*dtypes))
    for index, column in enumerate(chosen):
        start = 0
        for chunk in table.column(column).chunks:
            stop = start + len(chunk)
            out[start:stop, index] = _column_numpy(chunk)
            start = stop
    return out


def _column_dtype(column: Any) -> np.dtype:
    """The dtype :func:`_column_numpy` gives ``column``, without converting it."""
    if column.null_count:
        return np.dtype(np.float64)  # a missing cell is NaN
    return _numpy_dtype(column.type)


def _numpy_dtype(arrow_type: Any) -> np.dtype:
    """The NumPy dtype of an Arrow number type (without importing pandas, as to_pandas_dtype does)."""
    import pyarrow as pa

    if pa.types.is_null(arrow_type):
        return np.dtype(np.float64)  # a column missing everywhere so far: NaN
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


# --- chunk readers ----------------------------------------------------------------------


def open_chunks(
    path: Path, selections: Sequence[tuple[str | None, str]], budget: int | None = None
) -> list[CsvChunks]:
    """Chunk readers for inputs that are columns of one text file, sharing one parse of it.

    Args:
        path: the file (``.csv``, ``.tsv``, ``.txt``, ``.tab``, each optionally ``.gz``).
        selections: (selector, display) of each input: ``file.csv:pred`` gives
            ``("pred", "file.csv:pred")``.
        budget: the memory budget, which sizes pyarrow's blocks (None: the largest).

    Returns:
        One :class:`CsvChunks` per selection, in order. They read in lockstep: each reads
        once, with the same count, before any reads again.

    Raises:
        LoadError: as :func:`read_path` would for what the start of the file shows (empty,
            binary, a header and no rows, an unknown column, a ragged row or a text cell in
            the first block).
    """
    name = str(path)
    inputs, layout = _open_path(path, name)
    chosen = [_select(layout, selector, name) for selector, _ in selections]
    union = list(dict.fromkeys(column for columns in chosen for column in columns))
    stream = _CsvStream(inputs, layout, union, name, stream_block_bytes(budget))
    return [
        CsvChunks(stream, [union.index(column) for column in columns], display)
        for columns, (_, display) in zip(chosen, selections, strict=True)
    ]


class CsvChunks:
    """One input's columns of a delimited text file, a block of rows at a time.

    A :class:`~losscli.loaders.ChunkReader`: one column gives chunks ``[rows]``, several
    ``[rows, columns]`` of their ``np.result_type``, as the whole loader gives. Inputs on the
    same file share one parse of it (:class:`_CsvStream`) and read in lockstep.
    """

    def __init__(self, stream: _CsvStream, columns: list[int], display: str) -> None:
        self.source = display
        self.from_text = True
        self.sample_shape: tuple[int, ...] = () if len(columns) == 1 else (len(columns),)
        self._stream = stream
        self._columns = columns
        self._steps = 0
        self._buffers = ChunkBuffers()
        self._dtype = np.result_type(*(stream.dtypes[i] for i in columns))
        self._closed = False
        stream.readers += 1

    @property
    def dtype(self) -> np.dtype:
        """The widest dtype of the chunks read so far (before any: the first block's)."""
        return self._dtype

    @property
    def rows(self) -> int | None:
        """The number of rows, known once the file is read to its end."""
        return self._stream.rows

    def read(self, count: int) -> np.ndarray | None:
        """The next ``count`` rows (fewer at the end); None at the end.

        Raises:
            LoadError: a ragged row, a cell that is not a number, a header with no rows, a
                column with no numbers at all: the whole loader's message.
        """
        if self._closed:
            raise ValueError(f"{self.source}: read after close")
        columns = self._stream.take(self._steps, count)
        self._steps += 1
        if columns is None:
            return None
        picked = [columns[i] for i in self._columns]
        if len(picked) == 1:
            chunk = picked[0]
        else:
            dtype = np.result_type(*(column.dtype for column in picked))
            chunk = self._buffers.next(len(picked[0]), self.sample_shape, dtype)
            for position, column in enumerate(picked):
                chunk[:, position] = column
        self._dtype = np.result_type(self._dtype, chunk.dtype)
        return chunk

    def close(self) -> None:
        """Close this reader; the file closes with the last reader on it."""
        if not self._closed:
            self._closed = True
            self._stream.release()


class _CsvStream:
    """One streaming parse of a text file: the union of its inputs' columns, block by block.

    pyarrow's streaming reader fixes each column's type from the first block, where its
    whole-file reader unifies the types of every block. When a later block holds a float
    in a column typed int64 (or a number in one that was empty so far), the stream is
    reopened with that column widened (the others keep their types), after skipping the
    rows already handed out, and reading carries on: chunks before keep int64, later ones
    are float64, and ``np.result_type`` over the chunks is what the whole loader gives.
    Anything else a later block holds that is not a number is refused as the whole loader
    refuses it.
    """

    def __init__(
        self,
        inputs: _Inputs,
        layout: _Layout,
        columns: list[str],
        name: str,
        block: int = _STREAM_BLOCK_BYTES,
    ) -> None:
        self._inputs = inputs
        self._layout = layout
        self._columns = columns
        self._name = name
        self._reader: Any = None
        self._types: dict[str, Any] = {}
        self._typed: set[str] = set()  # columns that held a number somewhere
        self._handed = 0  # rows handed out
        self._pending: list[list[np.ndarray]] = []  # parsed rows not handed out, in order
        self._pending_rows = 0
        self._done = False
        self._reopens = 0
        self._buffers = [ChunkBuffers() for _ in columns]
        self._block = block_bytes(layout, block)
        self.readers = 0
        # lockstep: the chunks handed out so far, and the latest one with its count
        self._steps = 0
        self._chunk: list[np.ndarray] | None = None
        self._count = 0
        self._takers = 0  # readers that took the latest chunk
        self._failed: LoadError | None = None
        self._open(0, {})
        self.dtypes = [_numpy_dtype(self._types[column]) for column in columns]

    @property
    def rows(self) -> int | None:
        return self._handed if self._done and not self._pending_rows else None

    def take(self, step: int, count: int) -> list[np.ndarray] | None:
        """The columns of chunk number ``step``: parsed by the first reader to ask for it."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if self._failed is not None:
            raise self._failed  # a stream that failed stays failed, for every reader on it
        if step == self._steps and (step == 0 or self._takers >= self.readers):
            try:
                self._chunk = self._read(count)
            except LoadError as error:
                self._failed = error
                raise
            self._count = count
            self._steps += 1
            self._takers = 1
        elif step == self._steps - 1 and count == self._count:
            self._takers += 1
        else:
            raise RuntimeError(
                f"{self._name}: inputs on one file must be read in lockstep, with one count"
            )
        return self._chunk

    def release(self) -> None:
        self.readers -= 1
        if self.readers <= 0 and self._reader is not None:
            self._reader.close()
            self._reader = None
            self._pending.clear()

    # reading

    def _open(self, skip_rows_after_names: int, column_types: dict[str, Any]) -> None:
        import pyarrow as pa
        from pyarrow import csv as pacsv

        options = _arrow_options(
            self._layout,
            self._columns,
            self._block,
            skip_rows_after_names=skip_rows_after_names,
            column_types=column_types,
        )
        stream = self._inputs.arrow()
        try:
            self._reader = pacsv.open_csv(
                stream,
                read_options=options[0],
                parse_options=options[1],
                convert_options=options[2],
            )
        except BaseException as error:
            stream.close()
            if isinstance(error, (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowKeyError)):
                if _row_outgrew(str(error), self._block):
                    self._block *= 4
                    self._open(skip_rows_after_names, column_types)
                    return
                raise LoadError(self._name, self._parse_problem(str(error))) from None
            if isinstance(error, (OSError, EOFError, zlib.error)):
                raise LoadError(self._name, f"is not valid gzip data ({error})") from None
            raise
        try:
            self._check_types(self._reader.schema)
        except BaseException:
            self._reader.close()
            raise

    def _check_types(self, schema: Any) -> None:
        import pyarrow as pa

        for column in self._columns:
            arrow_type = schema.field(column).type
            if pa.types.is_null(arrow_type):
                self._types.setdefault(column, arrow_type)
                continue
            if not _is_numeric(arrow_type):
                raise LoadError(self._name, self._cell_problem(column, arrow_type))
            self._types[column] = arrow_type
            self._typed.add(column)

    def _read(self, count: int) -> list[np.ndarray] | None:
        while self._pending_rows < count and not self._done:
            batch = self._next_batch()
            if batch is None:
                self._done = True
            elif batch.num_rows:
                self._check_types(batch.schema)
                self._pending.append([_column_numpy(batch.column(c)) for c in self._columns])
                self._pending_rows += batch.num_rows
        if not self._pending_rows:
            self._finish()
            return None
        rows = min(count, self._pending_rows)
        head = self._pending[0]
        if len(head[0]) >= rows:  # within one parsed block: no copy
            chunk = [column[:rows] for column in head]
            self._pending[0] = [column[rows:] for column in head]
            if len(head[0]) == rows:
                self._pending.pop(0)
        else:
            chunk = self._gather(rows)
        self._pending_rows -= rows
        self._handed += rows
        return chunk

    def _gather(self, rows: int) -> list[np.ndarray]:
        """``rows`` rows from several parsed blocks, copied into the reused buffers."""
        pieces: list[list[np.ndarray]] = []
        taken = 0
        while taken < rows:
            head = self._pending[0]
            take = min(len(head[0]), rows - taken)
            pieces.append([column[:take] for column in head])
            if take == len(head[0]):
                self._pending.pop(0)
            else:
                self._pending[0] = [column[take:] for column in head]
            taken += take
        chunk = []
        for index, buffers in enumerate(self._buffers):
            parts = [piece[index] for piece in pieces]
            out = buffers.next(rows, (), np.result_type(*(part.dtype for part in parts)))
            start = 0
            for part in parts:
                out[start : start + len(part)] = part
                start += len(part)
            chunk.append(out)
        return chunk

    def _next_batch(self) -> Any:
        import pyarrow as pa

        while True:
            try:
                return self._reader.read_next_batch()
            except StopIteration:
                return None
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                self._widen(str(error))
            except (OSError, EOFError, zlib.error) as error:
                raise LoadError(self._name, f"is not valid gzip data ({error})") from None

    def _widen(self, message: str) -> None:
        """Reopen after a later block failed to convert to the type of its first block.

        int64 → float64 when the cell is a number; a column missing everywhere so far takes
        float64 for a number and bool for TRUE/FALSE (its missing cells make it float64 in
        the whole loader either way). Anything else is a cell that is not a number.
        """
        import pyarrow as pa

        if _row_outgrew(message, self._block):  # a row longer than a block: larger blocks
            self._block *= 4
            self._reopen()
            return
        found = re.search(r"In CSV column #(\d+):.*?CSV conversion error to (\w+)", message)
        if found is None:
            raise LoadError(self._name, self._parse_problem(message))
        index = int(found.group(1))
        column = self._layout.names[index] if index < len(self._layout.names) else ""
        current = self._types.get(column)
        if current is None or self._reopens > 2 * len(self._columns):
            raise LoadError(self._name, self._parse_problem(message))
        value = re.search(r"invalid value '(.*)'", message, re.DOTALL)
        kind = _kind(value.group(1)) if value else "number"
        if kind == "number" and (pa.types.is_integer(current) or pa.types.is_null(current)):
            widened = pa.float64()
        elif kind == "boolean" and pa.types.is_null(current):
            widened = pa.bool_()
        else:  # text, or a number in a bool column: the whole loader refuses it as text
            raise LoadError(self._name, self._cell_problem(column, current))
        self._types[column] = widened
        self._reopens += 1
        self._reopen()

    def _reopen(self) -> None:
        """Reopen the stream after the rows handed out, with the columns' types so far."""
        import pyarrow as pa

        types = {c: t for c, t in self._types.items() if not pa.types.is_null(t)}
        self._reader.close()
        self._pending.clear()
        self._pending_rows = 0
        if self._layout.blank_rows:  # every line is a row
            skip = self._handed
        else:
            with self._inputs.parsed() as text:
                skip = _physical_rows(text, self._layout.skip_rows, self._handed)
        self._open(skip, types)

    def _finish(self) -> None:
        """At the end: refuse what the whole loader refuses once it has read everything."""
        if self._handed == 0:
            raise LoadError(self._name, _no_rows(self._layout))
        for column in self._columns:
            if column not in self._typed:
                raise LoadError(self._name, self._cell_problem(column, "null"))

    def _parse_problem(self, message: str) -> str:
        return _diagnose_parse(self._inputs.parsed, self._layout, message)

    def _cell_problem(self, column: str, arrow_type: object) -> str:
        return _diagnose_cell(self._inputs.parsed, self._layout, column, arrow_type)


def _physical_rows(text: BinaryIO, skip_rows: int, data_rows: int) -> int:
    """How many lines after the first ``skip_rows`` hold the first ``data_rows`` rows.

    pyarrow's ``skip_rows_after_names`` counts lines, empty ones included, where
    ``ignore_empty_lines`` drops empty lines from the rows: the rows handed out are
    translated into lines before the stream is reopened after them. ``text`` is what pyarrow
    parses; lines end with ``\\n``, ``\\r\\n`` or ``\\r``, and a UTF-8 byte-order mark is not text.
    """
    lines_after = 0
    carry = b""
    first = True
    while True:
        block = text.read(_SQUEEZE_BYTES)
        data = carry + block
        if first:
            if block and len(data) < len(_BOM):
                carry = data
                continue
            first = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        lines = data.splitlines(keepends=True)
        carry = b""
        if block and lines and not lines[-1].endswith(b"\n"):
            carry = lines.pop()  # unfinished, or a \r whose \n may follow
        if skip_rows:
            skipped = min(skip_rows, len(lines))
            skip_rows -= skipped
            lines = lines[skipped:]
        empty = lines.count(b"\n") + lines.count(b"\r\n") + lines.count(b"\r")
        if len(lines) - empty < data_rows and block:
            data_rows -= len(lines) - empty
            lines_after += len(lines)
            continue
        for line in lines:
            if data_rows == 0:
                break
            lines_after += 1
            if line not in (b"\n", b"\r\n", b"\r"):
                data_rows -= 1
        return lines_after


# --- messages (error path only) ---------------------------------------------------------


def _records(
    open_input: Callable[[], BinaryIO], layout: _Layout
) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record, header included; error path only."""
    with open_input() as stream:
        text = io.TextIOWrapper(
            cast(Any, stream), encoding="utf-8-sig", errors="replace", newline=""
        )
        reader = csv.reader(text, delimiter=layout.delimiter)
        start = 1
        for cells in reader:
            if cells and any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1


def _diagnose_parse(open_input: Callable[[], BinaryIO], layout: _Layout, arrow_message: str) -> str:
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
    open_input: Callable[[], BinaryIO], layout: _Layout, column: str, column_type: object
) -> str:
    """'row 3, column 'label': 'cat' is not a number' for the first offending cell."""
    index = layout.names.index(column)
    label = f"column {column!r}" if layout.has_header else f"column {column}"
    try:
        records = _records(open_input, layout)
        if layout.skip_rows:  # the header, or a comment line
            next(records)
        for line, cells in records:
            cell = cells[index] if index < len(cells) else ""
            if not _is_number(cell):
                return f"row {line}, {label}: {cell.strip()!r} is not a number"
    except (StopIteration, csv.Error, OSError, EOFError, zlib.error):
        pass
    if str(column_type) == "null":
        return f"{label} is empty (no numbers at all)"
    return f"{label} holds {column_type} values, not numbers"
