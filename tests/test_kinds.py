"""kinds.classify: each label on the array that earns it, its near misses, and its numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import kinds
from losscli.kinds import ROW_TOLERANCE, Kind, classify, decimal_places, rows_of


def _softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _log_softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    peak = logits.max(axis=axis, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(axis=axis, keepdims=True))


RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 5)).astype(np.float32) * 3


@pytest.mark.parametrize(
    ("values", "class_axis", "expected"),
    [
        pytest.param(np.zeros((0, 3)), 1, Kind.EMPTY, id="empty"),
        pytest.param(np.array([np.nan, np.inf]), None, Kind.NON_FINITE, id="all-nan"),
        pytest.param(np.eye(4)[[0, 3, 1, 2, 0]], 1, Kind.ONE_HOT, id="one-hot-F.one_hot"),
        pytest.param(np.array([[1, 0, 1], [0, 0, 1]]), 1, Kind.MULTI_HOT, id="multi-hot"),
        pytest.param(np.array([0.0, 1.0, 1.0, 0.0]), None, Kind.ZERO_ONE, id="binary-labels"),
        pytest.param(np.array([[1], [0], [1]]), 1, Kind.ZERO_ONE, id="binary-column-(N,1)"),
        pytest.param(np.array([-1, 1, 1, -1]), None, Kind.SIGNS, id="hinge-signs"),
        pytest.param(np.array([0, 255, 255], dtype=np.uint8), None, Kind.MASK_255, id="png-mask"),
        pytest.param(np.full(6, 0.3), None, Kind.CONSTANT, id="constant"),
        pytest.param(np.array([2, 0, 1, 2, 7]), None, Kind.CLASS_INDICES, id="labels"),
        pytest.param(np.array([3.0, 1.0, -100.0]), None, Kind.CLASS_INDICES, id="float-labels"),
        pytest.param(np.array([[3, 0, 2], [1, 5, 0]]), 1, Kind.COUNTS, id="count-table"),
        pytest.param(_softmax(LOGITS), 1, Kind.PROBABILITIES, id="softmax"),
        pytest.param(_log_softmax(LOGITS), 1, Kind.LOG_PROBABILITIES, id="log-softmax"),
        pytest.param(1 / (1 + np.exp(-LOGITS)), 1, Kind.UNIT_INTERVAL, id="sigmoid-rows"),
        pytest.param(1 / (1 + np.exp(-LOGITS[:, 0])), None, Kind.UNIT_INTERVAL, id="sigmoid"),
        pytest.param(LOGITS, 1, Kind.LOGITS, id="logits"),
        pytest.param(LOGITS[:, 0], None, Kind.CONTINUOUS, id="regression"),
        pytest.param(np.array([True, False]), None, Kind.ZERO_ONE, id="bool"),
    ],
)
def test_each_label_on_the_array_that_earns_it(
    values: np.ndarray, class_axis: int | None, expected: Kind
) -> None:
    assert classify(values, class_axis).kind is expected


def test_rows_a_little_off_one_are_not_probabilities() -> None:
    # a hand-made table whose rows sum to 0.98: in [0, 1] but not within 1e-3 of 1
    table = _softmax(LOGITS) * 0.98
    kind = classify(table, class_axis=1)
    assert kind.kind is Kind.UNIT_INTERVAL
    assert kind.rows is not None
    assert kind.rows.fraction_sum_to_one == 0.0
    assert kind.rows.sum_median == pytest.approx(0.98, abs=1e-6)


def test_nonpositive_rows_that_do_not_normalise_are_not_log_probabilities() -> None:
    # -relu(logits): all <= 0 but logsumexp far from 0
    kind = classify(-np.abs(LOGITS), class_axis=1)
    assert kind.nonpositive
    assert kind.kind is Kind.LOGITS


def test_probability_rows_along_a_middle_axis() -> None:
    # segmentation softmax output [batch, classes, height, width], class axis 1
    probabilities = _softmax(RNG.normal(size=(2, 3, 4, 5)), axis=1)
    kind = classify(probabilities, class_axis=1)
    assert kind.kind is Kind.PROBABILITIES
    assert kind.rows is not None
    assert kind.rows.count == 2 * 4 * 5 and kind.rows.length == 3


def test_numbers_match_numpy() -> None:
    values = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.1], [0.6, 0.2, 0.2]])
    kind = classify(values, class_axis=1)
    assert kind.rows is not None
    sums = values.sum(axis=1)  # [1.0, 0.3, 1.0]
    assert kind.rows.sum_median == pytest.approx(np.median(sums))
    assert kind.rows.sum_min == pytest.approx(0.3)
    assert kind.rows.fraction_sum_to_one == pytest.approx(2 / 3)
    assert kind.min == 0.1 and kind.max == 0.6
    assert kind.in_unit_interval and kind.nonnegative and not kind.integral
    assert kind.rows.example_sums == pytest.approx(tuple(sums))


def test_class_indices_report_min_max_and_distinct() -> None:
    kind = classify(np.array([1, 2, 3, 3, 1]))
    assert (kind.min, kind.max, kind.n_distinct) == (1.0, 3.0, 3)
    assert kind.distinct == (1.0, 2.0, 3.0)
    assert "3 distinct" in kind.describe()


def test_non_finite_values_are_counted_and_left_out() -> None:
    kind = classify(np.array([0.1, np.nan, 0.9, np.inf]))
    assert kind.non_finite == 2
    assert (kind.min, kind.max) == (0.1, 0.9)
    assert kind.kind is Kind.UNIT_INTERVAL


def test_ones_per_row_for_multi_hot() -> None:
    kind = classify(np.array([[1, 1, 0], [0, 1, 0], [1, 1, 1], [0, 0, 0]]), class_axis=1)
    assert kind.rows is not None
    assert (kind.rows.ones_min, kind.rows.ones_max) == (0, 3)
    assert kind.rows.fraction_several_ones == 0.5


def test_class_axis_out_of_range_is_ignored() -> None:
    kind = classify(np.array([0.5, 0.2]), class_axis=3)
    assert kind.class_axis is None and kind.rows is None


def test_rows_of_orders_by_batch_then_position() -> None:
    values = np.arange(2 * 3 * 2).reshape(2, 3, 2)  # [batch, classes, length]
    rows = rows_of(values, 1)
    assert rows.shape == (4, 3)
    assert rows[1].tolist() == [1, 3, 5]  # batch 0, position 1


def test_describe_quotes_the_numbers() -> None:
    text = classify(_softmax(LOGITS), class_axis=1).describe()
    assert text.startswith("probabilities") and "median row sum 1" in text


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    classes=st.integers(2, 12),
    scale=st.floats(0.01, 20),
    seed=st.integers(0, 2**16),
)
def test_softmax_and_log_softmax_are_always_recognised(
    rows: int, classes: int, scale: float, seed: int
) -> None:
    logits = np.random.default_rng(seed).normal(size=(rows, classes)) * scale
    assert classify(_softmax(logits), 1).kind is Kind.PROBABILITIES
    log_probabilities = _log_softmax(logits)
    kind = classify(log_probabilities, 1)
    assert kind.kind is Kind.LOG_PROBABILITIES
    assert kind.rows is not None
    assert abs(kind.rows.logsumexp_median) <= ROW_TOLERANCE


def test_float16_rows_get_their_rounding_as_tolerance() -> None:
    # rows off 1 by 2e-3: beyond 1e-3 in float32, within float16's rounding over 10 classes
    table = _softmax(RNG.normal(size=(8, 10))) * 1.002
    assert classify(table.astype(np.float32), class_axis=1).kind is Kind.UNIT_INTERVAL
    kind = classify(table.astype(np.float16), class_axis=1)
    assert kind.kind is Kind.PROBABILITIES
    assert kind.rows is not None and kind.rows.tolerance > 2e-3


def test_row_tolerance_is_the_spec_value_for_float32_and_float64() -> None:
    from losscli.kinds import carried_eps, row_tolerance

    def eps(dtype: type) -> float:
        return float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0

    assert row_tolerance(eps(np.float32), 1000) == ROW_TOLERANCE
    assert row_tolerance(eps(np.float64), 10**6) == ROW_TOLERANCE
    assert row_tolerance(eps(np.int64), 3) == ROW_TOLERANCE
    assert row_tolerance(eps(np.float16), 10) > ROW_TOLERANCE
    assert carried_eps(np.arange(3)) == 0.0


def test_values_carried_in_a_narrower_float_are_judged_at_its_rounding() -> None:
    # knowledge distillation: a bfloat16 teacher's softmax, cast with .float() for the student
    import torch

    from losscli.kinds import BFLOAT16_EPS, carried_eps

    scores = torch.from_numpy(RNG.normal(scale=3, size=(64, 10)))
    teacher = scores.bfloat16().softmax(1).float().numpy()
    sums = teacher.sum(axis=1)
    assert np.abs(sums - 1).max() > ROW_TOLERANCE  # bfloat16 rounding, not a mistake
    assert carried_eps(teacher) == BFLOAT16_EPS
    assert carried_eps(scores.half().float().numpy()) == np.finfo(np.float16).eps
    assert carried_eps(teacher.astype(np.float64)) == BFLOAT16_EPS
    assert carried_eps(scores.numpy().astype(np.float32)) == np.finfo(np.float32).eps
    assert carried_eps(scores.numpy()) == np.finfo(np.float64).eps
    assert classify(teacher, class_axis=1).kind is Kind.PROBABILITIES
    # the same rows in float32 arithmetic, 1 % off: a real error stays one
    off = (scores.float().softmax(1) * 1.01).numpy()
    assert classify(off, class_axis=1).kind is not Kind.PROBABILITIES


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(np.array([0.7, 0.2, 0.1], dtype=np.float32), 1, id="typed-float32"),
        pytest.param(np.array([0.33, 0.33, 0.33]), 2, id="csv-rounded-float64"),
        pytest.param(np.array([0.125, 0.5]), 3, id="three-places"),
        pytest.param(np.array([3, -1, 0]), 0, id="integers"),
        pytest.param(np.array([0.7, 0.2, 0.1], dtype=np.float16), 1, id="typed-float16"),
        # model output carries the dtype's full precision
        pytest.param(RNG.random(6).astype(np.float32), None, id="random-float32"),
        pytest.param(RNG.random(6), None, id="random-float64"),
        # float16 cannot tell 2 places apart below 1: never claims them
        pytest.param(
            np.array([0.4131, 0.5227], dtype=np.float16), None, id="float16-beyond-1-place"
        ),
        pytest.param(np.array([np.nan, np.inf]), None, id="no-finite-value"),
    ],
)
def test_decimal_places(values: np.ndarray, expected: int | None) -> None:
    assert decimal_places(values) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([np.int64, np.int32, np.int16, np.int8, np.float16, np.float32, np.float64]),
    st.integers(-30_000, 30_000),
    st.sampled_from([0, 1, 2, 9, 15, 300, 65_535, 65_536, 200_000]),
    st.sampled_from([1, 5, 1_000, 65_537, 150_000]),
)
def test_distinct_whole_numbers_are_numpys_unique(
    dtype: type, low: int, span: int, size: int
) -> None:
    # counted (a span under 2^16 in many values) or sorted: numpy's values, dtype and order
    if np.dtype(dtype) == np.int8:  # negative ones too: an offset in int8 would wrap
        low, span = low % 128 - 128, min(span, 127)
    if np.dtype(dtype) in (np.int16, np.float16):
        low, span = low % 30_000 - 30_000, min(span, 60_000)
    random = np.random.default_rng(size + span)
    values = (low + random.integers(0, span + 1, size)).astype(dtype)
    distinct = kinds._distinct(values, float(values.min()), float(values.max()))
    # numpy's own answer, in float64 for float16 (numpy 2.4 repeats values sorting many)
    expected = np.unique(values.astype(np.float64)).astype(values.dtype)
    assert distinct.dtype == expected.dtype
    assert np.array_equal(distinct, expected)
    assert classify(values).n_distinct == expected.size


def test_distinct_float16_whole_numbers_are_not_rounded() -> None:
    # 2784 - (-30000) = 32784 is no float16: an offset in float16 reads 2768
    values = np.tile(np.array([-30000, 2784, 30000], dtype=np.float16), 30_000)
    assert classify(values).distinct == (-30000.0, 2784.0, 30000.0)


def test_many_float16_values_sort_into_distinct_ones() -> None:
    # numpy 2.4.6: np.unique of 65,537 float16 values from -3 to 6 lists -2 and -1 thrice
    values = (-3 + np.random.default_rng(65546).integers(0, 10, 65_537)).astype(np.float16)
    wide = np.concatenate([values, np.array([-10_000, 60_000], dtype=np.float16)])  # sorted
    for array in (values, wide):
        found = classify(array)
        assert found.n_distinct == len(set(array.tolist()))


def test_a_fraction_past_the_first_values_still_makes_them_not_whole() -> None:
    # integrality is judged on the first 4096 values first; a fraction after them still counts
    values = np.concatenate([np.arange(5000, dtype=np.float32), np.array([0.5], np.float32)])
    assert not classify(values).integral
    assert classify(values[:-1]).integral
