"""Every output format of `compute` through the CLI: JSON keys, NDJSON lines, CSV rows,
GitHub annotations, data on stdout and messages on stderr, and colour rules."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from losscli.cli import app
from losscli.findings import Severity, finding
from losscli.printable import printable
from losscli.render import github

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PRED = str(SAMPLES / "regression" / "pred.npy")
TRUE = str(SAMPLES / "regression" / "true.npy")
LOGITS = str(SAMPLES / "classification" / "logits.csv")
LABELS = str(SAMPLES / "classification" / "labels.csv")
ANNOTATION = re.compile(r"^::(error|warning|notice)( title=[^:]*)?::")
ANSI = "\x1b["


def _compute(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["compute", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


# --- json -------------------------------------------------------------------------------


def test_json_has_the_spec_keys_and_torchs_value() -> None:
    code, out, _ = _compute("mse", PRED, TRUE, "--format", "json")
    assert code == 0
    record = json.loads(out)
    for key in ("loss", "torch", "options", "value", "dtype", "inputs", "per_sample"):
        assert key in record
    assert {"per_sample_summary", "gradient", "findings", "schema_version"} <= set(record)
    assert set(record["per_sample_summary"]) >= {
        "n",
        "mean",
        "min",
        "max",
        "argmax",
        "p50",
        "p90",
        "p99",
    }
    assert set(record["gradient"]["input"]) >= {
        "shape",
        "values",
        "norm",
        "max_abs",
        "zero_fraction",
        "non_finite",
    }
    assert record["inputs"]["input"] == {
        "source": PRED,
        "shape": [8],
        "dtype": "float32",
        "torch_dtype": "float32",
    }
    # SPEC: value is exactly what torch.nn.functional returns on the same float32 tensors
    expected = F.mse_loss(torch.from_numpy(np.load(PRED)), torch.from_numpy(np.load(TRUE)))
    assert record["value"] == float(expected)


# --- ndjson -----------------------------------------------------------------------------


def test_ndjson_is_one_parsable_line_equal_to_the_json_object() -> None:
    _, as_json, _ = _compute("mse", PRED, TRUE, "--format", "json")
    code, out, _ = _compute("mse", PRED, TRUE, "--format", "ndjson")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    assert out.endswith("\n")
    assert json.loads(lines[0]) == json.loads(as_json)


# --- csv --------------------------------------------------------------------------------


def _csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def test_csv_regression_has_a_header_and_one_row_per_sample_with_inputs() -> None:
    code, out, err = _compute("mse", PRED, TRUE, "--format", "csv")
    assert code == 0
    assert err == ""
    header, rows = _csv_rows(out)
    assert header == ["index", "loss", "input", "target"]
    pred, true = np.load(PRED), np.load(TRUE)
    assert len(rows) == pred.size
    assert [int(r[0]) for r in rows] == list(range(pred.size))
    # per-sample mse is (input - target)^2, computed by torch in float32
    expected = F.mse_loss(torch.from_numpy(pred), torch.from_numpy(true), reduction="none")
    np.testing.assert_array_equal([float(r[1]) for r in rows], expected.double().numpy())
    np.testing.assert_array_equal([float(r[2]) for r in rows], pred.astype(np.float64))
    np.testing.assert_array_equal([float(r[3]) for r in rows], true.astype(np.float64))


def test_csv_classification_has_target_and_predicted_class_but_not_the_logit_rows() -> None:
    code, out, _ = _compute("cross-entropy", LOGITS, LABELS, "--format", "csv")
    assert code == 0
    header, rows = _csv_rows(out)
    assert header == ["index", "loss", "ignored", "target", "predicted"]
    logits = np.loadtxt(LOGITS, delimiter=",", skiprows=1)
    labels = np.loadtxt(LABELS, delimiter=",", skiprows=1).astype(int)
    assert len(rows) == logits.shape[0]
    assert [int(r[3]) for r in rows] == labels.tolist()
    assert [int(r[4]) for r in rows] == np.argmax(logits, axis=1).tolist()


def test_csv_marks_ignored_samples() -> None:
    code, out, _ = _compute("cross-entropy", "[[2,1],[0,3],[1,1]]", "[0,-100,1]", "--format", "csv")
    assert code == 0
    header, rows = _csv_rows(out)
    ignored = header.index("ignored")
    assert [r[ignored] for r in rows] == ["false", "true", "false"]
    assert float(rows[1][1]) == 0.0  # SPEC: ignored samples have per-sample loss 0


def test_csv_of_a_blocked_report_is_the_header_alone_and_findings_go_to_stderr() -> None:
    # bce on regression targets: target-outside-unit-interval blocks torch
    code, out, err = _compute("bce", PRED, TRUE, "--format", "csv")
    assert code == 1
    assert out == "index,loss\n"
    assert "target-outside-unit-interval" in err


def test_csv_with_reduction_none_still_has_every_sample() -> None:
    code, out, _ = _compute(
        "l1", "[1,2.5,4,0.5]", "[2,2.5,2,1]", "--reduction", "none", "-f", "csv"
    )
    assert code == 0
    _, rows = _csv_rows(out)
    # |input - target| per sample, by hand
    assert [float(r[1]) for r in rows] == [1.0, 0.0, 2.0, 0.5]


# --- github -----------------------------------------------------------------------------


def test_github_lines_are_annotations_errors_first_and_a_final_value_notice() -> None:
    distances = str(SAMPLES / "mistakes" / "distances.npy")
    zero_one = str(SAMPLES / "mistakes" / "zero_one_targets.npy")
    code, out, _ = _compute("hinge-embedding", distances, zero_one, "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert lines
    assert all(ANNOTATION.match(line) for line in lines), lines
    assert lines[0].startswith("::error title=losscli sign-target-expected::")
    assert " — fix: " in lines[0]
    assert lines[-1].startswith("::notice title=losscli hinge-embedding::hinge-embedding = ")


def test_github_info_findings_are_notices_before_the_value_notice(tmp_path: Path) -> None:
    files = []
    for name, values in (("p.npy", [1, 2.5, 4, 0.5]), ("t.npy", [2, 2.5, 2, 1])):
        np.save(tmp_path / name, np.array(values, dtype=np.float64))
        files.append(str(tmp_path / name))
    code, out, _ = _compute("l1", *files, "--format", "github")
    assert code == 0
    lines = out.splitlines()
    # float64 files, converted to float32: two dtype-conversion infos
    assert [line.split("::")[1] for line in lines] == [
        "notice title=losscli dtype-conversion",
        "notice title=losscli dtype-conversion",
        "notice title=losscli l1",
    ]
    # SPEC: l1 on these arrays is 0.875
    assert lines[-1] == "::notice title=losscli l1::l1 = 0.875 (torch.nn.L1Loss, float32)"


def test_github_escapes_percent_and_newlines_per_the_workflow_command_spec() -> None:
    item = finding(
        "constant-input", Severity.WARNING, "100% of\nvalues\rare 1", "fix: a,b", blocking=False
    )
    line = github.finding_line(item, loss="mse")
    assert "\n" not in line and "\r" not in line
    # a finding's message has its control characters escaped already (a file name with a
    # newline cannot split it); the workflow encoding covers any raw text that reaches it
    assert line == (
        "::warning title=losscli mse constant-input::100%25 of\\nvalues\\rare 1 — fix: fix: a,b"
    )
    assert github.annotation("error", "t", "a\nb\rc%\x1b") == "::error title=t::a%0Ab%0Dc%25\\x1b"
    # property values also escape ':' and ','
    assert github.escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    assert ANNOTATION.match(github.annotation("notice", "x: y", "m"))


@settings(max_examples=60, deadline=None)
@given(st.text(), st.text(), st.sampled_from(list(Severity)))
def test_any_finding_is_one_annotation_line(message: str, fix: str, severity: Severity) -> None:
    line = github.finding_line(finding("constant-input", severity, message, fix), loss="l1")
    # no control character or line separator at all, so no injected command
    assert not any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in line)
    assert ANNOTATION.match(line)
    # unescaping gives the message back as printed (GitHub's decoding: %0D, %0A, then %25)
    data = line.split("::", 2)[2]
    decoded = data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
    assert decoded.startswith(printable(message))


# --- streams and colour -----------------------------------------------------------------


def test_json_stdout_stays_parsable_when_a_gate_trips() -> None:
    code, out, err = _compute("mse", PRED, TRUE, "--format", "json", "--max-loss", "0.001")
    assert code == 1
    json.loads(out)
    assert "--max-loss" in err


@pytest.mark.parametrize("output_format", ["json", "ndjson", "csv", "github"])
def test_usage_error_writes_nothing_on_stdout(output_format: str) -> None:
    code, out, err = _compute("mse", PRED, "no-such.npy", "--format", output_format)
    assert code == 2
    assert out == ""
    assert "no-such.npy" in err


def test_table_has_no_escape_codes_when_stdout_is_not_a_terminal() -> None:
    code, out, _ = _compute("mse", PRED, TRUE)
    assert code == 0
    assert ANSI not in out
    assert "mse = 0.0471151" in out  # the table view (the value printed with 6 digits)


def test_forced_colour_is_switched_off_by_no_color_flag_and_env() -> None:
    forced = {"FORCE_COLOR": "1", "TERM": "xterm-256color"}
    _, coloured, _ = _compute("mse", PRED, TRUE, env=forced)
    assert ANSI in coloured  # the check below can fail: Rich does colour a forced terminal
    _, flag, _ = _compute("mse", PRED, TRUE, "--no-color", env=forced)
    assert ANSI not in flag
    _, env, _ = _compute("mse", PRED, TRUE, env={**forced, "NO_COLOR": "1"})
    assert ANSI not in env


def test_losscli_format_env_sets_the_default_and_the_flag_wins() -> None:
    code, out, _ = _compute("mse", PRED, TRUE, env={"LOSSCLI_FORMAT": "json"})
    assert code == 0
    assert json.loads(out)["loss"] == "mse"
    _, out, _ = _compute("mse", PRED, TRUE, "-f", "csv", env={"LOSSCLI_FORMAT": "json"})
    assert out.startswith("index,loss")
    code, out, err = _compute("mse", PRED, TRUE, env={"LOSSCLI_FORMAT": "yaml"})
    assert code == 2
    assert out == ""
    assert "LOSSCLI_FORMAT" in err


@pytest.mark.parametrize("output_format", ["json", "ndjson", "csv", "github"])
def test_debug_writes_every_format(output_format: str) -> None:
    distances = str(SAMPLES / "mistakes" / "distances.npy")
    zero_one = str(SAMPLES / "mistakes" / "zero_one_targets.npy")
    args = ["debug", distances, zero_one, "--loss", "hinge-embedding", "-f", output_format]
    result = runner.invoke(app, args)
    assert result.exit_code == 1  # sign-target-expected
    lines = result.stdout.splitlines()
    if output_format in ("json", "ndjson"):
        assert len(lines) == 1
        assert json.loads(lines[0])["loss"] == "hinge-embedding"
    elif output_format == "csv":
        assert lines[0] == "index,loss,input,target"
        assert len(lines) == 1 + np.load(distances).size
    else:
        assert all(ANNOTATION.match(line) for line in lines)
        assert lines[0].startswith("::error title=losscli sign-target-expected::")
