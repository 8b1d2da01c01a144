"""``--dask``: shards computed on a Dask cluster give the JSON of the single-machine run.

A ``LocalCluster`` of 2 worker processes (started once for the module) stands in for a
cluster given by address; one test runs ``--dask local`` itself. A worker that dies while
computing a shard is replaced and the shard computed again; a shard that fails is named.
The module is skipped, with the reason, where Dask is not installed (CI installs it).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("distributed", reason="Dask is not installed (pip install 'losscli[dask]')")

import dask
from distributed import LocalCluster
from test_shards import write_shards

from losscli import shards
from losscli.cli import main

# what differs between the engines, by design
ENGINE_FIELDS = ("engine", "workers")


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    # a task whose worker dies twice is given up (KilledWorker): one retry is allowed
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        yield cluster.scheduler_address


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, budget: str = "512MB"
) -> tuple[int, dict[str, Any], str]:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--format", "json", "--memory-budget", budget])
    captured = capsys.readouterr()
    record = json.loads(captured.out) if captured.out.strip() else {}
    return int(done.value.code or 0), record, captured.err


def without_engine(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in ENGINE_FIELDS}


def _classification(directory: Path, rows: int, sizes: tuple[int, ...]) -> dict[str, str]:
    """Softmax outputs given as logits, a NaN: findings in several shards."""
    rng = np.random.default_rng(rows)
    logits = rng.standard_normal((rows, 5)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probabilities[rows // 2, 1] = np.nan
    return write_shards(
        directory, {"input": probabilities, "target": rng.integers(0, 5, rows)}, sizes
    )


def _regression(directory: Path, rows: int, sizes: tuple[int, ...]) -> dict[str, str]:
    rng = np.random.default_rng(rows)
    prediction = rng.standard_normal(rows).astype(np.float32)
    return write_shards(
        directory, {"input": prediction, "target": prediction + rng.standard_normal(rows)}, sizes
    )


@pytest.mark.parametrize(
    ("loss", "make", "rows", "sizes"),
    [
        ("cross-entropy", _classification, 300, (1, 120, 7, 60)),
        # more samples than the evidence holds: sampled checks, merged across workers
        ("mse", _regression, 150_000, (40_000, 1, 30_000, 50_000)),
    ],
    ids=["findings", "sampled-evidence"],
)
def test_a_cluster_gives_the_json_of_the_single_machine_run(
    loss: str,
    make: Any,
    rows: int,
    sizes: tuple[int, ...],
    address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    globs = make(tmp_path, rows, sizes)
    code, local, err = run(capsys, "compute", loss, globs["input"], globs["target"])
    assert code != 2, err
    dask_code, found, err = run(
        capsys, "compute", loss, globs["input"], globs["target"], "--dask", address
    )
    assert dask_code == code, err
    assert (local["engine"], local["workers"]) == ("local", 1)
    assert found["engine"] == "dask" and found["workers"] in (1, 2)
    assert without_engine(found) == without_engine(local)


def test_sampled_quantiles_and_findings_on_sampled_evidence_are_the_local_ones(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """More samples than an 8MB budget's quantile sample (2^14) and than the evidence keeps:
    the quantiles from the merged samples; and bce-logits with a target outside [0, 1], a
    chunk finding merged from the workers' partial results."""
    rng = np.random.default_rng(12)
    rows = 120_000
    target = (rng.random(rows) < 0.3).astype(np.float32)
    target[77_777] = 2.0
    sizes = (30_000, 1, 45_000)
    for loss in ("mse", "bce-logits"):
        globs = write_shards(
            tmp_path / loss,
            {"input": rng.standard_normal(rows).astype(np.float32), "target": target},
            sizes,
        )
        argv = ["compute", loss, globs["input"], globs["target"]]
        code, local, err = run(capsys, *argv, budget="8MB")
        assert code != 2, err
        assert local["per_sample_summary"]["quantile_samples"] < rows  # sampled, not exact
        if loss == "bce-logits":
            assert "target-outside-unit-interval" in {f["name"] for f in local["findings"]}
        dask_code, found, err = run(capsys, *argv, "--dask", address, budget="8MB")
        assert dask_code == code, err
        assert without_engine(found) == without_engine(local)


def test_text_shards_are_counted_on_the_workers(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(11)
    for name, fmt in (("p", "%.9g"), ("t", "%.9g")):
        (tmp_path / name).mkdir()
        for index, rows in enumerate((5, 1, 40, 17)):
            values = rng.standard_normal((rows, 2))
            np.savetxt(tmp_path / name / f"rank{index}.csv", values, fmt=fmt, delimiter=",")
    argv = [
        "compute",
        "huber",
        str(tmp_path / "p" / "rank*.csv"),
        str(tmp_path / "t" / "rank*.csv"),
    ]
    code, local, err = run(capsys, *argv)
    assert code == 0, err
    code, found, err = run(capsys, *argv, "--dask", address)
    assert code == 0, err
    assert found["inputs"]["input"]["shape"] == [63, 2]
    assert without_engine(found) == without_engine(local)


def test_dask_local_starts_its_own_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    globs = _regression(tmp_path, 50, (10, 1, 20))
    code, local, _ = run(capsys, "compute", "mse", globs["input"], globs["target"])
    code, found, err = run(
        capsys, "compute", "mse", globs["input"], globs["target"], "--dask", "local"
    )
    assert code == 0, err
    assert found["engine"] == "dask" and 1 <= found["workers"] <= (os.cpu_count() or 1)
    assert without_engine(found) == without_engine(local)


@dataclass(frozen=True)
class DyingWork(shards.ShardWork):
    """Shard work whose worker process dies while computing shard 1: the first time only
    (a marker file remembers), or every time."""

    marker: str = ""
    always: bool = False

    def __call__(self, index: int, base: int, advance: Any = None) -> Any:
        if index == 1 and (self.always or not os.path.exists(self.marker)):
            Path(self.marker).touch()
            os._exit(1)  # the worker process dies, as an out-of-memory kill would end it
        return super().__call__(index, base, advance)


def test_a_worker_that_dies_is_replaced_and_the_shard_computed_again(
    address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    globs = _regression(tmp_path, 60, (10, 20, 5))
    _, local, _ = run(capsys, "compute", "mse", globs["input"], globs["target"])
    marker = tmp_path / "died"
    monkeypatch.setattr(shards, "ShardWork", functools.partial(DyingWork, marker=str(marker)))
    code, found, err = run(
        capsys, "compute", "mse", globs["input"], globs["target"], "--dask", address
    )
    assert marker.exists(), "the worker never died: the test proves nothing"
    assert code == 0, err
    assert without_engine(found) == without_engine(local)


def test_a_shard_whose_workers_keep_dying_is_named(
    address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    globs = _regression(tmp_path, 60, (10, 20, 5))
    marker = tmp_path / "died"
    monkeypatch.setattr(
        shards, "ShardWork", functools.partial(DyingWork, marker=str(marker), always=True)
    )
    code, found, err = run(
        capsys, "compute", "mse", globs["input"], globs["target"], "--dask", address
    )
    lines = err.strip().splitlines()
    assert code == 2 and found == {} and len(lines) == 1, err
    # Dask gives up on the task whose workers died (here shard 1's), or on one queued beside it
    assert re.search(r"input/part-\d+\.npy failed on the Dask cluster: workers died", lines[0])


def test_a_shard_that_cannot_be_read_is_named_with_the_readers_message(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("p", "t"):
        (tmp_path / name).mkdir()
        for index in range(3):
            text = "1.5\n2.5\n" if (name, index) != ("t", 2) else "1.5\nabc\n"
            (tmp_path / name / f"{index}.csv").write_text(text)
    code, found, err = run(
        capsys,
        "compute",
        "mse",
        str(tmp_path / "p" / "*.csv"),
        str(tmp_path / "t" / "*.csv"),
        "--dask",
        address,
    )
    lines = err.strip().splitlines()
    assert code == 2 and found == {} and len(lines) == 1, err
    assert "t/2.csv" in lines[0] and "abc" in lines[0] and "Traceback" not in err


def test_an_unreachable_scheduler_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    globs = _regression(tmp_path, 10, (5,))
    code, found, err = run(
        capsys, "compute", "mse", globs["input"], globs["target"], "--dask", "tcp://127.0.0.1:9"
    )
    assert code == 2 and found == {} and len(err.strip().splitlines()) == 1, err
    assert "cannot reach a Dask scheduler" in err


def test_a_listener_that_is_not_a_scheduler_is_one_line_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port that accepts and never answers (a web server, another service)."""
    import socket

    from losscli import dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_SECONDS", 1)
    globs = _regression(tmp_path, 10, (5,))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        code, found, err = run(
            capsys, "compute", "mse", globs["input"], globs["target"], "--dask", address
        )
    assert code == 2 and found == {} and len(err.strip().splitlines()) == 1, err
    assert "cannot reach a Dask scheduler" in err


@pytest.mark.parametrize("address", ["tls://127.0.0.1:1", "tcp://127.0.0.1:abc", "foo"])
def test_an_address_dask_cannot_use_is_one_line(
    address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from losscli import dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_SECONDS", 1)
    globs = _regression(tmp_path, 10, (5,))
    code, found, err = run(
        capsys, "compute", "mse", globs["input"], globs["target"], "--dask", address
    )
    assert code == 2 and found == {} and len(err.strip().splitlines()) == 1, err
    assert f"--dask {address}: cannot reach a Dask scheduler" in err and "internal" not in err


def test_compare_uses_one_cluster_and_fails_once_on_a_bad_address(
    address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from losscli import dask_engine

    globs = _regression(tmp_path, 30, (10, 1))
    argv = ["compare", globs["input"], globs["target"], "-l", "mse", "-l", "l1"]
    code, local, err = run(capsys, *argv)
    assert code == 0, err
    connections: list[str] = []
    connected = dask_engine._connected

    def counted(to: str) -> Any:
        connections.append(to)
        return connected(to)

    monkeypatch.setattr(dask_engine, "_connected", counted)
    code, found, err = run(capsys, *argv, "--dask", address)
    assert code == 0, err
    assert connections == [address]  # one session for both losses
    assert [r["value"] for r in found["losses"]] == [r["value"] for r in local["losses"]]
    assert {r["engine"] for r in found["losses"]} == {"dask"}
    monkeypatch.setattr(dask_engine, "CONNECT_SECONDS", 1)
    code, found, err = run(capsys, *argv, "--dask", "tcp://127.0.0.1:1")
    assert code == 2 and found == {} and len(err.strip().splitlines()) == 1, err


def test_the_empty_first_shard_of_a_rank_is_merged_like_the_local_run(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(17)
    values = rng.standard_normal((60_000, 2)).astype(np.float32)
    for name in ("p", "t"):
        (tmp_path / name).mkdir()
        for index, (start, end) in enumerate(((0, 0), (0, 25_000), (25_000, 60_000))):
            np.save(
                tmp_path / name / f"rank{index}.npy", values[start:end] * (2 if name == "t" else 1)
            )
    argv = ["compute", "mse", str(tmp_path / "p" / "rank*.npy"), str(tmp_path / "t" / "rank*.npy")]
    code, local, err = run(capsys, *argv, budget="8MB")
    assert code == 0 and local["per_sample_summary"]["n"] == 60_000, err
    code, found, err = run(capsys, *argv, "--dask", address, budget="8MB")
    assert code == 0, err
    assert without_engine(found) == without_engine(local)
