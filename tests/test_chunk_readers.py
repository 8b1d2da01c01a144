"""Chunk readers read exactly what the loaders read: same values, shape, dtype, messages.

The parity helper concatenates every chunk a reader gives (with chunk sizes 1, 3, 7 and one
larger than the file) and compares the result with the whole loader's ``values`` byte for
byte; a test proves that it fails for a reader that drops a row.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from losscli.errors import LoadError
from losscli.loaders import (
    ChunkReader,
    chunk_estimate,
    csv,
    load,
    npy,
    open_chunk_readers,
)
from losscli.sources import parse_source

COUNTS = (1, 3, 7, 1_000_000)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def read_to_end(readers: list[ChunkReader], count: int) -> list[tuple[np.ndarray, set[str]]]:
    """Read readers on one file in lockstep; each one's chunks concatenated, and their dtypes.

    Chunks are copied as they come (a chunk may live in a reused buffer), and concatenated
    in the ``np.result_type`` of their dtypes, as a consumer of a widening text column does.
    """
    parts: list[list[np.ndarray]] = [[] for _ in readers]
    while True:
        chunks = [reader.read(count) for reader in readers]
        if chunks[0] is None:
            assert all(chunk is None for chunk in chunks)
            break
        for reader, chunk, kept in zip(readers, chunks, parts, strict=True):
            assert chunk is not None
            assert chunk.shape[1:] == reader.sample_shape
            assert 1 <= len(chunk) <= count
            kept.append(chunk.copy())
    assert all(reader.read(count) is None for reader in readers)  # the end stays the end
    results = []
    for reader, kept in zip(readers, parts, strict=True):
        if not kept:
            results.append((np.empty((0, *reader.sample_shape), reader.dtype), set()))
            continue
        dtype = np.result_type(*(chunk.dtype for chunk in kept))
        values = np.concatenate([chunk.astype(dtype) for chunk in kept])
        results.append((values, {chunk.dtype.name for chunk in kept}))
    return results


def assert_parity(*inputs: str, counts: tuple[int, ...] = COUNTS) -> list[set[str]]:
    """Every input read in chunks is the whole loader's array, exactly; the chunk dtypes seen."""
    wholes = [load(parse_source(text)) for text in inputs]
    seen: list[set[str]] = [set() for _ in inputs]
    for count in counts:
        sources = {f"input{i}": parse_source(text) for i, text in enumerate(inputs)}
        readers = open_chunk_readers(sources)
        try:
            assert list(readers) == list(sources)
            results = read_to_end(list(readers.values()), count)
            for whole, reader, (values, dtypes), kinds in zip(
                wholes, readers.values(), results, seen, strict=True
            ):
                expected = whole.values
                assert values.shape == expected.shape, (count, values.shape, expected.shape)
                assert values.dtype == expected.dtype, (count, values.dtype, expected.dtype)
                np.testing.assert_array_equal(values, expected)  # NaN where NaN
                # bit for bit: the same NaNs, the same signed zeros
                assert values.tobytes() == np.ascontiguousarray(expected).tobytes()
                assert reader.rows == expected.shape[0]
                assert reader.dtype == expected.dtype
                assert reader.from_text == whole.from_text
                assert reader.source == whole.source
                kinds |= dtypes
        finally:
            for reader in readers.values():
                reader.close()
    return seen


# --- the corpus -------------------------------------------------------------------------


def _savetxt(name: str, values: np.ndarray, **options: object) -> Callable[[], None]:
    return lambda: np.savetxt(name, values, **options)  # type: ignore[arg-type]


def _bytes(name: str, content: bytes) -> Callable[[], None]:
    return lambda: Path(name).write_bytes(content)


RNG = np.random.default_rng(0)
MATRIX = RNG.normal(size=(40, 3)) * 100
INTS = "\n".join(f"{i},{(i * 7) % 5}" for i in range(60)).encode() + b"\n"

# name → (how to write the file, the INPUT arguments read together)
CORPUS: dict[str, tuple[Callable[[], None], tuple[str, ...]]] = {
    "headerless-ints": (_bytes("a.csv", INTS), ("a.csv",)),
    "headed-floats": (
        _savetxt("h.csv", MATRIX, delimiter=",", header="x,y,z", comments="", fmt="%.17g"),
        ("h.csv",),
    ),
    "first-cell-na": (_bytes("na.csv", b"NA,1\n2,3\n4,5\n6,7\n8,9\n10,11\n"), ("na.csv",)),
    "nan-inf-cells": (
        _bytes("f.csv", b"x\n1\nNaN\nnan\ninf\n-inf\n-Infinity\n2.5\n-0.0\n"),
        ("f.csv",),
    ),
    "empty-cells": (_bytes("e.csv", b"a,b\n1,2\n,4\n5,\n7,8\n"), ("e.csv",)),
    "empty-cell-int-column": (_bytes("ei.csv", b"a,b\n1,2\n,4\n5,6\n"), ("ei.csv:a", "ei.csv:b")),
    "bom-headerless": (_bytes("bn.csv", b"\xef\xbb\xbf1,2\n3,4\n5,6\n"), ("bn.csv",)),
    "bom-header": (_bytes("bh.csv", b"\xef\xbb\xbfa,b\n1,2\n3,4\n"), ("bh.csv:a",)),
    "tsv": (_bytes("t.tsv", b"p\tq\n1.5\t2\n-3\t4\n"), ("t.tsv",)),
    "tab": (_bytes("t.tab", b"1\t2\n3\t4\n"), ("t.tab:1",)),
    "semicolon": (_bytes("s.csv", b"p;q\n1,5;2\n3;4\n"), ("s.csv:q",)),
    "savetxt-1d": (_savetxt("v.txt", MATRIX[:, 0]), ("v.txt",)),
    "savetxt-2d": (_savetxt("m.txt", MATRIX), ("m.txt",)),
    "aligned-negatives": (_savetxt("al.txt", MATRIX, fmt="%12.4f"), ("al.txt",)),
    "aligned-bom-crlf-blank-lines": (
        _bytes(
            "ab.txt", b"\xef\xbb\xbf   1.0   -2.0  \r\n\r\n    \r\n  -3.5    4.0\r\n  5   6\r\n"
        ),
        ("ab.txt",),
    ),
    "csv-gz": (_bytes("g.csv.gz", gzip.compress(b"label\n" + b"2\n0\n1\n" * 20)), ("g.csv.gz",)),
    "aligned-txt-gz": (
        _bytes("g.txt.gz", gzip.compress(b"  1.0   2.0\n -3.0   4.0\n" * 30)),
        ("g.txt.gz",),
    ),
    "crlf": (_bytes("c.csv", b"a,b\r\n1,2\r\n3,4\r\n5,6\r\n"), ("c.csv",)),
    "blank-lines": (
        _bytes("bl.csv", b"\n\na,b\n1,2\n\n\n3,4\n\n5,6\n\n"),
        ("bl.csv:b", "bl.csv:a"),
    ),
    "quoted-numbers": (_bytes("q.csv", b'a, b\n"1", 2.5\n3,"4"\n'), ("q.csv",)),
    "bool-column": (_bytes("bo.csv", b"flag\ntrue\nfalse\nTRUE\n"), ("bo.csv",)),
    "bool-and-int-columns": (
        _bytes("bi.csv", b"TRUE,1\nFALSE,2\nTRUE,3\n"),
        ("bi.csv", "bi.csv:0", "bi.csv:1"),
    ),
    "bool-with-missing": (_bytes("bm.csv", b"f,x\ntrue,1\n,2\nfalse,3\n"), ("bm.csv:f",)),
    "true-over-numbers": (_bytes("tn.csv", b"TRUE,1\n0,2\n1,3\n"), ("tn.csv",)),
    "text-id-column": (
        _bytes("id.csv", b"id,pred,label\nimg1,0.5,1\nimg2,0.25,0\nimg3,-1,2\n"),
        ("id.csv:pred", "id.csv:label", "id.csv:label,pred"),
    ),
    "selections-by-index": (_bytes("n.csv", INTS), ("n.csv:1", "n.csv:0", "n.csv:-1,0")),
    "selections-by-name": (
        _savetxt("sel.csv", MATRIX, delimiter=",", header="x,y,z", comments="", fmt="%.17g"),
        ("sel.csv:z,x", "sel.csv:y"),
    ),
    "duplicate-names": (_bytes("d.csv", b"a,a\n1,2\n3,4\n"), ("d.csv:a.1", "d.csv:a")),
    "one-row": (_bytes("o.csv", b"1.5,2\n"), ("o.csv",)),
    # with the small block below, these change type blocks after their first
    "int64-overflow-late": (
        _bytes("ov.csv", b"a\n" + b"12\n" * 80 + b"99999999999999999999\n" + b"3\n" * 5),
        ("ov.csv",),
    ),
    "empty-then-numbers": (
        _bytes("en.csv", b"a,b\n" + b"1,\n" * 80 + b"2,7\n" * 10),
        ("en.csv:b", "en.csv"),
    ),
    "empty-then-bool": (
        _bytes("eb.csv", b"a,b\n" + b"1,\n" * 80 + b"2,TRUE\n3,false\n"),
        ("eb.csv:b", "eb.csv:a"),
    ),
}


def _build(case: str) -> tuple[str, ...]:
    write, inputs = CORPUS[case]
    write()
    return inputs


@pytest.mark.parametrize("block", ["default", "small"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_text_parity(case: str, block: str, here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if block == "small":  # many parsed blocks per chunk and many chunks per block
        monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 128)
    assert_parity(*_build(case))


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [
        ("float32", (50,)),
        ("float64", (17, 4)),
        ("float16", (9, 3, 2)),
        ("int64", (23,)),
        ("int8", (11, 5)),
        ("uint8", (8, 2, 3)),
        ("bool", (13, 2)),
        (">f8", (10, 3)),  # big-endian: chunks in native order, as the loader gives
        ("<i4", (6, 0)),
        ("float32", (0, 3)),
    ],
)
def test_npy_parity(dtype: str, shape: tuple[int, ...], here: Path) -> None:
    values = (np.arange(int(np.prod(shape))) % 7 - 3).astype(dtype).reshape(shape)
    np.save("a.npy", values)
    assert_parity("a.npy")


def test_npy_chunks_are_never_memory_mapped(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save("a.npy", np.arange(100.0))
    reader = open_chunk_readers({"x": parse_source("a.npy")})["x"]
    chunk = reader.read(10)
    reader.close()
    assert chunk is not None and not isinstance(chunk, np.memmap) and chunk.base is not None
    assert not isinstance(chunk.base, np.memmap)


# --- widening: an integer column that holds a float further down ------------------------


def _late_float(prefix: bytes = b"x\n", newline: bytes = b"\n", blanks: bool = False) -> bytes:
    rows = [b"%d" % i for i in range(400)] + [b"2.5"] + [b"%d" % i for i in range(50)]
    if blanks:  # empty lines before and after the turn, which pyarrow counts when skipping
        # two columns: in a one-column text a blank line is a row (an empty cell)
        rows = [row + b",1" + (newline if i % 37 == 0 else b"") for i, row in enumerate(rows)]
    return prefix + newline.join(rows) + newline


@pytest.mark.parametrize(
    "content",
    [
        _late_float(),
        _late_float(newline=b"\r\n"),
        _late_float(prefix=b"x,y\n", blanks=True),
        _late_float(prefix=b"\n\n\xef\xbb\xbf", blanks=True),  # no header, BOM
        _late_float(prefix=b"\xef\xbb\xbf\n\nx,y\n\n", newline=b"\r\n", blanks=True),
    ],
    ids=["plain", "crlf", "blank-lines", "bom-no-header", "bom-blank-lines-header-crlf"],
)
def test_int_column_that_turns_float_widens(
    content: bytes, here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 256)  # the float is blocks away
    Path("late.csv").write_bytes(content)
    assert load(parse_source("late.csv")).values.dtype == np.float64
    seen = assert_parity("late.csv", counts=(1, 7, 100, 1_000_000))
    assert seen == [{"int64", "float64"}]  # chunks before the float stayed int64


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_one_column_blank_lines_are_missing_values_and_the_end_is_not(
    newline: bytes, here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what pandas writes for a missing value of one column: an empty line; the int column
    # turns float blocks away, so the stream reopens past rows that were blank lines
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 256)
    rows = [b"%d" % i for i in range(400)] + [b"2.5"] + [b"%d" % i for i in range(50)]
    blank_at = [i for i in range(len(rows)) if i % 37 == 5]
    for i in blank_at:
        rows[i] = b""
    Path("y.csv").write_bytes(b"y" + newline + newline.join(rows) + newline * 4)
    whole = load(parse_source("y.csv")).values
    assert whole.shape == (len(rows),)  # trailing blank lines are no rows
    assert np.flatnonzero(np.isnan(whole)).tolist() == blank_at  # aligned, sample for sample
    assert whole[400] == 2.5 and whole[-1] == 49
    assert_parity("y.csv", counts=(1, 7, 100, 1_000_000))


def test_numpy_savetxt_comment_header_names_the_columns(here: Path) -> None:
    data = np.arange(12, dtype=np.float64).reshape(6, 2) / 4
    np.savetxt("c.csv", data, delimiter=",", header="pred,true")
    np.savetxt("s.txt", data, header="pred true")  # space-separated, numpy's default
    np.savetxt("free.csv", data, delimiter=",", header="scores of run 7, epoch 3, seed 1")
    for name in ("c.csv", "s.txt"):
        np.testing.assert_array_equal(load(parse_source(f"{name}:true")).values, data[:, 1])
        assert load(parse_source(name)).columns == ("pred", "true")
        assert_parity(f"{name}:pred", f"{name}:true", counts=(1, 4, 100))
    # a comment that does not name every column is skipped: the columns are numbered
    np.testing.assert_array_equal(load(parse_source("free.csv:1")).values, data[:, 1])
    assert_parity("free.csv:0", "free.csv:1", counts=(1, 100))


def test_widening_keeps_the_other_columns_types(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 256)
    rows = [f"{i},{i % 3},{i * 0.5}" for i in range(300)]
    rows[250] = "250,1.5,125.0"  # the middle column turns float
    rows[280] = "280,,140.0"  # and has a missing cell
    Path("w.csv").write_text("a,b,c\n" + "\n".join(rows) + "\n")
    seen = assert_parity("w.csv:a", "w.csv:b", "w.csv:c", "w.csv:a,b", counts=(1, 13, 1000))
    assert seen[0] == {"int64"} and seen[1] == {"int64", "float64"} and seen[2] == {"float64"}


def test_widening_aligned_gzipped_text(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 256)
    rows = [f"  {i:6d}  {-i:6d}" for i in range(300)]
    rows[200] = "  200.5    -200"
    text = "\n".join(rows[:100]) + "\n\n   \n" + "\n".join(rows[100:]) + "\n"
    Path("w.txt.gz").write_bytes(gzip.compress(text.encode()))
    seen = assert_parity("w.txt.gz", counts=(1, 9, 1000))
    assert seen == [{"int64", "float64"}]


def test_a_column_empty_at_first_takes_the_type_of_its_numbers(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 256)
    rows = [f"{i}," for i in range(200)] + [f"{i},{i}" for i in range(200, 260)]
    Path("late.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    assert_parity("late.csv:b", "late.csv", counts=(1, 50, 1000))


def test_pyarrow_skips_empty_lines_as_rows() -> None:
    # the pyarrow semantics the reopening relies on, pinned: skip_rows_after_names counts
    # empty lines, although ignore_empty_lines drops them from the rows
    data = b"a\n1\n\n\n2\n3\n"
    options = pacsv.ReadOptions(skip_rows_after_names=2)
    parse = pacsv.ParseOptions(ignore_empty_lines=True)
    table = pacsv.read_csv(io.BytesIO(data), read_options=options, parse_options=parse)
    assert table.column("a").to_pylist() == [2, 3]  # "1" and one empty line skipped


@pytest.mark.parametrize(
    ("data", "skip_rows", "rows", "lines"),
    [
        (b"1\n2\n3\n", 0, 2, 2),
        (b"1\n\n\n2\n3\n", 0, 2, 4),
        (b"1\r\n\r\n2\r\n3\r\n", 0, 2, 3),
        (b"1\r\r2\r3\r", 0, 2, 3),
        (b"\xef\xbb\xbf\n1\n\n2\n", 0, 2, 4),
        (b"\n\nx\n\n1\n2\n", 3, 2, 3),
        (b"x\n1\n2", 1, 2, 2),
        (b"x\n1\n2\n", 1, 0, 0),
    ],
)
def test_physical_rows(data: bytes, skip_rows: int, rows: int, lines: int) -> None:
    assert csv._physical_rows(io.BytesIO(data), skip_rows, rows) == lines


def test_physical_rows_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv, "_SQUEEZE_BYTES", 5)  # \r and \n of one break in two blocks
    data = b"12\r\n\r\n345\r\n\r\n\r\n6\r\n7\r\n"
    assert csv._physical_rows(io.BytesIO(data), 0, 3) == 6


def test_squeezing_in_pieces_is_squeezing_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    text = b"\xef\xbb\xbf  1.0\t -2.0  \r\n\r\n   \n  3 \r 4  5\n\t6   7"
    expected = csv._squeeze(text[3:])
    for size in (1, 2, 3, 5, 8, 1000):
        monkeypatch.setattr(csv, "_SQUEEZE_BYTES", size)
        squeezed = io.BufferedReader(csv._Squeezed(io.BytesIO(text)), buffer_size=7)
        assert squeezed.read() == expected, size
    assert expected == b"1.0 -2.0\n\n\n3\n4 5\n6 7\n"


# --- the parity helper can fail ---------------------------------------------------------


def _drops_first_row(read: Callable[..., np.ndarray | None]) -> Callable[..., np.ndarray | None]:
    calls = []

    def broken(self: object, count: int) -> np.ndarray | None:
        chunk = read(self, count)
        calls.append(1)
        return chunk[1:] if chunk is not None and len(calls) == 1 else chunk

    return broken


def test_parity_helper_catches_a_reader_that_drops_a_row(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("a.csv").write_bytes(INTS)
    np.save("a.npy", np.arange(10.0))
    assert_parity("a.csv")
    assert_parity("a.npy")
    monkeypatch.setattr(csv.CsvChunks, "read", _drops_first_row(csv.CsvChunks.read))
    monkeypatch.setattr(npy.NpyChunks, "read", _drops_first_row(npy.NpyChunks.read))
    for text in ("a.csv", "a.npy"):
        with pytest.raises(AssertionError):
            assert_parity(text, counts=(3,))


def test_parity_helper_catches_a_reader_that_loses_the_nan(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("n.csv").write_bytes(b"x\n1.5\n\n2\nNA\n")
    real = csv._column_numpy
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 1 << 20)

    def zero_for_missing(column: object) -> np.ndarray:
        return np.nan_to_num(real(column))

    assert_parity("n.csv")
    monkeypatch.setattr(csv, "_column_numpy", zero_for_missing)
    with pytest.raises(AssertionError):
        # the whole loader reads through the same function: compare with what it read before
        values = open_chunk_readers({"x": parse_source("n.csv")})["x"].read(10)
        assert values is not None
        np.testing.assert_array_equal(values, [1.5, 2, np.nan])


# --- chunks, buffers and lockstep -------------------------------------------------------


@pytest.mark.parametrize("name", ["a.npy", "a.csv:0,1", "a.csv:1"])
def test_a_chunk_stays_valid_until_the_second_read_after_it(
    name: str, here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 64)  # chunks gathered from several blocks
    values = np.arange(200, dtype=np.int64).reshape(100, 2)
    np.save("a.npy", values)
    Path("a.csv").write_text("\n".join(f"{a},{b}" for a, b in values) + "\n")
    reader = open_chunk_readers({"x": parse_source(name)})["x"]
    first = reader.read(10)
    assert first is not None
    kept = first.copy()
    assert reader.read(10) is not None
    np.testing.assert_array_equal(first, kept)  # still valid after the next read
    reader.close()


def test_inputs_on_one_file_share_one_parse_and_read_in_lockstep(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("t.csv").write_text("p,y\n" + "".join(f"{i * 0.5},{i % 3}\n" for i in range(20)))
    opened: list[object] = []
    real_open = csv._CsvStream._open

    def counting(self: csv._CsvStream, *args: object) -> None:
        opened.append(self)
        real_open(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(csv._CsvStream, "_open", counting)
    readers = open_chunk_readers(
        {"input": parse_source("t.csv:p"), "target": parse_source("t.csv:y")}
    )
    assert len(opened) == 1
    p, y = readers["input"], readers["target"]
    assert p.dtype == np.float64 and y.dtype == np.int64 and p.sample_shape == ()
    assert p.read(4) is not None and y.read(4) is not None
    assert p.read(4) is not None
    with pytest.raises(RuntimeError, match="lockstep"):
        p.read(4)  # y has not taken the previous chunk yet
    with pytest.raises(RuntimeError, match="lockstep"):
        y.read(5)  # another count than the step was read with
    p.close()
    assert y.read(4) is not None  # the file stays open for the other reader
    y.close()


def test_rows_is_known_at_the_end_of_text_and_from_the_npy_header(here: Path) -> None:
    Path("t.csv").write_text("1\n2\n3\n")
    np.save("a.npy", np.zeros((3, 2)))
    readers = open_chunk_readers({"t": parse_source("t.csv"), "a": parse_source("a.npy")})
    assert readers["t"].rows is None and readers["a"].rows == 3
    while readers["t"].read(2) is not None:
        pass
    assert readers["t"].rows == 3
    for reader in readers.values():
        reader.close()


def test_a_failed_open_closes_what_was_opened(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save("a.npy", np.zeros(3))
    Path("bad.csv").write_text("x\n")  # a header and no rows
    closed: list[str] = []
    real_close = npy.NpyChunks.close

    def recording(self: npy.NpyChunks) -> None:
        closed.append(self.source)
        real_close(self)

    monkeypatch.setattr(npy.NpyChunks, "close", recording)
    with pytest.raises(LoadError, match="has a header but no rows"):
        open_chunk_readers({"a": parse_source("a.npy"), "b": parse_source("bad.csv")})
    assert closed == ["a.npy"]


# --- estimates --------------------------------------------------------------------------


def test_chunk_estimate(here: Path) -> None:
    np.save("a.npy", np.zeros((5, 3), dtype=">f4"))
    np.save("f.npy", np.asfortranarray(np.zeros((4, 2))))
    np.save("s.npy", np.float64(1.0))
    Path("t.csv").write_text("1\n2\n")
    Path("t.tab.gz").write_bytes(gzip.compress(b"1\t2\n"))
    pq.write_table(pa.table({"a": [1.0]}), "t.parquet")
    estimate = chunk_estimate(parse_source("a.npy"))
    assert estimate.chunkable and estimate.shape == (5, 3) and estimate.nbytes == 60
    assert estimate.dtype == np.dtype("float32") and estimate.dtype.isnative
    assert not chunk_estimate(parse_source("f.npy")).chunkable  # Fortran order
    assert not chunk_estimate(parse_source("s.npy")).chunkable  # 0-d
    assert chunk_estimate(parse_source("t.csv")).chunkable
    assert chunk_estimate(parse_source("t.tab.gz")).chunkable
    assert not chunk_estimate(parse_source("t.parquet")).chunkable
    assert chunk_estimate(parse_source("[1, 2]")) == chunk_estimate(parse_source("-"))
    # what cannot be judged is the loader's own message, not "cannot be read in chunks"
    for text, expected in {
        "a.npy:key": "a.npy holds a single array, so ':key' selects nothing",
        "absent.npy": "absent.npy: no such file",
    }.items():
        with pytest.raises(LoadError) as error:
            chunk_estimate(parse_source(text))
        assert expected in error.value.line()
        with pytest.raises(LoadError) as whole:
            load(parse_source(text))
        assert whole.value.line() == error.value.line()


# --- malformed input through the readers: the loaders' one line -------------------------


def _truncated_gz(directory: Path) -> None:
    text = "a\n" + "\n".join(str(i * 7919 % 100_003) for i in range(100_000)) + "\n"
    data = gzip.compress(text.encode())
    (directory / "t.csv.gz").write_bytes(data[: len(data) // 2])


def _truncated_npy(directory: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(100, dtype=np.float64))
    (directory / "cut.npy").write_bytes(buffer.getvalue()[:300])


def _garbage_npy(directory: Path) -> None:
    (directory / "x.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': 42}   \n")


MALFORMED: dict[str, tuple[bytes | Callable[[Path], None], str, str]] = {
    # name → (file content or builder, INPUT, text the message must hold)
    "empty-csv": (b"", "e.csv", "e.csv is empty (0 bytes)"),
    "blank-lines": (b"\n\n  \n", "b.csv", "holds no data"),
    "header-only": (b"pred,label\n", "h.csv", "h.csv has a header but no rows of data"),
    "header-and-blank-lines": (b"pred\n\n\n", "h.csv", "has a header but no rows of data"),
    "ragged-early": (b"1,2\n3,4\n5,6,7\n", "r.csv", "r.csv: row 3 has 3 fields, row 1 has 2"),
    "ragged-late": (
        b"a,b\n" + b"1,2\n" * 300 + b"1,2,3\n",
        "r.csv",
        "r.csv: row 302 has 3 fields, row 1 has 2",
    ),
    "text-cell-late": (
        b"label\n" + b"1\n" * 300 + b"cat\n",
        "l.csv",
        "l.csv: row 302, column 'label': 'cat' is not a number",
    ),
    "text-cell-late-in-float-column": (
        b"p\n" + b"0.5\n" * 300 + b"\nbird\n",
        "p.csv",
        "row 303, column 'p': 'bird' is not a number",
    ),
    "true-in-int-column": (b"a\n" + b"1\n" * 300 + b"TRUE\n", "m.csv", "'TRUE' is not a number"),
    "number-in-bool-column": (
        b"f\n" + b"true\n" * 300 + b"2\n",
        "f.csv",
        "row 2, column 'f': 'true' is not a number",
    ),
    "empty-column": (b"a,b\n,1\n,2\n", "z.csv:a", "column 'a' is empty (no numbers at all)"),
    "text-row-first": (b"a,b\nx,y\n1,2\n", "w.csv", "row 1, column 0: 'a' is not a number"),
    "binary": (bytes(range(256)) * 8, "j.csv", "j.csv is not text"),
    "unknown-column": (b"a,b\n1,2\n", "u.csv:c", "u.csv has no column 'c' (it has: a, b)"),
    "corrupt-gz": (b"\x1f\x8b\x08\x00garbage", "c.csv.gz", "gzip"),
    "truncated-gz": (_truncated_gz, "t.csv.gz", "t.csv.gz is not valid gzip data"),
    "truncated-npy": (
        _truncated_npy,
        "cut.npy",
        "cut.npy: the header declares 100 float64 values but the file holds 172 bytes",
    ),
    "bad-magic": (b"1,2,3\n", "text.npy", "text.npy is not a .npy file (bad magic bytes)"),
    "corrupt-header": (_garbage_npy, "x.npy", "x.npy has a corrupt .npy header"),
    "npy-with-selector": (b"", "one.npy:logits", "one.npy holds a single array"),
    "missing": (b"", "absent.npy", "absent.npy: no such file"),
}


def _write_malformed(kind: str, directory: Path) -> str:
    content, text, _ = MALFORMED[kind]
    source = parse_source(text)
    if kind == "npy-with-selector":
        np.save(directory / "one.npy", np.ones(2))
    elif callable(content):
        content(directory)
    elif kind != "missing":
        assert source.path is not None
        (directory / source.path).write_bytes(content)
    return text


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_input_is_the_loaders_one_line(kind: str, here: Path) -> None:
    text = _write_malformed(kind, here)
    expected = MALFORMED[kind][2]
    with pytest.raises(LoadError) as whole:
        load(parse_source(text))
    for count in (1, 1000):
        with pytest.raises(LoadError) as streamed:
            readers = open_chunk_readers({"x": parse_source(text)})
            try:
                while readers["x"].read(count) is not None:
                    pass
            finally:
                readers["x"].close()
        line = streamed.value.line()
        assert expected in line, line
        assert "\n" not in line and "Traceback" not in line
        assert line == whole.value.line()  # the same words as the whole loader


def test_what_does_not_stream_says_so(here: Path) -> None:
    np.save("f.npy", np.asfortranarray(np.zeros((4, 2))))
    np.save("s.npy", np.float64(1.0))
    pq.write_table(pa.table({"a": [1.0]}), "t.parquet")
    cases = {
        "f.npy": "f.npy is Fortran-ordered or 0-d; it cannot be read in chunks",
        "s.npy": "s.npy is Fortran-ordered or 0-d; it cannot be read in chunks",
        "t.parquet": "t.parquet cannot be read in chunks (parquet does not stream",
        "[1, 2]": "inline cannot be read in chunks",
        "-": "<stdin> cannot be read in chunks",
    }
    for text, expected in cases.items():
        with pytest.raises(LoadError) as error:
            open_chunk_readers({"x": parse_source(text)})
        assert expected in error.value.line()


def test_object_npy_is_refused_before_any_pickle(here: Path) -> None:
    np.save("o.npy", np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)
    with pytest.raises(LoadError, match="holds Python objects; losscli never unpickles"):
        open_chunk_readers({"x": parse_source("o.npy")})


def test_a_failure_on_a_shared_file_reaches_every_reader_on_it(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 128)
    Path("t.csv").write_text("p,y\n" + "0.5,1\n" * 100 + "0.5,cat\n")
    readers = open_chunk_readers({"p": parse_source("t.csv:p"), "y": parse_source("t.csv:y")})
    assert all(isinstance(reader, ChunkReader) for reader in readers.values())
    message = "t.csv: row 102, column 'y': 'cat' is not a number"
    with pytest.raises(LoadError, match=message):
        while readers["p"].read(30) is not None:
            assert readers["y"].read(30) is not None
    with pytest.raises(LoadError, match=message):
        readers["y"].read(30)  # the other reader gets the same error, not a half chunk
    for reader in readers.values():
        reader.close()
