"""Run a command whole and streamed through tiny chunks, and assert one answer (shared by suites)."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest

from losscli.cli import main

TINY = "2KB"  # chunks of a few samples


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--format", "json"])
    captured = capsys.readouterr()
    record = json.loads(captured.out) if captured.out.strip() else {}
    return int(done.value.code or 0), record, captured.err


def answer(code: int, record: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the chunking."""
    losses = record.get("losses", [record])
    return {
        "code": code,
        "shapes": [
            {name: info["shape"] for name, info in (r.get("inputs") or {}).items()} for r in losses
        ],
        "values": [r.get("value") for r in losses],
        "findings": [
            sorted(Counter((f["name"], f["severity"]) for f in r.get("findings", [])).items())
            for r in losses
        ],
        "recommended": record.get("recommended", {}).get("loss"),
    }


def assert_same(whole: dict[str, Any], streamed: dict[str, Any], label: str) -> None:
    for key in ("code", "shapes", "findings", "recommended"):
        assert whole[key] == streamed[key], f"{label}: {key} {whole[key]} != {streamed[key]}"
    for a, b in zip(whole["values"], streamed["values"], strict=True):
        if a is None or b is None:
            assert a is b, f"{label}: value {a} != {b}"
        else:
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), f"{label}: value {a} != {b}"


def parity(capsys: pytest.CaptureFixture[str], argv: list[str], label: str) -> dict[str, Any]:
    """Run ``argv`` whole and streamed; assert one answer; return the streamed JSON."""
    code, record, err = run(capsys, *argv)
    assert code != 2, f"{label}: {err}"
    whole = answer(code, record)
    assert not record.get("streamed"), label
    code, streamed_record, err = run(capsys, *argv, "--memory-budget", TINY)
    assert code != 2, f"{label} streamed: {err}"
    streamed = answer(code, streamed_record)
    for r in streamed_record.get("losses", [streamed_record]):
        if r.get("value") is not None:
            assert r["streamed"], f"{label} did not stream"
    assert_same(whole, streamed, label)
    return streamed_record
