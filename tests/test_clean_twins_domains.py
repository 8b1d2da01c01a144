"""Clean twins of tests/test_real_mistakes_domains.py: the corrected code's tensors.

Each case is the fix the thread arrived at, with the same shapes and scales as the mistake.
Through the real CLI (`losscli debug --format json`) it must raise no warning and no error
(info is fine) and exit 0; the value is checked against torch where it is cheap to do so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import debug_runner
import numpy as np
import pytest
import torch
import torch.nn.functional as F

RNG = np.random.default_rng(20261124)


def debug(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    loss: str,
    *arrays: np.ndarray | torch.Tensor,
    options: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run `losscli debug` on the arrays; assert exit 0 and no warning/error; the report."""
    outcome = debug_runner.debug(tmp_path, capsys, loss, *arrays, options=options)
    assert not outcome.alarm_lines(), outcome.alarm_lines()
    assert outcome.code == 0
    return outcome.report


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def log_softmax(values: np.ndarray, axis: int) -> np.ndarray:
    shifted = values - values.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(values: np.ndarray, axis: int) -> np.ndarray:
    return np.exp(log_softmax(values, axis))


# https://github.com/pytorch/pytorch/issues/1010: the fc output through a sigmoid into BCELoss,
# and the same logits into BCEWithLogitsLoss
def test_fc_layer_output_through_sigmoid_or_with_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(scale=2.0, size=(64, 1)).astype(np.float32)
    labels = (RNG.random((64, 1)) < 0.4).astype(np.float32)
    report = debug(tmp_path, capsys, "bce", sigmoid(logits).astype(np.float32), labels)
    expected = F.binary_cross_entropy_with_logits(
        torch.from_numpy(logits), torch.from_numpy(labels)
    )
    assert report["value"] == pytest.approx(float(expected), rel=1e-5)
    report = debug(tmp_path, capsys, "bce-logits", logits, labels)
    assert report["value"] == pytest.approx(float(expected), rel=1e-6)


# https://github.com/ray-project/ray/issues/17117: the regression dataset with a regression loss
def test_linear_regression_dataset_with_mse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.arange(0, 10, 10 / 32, dtype=np.float32).reshape(32, 1)
    debug(
        tmp_path, capsys, "mse", (0.4 * x - 0.3).astype(np.float32), (2 * x + 5).astype(np.float32)
    )


# https://github.com/milesial/Pytorch-UNet/issues/176: raw logits of the last conv into
# BCEWithLogitsLoss, sparse foreground
def test_segmentation_logits_with_bce_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(loc=-2.0, scale=3.0, size=(4, 1, 32, 32)).astype(np.float32)
    masks = (RNG.random((4, 1, 32, 32)) < 0.1).astype(np.float32)
    debug(tmp_path, capsys, "bce-logits", logits, masks)


# https://github.com/milesial/Pytorch-UNet/issues/78 and
# https://github.com/MontaEllis/Pytorch-Medical-Segmentation/issues/8: the PNG mask divided by 255
def test_png_mask_divided_by_255(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mask = ((RNG.random((2, 1, 64, 64)) < 0.3) * 255).astype(np.uint8)
    scaled = mask.astype(np.float32) / 255
    logits = RNG.normal(size=(2, 1, 64, 64)).astype(np.float32)
    debug(tmp_path, capsys, "bce", sigmoid(logits).astype(np.float32), scaled)
    debug(tmp_path, capsys, "bce-logits", logits, scaled)
    debug(tmp_path, capsys, "dice", logits, scaled)


# https://github.com/bigmb/Unet-Segmentation-Pytorch-Nest-of-Unets/issues/18: the image is
# normalised, the mask is left as 0/1 (a bool mask, as torchvision's to_tensor > 0.5 gives)
def test_unnormalised_bool_mask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = RNG.normal(size=(4, 1, 32, 32)).astype(np.float32)
    debug(tmp_path, capsys, "bce-logits", logits, RNG.random((4, 1, 32, 32)) < 0.3)


# https://github.com/pytorch/pytorch/issues/45373: real_label = 1.0 (float labels), and the
# discriminator's output after its Sigmoid
def test_dcgan_float_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = sigmoid(RNG.normal(size=128)).astype(np.float32)
    for label in (1.0, 0.0):
        debug(tmp_path, capsys, "bce", output, np.full(128, label, dtype=np.float32))


# https://github.com/pytorch/pytorch/issues/4867: confident but not saturated probabilities
# (clamped to [1e-7, 1 - 1e-7] as many training scripts do)
def test_confident_probabilities_clamped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probabilities = np.clip(sigmoid(RNG.normal(scale=12, size=256)), 1e-7, 1 - 1e-7)
    labels = (probabilities > 0.5).astype(np.float64)
    labels[:8] = 1 - labels[:8]  # a few confident mistakes
    debug(tmp_path, capsys, "bce", probabilities, labels, options=("--dtype", "float64"))


# https://github.com/seathiefwang/RankPose/issues/4: labels mapped to {-1, 1}
def test_margin_ranking_with_sign_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x1, x2 = RNG.normal(size=64).astype(np.float32), RNG.normal(size=64).astype(np.float32)
    labels = (x1 > x2).astype(np.int64) * 2 - 1
    debug(tmp_path, capsys, "margin-ranking", x1, x2, labels)
    debug(tmp_path, capsys, "margin-ranking", x1, x2, labels.astype(np.float32))


# https://github.com/huggingface/sentence-transformers/issues/622: pairs labelled -1/1
def test_cosine_embedding_with_sign_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    u = RNG.normal(size=(32, 768)).astype(np.float32)
    v = (u + RNG.normal(scale=2.0, size=(32, 768))).astype(np.float32)
    labels = RNG.choice([-1.0, 1.0], size=32).astype(np.float32)
    debug(tmp_path, capsys, "cosine-embedding", u, v, labels, options=("--margin", "0.2"))


# https://github.com/pytorch/pytorch/issues/22965: HingeEmbeddingLoss on pairwise L1 distances
def test_hinge_embedding_on_distances(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = RNG.normal(size=(64, 16)), RNG.normal(size=(64, 16))
    distances = np.abs(a - b).sum(axis=1).astype(np.float32)  # F.pairwise_distance(a, b, p=1)
    y = RNG.choice([-1, 1], size=64)
    debug(tmp_path, capsys, "hinge-embedding", distances, y, options=("--margin", "20"))


# https://discuss.pytorch.org/t/kullback-leibler-divergence-loss-function-giving-negative-values/763:
# log_softmax output, reduction batchmean
def test_kl_div_on_log_softmax_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = log_softmax(RNG.normal(size=(4, 10)), axis=1).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[RNG.integers(0, 10, size=4)]
    debug(tmp_path, capsys, "kl-div", outputs, labels, options=("--reduction", "batchmean"))


# https://discuss.pytorch.org/t/negative-values-in-unreduced-kl-div-result/93102: unreduced
# kl_div terms are negative for some classes, and that is correct (their sum is not)
def test_unreduced_kl_div_with_negative_terms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = log_softmax(RNG.normal(size=(1, 3)), axis=1).astype(np.float32)
    b = softmax(RNG.normal(size=(1, 3)), axis=1).astype(np.float32)
    terms = F.kl_div(torch.from_numpy(a), torch.from_numpy(b), reduction="none")
    assert (terms < 0).any()  # what the poster saw
    debug(tmp_path, capsys, "kl-div", a, b, options=("--reduction", "none"))
    debug(tmp_path, capsys, "kl-div", a, b, options=("--reduction", "sum"))


# https://github.com/yuanli2333/Teacher-free-Knowledge-Distillation/issues/41: batchmean, and the
# teacher given as log-probabilities with log_target (as DeiT does)
def test_distillation_kl_with_batchmean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    temperature = 4.0
    student = RNG.normal(scale=3, size=(128, 100))
    teacher = student + RNG.normal(scale=1, size=(128, 100))
    student_log = log_softmax(student / temperature, 1).astype(np.float32)
    report = debug(
        tmp_path,
        capsys,
        "kl-div",
        student_log,
        softmax(teacher / temperature, 1).astype(np.float32),
        options=("--reduction", "batchmean"),
    )
    debug(
        tmp_path,
        capsys,
        "kl-div",
        student_log,
        log_softmax(teacher / temperature, 1).astype(np.float32),
        options=("--reduction", "batchmean", "--log-target"),
    )
    assert report["value"] > 0


# https://github.com/barbararoessle/dense_depth_priors_nerf/issues/28: a softplus variance head
def test_depth_variance_head_softplus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    depth = RNG.uniform(0.5, 8.0, size=(1024,)).astype(np.float32)
    predicted = (depth + RNG.normal(scale=0.3, size=1024)).astype(np.float32)
    raw = RNG.normal(loc=-3.0, scale=1.0, size=1024)
    variance = (np.log1p(np.exp(raw)) + 1e-6).astype(np.float32)
    debug(tmp_path, capsys, "gaussian-nll", predicted, depth, variance)


# https://github.com/pytorch/pytorch/issues/184030: log_input=True (the default) with randn
# log-rates, and log_input=False with softplus rates
def test_poisson_log_rates_and_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_rates = torch.randn(2, 8, generator=torch.Generator().manual_seed(0)).numpy()
    counts = RNG.poisson(1.0, size=(2, 8)).astype(np.float32)
    debug(tmp_path, capsys, "poisson-nll", log_rates, counts)
    rates = np.log1p(np.exp(log_rates)).astype(np.float32)
    debug(tmp_path, capsys, "poisson-nll", rates, counts, options=("--no-log-input",))


# https://github.com/gwx314/STARS/issues/9: log_softmax over the classes before F.ctc_loss
def test_ctc_on_log_softmax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    time, batch, classes = 120, 4, 64
    log_probs = log_softmax(RNG.normal(scale=4, size=(time, batch, classes)), 2)
    targets = RNG.integers(1, classes, size=(batch, 20))
    debug(
        tmp_path,
        capsys,
        "ctc",
        log_probs.astype(np.float32),
        targets,
        np.full(batch, time),
        np.array([20, 18, 15, 12]),
    )


# https://github.com/ypwhs/captcha_break/issues/29: enough frames for every captcha (T = 12)
def test_captcha_ctc_with_enough_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    time, batch, classes = 12, 32, 37
    log_probs = log_softmax(RNG.normal(size=(time, batch, classes)), 2).astype(np.float32)
    targets = RNG.integers(1, classes, size=(batch, 4))
    targets[1] = [9, 9, 9, 9]  # needs 7 frames of 12
    debug(tmp_path, capsys, "ctc", log_probs, targets, np.full(batch, time), np.full(batch, 4))


# https://github.com/meijieru/crnn.pytorch/issues/132: characters mapped to index + 1, blank 0
def test_ctc_labels_shifted_past_blank(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    time, batch, classes = 26, 8, 37
    log_probs = log_softmax(RNG.normal(size=(time, batch, classes)), 2).astype(np.float32)
    targets = RNG.integers(0, classes - 1, size=(batch, 6)) + 1
    debug(tmp_path, capsys, "ctc", log_probs, targets, np.full(batch, time), np.full(batch, 6))


# https://runebook.dev/en/docs/pytorch/generated/torch.nn.functional.ctc_loss: (N, T, C) output
# transposed to (T, N, C); targets concatenated as cuDNN wants, with int32 lengths
def test_ctc_transposed_and_concatenated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch, time, classes = 4, 50, 30
    log_probs = log_softmax(RNG.normal(size=(batch, time, classes)), 2).astype(np.float32)
    lengths = np.array([10, 9, 8, 7], dtype=np.int32)
    targets = RNG.integers(1, classes, size=int(lengths.sum())).astype(np.int32)
    debug(
        tmp_path,
        capsys,
        "ctc",
        np.ascontiguousarray(log_probs.transpose(1, 0, 2)),
        targets,
        np.full(batch, time, dtype=np.int32),
        lengths,
    )


# https://github.com/qubvel-org/segmentation_models.pytorch/issues/463: the dice computed in
# float32 (outputs cast with .float() before the loss)
def test_dice_in_float32(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = RNG.normal(loc=1.0, size=(1, 1, 512, 512)).astype(np.float32)
    mask = (RNG.random((1, 1, 512, 512)) < 0.6).astype(np.float32)
    debug(tmp_path, capsys, "dice", logits, mask)


# https://github.com/deepset-ai/FARM/issues/229: the logits kept (N, 1) like the labels
def test_regression_head_shapes_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    predictions = RNG.uniform(0, 16, size=(32, 1)).astype(np.float32)
    labels = RNG.integers(0, 17, size=(32, 1)).astype(np.float32)
    debug(tmp_path, capsys, "mse", predictions, labels)
    debug(tmp_path, capsys, "mse", predictions[:, 0], labels[:, 0])


# https://github.com/pytorch/pytorch/issues/1010 (comment): the computed probability clamped
def test_product_of_softmaxes_clamped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = softmax(RNG.normal(scale=8, size=(32, 5)), 1).astype(np.float32)
    second = softmax(RNG.normal(scale=8, size=(32, 5)), 1).astype(np.float32)
    probabilities = (first * second).sum(axis=1) / (first * second).sum(axis=1).max()
    probabilities[[3, 17]] = np.nextafter(np.float32(1), np.float32(2))
    clamped = np.clip(probabilities, 1e-6, 1 - 1e-6).astype(np.float32)
    debug(tmp_path, capsys, "bce", clamped, (RNG.random(32) < 0.5).astype(np.float32))


# https://pytorch.org/docs/main/generated/torch.nn.PoissonNLLLoss.html: counts as targets
def test_poisson_docs_example_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_input = torch.randn(5, 2, generator=torch.Generator().manual_seed(1)).numpy()
    counts = RNG.poisson(np.exp(log_input)).astype(np.float32)
    report = debug(tmp_path, capsys, "poisson-nll", log_input, counts)
    expected = F.poisson_nll_loss(torch.from_numpy(log_input), torch.from_numpy(counts))
    assert report["value"] == pytest.approx(float(expected), rel=1e-6)
