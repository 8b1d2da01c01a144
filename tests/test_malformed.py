"""Bad input through the real CLI: exit 2, one line naming the file, nothing on stdout.

Every case also proves that no pickle payload ran (the payload would create a marker file)
and that no input file changed (hashes before and after).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from files import snapshot
from typer.testing import CliRunner

from losscli.cli import app

runner = CliRunner()
MARKER = "PAYLOAD_RAN"


class Payload:
    """Unpickling this creates ``path``: proof that a loader executed pickled code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def npy_bytes(shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"") -> bytes:
    """A .npy image whose header declares ``shape`` and ``descr``, followed by ``data``."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


@dataclass(frozen=True)
class Case:
    """One kind of bad input.

    Attributes:
        build: writes the file(s) into the directory; returns the INPUT arguments (bad one
            first, for ``mse``), the bytes for standard input, and extra CLI options.
        expected: text the one stderr line must contain (the file's name and the problem).
    """

    build: Callable[[Path], tuple[list[str], bytes | None, list[str]]]
    expected: tuple[str, ...]


def _file(name: str, content: bytes) -> Callable[[Path], tuple[list[str], bytes | None, list[str]]]:
    def build(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
        (directory / name).write_bytes(content)
        return [name, "[1.0, 2.0]"], None, []

    return build


def _object_npy(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    values = np.array([Payload(directory / MARKER), 1], dtype=object)
    np.save(directory / "preds.npy", values, allow_pickle=True)
    return ["preds.npy", "[1.0, 2.0]"], None, []


def _object_npz(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    values = np.array([Payload(directory / MARKER)], dtype=object)
    np.savez(directory / "z.npz", a=values)
    return ["z.npz:a", "[1.0]"], None, []


def _evil_pt_zip(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    torch.save({"a": Payload(directory / MARKER)}, directory / "evil.pt")
    return ["evil.pt:a", "[1.0]"], None, []


def _evil_pt_legacy(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    (directory / "evil.pth").write_bytes(pickle.dumps(Payload(directory / MARKER)))
    return ["evil.pth", "[1.0]"], None, []


def _pt_dict(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    torch.save({"a": torch.ones(2), "b": torch.zeros(2)}, directory / "x.pt")
    return ["x.pt", "[1.0, 2.0]"], None, []


def _pt_missing_index(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    torch.save([torch.ones(2), torch.zeros(2)], directory / "x.pt")
    return ["x.pt:7", "[1.0, 2.0]"], None, []


def _saved(
    name: str, values: np.ndarray
) -> Callable[[Path], tuple[list[str], bytes | None, list[str]]]:
    def build(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
        np.save(directory / name, values)
        return [name, "[1.0, 2.0]"], None, []

    return build


def _truncated_npy(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(100, dtype=np.float64))
    (directory / "cut.npy").write_bytes(buffer.getvalue()[:300])
    return ["cut.npy", "[1.0]"], None, []


def _npz(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    np.savez(directory / "z.npz", a=np.ones(2), c=np.zeros(2))
    return ["z.npz:b", "[1.0, 2.0]"], None, []


def _npz_bomb(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    # a deflated member whose local and central headers claim 4 GB of data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.npy", npy_bytes((3,), data=b"\x00" * 12))
    data = bytearray(buffer.getvalue())
    real = len(npy_bytes((3,), data=b"\x00" * 12)).to_bytes(4, "little")
    claimed = (0xFFFFFFF0).to_bytes(4, "little")
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        assert data[at : at + 4] == real
        data[at : at + 4] = claimed
    (directory / "bomb.npz").write_bytes(bytes(data))
    return ["bomb.npz", "[1.0]"], None, []


def _npz_lying_member(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    with zipfile.ZipFile(directory / "lie.npz", "w") as archive:
        archive.writestr("a.npy", npy_bytes((10**9,), data=b"\x00" * 8))
    return ["lie.npz", "[1.0]"], None, []


def _gz_empty(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    (directory / "empty.csv.gz").write_bytes(gzip.compress(b""))
    return ["empty.csv.gz", "[1.0]"], None, []


def _directory(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    (directory / "folder.csv").mkdir()
    return ["folder.csv", "[1.0]"], None, []


def _inline(text: str) -> Callable[[Path], tuple[list[str], bytes | None, list[str]]]:
    def build(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
        return [text, "[1.0, 2.0]"], None, []

    return build


def _stdin(
    data: bytes, *options: str
) -> Callable[[Path], tuple[list[str], bytes | None, list[str]]]:
    def build(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
        return ["-", "[1.0, 2.0]"], data, list(options)

    return build


def _missing(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    return ["absent.npy", "[1.0]"], None, []


def _missing_csv_column(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    (directory / "t.csv").write_text("label,weight\n1,2\n0,1\n")
    return ["t.csv:lbl", "[1.0, 2.0]"], None, []


def _good_npy_in_second(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    # the bad input is the target: the message must name it, not the good prediction file
    np.save(directory / "pred.npy", np.ones(2))
    (directory / "labels.csv").write_text("label\n1\n2\ncat\n")
    return ["pred.npy", "labels.csv"], None, []


_GARBAGE = bytes(range(256)) * 8

CASES: dict[str, Case] = {
    "empty-npy": Case(_file("e.npy", b""), ("e.npy", "empty")),
    "empty-csv": Case(_file("e.csv", b""), ("e.csv", "empty")),
    "empty-parquet": Case(_file("e.parquet", b""), ("e.parquet", "empty")),
    "blank-lines-csv": Case(_file("blank.csv", b"\n\n  \n"), ("blank.csv", "no data")),
    "truncated-npy": Case(_truncated_npy, ("cut.npy", "declares 100 float64 values")),
    "bad-magic-npy": Case(_file("text.npy", b"1,2,3\n"), ("text.npy", "bad magic")),
    "corrupt-npy-header": Case(
        _file("h.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 42}   \n"), ("h.npy", "corrupt")
    ),
    "huge-declared-shape": Case(
        _file("big.npy", npy_bytes((999999999999,), data=b"\x00" * 24)),
        ("big.npy: the header declares 999999999999 float32 values but the file holds 24 bytes",),
    ),
    "object-npy-with-payload": Case(
        _object_npy, ("preds.npy holds Python objects; losscli never unpickles data",)
    ),
    "object-npz-with-payload": Case(_object_npz, ("z.npz:a holds Python objects",)),
    "pt-with-payload": Case(_evil_pt_zip, ("evil.pt", "refuses to unpickle")),
    "legacy-pt-with-payload": Case(_evil_pt_legacy, ("evil.pth", "refuses to unpickle")),
    "pt-dict-without-key": Case(
        _pt_dict, ("x.pt holds 2 tensors; pick one with x.pt:PATH (its tensors: a, b)",)
    ),
    "pt-index-out-of-range": Case(_pt_missing_index, ("x.pt has no '7' (its tensors: 0, 1)",)),
    "pt-garbage": Case(_file("g.pt", _GARBAGE), ("g.pt", "is not a file torch.save wrote")),
    "complex-dtype": Case(_saved("c.npy", np.ones(2, np.complex64)), ("c.npy", "complex")),
    "string-dtype": Case(_saved("s.npy", np.array(["a", "b"])), ("s.npy holds strings",)),
    "record-dtype": Case(
        _saved("r.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])),
        ("r.npy holds structured records",),
    ),
    "ragged-csv": Case(
        _file("scores.csv", b"1,2\n3,4\n5,6\n7,8\n9,10,11\n"),
        ("scores.csv: row 5 has 3 fields, row 1 has 2",),
    ),
    "text-cell-csv": Case(
        _file("labels.csv", b"label\n1\ncat\n"),
        ("labels.csv: row 3, column 'label': 'cat' is not a number",),
    ),
    "text-cell-in-target": Case(
        _good_npy_in_second, ("labels.csv: row 4, column 'label': 'cat' is not a number",)
    ),
    "header-only-csv": Case(
        _file("h.csv", b"pred,label\n"), ("h.csv has a header but no rows of data",)
    ),
    "binary-garbage-csv": Case(_file("junk.csv", _GARBAGE), ("junk.csv is not text",)),
    "npy-named-csv": Case(
        _file("arr.csv", npy_bytes((2,), data=b"\x00" * 8)), ("arr.csv is not text", "name it .npy")
    ),
    "corrupt-gz": Case(_file("c.csv.gz", b"\x1f\x8b\x08\x00garbage"), ("c.csv.gz", "gzip")),
    "empty-gz": Case(_gz_empty, ("empty.csv.gz", "no data")),
    "unknown-suffix": Case(_file("data.xlsx", b"PK"), ("data.xlsx", "unknown file type")),
    "gzipped-npy": Case(_file("a.npy.gz", b"\x1f\x8b"), ("a.npy.gz", "decompress it first")),
    "directory": Case(_directory, ("folder.csv is a directory",)),
    "missing-file": Case(_missing, ("absent.npy: no such file",)),
    "missing-npz-key": Case(_npz, ("z.npz has no array 'b' (it has: a, c)",)),
    "npz-bomb": Case(_npz_bomb, ("bomb.npz:a", "declares 4294967280 bytes")),
    "npz-member-lies": Case(_npz_lying_member, ("lie.npz:a: the header declares 1000000000",)),
    "npz-not-zip": Case(_file("n.npz", _GARBAGE), ("n.npz is not an .npz file",)),
    "missing-csv-column": Case(
        _missing_csv_column, ("t.csv has no column 'lbl' (it has: label, weight)",)
    ),
    "npy-with-selector": Case(_saved("one.npy", np.ones(2)), ()),  # built below
    "malformed-inline-json": Case(_inline("[1, 2"), ("inline array '[1, 2'", "not valid JSON")),
    "inline-text-element": Case(_inline('[1, "a"]'), ("inline array", "not a number")),
    "inline-too-deep": Case(_inline("[" * 100_000 + "]" * 100_000), ("nested too deeply",)),
    "empty-stdin": Case(_stdin(b""), ("<stdin> is empty",)),
    "garbage-stdin-npy": Case(
        _stdin(b"1,2\n", "--stdin-format", "npy"), ("<stdin> is not a .npy file",)
    ),
    "parquet-garbage": Case(_file("p.parquet", _GARBAGE), ("p.parquet is not a Parquet file",)),
    "feather-garbage": Case(
        _file("f.feather", _GARBAGE), ("f.feather is not an Arrow IPC / Feather file",)
    ),
}


def _npy_with_selector(directory: Path) -> tuple[list[str], bytes | None, list[str]]:
    np.save(directory / "one.npy", np.ones(2))
    return ["one.npy:logits", "[1.0, 2.0]"], None, []


CASES["npy-with-selector"] = Case(_npy_with_selector, ("one.npy holds a single array",))


def test_the_suite_covers_at_least_25_kinds() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[kind]
    monkeypatch.chdir(tmp_path)
    inputs, stdin, options = case.build(tmp_path)
    before = snapshot(tmp_path)

    result = runner.invoke(app, ["compute", "mse", *inputs, *options], input=stdin)

    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "Traceback" not in line and "internal error" not in line, line
    for expected in case.expected:
        assert expected in line, line
    assert not (tmp_path / MARKER).exists(), "a pickle payload ran"
    assert snapshot(tmp_path) == before, "an input file changed"


def test_case_builders_are_really_hostile(tmp_path: Path) -> None:
    # the payload files do run their payload when unpickled the unsafe way: the marker
    # assertions above would catch a loader that unpickles
    _object_npy(tmp_path)
    np.load(tmp_path / "preds.npy", allow_pickle=True)
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
    _evil_pt_zip(tmp_path)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert (tmp_path / MARKER).exists()


def test_parquet_truncated_after_valid_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pq.write_table(pa.table({"a": np.arange(100.0)}), tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2])
    result = runner.invoke(app, ["compute", "mse", "t.parquet", "[1.0]"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("losscli: error: t.parquet")


@pytest.mark.parametrize("builder", [_object_npy, _evil_pt_zip], ids=["npy", "pt"])
def test_end_to_end_subprocess_has_no_traceback(
    builder: Callable[[Path], tuple[list[str], bytes | None, list[str]]], tmp_path: Path
) -> None:
    inputs, _, _ = builder(tmp_path)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "LOSSCLI_DEBUG"}
    completed = subprocess.run(
        [sys.executable, "-m", "losscli", "compute", "mse", *inputs],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert inputs[0].split(":")[0] in completed.stderr
    assert not (tmp_path / MARKER).exists()
    assert snapshot(tmp_path) == before
