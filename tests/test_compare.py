"""`losscli compare`: several losses on the same inputs (loaded once), side by side, in every
format; losses whose inputs do not fit are rows, not crashes."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from typer.testing import CliRunner

from losscli import compare as comparison
from losscli import losses, pipeline
from losscli.cli import app
from losscli.render import compare as render_compare

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PRED = str(SAMPLES / "regression" / "pred.npy")
TRUE = str(SAMPLES / "regression" / "true.npy")


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["compare", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _torch_values() -> dict[str, float]:
    pred, true = torch.from_numpy(np.load(PRED)), torch.from_numpy(np.load(TRUE))
    return {
        "mse": float(F.mse_loss(pred, true)),
        "l1": float(F.l1_loss(pred, true)),
        "huber": float(F.huber_loss(pred, true)),
    }


def test_json_values_are_torchs_and_equal_to_compute() -> None:
    code, out, err = _run(PRED, TRUE, "-l", "mse", "-l", "l1", "-l", "huber", "--format", "json")
    assert code == 0, err
    record = json.loads(out)
    assert record["schema_version"] == 1
    values = {entry["loss"]: entry["value"] for entry in record["losses"]}
    assert values == _torch_values()
    single = runner.invoke(app, ["compute", "huber", PRED, TRUE, "--format", "json"])
    assert record["losses"][2] == json.loads(single.stdout)


def test_ndjson_is_one_compute_object_per_loss_in_order() -> None:
    code, out, _ = _run(PRED, TRUE, "-l", "huber", "-l", "mse", "-l", "l1", "-f", "ndjson")
    assert code == 0
    lines = out.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["loss"] for r in records] == ["huber", "mse", "l1"]
    for record in records:
        assert {"loss", "torch", "options", "value", "per_sample_summary", "gradient"} <= set(
            record
        )
    assert {r["loss"]: r["value"] for r in records} == _torch_values()


def test_a_loss_with_another_arity_is_a_row_with_its_error() -> None:
    code, out, err = _run(PRED, TRUE, "-l", "mse", "-l", "gaussian-nll", "-f", "ndjson")
    assert code == 1  # the default --fail-on error counts a loss that could not run
    mse, gaussian = (json.loads(line) for line in out.splitlines())
    assert mse["value"] == _torch_values()["mse"]
    assert gaussian["value"] is None
    assert gaussian["error"].startswith("gaussian-nll takes 3 inputs (input target var), got 2")
    assert "losscli: exit 1: gaussian-nll: could not run" in err
    assert _run(PRED, TRUE, "-l", "mse", "-l", "gaussian-nll", "--fail-on", "never")[0] == 0


def test_a_torch_rejection_is_a_row_with_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    import losscli.compute

    real = losscli.compute.compute_chunk

    def rejecting(spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        if spec.name == "l1":
            raise losscli.compute.TorchRejected("l1 said no")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(losscli.compute, "compute_chunk", rejecting)
    code, out, err = _run(PRED, TRUE, "-l", "l1", "-l", "mse", "-f", "json")
    assert code == 1
    l1, mse = json.loads(out)["losses"]
    assert l1["value"] is None
    assert [f["name"] for f in l1["findings"]] == ["torch-rejected"]
    assert mse["value"] == _torch_values()["mse"]
    assert "l1: 1 finding(s) at or above --fail-on error: torch-rejected" in err


def test_blocking_findings_do_not_stop_the_other_losses() -> None:
    # bce on regression targets: target-outside-unit-interval blocks torch for bce only
    code, out, _ = _run(PRED, TRUE, "-l", "bce", "-l", "mse", "-f", "json")
    assert code == 1
    bce, mse = json.loads(out)["losses"]
    assert bce["value"] is None and "target-outside-unit-interval" in {
        f["name"] for f in bce["findings"]
    }
    assert mse["value"] == _torch_values()["mse"]


def test_each_loss_gets_the_options_it_takes() -> None:
    code, out, _ = _run(PRED, TRUE, "-l", "mse", "-l", "huber", "--delta", "0.1", "-f", "json")
    assert code == 0
    mse, huber = json.loads(out)["losses"]
    pred, true = torch.from_numpy(np.load(PRED)), torch.from_numpy(np.load(TRUE))
    assert huber["options"]["delta"] == 0.1
    assert huber["value"] == float(F.huber_loss(pred, true, delta=0.1))
    assert "delta" not in mse["options"]
    assert mse["value"] == float(F.mse_loss(pred, true))


def test_an_option_no_compared_loss_takes_is_a_usage_error() -> None:
    code, out, err = _run(PRED, TRUE, "-l", "mse", "-l", "l1", "--delta", "0.5")
    assert code == 2
    assert out == ""
    assert "--delta applies to none of the compared losses (mse, l1)" in err


def test_an_option_value_one_loss_refuses_is_that_losss_row() -> None:
    # batchmean is a reduction of kl-div only
    code, out, _ = _run(
        PRED, TRUE, "-l", "mse", "-l", "kl-div", "--reduction", "batchmean", "-f", "json"
    )
    mse, kl = json.loads(out)["losses"]
    assert mse["value"] is None and "--reduction for mse must be one of" in mse["error"]
    assert kl["options"]["reduction"] == "batchmean"
    assert code == 1


def test_standard_input_is_read_once_for_every_loss() -> None:
    pred = np.load(PRED)
    text = "\n".join(repr(float(v)) for v in pred) + "\n"
    code, out, err = _run("-", TRUE, "-l", "mse", "-l", "l1", "-f", "ndjson", stdin=text)
    assert code == 0, err
    values = {json.loads(line)["loss"]: json.loads(line)["value"] for line in out.splitlines()}
    assert values == pytest.approx({k: v for k, v in _torch_values().items() if k != "huber"})


def test_misspelled_loss_suggests_the_name() -> None:
    code, out, err = _run(PRED, TRUE, "-l", "mse", "-l", "hubr")
    assert code == 2
    assert out == ""
    assert "unknown loss 'hubr'; did you mean 'huber'?" in err


def test_aliases_and_torch_names_are_one_row() -> None:
    # without -l, compare takes the losses of the inferred task: test_compare_task.py
    code, out, _ = _run(
        PRED, TRUE, "-l", "mse", "-l", "l2", "-l", "MSELoss", "-l", "F.mse_loss", "-f", "ndjson"
    )
    assert code == 0
    assert len(out.splitlines()) == 1


def test_csv_is_one_row_per_loss() -> None:
    code, out, _ = _run(PRED, TRUE, "-l", "mse", "-l", "gaussian-nll", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["loss"] for r in rows] == ["mse", "gaussian-nll"]
    assert float(rows[0]["value"]) == _torch_values()["mse"]
    assert rows[0]["n"] == "8" and rows[0]["error"] == ""
    assert rows[1]["value"] == "" and rows[1]["error"].startswith("gaussian-nll takes 3 inputs")
    assert code == 1


def test_github_annotations_carry_the_loss_name() -> None:
    distances = str(SAMPLES / "mistakes" / "distances.npy")
    zero_one = str(SAMPLES / "mistakes" / "zero_one_targets.npy")
    code, out, _ = _run(distances, zero_one, "-l", "hinge", "-l", "l1", "-l", "ctc", "-f", "github")
    assert code == 1
    lines = out.splitlines()
    assert all(re.match(r"^::(error|warning|notice)( title=[^:]*)?::", line) for line in lines)
    assert any(
        line.startswith("::error title=losscli hinge-embedding sign-target-expected::")
        for line in lines
    )
    assert any(line.startswith("::notice title=losscli l1::l1 = ") for line in lines)
    assert any(
        line.startswith("::error title=losscli ctc::could not run: ctc takes 4") for line in lines
    )


def test_table_view_shows_every_loss_side_by_side() -> None:
    specs = [losses.get(n) for n in ("mse", "l1", "gaussian-nll")]
    entries = comparison.evaluate_all(
        [s for s in specs if s is not None], [PRED, TRUE], {}, pipeline.Settings(), budget=1 << 30
    )
    console = Console(width=100, no_color=True, record=True, file=io.StringIO())
    console.print(render_compare.render_table(entries))
    text = console.export_text()
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "0.0471151" in rows["mse"]  # the value, 6 significant digits
    assert "0.185992" in rows["l1"]
    assert "no fit" in rows["gaussian-nll"]
    assert "gaussian-nll takes 3 inputs" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_every_loss_sees_the_inputs_as_loaded_whatever_ran_before() -> None:
    # conversions (float64 logits to float32, labels to int64) must not leak between losses
    logits = str(SAMPLES / "classification" / "logits.csv")
    labels = str(SAMPLES / "classification" / "labels.csv")
    names = ["multi-margin", "cross-entropy", "nll", "multilabel-soft-margin"]
    args = [logits, labels, *(x for name in names for x in ("-l", name)), "-f", "ndjson"]
    _, out, _ = _run(*args)
    compared = [json.loads(line) for line in out.splitlines()]
    assert [record["loss"] for record in compared] == names
    for record in compared[:3]:
        alone = runner.invoke(app, ["compute", record["loss"], logits, labels, "-f", "json"])
        assert record == json.loads(alone.stdout)
