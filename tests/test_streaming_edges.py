"""Inputs at the edges of streaming: unbatched losses, inputs that end early, broadcast
arguments, options, float16, large integers in text, and output files under interruption.

Each case was found by trying the pipeline as a hostile user would; whole and streamed must
give one answer, and nothing may crash.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from parity import TINY, parity, run

RNG = np.random.default_rng(11)


def _npy(tmp_path: Path, name: str, values: np.ndarray) -> str:
    np.save(tmp_path / name, values)
    return str(tmp_path / name)


@pytest.mark.parametrize(
    ("loss", "extra"),
    [
        ("triplet-margin", 2),
        ("multilabel-soft-margin", 1),
        ("kl-div", 1),
        ("cross-entropy", 0),
    ],
)
def test_a_one_sample_input_is_never_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loss: str, extra: int
) -> None:
    """A 1-D input that torch reads as one sample: streaming would average pieces of it."""
    first = _npy(tmp_path, "a.npy", RNG.normal(size=101).astype(np.float32))
    if loss == "cross-entropy":
        others = ["[3]"]
    elif loss == "multilabel-soft-margin":
        others = [_npy(tmp_path, "y.npy", (RNG.random(101) < 0.3).astype(np.float32))]
    elif loss == "kl-div":
        others = [_npy(tmp_path, "t.npy", np.full(101, 1 / 101, np.float32))]
    else:
        others = [
            _npy(tmp_path, f"{i}.npy", RNG.normal(size=101).astype(np.float32))
            for i in range(extra)
        ]
    code, _, err = run(capsys, "compute", loss, first, *others, "--memory-budget", TINY)
    assert code == 2 and "one sample" in err and "cannot be split into chunks" in err
    code, whole, err = run(capsys, "compute", loss, first, *others)
    assert code in (0, 1), err
    assert whole["checks"]["evidence_samples"] is None  # never sampled either


def test_a_large_one_sample_input_is_judged_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [_npy(tmp_path, f"{n}.npy", RNG.normal(size=70_000).astype(np.float32)) for n in "apn"]
    code, record, err = run(capsys, "compute", "triplet-margin", *files)
    assert code == 0, err
    assert record["per_sample_summary"]["n"] == 1


def test_inputs_that_end_within_the_first_chunk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = tmp_path / "long.csv"
    np.savetxt(long, RNG.normal(size=101))
    short = tmp_path / "short.csv"
    np.savetxt(short, RNG.normal(size=10))
    record = parity(capsys, ["compute", "mse", str(long), str(short)], "ends early")
    assert [f["name"] for f in record["findings"]] == ["shape-mismatch"]
    assert record["inputs"]["target"]["shape"] == [10]
    empty = _npy(tmp_path, "empty.npy", np.zeros(0, np.float32))
    record = parity(capsys, ["compute", "mse", empty, str(long)], "empty")
    assert "empty-input" in [f["name"] for f in record["findings"]]


@pytest.mark.parametrize("variance", ["file", "inline"])
def test_a_broadcast_argument_goes_whole_to_every_chunk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variance: str
) -> None:
    pred = _npy(tmp_path, "p.npy", RNG.normal(size=101).astype(np.float32))
    true = _npy(tmp_path, "t.npy", RNG.normal(size=101).astype(np.float32))
    var = _npy(tmp_path, "v.npy", np.array([0.5], np.float32)) if variance == "file" else "[0.5]"
    record = parity(capsys, ["compute", "gaussian-nll", pred, true, var], "one variance")
    assert record["value"] is not None and record["findings"] == []
    assert record["inputs"]["var"]["shape"] == [1]


def test_options_of_the_wrong_length_are_findings_not_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probabilities = _npy(tmp_path, "q.npy", RNG.uniform(0.05, 0.95, 101).astype(np.float32))
    targets = _npy(tmp_path, "y.npy", (RNG.random(101) < 0.5).astype(np.float32))
    record = parity(capsys, ["compute", "bce", probabilities, targets, "--weight", "[1,2]"], "w")
    assert [f["name"] for f in record["findings"]] == ["weight-length-mismatch"]
    pred = _npy(tmp_path, "p.npy", RNG.normal(size=101).astype(np.float32))
    record = parity(capsys, ["compute", "mse", pred, "[1,2,3]"], "inline target")
    assert "shape-mismatch" in [f["name"] for f in record["findings"]]


def test_zero_class_weights_give_nan_gradients_on_both_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = _npy(tmp_path, "l.npy", RNG.normal(size=(101, 5)).astype(np.float32))
    labels = _npy(tmp_path, "y.npy", RNG.integers(0, 5, 101))
    record = parity(
        capsys, ["compute", "cross-entropy", logits, labels, "--weight", "[0,0,0,0,0]"], "zero"
    )
    names = [f["name"] for f in record["findings"]]
    assert "non-finite-loss" in names and "non-finite-gradient" in names


def test_float16_values_agree_to_their_rounding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _npy(tmp_path, "p.npy", RNG.normal(size=101).astype(np.float32))
    true = _npy(tmp_path, "t.npy", RNG.normal(size=101).astype(np.float32))
    record = parity(capsys, ["compute", "mse", pred, true, "--dtype", "float16"], "float16")
    assert record["value"] == float(np.float16(record["value"]))


def test_whole_numbers_too_large_for_float32_are_one_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integer column that turns float late: the same finding whether read whole or not."""
    from losscli.loaders import csv as csv_loader

    monkeypatch.setattr(csv_loader, "_STREAM_BLOCK_BYTES", 1024)
    path = tmp_path / "big.csv"
    path.write_text("16777217\n" * 400 + "0.5\n")
    zeros = _npy(tmp_path, "z.npy", np.zeros(401, np.float32))
    record = parity(capsys, ["compute", "mse", zeros, str(path)], "large integers")
    assert [f["name"] for f in record["findings"]] == ["dtype-conversion", "constant-input"]


def test_compare_reports_a_loss_that_cannot_stream_as_its_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _npy(tmp_path, "p.npy", RNG.normal(size=101).astype(np.float32))
    true = _npy(tmp_path, "t.npy", RNG.normal(size=101).astype(np.float32))
    code, record, _ = run(
        capsys, "compare", pred, true, "-l", "mse", "-l", "cross-entropy", "--memory-budget", TINY
    )
    assert code == 1
    entries = {entry["loss"]: entry for entry in record["losses"]}
    assert entries["mse"]["value"] is not None
    assert "cannot be split into chunks" in entries["cross-entropy"]["error"]


# ------------------------------------------------------------------ --per-sample-out


def test_per_sample_out_is_never_an_option_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = _npy(tmp_path, "l.npy", RNG.normal(size=(20, 5)).astype(np.float32))
    labels = _npy(tmp_path, "y.npy", RNG.integers(0, 5, 20))
    weights = _npy(tmp_path, "w.npy", np.arange(1, 6, dtype=np.float32))
    before = Path(weights).read_bytes()
    code, _, err = run(
        capsys, "compute", "cross-entropy", logits, labels, "--weight", weights,
        "--per-sample-out", weights,
    )  # fmt: skip
    assert code == 2 and "is an input" in err
    assert Path(weights).read_bytes() == before


def test_an_output_that_cannot_be_rendered_writes_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _npy(tmp_path, "p.npy", RNG.normal(size=5000).astype(np.float32))
    true = _npy(tmp_path, "t.npy", RNG.normal(size=5000).astype(np.float32))
    out = tmp_path / "losses.csv"
    with pytest.raises(SystemExit) as done:
        from losscli.cli import main

        main(["compute", "mse", pred, true, "--memory-budget", TINY, "--format", "csv",
              "--per-sample-out", str(out)])  # fmt: skip
    assert done.value.code == 2
    assert "--format csv needs every per-sample loss" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.glob(".losses.csv.*")) == []


@pytest.mark.slow
def test_sigterm_exits_130_and_leaves_no_file(tmp_path: Path) -> None:
    pred = _npy(tmp_path, "p.npy", RNG.normal(size=3_000_000).astype(np.float32))
    true = _npy(tmp_path, "t.npy", RNG.normal(size=3_000_000).astype(np.float32))
    out = tmp_path / "losses.npy"
    process = subprocess.Popen(
        [sys.executable, "-m", "losscli", "compute", "mse", pred, true,
         "--memory-budget", "4KB", "--per-sample-out", str(out), "--format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".losses.npy.*")) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("finished before it could be interrupted")
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert not out.exists() and list(tmp_path.glob(".losses.npy.*")) == []


def test_streamed_json_says_streamed_even_without_a_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _npy(tmp_path, "p.npy", np.zeros((101, 1), np.float32))
    true = _npy(tmp_path, "t.npy", np.zeros(101, np.float32))
    code, record, _ = run(capsys, "compute", "mse", pred, true, "--memory-budget", TINY)
    assert code == 1 and record["value"] is None and record["streamed"] is True
    assert json.dumps(record)  # JSON-ready
