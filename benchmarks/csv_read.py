"""CSV read speed: losscli's loader against numpy.loadtxt and pandas.read_csv, same run.

    python benchmarks/csv_read.py --rows 4000000

Writes a ROWS x 4 float CSV (with a header) under benchmarks/data/ (gitignored), then times
the three readers interleaved (losscli, loadtxt, pandas, losscli, ...), REPEATS rounds, and
reports the median of each and the throughput ratios. numpy.loadtxt is slow, so by default
it reads only the first --loadtxt-rows rows (a prefix file written alongside) and its
throughput (rows per second) is what the ratio compares; the output says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
COLUMNS = 4


def _write_csv(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.random.default_rng(seed).normal(size=(rows, COLUMNS))
    table = pa.table({f"c{i}": values[:, i] for i in range(COLUMNS)})
    partial = path.with_suffix(".partial")
    pacsv.write_csv(table, partial)
    partial.replace(path)


def _prefix(path: Path, rows: int) -> Path:
    """The header and the first ``rows`` rows of ``path``, as a file of its own."""
    prefix = path.with_name(f"{path.stem}.head{rows}.csv")
    if not prefix.exists():
        with path.open("rb") as source, prefix.open("wb") as sink:
            for _ in range(rows + 1):
                sink.write(source.readline())
    return prefix


def _losscli(path: Path) -> np.ndarray:
    from losscli.loaders import load
    from losscli.sources import parse_source

    return load(parse_source(str(path))).values


def _loadtxt(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1)


def _pandas(path: Path) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(path).to_numpy()


def _time(read: Callable[[Path], np.ndarray], path: Path) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds (all threads of this process), and what was read."""
    start, cpu = time.perf_counter(), time.process_time()
    values = read(path)
    return time.perf_counter() - start, time.process_time() - cpu, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--loadtxt-rows",
        type=int,
        default=400_000,
        help="rows numpy.loadtxt reads (its throughput is scaled); 0 = all rows",
    )
    args = parser.parse_args()

    path = DATA / f"floats_{args.rows}x{COLUMNS}.csv"
    print(f"writing {path.name} ..." if not path.exists() else f"using {path.name}", flush=True)
    _write_csv(path, args.rows)
    loadtxt_rows = (
        args.rows if args.loadtxt_rows in (0, None) else min(args.loadtxt_rows, args.rows)
    )
    loadtxt_path = path if loadtxt_rows == args.rows else _prefix(path, loadtxt_rows)

    # warm the imports (pyarrow, pandas) outside the timings
    _losscli(loadtxt_path)
    _pandas(loadtxt_path)

    readers: dict[str, tuple[Callable[[Path], np.ndarray], Path, int]] = {
        "losscli (pyarrow)": (_losscli, path, args.rows),
        "numpy.loadtxt": (_loadtxt, loadtxt_path, loadtxt_rows),
        "pandas.read_csv": (_pandas, path, args.rows),
    }
    times: dict[str, list[float]] = {name: [] for name in readers}
    cpu_times: dict[str, list[float]] = {name: [] for name in readers}
    results: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, (read, source, _rows) in readers.items():  # interleaved rounds
            elapsed, cpu, values = _time(read, source)
            times[name].append(elapsed)
            cpu_times[name].append(cpu)
            results[name] = values
            del values

    # the readers agree on the numbers they share
    ours = results["losscli (pyarrow)"]
    assert ours.shape == (args.rows, COLUMNS), ours.shape
    np.testing.assert_array_equal(ours, results["pandas.read_csv"])
    np.testing.assert_array_equal(ours[:loadtxt_rows], results["numpy.loadtxt"])

    size_mb = path.stat().st_size / 1e6
    print(
        f"\n{args.rows:,} rows x {COLUMNS} float64 columns, {size_mb:.0f} MB, "
        f"median of {args.repeats} interleaved runs, {os.cpu_count()} CPUs"
    )
    throughput = {}
    print(f"{'reader':20} {'rows read':>12} {'median s':>10} {'M rows/s':>10} {'CPU s':>8}")
    for name, (_read, _source, rows) in readers.items():
        median = statistics.median(times[name])
        throughput[name] = rows / median
        cpu = statistics.median(cpu_times[name])
        print(f"{name:20} {rows:>12,} {median:>10.3f} {throughput[name] / 1e6:>10.3f} {cpu:>8.3f}")
    if loadtxt_rows != args.rows:
        print(
            f"(numpy.loadtxt read the first {loadtxt_rows:,} rows; its throughput is compared, "
            f"so its time for all {args.rows:,} rows would be about "
            f"{args.rows / throughput['numpy.loadtxt']:.1f} s)"
        )
    base = throughput["numpy.loadtxt"]
    ours_speed = throughput["losscli (pyarrow)"]
    print(f"\nlosscli vs numpy.loadtxt:  {ours_speed / base:.1f}x throughput (goal >= 4x)")
    print(f"losscli vs pandas.read_csv: {ours_speed / throughput['pandas.read_csv']:.1f}x")
    print(f"pandas.read_csv vs loadtxt: {throughput['pandas.read_csv'] / base:.1f}x")


if __name__ == "__main__":
    main()
