"""`per_sample_summary.quantile_samples`: how many per-sample losses p50/p90/p99 came from.

Every finite loss for whole tensors, and for a streamed input while there are at most the
sketch's capacity (2^20) of them; beyond that a seeded uniform random sample of about that
many, the number the table's histogram title states. The capacity is lowered here so that
"beyond" is a few thousand samples.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from debug_runner import run_json

from losscli import accumulator
from losscli.cli import main


def _regression(tmp_path: Path, n: int) -> list[str]:
    rng = np.random.default_rng(7)
    target = rng.normal(size=n).astype(np.float32)
    prediction = (target + 0.5 * rng.normal(size=n)).astype(np.float32)
    np.save(tmp_path / "p.npy", prediction)
    np.save(tmp_path / "t.npy", target)
    return ["compute", "mse", str(tmp_path / "p.npy"), str(tmp_path / "t.npy")]


def test_every_loss_counts_when_there_are_few(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_json(capsys, _regression(tmp_path, 300))
    summary = outcome.report["per_sample_summary"]
    assert summary["quantile_samples"] == summary["n"] == 300
    per_sample = np.asarray(outcome.report["per_sample"])
    assert summary["p50"] == pytest.approx(float(np.quantile(per_sample, 0.5)), rel=1e-12)


def test_whole_tensors_take_every_loss_beyond_the_capacity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accumulator, "SKETCH_CAPACITY", 256)
    outcome = run_json(capsys, [*_regression(tmp_path, 4000), "--all-values"])
    summary = outcome.report["per_sample_summary"]
    assert summary["quantile_samples"] == 4000
    per_sample = np.asarray(outcome.report["per_sample"])
    assert summary["p99"] == pytest.approx(float(np.quantile(per_sample, 0.99)), rel=1e-12)


def test_streamed_beyond_the_capacity_the_json_and_the_table_name_the_same_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accumulator, "SKETCH_CAPACITY", 256)
    argv = [*_regression(tmp_path, 4000), "--memory-budget", "16KB"]
    outcome = run_json(capsys, argv)
    assert outcome.report["streamed"] is True
    sampled = outcome.report["per_sample_summary"]["quantile_samples"]
    assert 128 < sampled <= 512  # kept with probability 256/4000, at most twice the capacity
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit):
        main([*argv, "--no-color"])
    title = re.search(r"a uniform sample of (\d+) samples", capsys.readouterr().out)
    assert title is not None and int(title.group(1)) == sampled


@pytest.mark.parametrize(
    ("budget", "capacity"),
    [(None, 1 << 20), (4 << 30, 1 << 20), (512 << 20, 1 << 20), (64 << 20, 1 << 17), (8 << 20, 1 << 14), (1 << 20, 1 << 12), (16 << 10, 1 << 12)],
)  # fmt: skip
def test_the_sample_takes_a_share_of_the_memory_budget(budget: int | None, capacity: int) -> None:
    assert accumulator.sketch_capacity(budget) == capacity
    if budget is not None and capacity > 1 << 12:  # twice the capacity: 1/32 of the budget
        assert 2 * capacity * 8 <= budget // 32


def test_a_text_stream_keeps_a_sample_within_its_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # text's length is unknown beforehand: the sample halves whenever it outgrows twice the
    # capacity, which a 1MB budget sets at 2^12 (2^20 with no budget: 30,000 would all stay)
    rng = np.random.default_rng(3)
    rows = 30_000
    table = np.column_stack([rng.normal(size=rows), rng.normal(size=rows)])
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", header="p,t", comments="", fmt="%.6f")
    argv = ["compute", "mse", f"{path}:p", f"{path}:t", "--memory-budget", "1MB"]
    summary = run_json(capsys, argv).report["per_sample_summary"]
    assert summary["n"] == rows
    assert 1 << 12 <= summary["quantile_samples"] <= 2 << 12
    expected = np.quantile((table[:, 0] - table[:, 1]) ** 2, 0.5)
    assert summary["p50"] == pytest.approx(expected, rel=0.05)
