"""Run `losscli debug --format json` on arrays saved to files: shared by the real-mistake tests."""

from __future__ import annotations

import json
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
    code = 0
    try:
        main(["debug", *paths, "--loss", loss, "--format", "json", *options])
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    return Outcome(code, json.loads(captured.out))
