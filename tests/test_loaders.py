"""Each format loads what was saved: shapes, dtypes, selectors, text quirks, stdin."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from losscli.cli import app
from losscli.errors import LoadError
from losscli.loaders import LoadedArray, format_of, load
from losscli.sources import parse_source

runner = CliRunner()


def _load(text: str, stdin_format: str = "csv") -> LoadedArray:
    return load(parse_source(text), stdin_format)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- registry -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.npy", "npy"),
        ("a.NPZ", "npz"),
        ("a.csv.gz", "csv"),
        ("a.tsv.gz", "tsv"),
        ("a.txt", "csv"),
        ("a.parquet", "parquet"),
        ("a.feather", "feather"),
        ("a.arrow", "feather"),
        ("a.pth", "pt"),
        ("a.npy.gz", None),  # only text formats are read gzipped
        ("a", None),
        ("a.xlsx", None),
    ],
)
def test_format_of(name: str, expected: str | None) -> None:
    fmt = format_of(Path(name))
    assert (fmt.name if fmt else None) == expected


# --- npy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "int8", "int64", "uint8", "bool"]
)
def test_npy_keeps_dtype_and_shape(dtype: str, here: Path) -> None:
    values = (np.arange(12) % 3).astype(dtype).reshape(3, 4)
    np.save("a.npy", values)
    loaded = _load("a.npy")
    assert loaded.values.dtype == values.dtype and loaded.stored_dtype is None
    np.testing.assert_array_equal(loaded.values, values)


def test_npy_fortran_order_and_big_endian(here: Path) -> None:
    values = np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3))
    np.save("f.npy", values)
    loaded = _load("f.npy")
    assert loaded.values.dtype == np.dtype("float64") and loaded.values.dtype.isnative
    np.testing.assert_array_equal(loaded.values, values)


def test_npy_zero_d_and_empty(here: Path) -> None:
    np.save("s.npy", np.float32(2.5))
    np.save("e.npy", np.zeros((0, 3)))
    assert _load("s.npy").values.shape == ()
    assert _load("e.npy").values.shape == (0, 3)


def test_npy_is_read_never_memory_mapped(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a mapped file that another process truncates kills the reader with SIGBUS
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the .npy loader memory-maps")

    mapped = np.memmap
    monkeypatch.setattr(np, "memmap", refuse)
    monkeypatch.setattr(np, "load", refuse)
    for name, values in {
        "small.npy": np.arange(10.0),
        "big.npy": np.arange(3 << 20, dtype=np.float64).reshape(-1, 3),  # 24 MB
        "fortran.npy": np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
    }.items():
        np.save(name, values)
        loaded = _load(name)
        assert not isinstance(loaded.values, mapped)
        np.testing.assert_array_equal(loaded.values, values)


# --- npz ------------------------------------------------------------------------------


def test_single_array_npz_needs_no_key(here: Path) -> None:
    np.savez_compressed("one.npz", logits=np.eye(3))
    np.testing.assert_array_equal(_load("one.npz").values, np.eye(3))


def test_npz_key_selects(here: Path) -> None:
    np.savez("z.npz", a=np.arange(3), c=np.ones((2, 2), dtype=np.float32))
    loaded = _load("z.npz:c")
    assert loaded.values.dtype == np.float32 and loaded.values.shape == (2, 2)
    assert loaded.source == "z.npz:c"


def test_npz_several_arrays_without_key(here: Path) -> None:
    np.savez("z.npz", a=np.arange(3), c=np.ones(2))
    with pytest.raises(
        LoadError, match=r"z.npz holds several arrays; pick one with z.npz:KEY \(it has: a, c\)"
    ):
        _load("z.npz")


# --- csv ------------------------------------------------------------------------------


def test_csv_header_detected_and_columns_selected(here: Path) -> None:
    Path("t.csv").write_text("pred,label\n0.5,1\n-2,0\n")
    both = _load("t.csv")
    assert both.values.shape == (2, 2) and both.columns == ("pred", "label")
    label = _load("t.csv:label")
    assert label.values.dtype == np.int64  # integer columns stay integer
    np.testing.assert_array_equal(label.values, [1, 0])
    np.testing.assert_array_equal(_load("t.csv:1").values, [1, 0])  # index with a header too
    np.testing.assert_array_equal(_load("t.csv:label,pred").values, [[1, 0.5], [0, -2]])


def test_csv_without_header_uses_indices(here: Path) -> None:
    Path("n.csv").write_text("1,2,3\n4,5,6\n")
    loaded = _load("n.csv:0,2")
    np.testing.assert_array_equal(loaded.values, [[1, 3], [4, 6]])
    assert loaded.values.dtype == np.int64
    with pytest.raises(LoadError, match=r"has no column 3 .*no header"):
        _load("n.csv:3")


def test_csv_text_quirks(here: Path) -> None:
    # CRLF, a BOM, quoted numbers, spaces after commas, blank trailing lines
    Path("q.csv").write_bytes(b'\xef\xbb\xbfa, b\r\n"1", 2.5\r\n3,"4"\r\n\r\n\r\n')
    loaded = _load("q.csv")
    np.testing.assert_array_equal(loaded.values, [[1, 2.5], [3, 4]])
    assert loaded.columns == ("a", "b")


def test_csv_nan_and_inf_cells_are_floats(here: Path) -> None:
    Path("f.csv").write_text("x\n1\nNaN\nnan\ninf\n-Infinity\n")
    values = _load("f.csv").values
    assert values.dtype == np.float64
    assert np.isnan(values[1]) and np.isnan(values[2])
    assert values[3] == np.inf and values[4] == -np.inf


def test_csv_empty_cell_is_nan(here: Path) -> None:
    Path("m.csv").write_text("a,b\n1,2\n,4\n")
    values = _load("m.csv").values
    assert np.isnan(values[1, 0]) and values[1, 1] == 4


def test_tsv_semicolon_and_whitespace_text(here: Path) -> None:
    Path("t.tsv").write_text("a\tb\n1\t2\n")
    Path("s.csv").write_text("a;b\n1;2\n")
    Path("w.txt").write_text("  1.0   2.0\n  3.0   4.0\n")  # np.savetxt-style, aligned
    for name in ("t.tsv", "s.csv"):
        np.testing.assert_array_equal(_load(name).values, [[1, 2]])
    np.testing.assert_array_equal(_load("w.txt").values, [[1, 2], [3, 4]])


def test_savetxt_output_loads(here: Path) -> None:
    values = np.random.default_rng(0).normal(size=(5, 3))
    np.savetxt("p.txt", values)
    np.testing.assert_array_equal(_load("p.txt").values, values)


def test_gzipped_csv(here: Path) -> None:
    Path("g.csv.gz").write_bytes(gzip.compress(b"label\n2\n0\n"))
    np.testing.assert_array_equal(_load("g.csv.gz:label").values, [2, 0])


def test_duplicate_header_names_are_numbered(here: Path) -> None:
    Path("d.csv").write_text("a,a\n1,2\n")
    loaded = _load("d.csv:a.1")
    np.testing.assert_array_equal(loaded.values, [2])


def test_csv_row_numbers_count_file_lines(here: Path) -> None:
    # row 1 is the header; a blank line still counts, as in an editor
    Path("r.csv").write_text("label\n1\n\nbird\n")
    with pytest.raises(LoadError, match=r"row 4, column 'label': 'bird' is not a number"):
        _load("r.csv")


# --- the one header rule (SPEC: "Output files, gates and streaming") ----------------------


@pytest.mark.parametrize(
    ("text", "names", "rows"),
    [
        # a first cell that is a missing or non-finite number is data, not a header
        ("NA,1\n2,3\n4,5\n6,7\n8,9\n10,11\n", None, 6),
        ("nan,1\n2,3\n", None, 2),
        ("NaN\n2\n", None, 2),
        (",1\n2,3\n", None, 2),
        ("inf,-inf\n2,3\n", None, 2),
        ("N/A;1\n2;3\n", None, 2),
        # TRUE/FALSE are not numbers: over numbers they are names
        ("TRUE,1\n0,2\n1,3\n", ("TRUE", "1"), 2),
        # ... over TRUE/FALSE they are a boolean column
        ("TRUE,1\nFALSE,2\nTRUE,3\n", None, 3),
        # a name over a boolean column, and "true" as a name
        ("flag,x\ntrue,1\nfalse,2\n", ("flag", "x"), 2),
        ("pred,true\n0.5,1\n0.25,0\n", ("pred", "true"), 2),
        # a text column beside the numbers keeps the header (cell by cell, not row by row)
        ("id,pred\nimg1,0.5\nimg2,0.25\n", ("id", "pred"), 2),
        # a column missing below its name still has a name (and is refused if chosen)
        ("a,b\n,1\nNA,2\n", ("a", "b"), 2),
    ],
)
def test_header_rule(text: str, names: tuple[str, ...] | None, rows: int, here: Path) -> None:
    Path("h.csv").write_text(text)
    last = ":" + names[-1] if names else ""  # a text or empty column cannot be loaded
    loaded = _load("h.csv" + last)
    assert loaded.values.shape[0] == rows
    if names is None:
        width = len(text.splitlines()[0].replace(";", ",").split(","))
        assert loaded.columns == tuple(str(i) for i in range(width))
    else:
        assert loaded.columns == names[-1:]


def test_first_cell_na_reads_six_rows_with_a_nan(here: Path) -> None:
    Path("na.csv").write_text("NA,1\n2,3\n4,5\n6,7\n8,9\n10,11\n")
    values = _load("na.csv").values
    assert values.dtype == np.float64 and values.shape == (6, 2)
    assert np.isnan(values[0, 0]) and values[5, 1] == 11


def test_true_false_over_numbers_is_a_header(here: Path) -> None:
    Path("t.csv").write_text("TRUE,1\n0,2\n1,3\n")
    np.testing.assert_array_equal(_load("t.csv:TRUE").values, [0, 1])
    np.testing.assert_array_equal(_load("t.csv:1").values, [2, 3])  # the name "1" first


def test_boolean_columns_stay_boolean(here: Path) -> None:
    Path("b.csv").write_text("TRUE,1\nFALSE,2\nTRUE,3\n")
    Path("named.csv").write_text("flag\ntrue\nfalse\n")
    assert _load("b.csv:0").values.dtype == np.bool_
    np.testing.assert_array_equal(_load("b.csv").values, [[1, 1], [0, 2], [1, 3]])
    named = _load("named.csv")
    assert named.columns == ("flag",) and named.values.dtype == np.bool_


def test_header_of_pred_true(here: Path) -> None:
    Path("p.csv").write_text("pred,true\n0.5,1\n0.25,0\n")
    loaded = _load("p.csv:true")
    assert loaded.values.dtype == np.int64
    np.testing.assert_array_equal(loaded.values, [1, 0])


def test_a_first_row_over_text_is_data_and_refused(here: Path) -> None:
    # neither a header (no cell has numbers below it) nor numbers: refused at its first cell
    Path("w.csv").write_text("a,b\nx,y\n1,2\n")
    with pytest.raises(LoadError, match=r"w.csv: row 1, column 0: 'a' is not a number"):
        _load("w.csv")
    Path("one.csv").write_text("cat\ndog\n")
    with pytest.raises(LoadError, match=r"row 1, column 0: 'cat' is not a number"):
        _load("one.csv")


def test_zero_one_column_with_a_true_is_refused(here: Path) -> None:
    # "1"/"0" are numbers, never booleans: a 0/1 column with a TRUE in it holds text
    Path("m.csv").write_text("a\n0\n1\nTRUE\n")
    with pytest.raises(LoadError, match=r"row 4, column 'a': 'TRUE' is not a number"):
        _load("m.csv")


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".tsv"])
def test_bom_is_never_part_of_a_cell(suffix: str, here: Path) -> None:
    bom = b"\xef\xbb\xbf"
    sep = b"\t" if suffix == ".tsv" else b","
    Path("n" + suffix).write_bytes(bom + b"1" + sep + b"2\n3" + sep + b"4\n")
    Path("h" + suffix).write_bytes(bom + b"a" + sep + b"b\n1" + sep + b"2\n3" + sep + b"4\n")
    headless = _load("n" + suffix)
    assert headless.columns == ("0", "1")  # the BOM did not make "1" a name
    np.testing.assert_array_equal(headless.values, [[1, 2], [3, 4]])
    named = _load("h" + suffix + ":a")
    np.testing.assert_array_equal(named.values, [1, 3])


def test_bom_before_blank_aligned_text(here: Path) -> None:
    Path("s.txt").write_bytes(b"\xef\xbb\xbf  1.0   2.0\n  3.0   4.0\n")
    np.testing.assert_array_equal(_load("s.txt").values, [[1, 2], [3, 4]])


def test_blank_aligned_text_with_crlf_negatives_and_blank_lines(here: Path) -> None:
    Path("s.txt").write_bytes(b"  -1.0   2.0 \r\n\r\n   \r\n  3.5  -4.0\r\n")
    np.testing.assert_array_equal(_load("s.txt").values, [[-1, 2], [3.5, -4]])


def test_header_rule_for_gzip_and_stdin(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("g.csv.gz").write_bytes(gzip.compress(b"\xef\xbb\xbfNA,1\n2,3\n"))
    assert _load("g.csv.gz").values.shape == (2, 2)
    _stdin(monkeypatch, b"\xef\xbb\xbfTRUE,1\n0,2\n")
    assert _load("-:TRUE").values.tolist() == [0]


def test_text_loaders_say_they_read_text(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("t.csv").write_text("a\n1\n")
    Path("a.json").write_text("[1, 2]")
    np.save("a.npy", np.arange(2))
    assert _load("t.csv").from_text and _load("a.json").from_text and _load("[1]").from_text
    assert not _load("a.npy").from_text
    _stdin(monkeypatch, b"1\n2\n")
    assert _load("-").from_text


# --- parquet / feather / arrow --------------------------------------------------------


def test_parquet_columns_lists_and_defaults(here: Path) -> None:
    table = pa.table(
        {
            "a": [1.0, 2.0],
            "b": pa.array([1, 0], pa.int32()),
            "v": pa.array([[1.0, 2.0], [3.0, 4.0]]),
            "f": pa.FixedSizeListArray.from_arrays(pa.array([1, 2, 3, 4]), 2),
        }
    )
    pq.write_table(table, "t.parquet")
    assert _load("t.parquet:b").values.dtype == np.int32
    np.testing.assert_array_equal(_load("t.parquet:v").values, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(_load("t.parquet:f").values, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(_load("t.parquet:a,b").values, [[1, 1], [2, 0]])
    pq.write_table(table.select(["a", "b"]), "n.parquet")
    np.testing.assert_array_equal(_load("n.parquet").values, [[1, 1], [2, 0]])


def test_parquet_ragged_list_column(here: Path) -> None:
    pq.write_table(pa.table({"v": [[1.0, 2.0], [3.0]]}), "r.parquet")
    with pytest.raises(
        LoadError, match=r"lists of different lengths \(row 2 has 1 values, row 1 has 2"
    ):
        _load("r.parquet")


def test_parquet_nulls_become_nan(here: Path) -> None:
    pq.write_table(pa.table({"a": pa.array([1, None, 3])}), "n.parquet")
    values = _load("n.parquet").values
    assert values.dtype == np.float64 and np.isnan(values[1])


def test_feather_and_arrow_stream(here: Path) -> None:
    table = pa.table({"x": [1.5, 2.5], "y": [0, 1]})
    feather.write_feather(table, "t.feather")
    with pa.OSFile("s.arrow", "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    for name in ("t.feather:x", "s.arrow:0"):
        np.testing.assert_array_equal(_load(name).values, [1.5, 2.5])
    np.testing.assert_array_equal(_load("s.arrow:y").values, [0, 1])


# --- torch ----------------------------------------------------------------------------


def test_pt_tensor_dict_list(here: Path) -> None:
    torch.save(torch.arange(4), "t.pt")
    torch.save({"logits": torch.ones(2, 3), "labels": torch.tensor([0, 2])}, "d.pt")
    torch.save((torch.zeros(2), torch.ones(2)), "l.pth")
    assert _load("t.pt").values.dtype == np.int64
    assert _load("d.pt:logits").values.shape == (2, 3)
    np.testing.assert_array_equal(_load("l.pth:1").values, [1, 1])
    np.testing.assert_array_equal(_load("l.pth:-1").values, [1, 1])


def test_pt_bfloat16_widens_and_remembers(here: Path) -> None:
    stored = torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16)
    torch.save({"p": stored}, "b.pt")
    loaded = _load("b.pt:p")
    assert loaded.values.dtype == np.float32 and loaded.stored_dtype == "bfloat16"
    np.testing.assert_array_equal(loaded.values, stored.float().numpy())  # exact widening


def test_pt_requires_grad_and_views(here: Path) -> None:
    weights = torch.randn(4, 4, requires_grad=True)
    torch.save({"w": weights * 2, "t": weights.detach().t()}, "g.pt")
    np.testing.assert_array_equal(_load("g.pt:w").values, (weights * 2).detach().numpy())
    np.testing.assert_array_equal(_load("g.pt:t").values, weights.detach().t().numpy())


def test_pt_refuses_complex_and_sparse(here: Path) -> None:
    torch.save({"c": torch.ones(2, dtype=torch.complex64), "s": torch.eye(2).to_sparse()}, "x.pt")
    with pytest.raises(LoadError, match="complex"):
        _load("x.pt:c")
    with pytest.raises(LoadError, match="to_dense"):
        _load("x.pt:s")


# --- inline and stdin -----------------------------------------------------------------


def test_inline_integers_stay_integers() -> None:
    assert _load("[1, 2, 3]").values.dtype == np.int64
    assert _load("[1, 2.5]").values.dtype == np.float64
    assert np.isnan(_load("[NaN, 1]").values[0])


def test_json_file(here: Path) -> None:
    Path("a.json").write_text("[[1, 2], [3, 4]]")
    assert _load("a.json").values.shape == (2, 2)


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin_csv_npy_and_selector(monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, b"a,b\n1,2\n3,4\n")
    np.testing.assert_array_equal(_load("-:b").values, [2, 4])
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3.0))
    _stdin(monkeypatch, buffer.getvalue())
    np.testing.assert_array_equal(_load("-", "npy").values, [0, 1, 2])
    _stdin(monkeypatch, gzip.compress(b"1\n2\n"))
    np.testing.assert_array_equal(_load("-").values, [1, 2])


def test_unknown_stdin_format(monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, b"1\n")
    with pytest.raises(LoadError, match="--stdin-format 'xlsx' is not known"):
        _load("-", "xlsx")


# --- through the CLI ------------------------------------------------------------------


def test_pipe_into_compute() -> None:
    # SPEC: cat p.csv | losscli compute mse - t.csv; mse([1,2,4],[1,2,2]) = 4/3
    result = runner.invoke(
        app, ["compute", "mse", "-", "[1, 2, 2]", "--format", "json"], input=b"1\n2\n4\n"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["value"] == pytest.approx(4 / 3)


@pytest.mark.parametrize("command", ["compute", "debug"])
def test_formats_load_through_compute_and_debug(command: str, here: Path) -> None:
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 1.2, 0.3]], dtype=np.float32)
    torch.save({"logits": torch.from_numpy(logits)}, "m.pt")
    pq.write_table(pa.table({"label": [0, 1]}), "y.parquet")
    args = [command, "cross-entropy", "m.pt:logits", "y.parquet:label", "--format", "json"]
    if command == "debug":
        args = [
            "debug",
            "m.pt:logits",
            "y.parquet:label",
            "--loss",
            "cross-entropy",
            "--format",
            "json",
        ]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.tensor([0, 1]))
    assert report["value"] == expected.item()


def test_no_loader_opens_a_file_for_writing(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Python-level opens are recorded; pyarrow and torch open in C++ and are covered by the
    # hash-and-mtime checks of tests/test_malformed.py
    import builtins
    import os

    np.save("a.npy", np.arange(3.0))
    np.savez("z.npz", a=np.arange(3.0))
    Path("t.csv").write_text("a\n1\n")
    Path("g.csv.gz").write_bytes(gzip.compress(b"a\n1\n"))
    torch.save(torch.ones(2), "t.pt")
    pq.write_table(pa.table({"a": [1.0]}), "t.parquet")
    modes: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def recording_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        modes.append(mode)
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    def recording_os_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        modes.append("w" if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) else "r")
        return real_os_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)
    monkeypatch.setattr(os, "open", recording_os_open)
    for name in ("a.npy", "z.npz", "t.csv", "g.csv.gz", "t.pt", "t.parquet"):
        _load(name)
    assert modes, "the recording saw no open at all"
    assert not [m for m in modes if any(c in m for c in "wax+")], modes


def test_csv_larger_than_one_block_keeps_row_order(here: Path) -> None:
    # > 1 MiB: pyarrow parses several blocks in parallel; the columns are filled chunk by chunk
    values = np.arange(400_000, dtype=np.int64).reshape(-1, 2)
    Path("big.csv").write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in values) + "\n")
    loaded = _load("big.csv")
    assert loaded.values.dtype == np.int64
    np.testing.assert_array_equal(loaded.values, values)
    # a float far below the first block turns the whole column into floats
    Path("late.csv").write_text("x\n" + "1\n" * 300_000 + "1.5\n")
    late = _load("late.csv").values
    assert late.dtype == np.float64 and late[-1] == 1.5
