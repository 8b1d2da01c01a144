"""A corpus of real training mistakes, judged the way the held-out corpus judges losscli.

Each case rebuilds the tensors of a mistake as it happens in training code (a half-trained
10-class CNN's logits on a batch of 64, VOC masks with the void label 255, IMDB sentiment
labels in -1/1, a regression head of shape (N, 1), ...), runs ``losscli debug --format json``
(``debug_runner.debug`` re-runs every verified fix's command and checks the value it
announced), and asserts:

- the mistake is caught: the finding expected, at its severity;
- the first fix whose ``verified.findings == []`` gives torch's value on the correctly
  prepared tensors, computed here with ``torch.nn.functional`` directly;
- no fix is confidently wrong: every verified fix that clears every alarm gives that value,
  where the intended correction is unambiguous.

Values are compared with ``==`` where the fix runs the same torch operations on the same
tensors. ``pytest.approx(rel=1e-6)`` is used where the fix legitimately reaches the correct
tensors by another float path (``input.log()`` of softmax probabilities instead of
log_softmax of the logits, ``logit(sigmoid(z))`` instead of ``z``); each such case says so.

The near misses are correct inputs, some unusual, where nothing at warning or above fires and
no fix is offered.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import Outcome, assert_fixes_hold, debug, run_json

RNG = np.random.default_rng(20260501)


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


# --- realistic tensors ------------------------------------------------------------------


def cnn_logits(labels: np.ndarray, classes: int, skill: float = 2.0) -> np.ndarray:
    """A half-trained classifier's logits: noise, with the true class pushed up by ``skill``."""
    logits = RNG.normal(0.0, 1.5, size=(labels.shape[0], classes)).astype(np.float32)
    logits[np.arange(labels.shape[0]), labels] += skill
    return logits


def cifar_batch(n: int = 64, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    labels = RNG.integers(0, classes, size=n).astype(np.int64)
    return cnn_logits(labels, classes), labels


def seg_batch(
    n: int = 2, classes: int = 21, size: int = 16, void: float = 0.08
) -> tuple[np.ndarray, np.ndarray]:
    """VOC-like masks (N, H, W) with 255 on object borders, and a segmentation net's logits."""
    mask = RNG.integers(0, classes, size=(n, size, size)).astype(np.int64)
    logits = RNG.normal(0.0, 1.0, size=(n, classes, size, size)).astype(np.float32)
    np.put_along_axis(
        logits, mask[:, None], np.take_along_axis(logits, mask[:, None], 1) + 2.0, axis=1
    )
    mask[RNG.random(mask.shape) < void] = 255
    return logits, mask


def unet_batch(n: int = 4, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A binary UNet's logits (N, 1, H, W) and its 0/1 float mask."""
    mask = (RNG.random((n, 1, size, size)) < 0.3).astype(np.float32)
    logits = (RNG.normal(0.0, 1.5, size=mask.shape) + 3.0 * (mask - 0.5)).astype(np.float32)
    return logits, mask


def binary_batch(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A sentiment classifier's single logit per review (N,) and its 0/1 float labels."""
    labels = (RNG.random(n) < 0.5).astype(np.float32)
    logits = (RNG.normal(0.0, 1.5, size=n) + 2.5 * (labels - 0.5)).astype(np.float32)
    return logits, labels


def housing(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A regression head's predictions (N,) and targets (N,) of median house values ($100k)."""
    target = RNG.gamma(4.0, 0.5, size=n).astype(np.float32)
    pred = (target + RNG.normal(0.0, 0.4, size=n)).astype(np.float32)
    return pred, target


def teacher_student(n: int = 32, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Knowledge distillation: the student's and the teacher's logits."""
    labels = RNG.integers(0, classes, size=n)
    return cnn_logits(labels, classes, 1.0), cnn_logits(labels, classes, 4.0)


def ctc_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A speech model's log-probs (T=50, N=4, C=20), padded targets and the two lengths."""
    t_len, n, c = 50, 4, 20
    logits = RNG.normal(size=(t_len, n, c)).astype(np.float32)
    log_probs = t(logits).log_softmax(2).numpy()
    target_lengths = np.array([12, 9, 15, 7], dtype=np.int64)
    targets = RNG.integers(1, c, size=(n, int(target_lengths.max()))).astype(np.int64)
    input_lengths = np.array([50, 44, 50, 38], dtype=np.int64)
    return log_probs, targets, input_lengths, target_lengths


def embeddings(n: int = 64, dim: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Siamese pairs: two embeddings and whether they match (0/1 as loaded from the CSV)."""
    same = (RNG.random(n) < 0.5).astype(np.float32)
    x1 = RNG.normal(size=(n, dim)).astype(np.float32)
    noise = RNG.normal(size=(n, dim)).astype(np.float32)
    x2 = np.where(same[:, None] == 1, x1 + 0.3 * noise, noise).astype(np.float32)
    return x1, x2, same


# --- the cases ----------------------------------------------------------------------------


@dataclass
class Case:
    """One mistake: the command's inputs, what must be found, and the correct value.

    Attributes:
        loss: the loss the user ran.
        inputs: the arrays in the order the user gave them.
        finding: the finding that names the mistake, and its severity.
        correct: torch's value on the correctly prepared tensors.
        options: the losscli options the user gave.
        exact: compare with ``==`` (else approx rel=1e-6, for a float path that differs).
        ambiguous: another clean fix with another value is a legitimate reading.
    """

    loss: str
    inputs: tuple[Any, ...]
    finding: str
    severity: str
    correct: float
    options: tuple[str, ...] = ()
    exact: bool = True
    ambiguous: bool = False
    marks: list[Any] = field(default_factory=list)


def _softmax_probs_into_ce() -> Case:
    logits, labels = cifar_batch()
    probs = t(logits).softmax(1).numpy()
    # the fix takes log of the probabilities: log_softmax(log(softmax(z))) = log_softmax(z)
    # up to float32 rounding
    return Case(
        "cross-entropy",
        (probs, labels),
        "probabilities-as-logits",
        "warning",
        F.cross_entropy(t(logits), t(labels)).item(),
        exact=False,
    )


def _nll_on_raw_logits() -> Case:
    logits, labels = cifar_batch()
    return Case(
        "nll",
        (logits, labels),
        "logits-to-nll",
        "error",
        F.cross_entropy(t(logits), t(labels)).item(),
        exact=False,  # log_softmax then nll, or cross-entropy: the same operations
    )


def _nll_on_softmax() -> Case:
    logits, labels = cifar_batch()
    probs = t(logits).softmax(1)
    return Case(
        "nll",
        (probs.numpy(), labels),
        "probabilities-to-nll",
        "error",
        F.nll_loss(probs.log(), t(labels)).item(),
    )


def _one_based_csv_labels() -> Case:
    logits, labels = cifar_batch()
    csv = "label\n" + "\n".join(str(int(v) + 1) for v in labels) + "\n"
    return Case(
        "cross-entropy",
        (logits, csv),
        "class-index-out-of-range",
        "error",
        F.cross_entropy(t(logits), t(labels)).item(),
    )


def _one_hot_long_into_ce() -> Case:
    logits, labels = cifar_batch()
    one_hot = np.eye(10, dtype=np.int64)[labels]
    return Case(
        "cross-entropy",
        (logits, one_hot),
        "one-hot-target",
        "warning",
        F.cross_entropy(t(logits), t(labels)).item(),
    )


def _labels_then_logits_ce() -> Case:
    logits, labels = cifar_batch()
    return Case(
        "cross-entropy",
        (labels, logits),
        "swapped-inputs",
        "error",
        F.cross_entropy(t(logits), t(labels)).item(),
    )


def _labels_then_logits_bce() -> Case:
    logits, labels = binary_batch()
    return Case(
        "bce-logits",
        (labels, logits),
        "swapped-inputs",
        "error",
        F.binary_cross_entropy_with_logits(t(logits), t(labels)).item(),
    )


def _ctc_lengths_swapped() -> Case:
    log_probs, targets, input_lengths, target_lengths = ctc_batch()
    return Case(
        "ctc",
        (log_probs, targets, target_lengths, input_lengths),
        "swapped-inputs",
        "error",
        F.ctc_loss(t(log_probs), t(targets), t(input_lengths), t(target_lengths)).item(),
    )


def _kl_probs_not_log() -> Case:
    student, teacher = teacher_student()
    s_probs = t(student).softmax(1)
    t_probs = t(teacher).softmax(1)
    # the fix takes the log of the probabilities the user passed
    return Case(
        "kl-div",
        (s_probs.numpy(), t_probs.numpy()),
        "kl-input-not-log",
        "error",
        F.kl_div(s_probs.log(), t_probs, reduction="batchmean").item(),
        options=("--reduction", "batchmean"),
    )


def _kl_teacher_student_swapped() -> Case:
    student, teacher = teacher_student()
    s_log = t(student).log_softmax(1)
    t_probs = t(teacher).softmax(1)
    return Case(
        "kl-div",
        (t_probs.numpy(), s_log.numpy()),
        "swapped-inputs",
        "error",
        F.kl_div(s_log, t_probs, reduction="batchmean").item(),
        options=("--reduction", "batchmean"),
    )


def _hinge_zero_one() -> Case:
    x1, x2, same = embeddings()
    distance = np.linalg.norm(x1 - x2, axis=1).astype(np.float32)
    return Case(
        "hinge-embedding",
        (distance, same),
        "sign-target-expected",
        "error",
        F.hinge_embedding_loss(t(distance), t(same * 2 - 1)).item(),
    )


def _margin_ranking_zero_one() -> Case:
    n = 64
    first_better = (RNG.random(n) < 0.5).astype(np.float32)
    s1 = RNG.normal(size=n).astype(np.float32)
    s2 = (s1 + np.where(first_better == 1, -0.8, 0.8) + RNG.normal(0, 0.5, n)).astype(np.float32)
    return Case(
        "margin-ranking",
        (s1, s2, first_better),
        "sign-target-expected",
        "error",
        F.margin_ranking_loss(t(s1), t(s2), t(first_better * 2 - 1)).item(),
    )


def _cosine_embedding_zero_one() -> Case:
    x1, x2, same = embeddings()
    return Case(
        "cosine-embedding",
        (x1, x2, same),
        "sign-target-expected",
        "error",
        F.cosine_embedding_loss(t(x1), t(x2), t(same * 2 - 1)).item(),
    )


def _poisson_rates_with_log_input() -> Case:
    rate = RNG.gamma(3.0, 2.0, size=200).astype(np.float32) + 0.5  # softplus head: counts/day
    counts = RNG.poisson(rate).astype(np.float32)
    return Case(
        "poisson-nll",
        (rate, counts),
        "poisson-log-input-mismatch",
        "warning",
        F.poisson_nll_loss(t(rate), t(counts), log_input=False).item(),
    )


def _gaussian_nll_std() -> Case:
    n = 200
    mu = RNG.normal(0.0, 2.0, size=n).astype(np.float32)
    std = RNG.uniform(0.5, 3.0, size=n).astype(np.float32)
    target = (mu + std * RNG.normal(size=n)).astype(np.float32)
    return Case(
        "gaussian-nll",
        (mu, target, std),
        "variance-miscalibrated",
        "warning",
        F.gaussian_nll_loss(t(mu), t(target), t(std * std)).item(),
    )


def _gaussian_nll_log_var() -> Case:
    n = 200
    mu = RNG.normal(0.0, 2.0, size=n).astype(np.float32)
    log_var = RNG.uniform(-2.0, 2.0, size=n).astype(np.float32)
    target = (mu + np.exp(0.5 * log_var) * RNG.normal(size=n)).astype(np.float32)
    return Case(
        "gaussian-nll",
        (mu, target, log_var),
        "nonpositive-variance",
        "error",
        F.gaussian_nll_loss(t(mu), t(target), t(log_var).exp()).item(),
    )


def _multilabel_into_ce() -> Case:
    n, c = 64, 20  # VOC image-level tags: several objects per image
    tags = (RNG.random((n, c)) < 0.15).astype(np.float32)
    tags[np.arange(n), RNG.integers(0, c, n)] = 1.0
    tags[: n // 2, 0] = 1.0
    tags[: n // 2, 1] = 1.0
    logits = (RNG.normal(size=(n, c)) + 3.0 * (tags - 0.5)).astype(np.float32)
    # multilabel-soft-margin is offered too: the same mean of per-class sigmoid losses,
    # averaged per sample first, so it agrees up to float32 rounding
    return Case(
        "cross-entropy",
        (logits, tags),
        "multilabel-target",
        "warning",
        F.binary_cross_entropy_with_logits(t(logits), t(tags)).item(),
        exact=False,
    )


def _class_dim_last_segmentation() -> Case:
    logits, mask = seg_batch(void=0.0)
    channels_last = np.ascontiguousarray(logits.transpose(0, 2, 3, 1))
    return Case(
        "cross-entropy",
        (channels_last, mask),
        "class-dim-last",
        "warning",
        F.cross_entropy(t(logits), t(mask)).item(),
    )


def _target_column_into_ce() -> Case:
    logits, labels = cifar_batch()
    return Case(
        "cross-entropy",
        (logits, labels[:, None]),
        "target-has-extra-dim",
        "error",
        F.cross_entropy(t(logits), t(labels)).item(),
    )


def _float_labels_into_ce() -> Case:
    logits, labels = cifar_batch()
    return Case(
        "cross-entropy",
        (logits, labels.astype(np.float32)),
        "float-class-target",
        "warning",
        F.cross_entropy(t(logits), t(labels)).item(),
    )


def _mask_0_255_into_bce_logits() -> Case:
    logits, mask = unet_batch()
    pixels = (mask * 255).astype(np.uint8)
    return Case(
        "bce-logits",
        (logits, pixels),
        "target-outside-unit-interval",
        "error",
        F.binary_cross_entropy_with_logits(t(logits), t(mask)).item(),
    )


def _voc_void_255() -> Case:
    logits, mask = seg_batch()
    return Case(
        "cross-entropy",
        (logits, mask),
        "class-index-out-of-range",
        "error",
        F.cross_entropy(t(logits), t(mask), ignore_index=255).item(),
    )


def _imdb_minus_one_labels() -> Case:
    logits, labels = binary_batch()
    signs = labels * 2 - 1
    return Case(
        "bce-logits",
        (logits, signs),
        "target-outside-unit-interval",
        "error",
        F.binary_cross_entropy_with_logits(t(logits), t(labels)).item(),
    )


def _regression_head_column() -> Case:
    pred, target = housing()
    return Case(
        "mse",
        (pred[:, None], target),
        "silent-broadcast",
        "error",
        F.mse_loss(t(pred), t(target)).item(),
    )


def _regression_target_column() -> Case:
    pred, target = housing()
    return Case(
        "l1",
        (pred, target[:, None]),
        "silent-broadcast",
        "error",
        F.l1_loss(t(pred), t(target)).item(),
    )


def _unet_sigmoid_into_dice() -> Case:
    logits, mask = unet_batch()
    probs = t(logits).sigmoid().numpy()
    # dice takes logits: the fix logit()s the probabilities back (float32 rounding)
    z = t(probs).logit()
    p = z.sigmoid().flatten(1)
    m = t(mask).flatten(1)
    dice = 1 - (2 * (p * m).sum(1) + 1e-6) / (p.sum(1) + m.sum(1) + 1e-6)
    return Case(
        "dice",
        (probs, mask),
        "probabilities-as-logits",
        "warning",
        dice.mean().item(),
        exact=False,
    )


def _unet_sigmoid_into_bce_logits() -> Case:
    logits, mask = unet_batch()
    probs = t(logits).sigmoid()
    # bce on the probabilities is what the user meant; bce_with_logits on the logits agrees
    # up to float32 rounding
    return Case(
        "bce-logits",
        (probs.numpy(), mask),
        "probabilities-as-logits",
        "warning",
        F.binary_cross_entropy(probs, t(mask)).item(),
        exact=False,
    )


def _tanh_into_bce() -> Case:
    logits, labels = binary_batch()
    out = np.tanh(logits).astype(np.float32)
    return Case(
        "bce",
        (out, labels),
        "input-outside-unit-interval",
        "error",
        F.binary_cross_entropy((t(out) + 1) / 2, t(labels)).item(),
        exact=False,
    )


def _raw_logits_into_bce() -> Case:
    logits, labels = binary_batch()
    return Case(
        "bce",
        (logits, labels),
        "input-outside-unit-interval",
        "error",
        F.binary_cross_entropy_with_logits(t(logits), t(labels)).item(),
    )


def _focal_on_probabilities() -> Case:
    logits, mask = unet_batch()
    probs = t(logits).sigmoid()
    z = probs.logit()  # the fix maps back with logit(): float32 rounding
    p = z.sigmoid()
    m = t(mask)
    ce = F.binary_cross_entropy_with_logits(z, m, reduction="none")
    p_t = p * m + (1 - p) * (1 - m)
    loss = (0.25 * m + 0.75 * (1 - m)) * ce * (1 - p_t) ** 2
    return Case(
        "focal",
        (probs.numpy(), mask),
        "probabilities-as-logits",
        "warning",
        loss.mean().item(),
        exact=False,
    )


def _single_logit_ce() -> Case:
    logits, labels = binary_batch()
    return Case(
        "cross-entropy",
        (logits[:, None], labels.astype(np.int64)),
        "single-logit-cross-entropy",
        "error",
        F.binary_cross_entropy_with_logits(t(logits), t(labels)).item(),
    )


def _lm_padding_not_ignored() -> Case:
    n, steps, vocab = 8, 24, 50
    lengths = RNG.integers(8, steps, size=n)
    tokens = RNG.integers(1, vocab, size=(n, steps)).astype(np.int64)
    for row, length in enumerate(lengths):
        tokens[row, length:] = 0  # <pad> = 0
    logits = RNG.normal(size=(n, vocab, steps)).astype(np.float32)
    return Case(
        "cross-entropy",
        (logits, tokens),
        "padding-not-ignored",
        "warning",
        F.cross_entropy(t(logits), t(tokens), ignore_index=0).item(),
    )


def _lm_logits_time_major_classes_last() -> Case:
    n, steps, vocab = 8, 24, 50
    tokens = RNG.integers(0, vocab, size=(n, steps)).astype(np.int64)
    logits = RNG.normal(size=(n, steps, vocab)).astype(np.float32)  # (N, T, V) from a Linear
    return Case(
        "cross-entropy",
        (logits, tokens),
        "class-dim-last",
        "warning",
        F.cross_entropy(t(logits).permute(0, 2, 1), t(tokens)).item(),
    )


def _kl_mean_reduction() -> Case:
    student, teacher = teacher_student()
    s_log = t(student).log_softmax(1)
    t_probs = t(teacher).softmax(1)
    return Case(
        "kl-div",
        (s_log.numpy(), t_probs.numpy()),
        "kl-mean-reduction",
        "warning",
        F.kl_div(s_log, t_probs, reduction="batchmean").item(),
    )


def _soft_targets_teacher_logits() -> Case:
    student, teacher = teacher_student()
    # the teacher's logits passed as soft targets, softmax forgotten
    return Case(
        "cross-entropy",
        (student, teacher),
        "soft-target-not-distribution",
        "warning",
        F.cross_entropy(t(student), t(teacher).softmax(1)).item(),
    )


def _multi_margin_one_based() -> Case:
    logits, labels = cifar_batch()
    return Case(
        "multi-margin",
        (logits, labels + 1),
        "class-index-out-of-range",
        "error",
        F.multi_margin_loss(t(logits), t(labels)).item(),
    )


def _nll_one_based_log_probs() -> Case:
    logits, labels = cifar_batch()
    log_probs = t(logits).log_softmax(1)
    return Case(
        "nll",
        (log_probs.numpy(), labels + 1),
        "class-index-out-of-range",
        "error",
        F.nll_loss(log_probs, t(labels)).item(),
    )


def _bce_probs_with_0_255_mask() -> Case:
    logits, mask = unet_batch()
    probs = t(logits).sigmoid()
    return Case(
        "bce",
        (probs.numpy(), (mask * 255).astype(np.float32)),
        "target-outside-unit-interval",
        "error",
        F.binary_cross_entropy(probs, t(mask)).item(),
    )


def _soft_margin_zero_one() -> Case:
    logits, labels = binary_batch()
    return Case(
        "soft-margin",
        (logits, labels),
        "sign-target-expected",
        "error",
        F.soft_margin_loss(t(logits), t(labels * 2 - 1)).item(),
    )


def _ce_labels_minus_one_padding() -> Case:
    """Token labels padded with -1 (a collate_fn's pad value) where torch expects -100."""
    n, steps, vocab = 8, 24, 50
    lengths = RNG.integers(8, steps, size=n)
    tokens = RNG.integers(0, vocab, size=(n, steps)).astype(np.int64)
    for row, length in enumerate(lengths):
        tokens[row, length:] = -1
    logits = RNG.normal(size=(n, vocab, steps)).astype(np.float32)
    return Case(
        "cross-entropy",
        (logits, tokens),
        "class-index-out-of-range",
        "error",
        F.cross_entropy(t(logits), t(tokens), ignore_index=-1).item(),
    )


CASES: dict[str, Callable[[], Case]] = {
    "softmax-probs-into-ce": _softmax_probs_into_ce,
    "nll-on-raw-logits": _nll_on_raw_logits,
    "nll-on-softmax": _nll_on_softmax,
    "one-based-csv-labels": _one_based_csv_labels,
    "one-hot-long-into-ce": _one_hot_long_into_ce,
    "labels-then-logits-ce": _labels_then_logits_ce,
    "labels-then-logits-bce": _labels_then_logits_bce,
    "ctc-lengths-swapped": _ctc_lengths_swapped,
    "kl-probs-not-log": _kl_probs_not_log,
    "kl-teacher-student-swapped": _kl_teacher_student_swapped,
    "hinge-zero-one": _hinge_zero_one,
    "margin-ranking-zero-one": _margin_ranking_zero_one,
    "cosine-embedding-zero-one": _cosine_embedding_zero_one,
    "poisson-rates-with-log-input": _poisson_rates_with_log_input,
    "gaussian-nll-std": _gaussian_nll_std,
    "gaussian-nll-log-var": _gaussian_nll_log_var,
    "multilabel-into-ce": _multilabel_into_ce,
    "class-dim-last-segmentation": _class_dim_last_segmentation,
    "target-column-into-ce": _target_column_into_ce,
    "float-labels-into-ce": _float_labels_into_ce,
    "mask-0-255-into-bce-logits": _mask_0_255_into_bce_logits,
    "voc-void-255": _voc_void_255,
    "imdb-minus-one-labels": _imdb_minus_one_labels,
    "regression-head-column": _regression_head_column,
    "regression-target-column": _regression_target_column,
    "unet-sigmoid-into-dice": _unet_sigmoid_into_dice,
    "unet-sigmoid-into-bce-logits": _unet_sigmoid_into_bce_logits,
    "tanh-into-bce": _tanh_into_bce,
    "raw-logits-into-bce": _raw_logits_into_bce,
    "focal-on-probabilities": _focal_on_probabilities,
    "single-logit-ce": _single_logit_ce,
    "lm-padding-not-ignored": _lm_padding_not_ignored,
    "lm-logits-classes-last": _lm_logits_time_major_classes_last,
    "kl-mean-reduction": _kl_mean_reduction,
    "soft-targets-teacher-logits": _soft_targets_teacher_logits,
    "multi-margin-one-based": _multi_margin_one_based,
    "nll-one-based-log-probs": _nll_one_based_log_probs,
    "bce-probs-0-255-mask": _bce_probs_with_0_255_mask,
    "soft-margin-zero-one": _soft_margin_zero_one,
    "ce-labels-minus-one-padding": _ce_labels_minus_one_padding,
}


def clean_fixes(outcome: Outcome) -> list[dict[str, Any]]:
    """Every verified fix that clears every warning and error, in report order."""
    return [
        fix
        for item in outcome.findings
        for fix in item.get("fixes", [])
        if fix.get("verified") is not None and fix["verified"]["findings"] == []
    ]


def matches(value: float | None, case: Case) -> bool:
    if value is None:
        return False
    if case.exact:
        return value == case.correct
    return value == pytest.approx(case.correct, rel=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_mistake_is_caught_and_fixed(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]()
    outcome = debug(tmp_path, capsys, case.loss, *case.inputs, options=case.options)
    found = [f for f in outcome.findings if f["name"] == case.finding]
    assert found, outcome.summary()
    assert found[0]["severity"] == case.severity, outcome.summary()
    clean = clean_fixes(outcome)
    assert clean, ("no fix clears every alarm", outcome.summary())
    first = clean[0]
    assert matches(first["verified"]["value"], case), (
        first["command"],
        first["verified"]["value"],
        case.correct,
        [f"{f.get('code')} -> {f['verified']['value']}" for f in clean],
    )
    if not case.ambiguous:
        wrong = [f for f in clean if not matches(f["verified"]["value"], case)]
        assert not wrong, [(f.get("code"), f["command"], f["verified"]["value"]) for f in wrong]


# --- near misses: correct inputs, nothing fires ------------------------------------------


def _nm_cifar() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, labels = cifar_batch()
    return "cross-entropy", (logits, labels), ()


def _nm_label_smoothing() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, labels = cifar_batch()
    return "cross-entropy", (logits, labels), ("--label-smoothing", "0.1")


def _nm_voc_with_ignore_index() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, mask = seg_batch()
    return "cross-entropy", (logits, mask), ("--ignore-index", "255")


def _nm_smoothed_binary_targets() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, labels = binary_batch()
    return "bce-logits", (logits, labels * 0.9 + 0.05), ()


def _nm_mixup_targets() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, labels = cifar_batch()
    lam = 0.7
    perm = RNG.permutation(labels.shape[0])
    soft = (lam * np.eye(10)[labels] + (1 - lam) * np.eye(10)[labels[perm]]).astype(np.float32)
    return "cross-entropy", (logits, soft), ()


def _nm_hinge_signs() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    x1, x2, same = embeddings()
    distance = np.linalg.norm(x1 - x2, axis=1).astype(np.float32)
    return "hinge-embedding", (distance, same * 2 - 1), ()


def _nm_nll_log_softmax() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, labels = cifar_batch()
    return "nll", (t(logits).log_softmax(1).numpy(), labels), ()


def _nm_regression_negative() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    target = RNG.normal(0.0, 1.0, size=(96, 3)).astype(np.float32)  # standardized, 3 outputs
    pred = (target + RNG.normal(0.0, 0.5, size=target.shape)).astype(np.float32)
    return "smooth-l1", (pred, target), ()


def _nm_ctc() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    return "ctc", ctc_batch(), ()


def _nm_kl_log_target() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    student, teacher = teacher_student()
    return (
        "kl-div",
        (t(student).log_softmax(1).numpy(), t(teacher).log_softmax(1).numpy()),
        ("--reduction", "batchmean", "--log-target"),
    )


def _nm_poisson_log_rates() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    rate = RNG.gamma(3.0, 2.0, size=200) + 0.5
    counts = RNG.poisson(rate).astype(np.float32)
    return "poisson-nll", (np.log(rate).astype(np.float32), counts), ()


def _nm_gaussian_var() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    n = 200
    mu = RNG.normal(0.0, 2.0, size=n).astype(np.float32)
    var = RNG.uniform(0.25, 9.0, size=n).astype(np.float32)
    target = (mu + np.sqrt(var) * RNG.normal(size=n)).astype(np.float32)
    return "gaussian-nll", (mu, target, var), ()


def _nm_unet_logits_bce() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, mask = unet_batch()
    return "bce-logits", (logits, mask), ()


def _nm_ranking_signs() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    n = 64
    y = np.where(RNG.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    s1 = RNG.normal(size=n).astype(np.float32)
    s2 = (s1 - 0.8 * y + RNG.normal(0, 0.5, n)).astype(np.float32)
    return "margin-ranking", (s1, s2, y), ()


def _nm_confident_bce_probs() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    logits, labels = binary_batch()
    return "bce", (t(logits).sigmoid().numpy(), labels), ()


def _nm_gaussian_std_squared() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    case = _gaussian_nll_std()
    mu, target, std = case.inputs
    return "gaussian-nll", (mu, target, std * std), ()


def _nm_lm_padding_ignored() -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    case = _lm_padding_not_ignored()
    return "cross-entropy", case.inputs, ("--ignore-index", "0")


NEAR_MISSES: dict[str, Callable[[], tuple[str, tuple[Any, ...], tuple[str, ...]]]] = {
    "cifar-logits": _nm_cifar,
    "label-smoothing": _nm_label_smoothing,
    "voc-with-ignore-index": _nm_voc_with_ignore_index,
    "smoothed-binary-targets": _nm_smoothed_binary_targets,
    "mixup-targets": _nm_mixup_targets,
    "hinge-signs": _nm_hinge_signs,
    "nll-log-softmax": _nm_nll_log_softmax,
    "regression-standardized": _nm_regression_negative,
    "ctc": _nm_ctc,
    "kl-log-target": _nm_kl_log_target,
    "poisson-log-rates": _nm_poisson_log_rates,
    "gaussian-var": _nm_gaussian_var,
    "unet-logits-bce": _nm_unet_logits_bce,
    "ranking-signs": _nm_ranking_signs,
    "bce-probs": _nm_confident_bce_probs,
    "gaussian-nll-std-squared": _nm_gaussian_std_squared,
    "lm-padding-ignored": _nm_lm_padding_ignored,
}


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_near_miss_is_quiet(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loss, inputs, options = NEAR_MISSES[name]()
    outcome = debug(tmp_path, capsys, loss, *inputs, options=options)
    assert outcome.code == 0, outcome.alarm_lines()
    assert not outcome.alarms(), outcome.alarm_lines()
    assert not [fix for item in outcome.findings for fix in item.get("fixes", [])], (
        outcome.summary()
    )


# --- without --loss: the recommended command ---------------------------------------------


def _save(tmp_path: Path, **arrays: np.ndarray) -> list[str]:
    paths = []
    for name, array in arrays.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        paths.append(str(path))
    return paths


def _recommended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], paths: list[str]
) -> dict[str, Any]:
    outcome = run_json(capsys, ["debug", *paths])
    assert_fixes_hold(capsys, outcome)
    recommended = outcome.report["recommended"]
    assert recommended is not None, outcome.summary()
    words = shlex.split(recommended["command"])
    rerun = run_json(capsys, words[1:])
    assert rerun.report["value"] == recommended["verified"]["value"], recommended
    assert not rerun.alarms(), (recommended, rerun.alarm_lines())
    return dict(recommended)


def test_inferred_softmax_probs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = cifar_batch()
    probs = t(logits).softmax(1)
    recommended = _recommended(tmp_path, capsys, _save(tmp_path, probs=probs.numpy(), y=labels))
    # log of the probabilities, then nll: log_softmax(z) up to float32 rounding
    assert recommended["verified"]["value"] == pytest.approx(
        F.cross_entropy(t(logits), t(labels)).item(), rel=1e-6
    )


def test_inferred_y_true_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = cifar_batch()
    recommended = _recommended(tmp_path, capsys, _save(tmp_path, y_true=labels, y_pred=logits))
    assert recommended["loss"] == "cross-entropy"
    assert recommended["verified"]["value"] == F.cross_entropy(t(logits), t(labels)).item()


def test_inferred_one_based_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = cifar_batch()
    recommended = _recommended(tmp_path, capsys, _save(tmp_path, logits=logits, y=labels + 1))
    assert recommended["verified"]["value"] == F.cross_entropy(t(logits), t(labels)).item()


def test_inferred_regression_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred, target = housing()
    recommended = _recommended(tmp_path, capsys, _save(tmp_path, pred=pred[:, None], y=target))
    assert recommended["loss"] == "mse"
    assert recommended["verified"]["value"] == F.mse_loss(t(pred), t(target)).item()


def test_inferred_binary_minus_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = binary_batch()
    recommended = _recommended(tmp_path, capsys, _save(tmp_path, logits=logits, y=labels * 2 - 1))
    # soft-margin on the -1/1 labels is log(1 + exp(-y x)): bce-logits on (y + 1) / 2, the
    # same value up to float32 rounding
    assert recommended["loss"] in ("bce-logits", "soft-margin")
    assert recommended["verified"]["value"] == pytest.approx(
        F.binary_cross_entropy_with_logits(t(logits), t(labels)).item(), rel=1e-6
    )


def test_inferred_multilabel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = _multilabel_into_ce()
    logits, tags = case.inputs
    recommended = _recommended(tmp_path, capsys, _save(tmp_path, logits=logits, tags=tags))
    assert recommended["loss"] in ("bce-logits", "multilabel-soft-margin")
    if recommended["loss"] == "bce-logits":
        assert recommended["verified"]["value"] == case.correct
