"""The cost of ``losscli.guard`` in a training loop, against the bare loss, in one process.

    python benchmarks/guard.py            # 7 interleaved rounds
    python benchmarks/guard.py --quick    # 3 rounds

Three numbers, each a ratio to the bare loss in the same run (median of interleaved rounds,
the order flipping each round):

- **between checks**: ``criterion(logits, target)`` guarded, after its first (checked) call,
  against ``nn.CrossEntropyLoss()(logits, target)``, on a (64, 10) batch: forward only, and
  forward plus backward (a training step's share of the loss);
- **one check**: the first call of a fresh guard (the pipeline on the batch, its fixes
  tried), against one bare call;
- **amortized**: a check every 100 calls (the default), over 100 bare training steps of a
  small MLP on the same batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import losscli

BATCH, CLASSES, FEATURES = 64, 10, 32


def _per_call(call: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - start) / number


def _rounds(
    first: Callable[[], float], second: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """Median of each, measured alternately with the order flipping every round."""
    a: list[float] = []
    b: list[float] = []
    for index in range(rounds):
        if index % 2:
            b.append(second())
            a.append(first())
        else:
            a.append(first())
            b.append(second())
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    rounds = 3 if parser.parse_args().quick else 7
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(BATCH, CLASSES, generator=generator, requires_grad=True)
    target = torch.randint(0, CLASSES, (BATCH,), generator=generator)
    bare = nn.CrossEntropyLoss()
    guarded = losscli.guard(nn.CrossEntropyLoss(), check_every=10**9)
    guarded(logits, target)  # the first call is checked; every call after is not
    number = 20_000

    forward = _rounds(
        lambda: _per_call(lambda: bare(logits, target), number),
        lambda: _per_call(lambda: guarded(logits, target), number),
        rounds,
    )
    step = _rounds(
        lambda: _per_call(lambda: bare(logits, target).backward(), number // 4),
        lambda: _per_call(lambda: guarded(logits, target).backward(), number // 4),
        rounds,
    )

    def one_check() -> float:
        fresh = losscli.guard(nn.CrossEntropyLoss())
        start = time.perf_counter()
        fresh(logits, target)
        return time.perf_counter() - start

    check, bare_call = _rounds(
        one_check, lambda: _per_call(lambda: bare(logits, target), 1000), rounds
    )

    model = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, CLASSES))
    features = torch.randn(BATCH, FEATURES, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def training(criterion: Callable[..., torch.Tensor]) -> float:
        start = time.perf_counter()
        for _ in range(100):
            optimizer.zero_grad()
            criterion(model(features), target).backward()
            optimizer.step()
        return time.perf_counter() - start

    amortized = _rounds(
        lambda: training(F.cross_entropy),
        lambda: training(losscli.guard(F.cross_entropy)),  # a fresh guard: one check per 100
        rounds,
    )
    print(f"torch {torch.__version__}, one thread, {rounds} interleaved rounds, batch (64, 10)")
    print("| case | ratio to the bare loss |")
    print("|---|---|")
    print(f"| between checks, forward | {forward[1] / forward[0]:.3f} |")
    print(f"| between checks, forward + backward | {step[1] / step[0]:.3f} |")
    print(f"| one check (first call) vs one bare call | {check / bare_call:.0f} |")
    print(f"| 100 MLP training steps, checked once | {amortized[1] / amortized[0]:.2f} |")


if __name__ == "__main__":
    main()
