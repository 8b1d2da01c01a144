"""`losscli compute` end to end through Typer's CliRunner: exit codes, stdout, stderr.

stdout carries the report and nothing else; stderr carries one line when the command
cannot run (exit 2), or the reasons a gate tripped (exit 1).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer
from test_conformance import CASES, Case, cli_flags, torch_inputs, torch_options
from typer.testing import CliRunner

from losscli import losses
from losscli.cli import app, main

# the reference kl-div calls with reduction mean warn (losscli records it as data)
pytestmark = pytest.mark.filterwarnings("ignore:reduction.*batchmean:UserWarning")
runner = CliRunner()

# SPEC "Output": the stable keys of --format json
SPEC_KEYS = {
    "loss",
    "torch",
    "options",
    "value",
    "dtype",
    "inputs",
    "per_sample",
    "per_sample_summary",
    "gradient",
    "findings",
}


def _compute(*args: str) -> Any:
    return runner.invoke(app, ["compute", *args])


def _json(*args: str) -> tuple[int, dict[str, Any], str]:
    result = _compute(*args, "--format", "json")
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def _save(path: Path, values: np.ndarray) -> str:
    np.save(path, values)
    return str(path)


def _assert_one_error_line(result: Any, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("losscli: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# ---------------------------------------------------------------------------------------
# the seed examples


def test_l1_and_mse_on_the_documented_inline_arrays() -> None:
    # by hand: |d| = 1, 0, 2, 0.5 → mean 0.875; d^2 = 1, 0, 4, 0.25 → mean 1.3125
    for loss, expected in (("l1", 0.875), ("mse", 1.3125)):
        code, report, _ = _json(loss, "[1, 2.5, 4, 0.5]", "[2, 2.5, 2, 1]")
        assert code == 0
        assert report["value"] == expected
    _, report, _ = _json("mse", "[1, 2.5, 4, 0.5]", "[2, 2.5, 2, 1]")
    assert report["per_sample"] == [1.0, 0.0, 4.0, 0.25]
    # d(mean (x - t)^2)/dx = 2 (x - t) / 4
    assert report["gradient"]["input"]["values"] == [-0.5, 0.0, 1.0, -0.25]


def test_bce_logits_with_a_pos_weight_of_ones(tmp_path: Path) -> None:
    logits = _save(tmp_path / "out.npy", np.full((10, 64), 1.5, dtype=np.float32))
    targets = _save(tmp_path / "target.npy", np.ones((10, 64), dtype=np.float32))
    ones = _save(tmp_path / "pos_weight.npy", np.ones(64, dtype=np.float32))
    for pos_weight in (ones, json.dumps([1.0] * 64)):
        code, report, _ = _json("bce-logits", logits, targets, "--pos-weight", pos_weight)
        assert code == 0
        # every element is -log(sigmoid(1.5)) = log(1 + exp(-1.5)) = 0.20141327...
        assert report["value"] == pytest.approx(math.log1p(math.exp(-1.5)), rel=1e-6)
        assert round(report["value"], 4) == 0.2014
        expected = F.binary_cross_entropy_with_logits(
            torch.full((10, 64), 1.5), torch.ones(10, 64), pos_weight=torch.ones(64)
        )
        assert report["value"] == expected.item()
        assert report["options"]["pos_weight"] == [1.0] * 64


def test_nll_on_log_softmax_equals_cross_entropy_on_the_scores(tmp_path: Path) -> None:
    scores = torch.tensor(
        [[2.0, 1.0, 0.1, -1.2, 0.5], [0.3, 2.2, -0.4, 0.0, 1.1], [-0.7, 0.2, 0.9, 3.1, -2.0]]
    )
    labels = np.array([0, 4, 3])
    scores_file = _save(tmp_path / "scores.npy", scores.numpy())
    log_probs_file = _save(tmp_path / "log_probs.npy", F.log_softmax(scores, dim=1).numpy())
    labels_file = _save(tmp_path / "labels.npy", labels)
    code_ce, cross_entropy, _ = _json("cross-entropy", scores_file, labels_file)
    code_nll, nll, _ = _json("nll", log_probs_file, labels_file)
    assert code_ce == code_nll == 0
    # torch's cross_entropy is nll_loss(log_softmax(scores)): the same float32 operations
    assert nll["value"] == cross_entropy["value"]
    assert nll["per_sample"] == cross_entropy["per_sample"]
    expected = F.cross_entropy(scores, torch.from_numpy(labels))
    assert cross_entropy["value"] == expected.item()


# ---------------------------------------------------------------------------------------
# the JSON contract and exit codes


def test_json_has_the_spec_keys_and_a_schema_version() -> None:
    code, report, stderr = _json("mse", "[1, 2.5, 4, 0.5]", "[2, 2.5, 2, 1]")
    assert code == 0
    assert stderr == ""
    assert set(report) >= SPEC_KEYS | {"schema_version"}
    assert isinstance(report["schema_version"], int)
    assert report["loss"] == "mse"
    assert report["torch"] == "torch.nn.MSELoss"
    assert report["options"] == {"reduction": "mean"}
    assert report["dtype"] == "float32"
    # the dtype as read from the text, and the dtype torch was given
    assert report["inputs"]["input"] == {
        "source": "inline",
        "shape": [4],
        "dtype": "float64",
        "torch_dtype": "float32",
    }
    assert report["inputs"]["target"]["shape"] == [4]
    summary = report["per_sample_summary"]
    assert set(summary) >= {"n", "mean", "min", "max", "argmax", "p50", "p90", "p99"}
    assert summary["n"] == 4 and summary["argmax"] == 2 and summary["max"] == 4.0
    gradient = report["gradient"]["input"]
    assert set(gradient) >= {"shape", "values", "norm", "max_abs", "zero_fraction", "non_finite"}
    assert gradient["zero_fraction"] == 0.25 and gradient["non_finite"] == 0
    for found in report["findings"]:
        assert set(found) >= {"name", "severity", "message", "fix"}


def test_loss_aliases_resolve_to_the_catalogue_name() -> None:
    code, report, _ = _json("mae", "[1, 2]", "[0, 0]")
    assert code == 0
    assert report["loss"] == "l1"


def test_reduction_none_has_a_null_value_and_still_exits_0() -> None:
    code, report, _ = _json("l1", "[1, 2.5, 4, 0.5]", "[2, 2.5, 2, 1]", "--reduction", "none")
    assert code == 0
    assert report["value"] is None
    assert report["per_sample"] == [1.0, 0.0, 2.0, 0.5]
    # d(sum |x - t|)/dx = sign(x - t)
    assert report["gradient"]["input"]["values"] == [-1.0, 0.0, 1.0, -1.0]


def test_dtype_float64() -> None:
    code, report, _ = _json("mse", "[0.1, 0.2]", "[0.3, 0.5]", "--dtype", "float64")
    assert code == 0
    assert report["dtype"] == "float64"
    assert (
        report["value"]
        == F.mse_loss(
            torch.tensor([0.1, 0.2], dtype=torch.float64),
            torch.tensor([0.3, 0.5], dtype=torch.float64),
        ).item()
    )


def test_unbatched_cross_entropy_matches_torch(tmp_path: Path) -> None:
    scores = np.array([0.5, -1.0, 2.0, 0.1], dtype=np.float32)
    scores_file = _save(tmp_path / "scores.npy", scores)
    label_file = _save(tmp_path / "label.npy", np.array(2))  # a 0-d class index
    code, report, _ = _json("cross-entropy", scores_file, label_file)
    assert code == 0
    assert report["value"] == F.cross_entropy(torch.from_numpy(scores), torch.tensor(2)).item()
    code, report, _ = _json("cross-entropy", scores_file, "[0.1, 0.2, 0.6, 0.1]")
    assert code == 0
    probabilities = torch.tensor([0.1, 0.2, 0.6, 0.1])
    assert report["value"] == F.cross_entropy(torch.from_numpy(scores), probabilities).item()


def test_fractional_class_indices_exit_1_with_the_full_report(tmp_path: Path) -> None:
    scores = _save(tmp_path / "scores.npy", np.zeros((3, 4), dtype=np.float32))
    result = _compute("cross-entropy", scores, "[0, 1.5, 2]", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["value"] is None
    (error,) = [f for f in report["findings"] if f["name"] == "float-class-target"]
    assert error["severity"] == "error"
    assert "float-class-target" in result.stderr  # the gate names what tripped it
    # --fail-on never reports it and exits 0
    assert (
        _compute(
            "cross-entropy", scores, "[0, 1.5, 2]", "-f", "json", "--fail-on", "never"
        ).exit_code
        == 0
    )


def test_integral_float_class_indices_are_cast_and_computed(tmp_path: Path) -> None:
    scores = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]], dtype=np.float32)
    scores_file = _save(tmp_path / "scores.npy", scores)
    labels_file = _save(tmp_path / "labels.npy", np.array([0.0, 2.0], dtype=np.float32))
    code, report, _ = _json("cross-entropy", scores_file, labels_file)
    assert code == 0  # a warning: below the default --fail-on error
    assert report["value"] == F.cross_entropy(torch.from_numpy(scores), torch.tensor([0, 2])).item()
    (warning,) = [f for f in report["findings"] if f["name"] == "float-class-target"]
    assert warning["severity"] == "warning"  # torch itself raises on float32 labels
    with pytest.raises(RuntimeError) as raised:
        F.cross_entropy(torch.from_numpy(scores), torch.tensor([0.0, 2.0]))
    assert str(raised.value) in warning["message"]
    gated = _compute(
        "cross-entropy", scores_file, labels_file, "-f", "json", "--fail-on", "warning"
    )
    assert gated.exit_code == 1
    # text has no dtype: the same labels typed inline are class indices, no finding
    code, typed, _ = _json("cross-entropy", scores_file, "[0.0, 2.0]")
    assert code == 0 and typed["value"] == report["value"]
    assert [f["name"] for f in typed["findings"]] == []


@pytest.mark.parametrize("written", ["0\n2\n", "0.0\n2.0\n", "label\n0\n2\n"])
def test_labels_from_a_csv_are_class_indices_without_a_finding(
    tmp_path: Path, written: str
) -> None:
    """A CSV has no dtype: labels read from it are not a float-class mistake, however written."""
    scores = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]], dtype=np.float32)
    scores_file = _save(tmp_path / "scores.npy", scores)
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text(written)
    code, report, _ = _json("cross-entropy", scores_file, str(labels_file))
    assert code == 0
    assert report["value"] == F.cross_entropy(torch.from_numpy(scores), torch.tensor([0, 2])).item()
    assert [f["name"] for f in report["findings"]] == []


def test_int_targets_for_a_float_loss_are_an_info_finding(tmp_path: Path) -> None:
    logits = _save(tmp_path / "logits.npy", np.array([0.5, -1.0, 2.0], dtype=np.float32))
    labels = _save(tmp_path / "labels.npy", np.array([1, 0, 1]))
    code, report, _ = _json("bce-logits", logits, labels)
    assert code == 0
    names = [f["name"] for f in report["findings"]]
    assert "int-target-for-float-loss" in names
    # text has no dtype: whole numbers read from text are read as the float the loss needs
    code, typed, _ = _json("bce-logits", "[0.5, -1.0, 2.0]", "[1, 0, 1]")
    assert code == 0 and typed["findings"] == [] and typed["value"] == report["value"]


def test_strict_torch_rejection_exits_1(tmp_path: Path) -> None:
    scores = _save(tmp_path / "scores.npy", np.zeros((3, 4), dtype=np.float32))
    labels = _save(tmp_path / "labels.npy", np.array([0.0, 1.0, 2.0], dtype=np.float32))
    result = _compute("cross-entropy", scores, labels, "--strict", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["value"] is None
    assert "torch-rejected" in [f["name"] for f in report["findings"]]
    # without --strict the integral float labels are cast and computed
    assert _compute("cross-entropy", scores, labels, "--format", "json").exit_code == 0


def test_max_loss_gate() -> None:
    result = _compute("l1", "[1, 2.5, 4, 0.5]", "[2, 2.5, 2, 1]", "-f", "json", "--max-loss", "0.5")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["value"] == 0.875
    assert "--max-loss" in result.stderr


def test_table_output_shows_the_value() -> None:
    result = _compute("l1", "[1, 2.5, 4, 0.5]", "[2, 2.5, 2, 1]", "--no-color")
    assert result.exit_code == 0
    assert "0.875" in result.stdout


# ---------------------------------------------------------------------------------------
# exit 2: one line on stderr, nothing on stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["mse", "[1, 2]", "[1, 2]", "--delta", "1.0"], ["--delta does not apply to mse"]),
        (["mse", "[1, 2]", "[1, 2]", "--reduction", "avg"], ["--reduction", "mean, sum, none"]),
        (["multi-margin", "[[1, 2]]", "[0]", "-p", "3"], ["-p for multi-margin"]),
        (["mse", "[1, 2]", "[1, 2]", "--ignore-index", "3"], ["--ignore-index does not apply"]),
        (["ce", "[[1, 2]]", "[0]", "--label-smoothing", "1.5"], ["between 0 and 1"]),
        (["huber", "[1, 2]", "[1, 2]", "--delta", "nan"], ["--delta must be a finite number"]),
        (["bce-logits", "[1, 2]", "[1, 0]", "--pos-weight", "[Infinity]"], ["--pos-weight"]),
        (["mse", "[1, 2]", "[1, 2]", "--no-swap"], ["--swap does not apply"]),
        (["nll", "[[0.0]]", "[0]", "--weight", "[1,"], ["--weight"]),
        (["msee", "[1, 2]", "[1, 2]"], ["unknown loss 'msee'", "did you mean 'mse'"]),
        (["mse", "[1, 2]"], ["mse takes 2 inputs"]),
        (["mse", "missing.npy", "[1, 2]"], ["missing.npy"]),
        (["mse", "[1, 2", "[1, 2]"], ["inline array"]),
    ],
)
def test_usage_and_load_errors_exit_2_with_one_line(args: list[str], fragments: list[str]) -> None:
    _assert_one_error_line(_compute(*args, "--format", "json"), *fragments)


def test_unreadable_file_exit_2(tmp_path: Path) -> None:
    corrupt = tmp_path / "pred.npy"
    corrupt.write_bytes(b"not an npy file")
    _assert_one_error_line(_compute("mse", str(corrupt), "[1]"), "pred.npy")


@pytest.mark.parametrize(
    "argv",
    [
        ["compute", "mse", "[1]", "[1]", "--bogus"],
        ["compute", "mse", "[1]", "[1]", "--dtype", "float8"],
        ["compute"],
    ],
)
def test_parse_errors_through_main_are_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("losscli: error: ")


def test_every_catalogue_option_is_a_compute_flag() -> None:
    command = typer.main.get_command(app)
    compute_command = command.commands["compute"]  # type: ignore[attr-defined]
    flags = {
        opt for param in compute_command.params for opt in (*param.opts, *param.secondary_opts)
    }
    missing = {o.flag for o in losses.all_options().values()} - flags
    assert not missing
    bools = {o.flag for o in losses.all_options().values() if o.type is losses.OptionType.BOOL}
    assert {"--no-" + flag.removeprefix("--") for flag in bools} <= flags


# ---------------------------------------------------------------------------------------
# every loss, from .npy files, through the command line


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_case_through_the_command_line(case: Case, tmp_path: Path) -> None:
    arrays = case.arrays()
    files = [_save(tmp_path / f"{name}.npy", values) for name, values in arrays.items()]
    result = _compute(case.loss, *files, *cli_flags(case), "--format", "json")
    assert result.exit_code == 0, (result.stderr, result.stdout)
    report = json.loads(result.stdout)
    assert report["loss"] == case.spec.name

    tensors = torch_inputs(case, arrays, "float32")
    with torch.no_grad():
        expected = case.reference(tensors, torch_options(case, "mean", "float32"))
    assert report["value"] == expected.item()
    assert report["inputs"][next(iter(arrays))]["source"].endswith(".npy")
    assert set(report["gradient"]) == {a.name for a in case.spec.differentiable}


@pytest.mark.parametrize("spec", losses.LOSSES, ids=lambda s: s.name)
def test_every_loss_renders_a_table(spec: losses.LossSpec, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.spec is spec)
    files = [_save(tmp_path / f"{name}.npy", values) for name, values in case.arrays().items()]
    result = _compute(case.loss, *files, "--no-color")
    assert result.exit_code == 0, result.stderr
    assert spec.name in result.stdout


def test_csv_inputs_in_a_real_process_keep_stderr_clean(tmp_path: Path) -> None:
    # a real `python -m losscli`: CSV with a header and column selection, nothing but the
    # JSON on stdout, and no torch warning (e.g. about read-only arrays) on stderr
    scores = np.array([[1.5, -0.5, 0.2], [0.1, 2.0, -1.0], [0.3, 0.3, 0.9], [-1.0, 0.0, 1.0]])
    (tmp_path / "logits.csv").write_text(
        "cat,dog,bird\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in scores)
    )
    (tmp_path / "labels.csv").write_text("id,label\n0,0\n1,1\n2,2\n3,2\n")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "losscli",
            "compute",
            "cross-entropy",
            "logits.csv",
            "labels.csv:label",
            "--weight",
            "[1, 2, 0.5]",
            "--format",
            "json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    report = json.loads(completed.stdout)
    expected = F.cross_entropy(
        torch.from_numpy(scores).float(),
        torch.tensor([0, 1, 2, 2]),
        weight=torch.tensor([1, 2, 0.5]),
    )
    assert report["value"] == expected.item()
    assert report["inputs"]["input"]["shape"] == [4, 3]
