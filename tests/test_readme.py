"""The README's commands on the samples run as written, and its comments tell the truth.

Every one-line ``losscli`` command of a ``bash`` block that reads only ``samples/`` is run
in-process (the part before a pipe; commands that read standard input or write files are
left to the suites that own them). Each must exit 0 or 1, never 2. A ``# ... = VALUE``
comment under a command is checked against what it prints, and every verified fix the
README's debug commands print must hold when its own command is run.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest
from debug_runner import assert_fixes_hold, run_json

from losscli import losses
from losscli.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split(" | ")[0].split("  #")[0].strip()
            words = shlex.split(command) if command.startswith("losscli ") else []
            if not words or any(w in ("-", ">", "<") for w in words):
                continue
            paths = [w.split(":")[0] for w in words[2:] if "/" in w]
            if paths and all(w.startswith("samples/") for w in paths):
                found.append(command)
    return found


COMMANDS = _commands()


def test_the_readme_has_commands_on_the_samples() -> None:
    assert len(COMMANDS) >= 20, COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_runs(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "120")
    code = 0
    try:
        main(shlex.split(command)[1:])
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    assert code in (0, 1), (command, captured.err)
    assert "internal error" not in captured.err


def _names_a_loss(command: str) -> bool:
    """A compute command, or a debug command given its loss (first, or with --loss / -l)."""
    words = shlex.split(command)
    if words[1] == "compute":
        return True
    if words[1] != "debug" or len(words) < 3:
        return False
    first = words[2]
    return bool({"--loss", "-l"} & set(words)) or (
        losses.get(first) is not None and not (ROOT / first).exists()
    )


DEBUG_COMMANDS = [c for c in COMMANDS if _names_a_loss(c)]


@pytest.mark.parametrize("command", DEBUG_COMMANDS)
def test_every_fix_the_readme_shows_holds(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    words: list[str] = []
    for word in shlex.split(command)[1:]:  # run_json asks for JSON itself
        if words and words[-1] in ("--format", "-f"):
            words.pop()
        else:
            words.append(word)
    outcome = run_json(capsys, words)
    assert_fixes_hold(capsys, outcome)


def test_the_values_in_the_readme_comments_are_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fixes' examples say "cross-entropy = 0.386697, no findings": the 1-based labels
    # mapped back, and the swapped inputs put in order, give the tour's value
    monkeypatch.chdir(ROOT)
    assert README.count("cross-entropy = 0.386697, no findings") == 2
    for command in (
        "losscli compute ce samples/classification/logits.csv "
        "samples/mistakes/one_based_labels.csv:label --map 'target = target - 1'",
        "losscli compute cross-entropy samples/classification/logits.csv "
        "samples/classification/labels.csv:label",
    ):
        assert command in README
        outcome = run_json(capsys, shlex.split(command)[1:])
        assert f"{outcome.report['value']:.6g}" == "0.386697"
        assert outcome.alarms() == set()


def _named_debug_commands() -> list[tuple[str, str]]:
    """(command, finding) for each ``losscli debug`` command under a comment ending ``: NAME``."""
    from losscli.findings import CATALOGUE

    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        lines = block.splitlines()
        for comment, command in itertools.pairwise(lines):
            name = comment.rsplit(": ", 1)[-1].strip()
            if comment.startswith("#") and name in CATALOGUE and command in DEBUG_COMMANDS:
                found.append((command, name))
    return found


NAMED = _named_debug_commands()


def test_the_readme_names_findings_over_its_debug_commands() -> None:
    assert {name for _, name in NAMED} >= {"scale-mismatch", "padding-not-ignored"}, NAMED


@pytest.mark.parametrize(("command", "name"), NAMED)
def test_each_debug_command_raises_the_finding_its_comment_names(
    command: str, name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    outcome = run_json(capsys, shlex.split(command)[1:])
    assert name in {f["name"] for f in outcome.findings}, outcome.summary()
