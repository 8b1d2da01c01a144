"""Class findings: each fires on the mistake as it happens in training code (with its
severity, the numbers in the message, and the fix), and each has a near miss that must not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from evaluation import in_memory, torch_raises

from losscli import losses
from losscli.checks.balance import inverse_frequency_weights
from losscli.findings import Severity
from losscli.options import resolve
from losscli.pipeline import evaluate
from losscli.report import Report

RNG = np.random.default_rng(3)

OWNED = (
    "target-has-extra-dim",
    "class-dim-last",
    "class-index-out-of-range",
    "all-targets-ignored",
    "one-hot-target",
    "multilabel-target",
    "class-imbalance",
    "single-logit-cross-entropy",
    "unbatched-input",
    "weight-length-mismatch",
    "probabilities-as-logits",
    "logits-to-nll",
    "probabilities-to-nll",
    "soft-target-not-distribution",
)


def _logits(*shape: int, scale: float = 2.0) -> np.ndarray:
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def _softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return (shifted / shifted.sum(axis=axis, keepdims=True)).astype(np.float32)


def _log_softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    return np.log(_softmax(logits.astype(np.float64), axis)).astype(np.float32)


def _balanced_labels(classes: int, n: int) -> np.ndarray:
    return RNG.permutation(np.arange(n) % classes)


# how the class suite names its files in messages: "N=4 in pred.npy but N=3 in true.csv"
PRED_TRUE = ("pred.npy", "true.csv", "third.npy", "fourth.npy")


def _evaluate(loss: str, arrays: list[Any], **options: Any) -> Report:
    spec = losses.get(loss)
    assert spec is not None
    return evaluate(spec, in_memory(loss, arrays, PRED_TRUE), resolve(spec, options))


@dataclass(frozen=True)
class Fires:
    id: str
    loss: str
    arrays: list[Any]
    name: str
    severity: Severity
    quotes: tuple[str, ...]
    fix: str
    options: dict[str, Any] = field(default_factory=dict)


LABELS_6 = _balanced_labels(3, 6)
LOGITS_6 = _logits(6, 3)
LABELS_40 = np.array([0] * 30 + [1] * 8 + [2] * 2)  # counts 30 : 8 : 2
PROBABILITIES_256 = 1 / (1 + np.exp(-_logits(256, scale=3.0)))

FIRES = [
    # labels = torch.tensor(df[["label"]].values): one CSV column read as (N, 1)
    Fires(
        "ce-labels-(N,1)-from-csv",
        "cross-entropy",
        [LOGITS_6, LABELS_6[:, None]],
        "target-has-extra-dim",
        Severity.ERROR,
        ("target (6, 1) from true.csv", "(6,)", "multi-target not supported"),
        "target.squeeze(1).long()",
    ),
    # a mask saved with its channel: (N, 1, H, W)
    Fires(
        "ce-mask-with-channel",
        "cross-entropy",
        [_logits(2, 4, 5, 5), RNG.integers(0, 4, size=(2, 1, 5, 5))],
        "target-has-extra-dim",
        Severity.ERROR,
        ("(2, 1, 5, 5)", "(2, 5, 5)"),
        "target.squeeze(1).long()",
    ),
    Fires(
        "multi-margin-(N,1)",
        "multi-margin",
        [LOGITS_6, LABELS_6[:, None]],
        "target-has-extra-dim",
        Severity.ERROR,
        ("(6, 1)",),
        "target.squeeze(1)",
    ),
    # a TensorFlow/Keras-style channels-last segmentation head
    Fires(
        "ce-channels-last-segmentation",
        "cross-entropy",
        [_logits(2, 8, 8, 3), RNG.integers(0, 3, size=(2, 8, 8))],
        "class-dim-last",
        Severity.WARNING,
        ("(2, 8, 8, 3)", "last dimension (3)", "dimension 1 (8)"),
        "input.permute(0, 3, 1, 2)",
    ),
    # an RNN tagger's output (N, T, C) against tags (N, T)
    Fires(
        "ce-sequence-tagger",
        "cross-entropy",
        [_logits(4, 7, 5), RNG.integers(0, 5, size=(4, 7))],
        "class-dim-last",
        Severity.WARNING,
        ("(4, 7, 5)", "last dimension (5)"),
        "input.permute(0, 2, 1)",
    ),
    # labels read from a CSV as 1..C
    Fires(
        "ce-one-based-labels",
        "cross-entropy",
        [LOGITS_6, LABELS_6 + 1],
        "class-index-out-of-range",
        Severity.ERROR,
        ("2 of 6", "0..2", "C=3", "3 (2×)"),
        "target - 1",
    ),
    # segmentation mask with 255 for void pixels
    Fires(
        "ce-void-255",
        "cross-entropy",
        [_logits(1, 3, 4, 4), np.where(np.eye(4, dtype=bool), 255, 1)[None]],
        "class-index-out-of-range",
        Severity.ERROR,
        ("255 (4×)", "first at [0, 0, 0]"),
        "--ignore-index 255",
    ),
    # sequences padded with -1
    Fires(
        "nll-padding-minus-one",
        "nll",
        [_log_softmax(LOGITS_6), np.array([0, 1, 2, -1, -1, 0])],
        "class-index-out-of-range",
        Severity.ERROR,
        ("-1 (2×)", "ignore_index -100"),
        "--ignore-index -1",
    ),
    Fires(
        "multi-margin-padding",
        "multi-margin",
        [LOGITS_6, np.array([0, 1, 2, -1, 1, 0])],
        "class-index-out-of-range",
        Severity.ERROR,
        ("-1 (1×)",),
        "has no ignore_index",
    ),
    # a binary 0/255 PNG mask used as 2-class targets
    Fires(
        "ce-0-255-mask",
        "cross-entropy",
        [_logits(1, 2, 4, 4), (np.eye(4, dtype=np.uint8) * 255)[None]],
        "class-index-out-of-range",
        Severity.ERROR,
        ("255 (4×)",),
        "(target // 255).long()",
    ),
    Fires(
        "ce-too-few-outputs",
        "cross-entropy",
        [LOGITS_6, np.array([0, 1, 2, 5, 4, 1])],
        "class-index-out-of-range",
        Severity.ERROR,
        ("4 (1×)", "5 (1×)"),
        "6 classes",
    ),
    Fires(
        "multilabel-margin-index",
        "multilabel-margin",
        [LOGITS_6, np.array([[0, 5, -1]] * 6)],
        "class-index-out-of-range",
        Severity.ERROR,
        ("5 (6×)",),
        "pads with -1",
    ),
    # a random crop of pure void pixels
    Fires(
        "ce-crop-all-void",
        "cross-entropy",
        [_logits(1, 3, 4, 4), np.full((1, 4, 4), 255)],
        "all-targets-ignored",
        Severity.ERROR,
        ("all 16 targets", "ignore_index 255", "NaN"),
        "--ignore-index",
        {"ignore_index": 255},
    ),
    # target = F.one_hot(y, num_classes=3)
    Fires(
        "ce-F.one_hot",
        "cross-entropy",
        [LOGITS_6, np.eye(3, dtype=np.int64)[LABELS_6]],
        "one-hot-target",
        Severity.WARNING,  # torch refuses an int64 probability target
        (
            "(6, 3)",
            "one-hot",
            "6 rows",
            "Expected floating point type for target with class probabilities, got Long",
        ),
        "target.argmax(1)",
    ),
    # target = F.one_hot(y, num_classes=3).float(): torch reads it as probabilities
    Fires(
        "ce-F.one_hot-float",
        "cross-entropy",
        [LOGITS_6, np.eye(3, dtype=np.float32)[LABELS_6]],
        "one-hot-target",
        Severity.INFO,
        ("(6, 3)", "one-hot", "6 rows"),
        "target.argmax(1)",
    ),
    Fires(
        "ce-multi-hot",
        "cross-entropy",
        [LOGITS_6, np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1], [1, 1, 1], [1, 0, 0]])],
        "multilabel-target",
        Severity.WARNING,
        ("3 of 6 rows", "up to 3"),
        "F.binary_cross_entropy_with_logits(logits, target.float())",
    ),
    # MultiLabelMarginLoss given the multi-hot table MultiLabelSoftMarginLoss takes
    Fires(
        "multilabel-margin-multi-hot",
        "multilabel-margin",
        [LOGITS_6, np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]])],
        "multilabel-target",
        Severity.WARNING,
        ("(6, 3)", "holds only 0 and 1", "6 of 6 rows"),
        "use multilabel-soft-margin (F.multilabel_soft_margin_loss)",
    ),
    # sentiment labels -1/0/1 read from a CSV: -1 is a class, not padding
    Fires(
        "ce-signed-labels",
        "cross-entropy",
        [_logits(9, 3), np.array([-1, 0, 1] * 3)],
        "class-index-out-of-range",
        Severity.ERROR,
        ("-1 (3×)",),
        "target + 1",
    ),
    # a JPEG greyscale mask: edges blurred into in-between values
    Fires(
        "ce-greyscale-mask",
        "cross-entropy",
        [
            _logits(1, 2, 4, 4),
            np.array([[[0, 0, 0, 0], [0, 64, 192, 0], [0, 255, 255, 0], [0, 0, 0, 0]]]),
        ],
        "class-index-out-of-range",
        Severity.ERROR,
        ("64 (1×)", "192 (1×)", "255 (2×)"),
        "(target > 127).long()",
    ),
    # 1-based labels in a batch that happens to miss label 1: 2..C
    Fires(
        "ce-one-based-no-label-1",
        "cross-entropy",
        [LOGITS_6, np.array([2, 3, 2, 3, 2, 3])],
        "class-index-out-of-range",
        Severity.ERROR,
        ("3 (3×)",),
        "target - 1",
    ),
    # 47 three-way labels (-1/0/1) per sample given like a probability table
    Fires(
        "ce-labels-per-position-as-probabilities",
        "cross-entropy",
        [_logits(4, 5), np.array([[-1, 0, 1, 1, 0]] * 4, dtype=np.float32)],
        "soft-target-not-distribution",
        Severity.WARNING,
        ("entries are negative",),
        "logits shaped (4, 3, 5), and target (target + 1).long() shaped (4, 5)",
    ),
    Fires(
        "ce-imbalanced",
        "cross-entropy",
        [_logits(40, 3), LABELS_40],
        "class-imbalance",
        Severity.INFO,
        ("0: 30", "1: 8", "2: 2", "15×"),
        # inverse frequency normalised to mean 1: (1/30, 1/8, 1/2) / 0.2194 (see test below)
        "--weight '[0.1519,0.5696,2.278]'",
    ),
    Fires(
        "ce-imbalanced-absent-class",
        "cross-entropy",
        [_logits(40, 4), LABELS_40],
        "class-imbalance",
        Severity.INFO,
        ("absent: 3",),
        "--weight '[",
    ),
    Fires(
        "bce-logits-rare-positives",
        "bce-logits",
        [_logits(40), np.array([1.0] * 3 + [0.0] * 37)],
        "class-imbalance",
        Severity.INFO,
        ("3 positive vs 37 negative",),
        # pos_weight = negatives / positives = 37 / 3
        "--pos-weight '[12.33]'",
    ),
    Fires(
        "bce-logits-multilabel-columns",
        "bce-logits",
        [_logits(20, 2), np.stack([np.r_[np.ones(10), np.zeros(10)], np.r_[1.0, np.zeros(19)]], 1)],
        "class-imbalance",
        Severity.INFO,
        ("0: 10/20", "1: 1/20"),
        # column 0: 10 / 10 = 1; column 1: 19 / 1 = 19
        "--pos-weight '[1,19]'",
    ),
    Fires(
        "focal-rare-positives",
        "focal",
        [_logits(40), np.array([1.0] * 2 + [0.0] * 38)],
        "class-imbalance",
        Severity.INFO,
        ("2 positive vs 38 negative",),
        "--alpha 0.95",
    ),
    # nn.Linear(hidden, 1) for a binary task, with cross-entropy on float labels (N, 1)
    Fires(
        "ce-one-logit",
        "cross-entropy",
        [_logits(6, 1), LABELS_6[:, None].clip(0, 1).astype(np.float32)],
        "single-logit-cross-entropy",
        Severity.ERROR,
        ("(6, 1)", "one class column", "always 1"),
        "F.binary_cross_entropy_with_logits(input.squeeze(1), target.squeeze(1).float())",
    ),
    Fires(
        "ce-1d-scores",
        "cross-entropy",
        [_logits(6), LABELS_6.clip(0, 1)],
        "unbatched-input",
        Severity.WARNING,
        ("(6,)", "ONE sample with 6 classes", "holds 6 values"),
        "F.binary_cross_entropy_with_logits(input, target.float())",
    ),
    Fires(
        "ce-weight-too-short",
        "cross-entropy",
        [LOGITS_6, LABELS_6],
        "weight-length-mismatch",
        Severity.ERROR,
        ("2 value(s)", "C=3"),
        "3 values",
        {"weight": "[1, 2]"},
    ),
    Fires(
        "bce-logits-pos-weight-wrong-length",
        "bce-logits",
        [_logits(4, 3), (RNG.random((4, 3)) < 0.5).astype(np.float32)],
        "weight-length-mismatch",
        Severity.ERROR,
        ("--pos-weight (2,)", "C=3"),
        "3 values",
        {"pos_weight": "[1, 2]"},
    ),
    Fires(
        "multilabel-soft-margin-one-weight",
        "multilabel-soft-margin",
        [_logits(4, 3), (RNG.random((4, 3)) < 0.5).astype(np.float32)],
        "weight-length-mismatch",
        Severity.ERROR,
        ("1 value(s)", "C=3", "broadcasts it silently"),
        "3 values",
        {"weight": "[2]"},
    ),
    # probs = model(x).softmax(-1); F.cross_entropy(probs, y)
    Fires(
        "ce-softmax-twice",
        "cross-entropy",
        [_softmax(_logits(8, 4)), _balanced_labels(4, 8)],
        "probabilities-as-logits",
        Severity.WARNING,
        ("lies in [0, 1]", "median 1", "100% within 1e-3"),
        "before softmax",
    ),
    # softmax output saved with 3 decimal places: 4 rows of 10 classes, sums off by rounding only
    Fires(
        "ce-softmax-saved-3-places",
        "cross-entropy",
        [np.round(_softmax(_logits(4, 10)), 3), _balanced_labels(10, 4)],
        "probabilities-as-logits",
        Severity.WARNING,
        ("lies in [0, 1]",),
        "before softmax",
    ),
    # nn.Softmax(dim=0): columns, not rows, sum to 1
    Fires(
        "ce-softmax-over-batch",
        "cross-entropy",
        [_softmax(_logits(16, 5), axis=0), _balanced_labels(5, 16)],
        "probabilities-as-logits",
        Severity.WARNING,
        ("each of its columns sums to 1 over the 16 samples", "dimension 0 (the batch)"),
        "logits.softmax(dim=1)",
    ),
    Fires(
        "nll-log-softmax-over-batch",
        "nll",
        [_log_softmax(_logits(16, 5), axis=0), _balanced_labels(5, 16)],
        "logits-to-nll",
        Severity.ERROR,
        ("each column has logsumexp 0 over the 16 samples",),
        "nn.LogSoftmax(dim=1), not dim=0",
    ),
    # a hand-made probability table, rows a little off
    Fires(
        "ce-hand-made-probabilities",
        "cross-entropy",
        [
            np.array([[0.7, 0.2, 0.2], [0.1, 0.8, 0.1], [0.3, 0.3, 0.3], [0.5, 0.4, 0.0]]),
            [0, 1, 2, 0],
        ],
        "probabilities-as-logits",
        Severity.WARNING,
        ("median 0.95", "min 0.9", "max 1.1"),
        "F.nll_loss(torch.log(probs), target)",
    ),
    # probs = torch.sigmoid(model(x)); F.binary_cross_entropy_with_logits(probs, y), on a model
    # that learned anyway: its outputs are calibrated probabilities of the labels
    Fires(
        "bce-logits-sigmoid-twice",
        "bce-logits",
        [PROBABILITIES_256, (RNG.random(256) < PROBABILITIES_256).astype(np.float32)],
        "probabilities-as-logits",
        Severity.WARNING,
        ("all 256 values", "lie in [0, 1]", "read as probabilities they fit the targets better"),
        "F.binary_cross_entropy takes them as they are",
    ),
    # F.nll_loss(model(x), y) without log_softmax
    Fires(
        "nll-raw-logits",
        "nll",
        [LOGITS_6, LABELS_6],
        "logits-to-nll",
        Severity.ERROR,
        ("entries are positive", "median row logsumexp", "can go negative"),
        "F.log_softmax(logits, dim=1)",
    ),
    Fires(
        "nll-negative-scores",
        "nll",
        [-np.abs(LOGITS_6) - 1, LABELS_6],
        "logits-to-nll",
        Severity.ERROR,
        ("median row logsumexp",),
        "give the logits to cross-entropy",
    ),
    # F.nll_loss(model(x).softmax(1), y)
    Fires(
        "nll-probabilities",
        "nll",
        [_softmax(LOGITS_6), LABELS_6],
        "probabilities-to-nll",
        Severity.ERROR,
        ("every value in [0, 1]", "median 1"),
        "torch.log(probs)",
    ),
    # mixup done as y1 + y2 instead of lam * y1 + (1 - lam) * y2
    Fires(
        "ce-mixup-rows-sum-2",
        "cross-entropy",
        [_logits(6, 3), _softmax(_logits(6, 3)) + _softmax(_logits(6, 3))],
        "soft-target-not-distribution",
        Severity.WARNING,
        ("6 of 6 rows", "median 2"),
        "target / target.sum(1, keepdim=True)",
    ),
    Fires(
        "ce-soft-target-scores",
        "cross-entropy",
        [_logits(6, 3), _logits(6, 3)],
        "soft-target-not-distribution",
        Severity.WARNING,
        ("entries are negative",),
        "target.softmax(1)",
    ),
]


@pytest.mark.parametrize("case", FIRES, ids=[c.id for c in FIRES])
def test_finding_fires_with_severity_numbers_and_fix(case: Fires) -> None:
    report = _evaluate(case.loss, case.arrays, **case.options)
    found = [f for f in report.findings if f.name == case.name]
    assert len(found) == 1, [(f.name, f.message) for f in report.findings]
    assert found[0].severity is case.severity
    for quote in case.quotes:
        assert quote in found[0].message, found[0].message
    assert case.fix in found[0].fix, found[0].fix


@pytest.mark.parametrize("case", FIRES, ids=[c.id for c in FIRES])
def test_blocking_only_when_torch_cannot_compute(case: Fires) -> None:
    report = _evaluate(case.loss, case.arrays, **case.options)
    found = next(f for f in report.findings if f.name == case.name)
    if found.blocking:
        assert torch_raises(case.loss, case.arrays, **case.options)
        assert report.value is None
    elif not any(f.blocking for f in report.findings):
        # the converse: a finding that does not block is one torch computes through
        assert not torch_raises(case.loss, case.arrays, **case.options)


@dataclass(frozen=True)
class NearMiss:
    id: str
    loss: str
    arrays: list[Any]
    name: str  # must not fire
    options: dict[str, Any] = field(default_factory=dict)


NEAR_MISSES = [
    NearMiss("ce-labels-(N,)", "cross-entropy", [LOGITS_6, LABELS_6], "target-has-extra-dim"),
    NearMiss(
        "ce-(N,1)-probabilities-target",
        "cross-entropy",
        [_logits(6, 1), np.ones((6, 1), dtype=np.float32)],
        "target-has-extra-dim",
    ),
    NearMiss(
        "ce-real-segmentation",
        "cross-entropy",
        [_logits(2, 3, 8, 8), RNG.integers(0, 3, size=(2, 8, 8))],
        "class-dim-last",
    ),
    NearMiss(
        "ce-segmentation-C==H==W",
        "cross-entropy",
        [_logits(2, 4, 4, 4), RNG.integers(0, 4, size=(2, 4, 4))],
        "class-dim-last",
    ),
    NearMiss(
        "ce-last-dim-too-small-for-labels",
        "cross-entropy",
        [_logits(2, 8, 8, 3), RNG.integers(0, 8, size=(2, 8, 8))],
        "class-dim-last",
    ),
    NearMiss(
        "ce-void-ignored",
        "cross-entropy",
        [_logits(1, 3, 4, 4), np.where(np.eye(4, dtype=bool), 255, 1)[None]],
        "class-index-out-of-range",
        {"ignore_index": 255},
    ),
    NearMiss(
        "ce-default-ignore",
        "cross-entropy",
        [LOGITS_6, np.array([0, 1, 2, -100, 1, 0])],
        "class-index-out-of-range",
    ),
    NearMiss(
        "multilabel-margin-padding",
        "multilabel-margin",
        [LOGITS_6, np.array([[0, 2, -1]] * 6)],
        "class-index-out-of-range",
    ),
    NearMiss(
        "ce-one-labelled-pixel",
        "cross-entropy",
        [_logits(1, 3, 4, 4), np.where(np.arange(16).reshape(1, 4, 4) == 5, 2, 255)],
        "all-targets-ignored",
        {"ignore_index": 255},
    ),
    NearMiss(
        "ce-label-smoothed-target",
        "cross-entropy",
        [LOGITS_6, (np.eye(3)[LABELS_6] * 0.9 + 0.1 / 3).astype(np.float32)],
        "one-hot-target",
    ),
    NearMiss(
        "ce-one-hot-is-not-multilabel",
        "cross-entropy",
        [LOGITS_6, np.eye(3, dtype=np.float32)[LABELS_6]],
        "multilabel-target",
    ),
    # time-major (T, N, C) output: dimension 1 is the batch, so class statistics along it would
    # describe the wrong axis (batch-size-mismatch explains the shapes)
    NearMiss(
        "nll-time-major-no-class-range",
        "nll",
        [_log_softmax(_logits(12, 4, 20), axis=2), RNG.integers(0, 20, (4, 12))],
        "class-index-out-of-range",
    ),
    NearMiss(
        "nll-time-major-no-logsumexp-verdict",
        "nll",
        [_log_softmax(_logits(12, 4, 20), axis=2), RNG.integers(0, 20, (4, 12))],
        "logits-to-nll",
    ),
    # uniform [0, 1] scores: columns of 16 sum to about 8, never to 1
    NearMiss(
        "ce-unit-scores-columns-not-normalised",
        "cross-entropy",
        [RNG.random((16, 5)).astype(np.float32), _balanced_labels(5, 16)],
        "probabilities-as-logits",
    ),
    NearMiss(
        "multilabel-margin-indices-two-classes",
        "multilabel-margin",
        [_logits(4, 2), np.array([[0, 1], [1, 0], [1, -1], [0, -1]])],
        "multilabel-target",
    ),
    # a single row of post-ReLU scores that happens to lie in [0, 1] is not evidence of softmax
    NearMiss(
        "ce-one-row-positive-scores",
        "cross-entropy",
        [np.array([[0.4131, 0.5227]], dtype=np.float32), np.array([1])],
        "probabilities-as-logits",
    ),
    NearMiss(
        "ce-three-rows-temperature-scaled",
        "cross-entropy",
        [
            np.array([[0.0282, 0.7279], [0.4051, 0.0028], [0.6219, 0.2124]], dtype=np.float32),
            [1, 0, 0],
        ],
        "probabilities-as-logits",
    ),
    # soft labels rounded to 2 places on export: rows sum to 0.99
    NearMiss(
        "ce-soft-targets-rounded-2-places",
        "cross-entropy",
        [LOGITS_6, np.full((6, 3), 0.33)],
        "soft-target-not-distribution",
    ),
    NearMiss(
        "ce-balanced",
        "cross-entropy",
        [_logits(30, 3), _balanced_labels(3, 30)],
        "class-imbalance",
    ),
    NearMiss(
        "ce-9x-is-below-10x",
        "cross-entropy",
        [_logits(20, 2), np.array([0] * 18 + [1] * 2)],
        "class-imbalance",
    ),
    NearMiss(
        "bce-logits-all-negative-only-one-class",
        "bce-logits",
        [_logits(20), np.zeros(20, dtype=np.float32)],
        "class-imbalance",
    ),
    NearMiss(
        "dice-segmentation-mask",
        "dice",
        [_logits(1, 1, 8, 8), (np.arange(64).reshape(1, 1, 8, 8) < 2).astype(np.float32)],
        "class-imbalance",
    ),
    NearMiss(
        "ce-two-logits",
        "cross-entropy",
        [_logits(6, 2), LABELS_6.clip(0, 1)],
        "single-logit-cross-entropy",
    ),
    NearMiss(
        "ce-one-sample-(1,C)",
        "cross-entropy",
        [_logits(1, 3), np.array([2])],
        "unbatched-input",
    ),
    NearMiss(
        "ce-weight-per-class",
        "cross-entropy",
        [LOGITS_6, LABELS_6],
        "weight-length-mismatch",
        {"weight": "[0.5, 1, 2]"},
    ),
    NearMiss(
        "bce-logits-one-pos-weight",
        "bce-logits",
        [_logits(4, 3), (RNG.random((4, 3)) < 0.5).astype(np.float32)],
        "weight-length-mismatch",
        {"pos_weight": "[3]"},
    ),
    NearMiss(
        "bce-logits-pos-weight-per-class",
        "bce-logits",
        [_logits(4, 3), (RNG.random((4, 3)) < 0.5).astype(np.float32)],
        "weight-length-mismatch",
        {"pos_weight": "[3, 1, 2]"},
    ),
    # uniform [0, 1] scores with C=4: rows sum to about 2, not 1
    NearMiss(
        "ce-unit-scores-rows-sum-2",
        "cross-entropy",
        [RNG.random((32, 4)).astype(np.float32), _balanced_labels(4, 32)],
        "probabilities-as-logits",
    ),
    NearMiss(
        "ce-small-logits",
        "cross-entropy",
        [RNG.uniform(-0.5, 0.5, (16, 3)).astype(np.float32), _balanced_labels(3, 16)],
        "probabilities-as-logits",
    ),
    NearMiss(
        "bce-logits-7-values",
        "bce-logits",
        [RNG.random(7).astype(np.float32), np.array([0, 1, 0, 1, 0, 1, 1.0])],
        "probabilities-as-logits",
    ),
    NearMiss(
        "bce-logits-zero-init",
        "bce-logits",
        [np.zeros(16, dtype=np.float32), (np.arange(16) % 2).astype(np.float32)],
        "probabilities-as-logits",
    ),
    NearMiss("nll-log-softmax", "nll", [_log_softmax(LOGITS_6), LABELS_6], "logits-to-nll"),
    NearMiss(
        "nll-log-softmax-float16",
        "nll",
        [_log_softmax(_logits(32, 10)).astype(np.float16), _balanced_labels(10, 32)],
        "logits-to-nll",
    ),
    NearMiss(
        "nll-log-probabilities", "nll", [_log_softmax(LOGITS_6), LABELS_6], "probabilities-to-nll"
    ),
    NearMiss(
        "ce-label-smoothing-rows-sum-1",
        "cross-entropy",
        [LOGITS_6, (np.eye(3)[LABELS_6] * 0.9 + 0.1 / 3).astype(np.float32)],
        "soft-target-not-distribution",
    ),
]


@pytest.mark.parametrize("case", NEAR_MISSES, ids=[c.id for c in NEAR_MISSES])
def test_near_miss_does_not_fire(case: NearMiss) -> None:
    report = _evaluate(case.loss, case.arrays, **case.options)
    assert case.name not in [f.name for f in report.findings], [
        (f.name, f.message) for f in report.findings
    ]


def test_every_owned_finding_has_a_case_and_a_near_miss() -> None:
    assert {c.name for c in FIRES} == set(OWNED)
    assert {c.name for c in NEAR_MISSES} == set(OWNED)


def test_ready_weights_are_inverse_frequency_with_mean_one() -> None:
    counts = np.array([30.0, 8.0, 2.0])
    weights = inverse_frequency_weights(counts)
    assert weights.mean() == pytest.approx(1.0)
    inverse = 1 / counts
    assert weights == pytest.approx(inverse / inverse.mean())
    # an absent class weighs like the rarest present one
    assert inverse_frequency_weights(np.array([10.0, 0.0, 2.0]))[1] == pytest.approx(
        inverse_frequency_weights(np.array([10.0, 0.0, 2.0]))[2]
    )


def test_ready_weight_command_runs_and_changes_the_value() -> None:
    # the --weight printed by class-imbalance is accepted by compute as pasted
    logits = _logits(40, 3)
    report = _evaluate("cross-entropy", [logits, LABELS_40])
    imbalance = next(f for f in report.findings if f.name == "class-imbalance")
    weight = imbalance.fix.split("--weight '")[1].split("'")[0]
    weighted = _evaluate("cross-entropy", [logits, LABELS_40], weight=weight)
    assert weighted.value is not None and report.value is not None
    assert not any(f.name == "weight-length-mismatch" for f in weighted.findings)
    assert weighted.value != report.value


def test_one_based_fix_works_when_applied() -> None:
    report = _evaluate("cross-entropy", [LOGITS_6, LABELS_6 + 1])
    assert report.value is None
    fixed = _evaluate("cross-entropy", [LOGITS_6, LABELS_6 + 1 - 1])
    assert fixed.value is not None
    assert not any(f.severity is not Severity.INFO for f in fixed.findings)


def test_pasted_command_from_inline_inputs_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # inline arrays are written back out, so the verified fix's command runs as pasted
    import json
    import shlex

    from losscli.cli import main

    logits = "[[2.0,0.1,-1.0],[0.3,1.5,0.2],[1.0,0.0,2.5],[0.2,2.2,0.1]]"
    multi_hot = "[[1,1,0],[0,1,0],[1,0,1],[0,0,1]]"
    with pytest.raises(SystemExit):
        main(["debug", logits, multi_hot, "--loss", "cross-entropy", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    found = next(f for f in report["findings"] if f["name"] == "multilabel-target")
    command = next(f["command"] for f in found["fixes"] if "bce-logits" in f["command"])
    assert command.startswith("losscli compute bce-logits '[[2.0,0.1,-1.0]")
    with pytest.raises(SystemExit) as exit_info:
        main([*shlex.split(command)[1:], "--format", "json"])
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["loss"] == "bce-logits"


def _snippet(fix: str, start: str) -> str:
    """The code in ``fix`` that begins with ``start``, up to its balanced closing parenthesis."""
    begin = fix.index(start)
    depth = 0
    for position in range(begin, len(fix)):
        if fix[position] == "(":
            depth += 1
        elif fix[position] == ")":
            depth -= 1
            if depth == 0 and fix[position + 1 : position + 2] != ".":
                return fix[begin : position + 1]
    raise AssertionError(f"no balanced snippet from {start!r} in {fix!r}")


def test_pytorch_fixes_run_and_give_the_right_loss() -> None:
    # each fix's code, evaluated on the same tensors, gives what the correct call gives
    import torch
    import torch.nn.functional as F

    def fix_of(loss: str, arrays: list[Any], name: str) -> str:
        report = _evaluate(loss, arrays)
        return next(f.fix for f in report.findings if f.name == name)

    logits = _logits(6, 3)
    labels = _balanced_labels(3, 6)
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(labels))

    # target-has-extra-dim: the squeezed (N, 1) labels
    fix = fix_of("cross-entropy", [logits, labels[:, None]], "target-has-extra-dim")
    names = {"input": torch.tensor(logits), "target": torch.tensor(labels[:, None]), "F": F}
    squeezed = eval(_snippet(fix, "target.squeeze"), names)
    assert torch.equal(F.cross_entropy(names["input"], squeezed), expected)

    # class-dim-last: permuting channels-last logits gives torch's layout
    channels_last = _logits(2, 5, 5, 3)
    masks = RNG.integers(0, 3, size=(2, 5, 5))
    fix = fix_of("cross-entropy", [channels_last, masks], "class-dim-last")
    names = {"input": torch.tensor(channels_last)}
    permuted = eval(_snippet(fix, "input.permute"), names)
    reference = torch.tensor(channels_last).movedim(-1, 1)
    assert torch.equal(permuted, reference)
    F.cross_entropy(permuted, torch.tensor(masks))  # runs

    # logits-to-nll: log_softmax first gives cross-entropy's value
    fix = fix_of("nll", [logits, labels], "logits-to-nll")
    names = {"logits": torch.tensor(logits), "target": torch.tensor(labels), "F": F}
    assert torch.allclose(eval(_snippet(fix, "F.nll_loss"), names), expected)

    # probabilities-to-nll: log of softmax output gives cross-entropy's value
    probabilities = _softmax(logits)
    fix = fix_of("nll", [probabilities, labels], "probabilities-to-nll")
    names = {
        "probs": torch.tensor(probabilities),
        "target": torch.tensor(labels),
        "F": F,
        "torch": torch,
    }
    assert torch.allclose(eval(_snippet(fix, "F.nll_loss"), names), expected, atol=1e-6)

    # single-logit-cross-entropy: the bce-logits call runs on the (N, 1) logit and labels
    one_logit = _logits(6, 1)
    binary = labels.clip(0, 1)[:, None].astype(np.float32)
    fix = fix_of("cross-entropy", [one_logit, binary], "single-logit-cross-entropy")
    names = {"input": torch.tensor(one_logit), "target": torch.tensor(binary), "F": F}
    value = eval(_snippet(fix, "F.binary_cross_entropy_with_logits"), names)
    reference_bce = F.binary_cross_entropy_with_logits(
        torch.tensor(one_logit[:, 0]), torch.tensor(binary[:, 0])
    )
    assert torch.equal(value, reference_bce)
