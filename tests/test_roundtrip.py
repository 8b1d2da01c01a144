"""The same numbers saved in every format give identical ``compute`` results.

Floats are written to text with ``repr`` (shortest round-trip form), so every format holds
exactly the same float64 values and torch must return the same value, per-sample losses
and gradient, bit for bit.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from losscli.cli import app

runner = CliRunner()
RNG = np.random.default_rng(7)
PRED = RNG.normal(size=(6, 3))  # [batch, classes] logits
TARGET = RNG.normal(size=(6, 3))  # [batch, classes] regression targets
LABELS = np.array([0, 2, 1, 1, 0, 2])  # [batch] class indices


def _csv_text(values: np.ndarray, delimiter: str, header: bool) -> str:
    table = values.reshape(len(values), -1)
    lines = [delimiter.join(f"c{i}" for i in range(table.shape[1]))] if header else []
    lines += [delimiter.join(repr(v.item()) for v in row) for row in table]
    return "\n".join(lines) + "\n"


def _write_npy(path: Path, values: np.ndarray) -> str:
    np.save(path.with_suffix(".npy"), values)
    return str(path.with_suffix(".npy"))


def _write_npz(path: Path, values: np.ndarray) -> str:
    np.savez_compressed(path.with_suffix(".npz"), values=values, other=np.zeros(2))
    return f"{path.with_suffix('.npz')}:values"


def _write_csv(path: Path, values: np.ndarray) -> str:
    target = path.with_suffix(".csv")
    target.write_text(_csv_text(values, ",", header=True))
    return str(target)


def _write_tsv(path: Path, values: np.ndarray) -> str:
    target = path.with_suffix(".tsv")
    target.write_text(_csv_text(values, "\t", header=False))
    return str(target)


def _write_csv_gz(path: Path, values: np.ndarray) -> str:
    target = path.with_suffix(".csv.gz")
    target.write_bytes(gzip.compress(_csv_text(values, ",", header=True).encode()))
    return str(target)


def _table(values: np.ndarray) -> pa.Table:
    table = values.reshape(len(values), -1)
    return pa.table({f"c{i}": table[:, i] for i in range(table.shape[1])})


def _write_parquet(path: Path, values: np.ndarray) -> str:
    pq.write_table(_table(values), path.with_suffix(".parquet"))
    return str(path.with_suffix(".parquet"))


def _write_parquet_list(path: Path, values: np.ndarray) -> str:
    # one list column [batch] of [classes] → (N, C); 1-D values stay plain columns
    target = path.with_name(path.name + "-list.parquet")
    if values.ndim == 1:
        pq.write_table(_table(values), target)
    else:
        column = pa.FixedSizeListArray.from_arrays(values.reshape(-1), values.shape[1])
        pq.write_table(pa.table({"scores": column, "id": np.arange(len(values))}), target)
        return f"{target}:scores"
    return str(target)


def _write_feather(path: Path, values: np.ndarray) -> str:
    feather.write_feather(_table(values), path.with_suffix(".feather"))
    return str(path.with_suffix(".feather"))


def _write_pt(path: Path, values: np.ndarray) -> str:
    torch.save(
        {"values": torch.from_numpy(values), "step": torch.tensor(3)}, path.with_suffix(".pt")
    )
    return f"{path.with_suffix('.pt')}:values"


WRITERS: dict[str, Callable[[Path, np.ndarray], str]] = {
    "npy": _write_npy,
    "npz": _write_npz,
    "csv": _write_csv,
    "tsv": _write_tsv,
    "csv.gz": _write_csv_gz,
    "parquet": _write_parquet,
    "parquet-list": _write_parquet_list,
    "feather": _write_feather,
    "pt": _write_pt,
}


def _compute(loss: str, *inputs: str) -> dict[str, object]:
    result = runner.invoke(app, ["compute", loss, *inputs, "--format", "json", "--all-values"])
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    return {key: report[key] for key in ("value", "per_sample", "gradient")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    directory = tmp_path_factory.mktemp("reference")
    return {
        "mse": _compute(
            "mse", _write_npy(directory / "pred", PRED), _write_npy(directory / "target", TARGET)
        ),
        "cross-entropy": _compute(
            "cross-entropy",
            _write_npy(directory / "logits", PRED),
            _write_npy(directory / "labels", LABELS),
        ),
    }


def test_reference_matches_torch(reference: dict[str, dict[str, object]]) -> None:
    # the numbers every format must reproduce are torch's own
    expected = torch.nn.functional.mse_loss(
        torch.from_numpy(PRED).float(), torch.from_numpy(TARGET).float()
    )
    assert reference["mse"]["value"] == pytest.approx(expected.item(), rel=0, abs=0)
    logits = torch.from_numpy(PRED).float()
    ce = torch.nn.functional.cross_entropy(logits, torch.from_numpy(LABELS))
    assert reference["cross-entropy"]["value"] == ce.item()
    # the comparison below covers every value, not just the scalar
    for report in reference.values():
        assert len(report["per_sample"]) == len(PRED)  # type: ignore[arg-type]
        gradient = report["gradient"]["input"]  # type: ignore[index]
        assert np.asarray(gradient["values"]).shape == PRED.shape


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_same_numbers_same_results(
    fmt: str, reference: dict[str, dict[str, object]], tmp_path: Path
) -> None:
    write = WRITERS[fmt]
    mse = _compute("mse", write(tmp_path / "pred", PRED), write(tmp_path / "target", TARGET))
    assert mse == reference["mse"]
    labels = write(tmp_path / "labels", LABELS)
    ce = _compute("cross-entropy", write(tmp_path / "logits", PRED), labels)
    assert ce == reference["cross-entropy"]
