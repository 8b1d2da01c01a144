"""`losscli debug`: findings explained as panels, the value after them, task inference."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from losscli.cli import app
from losscli.findings import CATALOGUE, Severity, finding
from losscli.render import debug as render_debug

runner = CliRunner()
# wide and colourless, so panels are not wrapped and text can be searched
WIDE = {"COLUMNS": "400", "NO_COLOR": "1", "LOSSCLI_FORMAT": ""}

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
LOGITS = str(SAMPLES / "classification" / "logits.csv")
LABELS = str(SAMPLES / "classification" / "labels.csv") + ":label"
PRED = str(SAMPLES / "regression" / "pred.npy")
TRUE = str(SAMPLES / "regression" / "true.npy")
PRED_COLUMN = str(SAMPLES / "mistakes" / "pred_column.npy")  # (8, 1) against TRUE's (8,)
DISTANCES = str(SAMPLES / "mistakes" / "distances.npy")
ZERO_ONE = str(SAMPLES / "mistakes" / "zero_one_targets.npy")  # {0, 1} where ±1 is needed


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=WIDE, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _json(*args: str, stdin: str | None = None) -> tuple[int, dict, str]:
    code, out, err = _run(*args, "--format", "json", stdin=stdin)
    return code, json.loads(out), err


def _flat(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def test_clean_input_with_loss_debugs_to_exit_0() -> None:
    code, out, err = _run("debug", LOGITS, LABELS, "--loss", "cross-entropy")
    assert code == 0, err
    assert "cross-entropy = " in out
    errors = [n for n in CATALOGUE if f"error {n}" in out]
    assert errors == []


def test_clean_regression_without_loss_infers_and_exits_0() -> None:
    code, record, err = _json("debug", PRED, TRUE)
    assert code == 0, err
    assert record["recommended"]["task"] == "regression"
    assert record["recommended"]["loss"] == "mse"
    assert record["recommended"]["command"] == f"losscli compute mse {PRED} {TRUE}"
    assert record["loss"] == "mse"
    assert record["findings"] == []


def test_json_without_loss_is_compute_json_plus_recommended() -> None:
    code, debugged, err = _json("debug", LOGITS, LABELS)
    assert code == 0, err
    _, computed, _ = _json("compute", "cross-entropy", LOGITS, LABELS)
    assert debugged["recommended"] == {
        "task": "multiclass",
        "loss": "cross-entropy",
        "command": f"losscli compute cross-entropy {LOGITS} {LABELS}",
        "reason": debugged["recommended"]["reason"],
        # the recommended command was run: it prints this, with no warning or error
        "verified": {"value": computed["value"], "findings": []},
    }
    assert "logits" in debugged["recommended"]["reason"]
    assert set(debugged) == set(computed) | {"recommended"}
    assert debugged["value"] == computed["value"]  # same pipeline, same torch call


def test_json_with_loss_is_exactly_compute_json() -> None:
    code, debugged, _ = _json("debug", PRED, TRUE, "--loss", "mse")
    _, computed, _ = _json("compute", "mse", PRED, TRUE)
    assert code == 0
    assert "recommended" not in debugged
    assert debugged == computed


def test_mistake_panel_has_evidence_why_and_fix() -> None:
    code, out, err = _run("debug", PRED_COLUMN, TRUE, "--loss", "mse")
    assert code == 1
    _, record, _ = _json("debug", PRED_COLUMN, TRUE, "--loss", "mse")
    broadcast = next(f for f in record["findings"] if f["name"] == "silent-broadcast")
    flat = _flat(out)
    assert "error silent-broadcast" in flat
    assert _flat(broadcast["message"]) in flat
    assert _flat(broadcast["fix"]) in flat  # the fix from the finding itself
    assert _flat(CATALOGUE["silent-broadcast"].why) in flat  # why it matters, from the catalogue
    assert "evidence:" in out
    assert "losscli explain silent-broadcast" in out
    # the value panel comes after the findings; a shape error leaves no value (SPEC)
    assert out.index("silent-broadcast") < out.index("could not be computed")
    assert record["value"] is None
    assert "silent-broadcast" in err  # the gate says why it exits 1


def test_sign_target_mistake_names_the_fix() -> None:
    code, out, _ = _run("debug", DISTANCES, ZERO_ONE, "--loss", "hinge-embedding")
    assert code == 1
    assert "sign-target-expected" in out
    assert "fix:" in out


def test_fail_on_works_as_in_compute(tmp_path: Path) -> None:
    args = ("debug", PRED_COLUMN, TRUE, "--loss", "mse")
    assert _run(*args, "--fail-on", "never")[0] == 0
    assert _run(*args)[0] == 1
    # a clean input with an info finding (a float64 file → float32) fails only at --fail-on info
    logits = np.loadtxt(LOGITS.split(":")[0], delimiter=",", skiprows=1)
    np.save(tmp_path / "logits64.npy", logits)
    clean = ("debug", str(tmp_path / "logits64.npy"), LABELS, "--loss", "cross-entropy")
    assert _run(*clean, "--fail-on", "warning")[0] == 0
    assert _run(*clean, "--fail-on", "info")[0] == 1


def test_max_loss_gate_applies() -> None:
    code, _, err = _run("debug", PRED, TRUE, "--max-loss", "0.0001")
    assert code == 1
    assert "--max-loss" in err


def test_blocking_finding_has_no_value_and_exits_1() -> None:
    code, record, _ = _json("debug", "[1,2,3,4]", "[1,2,3,4,5]", "--loss", "mse")
    assert code == 1
    assert record["value"] is None
    assert any(f["severity"] == "error" for f in record["findings"])
    code, out, _ = _run("debug", "[1,2,3,4]", "[1,2,3,4,5]", "--loss", "mse")
    assert "could not be computed: fix the blocking findings above" in out


def test_inferred_kl_div_runs_with_batchmean() -> None:
    rng = np.random.default_rng(0)
    student = rng.normal(size=(6, 4))
    teacher = rng.normal(size=(6, 4))
    log_p = student - np.log(np.exp(student).sum(1, keepdims=True))
    q = np.exp(teacher) / np.exp(teacher).sum(1, keepdims=True)
    code, record, err = _json("debug", json.dumps(log_p.tolist()), json.dumps(q.tolist()))
    assert record["recommended"]["loss"] == "kl-div"
    assert record["options"]["reduction"] == "batchmean"
    assert "kl-mean-reduction" not in [f["name"] for f in record["findings"]]
    assert code == 0, err


def test_predictions_alone_recommend_with_a_placeholder() -> None:
    code, record, err = _json("debug", LOGITS)
    assert code == 0, err
    assert record["loss"] is None
    assert record["value"] is None
    assert record["recommended"]["command"] == f"losscli compute cross-entropy {LOGITS} TARGETS"
    code, out, _ = _run("debug", LOGITS)
    assert code == 0
    assert "inferred task" in out
    assert "give the targets" in out


def test_stdin_input_without_loss() -> None:
    code, record, err = _json("debug", "-", "[0, 1, 1, 0]", stdin="0.2\n0.9\n0.7\n0.1\n")
    assert code == 0, err
    assert record["recommended"]["loss"] == "bce"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("debug", PRED, TRUE, "--loss", "msee"), "did you mean 'mse'"),
        (("debug", "[1]", "[1]", "[1]", "[1]", "[1]"), "give the loss first"),
        (("debug", "[1]", "[1]", "[1]", "[1]"), "cannot tell the task"),
        (("debug", LOGITS, LABELS, "--delta", "0.5"), "inferred loss"),
        (("debug", "no-such-file.npy", TRUE), "no-such-file.npy"),
        (("debug", PRED, TRUE, "--loss", "mse", "--reduction", "batchmean"), "must be one of"),
        (("debug", "[[1,2],[3,4]]", "[[1,2,3]]"), "give the loss first"),
        (("debug", "-", "-"), "standard input"),
        (("debug", "--", "-:a", "-:b"), "standard input"),
        (("debug", "--loss", "mse", "--", "-:a", "-:b"), "standard input"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], words: str) -> None:
    code, out, err = _run(*args)
    assert code == 2
    assert out == ""
    assert words in err
    assert err.strip().count("\n") == 0


def _text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=300, no_color=True, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_panel_falls_back_on_the_catalogue_fix() -> None:
    item = finding("constant-input", Severity.WARNING, "every prediction is 0.5", "", value=0.5)
    text = _flat(_text(render_debug.finding_panel(item)))
    assert _flat(CATALOGUE["constant-input"].instead) in text
    assert "evidence: value=0.5" in text
    with_fix = finding("constant-input", Severity.WARNING, "every prediction is 0.5", "do X")
    text = _flat(_text(render_debug.finding_panel(with_fix)))
    assert "fix: do X" in text
    assert _flat(CATALOGUE["constant-input"].instead) not in text


def test_long_evidence_is_cut() -> None:
    item = finding(
        "non-finite-input", Severity.ERROR, "NaN", "drop them", positions=list(range(500))
    )
    text = _text(render_debug.finding_panel(item))
    assert "…" in text
    assert "499" not in text


def test_inferred_loss_runs_its_checks_one_based_labels(tmp_path: Path) -> None:
    # a half-trained classifier with labels 1..C: inference names the task, the checks of
    # the inferred loss catch the labels
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=20)
    logits = rng.normal(size=(20, 4)).astype(np.float32)
    logits[np.arange(20), labels] += 2.0
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels + 1)
    code, record, _ = _json("debug", str(tmp_path / "logits.npy"), str(tmp_path / "labels.npy"))
    assert code == 1
    assert record["recommended"]["loss"] == "cross-entropy"
    assert "labels - 1" in record["recommended"]["reason"]
    assert "class-index-out-of-range" in [f["name"] for f in record["findings"]]
    assert record["value"] is None


def test_inferred_softmax_probabilities_show_the_missing_log() -> None:
    code, record, _ = _json(
        "debug",
        str(SAMPLES / "mistakes" / "softmax_probs.csv"),
        LABELS,
    )
    assert code == 1
    assert record["recommended"]["loss"] == "nll"
    names = {f["name"] for f in record["findings"]}
    assert names & {"probabilities-to-nll", "negative-loss"}


def test_info_panels_stay_short_and_warnings_explain_why() -> None:
    note = finding("dtype-conversion", Severity.INFO, "input converted", "use --dtype float64")
    text = _flat(_text(render_debug.finding_panel(note)))
    assert "why it matters" not in text
    assert "losscli explain dtype-conversion" in text
    warning = finding("constant-input", Severity.WARNING, "every prediction is 0.5", "check it")
    assert "why it matters" in _flat(_text(render_debug.finding_panel(warning)))


def test_evidence_floats_are_rounded() -> None:
    item = finding("constant-input", Severity.WARNING, "m", "f", value=3.0999999046325684)
    assert "value=3.1" in _text(render_debug.finding_panel(item))
