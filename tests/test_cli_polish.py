"""CLI polish: bare `losscli`, -h everywhere, examples in every help, --version, shell
completion, and "did you mean" for misspelled commands and loss names."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from losscli import __version__
from losscli.cli import _complete_loss, app, main

runner = CliRunner()
COMMANDS = sorted(
    command.name or command.callback.__name__  # type: ignore[union-attr]
    for command in app.registered_commands
)


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_commands_of_the_spec_are_registered() -> None:
    # SPEC.md, Commands: compute, debug, compare, list, explain
    assert {"compute", "debug", "compare", "list", "explain"} <= set(COMMANDS)


def test_bare_losscli_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main([], capsys)
    assert code == 0
    assert "Usage" in out and "compute" in out and "compare" in out
    assert err == ""


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_root_help(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main([flag], capsys)
    assert code == 0
    assert "--install-completion" in out and "--show-completion" in out
    assert "--version" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_short_help_and_examples(command: str) -> None:
    result = runner.invoke(app, [command, "-h"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert f"Usage: losscli {command}" in result.stdout
    assert "Examples:" in result.stdout
    assert f"losscli {command}" in result.stdout.split("Examples:")[1]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main([flag], capsys) == (0, f"losscli {__version__}\n", "")


def test_loss_names_complete() -> None:
    # every accepted name: catalogue names, aliases, and torch's class and function names
    assert _complete_loss("cro") == [
        "cross-entropy",
        "cross_entropy",
        "crossentropy",
        "CrossEntropyLoss",
    ]
    assert _complete_loss("HUB") == ["huber", "huber_loss", "HuberLoss"]
    assert _complete_loss("F.mse") == ["F.mse_loss"]
    assert _complete_loss("nn.CrossE") == ["nn.CrossEntropyLoss"]
    assert _complete_loss("zzz") == []


def test_shell_completion_offers_loss_names_through_typer() -> None:
    # what the bash completion script asks the program (Typer's protocol)
    env = {
        "_LOSSCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": "losscli compare a.npy -l hu",
        "COMP_CWORD": "4",
    }
    result = runner.invoke(app, [], env=env, prog_name="losscli")
    assert result.stdout.split() == ["huber", "huber_loss"]  # Typer keeps the same-case ones
    env["COMP_WORDS"], env["COMP_CWORD"] = "losscli compute smo", "2"
    result = runner.invoke(app, [], env=env, prog_name="losscli")
    assert result.stdout.split() == ["smooth-l1", "smooth_l1_loss"]
    env["COMP_WORDS"], env["COMP_CWORD"] = "losscli debug CrossEnt", "2"
    result = runner.invoke(app, [], env=env, prog_name="losscli")
    assert result.stdout.split() == ["CrossEntropyLoss"]
    # after the first argument only files follow: no loss names, the shell completes files
    env["COMP_WORDS"], env["COMP_CWORD"] = "losscli debug a.npy CrossEnt", "3"
    result = runner.invoke(app, [], env=env, prog_name="losscli")
    assert result.stdout.split() == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compute", "msee", "[1]", "[1]"], "unknown loss 'msee'; did you mean 'mse'?"),
        (["compare", "[1]", "[1]", "-l", "l1", "-l", "msee"], "did you mean 'mse'?"),
        (["comput", "mse"], "No such command 'comput'. Did you mean 'compute'"),
        (["compute", "mse", "[1]", "[1]", "--fromat", "json"], "--format"),
    ],
)
def test_did_you_mean(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(argv, capsys)
    assert code == 2
    assert out == ""
    assert expected in err
    assert err.count("\n") == 1  # one line, no traceback
    assert err.startswith("losscli: error: ")


def test_did_you_mean_for_debug_loss_when_debug_exists(capsys: pytest.CaptureFixture[str]) -> None:
    assert "debug" in COMMANDS
    code, _, err = _main(["debug", "[1,2]", "[1,2]", "--loss", "hubr"], capsys)
    assert code == 2
    assert "did you mean 'huber'?" in err


def test_typer_exit_codes_are_not_swallowed_by_main() -> None:
    # main runs click without standalone mode, where typer.Exit becomes a return value
    with pytest.raises(SystemExit) as done:
        main(["compute", "l1", "[1]", "[3]", "--max-loss", "1"])
    assert done.value.code == 1
    assert isinstance(typer.Exit(1).exit_code, int)


# The program (console script, python -m losscli) ends with os._exit once main() returns:
# what main() wrote and its exit code must survive that, whatever SystemExit carried.
_PROGRAM = """
import sys
import losscli.cli as cli

def main():
    sys.stdout.write("written, not flushed")
    raise SystemExit({code!r})

cli.main = main
cli.entry()
"""


@pytest.mark.parametrize(
    ("code", "exit_code", "stderr"),
    [(None, 0, ""), (0, 0, ""), (1, 1, ""), (2, 2, ""), ("a message", 1, "losscli: a message\n")],
)
def test_the_program_exits_with_mains_code_and_output(
    code: object, exit_code: int, stderr: str
) -> None:
    import os
    import subprocess
    import sys

    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(code=code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=buffered,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        exit_code,
        "written, not flushed",
        stderr,
    )
