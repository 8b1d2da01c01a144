"""Run `losscli debug --format json` on arrays saved to files: shared by the real-mistake tests.

Every run also proves its fixes: each fix's `command` is run through the CLI and must print
exactly the value its `verified` announced, with exactly the warnings and errors it listed
(:func:`assert_fixes_hold`).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from losscli.cli import main


@dataclass
class Outcome:
    """What `losscli debug --format json` said: the exit code and the report."""

    code: int
    report: dict[str, Any]

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.report["findings"])

    def named(self, name: str) -> dict[str, Any]:
        found = [f for f in self.findings if f["name"] == name]
        assert len(found) == 1, (name, self.summary())
        return found[0]

    def fix(self, name: str) -> str:
        return str(self.named(name)["fix"])

    def errors(self) -> set[str]:
        return {f["name"] for f in self.findings if f["severity"] == "error"}

    def alarms(self) -> set[str]:
        """The names of the warnings and errors."""
        return {f["name"] for f in self.findings if f["severity"] != "info"}

    def offered_fixes(self, besides: frozenset[str] = frozenset()) -> list[str]:
        """The code of every fix offered, except by the findings named in ``besides``."""
        return [
            str(fix.get("code") or fix.get("command"))
            for item in self.findings
            if item["name"] not in besides
            for fix in item.get("fixes", [])
        ]

    def alarm_lines(self) -> list[str]:
        """The warnings and errors, one readable line each (for assertion messages)."""
        return [line for line in self.summary() if not line.startswith("info ")]

    def summary(self) -> list[str]:
        return [f"{f['severity']} {f['name']}: {f['message']}" for f in self.findings]


def debug(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    loss: str,
    *inputs: np.ndarray | torch.Tensor | str,
    options: tuple[str, ...] = (),
) -> Outcome:
    """Save each input and run the CLI on the files.

    Arrays go to .npy, torch tensors to .pt (read back with weights_only=True), and CSV text to
    .csv read as its ``label`` column.
    """
    paths = []
    for index, given in enumerate(inputs):
        if isinstance(given, str):
            path = tmp_path / f"arg{index}.csv"
            path.write_text(given)
            paths.append(f"{path}:label")
        elif isinstance(given, torch.Tensor):
            path = tmp_path / f"arg{index}.pt"
            torch.save(given, path)
            paths.append(str(path))
        else:
            path = tmp_path / f"arg{index}.npy"
            np.save(path, given)
            paths.append(str(path))
    outcome = run_json(capsys, ["debug", *paths, "--loss", loss, *options])
    assert_fixes_hold(capsys, outcome)
    return outcome


def run_json(capsys: pytest.CaptureFixture[str], arguments: list[str]) -> Outcome:
    """Run the CLI in-process with ``--format json``: its exit code and its report."""
    code = 0
    try:
        main([*arguments, "--format", "json"])
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    return Outcome(code, json.loads(captured.out))


def assert_fixes_hold(capsys: pytest.CaptureFixture[str], outcome: Outcome) -> int:
    """Run every verified fix's command: the value and the remaining alarms are as announced.

    Returns the number of commands run.
    """
    ran = 0
    for item in outcome.findings:
        for fix in item.get("fixes", []):
            verified = fix["verified"]
            if verified is None or fix.get("command") is None:
                continue
            words = shlex.split(fix["command"])
            assert words[:2] == ["losscli", "compute"], fix["command"]
            rerun = run_json(capsys, words[1:])
            value = rerun.report["value"]
            announced = verified["value"]
            assert (value is None and announced is None) or (
                value is not None
                and announced is not None
                and (value == announced or (math.isnan(value) and math.isnan(announced)))
            ), (fix["command"], value, announced)
            assert sorted(rerun.alarms()) == sorted(verified["findings"]), (
                fix["command"],
                rerun.alarm_lines(),
                verified["findings"],
            )
            ran += 1
    return ran
