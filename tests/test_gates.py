"""CI gates: --fail-on, --max-loss, --baseline/--max-increase, each both ways, in compute and
compare (and debug when it exists); exit 1 names the gate on stderr; bad baselines exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losscli.cli import app, main

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PRED = str(SAMPLES / "regression" / "pred.npy")
TRUE = str(SAMPLES / "regression" / "true.npy")
DISTANCES = str(SAMPLES / "mistakes" / "distances.npy")
ZERO_ONE = str(SAMPLES / "mistakes" / "zero_one_targets.npy")
# SPEC: l1 on [1,2.5,4,0.5] vs [2,2.5,2,1] is 0.875
L1 = ["l1", "[1,2.5,4,0.5]", "[2,2.5,2,1]"]
# the same with the third prediction 0.2 further off: (1 + 0 + 2.2 + 0.5) / 4 = 0.925
L1_WORSE = ["l1", "[1,2.5,4.2,0.5]", "[2,2.5,2,1]"]


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _exit_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("losscli: exit 1:")]


# --- --fail-on --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("error", 0), ("warning", 1), ("info", 1), ("never", 0)]
)
def test_fail_on_with_a_warning_finding(fail_on: str, expected: int) -> None:
    # every prediction the same: constant-input (warning), plus conversion infos
    code, out, err = _run(
        "compute", "mse", "[1,1,1,1]", "[1,2,3,4]", "--fail-on", fail_on, "-f", "json"
    )
    names = {f["name"]: f["severity"] for f in json.loads(out)["findings"]}
    assert names["constant-input"] == "warning"
    assert "error" not in names.values()
    assert code == expected
    if expected:
        (line,) = _exit_lines(err)
        assert f"--fail-on {fail_on}" in line
        assert "constant-input" in line
    else:
        assert _exit_lines(err) == []


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 1), ("never", 0)])
def test_fail_on_with_an_error_finding(fail_on: str, expected: int) -> None:
    # {0, 1} targets for hinge-embedding: sign-target-expected (error)
    code, _, err = _run("compute", "hinge", DISTANCES, ZERO_ONE, "--fail-on", fail_on)
    assert code == expected
    assert ("sign-target-expected" in err) == bool(expected)


def test_fail_on_info_trips_on_an_info_finding_alone(tmp_path: Path) -> None:
    # float64 .npy files: only dtype-conversion infos (text, which has no dtype, gives none)
    files = []
    for name, values in (("p.npy", [1, 2.5, 4, 0.5]), ("t.npy", [2, 2.5, 2, 1])):
        np.save(tmp_path / name, np.array(values, dtype=np.float64))
        files.append(str(tmp_path / name))
    assert _run("compute", "l1", *files, "--fail-on", "info")[0] == 1
    assert _run("compute", "l1", *files, "--fail-on", "warning")[0] == 0
    assert _run("compute", *L1, "--fail-on", "info")[0] == 0


# --- --max-loss -------------------------------------------------------------------------


@pytest.mark.parametrize(("max_loss", "expected"), [("1", 0), ("0.875", 0), ("0.5", 1)])
def test_max_loss(max_loss: str, expected: int) -> None:
    code, _, err = _run("compute", *L1, "--max-loss", max_loss)
    assert code == expected  # the value must be above the limit to trip (0.875 is exact)
    if expected:
        (line,) = _exit_lines(err)
        assert "--max-loss 0.5" in line and "0.875" in line


def test_non_finite_value_trips_even_with_fail_on_never() -> None:
    # float32 overflow: (1e30 - -1e30)^2 = inf
    code, _, err = _run("compute", "mse", "[1e30]", "[-1e30]", "--fail-on", "never")
    assert code == 1
    assert "the loss is inf" in err


# --- --baseline / --max-increase --------------------------------------------------------


@pytest.fixture
def baseline(tmp_path: Path) -> str:
    code, out, _ = _run("compute", *L1, "--format", "json")
    assert code == 0
    path = tmp_path / "baseline.json"
    path.write_text(out)
    return str(path)


@pytest.mark.parametrize(
    ("args", "max_increase", "expected"),
    [
        (L1, None, 0),  # equal to the baseline
        (L1_WORSE, None, 1),  # any increase trips without --max-increase
        (L1_WORSE, "0.06", 0),  # 0.925 / 0.875 - 1 = +5.71% <= 6%
        (L1_WORSE, "0.05", 1),  # +5.71% > 5%
    ],
)
def test_baseline(baseline: str, args: list[str], max_increase: str | None, expected: int) -> None:
    extra = ["--max-increase", max_increase] if max_increase else []
    code, _, err = _run("compute", *args, "--baseline", baseline, *extra)
    assert code == expected
    if expected:
        (line,) = _exit_lines(err)
        assert "+5.71% over the baseline 0.875" in line


def test_max_increase_without_baseline_is_a_usage_error() -> None:
    code, out, err = _run("compute", *L1, "--max-increase", "0.1")
    assert code == 2
    assert out == ""
    assert "--max-increase needs --baseline" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("not json at all", "not a JSON report"),
        ('{"loss": "l1", "value": null}', "not a losscli report"),
        ("[1, 2, 3]", "not a losscli report"),
        ('{"schema_version": 1, "losses": [{"name": "l1"}]}', "not a losscli report"),
    ],
)
def test_a_baseline_that_is_missing_or_not_a_report_exits_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    code, out, err = _run("compute", *L1, "--baseline", str(path))
    assert code == 2
    assert out == ""
    assert str(path) in err and message in err
    assert err.count("\n") == 1


def test_a_baseline_for_another_loss_exits_2(baseline: str) -> None:
    code, _, err = _run("compute", "mse", "[1,2.5,4,0.5]", "[2,2.5,2,1]", "--baseline", baseline)
    assert code == 2
    assert "no report for mse" in err


def test_a_hand_written_baseline_without_a_loss_name_applies_to_any_loss(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_text('{"value": 0.9}')
    assert _run("compute", *L1, "--baseline", str(path))[0] == 0  # 0.875 <= 0.9
    assert _run("compute", *L1_WORSE, "--baseline", str(path))[0] == 1  # 0.925 > 0.9


# --- the console-script entry point returns the same codes ------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([*L1], 0),
        ([*L1, "--max-loss", "0.5"], 1),
        (["hinge", DISTANCES, ZERO_ONE], 1),
        ([*L1, "--max-increase", "0.1"], 2),
    ],
)
def test_main_exits_with_the_gate_code(
    args: list[str], expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["compute", *args, "--format", "json"])
    assert done.value.code == expected
    captured = capsys.readouterr()
    if expected == 2:
        assert captured.out == ""
    else:
        json.loads(captured.out)


# --- compare ----------------------------------------------------------------------------


def test_compare_max_loss_trips_for_the_loss_above_it_only() -> None:
    # on the regression sample mse is 0.047 and l1 0.186
    code, _, err = _run("compare", PRED, TRUE, "-l", "mse", "-l", "l1", "--max-loss", "0.1")
    assert code == 1
    (line,) = _exit_lines(err)
    assert line.startswith("losscli: exit 1: l1: the loss 0.185992 is above --max-loss 0.1")
    assert _run("compare", PRED, TRUE, "-l", "mse", "-l", "l1", "--max-loss", "0.2")[0] == 0


def test_compare_fail_on_applies_to_each_loss() -> None:
    args = ["compare", DISTANCES, ZERO_ONE, "-l", "hinge", "-l", "l1"]
    code, _, err = _run(*args)
    assert code == 1
    assert [line.split(":")[2].strip() for line in _exit_lines(err)] == ["hinge-embedding"]
    assert _run(*args, "--fail-on", "never")[0] == 0


def test_compare_baseline_from_a_saved_comparison(tmp_path: Path) -> None:
    code, out, _ = _run("compare", PRED, TRUE, "-l", "mse", "-l", "l1", "-f", "json")
    assert code == 0
    saved = tmp_path / "compare.json"
    saved.write_text(out)
    same = _run("compare", PRED, TRUE, "-l", "mse", "-l", "l1", "--baseline", str(saved))
    assert same[0] == 0
    # swapping prediction and target leaves mse and l1 unchanged: still passes
    assert _run("compare", TRUE, PRED, "-l", "l1", "--baseline", str(saved))[0] == 0
    # against all-zero predictions both losses grow far beyond 5%
    zeros = str(tmp_path / "zeros.npy")
    import numpy as np

    np.save(zeros, np.zeros(8, dtype=np.float32))
    code, _, err = _run(
        "compare",
        zeros,
        TRUE,
        "-l",
        "mse",
        "-l",
        "l1",
        "--baseline",
        str(saved),
        "--max-increase",
        "0.05",
    )
    assert code == 1
    assert [line.split(":")[2].strip() for line in _exit_lines(err)] == ["mse", "l1"]
    # an NDJSON comparison works as a baseline too
    _, ndjson, _ = _run("compare", PRED, TRUE, "-l", "mse", "-l", "l1", "-f", "ndjson")
    saved_lines = tmp_path / "compare.ndjson"
    saved_lines.write_text(ndjson)
    assert _run("compare", PRED, TRUE, "-l", "l1", "--baseline", str(saved_lines))[0] == 0


def test_compare_baseline_without_the_loss_exits_2(baseline: str) -> None:
    code, out, err = _run("compare", *L1[1:], "-l", "l1", "-l", "mse", "--baseline", baseline)
    assert code == 2
    assert out == ""
    assert "no report for mse" in err


def test_compare_max_increase_without_baseline_is_a_usage_error() -> None:
    code, out, err = _run("compare", PRED, TRUE, "-l", "mse", "--max-increase", "0.1")
    assert code == 2
    assert out == ""
    assert "--max-increase needs --baseline" in err


# --- debug -------------------------------------------------------------------------


def test_debug_applies_the_same_gates() -> None:
    assert _run("debug", *L1[1:], "--loss", "l1")[0] == 0
    code, _, err = _run("debug", *L1[1:], "--loss", "l1", "--max-loss", "0.5")
    assert code == 1
    assert "--max-loss 0.5" in _exit_lines(err)[0]
    code, out, err = _run("debug", *L1[1:], "--loss", "l1", "--max-increase", "0.1")
    assert code == 2 and out == ""
    assert "--max-increase needs --baseline" in err


def test_with_format_github_a_tripped_gate_is_also_an_annotation() -> None:
    code, out, err = _run("compute", *L1, "--max-loss", "0.5", "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert all(re.match(r"^::(error|warning|notice)( title=[^:]*)?::", line) for line in lines)
    # findings, then the gate, then (last) the value notice
    assert lines[-2] == "::error title=losscli gate::the loss 0.875 is above --max-loss 0.5"
    assert lines[-1].startswith("::notice title=losscli l1::l1 = 0.875")
    assert _exit_lines(err) == ["losscli: exit 1: the loss 0.875 is above --max-loss 0.5"]
    code, out, _ = _run("compare", *L1[1:], "-l", "l1", "--max-loss", "0.5", "-f", "github")
    assert code == 1
    assert out.splitlines()[-2].startswith("::error title=losscli l1 gate::the loss 0.875")
    # other formats keep stdout for data only
    _, out, _ = _run("compute", *L1, "--max-loss", "0.5", "--format", "csv")
    assert "gate" not in out
