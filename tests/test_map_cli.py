"""``--map`` through the CLI: compute, debug and compare, whole and streamed.

The value with a map is torch's value on the tensors the map makes, and the JSON lists the
maps. A map that does not parse is a usage error before any input is read; a map that mixes
samples stops a streamed run with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import run_json

RNG = np.random.default_rng(5)


@pytest.fixture
def classes(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    labels = RNG.integers(1, 5, 200)  # 1-based labels of 4 classes
    logits = RNG.normal(size=(200, 4)).astype(np.float32)
    logits[np.arange(200), labels - 1] += 2
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path / "logits.npy", tmp_path / "labels.npy", logits, labels


def test_compute_with_a_map_is_torch_on_the_mapped_tensors(
    classes: tuple[Path, Path, np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    logits_path, labels_path, logits, labels = classes
    outcome = run_json(
        capsys,
        ["compute", "ce", str(logits_path), str(labels_path), "--map", "target = target - 1"],
    )
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels) - 1)
    assert outcome.code == 0 and outcome.report["value"] == float(expected)
    assert outcome.report["maps"] == ["target = target - 1"]
    assert outcome.alarms() == set()


def test_without_a_map_the_json_lists_none(
    classes: tuple[Path, Path, np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    logits_path, labels_path, _, _ = classes
    outcome = run_json(capsys, ["compute", "ce", str(logits_path), str(labels_path)])
    assert outcome.report["maps"] == []
    assert "class-index-out-of-range" in outcome.errors()


def test_every_map_reads_the_inputs_as_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prediction = RNG.normal(size=16).astype(np.float32)
    truth = RNG.normal(size=16).astype(np.float32)
    np.save(tmp_path / "p.npy", prediction)
    np.save(tmp_path / "t.npy", truth)
    swapped = run_json(
        capsys,
        [
            "compute",
            "huber",
            str(tmp_path / "p.npy"),
            str(tmp_path / "t.npy"),
            "--map",
            "input = target * 2",
            "--map",
            "target = input",
        ],
    )
    expected = F.huber_loss(torch.from_numpy(truth) * 2, torch.from_numpy(prediction))
    assert swapped.report["value"] == float(expected)


def test_debug_applies_the_map_before_every_check(
    classes: tuple[Path, Path, np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    logits_path, labels_path, _, _ = classes
    outcome = run_json(
        capsys,
        [
            "debug",
            str(logits_path),
            str(labels_path),
            "--loss",
            "ce",
            "--map",
            "target = target - 1",
        ],
    )
    assert outcome.code == 0 and outcome.alarms() == set()


def test_compare_gives_each_loss_the_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prediction = RNG.normal(size=(32, 1)).astype(np.float32)
    truth = RNG.normal(size=32).astype(np.float32)
    np.save(tmp_path / "p.npy", prediction)
    np.save(tmp_path / "t.npy", truth)
    code = 0
    try:
        from losscli.cli import main

        main(
            [
                "compare",
                str(tmp_path / "p.npy"),
                str(tmp_path / "t.npy"),
                "-l",
                "mse",
                "-l",
                "l1",
                "--map",
                "input = input.squeeze(1)",
                "--format",
                "json",
            ]
        )
    except SystemExit as done:
        code = int(done.code or 0)
    record = json.loads(capsys.readouterr().out)
    assert code == 0
    squeezed = torch.from_numpy(prediction).squeeze(1)
    values = {entry["loss"]: entry["value"] for entry in record["losses"]}
    assert values == {
        "mse": float(F.mse_loss(squeezed, torch.from_numpy(truth))),
        "l1": float(F.l1_loss(squeezed, torch.from_numpy(truth))),
    }
    assert all(entry["maps"] == ["input = input.squeeze(1)"] for entry in record["losses"])


def _cli(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "losscli", *arguments],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("input = input.numpy()", "numpy"),
        ("input = __import__('os')", "__import__"),
        ("x = input", "x is not an input of mse"),
        ("input - 1", "NAME = EXPR"),
        ("input = lambda: 1", "lambda"),
        ("input = input[target]", "target"),
    ],
)
def test_a_map_that_does_not_parse_is_one_line_before_any_input(line: str, names: str) -> None:
    # the inputs do not exist: the map is judged first
    done = _cli("compute", "mse", "missing_p.npy", "missing_t.npy", "--map", line)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert names in done.stderr and "missing_p.npy" not in done.stderr


def test_a_map_torch_rejects_is_one_line(tmp_path: Path) -> None:
    np.save(tmp_path / "y.npy", np.arange(8))
    np.save(tmp_path / "p.npy", np.zeros((8, 3), np.float32))
    done = _cli(
        "compute", "ce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"), "--map",
        "target = target.mean()",
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "torch raised" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_streamed_map_agrees_with_the_whole_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = RNG.integers(1, 6, 60_000)
    logits = RNG.normal(size=(60_000, 5)).astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    arguments = [
        "compute",
        "ce",
        str(tmp_path / "logits.npy"),
        str(tmp_path / "labels.npy"),
        "--map",
        "target = target - 1",
        "--map",
        "input = input.log_softmax(1)",
    ]
    whole = run_json(capsys, arguments)
    streamed = run_json(capsys, [*arguments, "--memory-budget", "1MB"])
    assert streamed.report["streamed"] is True and whole.report["streamed"] is False
    assert streamed.report["value"] == pytest.approx(whole.report["value"], rel=1e-6)
    assert streamed.report["inputs"] == whole.report["inputs"]
    assert streamed.alarms() == whole.alarms() == set()
    # the fixes of a streamed run are shown, not tried
    expected = F.cross_entropy(
        F.log_softmax(torch.from_numpy(logits), 1), torch.from_numpy(labels) - 1
    )
    assert whole.report["value"] == float(expected)


def test_a_map_that_mixes_samples_stops_a_streamed_run(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", RNG.normal(size=(60_000, 5)).astype(np.float32))
    np.save(tmp_path / "y.npy", RNG.integers(0, 5, 60_000))
    done = _cli(
        "compute", "ce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"),
        "--map", "input = input.softmax(0)", "--memory-budget", "1MB",
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "mixes samples" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # near miss: the same map on the whole input is fine (it is the user's to judge)
    whole = _cli(
        "compute", "ce", str(tmp_path / "p.npy"), str(tmp_path / "y.npy"),
        "--map", "input = input.softmax(0)", "--format", "json",
    )  # fmt: skip
    assert whole.returncode in (0, 1), whole.stderr
