"""Every view at 80 and at 120 columns: no line too long, no name cut or split, no cut title.

Each view (compute's table, debug, compare, list, explain of each loss and each finding,
``-h`` of every command) is rendered by the CLI with a fixed width and no colour, on inputs
of every loss of the catalogue (the conformance cases) and on the samples' mistakes. The
same view rendered 1,000 columns wide, where nothing wraps, is the reference:

- no line is wider than the terminal (the fixes' commands after the view excepted: they
  are printed unwrapped on purpose, so that a command pastes whole);
- every word of the catalogue (loss names and aliases, torch class names, finding names,
  option flags and names) and every column header, table title and panel title the view
  drew appears as many times narrow as wide: a word split across lines (``margin-rankin`` /
  ``g``), a header cut to ``finding`` or a title cut at the border all lower the count;
- no ``…`` more than in the wide view (nothing cut).

The headers and titles are collected while the view is drawn (every Rich ``Table`` column,
``Table`` title and ``Panel`` title), so a new table or panel is checked without a new test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from test_conformance import CASES

from losscli import findings, losses
from losscli.cli import app, main

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (80, 120)
WIDE = 1000
# the lines after a view that hold the fixes' commands, one unwrapped line each
_COMMAND_LINE = re.compile(r"^(\[\d+\] |recommended: )losscli ")
_BOX = re.compile(r"[│╭╮╰╯─━┃┏┓┗┛┡┩└┘┌┐├┤┼╇]+")


def _catalogue_words() -> set[str]:
    """Loss names, aliases, torch classes, finding names, every option's flags and names."""
    import typer

    words: set[str] = set(losses.names()) | set(findings.CATALOGUE)
    for spec in losses.LOSSES:
        words.add(spec.torch_class)
        words.add(spec.torch_class.removeprefix("torch.nn."))
        for option in spec.options:
            words.update((option.flag, option.name))
    command = typer.main.get_command(app)
    for sub in [command, *getattr(command, "commands", {}).values()]:
        for param in sub.params:
            words.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("-"))
    return {w for w in words if len(w) > 1}


WORDS = _catalogue_words()


def _count(text: str, word: str) -> int:
    """How many times ``word`` stands alone in ``text`` (not inside a longer name)."""
    return len(re.findall(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text))


def _flat(text: str) -> str:
    """The text with box borders and every run of whitespace (line breaks too) as one space."""
    return " ".join(_BOX.sub(" ", text).split())


@dataclass(frozen=True)
class Drawn:
    """One view as printed, and the headers and titles its tables and panels drew."""

    text: str
    code: int
    headers: frozenset[str]


def _plain(value: object) -> str | None:
    if isinstance(value, Text):
        return value.plain
    return value if isinstance(value, str) else None


def _draw(
    argv: list[str],
    width: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Drawn:
    """``losscli ARGV`` on a ``width``-column colourless console, with what it titled."""
    headers: set[str] = set()
    table_drawn = Table.__rich_console__
    panel_drawn = Panel.__rich_console__

    def spy_table(self: Table, console: Any, options: Any) -> Any:
        headers.add(_plain(self.title) or "")
        if self.show_header:
            headers.update(_plain(column.header) or "" for column in self.columns)
        return table_drawn(self, console, options)

    def spy_panel(self: Panel, console: Any, options: Any) -> Any:
        headers.update((_plain(self.title) or "", _plain(self.subtitle) or ""))
        return panel_drawn(self, console, options)

    with monkeypatch.context() as patch:
        patch.setenv("COLUMNS", str(width))
        patch.setenv("NO_COLOR", "1")
        patch.delenv("LOSSCLI_FORMAT", raising=False)
        patch.setattr(Table, "__rich_console__", spy_table)
        patch.setattr(Panel, "__rich_console__", spy_panel)
        capsys.readouterr()
        code = 0
        try:
            main(argv)
        except SystemExit as done:
            code = int(done.code or 0)
        captured = capsys.readouterr()
    assert code in (0, 1), (argv, captured.err)
    return Drawn(captured.out, code, frozenset(h.strip() for h in headers if h.strip()))


def assert_fits(narrow: Drawn, wide: Drawn, width: int) -> None:
    """The checks of the module docstring, ``narrow`` drawn at ``width`` against ``wide``."""
    lines = [line for line in narrow.text.splitlines() if not _COMMAND_LINE.match(line)]
    too_long = [line for line in lines if len(line.rstrip()) > width]
    assert not too_long, f"lines over {width} columns:\n" + "\n".join(too_long)
    text = "\n".join(lines)
    wide_lines = wide.text.splitlines()
    wide_text = "\n".join(line for line in wide_lines if not _COMMAND_LINE.match(line))
    for word in sorted(w for w in WORDS if " " not in w):
        assert _count(text, word) == _count(wide_text, word), (
            f"{word!r}: {_count(wide_text, word)} whole at {WIDE} columns, "
            f"{_count(text, word)} at {width}:\n{narrow.text}"
        )
    flat, wide_flat = _flat(text), _flat(wide_text)
    for words in sorted(w for w in WORDS if " " in w):
        assert (_flat(words) in flat) == (_flat(words) in wide_flat), (words, narrow.text)
    for header in sorted(narrow.headers):
        whole = _flat(header) in flat if " " in header else _count(text, header) > 0
        assert whole, f"title or header {header!r} cut or broken at {width}:\n{narrow.text}"
    assert text.count("…") <= wide_text.count("…"), f"something cut at {width}:\n{narrow.text}"


# ---------------------------------------------------------------------------------------
# the views


def _one_case_per_loss() -> list[tuple[str, dict[str, np.ndarray], dict[str, object]]]:
    seen: dict[str, tuple[str, dict[str, np.ndarray], dict[str, object]]] = {}
    for case in CASES:
        seen.setdefault(case.loss, (case.loss, case.arrays(), case.options))
    return list(seen.values())


LOSS_CASES = _one_case_per_loss()


def test_the_cases_cover_every_loss() -> None:
    assert {loss for loss, _, _ in LOSS_CASES} == {spec.name for spec in losses.LOSSES}


def _option_words(options: dict[str, object]) -> list[str]:
    words: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is False:
            words.append("--no-" + name.replace("_", "-"))
        else:
            words += [flag, str(value)]
    return words


def _saved(arrays: dict[str, np.ndarray]) -> list[str]:
    """The arrays as ``a0.npy``, ``a1.npy``, ... in the working directory (short names, so
    a path never wraps, and no file name holds a word of the catalogue)."""
    paths = []
    for index, values in enumerate(arrays.values()):
        np.save(f"a{index}.npy", values.astype(np.float32) if values.dtype.kind == "f" else values)
        paths.append(f"a{index}.npy")
    return paths


def _loss_views(
    loss: str, arrays: dict[str, np.ndarray], options: dict[str, object]
) -> Iterator[list[str]]:
    argv = [*_saved(arrays), *_option_words(options)]
    yield ["compute", loss, *argv]
    yield ["debug", "--loss", loss, *argv]
    yield ["compare", "-l", loss, *argv]


_SAMPLE_VIEWS: list[list[str]] = [
    [
        "debug",
        "--loss",
        "ce",
        "samples/classification/logits.csv",
        "samples/mistakes/one_based_labels.csv:label",
    ],
    ["debug", "samples/mistakes/softmax_probs.csv", "samples/classification/labels.csv:label"],
    [
        "debug",
        "samples/mistakes/distances.npy",
        "samples/mistakes/zero_one_targets.npy",
        "--loss",
        "hinge-embedding",
    ],
    [
        "debug",
        "--loss",
        "cross-entropy",
        "samples/mistakes/token_logits.npy",
        "samples/mistakes/padded_tokens.npy",
    ],
    [
        "compute",
        "cross-entropy",
        "samples/classification/labels.csv:label",
        "samples/classification/logits.csv",
    ],
    [
        "compute",
        "cross-entropy",
        "samples/classification/logits.csv",
        "samples/classification/labels.csv:label",
        "--memory-budget",
        "1KB",
    ],
    [
        "compare",
        "samples/classification/logits.csv",
        "samples/classification/labels.csv:label",
        "-l",
        "cross-entropy",
        "-l",
        "nll",
        "-l",
        "multi-margin",
        "-l",
        "focal",
        "-l",
        "mse",
    ],
    [
        "compare",
        "samples/regression/pred.npy",
        "samples/regression/true.npy",
        "-l",
        "mse",
        "-l",
        "l1",
        "-l",
        "huber",
        "-l",
        "smooth-l1",
        "-l",
        "triplet-margin-distance",
    ],
]


def _help_views() -> Iterator[list[str]]:
    import typer

    yield ["-h"]
    for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        yield [name, "-h"]


VIEWS: list[tuple[str, list[str]]] = [
    ("list", ["list"]),
    ("explain", ["explain"]),
    *((f"explain {s.name}", ["explain", s.name]) for s in losses.LOSSES),
    *((f"explain {name}", ["explain", name]) for name in findings.CATALOGUE),
    *((" ".join(argv), argv) for argv in _help_views()),
    *((" ".join(argv[:2]), argv) for argv in _SAMPLE_VIEWS),
]


def _assert_every_width(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = _draw(argv, WIDE, capsys, monkeypatch)
    for width in WIDTHS:
        narrow = _draw(argv, width, capsys, monkeypatch)
        assert narrow.code == wide.code
        assert_fits(narrow, wide, width)


def _view_params() -> Iterator[object]:
    for label, argv in VIEWS:
        for width in WIDTHS:
            yield pytest.param(argv, width, id=f"{label} @{width}")


_WIDE: dict[tuple[str, ...], Drawn] = {}


@pytest.mark.parametrize(("argv", "width"), list(_view_params()))
def test_each_view_fits(
    argv: list[str],
    width: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    if tuple(argv) not in _WIDE:
        _WIDE[tuple(argv)] = _draw(argv, WIDE, capsys, monkeypatch)
    wide = _WIDE[tuple(argv)]
    narrow = _draw(argv, width, capsys, monkeypatch)
    assert narrow.code == wide.code
    assert_fits(narrow, wide, width)


@pytest.mark.parametrize(("loss", "arrays", "options"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_each_loss_views_fit(
    loss: str,
    arrays: dict[str, np.ndarray],
    options: dict[str, object],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """compute, debug and compare of every loss, on valid inputs of its own."""
    monkeypatch.chdir(tmp_path)
    for argv in _loss_views(loss, arrays, options):
        _assert_every_width(argv, capsys, monkeypatch)


def test_the_check_catches_a_split_name_and_a_cut_header() -> None:
    """The checker is evidence: the issue's two screens fail it."""
    header = "findings"
    wide = Drawn("margin-ranking 1\n" + f" loss  {header}\n", 0, frozenset({"loss", header}))
    split = Drawn("margin-rankin\ng 1\n" + f" loss  {header}\n", 0, wide.headers)
    cut = Drawn("margin-ranking 1\n loss  finding…\n", 0, wide.headers)
    for narrow in (split, cut):
        with pytest.raises(AssertionError):
            assert_fits(narrow, wide, 80)
    assert_fits(wide, wide, 80)
