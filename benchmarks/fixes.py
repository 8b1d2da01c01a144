"""What verified fixes and ``--map`` cost, against the script you would write, same run.

    python benchmarks/fixes.py                  # 2e6 samples x 10 classes (80 MB of logits)
    python benchmarks/fixes.py --samples 200000

1-based labels given to cross-entropy, four ways, each in child processes, alternately,
after one untimed warm-up (median wall time and peak resident memory over --repeats):

- ``hand``: ``np.load`` twice, ``target - 1``, ``F.cross_entropy`` with ``backward()``;
- ``clean``: ``losscli compute`` on the same labels saved 0-based (every check, the
  summaries, the gradient: the baseline of losscli's own cost);
- ``map``: ``losscli compute ce logits.npy labels.npy --map 'target = target - 1'`` (the
  fix tried in the shell: no finding, so nothing else to verify);
- ``mistake``: ``losscli compute ce logits.npy labels.npy`` (class-index-out-of-range: torch
  is not called, then each remedy is applied and the pipeline run again to verify it, and
  the other order of the inputs is tried).

The ratios to ``hand`` are what matter; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"

HAND = """
import sys
import numpy as np
import torch
import torch.nn.functional as F
logits = torch.from_numpy(np.load(sys.argv[1])).requires_grad_(True)
labels = torch.from_numpy(np.load(sys.argv[2])) - 1
loss = F.cross_entropy(logits, labels)
loss.backward()
print(loss.item(), logits.grad.norm().item())
"""


def _data(samples: int) -> tuple[Path, Path, Path]:
    logits, labels = DATA / f"fix_logits_{samples}.npy", DATA / f"fix_labels_{samples}.npy"
    labels_0 = DATA / f"fix_labels0_{samples}.npy"
    if not labels_0.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        classes = rng.integers(0, 10, samples)
        values = rng.normal(size=(samples, 10)).astype(np.float32)
        values[np.arange(samples), classes] += 2.0
        np.save(logits, values)
        np.save(labels, classes + 1)
        np.save(labels_0, classes)
    return logits, labels, labels_0


def _run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident KB of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command} failed")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    logits, labels, labels_0 = _data(arguments.samples)
    losscli = [sys.executable, "-m", "losscli", "compute", "ce", str(logits)]
    budget = ["--memory-budget", "4GB", "--format", "json"]  # whole tensors: fixes verified
    cases = {
        "hand": [sys.executable, "-c", HAND, str(logits), str(labels)],
        "clean": [*losscli, str(labels_0), *budget],
        "map": [*losscli, str(labels), *budget, "--map", "target = target - 1"],
        "mistake": [*losscli, str(labels), *budget],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    memory: dict[str, list[int]] = {name: [] for name in cases}
    for command in cases.values():  # warm-up
        _run(command)
    for repeat in range(arguments.repeats):
        order = list(cases) if repeat % 2 == 0 else list(reversed(cases))
        for name in order:
            elapsed, peak = _run(cases[name])
            times[name].append(elapsed)
            memory[name].append(peak)
    hand_time = statistics.median(times["hand"])
    hand_memory = statistics.median(memory["hand"])
    print(f"{arguments.samples} samples x 10 classes, median of {arguments.repeats}")
    print(f"{'case':<10}{'wall s':>9}{'ratio':>8}{'peak MB':>10}{'ratio':>8}")
    for name in cases:
        wall, peak = statistics.median(times[name]), statistics.median(memory[name])
        print(
            f"{name:<10}{wall:>9.2f}{wall / hand_time:>8.2f}"
            f"{peak / 1024:>10.0f}{peak / hand_memory:>8.2f}"
        )


if __name__ == "__main__":
    main()
