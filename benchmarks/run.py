"""Time losscli against the hand-written PyTorch script, on the same files, in the same run.

    python benchmarks/run.py            # full sizes (1e8 elements: 800 MB of .npy), 5 repeats
    python benchmarks/run.py --quick    # smaller sizes, 3 repeats: for development
    python benchmarks/run.py --write    # also put the results into benchmarks/README.md

Every case runs losscli and its baseline alternately (interleaved, the order flipping each
repeat) as child processes, and reports the median wall time and the median peak resident
memory (``os.wait4``'s ``ru_maxrss``) of each, and their ratio. The data is generated once
under ``benchmarks/data/`` (gitignored).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
README = HERE / "README.md"
PYTHON = sys.executable

# The script a user would otherwise write: np.load twice, torch.from_numpy, F.mse_loss, print.
HAND_MSE = """
import sys
import numpy as np
import torch
import torch.nn.functional as F
pred = torch.from_numpy(np.load(sys.argv[1]))
true = torch.from_numpy(np.load(sys.argv[2]))
if len(sys.argv) > 3:
    pred.requires_grad_(True)
loss = F.mse_loss(pred, true)
if len(sys.argv) > 3:
    loss.backward()
    print(loss.item(), pred.grad.norm().item())
else:
    print(loss.item())
"""

# The CSV variant: numpy.loadtxt of two columns, then torch.
HAND_CSV = """
import sys
import numpy as np
import torch
import torch.nn.functional as F
table = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.float32)
print(F.mse_loss(torch.from_numpy(table[:, 0]), torch.from_numpy(table[:, 1])).item())
"""


# The shards variant: every shard loaded, concatenated, then torch (what the issue replaces).
HAND_SHARDS = """
import glob, re, sys
import numpy as np
import torch
import torch.nn.functional as F
def natural(path):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\\d+)", path)]
pred, true = (
    torch.from_numpy(np.concatenate([np.load(f) for f in sorted(glob.glob(g), key=natural)]))
    for g in sys.argv[1:3]
)
print(F.mse_loss(pred, true).item())
"""
# the large pair is cut into this many shards for the shard rows
SHARDS = 8


@dataclass(frozen=True)
class Sizes:
    small: int
    large: int
    medium: int
    csv_rows: int
    stream_csv_rows: tuple[int, int]  # a small and a large file for the 8 MB stream
    repeats: int


FULL = Sizes(
    small=10_000,
    large=100_000_000,
    medium=30_000_000,
    csv_rows=4_000_000,
    stream_csv_rows=(1_000_000, 9_000_000),  # 44 MB and 393 MB of text
    repeats=5,
)
QUICK = Sizes(
    small=10_000,
    large=40_000_000,
    medium=20_000_000,
    csv_rows=1_000_000,
    stream_csv_rows=(1_000_000, 4_000_000),
    repeats=3,
)
# The large .npy rows stream at this budget, the least the default ever is: the default
# (a quarter of the memory available) decides by the machine's free memory, and on a machine
# with more than ~20 GB free it computes 1e8 elements on whole tensors instead (bit for bit
# torch's value; see README.md for what that costs).
STREAM_BUDGET = "512MB"
# a budget under which the medium size is computed on whole tensors (torch's value bit for
# bit), as the default does on a machine with enough memory free
WHOLE_BUDGET = "16GB"
# the budget of the CSV streaming-memory rows (issue 15: peak <= 300 MB over 50-400 MB files)
SMALL_BUDGET = "8MB"


def _npy_pair(elements: int) -> tuple[Path, Path]:
    """Two float32 .npy files of ``elements`` standard-normal values (written once)."""
    paths = (DATA / f"mse_{elements}_pred.npy", DATA / f"mse_{elements}_true.npy")
    for seed, path in enumerate(paths):
        if path.exists():
            continue
        random = np.random.default_rng(seed)
        part = path.with_suffix(".part")
        array = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=(elements,))
        step = 10_000_000
        for start in range(0, elements, step):
            stop = min(elements, start + step)
            array[start:stop] = random.standard_normal(stop - start, dtype=np.float32)
        array.flush()
        del array
        part.rename(path)
    return paths


def _shards(pair: tuple[Path, Path], count: int) -> tuple[str, str]:
    """The pair cut into ``count`` shards of unequal sizes (written once): two globs."""
    globs = []
    for path in pair:
        directory = DATA / f"{path.stem}_shards{count}"
        if not directory.exists():
            whole = np.load(path, mmap_mode="r")
            cuts = np.linspace(0, len(whole), count + 1).astype(int)
            cuts[1:-1] += np.arange(1, count) * 1000  # unequal sizes
            part = directory.with_suffix(".part")
            part.mkdir(exist_ok=True)
            for index in range(count):
                np.save(part / f"part-{index}.npy", whole[cuts[index] : cuts[index + 1]])
            part.rename(directory)
        globs.append(str(directory / "part-*.npy"))
    return globs[0], globs[1]


def _csv_table(rows: int) -> Path:
    """A CSV with a header and 4 float columns (a, b, c, d), written once."""
    path = DATA / f"table_{rows}x4.csv"
    if path.exists():
        return path
    import pyarrow as pa
    from pyarrow import csv as pacsv

    random = np.random.default_rng(7)
    part = path.with_suffix(".part")
    with pacsv.CSVWriter(part, pa.schema([(c, pa.float32()) for c in "abcd"])) as writer:
        for start in range(0, rows, 1_000_000):
            count = min(1_000_000, rows - start)
            columns = {c: random.standard_normal(count, dtype=np.float32) for c in "abcd"}
            writer.write_table(pa.table(columns))
    part.rename(path)
    return path


# Times one command and prints "wall peak_kb exit_code". It runs in a fresh, small
# interpreter: a child forked from this (large) process would report this process's resident
# memory as its own peak before it execs.
_RUNNER = """
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def _measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB, ``ru_maxrss``) of one child process."""
    done = subprocess.run(
        [PYTHON, "-c", _RUNNER, *argv], capture_output=True, text=True, check=True
    )
    wall, peak_kb, code = done.stdout.split()
    if int(code) not in (0, 1):
        raise SystemExit(f"benchmark command failed ({code}): {' '.join(argv)}")
    return float(wall), int(peak_kb) / 1024  # Linux: ru_maxrss is in KB (MiB here)


@dataclass(frozen=True)
class Target:
    """What issue 15 asks of a case (None: nothing)."""

    wall: float | None = None  # losscli's wall time over the baseline's
    memory: float | None = None  # losscli's peak memory over the baseline's
    peak_mb: float | None = None  # losscli's peak memory in MiB


@dataclass(frozen=True)
class Result:
    name: str
    ours: str
    theirs: str
    wall: tuple[float, float]  # medians: losscli, baseline
    memory: tuple[float, float]
    target: Target = Target()
    input_bytes: int = 0  # bytes of the inputs, for a GB/s beyond torch's import


def _case(
    name: str,
    ours: list[str],
    theirs: list[str],
    repeats: int,
    target: Target = Target(),
    input_bytes: int = 0,
) -> Result:
    """Run both commands ``repeats`` times, interleaved, after one untimed warm-up each."""
    _measure(ours)  # one untimed run of each: the page cache warm for both
    _measure(theirs)
    walls: dict[str, list[float]] = {"ours": [], "theirs": []}
    memory: dict[str, list[float]] = {"ours": [], "theirs": []}
    for repeat in range(repeats):
        order = ("ours", "theirs") if repeat % 2 == 0 else ("theirs", "ours")
        for who in order:
            wall, peak = _measure(ours if who == "ours" else theirs)
            walls[who].append(wall)
            memory[who].append(peak)
        print(".", end="", file=sys.stderr, flush=True)
    print(f" {name}", file=sys.stderr)
    return Result(
        name,
        " ".join(_short(a) for a in ours),
        " ".join(_short(a) for a in theirs),
        (statistics.median(walls["ours"]), statistics.median(walls["theirs"])),
        (statistics.median(memory["ours"]), statistics.median(memory["theirs"])),
        target,
        input_bytes,
    )


def _short(argument: str) -> str:
    if argument == PYTHON:
        return "python"
    if "\n" in argument:
        return "<hand script>"
    return argument.replace(str(DATA) + "/", "")


def _losscli(*argv: str) -> list[str]:
    return [PYTHON, "-m", "losscli", *argv]


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / (1 << 30):.0f} GiB RAM"
    except (ValueError, OSError):
        memory = "RAM unknown"
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}"
    )


def _bytes(*paths: Path) -> int:
    return sum(path.stat().st_size for path in paths)


def _compiled() -> None:
    """Byte-compile losscli, as ``pip install`` does: an editable install under
    PYTHONDONTWRITEBYTECODE (set on some machines) would compile ~35 modules on every run."""
    import compileall

    compileall.compile_dir(str(HERE.parent / "losscli"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--repeats", type=int, help="repeats per case (median is reported)")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--write", action="store_true", help="write the results into README.md")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or sizes.repeats
    DATA.mkdir(exist_ok=True)
    print("generating data (once) ...", file=sys.stderr)
    small = _npy_pair(sizes.small)
    large = _npy_pair(sizes.large)
    medium = _npy_pair(sizes.medium)
    table = _csv_table(sizes.csv_rows)
    streamed = [_csv_table(rows) for rows in sizes.stream_csv_rows]
    sharded = _shards(large, SHARDS)
    _compiled()
    load = os.getloadavg()[0]
    hand = [PYTHON, "-c", HAND_MSE]
    budget = ["--memory-budget", STREAM_BUDGET]
    small_budget = ["--memory-budget", SMALL_BUDGET]
    help_name = "--help vs import torch"
    plan: list[tuple[str, list[str], list[str], Target, int]] = [
        (help_name, _losscli("--help"), [PYTHON, "-c", "import torch"], Target(wall=0.15), 0),
        (
            f"compute mse, {sizes.small:.0e} elements",
            _losscli("compute", "mse", *map(str, small)),
            [*hand, *map(str, small)],
            Target(wall=1.05),
            0,
        ),
        (
            f"compute mse, {sizes.large:.0e} elements, streamed",
            _losscli("compute", "mse", *map(str, large), *budget),
            [*hand, *map(str, large)],
            Target(wall=0.80, memory=0.50),
            _bytes(*large),
        ),
        (
            f"compute mse, {sizes.large:.0e} elements, streamed, vs the script with backward",
            _losscli("compute", "mse", *map(str, large), *budget),
            [*hand, *map(str, large), "backward"],
            Target(),
            _bytes(*large),
        ),
        (
            f"compute mse on 2 columns of a {sizes.csv_rows:.0e} x 4 CSV vs numpy.loadtxt",
            _losscli("compute", "mse", f"{table}:a", f"{table}:b"),
            [PYTHON, "-c", HAND_CSV, str(table)],
            Target(wall=0.60),
            _bytes(table),
        ),
        (
            f"CSV streamed at {SMALL_BUDGET}: {_mb(streamed[1])} vs {_mb(streamed[0])} of text",
            _losscli("compute", "mse", f"{streamed[1]}:a", f"{streamed[1]}:b", *small_budget),
            _losscli("compute", "mse", f"{streamed[0]}:a", f"{streamed[0]}:b", *small_budget),
            Target(memory=1.2, peak_mb=300),
            _bytes(streamed[1]),
        ),
        (
            f"compute mse, {sizes.medium:.0e} elements, on whole tensors",
            _losscli("compute", "mse", *map(str, medium), "--memory-budget", WHOLE_BUDGET),
            [*hand, *map(str, medium)],
            Target(),
            _bytes(*medium),
        ),
        (
            f"compute mse, {sizes.large:.0e} elements in {SHARDS} shards, vs concatenating them",
            _losscli("compute", "mse", *sharded),
            [PYTHON, "-c", HAND_SHARDS, *sharded],
            Target(),
            _bytes(*large),
        ),
        (
            f"compute mse, {sizes.large:.0e} elements: {SHARDS} shards vs one file streamed",
            _losscli("compute", "mse", *sharded),
            _losscli("compute", "mse", *map(str, large), *budget),
            Target(),
            _bytes(*large),
        ),
        (
            f"compute mse, {sizes.large:.0e} elements in {SHARDS} shards: --dask local vs here",
            _losscli("compute", "mse", *sharded, "--dask", "local"),
            _losscli("compute", "mse", *sharded),
            Target(),
            _bytes(*large),
        ),
        (
            f"losscli peak memory, {sizes.large:.0e} vs {sizes.medium:.0e} elements, streamed",
            _losscli("compute", "mse", *map(str, large), *budget),
            _losscli("compute", "mse", *map(str, medium), *budget),
            Target(memory=1.2),
            0,
        ),
    ]
    results = [
        _case(name, ours, theirs, repeats, target, size)
        for name, ours, theirs, target, size in plan
        if not args.only or args.only in name or name == help_name  # help: the import time
    ]
    load_after = os.getloadavg()[0]
    text = _markdown(results, sizes, repeats, load, load_after)
    print(text)
    if args.write:
        _write_readme(text)


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.0f} MB"


def _markdown(
    results: list[Result], sizes: Sizes, repeats: int, load: float, load_after: float
) -> str:
    import_torch = next((r.wall[1] for r in results if r.name.startswith("--help")), None)
    lines = [
        f"Machine: {_machine()}.",
        f"Run: `python benchmarks/run.py{' --quick' if sizes is QUICK else ''}` on "
        f"{time.strftime('%Y-%m-%d')}, median of {repeats} interleaved runs; 1-minute load "
        f"average {load:.1f} before, {load_after:.1f} after (other work on the machine shows up "
        "in both columns).",
        "",
        "| case | losscli wall | baseline wall | wall ratio (target) | losscli peak MiB "
        "(target) | baseline peak MiB | memory ratio (target) | GB/s beyond `import torch` |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        target = result.target
        wall_ratio = result.wall[0] / result.wall[1]
        memory_ratio = result.memory[0] / result.memory[1]
        rate = "–"
        if result.input_bytes and import_torch is not None and result.wall[0] > import_torch:
            rate = f"{result.input_bytes / 1e9 / (result.wall[0] - import_torch):.2f}"
        lines.append(
            f"| {result.name} | {result.wall[0]:.2f} s | {result.wall[1]:.2f} s | "
            f"{_ratio(wall_ratio, target.wall)} | "
            f"{_ratio(result.memory[0], target.peak_mb, digits=0)} | {result.memory[1]:.0f} | "
            f"{_ratio(memory_ratio, target.memory)} | {rate} |"
        )
    lines += ["", "Commands (losscli / baseline):", ""]
    for result in results:
        lines.append(f"- {result.name}: `{result.ours}` / `{result.theirs}`")
    return "\n".join(lines) + "\n"


def _ratio(ratio: float, target: float | None, digits: int = 2) -> str:
    if target is None:
        return f"{ratio:.{digits}f}"
    verdict = "met" if ratio <= target else "**missed**"
    return f"{ratio:.{digits}f} (≤ {target:.{digits}f}: {verdict})"


_START = "<!-- results:start -->"
_END = "<!-- results:end -->"


def _write_readme(text: str) -> None:
    current = README.read_text() if README.exists() else f"{_START}\n{_END}\n"
    head, _, rest = current.partition(_START)
    _, _, tail = rest.partition(_END)
    README.write_text(f"{head}{_START}\n{text}{_END}{tail}")


if __name__ == "__main__":
    main()
