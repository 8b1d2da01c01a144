"""Every fix holds, on every case of the check suites: what it announces is what its command prints.

The corpus is the check registry's (the fires / near-miss / clean cases of the check suites
and the registry's own value cases). Each case is saved to ``.npy`` files and run through
``losscli debug --format json``; :func:`debug_runner.debug` then runs every verified fix's
command through the CLI and asserts the value and the remaining warnings and errors are
exactly those announced. Beyond that, a finding at warning or above whose check proposed
remedies must keep at least one (a remedy that never verifies is advice nobody ran), and
every finding that proposes remedies documents their kinds for ``losscli explain``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from debug_runner import debug
from evaluation import evaluate
from test_check_registry import LOCAL, _suite_cases

from losscli import fixes
from losscli.findings import CATALOGUE, Finding, Fix, Remedy, Severity

Case = tuple[str, list[Any], dict[str, Any]]


def _cases() -> Iterator[Any]:
    for index, (loss, arrays, given) in enumerate([*_suite_cases(), *LOCAL]):
        yield pytest.param(loss, arrays, given, id=f"{index}-{loss}")


def _flags(given: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for name, value in given.items():
        flag = "-p" if name == "p" else "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else f"--no-{flag.removeprefix('--')}")
        elif isinstance(value, (list, tuple, np.ndarray)):
            words += [flag, "[" + ",".join(repr(float(v)) for v in np.ravel(value)) + "]"]
        else:
            words += [flag, str(value)]
    return words


@pytest.mark.parametrize(("loss", "arrays", "given"), list(_cases()))
def test_every_fix_announced_is_what_its_command_prints(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    loss: str,
    arrays: list[Any],
    given: dict[str, Any],
) -> None:
    tried: list[tuple[Finding, Remedy, Fix | None]] = []
    original = fixes._tried

    def recording(remedy: Remedy, item: Finding, *rest: Any) -> Fix | None:
        kept = original(remedy, item, *rest)
        tried.append((item, remedy, kept))
        return kept

    monkeypatch.setattr(fixes, "_tried", recording)
    # debug() itself runs each verified fix's command and compares (debug_runner)
    debug(tmp_path, capsys, loss, *[np.asarray(a) for a in arrays], options=tuple(_flags(given)))
    proposed: dict[str, list[Fix | None]] = {}
    for item, _, kept in tried:
        if item.severity.rank >= Severity.WARNING.rank:
            proposed.setdefault(item.name, []).append(kept)
    # `losscli explain NAME` lists the kinds of remedy of every finding that proposes one
    undocumented = {item.name for item, _, _ in tried if not CATALOGUE[item.name].remedies}
    assert undocumented == set()
    # every remedy the checks propose on these inputs was tried (none skipped unverified)
    direct = evaluate(loss, *[np.asarray(a) for a in arrays], **given)
    offered = {(f.name, r) for f in direct.findings for r in f.remedies}
    assert offered <= {(item.name, remedy) for item, remedy, _ in tried}
    never = [name for name, kept in proposed.items() if not any(kept)]
    assert never == [], f"{never}: every remedy proposed failed its verification: " + "; ".join(
        f"{item.name}: {remedy}" for item, remedy, kept in tried if kept is None
    )
