"""Text inputs that convert without changing a value are no finding (SPEC "Numbers").

CSV, TSV, TXT (and their .gz), standard input read as text, inline and JSON arrays have no
dtype: numbers read from them as float64 or int64 and handed to torch as float32 or int64
are what the text said, so there is no dtype-conversion info, ``--fail-on info`` passes and
``--format github`` writes no annotation besides the value's. The JSON ``inputs`` still
say what was read. Binary files keep their conversion findings: whole-number float labels
in a .npy are float-class-target's, with one fix (``.long()``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from losscli.cli import app

runner = CliRunner()
RNG = np.random.default_rng(13)
LOGITS = RNG.normal(size=(12, 3))
LABELS = RNG.integers(0, 3, size=12)


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _labels_as_savetxt_writes_them(path: Path) -> None:
    """np.savetxt's default format: 0.000000000000000000e+00, one label a line."""
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as stream:
            np.savetxt(stream, LABELS)
    else:
        np.savetxt(path, LABELS, delimiter="\t" if path.suffix == ".tsv" else ",")


@pytest.fixture
def logits_csv(tmp_path: Path) -> str:
    path = tmp_path / "logits.csv"
    np.savetxt(path, LOGITS, delimiter=",")
    return str(path)


def _torch_value(logits: np.ndarray) -> float:
    return float(
        F.cross_entropy(torch.from_numpy(logits.astype(np.float32)), torch.from_numpy(LABELS))
    )


@pytest.mark.parametrize("name", ["labels.txt", "labels.csv", "labels.tsv", "labels.csv.gz"])
def test_float_labels_from_savetxt_are_class_indices_without_a_finding(
    tmp_path: Path, logits_csv: str, name: str
) -> None:
    labels = tmp_path / name
    _labels_as_savetxt_writes_them(labels)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(labels, "rt") as stream:
        assert stream.readline().strip().endswith("e+00")  # 0.000000000000000000e+00 and alike
    code, out, err = _run("compute", "cross-entropy", logits_csv, str(labels), "-f", "json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["findings"] == []
    assert report["value"] == _torch_value(LOGITS)
    # what was read: the text's numbers as float64
    assert report["inputs"]["target"]["dtype"] == "float64"
    assert report["inputs"]["input"]["dtype"] == "float64"
    # --fail-on info passes; a CI run gets the value's annotation and nothing else
    assert _run("compute", "cross-entropy", logits_csv, str(labels), "--fail-on", "info")[0] == 0
    code, out, _ = _run("debug", "-l", "cross-entropy", logits_csv, str(labels), "-f", "github")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("::")] == [
        line
        for line in out.splitlines()
        if line.startswith("::notice title=losscli cross-entropy::")
    ]
    assert "dtype-conversion" not in out


def test_standard_input_and_inline_arrays_are_quiet(logits_csv: str) -> None:
    text = "\n".join(f"{float(v):.18e}" for v in LABELS) + "\n"
    code, out, err = _run(
        "compute", "cross-entropy", logits_csv, "-", "-f", "json", "--fail-on", "info", stdin=text
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["findings"] == []
    inline = "[" + ",".join(str(float(v)) for v in LABELS) + "]"
    code, out, err = _run(
        "compute", "cross-entropy", logits_csv, inline, "-f", "json", "--fail-on", "info"
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["findings"] == []
    code, out, err = _run(
        "compute", "mse", "[1.5,2,3]", "[1,2,2]", "-f", "json", "--fail-on", "info"
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["findings"] == []


def test_json_array_file_is_quiet(tmp_path: Path, logits_csv: str) -> None:
    (tmp_path / "labels.json").write_text(json.dumps([float(v) for v in LABELS]))
    code, out, err = _run(
        "compute", "cross-entropy", logits_csv, str(tmp_path / "labels.json"), "-f", "json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["findings"] == []


def test_fractional_labels_from_text_are_still_an_error(tmp_path: Path, logits_csv: str) -> None:
    labels = tmp_path / "labels.txt"
    np.savetxt(labels, LABELS + 0.5)
    code, out, err = _run("compute", "cross-entropy", logits_csv, str(labels), "-f", "json")
    assert code == 1
    names = [(f["name"], f["severity"]) for f in json.loads(out)["findings"]]
    assert ("float-class-target", "error") in names
    assert "float-class-target" in err


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_float_labels_keep_one_finding_with_one_fix(tmp_path: Path, dtype: type) -> None:
    np.save(tmp_path / "logits.npy", LOGITS.astype(np.float32))
    np.save(tmp_path / "labels.npy", LABELS.astype(dtype))
    code, out, err = _run(
        "debug",
        "-l",
        "cross-entropy",
        str(tmp_path / "logits.npy"),
        str(tmp_path / "labels.npy"),
        "-f",
        "json",
    )
    assert code == 0 and err == ""
    (found,) = json.loads(out)["findings"]
    assert (found["name"], found["severity"]) == ("float-class-target", "warning")
    assert "target.long()" in found["fix"] and ".to(" not in found["fix"]
    assert [fix["code"] for fix in found["fixes"]] == ["target = target.long()"]


def test_binary_float64_predictions_keep_their_conversion_info(tmp_path: Path) -> None:
    np.save(tmp_path / "logits.npy", LOGITS)  # float64, computed in float32
    np.save(tmp_path / "labels.npy", LABELS)
    code, out, _ = _run(
        "compute",
        "cross-entropy",
        str(tmp_path / "logits.npy"),
        str(tmp_path / "labels.npy"),
        "-f",
        "json",
        "--fail-on",
        "info",
    )
    assert code == 1
    (found,) = json.loads(out)["findings"]
    assert (found["name"], found["severity"]) == ("dtype-conversion", "info")
    assert "from float64 to float32" in found["message"]
