"""The README's seed examples, end to end through the CLI."""

import json

from typer.testing import CliRunner

from losscli.cli import app

runner = CliRunner()


def test_l1_inline_prints_the_documented_value() -> None:
    # SPEC: l1 on [1,2.5,4,0.5] vs [2,2.5,2,1] is (1 + 0 + 2 + 0.5) / 4 = 0.875
    result = runner.invoke(
        app, ["compute", "l1", "[1,2.5,4,0.5]", "[2,2.5,2,1]", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["value"] == 0.875


def test_missing_file_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["compute", "mse", "no-such-file.npy", "[1]"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "no-such-file.npy" in result.stderr
