"""The accumulator and the evidence: cutting the same samples into chunks changes nothing.

Whole tensors are one chunk of the same pipeline; any other cut must give the same
accumulated numbers (exactly for counts, extremes, positions and worst samples; to 1e-12 for
float64 sums) and keep the same evidence rows.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import accumulator, losses
from losscli.accumulator import Accumulator, ClassSetup, QuantileSample
from losscli.compute import compute_chunk
from losscli.evidence import Evidence, capacity, representatives
from losscli.loaders import LoadedArray


def _cuts(n: int, data: st.DataObject) -> list[int]:
    """Chunk boundaries 0 < ... < n drawn by hypothesis."""
    inner = data.draw(st.sets(st.integers(1, max(1, n - 1)), max_size=6)) if n > 1 else set()
    return [0, *sorted(inner), n]


def _accumulate(
    loss: str,
    arrays: dict[str, np.ndarray],
    options: dict[str, object],
    cuts: list[int],
    classes: ClassSetup | None = None,
) -> Accumulator:
    spec = losses.get(loss)
    assert spec is not None
    whole = cuts == [0, len(next(iter(arrays.values())))]
    accumulator = Accumulator(spec, options, keep_all=whole, top=5, classes=classes)
    for low, high in itertools.pairwise(cuts):
        chunk = {name: values[low:high] for name, values in arrays.items()}
        result = compute_chunk(spec, chunk, options, reduced=whole)
        accumulator.add(result, low, chunk)
        accumulator.count_classes(chunk, result)
    return accumulator


def _same(a: object, b: object, path: str = "") -> None:
    if isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6), path
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    else:
        assert a == b, f"{path}: {a} != {b}"


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_cross_entropy_chunked_equals_whole(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = data.draw(st.integers(1, 60))
    logits = rng.normal(size=(n, 4)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    labels[rng.random(n) < 0.2] = -100
    if data.draw(st.booleans()):
        logits[rng.integers(0, n)] = np.nan
    options = {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}
    setup = ClassSetup("input", "target", 4, -100)
    arrays = {"input": logits, "target": labels}
    whole = _accumulate("cross-entropy", arrays, options, [0, n], setup)
    chunked = _accumulate("cross-entropy", arrays, options, _cuts(n, data), setup)
    a, b = whole.finish(), chunked.finish()
    if a.value is None or b.value is None or math.isnan(a.value):
        assert (a.value is None or math.isnan(a.value)) == (b.value is None or math.isnan(b.value))
    else:
        assert math.isclose(a.value, b.value, rel_tol=1e-6, abs_tol=1e-9)
    _same(a.summary, b.summary)
    assert [i for i, _ in a.worst] == [i for i, _ in b.worst]
    assert (a.totals.nan, a.totals.bad_samples) == (b.totals.nan, b.totals.bad_samples)
    assert [r.index for r in a.totals.described] == [r.index for r in b.totals.described]
    ca, cb = whole.class_totals(), chunked.class_totals()
    assert ca is not None and cb is not None
    for field in ("true", "predicted", "correct"):
        assert getattr(ca, field).tolist() == getattr(cb, field).tolist()
    assert (ca.ignored, ca.out_of_range, ca.total) == (cb.ignored, cb.out_of_range, cb.total)
    ga, gb = a.gradient_summaries["input"], b.gradient_summaries["input"]
    assert ga["shape"] == gb["shape"] and ga["non_finite"] == gb["non_finite"]
    if ga["norm"] is not None and gb["norm"] is not None:
        assert math.isclose(ga["norm"], gb["norm"], rel_tol=1e-5, abs_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_whole_losses_ranked_a_slice_at_a_time_rank_as_one(data: st.DataObject) -> None:
    """Whole tensors search for their worst samples in slices: ties (the later sample first),
    NaN and inf rank as in one search, and as in chunks."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = data.draw(st.integers(1, 80))
    prediction = rng.choice([0.0, 1.0, 2.0, 3.0], size=n).astype(np.float32)  # many ties
    for value in data.draw(st.lists(st.sampled_from([np.nan, np.inf]), max_size=2)):
        prediction[rng.integers(0, n)] = value
    arrays = {"input": prediction, "target": np.zeros(n, dtype=np.float32)}
    options = {"reduction": "mean"}
    one_search = _accumulate("mse", arrays, options, [0, n]).finish()
    chunked = _accumulate("mse", arrays, options, _cuts(n, data)).finish()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accumulator, "_RANKED_SLICE", data.draw(st.integers(1, 9)))
        sliced = _accumulate("mse", arrays, options, [0, n]).finish()
    assert [(i, repr(v)) for i, v in sliced.worst] == [(i, repr(v)) for i, v in one_search.worst]
    assert [i for i, _ in chunked.worst] == [i for i, _ in one_search.worst]


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_negative_losses_and_gradients_count_alike(data: st.DataObject) -> None:
    """nll on raw scores goes negative; the count and the worst sample do not depend on cuts."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = data.draw(st.integers(2, 50))
    scores = rng.normal(size=(n, 3)).astype(np.float32) * 3
    labels = rng.integers(0, 3, n)
    options = {"weight": None, "ignore_index": -100, "reduction": "sum"}
    arrays = {"input": scores, "target": labels}
    a = _accumulate("nll", arrays, options, [0, n]).finish()
    b = _accumulate("nll", arrays, options, _cuts(n, data)).finish()
    assert a.totals.negative == b.totals.negative == int((-scores[np.arange(n), labels] < 0).sum())
    assert a.totals.argmin == b.totals.argmin


def test_quantile_sample_stays_exact_up_to_its_capacity() -> None:
    sample = QuantileSample(expected=None, capacity=100)
    values = np.arange(150, dtype=np.float64)
    sample.add(values[:70])
    sample.add(values[70:])
    assert sample.exact and sample.size == 150
    assert sample.quantiles([0.5]) == [float(np.quantile(values, 0.5))]


# ------------------------------------------------------------------ evidence


def test_representatives_lie_in_their_blocks_and_nest() -> None:
    for level in range(0, 12):
        blocks = np.arange(1000)
        chosen = representatives(level, blocks)
        assert np.array_equal(chosen >> level, blocks)  # one sample of each block
        above = representatives(level + 1, blocks // 2)
        assert np.isin(above, chosen).all()  # a level up keeps one of the two
    offsets = representatives(10, np.arange(4000)) & 1023
    assert 400 < offsets.mean() < 620  # spread over the block, not always its first sample


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_evidence_keeps_the_same_samples_however_the_input_is_cut(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 400))
    limit = data.draw(st.integers(1, 60))
    values = np.arange(n * 2, dtype=np.float32).reshape(n, 2)

    def kept(cuts: list[int], total: int | None = None) -> np.ndarray:
        evidence = Evidence(limit, total)
        for low, high in itertools.pairwise(cuts):
            chunk = values[low:high]
            evidence.add(
                low,
                {"input": LoadedArray(np.array(chunk), "x.npy")},
                {"input": chunk},
                None,
                stable=False,
            )
        loaded, arrays, rows = evidence.inputs()
        assert evidence.complete == (n <= limit)
        assert np.array_equal(loaded["input"].values, arrays["input"])
        index = np.arange(n) if rows is None else rows
        assert np.array_equal(arrays["input"], values[index])  # each row with its own index
        return index

    whole = kept([0, n], total=n)  # whole tensors: the count is known
    assert np.array_equal(whole, kept(_cuts(n, data)))  # text: known at the end
    assert len(whole) <= limit and np.all(np.diff(whole) > 0)
    # between half the capacity (the blocks just doubled) and all of it
    assert len(whole) == n or len(whole) >= limit // 2 - 1


def test_evidence_capacity_follows_the_widest_sample() -> None:
    assert capacity([(), (10,)]) == 1 << 16
    assert capacity([(1000,)]) == (1 << 20) // 1000
    assert capacity([(3, 512, 512)]) == 1  # one segmentation sample is already a lot


@pytest.mark.parametrize("limit", [None, 10])
def test_evidence_reports_the_rows_of_a_sample(limit: int | None) -> None:
    evidence = Evidence(limit)
    values = np.arange(30.0)
    evidence.add(0, {"x": LoadedArray(values, "x.npy")}, {"x": values}, None, stable=True)
    _, arrays, rows = evidence.inputs()
    if limit is None:
        assert rows is None and arrays["x"].size == 30
    else:
        assert rows is not None and 5 < len(rows) <= 10 and not evidence.complete
