"""False alarms: clean, realistic classification inputs must raise no warning and no error.

Every case goes through ``pipeline.evaluate`` from ``LoadedArray`` (so conversion runs too)
with every check of every family. A debugger that cries wolf is useless in CI: a warning
here is a bug. Cases are drawn over several seeds and sizes so that the heuristics are
tested, not tuned to one fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import losses
from losscli.findings import Severity
from losscli.loaders import LoadedArray
from losscli.options import resolve
from losscli.pipeline import evaluate
from losscli.report import Report

Make = Callable[[np.random.Generator], tuple[list[Any], dict[str, Any]]]


def _evaluate(loss: str, arrays: list[Any], text_labels: bool = False, **options: Any) -> Report:
    """The report for ``arrays``; with ``text_labels`` the second is read from a CSV (no dtype)."""
    spec = losses.get(loss)
    assert spec is not None
    files = ["logits.npy", "labels.csv" if text_labels else "labels.npy", "third.npy", "fourth.npy"]
    inputs = {
        argument.name: LoadedArray(np.asarray(values), source, from_text=source.endswith(".csv"))
        for argument, values, source in zip(spec.arguments, arrays, files, strict=False)
    }
    return evaluate(spec, inputs, resolve(spec, options))


def _alarms(report: Report) -> list[tuple[str, str]]:
    return [(f.name, f.message) for f in report.findings if f.severity is not Severity.INFO]


def _log_softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    peak = logits.max(axis=axis, keepdims=True)
    shifted = logits - peak
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _balanced(rng: np.random.Generator, classes: int, n: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes)


def _trained_logits(rng: np.random.Generator, labels: np.ndarray, classes: int) -> np.ndarray:
    """A confident model: the right class leads by a large margin, with some mistakes."""
    logits = rng.normal(size=(labels.size, classes))
    logits[np.arange(labels.size), labels] += 8.0
    return logits.astype(np.float32)


def _trained(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    labels = _balanced(rng, 10, 64)
    return [_trained_logits(rng, labels, 10), labels], {}


def _small_logits(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # an untrained head: every logit in [-0.5, 0.5]; not probabilities, rows do not sum to 1
    return [rng.uniform(-0.5, 0.5, (32, 5)).astype(np.float32), _balanced(rng, 5, 32)], {}


def _unit_logits_rows_sum_2(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # logits that happen to lie in [0, 1] with C=4: rows sum to about 2 (median far from 1)
    return [rng.random((32, 4)).astype(np.float32), _balanced(rng, 4, 32)], {}


def _log_softmax_to_ce(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # F.cross_entropy(F.log_softmax(logits, 1), y) is harmless: log_softmax is idempotent
    labels = _balanced(rng, 6, 24)
    return [_log_softmax(rng.normal(size=(24, 6)) * 2).astype(np.float32), labels], {}


def _segmentation(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # (N, C, H, W) logits, (N, H, W) mask with void 255 on the borders, ignore_index 255
    mask = rng.integers(0, 4, size=(2, 16, 16))
    mask[:, 0, :] = 255
    mask[:, :, -1] = 255
    logits = rng.normal(size=(2, 4, 16, 16)).astype(np.float32) * 2
    return [logits, mask], {"ignore_index": 255}


def _segmentation_square(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # C == H == W: both readings line up; torch's (classes at dimension 1) is the right one
    return [
        rng.normal(size=(2, 8, 8, 8)).astype(np.float32),
        rng.integers(0, 8, size=(2, 8, 8)),
    ], {}


def _weighted(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    labels = _balanced(rng, 3, 30)
    return [rng.normal(size=(30, 3)).astype(np.float32) * 2, labels], {"weight": "[0.2, 1.0, 3.5]"}


def _ignored(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    labels = _balanced(rng, 3, 30)
    labels[::7] = -100  # padding positions, torch's default ignore_index
    return [rng.normal(size=(30, 3)).astype(np.float32) * 2, labels], {}


def _label_smoothed(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    labels = _balanced(rng, 5, 20)
    targets = (np.eye(5)[labels] * 0.9 + 0.1 / 5).astype(np.float32)
    return [rng.normal(size=(20, 5)).astype(np.float32), targets], {}


def _teacher(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # distillation over a 1000-word vocabulary: the teacher's softmax saved in float32
    teacher = np.exp(_log_softmax(rng.normal(size=(16, 1000)) * 3)).astype(np.float32)
    return [rng.normal(size=(16, 1000)).astype(np.float32), teacher], {}


def _sequence(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    # a tagger's output already permuted to (N, C, T) with tags (N, T)
    return [rng.normal(size=(4, 6, 12)).astype(np.float32), rng.integers(0, 6, size=(4, 12))], {}


def _nll(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    labels = _balanced(rng, 4, 32)
    return [
        _log_softmax(_trained_logits(rng, labels, 4).astype(np.float64)).astype(np.float32),
        labels,
    ], {}


def _binary_logits(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    targets = (np.arange(32) % 2).astype(np.float32)
    logits = (rng.normal(size=32) + (targets * 2 - 1) * 1.5).astype(np.float32)
    return [logits, targets], {}


def _multilabel_logits(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    targets = (rng.random((32, 5)) < 0.4).astype(np.float32)
    targets[0] = 1.0  # every class has positives
    targets[1] = 0.0
    return [rng.normal(size=(32, 5)).astype(np.float32) * 2, targets], {}


def _multilabel_pos_weight(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    arrays, _ = _multilabel_logits(rng)
    return arrays, {"pos_weight": "[1.5, 1.5, 1.5, 1.5, 1.5]"}


def _multilabel_class_weight(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    arrays, _ = _multilabel_logits(rng)
    return arrays, {"weight": "[1, 2, 1, 0.5, 1]"}


def _multi_margin(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    labels = _balanced(rng, 4, 16)
    return [_trained_logits(rng, labels, 4), labels], {}


def _multilabel_margin(rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
    targets = np.full((8, 4), -1)
    for row in range(8):
        targets[row, :2] = rng.permutation(4)[:2]
    return [rng.normal(size=(8, 4)).astype(np.float32), targets], {}


CLEAN: dict[str, tuple[str, Make]] = {
    "trained-logits": ("cross-entropy", _trained),
    "small-magnitude-logits": ("cross-entropy", _small_logits),
    "unit-interval-logits-rows-sum-2": ("cross-entropy", _unit_logits_rows_sum_2),
    "log-softmax-to-cross-entropy": ("cross-entropy", _log_softmax_to_ce),
    "segmentation-void-255": ("cross-entropy", _segmentation),
    "segmentation-C==H==W": ("cross-entropy", _segmentation_square),
    "weighted-cross-entropy": ("cross-entropy", _weighted),
    "ignore-index-cross-entropy": ("cross-entropy", _ignored),
    "label-smoothed-targets": ("cross-entropy", _label_smoothed),
    "sequence-(N,C,T)": ("cross-entropy", _sequence),
    "distillation-teacher-1000-classes": ("cross-entropy", _teacher),
    "nll-on-log-softmax": ("nll", _nll),
    "binary-bce-logits": ("bce-logits", _binary_logits),
    "multilabel-bce-logits": ("bce-logits", _multilabel_logits),
    "multilabel-bce-logits-pos-weight": ("bce-logits", _multilabel_pos_weight),
    "multilabel-soft-margin-weight": ("multilabel-soft-margin", _multilabel_class_weight),
    "multi-margin": ("multi-margin", _multi_margin),
    "multilabel-margin": ("multilabel-margin", _multilabel_margin),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", list(CLEAN))
def test_clean_inputs_raise_no_warning_or_error(case: str, seed: int) -> None:
    loss, make = CLEAN[case]
    arrays, options = make(np.random.default_rng(seed))
    report = _evaluate(loss, arrays, **options)
    assert _alarms(report) == []
    assert report.value is not None and np.isfinite(report.value)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(16, 64),
    classes=st.integers(2, 20),
    half_width=st.floats(0.01, 0.5),
    seed=st.integers(0, 2**16),
)
def test_small_logits_never_look_like_probabilities(
    rows: int, classes: int, half_width: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-half_width, half_width, (rows, classes)).astype(np.float32)
    logits[0, 0] = -half_width  # at least one negative logit, as a real head produces
    report = _evaluate("cross-entropy", [logits, rng.integers(0, classes, rows)])
    assert "probabilities-as-logits" not in [f.name for f in report.findings]


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(16, 64),
    classes=st.integers(4, 20),
    seed=st.integers(0, 2**16),
)
def test_unit_interval_logits_with_many_classes_are_not_probabilities(
    rows: int, classes: int, seed: int
) -> None:
    # rows of C >= 4 uniform [0, 1] values sum to about C / 2 >= 2: nowhere near 1
    rng = np.random.default_rng(seed)
    report = _evaluate(
        "cross-entropy",
        [rng.random((rows, classes)).astype(np.float32), rng.integers(0, classes, rows)],
    )
    assert "probabilities-as-logits" not in [f.name for f in report.findings]


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 64),
    classes=st.integers(2, 30),
    scale=st.floats(0.1, 30),
    seed=st.integers(0, 2**16),
)
def test_log_softmax_output_is_always_valid_nll_input(
    rows: int, classes: int, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    log_probabilities = _log_softmax(rng.normal(size=(rows, classes)) * scale).astype(np.float32)
    report = _evaluate("nll", [log_probabilities, rng.integers(0, classes, rows)])
    names = [f.name for f in report.findings]
    assert "logits-to-nll" not in names and "probabilities-to-nll" not in names


# ---------------------------------------------------------------- realistic variation

# how a real classifier's scores look at different stages and after common transformations;
# each is [batch, classes] float64 before the dtype under test is applied
SCORE_STYLES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    # noise with the true class 2 ahead: a model that is mostly right
    "calibrated": lambda noise, one_hot: noise + 2 * one_hot,
    # an untrained head: every logit near 0
    "untrained": lambda noise, one_hot: noise * 0.01,
    # an overconfident model: |logit| ~ 30, still mostly right (confident scores with no skill
    # at all are misaligned-samples: confident predictions worse than the class prior)
    "overconfident": lambda noise, one_hot: np.clip((noise + 2 * one_hot) * 15, -40, 40),
    # temperature scaling with T = 0.1 and T = 5 (the latter squeezes logits into about [-1, 1])
    "temperature-0.1": lambda noise, one_hot: (noise + 2 * one_hot) / 0.1,
    "temperature-5": lambda noise, one_hot: (noise + 2 * one_hot) / 5,
    # scores after a ReLU: all >= 0, and in [0, 1] for a few rows by chance
    "post-relu": lambda noise, one_hot: np.abs(noise),
    # a small ReLU head: a row or two of C=2 scores in [0, 1] often sums to about 1 by chance
    "post-relu-small": lambda noise, one_hot: np.abs(noise) * 0.5,
}
# torch, PNG masks, CSV floats (text: np.float64 as read, no dtype of its own); int32 labels
# make torch raise, so they warn (test_conversion), and so do uint8 ones for multi-margin
LABEL_DTYPES = (np.int64, np.uint8, np.float64)


@pytest.mark.parametrize("classes", [2, 3, 10, 1000])
@pytest.mark.parametrize("batch", [1, 2, 3, 7, 512])
def test_realistic_scores_raise_nothing(batch: int, classes: int) -> None:
    rng = np.random.default_rng(batch * 1000 + classes)
    labels = rng.integers(0, classes, batch)
    noise = rng.normal(size=(batch, classes))
    one_hot = np.eye(classes)[labels]
    alarms = []
    for position, (style, make) in enumerate(SCORE_STYLES.items()):
        scores = make(noise, one_hot)
        label_dtype = LABEL_DTYPES[position % len(LABEL_DTYPES)]
        if label_dtype is np.uint8 and classes > 255:
            label_dtype = np.int64
        for float_dtype in (np.float32, np.float64, np.float16):
            for loss, prediction in (
                ("cross-entropy", scores),
                ("nll", _log_softmax(scores)),
                ("multi-margin", scores),
            ):
                accepted = np.int64 if loss == "multi-margin" else label_dtype
                report = _evaluate(
                    loss,
                    [prediction.astype(float_dtype), labels.astype(accepted)],
                    text_labels=label_dtype is np.float64,
                )
                # low-precision is the documented warning for every float16 input
                found = [a for a in _alarms(report) if a[0] != "low-precision"]
                alarms += [(style, float_dtype.__name__, loss, *a) for a in found]
    assert alarms == []


def _rounded_dirichlet(
    rng: np.random.Generator, rows: int, classes: int, places: int
) -> np.ndarray:
    return np.round(rng.dirichlet(np.ones(classes), rows), places)


SOFT_TARGETS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    # annotator votes saved with 2 places: 0.33 + 0.33 + 0.33 = 0.99
    "votes-2-places": lambda rng: np.full((8, 3), 0.33),
    "dirichlet-2-places": lambda rng: _rounded_dirichlet(rng, 32, 3, 2),
    "dirichlet-3-places-C10": lambda rng: _rounded_dirichlet(rng, 32, 10, 3),
    "dirichlet-4-places-C1000": lambda rng: _rounded_dirichlet(rng, 8, 1000, 4).astype(np.float32),
    "teacher-float16-C1000": lambda rng: np.exp(
        _log_softmax(rng.normal(size=(16, 1000)) * 3)
    ).astype(np.float16),
    "mixup-beta-0.4": lambda rng: _mixup(rng, 32, 10),
}


def _mixup(rng: np.random.Generator, rows: int, classes: int) -> np.ndarray:
    share = rng.beta(0.4, 0.4, (rows, 1))
    first, second = np.eye(classes)[rng.integers(0, classes, (2, rows))]
    return (share * first + (1 - share) * second).astype(np.float32)


@pytest.mark.parametrize("case", list(SOFT_TARGETS))
def test_soft_targets_as_saved_in_practice_raise_nothing(case: str) -> None:
    rng = np.random.default_rng(7)
    targets = SOFT_TARGETS[case](rng)
    logits = rng.normal(size=targets.shape).astype(np.float32)
    report = _evaluate("cross-entropy", [logits, targets])
    assert [a for a in _alarms(report) if a[0] != "low-precision"] == []


def test_get_dummies_bool_one_hot_warns_because_torch_refuses_it() -> None:
    # torch.tensor(pd.get_dummies(y).values) is a bool tensor: F.cross_entropy raises on it,
    # so this is no false alarm (SPEC: one-hot-target, a warning where torch raises)
    rng = np.random.default_rng(7)
    targets = np.eye(4, dtype=bool)[rng.integers(0, 4, 32)]
    logits = rng.normal(size=targets.shape).astype(np.float32)
    with pytest.raises(RuntimeError) as raised:
        F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets))
    report = _evaluate("cross-entropy", [logits, targets])
    assert [(name, str(raised.value) in message) for name, message in _alarms(report)] == [
        ("one-hot-target", True)
    ]


@pytest.mark.parametrize("float_dtype", [np.float32, np.float16, np.float64])
def test_volumetric_segmentation_raises_nothing(float_dtype: type) -> None:
    # (N, C, D, H, W) logits and a (N, D, H, W) uint8 mask with void 255 on one slice
    rng = np.random.default_rng(11)
    mask = rng.integers(0, 4, (2, 8, 16, 16)).astype(np.uint8)
    mask[:, :, 0, :] = 255
    logits = rng.normal(size=(2, 4, 8, 16, 16)) * 2
    for loss, prediction in (("cross-entropy", logits), ("nll", _log_softmax(logits))):
        report = _evaluate(loss, [prediction.astype(float_dtype), mask], ignore_index=255)
        assert [a for a in _alarms(report) if a[0] != "low-precision"] == []


@pytest.mark.parametrize("classes", [2, 3, 10, 1000])
def test_label_smoothing_with_absent_classes_raises_nothing(classes: int) -> None:
    # a batch of 7 rarely holds every class of 10 or 1000: absent classes are no alarm
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 7)
    report = _evaluate(
        "cross-entropy",
        [rng.normal(size=(7, classes)).astype(np.float32), labels],
        label_smoothing=0.1,
    )
    assert _alarms(report) == []
