"""Partial results merge: shards folded apart and merged give what one fold of every chunk
gives, whatever the grouping of the merges (they are associative).

Exactly for counts, extremes and their samples, positions, worst samples and evidence rows;
to float64 rounding for sums. Shards are runs of chunks whose offsets are global, as each
shard's base offset makes them.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any, Protocol, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import losses
from losscli.accumulator import Accumulator, ClassSetup, QuantileSample
from losscli.checks import registry
from losscli.compute import compute_chunk
from losscli.evidence import Evidence
from losscli.loaders import LoadedArray

OPTIONS = {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}
SETUP = ClassSetup("input", "target", 4, -100)


def _cuts(n: int, data: st.DataObject, most: int) -> list[int]:
    inner = data.draw(st.sets(st.integers(1, max(1, n - 1)), max_size=most)) if n > 1 else set()
    return [0, *sorted(inner), n]


def _accumulated(arrays: dict[str, np.ndarray], cuts: list[int], seed: int) -> Accumulator:
    """One shard's accumulator: its chunks between ``cuts``, at their global offsets."""
    spec = losses.get("cross-entropy")
    assert spec is not None
    found = Accumulator(spec, OPTIONS, keep_all=False, top=5, classes=SETUP, seed=seed)
    for low, high in itertools.pairwise(cuts):
        chunk = {name: values[low:high] for name, values in arrays.items()}
        result = compute_chunk(spec, chunk, OPTIONS, reduced=False)
        found.add(result, low, chunk)
        found.count_classes(chunk, result)
    return found


class _Mergeable(Protocol):
    def merge(self, later: Any) -> None: ...


Part = TypeVar("Part", bound=_Mergeable)


def _left(parts: list[Part]) -> Part:
    """((a + b) + c) + ...: each merge takes over a copy of the next part."""
    first = copy.deepcopy(parts[0])
    for part in parts[1:]:
        first.merge(copy.deepcopy(part))
    return first


def _right(parts: list[Part]) -> Part:
    """a + (b + (c + ...))."""
    last = copy.deepcopy(parts[-1])
    for part in reversed(parts[:-1]):
        earlier = copy.deepcopy(part)
        earlier.merge(last)
        last = earlier
    return last


def _answer(found: Accumulator) -> dict[str, object]:
    done = found.finish()
    classes = found.class_totals()
    assert classes is not None
    gradient = done.totals.gradients["input"]
    return {
        "summary": {k: v for k, v in done.summary.items() if k not in ("mean",)},
        "mean": done.summary["mean"],
        "value": done.value,
        "worst": [index for index, _ in done.worst],
        "bad": (done.totals.nan, done.totals.bad_samples),
        "described": [rows.index for rows in done.totals.described],
        "classes": (classes.true.tolist(), classes.predicted.tolist(), classes.correct.tolist()),
        "ignored": (classes.ignored, classes.total),
        "gradient": (gradient.count, gradient.first_positions, gradient.samples),
        "per_sample": [repr(v) for v in done.per_sample.tolist()],
        "shape": done.gradient_summaries["input"]["shape"],
        "norm": done.gradient_summaries["input"]["norm"],
    }


def _same(a: dict[str, object], b: dict[str, object]) -> None:
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float):
            assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12), key
        else:
            assert x == y, f"{key}: {x} != {y}"


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_shards_merged_in_any_grouping_equal_one_fold(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = data.draw(st.integers(2, 1500))
    logits = rng.normal(size=(n, 4)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    labels[rng.random(n) < 0.1] = -100
    for _ in range(data.draw(st.integers(0, 3))):
        logits[rng.integers(0, n), rng.integers(0, 4)] = np.nan
    arrays = {"input": logits, "target": labels}
    chunks = _cuts(n, data, 12)
    one = _answer(_accumulated(arrays, chunks, seed=0))
    bounds = sorted({0, n, *data.draw(st.sets(st.sampled_from(chunks), max_size=5))})
    parts = [
        _accumulated(arrays, [c for c in chunks if low <= c <= high], seed=index)
        for index, (low, high) in enumerate(itertools.pairwise(bounds))
    ]
    _same(one, _answer(_left(parts)))
    _same(one, _answer(_right(parts)))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_evidence_merged_keeps_the_rows_of_one_evidence(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 600))
    limit = data.draw(st.integers(1, 50))
    values = np.arange(n, dtype=np.float32)

    def collected(low: int, high: int, total: int | None) -> Evidence:
        evidence = Evidence(limit, total)
        for start, end in itertools.pairwise(_cuts(high - low, data, 3)):
            chunk = values[low + start : low + end]
            loaded = {"input": LoadedArray(np.array(chunk), "x.npy")}
            evidence.add(low + start, loaded, {"input": chunk}, None, stable=False)
        return evidence

    def rows(evidence: Evidence) -> list[float]:
        return evidence.inputs()[1]["input"].tolist()

    expected = rows(collected(0, n, n))
    bounds = sorted({0, n, *data.draw(st.sets(st.integers(0, n), max_size=4))})
    known = data.draw(st.booleans())  # .npy shards say their length; text does not
    parts = [
        collected(low, high, high - low if known else None)
        for low, high in itertools.pairwise(bounds)
    ]
    for together in (_left(parts), _right(parts)):
        assert rows(together) == expected
        assert together.complete == (n <= limit) and together.total == n


def test_quantile_samples_merged_keep_every_loss_with_one_probability() -> None:
    """A shard sampled at a high rate (few samples) and one at a low rate (many): merged,
    each loss of either was kept with the same probability, so zeros and ones, equally many,
    stay half and half."""
    small = QuantileSample(expected=100_000, capacity=1 << 12, seed=1)
    small.add(np.zeros(100_000))
    large = QuantileSample(expected=1_000_000, capacity=1 << 12, seed=2)
    large.add(np.ones(100_000))
    for _ in range(9):
        large.add(np.full(100_000, 2.0))
    assert small.rate > large.rate
    small.merge(large)
    kept = small.values()
    assert small.rate == large.rate and not small.exact
    zeros, ones = (kept == 0).sum(), (kept == 1).sum()
    assert abs(zeros - ones) < 4 * math.sqrt(zeros + ones), (zeros, ones)
    assert abs((kept == 2).mean() - 0.9 * 10 / 11) < 0.02


def test_exact_quantile_samples_merged_stay_exact() -> None:
    first, second = QuantileSample(None, 100), QuantileSample(None, 100, seed=1)
    first.add(np.arange(60.0))
    second.add(np.arange(60.0, 150.0))
    first.merge(second)
    assert first.exact and first.size == 150
    assert first.quantiles([0.5]) == [float(np.quantile(np.arange(150.0), 0.5))]


def test_every_check_comes_back_from_a_worker_as_the_registrys_own() -> None:
    """Findings are keyed by the check that raised them; a check pickled to a Dask worker
    and back must be the registry's (some checks hold closures, which cloudpickle copies)."""
    import pickle

    checks = registry()
    assert len({check.name for check in checks}) == len(checks)
    for check in checks:
        assert pickle.loads(pickle.dumps(check)) is check
    # what Dask pickles tasks and results with, installed with it
    cloudpickle = pytest.importorskip("cloudpickle", reason="Dask is not installed")
    for check in checks:
        assert pickle.loads(cloudpickle.dumps(check)) is check
