"""CSV chunk reader against the whole CSV loader: throughput and peak memory, same run.

    python benchmarks/csv_chunks.py --rows 2500000     # about 100 MB of text

Writes a ROWS x (4 floats + an integer label) CSV with a header under benchmarks/data/
(gitignored), then reads it REPEATS times each way in child processes, alternately: the
whole loader (``losscli.loaders.load``) and the chunk reader (``open_chunk_readers``, chunks
of --chunk rows). Two cases: the file as one input (every column), and as two inputs
(``:c0,c1,c2,c3`` and ``:label``: the whole loader reads the file once per input, the chunk
readers share one parse). Reports the median wall time of the read alone (imports
excluded), rows and MB per second, and the median peak resident memory of each child
(``os.wait4``'s ``ru_maxrss``, imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def _write_csv(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, 4)).round(6)
    columns = {f"c{i}": values[:, i] for i in range(4)}
    columns["label"] = rng.integers(0, 10, rows)
    partial = path.with_suffix(".partial")
    pacsv.write_csv(pa.table(columns), partial)
    partial.replace(path)


CASES = {"one input": ("",), "two inputs": (":c0,c1,c2,c3", ":label")}


def _child(mode: str, case: str, path: str, chunk: int) -> None:
    """Read ``path`` one way; print the wall seconds of the read and the rows read."""
    import pyarrow.csv  # noqa: F401  (imported before the clock starts, both ways)

    from losscli.loaders import load, open_chunk_readers
    from losscli.sources import parse_source

    inputs = [path + selector for selector in CASES[case]]
    start = time.perf_counter()
    if mode == "whole":
        loaded = [load(parse_source(text)) for text in inputs]  # both inputs, as chunks do
        rows = loaded[0].values.shape[0]
    else:
        readers = open_chunk_readers({text: parse_source(text) for text in inputs})
        rows = 0
        while True:
            chunks = [reader.read(chunk) for reader in readers.values()]
            if chunks[0] is None:
                break
            rows += len(chunks[0])
        for reader in readers.values():
            reader.close()
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))


def _run(mode: str, case: str, path: Path, chunk: int) -> tuple[float, int, float]:
    """(seconds, rows, peak MB) of one child."""
    command = [sys.executable, __file__, "--child", mode, case, str(path), "--chunk", str(chunk)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    assert status == 0, output
    result = json.loads(output)
    return result["seconds"], result["rows"], usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_500_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=65_536, help="rows per chunk")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child[:3], args.chunk)
        return

    path = DATA / f"labelled_{args.rows}.csv"
    print(f"writing {path.name} ..." if not path.exists() else f"using {path.name}", flush=True)
    _write_csv(path, args.rows)
    path.read_bytes()  # in the page cache for both
    modes = ("whole", "chunks")
    size_mb = path.stat().st_size / 1e6
    print(
        f"\n{args.rows:,} rows x (4 floats + int label), {size_mb:.0f} MB, chunks of "
        f"{args.chunk:,} rows, median of {args.repeats} alternating runs, {os.cpu_count()} CPUs"
    )
    print(f"{'case':11} {'reader':7} {'median s':>9} {'M rows/s':>9} {'MB/s':>6} {'peak MB':>8}")
    for case in CASES:
        seconds: dict[str, list[float]] = {mode: [] for mode in modes}
        peaks: dict[str, list[float]] = {mode: [] for mode in modes}
        for repeat in range(args.repeats):
            for mode in modes if repeat % 2 == 0 else modes[::-1]:
                elapsed, rows, peak = _run(mode, case, path, args.chunk)
                assert rows == args.rows, (mode, rows)
                seconds[mode].append(elapsed)
                peaks[mode].append(peak)
        for mode in modes:
            median = statistics.median(seconds[mode])
            peak = statistics.median(peaks[mode])
            print(
                f"{case:11} {mode:7} {median:>9.3f} {args.rows / median / 1e6:>9.2f} "
                f"{size_mb / median:>6.0f} {peak:>8.0f}"
            )


if __name__ == "__main__":
    main()
