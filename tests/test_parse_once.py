"""Columns of one text file are parsed once per invocation, however many inputs name them.

``losscli compute mse t.csv:pred t.csv:true`` used to parse ``t.csv`` once per input. Now
the loader parses it once for the columns named together, and every input comes out exactly
as it did when loaded alone: the same values, dtype, columns and name, and the same error
for a selection that cannot be read.
"""

from __future__ import annotations

import gzip
import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyarrow import csv as pacsv

from losscli.cli import main
from losscli.errors import LoadError
from losscli.loaders import LoadedArray, load, load_many
from losscli.sources import parse_source

TABLE = "pred,true,w,label\n0.5,1,2,0\n1.5,1,2,1\n-2.25,0,1,2\n3,4,1,1\n"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every whole-file parse pyarrow is asked for."""
    seen: list[str] = []
    read_csv = pacsv.read_csv

    def counted(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(getattr(source, "name", source)))
        return read_csv(source, *args, **kwargs)

    monkeypatch.setattr(pacsv, "read_csv", counted)
    return seen


def _same(a: LoadedArray, b: LoadedArray) -> None:
    assert a.values.dtype == b.values.dtype
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert (a.source, a.columns, a.from_text) == (b.source, b.columns, b.from_text)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "selectors"),
    [
        ("t.csv", TABLE, ["pred", "true"]),
        ("t.csv", TABLE, ["pred", "true", "w"]),
        ("t.csv", TABLE, ["0", "pred,true", "label"]),
        ("t.csv", TABLE, ["true", "pred"]),
        ("t.csv", TABLE, [None, "w"]),
        ("t.tsv", TABLE.replace(",", "\t"), ["pred", "true"]),
        ("t.csv.gz", TABLE, ["pred", "label"]),
        ("n.csv", "1,2,3\n4,5,6\n", ["0", "2"]),
        ("m.csv", "a,b\n1,\n2,3\n", ["a", "b"]),  # a missing cell: b is float64, a int64
    ],
)
def test_each_selection_is_what_it_is_alone_and_the_file_is_parsed_once(
    tmp_path: Path, parses: list[str], name: str, text: str, selectors: list[str | None]
) -> None:
    path = _write(tmp_path, name, text)
    texts = [str(path) if s is None else f"{path}:{s}" for s in selectors]
    alone = {t: load(parse_source(t)) for t in texts}
    parses.clear()
    together = load_many({t: parse_source(t) for t in texts})
    assert len(parses) == 1
    assert list(together) == texts
    for t in texts:
        _same(together[t], alone[t])


@pytest.mark.parametrize(
    ("text", "selectors", "problem"),
    [
        (TABLE, ["pred", "nosuch"], "has no column 'nosuch'"),
        (TABLE, ["nosuch", "pred"], "has no column 'nosuch'"),
        ("a,b\n1,x\n2,3\n", ["a", "b"], "b"),
    ],
)
def test_a_selection_that_cannot_be_read_fails_as_it_does_alone(
    tmp_path: Path, text: str, selectors: list[str], problem: str
) -> None:
    path = _write(tmp_path, "t.csv", text)
    texts = [f"{path}:{s}" for s in selectors]
    alone = None
    for t in texts:
        try:
            load(parse_source(t))
        except LoadError as error:
            alone = error.line()
            break
    assert alone is not None and problem in alone
    with pytest.raises(LoadError) as raised:
        load_many({t: parse_source(t) for t in texts})
    assert raised.value.line() == alone


def test_other_inputs_load_in_order_beside_a_shared_file(tmp_path: Path, parses: list[str]) -> None:
    csv = _write(tmp_path, "t.csv", TABLE)
    np.save(tmp_path / "w.npy", np.arange(4.0))
    texts = [f"{csv}:pred", str(tmp_path / "w.npy"), f"{csv}:true", "[1,2,3,4]"]
    together = load_many({t: parse_source(t) for t in texts})
    assert list(together) == texts and len(parses) == 1
    assert together[str(tmp_path / "w.npy")].values.tolist() == [0.0, 1.0, 2.0, 3.0]
    missing = [f"{csv}:pred", str(tmp_path / "none.npy"), f"{csv}:nosuch"]
    with pytest.raises(LoadError, match=r"none\.npy"):  # the first failing input, as before
        load_many({t: parse_source(t) for t in missing})


@pytest.mark.parametrize("command", [["compute", "mse"], ["debug", "--loss", "mse"], ["debug"]])
def test_a_command_parses_the_file_once(
    tmp_path: Path, parses: list[str], command: list[str]
) -> None:
    path = _write(tmp_path, "t.csv", TABLE)
    with redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
        main([*command, f"{path}:pred", f"{path}:true"])
    assert len(parses) == 1
