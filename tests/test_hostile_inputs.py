"""Hostile inputs: bombs judged by what they decode to, special files, files truncated while
they are read, hostile ``.npy`` headers, CSV lines of any length.

The CLI cases run ``python -m losscli`` in a subprocess under a timeout, so a hang fails
instead of blocking, and assert: the exit code; on exit 2, exactly one stderr line naming the
file, no traceback and nothing on stdout; every input file's bytes and mtime unchanged. The
bombs also assert the child's peak resident memory (``os.wait4``'s ``ru_maxrss``) against a
tiny computation's: each decodes to 200 MB, which whole would cost well over a gigabyte.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch
from files import snapshot

from losscli.errors import LoadError
from losscli.loaders import chunk_estimate, csv, load, npy, open_chunk_readers
from losscli.sources import parse_source

REPOSITORY = Path(__file__).resolve().parents[1]
TIMEOUT = 90  # seconds; every case takes a few
BUDGET = "2MB"
# Bombs are judged at a budget that their bytes on disk fit (the old planner let them through,
# and decoded them) and what they decode to does not
BOMB_BUDGET = "16MB"
BOMB_BYTES = 200 << 20  # what each bomb decodes to
# a refused bomb, or a streamed one, may cost this much more than a tiny computation (a
# streamed one measured 115 MB more, mostly pyarrow's read-ahead and the quantile sample);
# decoding a bomb whole costs 200 MB for its values alone, and over a gigabyte to compute
PEAK_MARGIN_MB = 200

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FIFOs, /dev/zero, ru_maxrss")


# --- running the CLI ------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    """A finished ``python -m losscli`` run.

    Attributes:
        code: its exit code (negative: killed by that signal; -9 after the timeout).
        stdout: what it wrote on stdout.
        stderr: what it wrote on stderr.
        peak_mb: its peak resident memory in MiB.
    """

    code: int
    stdout: str
    stderr: str
    peak_mb: float


# The child's peak memory is measured by a small parent of its own: a process forked from
# pytest (hundreds of MB, with torch) would report pytest's pages as its peak.
_MEASURED = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "losscli", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def cli(
    *argv: str,
    cwd: Path,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    timeout: int = TIMEOUT,
    started: Callable[[int], None] | None = None,
) -> Ran:
    """Run ``python -m losscli ARGV`` in ``cwd``; killed (code -9) past ``timeout`` seconds.

    ``started`` is called with the process group's id once it runs (to act while it reads).
    """
    env = {k: v for k, v in os.environ.items() if k != "LOSSCLI_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY), env.get("PYTHONPATH", "")])
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        report = Path(scratch) / "peak"
        process = subprocess.Popen(
            [sys.executable, "-c", _MEASURED, str(report), *argv],
            cwd=cwd,
            stdin=stdin,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,  # the timeout kills the measuring parent and losscli
        )
        timer = threading.Timer(timeout, os.killpg, [process.pid, signal.SIGKILL])
        timer.start()
        try:
            if started is not None:
                started(process.pid)
            process.wait()
        finally:
            timer.cancel()
        code, peak_kb = report.read_text().split() if report.exists() else ("-9", "0")
        out.seek(0)
        err.seek(0)
        return Ran(int(code), out.read().decode(), err.read().decode(), int(peak_kb) / 1024)


def wait_until_open(group: int, path: Path, timeout: float = 60) -> None:
    """Wait until a process of session ``group`` has ``path`` open (Linux: /proc/PID/fd)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError):
                ours = process.name.isdigit() and os.getsid(int(process.name)) == group
                if ours and any(os.readlink(fd) == str(path) for fd in (process / "fd").iterdir()):
                    return
        time.sleep(0.01)
    raise AssertionError(f"no process of session {group} opened {path}")


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory: pytest.TempPathFactory) -> float:
    """The peak memory of a tiny computation (mostly torch's own)."""
    ran = cli("compute", "mse", "[1.0, 2.0]", "[1.0, 2.5]", cwd=tmp_path_factory.mktemp("tiny"))
    assert ran.code == 0, ran.stderr
    return ran.peak_mb


def within(seconds: float, work: Callable[[], Any]) -> Any:
    """``work()``, run in a daemon thread: a hang fails the test instead of blocking it."""
    found: dict[str, Any] = {}

    def target() -> None:
        try:
            found["value"] = work()
        except BaseException as error:  # handed to the test below
            found["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"hung for {seconds} s"
    if "error" in found:
        raise found["error"]
    return found.get("value")


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``losscli ARGV`` in this process: exit code, stdout, stderr."""
    from losscli.cli import main

    with pytest.raises(SystemExit) as done:
        main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def assert_refused(ran: Ran, *names: str) -> str:
    """Exit 2, one stderr line that names one of ``names``, nothing on stdout; the line."""
    assert ran.code == 2, f"exit {ran.code} (-9: hung): {ran.stderr[-800:]}"
    assert ran.stdout == ""
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    line = lines[0]
    assert "Traceback" not in line and "internal error" not in line, line
    assert any(name in line for name in names), line
    return line


# --- inputs that decode to far more than they hold on disk --------------------------------


def _npy_header(count: int, descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": (count,)}
    )
    return buffer.getvalue()


def npz_bomb(directory: Path) -> str:
    """A deflated member of 200 MB of zeros (about 200 KB on disk)."""
    zeros = bytes(8 << 20)
    with (
        zipfile.ZipFile(directory / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("x.npy", "w", force_zip64=True) as member,
    ):
        member.write(_npy_header(BOMB_BYTES // 4))
        for _ in range(BOMB_BYTES // len(zeros)):
            member.write(zeros)
    return "bomb.npz"


def _zeros_table() -> Any:
    return pa.table({"x": pa.array(np.zeros(BOMB_BYTES // 4, np.float32))})


def parquet_bomb(directory: Path) -> str:
    pq.write_table(_zeros_table(), directory / "bomb.parquet")
    return "bomb.parquet"


def feather_lz4_bomb(directory: Path) -> str:
    feather.write_feather(_zeros_table(), directory / "bomb.feather", compression="lz4")
    return "bomb.feather"


def feather_zstd_bomb(directory: Path) -> str:
    feather.write_feather(_zeros_table(), directory / "bomb.arrow", compression="zstd")
    return "bomb.arrow"


def pt_bomb(directory: Path) -> str:
    """torch.save's archive with its records DEFLATE-compressed (torch.load reads it)."""
    saved = io.BytesIO()
    torch.save(torch.zeros(BOMB_BYTES // 4), saved)
    with (
        zipfile.ZipFile(saved) as plain,
        zipfile.ZipFile(directory / "bomb.pt", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out,
    ):
        for info in plain.infolist():
            out.writestr(info.filename, plain.read(info.filename))
    return "bomb.pt"


def gzip_text(lines: bytes, repeats: int) -> bytes:
    """``lines`` repeated ``repeats`` times, gzipped cheaply: gzip members concatenate."""
    return gzip.compress(lines, compresslevel=9) * repeats


def _bomb_case(build: Callable[[Path], str]) -> Callable[[Path], list[str]]:
    def command(directory: Path) -> list[str]:
        name = build(directory)
        assert (directory / name).stat().st_size < BOMB_BYTES // 50, "not a bomb"
        return ["compute", "mse", name, name, "--memory-budget", BOMB_BUDGET]

    return command


BOMBS = {
    "npz": _bomb_case(npz_bomb),
    "parquet": _bomb_case(parquet_bomb),
    "feather-lz4": _bomb_case(feather_lz4_bomb),
    "feather-zstd": _bomb_case(feather_zstd_bomb),
    "pt-deflated": _bomb_case(pt_bomb),
}


def streamed_gzip(directory: Path) -> list[str]:
    # 16M rows of "1,3" (64 MB of text, 256 MB of int64 values) in 100 KB. Integer cells
    # computed in float32: every chunk is converted, and so is nothing of full length (the
    # shape checks judge zero-strided stand-ins, converted as stand-ins)
    (directory / "bomb.csv.gz").write_bytes(gzip_text(b"1,3\n" * (1 << 20), 16))
    return [
        "compute", "mse", "bomb.csv.gz:0", "bomb.csv.gz:1", "--memory-budget", "8MB",
        "--format", "json",
    ]  # fmt: skip


def huge_gzip_for_ctc(directory: Path) -> list[str]:
    # 2 GB of text in 2 MB; ctc cannot stream, so it is refused once the count passes what
    # the budget allows, never decompressed whole
    (directory / "huge.csv.gz").write_bytes(gzip_text(b"0\n" * (8 << 20), 128))
    return ["compute", "ctc", "huge.csv.gz", "[1]", "[1]", "[1]", "--memory-budget", BOMB_BUDGET]


def stdin_npz_bomb(directory: Path) -> list[str]:
    npz_bomb(directory)
    return ["compute", "mse", "-", "[1]", "--memory-budget", "64MB", "--stdin-format", "npz"]


def stdin_gzip_bomb(directory: Path) -> list[str]:
    (directory / "bomb.csv.gz").write_bytes(gzip_text(b"0\n" * (8 << 20), 12))  # 200 MB
    return ["compute", "mse", "-", "[1]", "--memory-budget", "64MB"]


@dataclass(frozen=True)
class Case:
    """One CLI run: ``build`` writes its inputs into a directory and returns the command
    line; ``stdin`` names what is piped in (a file it wrote, or a device)."""

    build: Callable[[Path], list[str]]
    stdin: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A case's run, and the files of its directory before and after it."""

    ran: Ran
    before: dict[str, tuple[str, int]]
    after: dict[str, tuple[str, int]]


def _hostile_header_case(directory: Path) -> list[str]:
    (directory / "h.npy").write_bytes(npy_image(_header((1,) * 40)))
    return ["compute", "mse", "h.npy", "[1.0]"]


def _cases() -> dict[str, Case]:
    cases = {f"bomb-{kind}": Case(build) for kind, build in BOMBS.items()}
    cases |= {
        "gzip-streams": Case(streamed_gzip),
        "gzip-counted-for-ctc": Case(huge_gzip_for_ctc),
        "stdin-endless": Case(lambda d: ["compute", "mse", "-", "[1]", "--memory-budget", BUDGET],
                              "/dev/zero"),
        "stdin-npz-bomb": Case(stdin_npz_bomb, "bomb.npz"),
        "stdin-gzip-bomb": Case(stdin_gzip_bomb, "bomb.csv.gz"),
        "hostile-header": Case(_hostile_header_case),
    }  # fmt: skip
    return cases


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case of :func:`_cases`, each in a directory of its own, run side by side (each
    run waits mostly on its own start-up)."""

    def run_case(case: Case, directory: Path) -> Outcome:
        argv = case.build(directory)
        before = snapshot(directory)
        if case.stdin is None:
            ran = cli(*argv, cwd=directory)
        else:
            with (directory / case.stdin).open("rb") as piped:
                ran = cli(*argv, cwd=directory, stdin=piped)
        return Outcome(ran, before, snapshot(directory))

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            kind: pool.submit(run_case, case, tmp_path_factory.mktemp(kind))
            for kind, case in _cases().items()
        }
        return {kind: future.result() for kind, future in futures.items()}


def refused(outcome: Outcome, *names: str) -> str:
    """:func:`assert_refused`, and every input unchanged."""
    line = assert_refused(outcome.ran, *names)
    assert outcome.after == outcome.before, "an input changed"
    return line


def assert_small_peak(outcome: Outcome, baseline_mb: float) -> None:
    peak = outcome.ran.peak_mb
    assert peak < baseline_mb + PEAK_MARGIN_MB, f"peak {peak:.0f} MB, tiny {baseline_mb:.0f} MB"


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_bomb_is_judged_by_what_it_decodes_to(
    kind: str, outcomes: dict[str, Outcome], baseline_mb: float
) -> None:
    outcome = outcomes[f"bomb-{kind}"]
    line = refused(outcome, "bomb.")
    assert "once decoded" in line and "400 MB" in line, line  # 2 x 200 MB, as declared
    assert "cannot be read in chunks" in line and "--memory-budget 16 MB" in line, line
    assert_small_peak(outcome, baseline_mb)


def test_a_gzip_bomb_streams_and_computes_the_value(
    outcomes: dict[str, Outcome], baseline_mb: float
) -> None:
    outcome = outcomes["gzip-streams"]
    assert outcome.ran.code == 0, outcome.ran.stderr
    record = json.loads(outcome.ran.stdout)
    assert record["streamed"] is True
    assert record["inputs"]["input"]["shape"] == [16 << 20]
    assert record["value"] == 4.0  # (1.5 - 3.5)^2 on every row
    assert_small_peak(outcome, baseline_mb)
    assert outcome.after == outcome.before


def test_a_huge_gzip_text_is_counted_only_as_far_as_the_budget(
    outcomes: dict[str, Outcome], baseline_mb: float
) -> None:
    outcome = outcomes["gzip-counted-for-ctc"]
    line = refused(outcome, "huge.csv.gz")
    assert "more than" in line and "cannot be streamed" in line, line
    assert_small_peak(outcome, baseline_mb)


@pytest.mark.parametrize("kind", ["stdin-endless", "stdin-npz-bomb", "stdin-gzip-bomb"])
def test_standard_input_is_read_at_most_as_far_as_the_budget_allows(
    kind: str, outcomes: dict[str, Outcome], baseline_mb: float
) -> None:
    outcome = outcomes[kind]
    line = refused(outcome, "<stdin>")
    assert "holds more than" in line and "over what --memory-budget" in line, line
    if kind != "stdin-endless":
        assert "once decompressed" in line, line  # judged before it was decompressed
    assert_small_peak(outcome, baseline_mb)


def test_standard_input_within_the_budget_is_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    piped = io.TextIOWrapper(io.BytesIO(gzip.compress(b"1\n2\n")))
    monkeypatch.setattr(sys, "stdin", piped)
    code, out, err = in_process(capsys, "compute", "mse", "-", "[1, 4]", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["value"] == 2.0  # ((1-1)^2 + (2-4)^2) / 2


def test_an_endless_pipe_on_standard_input_is_refused(tmp_path: Path, baseline_mb: float) -> None:
    writer = subprocess.Popen(["yes", "0"], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None
        ran = cli(
            "compute", "mse", "-", "[1]", "--memory-budget", BUDGET, cwd=tmp_path,
            stdin=writer.stdout,
        )  # fmt: skip
    finally:
        writer.kill()
        writer.wait()
    assert "of text" in assert_refused(ran, "<stdin>")
    assert ran.peak_mb < baseline_mb + PEAK_MARGIN_MB


def test_counting_a_gzip_text_decompresses_only_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "huge.csv.gz").write_bytes(gzip_text(b"0\n" * (8 << 20), 64))  # 1 GB
    decompressed = []
    real_read = gzip.GzipFile.read

    def counting_read(self: gzip.GzipFile, size: int = -1) -> bytes:
        block = real_read(self, size)
        decompressed.append(len(block))
        return block

    monkeypatch.setattr(gzip.GzipFile, "read", counting_read)
    cap = 8 << 20  # decoded bytes: 2 MB of text
    estimate = chunk_estimate(parse_source(str(tmp_path / "huge.csv.gz")), cap)
    assert estimate.at_least and estimate.chunkable and estimate.nbytes > cap
    assert sum(decompressed) <= cap // 4 + (1 << 20)  # the text limit and one block


@pytest.mark.parametrize(
    ("name", "text"),
    [("plain.csv", b"0.5\n" * 1000), ("small.csv.gz", gzip.compress(b"0.5\n" * 1000))],
)
def test_text_is_judged_at_four_bytes_of_values_a_byte(
    name: str, text: bytes, tmp_path: Path
) -> None:
    (tmp_path / name).write_bytes(text)
    estimate = chunk_estimate(parse_source(str(tmp_path / name)), 1 << 30)
    assert estimate.nbytes == 4 * 4000 and not estimate.at_least
    assert load(parse_source(str(tmp_path / name))).values.shape == (1000,)


def test_arrow_files_decode_only_the_selected_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "pred": np.zeros(1000, np.float32),
            "wide": pa.array([[1.0, 2.0]] * 1000, pa.list_(pa.float64(), 2)),
            "ragged": pa.array([[1, 2, 3]] * 999 + [[1]], pa.list_(pa.int16())),
        }
    )
    feather.write_feather(table, tmp_path / "t.feather", compression="zstd")
    pq.write_table(table, tmp_path / "t.parquet")
    for name in ("t.feather", "t.parquet"):
        judged = {
            selector: chunk_estimate(parse_source(f"{tmp_path / name}:{selector}")).nbytes
            for selector in ("pred", "wide", "ragged")
        }
        # values x width: lists by their values (ragged ones counted, fixed ones declared)
        assert judged == {"pred": 4000, "wide": 16000, "ragged": 2 * 2998}, (name, judged)


# --- special files: nothing hangs, nothing is read from a device --------------------------

# every format; binary ones need a regular file, text is read from a pipe, which without a
# writer is empty at once
EVERY_FORMAT = [
    "x.npy", "x.npz", "x.parquet", "x.pq", "x.feather", "x.arrow", "x.ipc", "x.pt", "x.pth",
    "x.csv", "x.txt", "x.tsv", "x.tab", "x.csv.gz", "x.tsv.gz", "x.json", "x.safetensors",
]  # fmt: skip
_BINARY = (
    ".npy", ".npz", ".parquet", ".pq", ".feather", ".arrow", ".ipc", ".pt", ".pth", ".safetensors"
)  # fmt: skip


def _refusals(path: Path, judges: tuple[Callable[[Any], Any], ...]) -> list[str]:
    """Each judge's message on ``path``, each given a few seconds."""
    lines = []
    for judge in judges:
        with pytest.raises(LoadError) as error:
            within(10, functools.partial(judge, parse_source(str(path))))
        lines.append(error.value.line())
    return lines


@pytest.mark.parametrize("name", EVERY_FORMAT)
def test_a_fifo_without_a_writer_ends_at_once(name: str, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / name)
    if name.endswith(_BINARY):
        lines = _refusals(tmp_path / name, (chunk_estimate, load))
        expected = "is not a regular file (a pipe or a device)"
    else:  # the planner leaves a pipe to the loader, which reads it once, bounded
        assert within(10, lambda: chunk_estimate(parse_source(str(tmp_path / name)))).pipe
        lines = _refusals(tmp_path / name, (load,))
        expected = "is empty (a pipe that nothing was written to)"
    for line in lines:
        assert str(tmp_path / name) in line and expected in line, line


@pytest.mark.parametrize("name", EVERY_FORMAT)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_refused_even_through_a_symlink(name: str, device: str, tmp_path: Path) -> None:
    (tmp_path / name).symlink_to(device)
    for line in _refusals(tmp_path / name, (chunk_estimate, load)):
        assert str(tmp_path / name) in line, line
        assert "is a character device" in line or "is not a regular file" in line, line


def _run_all(cases: dict[str, Callable[[], Ran]]) -> dict[str, Ran]:
    """Run independent CLI cases side by side (each waits mostly on its own start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(case) for name, case in cases.items()}
        return {name: future.result() for name, future in futures.items()}


def test_special_files_end_to_end(tmp_path: Path) -> None:
    # before: a FIFO named .npy hung (the planner opened it), one named .csv was "empty (0 bytes)"
    os.mkfifo(tmp_path / "x.npy")
    os.mkfifo(tmp_path / "x.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    np.save(tmp_path / "ok.npy", np.ones(2, np.float32))
    before = snapshot(tmp_path)
    commands = {
        "x.npy": ["x.npy", "[1.0]"],
        "x.csv": ["x.csv", "[1.0]"],
        "zero.csv": ["zero.csv", "[1.0]"],
        "second": ["ok.npy", "x.npy", "--memory-budget", BUDGET],
    }
    ran = _run_all(
        {
            name: functools.partial(cli, "compute", "mse", *argv, cwd=tmp_path, timeout=30)
            for name, argv in commands.items()
        }
    )
    assert "is not a regular file" in assert_refused(ran["x.npy"], "x.npy")
    assert "is empty" in assert_refused(ran["x.csv"], "x.csv")
    assert "is a character device" in assert_refused(ran["zero.csv"], "zero.csv")
    assert "x.npy is not a regular file" in assert_refused(ran["second"], "x.npy")
    assert snapshot(tmp_path) == before


FIFO_TEXTS = {
    "p.csv": b"y\n1\n2\n",
    "p.tsv.gz": gzip.compress(b"1\n2\n"),
    "p.json": b"[1, 2]",
}


def test_a_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    # a writer holds each pipe open before losscli reads it, as the shell does for <(cmd)
    held = {}
    for name, text in FIFO_TEXTS.items():
        os.mkfifo(tmp_path / name)
        held[name] = os.open(tmp_path / name, os.O_RDWR)  # Linux: no wait for a reader
        os.write(held[name], text)

    def run(name: str) -> Ran:
        def end_writing(group: int) -> None:  # once losscli has the pipe open, the writer ends
            wait_until_open(group, tmp_path / name)
            os.close(held.pop(name))

        return cli(
            "compute", "mse", name, "[1, 4]", "--format", "json", cwd=tmp_path, timeout=30,
            started=end_writing,
        )  # fmt: skip

    try:
        ran = _run_all({name: functools.partial(run, name) for name in FIFO_TEXTS})
    finally:
        for descriptor in held.values():
            os.close(descriptor)
    for name in FIFO_TEXTS:
        assert ran[name].code == 0, ran[name].stderr
        assert json.loads(ran[name].stdout)["value"] == 2.0  # ((1-1)^2 + (2-4)^2) / 2


def test_an_endless_fifo_is_refused_at_its_limit(tmp_path: Path, baseline_mb: float) -> None:
    os.mkfifo(tmp_path / "endless.csv")
    held = os.open(tmp_path / "endless.csv", os.O_RDWR | os.O_NONBLOCK)
    stop = threading.Event()

    def write_forever() -> None:
        while not stop.is_set():
            try:
                os.write(held, b"0\n" * 4096)
            except BlockingIOError:
                stop.wait(0.001)

    writer = threading.Thread(target=write_forever)
    writer.start()
    try:
        ran = cli(
            "compute",
            "mse",
            "endless.csv",
            "[1]",
            "--memory-budget",
            BUDGET,
            cwd=tmp_path,
            timeout=30,
        )
    finally:
        stop.set()
        writer.join()
        os.close(held)
    line = assert_refused(ran, "endless.csv")
    assert "holds more than" in line and "of text" in line, line
    assert ran.peak_mb < baseline_mb + PEAK_MARGIN_MB, (ran.peak_mb, baseline_mb)


# --- a .npy truncated while it is read ------------------------------------------------------


@pytest.fixture
def truncating(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """After the ``nth`` size check of a .npy (the header agreed with the file), another
    process truncates the file: deterministic, where a second process racing would not be."""
    real = npy.check_size
    calls = {"n": 0, "at": 0}

    def check_then_truncate(header: npy.NpyHeader, available: int, name: str) -> None:
        real(header, available, name)
        calls["n"] += 1
        if calls["n"] == calls["at"]:
            os.truncate(name, header.offset + header.nbytes // 3)

    def arm(nth: int) -> None:
        calls["at"] = nth

    monkeypatch.setattr(npy, "check_size", check_then_truncate)
    return arm


@pytest.mark.parametrize("rows", [1_000, 3_000_000])  # small, and beyond the old mmap size
def test_a_npy_truncated_while_read_whole_is_one_error(
    rows: int, tmp_path: Path, truncating: Callable[[int], None]
) -> None:
    np.save(tmp_path / "t.npy", np.arange(rows, dtype=np.float64).reshape(-1, 2))
    truncating(1)
    with pytest.raises(LoadError) as error:
        load(parse_source(str(tmp_path / "t.npy")))
    assert "t.npy: was truncated while it was read" in error.value.line()


def test_a_npy_truncated_while_read_in_chunks_is_one_error(
    tmp_path: Path, truncating: Callable[[int], None]
) -> None:
    np.save(tmp_path / "t.npy", np.arange(30_000, dtype=np.float32))
    truncating(1)
    reader = open_chunk_readers({"x": parse_source(str(tmp_path / "t.npy"))})["x"]
    try:
        with pytest.raises(LoadError) as error:
            while reader.read(4096) is not None:
                pass
    finally:
        reader.close()
    assert "t.npy: was truncated while it was read" in error.value.line()


def test_the_cli_says_a_npy_was_truncated_while_read(
    tmp_path: Path, truncating: Callable[[int], None], capsys: pytest.CaptureFixture[str]
) -> None:
    from losscli.cli import main

    np.save(tmp_path / "t.npy", np.arange(1_000, dtype=np.float32))
    truncating(2)  # the planner's check, then the loader's
    with pytest.raises(SystemExit) as done:
        main(["compute", "mse", str(tmp_path / "t.npy"), "[1.0]"])
    captured = capsys.readouterr()
    assert done.value.code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and "was truncated while it was read" in captured.err


# --- hostile .npy headers: one line naming the file, wherever the .npy comes from ---------


def npy_image(header: object, data: bytes = b"\x00" * 64) -> bytes:
    """A .npy image whose header dictionary is ``repr(header)``, padded as NumPy pads it."""
    text = repr(header).encode("latin1")
    padding = -(10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def _header(shape: object, descr: object = "<f4") -> dict[str, object]:
    return {"descr": descr, "fortran_order": False, "shape": shape}


HOSTILE_HEADERS = {
    "bool-dim": (_header((True,)), "not an integer"),
    "bool-dims": (_header((True, False)), "not an integer"),
    "float-dim": (_header((2.0,)), "corrupt .npy header"),
    "negative-dim": (_header((-4,)), "negative dimension"),
    "40-dims": (_header((1,) * 40), "40 dimensions"),
    "70-dims": (_header((1,) * 70), "70 dimensions"),
    "overflow": (_header((2**40, 2**40)), "overflows"),
    "zero-and-overflow": (_header((0, 2**62, 2**62)), "overflows"),
    "not-a-dict": ([1, 2, 3], "corrupt .npy header"),
    "bad-descr": (_header((2,), descr="zz"), "corrupt .npy header"),
    "subarray-descr": (_header((1,), descr=("<f4", (2,))), "structured records"),
    "object-descr": (_header((1,), descr="|O"), "never unpickles"),
    "shape-list": (_header([2]), "corrupt .npy header"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_HEADERS))
def test_a_hostile_npy_header_is_one_error_naming_the_file(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, expected = HOSTILE_HEADERS[kind]
    image = npy_image(header)
    (tmp_path / "h.npy").write_bytes(image)
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as archive:
        archive.writestr("logits.npy", image)
    for text, name in (
        (str(tmp_path / "h.npy"), "h.npy"),
        (str(tmp_path / "h.npz"), "h.npz:logits"),
    ):
        judges = (chunk_estimate, load) if name == "h.npy" else (load,)  # npz: unplanned
        for judge in judges:  # the planner and the loader: the same words
            with pytest.raises(LoadError) as error:
                judge(parse_source(text))
            assert name in error.value.line() and expected in error.value.line()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(image)))
    with pytest.raises(LoadError) as error:
        load(parse_source("-"), "npy")
    assert "<stdin>" in error.value.line() and expected in error.value.line()


def test_a_hostile_header_through_the_cli(outcomes: dict[str, Outcome]) -> None:
    assert "40 dimensions" in refused(outcomes["hostile-header"], "h.npy")


# --- over the budget, a file that cannot be read says why, in the loader's words -----------


def _truncated_npy(directory: Path) -> str:
    np.save(directory / "cut.npy", np.zeros(1 << 20, np.float32))
    with (directory / "cut.npy").open("r+b") as stream:
        stream.truncate(4096)
    return "cut.npy"


def _truncated_parquet(directory: Path) -> str:
    pq.write_table(pa.table({"a": np.arange(1 << 18, dtype=np.float64)}), directory / "cut.parquet")
    data = (directory / "cut.parquet").read_bytes()
    (directory / "cut.parquet").write_bytes(data[: len(data) // 2])
    return "cut.parquet"


def _truncated_npz(directory: Path) -> str:
    np.savez(directory / "cut.npz", a=np.zeros(1 << 18))
    data = (directory / "cut.npz").read_bytes()
    (directory / "cut.npz").write_bytes(data[: len(data) // 2])
    return "cut.npz"


def _lying_npz(directory: Path) -> str:
    # a stored member whose central directory claims 4 GB: more than any compressor produces
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.npy", npy_image(_header((3,)), b"\x00" * 12))
    data = bytearray(buffer.getvalue())
    at = data.index(b"PK\x01\x02") + 24
    data[at : at + 4] = (0xFFFFFFF0).to_bytes(4, "little")
    (directory / "lie.npz").write_bytes(bytes(data))
    return "lie.npz"


def _corrupt_gzip(directory: Path) -> str:
    (directory / "bad.csv.gz").write_bytes(gzip.compress(b"1\n" * 100_000)[:-200] + b"x" * 50)
    return "bad.csv.gz"


UNREADABLE_OVER_BUDGET = {
    "truncated-npy": (_truncated_npy, "the header declares 1048576 float32 values"),
    "truncated-parquet": (_truncated_parquet, "is not a Parquet file"),
    "truncated-npz": (_truncated_npz, "is not an .npz file"),
    "lying-npz": (_lying_npz, "more than any compressor produces"),
    "corrupt-gzip": (_corrupt_gzip, "is not valid gzip data"),
}


@pytest.mark.parametrize("kind", sorted(UNREADABLE_OVER_BUDGET))
def test_over_the_budget_an_unreadable_file_gives_the_loaders_message(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, expected = UNREADABLE_OVER_BUDGET[kind]
    name = str(tmp_path / build(tmp_path))
    with pytest.raises(LoadError) as whole:  # what the loader says, well within any budget
        load(parse_source(name))
    assert expected in whole.value.line()
    before = snapshot(tmp_path)
    code, out, err = in_process(capsys, "compute", "mse", name, name, "--memory-budget", "1KB")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert name in err and expected in err and "cannot be read in chunks" not in err, err
    assert snapshot(tmp_path) == before


def test_over_the_budget_an_unreadable_file_says_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "locked.npy", np.zeros(1 << 16, np.float32))
    locked = str(tmp_path / "locked.npy")
    # root reads files of mode 000, so the file is made unreadable the way the kernel would
    real_access, real_open = os.access, io.open

    def denied(path: object, *args: Any, **kwargs: Any) -> Any:
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(
        os, "access", lambda path, mode: str(path) != locked and real_access(path, mode)
    )
    monkeypatch.setattr(io, "open", denied)
    monkeypatch.setattr("builtins.open", denied)
    code, out, err = in_process(capsys, "compute", "mse", locked, locked, "--memory-budget", "1KB")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "locked.npy cannot be read (permission denied)" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files of mode 000")
def test_a_file_of_mode_000_says_permission_denied(tmp_path: Path) -> None:
    np.save(tmp_path / "locked.npy", np.zeros(1 << 16, np.float32))
    (tmp_path / "locked.npy").chmod(0)
    ran = cli("compute", "mse", "locked.npy", "[1.0]", "--memory-budget", "1KB", cwd=tmp_path)
    assert "permission denied" in assert_refused(ran, "locked.npy")


# --- CSV lines of any length ---------------------------------------------------------------


def test_ten_thousand_classes_whole_and_streamed_agree_with_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(7)
    logits = rng.integers(-4000, 4000, size=(12, 10_000)) / 256  # exact in text and float32
    labels = rng.integers(0, 10_000, size=12)
    np.savetxt(tmp_path / "logits.csv", logits, delimiter=",", fmt="%.10g")  # 100 KB lines
    np.savetxt(tmp_path / "labels.csv", labels, fmt="%d")
    expected = torch.nn.functional.cross_entropy(
        torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels)
    ).item()
    found = {}
    for budget in ("512MB", "200KB"):
        code, out, err = in_process(
            capsys, "compute", "cross-entropy", str(tmp_path / "logits.csv"),
            str(tmp_path / "labels.csv"), "--format", "json", "--memory-budget", budget,
        )  # fmt: skip
        assert code == 0, err
        found[budget] = json.loads(out)
    whole, streamed = found["512MB"], found["200KB"]
    assert not whole.get("streamed") and streamed["streamed"] is True
    assert whole["value"] == expected  # torch's own, bit for bit
    assert streamed["value"] == pytest.approx(expected, rel=1e-6)
    assert whole["inputs"]["input"]["shape"] == streamed["inputs"]["input"]["shape"] == [12, 10_000]


def test_a_row_longer_than_a_block_further_down_is_read_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny blocks: short rows first (they size the blocks), then a row of long cells
    monkeypatch.setattr(csv, "_BLOCK_BYTES", 1024)
    monkeypatch.setattr(csv, "_STREAM_BLOCK_BYTES", 1024)
    long_cell = "1." + "0" * 3000
    rows = ["1,2"] * 500 + [f"{long_cell},{long_cell}"] + ["3,4"] * 500
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    whole = load(parse_source(str(tmp_path / "t.csv"))).values
    assert whole.shape == (1001, 2) and whole[500].tolist() == [1.0, 1.0]
    reader = open_chunk_readers({"x": parse_source(str(tmp_path / "t.csv"))})["x"]
    try:
        chunks = []
        while (chunk := reader.read(100)) is not None:
            chunks.append(np.array(chunk))
    finally:
        reader.close()
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_a_line_past_the_longest_line_read_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv, "_MAX_LINE_BYTES", 1 << 18)
    (tmp_path / "t.csv").write_bytes(b"1," * (1 << 18) + b"1\n")
    with pytest.raises(LoadError) as error:
        load(parse_source(str(tmp_path / "t.csv")))
    assert "has a line longer than" in error.value.line()
