"""The README is executable documentation: every command it shows runs, and says what it says.

Every command of every ``bash`` block (continuation lines joined; pipes, ``cat x | losscli
... -``, ``python -c``, redirections and commands that write files included), and every
``losscli`` step of the GitHub Actions workflow it shows, is run by ``bash -o pipefail`` with
the installed ``losscli`` first on PATH (a plain ``losscli`` command, with no shell feature
and no standard input, in-process through ``losscli.cli.main``, the console script's entry
point), in a temporary directory holding a copy of ``samples/`` (one directory per block,
its commands in order; ``TMPDIR`` inside it), so no file is ever written in the repository.
Blocks run two at a time. Each command must then:

- exit with the code its comments state, ``(exit N)``, or 0 when they state none (a
  pipeline's code is ``pipefail``'s: losscli's own when it is not 0);
- print every number its comment lines directly above it quote (``# prints 0.875``),
  to the precision quoted;
- print each comment line directly under it (an excerpt of the output; ``...`` stands for
  text left out), on stdout or stderr, wrapping and box borders aside (comment lines that
  lead to the next command are that command's own);

and the numbers quoted in the paragraph right after a block must be printed by one of its
commands. Commands on files the reader has are shown in ``text`` blocks, not ``bash``; the
set-up and development commands (``pip``, ``pytest``, ``ruff``, ``mypy``) are what CI runs
itself, and are the only ones left out. ``jq`` pipelines are skipped, with the reason, on a
machine without ``jq``, and ``--dask`` commands on one without Dask.

Two more checks run each ``losscli debug``/``compute`` command in-process as JSON: a debug
command under a comment ending ``: FINDING`` raises that finding, and every verified fix it
shows prints what it announced. A README with one quoted value changed fails (the last tests).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from debug_runner import assert_fixes_hold, run_json

from losscli.findings import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent  # the venv's bin: its losscli is the one installed
HAS_JQ = shutil.which("jq") is not None
HAS_DASK = importlib.util.find_spec("distributed") is not None
# run by CI itself, never from here (installing, the test suite, the linters)
NOT_RUN = ("pip ", "pytest", "ruff ", "mypy")

_DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:e[-+]?\d+)?(?!\w|\.\d)")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_EXIT = re.compile(r"\(exit (\d+)")
_BOX = re.compile(r"[│╭╮╰╯─━┃┏┓┗┛┡┩└┘┌┐├┤┼╇]+")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


@dataclass(frozen=True)
class Example:
    """One command of the README with what its comments say about it.

    Attributes:
        command: the command line as the shell reads it (continuations joined).
        line: its line in the README (1-based), for the test ids.
        block: which code block it is in; commands of a block share a directory.
        above: the comment lines directly above it, ``# `` removed.
        below: the comment lines directly under it (an excerpt of its output).
        env: environment variables the README sets for it (a workflow step's ``env``).
    """

    command: str
    line: int
    block: int
    above: tuple[str, ...] = ()
    below: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.command[:60]}"

    @property
    def code(self) -> int:
        """The exit code its comments state; 0 when they state none."""
        found = [int(m) for text in (*self.above, *self.below) for m in _EXIT.findall(text)]
        return found[-1] if found else 0

    @property
    def quoted(self) -> list[str]:
        """The numbers the comments above quote (``prints 0.875``)."""
        return [m for text in self.above for m in _DECIMAL.findall(text)]

    @property
    def unavailable(self) -> str | None:
        """Why this machine cannot run the command (None: it can)."""
        if not HAS_JQ and re.search(r"\|\s*jq\b", self.command) is not None:
            return "jq is not installed: the pipeline through jq is not run"
        if not HAS_DASK and "--dask" in self.command:
            return "Dask is not installed (pip install 'losscli[dask]'): --dask is not run"
        return None

    @property
    def losscli_argv(self) -> list[str] | None:
        """The losscli arguments of the command's first stage, when it is a losscli command."""
        first = self.command.split(" | ")[0]
        words = shlex.split(first)
        if words[:1] != ["losscli"] or any(w in (">", "<", "&&") for w in words):
            return None
        return words[1:]


@dataclass
class Block:
    """A code block: its examples, and the paragraph after it."""

    examples: list[Example] = field(default_factory=list)
    after: str = ""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def _joined(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(offset of its first line, line) with ``\\`` continuations joined."""
    start, parts = 0, []
    for index, line in enumerate(lines):
        if not parts:
            start = index
        if line.endswith("\\"):
            parts.append(line[:-1].rstrip())
            continue
        parts.append(line.strip() if parts else line)
        yield start, " ".join(parts)
        parts = []


def _comment(line: str) -> str | None:
    stripped = line.strip()
    return stripped[1:].strip() if stripped.startswith("#") else None


def _bash_block(body: str, first_line: int, index: int) -> list[Example]:
    rows = list(_joined(body.splitlines()))
    examples = []
    for position, (offset, line) in enumerate(rows):
        if not line.strip() or _comment(line) is not None:
            continue
        above: list[str] = []
        for _, previous in reversed(rows[:position]):
            text = _comment(previous)
            if text is None:
                break
            above.insert(0, text)
        below: list[str] = []
        for _, following in rows[position + 1 :]:
            text = _comment(following)
            if text is None:
                if following.strip():  # the comments were the next command's own
                    below = []
                break
            below.append(text)
        for part in line.split(" && "):  # `pip install ... && losscli ...`: the losscli part
            if not part.strip().startswith(NOT_RUN):
                examples.append(
                    Example(part.strip(), first_line + offset, index, tuple(above), tuple(below))
                )
    return examples


def _workflow_steps(body: str, first_line: int, index: int) -> list[Example]:
    """The ``losscli`` commands of a workflow's ``run: >`` steps, with the step's ``env``."""
    lines = body.splitlines()
    examples: list[Example] = []
    env: dict[str, str] = {}
    position = 0
    while position < len(lines):
        line = lines[position]
        if line.strip().startswith("- "):
            env = {}
        if line.strip() == "env:":
            indent = len(line) - len(line.lstrip())
            while position + 1 < len(lines) and (
                len(lines[position + 1]) - len(lines[position + 1].lstrip()) > indent
            ):
                position += 1
                key, _, value = lines[position].strip().partition(":")
                env[key.strip()] = value.strip()
        if line.strip() in ("run: >", "run: |"):
            indent = len(line) - len(line.lstrip())
            start, folded = position, []
            while position + 1 < len(lines) and (
                len(lines[position + 1]) - len(lines[position + 1].lstrip()) > indent
            ):
                position += 1
                folded.append(lines[position].strip())
            command = " ".join(folded)
            if command.startswith("losscli "):
                examples.append(
                    Example(command, first_line + start, index, env=tuple(sorted(env.items())))
                )
        position += 1
    return examples


def blocks(readme: str) -> list[Block]:
    """Every runnable block of ``readme``, in order. A workflow (``yaml``) block runs in the
    directory of the ``bash`` block before it (it reads the baseline that block saved)."""
    found: list[Block] = []
    for match in _FENCE.finditer(readme):
        language, body = match.group(1), match.group(2)
        first_line = readme.count("\n", 0, match.start(2)) + 1
        rest = readme[match.end() :].lstrip("\n")
        after = "" if rest.startswith("```") else rest.split("\n\n", 1)[0]
        if language == "bash":
            found.append(Block(_bash_block(body, first_line, len(found)), after))
        elif language == "yaml" and found:
            found[-1].examples += _workflow_steps(body, first_line, len(found) - 1)
    return [block for block in found if block.examples]


BLOCKS = blocks(README)
EXAMPLES = [example for block in BLOCKS for example in block.examples]


def _numbers(text: str) -> list[float]:
    values = []
    for token in _NUMBER.findall(text):
        try:
            values.append(float(token))
        except ValueError:
            continue
    return values


def _printed(quoted: str, text: str) -> bool:
    """Whether ``text`` holds a number that reads as ``quoted`` at the precision quoted."""
    mantissa = quoted.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(quoted.lower().split("e")[1]) if "e" in quoted.lower() else 0
    half_unit = 0.5 * 10.0 ** (exponent - decimals)
    value = float(quoted)
    return any(abs(number - value) <= half_unit * (1 + 1e-9) for number in _numbers(text))


def _flat(text: str) -> str:
    return " ".join(_BOX.sub(" ", text).split())


def problems(example: Example, result: Result) -> list[str]:
    """What ``result`` contradicts in what the README says about ``example``."""
    found = []
    printed = f"{result.stdout}\n{result.stderr}"
    if result.code != example.code:
        found.append(f"exit {result.code}, the README says {example.code}: {result.stderr[-800:]}")
    for quoted in example.quoted:
        if not _printed(quoted, result.stdout):
            found.append(f"{quoted} quoted, not printed")
    flat = _flat(printed)
    for excerpt in example.below:
        for fragment in (f.strip() for f in excerpt.split("...")):
            if fragment and _flat(fragment) not in flat:
                found.append(f"{fragment!r} quoted under it, not printed")
    return found


def _environment(workdir: Path, example: Example) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOSSCLI_", "PYTEST"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        TMPDIR=str(workdir / "tmp"),
        COLUMNS="120",
        NO_COLOR="1",
    )
    env.update(dict(example.env))
    return env


def _in_process(example: Example) -> list[str] | None:
    """The arguments of a plain ``losscli`` command (no shell feature, no standard input),
    which :func:`losscli.cli.main`, the console script's entry point, runs in-process."""
    if re.search(r"[|<>;&$`]", example.command):
        return None
    argv = example.losscli_argv
    if argv is None or any(word == "-" or word.startswith("-:") for word in argv):
        return None
    return argv


# in-process runs change the working directory and the environment: one at a time
_PROCESS_STATE = threading.Lock()


def _run_in_process(argv: list[str], example: Example, workdir: Path) -> Result:
    from losscli.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _PROCESS_STATE:
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        os.environ.clear()
        os.environ.update(_environment(workdir, example))
        os.chdir(workdir)
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(argv)
        except SystemExit as done:
            code = int(done.code or 0)
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
    return Result(code, out.getvalue(), err.getvalue())


def run(example: Example, workdir: Path) -> Result:
    """The example's command in ``workdir``: through ``bash -o pipefail``, or in-process
    when it is a plain ``losscli`` command (the same entry point, without a new interpreter)."""
    argv = _in_process(example)
    if argv is not None:
        return _run_in_process(argv, example, workdir)
    with _PROCESS_STATE:  # not while an in-process run has the environment replaced
        env = _environment(workdir, example)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", example.command],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def workdir_with_samples(parent: Path) -> Path:
    """A new directory holding a copy of ``samples/`` and an empty ``tmp/`` (its TMPDIR)."""
    parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "samples", parent / "samples")
    (parent / "tmp").mkdir()
    return parent


def _run_block(block: Block, workdir: Path) -> dict[Example, Result]:
    return {
        example: run(example, workdir) for example in block.examples if example.unavailable is None
    }


@pytest.fixture(scope="module")
def results() -> Iterator[dict[Example, Result]]:
    """Every example's result: each block in its own copy of samples/, two blocks at once.

    The directories live in a temporary directory of their own: pytest's numbered base
    directories are pruned by concurrent sessions, and these outlive many tests.
    """
    with tempfile.TemporaryDirectory(prefix="losscli-readme-") as base:
        workdirs = [workdir_with_samples(Path(base) / f"block{i}") for i in range(len(BLOCKS))]
        outcome: dict[Example, Result] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done in pool.map(_run_block, BLOCKS, workdirs):
                outcome.update(done)
        yield outcome


def test_the_readme_has_its_commands() -> None:
    assert len(EXAMPLES) >= 40, [e.command for e in EXAMPLES]
    assert any(e.env for e in EXAMPLES)  # the workflow's steps are among them
    assert sum(bool(e.quoted or e.below) for e in EXAMPLES) >= 15


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_each_command_does_what_the_readme_says(
    example: Example, results: dict[Example, Result]
) -> None:
    if example not in results:
        pytest.skip(example.unavailable or "not run")
    assert problems(example, results[example]) == [], example.command


@pytest.mark.parametrize("block", BLOCKS, ids=[b.examples[0].id for b in BLOCKS])
def test_numbers_in_the_prose_after_a_block_are_printed(
    block: Block, results: dict[Example, Result]
) -> None:
    outputs = "\n".join(results[e].stdout for e in block.examples if e in results)
    for quoted in _DECIMAL.findall(block.after):
        assert _printed(quoted, outputs), (quoted, block.after)


def test_no_command_writes_into_the_repository() -> None:
    written = [e for e in EXAMPLES if re.search(r"(?<![<>&])>(?!&)|--per-sample-out", e.command)]
    assert written, "the README shows no command that writes a file"
    for example in written:
        target = re.search(r"(?:>|--per-sample-out)\s+(\S+)", example.command)
        assert target is not None
        path = target.group(1).strip("\"'")
        assert not path.startswith("/") or path.startswith("/dev/"), example.command
        assert not path.startswith("..") and not path.startswith("samples"), example.command


# ---------------------------------------------------------------------------------------
# each debug command raises the finding its comment names; every fix it shows holds


def _json_runnable(example: Example) -> bool:
    argv = example.losscli_argv
    return (
        argv is not None
        and argv[:1] in (["debug"], ["compute"])
        and "-" not in argv
        and "-:label" not in argv
        and not any("$" in word for word in argv)
        and "--baseline" not in argv  # reads the report its block saved
        and not any("*" in word for word in argv)  # reads the shards its block wrote
        and example.code != 2  # a usage error has no report
    )


JSON_RUNNABLE = [e for e in EXAMPLES if _json_runnable(e)]


def _json_argv(example: Example) -> list[str]:
    """The losscli arguments without ``--format``/``-f`` and their value (run_json adds its own)."""
    words: list[str] = []
    for word in example.losscli_argv or []:
        if words and words[-1] in ("--format", "-f"):
            words.pop()
        else:
            words.append(word)
    return words


def _named_finding(example: Example) -> str | None:
    """The finding named at the end of the comment line directly above a debug command."""
    if not example.above or (example.losscli_argv or [""])[0] not in ("debug", "compute"):
        return None
    last = _EXIT.sub("", example.above[-1]).replace(")", "").strip()
    name = last.rsplit(": ", 1)[-1].strip()
    return name if name in CATALOGUE else None


NAMED = [(e, name) for e in JSON_RUNNABLE if (name := _named_finding(e)) is not None]


@pytest.fixture
def samples_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workdir = workdir_with_samples(tmp_path / "work")
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "120")
    return workdir


def test_the_readme_names_findings_over_its_debug_commands() -> None:
    assert {name for _, name in NAMED} >= {
        "scale-mismatch",
        "padding-not-ignored",
        "silent-broadcast",
        "sign-target-expected",
        "swapped-inputs",
    }, NAMED


@pytest.mark.parametrize(("example", "name"), NAMED, ids=[f"{n}:{e.id}" for e, n in NAMED])
def test_each_debug_command_raises_the_finding_its_comment_names(
    example: Example, name: str, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_json(capsys, _json_argv(example))
    assert name in {f["name"] for f in outcome.findings}, outcome.summary()


@pytest.mark.parametrize("example", JSON_RUNNABLE, ids=[e.id for e in JSON_RUNNABLE])
def test_every_fix_the_readme_shows_holds(
    example: Example, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_json(capsys, _json_argv(example))
    assert_fixes_hold(capsys, outcome)


# ---------------------------------------------------------------------------------------
# a README that says something false fails


def _mutated(old: str, new: str) -> Example:
    """The example of a README copy with ``old`` replaced by ``new`` (once, in a comment)."""
    assert README.count(old) == 1, old
    changed = README.replace(old, new)
    return next(
        example
        for block in blocks(changed)
        for example in block.examples
        if any(new.lstrip("# ") in text for text in (*example.above, *example.below))
    )


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("# inline arrays: prints 0.875", "# inline arrays: prints 0.876", "0.876 quoted"),
        (
            "# (N, 1) predictions against (N,) targets (exit 1): silent-broadcast",
            "# (N, 1) predictions against (N,) targets: silent-broadcast",
            "exit 1, the README says 0",
        ),
        (
            "#   after `target = target - 1`: cross-entropy = 0.386697, no findings (if the",
            "#   after `target = target - 1`: cross-entropy = 0.386698, no findings (if the",
            "0.386698, no findings",
        ),
    ],
    ids=["value", "exit code", "excerpt"],
)
def test_a_false_claim_fails(old: str, new: str, complaint: str, tmp_path: Path) -> None:
    example = _mutated(old, new)
    truthful = next(e for e in EXAMPLES if e.command == example.command and e.line == example.line)
    workdir = workdir_with_samples(tmp_path / "work")
    result = run(example, workdir)
    assert problems(truthful, result) == []  # the README as it is: true
    found = problems(example, result)
    assert any(complaint in problem for problem in found), found


# ---------------------------------------------------------------------------------------
# the Python blocks: each runs as a script and prints the text block after it


@dataclass(frozen=True)
class Script:
    """A ``python`` block of the README, and the ``text`` block right after it (its output).

    Attributes:
        code: the block's source.
        line: its first line in the README, for the test ids.
        output: the lines of the ``text`` block after it; ``...`` stands for text left out.
    """

    code: str
    line: int
    output: tuple[str, ...]


def scripts(readme: str) -> list[Script]:
    found: list[Script] = []
    matches = list(_FENCE.finditer(readme))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        if match.group(1) != "python":
            continue
        between = readme[match.end() : following.start()] if following else ""
        output = (
            tuple(line for line in following.group(2).splitlines() if line.strip())
            if following is not None and following.group(1) == "text" and not between.strip()
            else ()
        )
        line = readme.count("\n", 0, match.start(2)) + 1
        found.append(Script(match.group(2), line, output))
    return found


SCRIPTS = scripts(README)


def run_script(script: Script, workdir: Path) -> Result:
    path = workdir / "readme_example.py"
    path.write_text(script.code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOSSCLI_", "PYTEST"))}
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=workdir,
        env={**env, "TMPDIR": str(workdir / "tmp"), "COLUMNS": "120", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def script_problems(script: Script, result: Result) -> list[str]:
    found = [f"exit {result.code}: {result.stderr[-800:]}"] if result.code else []
    flat = _flat(f"{result.stdout}\n{result.stderr}")
    for line in script.output:
        for fragment in (f.strip() for f in line.split("...")):
            if fragment and _flat(fragment) not in flat:
                found.append(f"{fragment!r} shown after it, not printed")
    return found


def test_the_readme_has_its_python_examples() -> None:
    assert len(SCRIPTS) >= 2 and all(script.output for script in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"L{s.line}" for s in SCRIPTS])
def test_each_python_block_prints_what_the_readme_shows(script: Script, tmp_path: Path) -> None:
    result = run_script(script, workdir_with_samples(tmp_path / "work"))
    assert script_problems(script, result) == []


def test_a_false_python_claim_fails(tmp_path: Path) -> None:
    script = next(s for s in SCRIPTS if "no findings" in "".join(s.output))
    shown = next(line for line in script.output if "no findings" in line)
    changed = Script(script.code, script.line, (shown.replace("no findings", "no finding at all"),))
    found = script_problems(changed, run_script(changed, workdir_with_samples(tmp_path / "work")))
    assert any("not printed" in problem for problem in found), found
