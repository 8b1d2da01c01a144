"""Real class/shape mistakes from public threads, replayed through `losscli debug --format json`.

Each case rebuilds the tensors the poster had (shapes, dtypes and value ranges taken from the
thread: a partly trained 10-class model on a batch of 32, a VOC mask 0..20 plus 255, sentiment
labels -1/0/1 in a CSV column...), writes them to files, and runs the real CLI. It asserts that
the finding explaining the mistake fires with its severity, that the fix names the change that
works (tests/test_clean_twins_classes.py applies that change and checks the result is clean),
and that no unrelated error fires.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from debug_runner import Outcome, debug
from scenarios import label_column, partly_trained_logits, softmax


def assert_found(
    outcome: Outcome, name: str, severity: str, quotes: tuple[str, ...], fix: str
) -> dict[str, Any]:
    found = outcome.named(name)
    assert found["severity"] == severity, outcome.summary()
    for quote in quotes:
        assert quote in found["message"], (quote, found["message"])
    assert fix in found["fix"], (fix, found["fix"])
    return found


def assert_no_other_error(outcome: Outcome, *expected: str) -> None:
    assert outcome.errors() <= set(expected), outcome.summary()


# --- logits versus probabilities ----------------------------------------------------------


# https://discuss.pytorch.org/t/cross-entropy-loss-is-not-decreasing/43814/16
# model ends in nn.Softmax, output given to nn.CrossEntropyLoss: the loss sits at ~2.30 (10 classes)
def test_softmax_output_into_cross_entropy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 32)
    probabilities = softmax(partly_trained_logits(rng, labels, 10))
    outcome = debug(tmp_path, capsys, "cross-entropy", probabilities, labels)
    assert_found(
        outcome,
        "probabilities-as-logits",
        "warning",
        ("lies in [0, 1]", "100% within 1e-3"),
        "pass the logits (the model output before softmax)",
    )
    assert outcome.code == 0  # a warning: torch computes, training just stalls
    # the symptom from the thread: the value stays near log(10) = 2.30 whatever the model says
    assert 2.0 < outcome.report["value"] < 2.31
    assert_no_other_error(outcome)


# https://github.com/AnubhavGupta3377/Text-Classification-Models-Pytorch/issues/9
# model ends in softmax, nn.NLLLoss on it: "the loss is always negative"
def test_softmax_output_into_nll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 64)  # AG News: 4 topics
    probabilities = softmax(partly_trained_logits(rng, labels, 4))
    outcome = debug(tmp_path, capsys, "nll", probabilities, labels)
    assert_found(
        outcome, "probabilities-to-nll", "error", ("rows summing to about 1",), "torch.log(probs)"
    )
    assert outcome.report["value"] < 0  # the thread's symptom
    assert_no_other_error(outcome, "probabilities-to-nll", "negative-loss")


# https://runebook.dev/en/docs/pytorch/generated/torch.nn.nllloss/torch.nn.NLLLoss
# ("NLLLoss does not take the raw outputs (logits)"): the final Linear layer's output into NLLLoss
def test_raw_logits_into_nll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 64)
    logits = partly_trained_logits(rng, labels, 4) * 2
    outcome = debug(tmp_path, capsys, "nll", logits, labels)
    assert_found(
        outcome, "logits-to-nll", "error", ("entries are positive",), "F.log_softmax(logits, dim=1)"
    )
    assert_no_other_error(outcome, "logits-to-nll", "negative-loss")


# https://runebook.dev/en/articles/pytorch/generated/torch.nn.softmax ("Calculating Softmax across
# the batch dimension instead of the class dimension"): nn.Softmax(dim=0) on a (32, 10) output,
# then nn.CrossEntropyLoss / nn.NLLLoss on its log
@pytest.mark.parametrize("loss", ["cross-entropy", "nll"])
def test_softmax_over_the_batch_dimension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loss: str
) -> None:
    rng = np.random.default_rng(24)
    labels = rng.integers(0, 10, 32)
    over_batch = softmax(partly_trained_logits(rng, labels, 10), axis=0)
    given = over_batch if loss == "cross-entropy" else np.log(over_batch)
    outcome = debug(tmp_path, capsys, loss, given, labels)
    name, severity, fix = (
        ("probabilities-as-logits", "warning", "pass the logits")
        if loss == "cross-entropy"
        else ("logits-to-nll", "error", "F.log_softmax(logits, dim=1)")
    )
    found = assert_found(outcome, name, severity, ("dimension 0 (the batch)",), fix)
    assert "dim=1" in found["fix"]
    assert_no_other_error(outcome, "logits-to-nll")


# --- target shapes and encodings ----------------------------------------------------------


# https://openillumi.com/en/en-pytorch-0d-1d-target-tensor-error-fix
# labels.unsqueeze(1) before CrossEntropyLoss: "0D or 1D target tensor expected, multi-target not supported"
def test_unsqueezed_class_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 64)
    outcome = debug(
        tmp_path, capsys, "cross-entropy", partly_trained_logits(rng, labels, 10), labels[:, None]
    )
    assert_found(
        outcome,
        "target-has-extra-dim",
        "error",
        ("(64, 1)", "multi-target not supported"),
        "squeeze(1)",
    )
    assert outcome.report["value"] is None  # torch raises; losscli does not call it
    assert_no_other_error(outcome, "target-has-extra-dim")


# https://taourl.com/read-2437117.html
# one-hot targets (int64, as torch.nn.functional.one_hot returns them) given to CrossEntropyLoss
def test_one_hot_int_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, 32)
    one_hot = np.eye(5, dtype=np.int64)[labels]
    outcome = debug(
        tmp_path, capsys, "cross-entropy", partly_trained_logits(rng, labels, 5), one_hot
    )
    assert_found(
        outcome,
        "one-hot-target",
        "warning",  # torch raises on an int64 probability target
        ("(32, 5)", "exactly one 1", "got Long"),
        "target.argmax(1)",
    )
    assert outcome.code == 0 and outcome.alarms() == {"one-hot-target"}


# https://discuss.pytorch.org/t/using-bcewithlogisloss-for-multi-label-classification/67011
# multi-label 0/1 targets (several tags per sample) trained with CrossEntropyLoss
def test_multi_hot_targets_with_cross_entropy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(6)
    tags = (rng.random((32, 5)) < 0.35).astype(np.float32)
    tags[0] = [1, 1, 0, 0, 1]
    outcome = debug(
        tmp_path, capsys, "cross-entropy", rng.normal(size=(32, 5)).astype(np.float32), tags
    )
    found = assert_found(
        outcome,
        "multilabel-target",
        "warning",
        ("several ones",),
        "binary_cross_entropy_with_logits",
    )
    [fix] = [f for f in found["fixes"] if "compute bce-logits" in f["command"]]
    assert fix["verified"]["findings"] == []
    assert_no_other_error(outcome)


# https://github.com/pytorch/pytorch/pull/16644 (MultiLabelMarginLoss wants class indices padded
# with -1; MultiLabelSoftMarginLoss takes the multi-hot table): a multi-hot table given to the former
def test_multi_hot_targets_with_multilabel_margin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(7)
    tags = (rng.random((16, 6)) < 0.3).astype(np.int64)
    tags[0] = [1, 0, 1, 0, 0, 0]
    outcome = debug(
        tmp_path, capsys, "multilabel-margin", rng.normal(size=(16, 6)).astype(np.float32), tags
    )
    found = assert_found(
        outcome,
        "multilabel-target",
        "warning",
        ("holds only 0 and 1",),
        "multilabel-soft-margin",
    )
    [fix] = [f for f in found["fixes"] if "compute multilabel-soft-margin" in f["command"]]
    assert fix["code"].startswith("target = target.float(); F.multilabel_soft_margin_loss(")
    assert fix["verified"]["findings"] == []
    assert_no_other_error(outcome)


# https://discuss.pytorch.org/t/need-guidance-on-loss-function-for-multi-label-multi-output-classification/189373
# 47 three-way labels (-1/0/1) per sample, y (8, 47) against y_pred (8, 47), given to CrossEntropyLoss
def test_signed_labels_per_position_as_probabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(8)
    labels = rng.integers(-1, 2, (8, 47)).astype(np.float32)
    # y_pred around 0.01 in the thread: an untrained head
    predictions = (rng.normal(size=(8, 47)) * 0.01).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", predictions, labels)
    assert_found(
        outcome,
        "soft-target-not-distribution",
        "warning",
        ("entries are negative",),
        "logits shaped (8, 3, 47), and target (target + 1).long() shaped (8, 47)",
    )
    assert_no_other_error(outcome, "negative-loss")


# --- class indices out of range -----------------------------------------------------------


# https://github.com/sacmehta/ESPNetv2/issues/4
# PASCAL VOC masks: classes 0..20 and 255 on object borders; device-side assert in the loss
def test_voc_void_label_255(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(9)
    mask = rng.integers(0, 21, (2, 64, 64)).astype(np.uint8)
    mask[:, :3, :] = 255
    mask[:, :, -3:] = 255
    logits = rng.normal(size=(2, 21, 64, 64)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, mask)
    assert_found(
        outcome,
        "class-index-out-of-range",
        "error",
        ("outside 0..20", "C=21", "255 ("),
        "--ignore-index 255",
    )
    assert_no_other_error(outcome, "class-index-out-of-range")


# https://github.com/yiskw713/boundary_loss_for_remote_sensing/issues/6
# binary segmentation, mask values 0 (background), 1 (class), 255 (ignore), 2 output channels
def test_binary_mask_with_void_255(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(10)
    mask = rng.integers(0, 2, (4, 32, 32))
    mask[:, 0, :] = 255
    outcome = debug(
        tmp_path, capsys, "cross-entropy", rng.normal(size=(4, 2, 32, 32)).astype(np.float32), mask
    )
    assert_found(
        outcome, "class-index-out-of-range", "error", ("255 (128×)",), "--ignore-index 255"
    )
    assert_no_other_error(outcome, "class-index-out-of-range")


# https://github.com/milesial/Pytorch-UNet/issues/291
# "IndexError: Target 192 is out of bounds": masks loaded as raw greyscale (a JPEG: 0, 255 and
# blurred in-between values at the edges) for a 2-class U-Net
def test_greyscale_mask_pixel_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(11)
    mask = np.zeros((2, 32, 32), dtype=np.uint8)
    mask[:, 8:24, 8:24] = 255
    mask[:, 8, 8:24] = 192
    mask[:, 23, 8:24] = 64
    outcome = debug(
        tmp_path, capsys, "cross-entropy", rng.normal(size=(2, 2, 32, 32)).astype(np.float32), mask
    )
    found = assert_found(
        outcome,
        "class-index-out-of-range",
        "error",
        ("outside 0..1", "192 (32×)"),
        "(target > 127).long()",
    )
    assert "256 classes" not in found["fix"]  # growing the output layer would be the wrong fix
    assert_no_other_error(outcome, "class-index-out-of-range")


# https://github.com/EricFillion/happy-transformer/issues/248
# "Target -1 is out of bounds": sentiment labels -1/0/1 read from a CSV column for 3 classes
def test_signed_sentiment_labels_from_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(12)
    labels = rng.integers(-1, 2, 64)
    logits = partly_trained_logits(rng, labels + 1, 3)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, label_column(labels))
    found = assert_found(
        outcome, "class-index-out-of-range", "error", ("-1 (", "outside 0..2"), "pass target + 1"
    )
    assert found["fix"].index("target + 1") < found["fix"].index("ignore-index")
    assert_no_other_error(outcome, "class-index-out-of-range")


# https://github.com/PaddlePaddle/Paddle/issues/41687
# 200 classes labelled 1..200 in the label file (the same mistake in PyTorch: "Target 200 is out
# of bounds"), a batch of 64
def test_one_based_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(13)
    labels = rng.integers(1, 201, 64)
    labels[5] = 200  # the batch that crashes holds the last class
    outcome = debug(
        tmp_path,
        capsys,
        "cross-entropy",
        rng.normal(size=(64, 200)).astype(np.float32),
        label_column(labels),
    )
    assert_found(
        outcome, "class-index-out-of-range", "error", ("outside 0..199", "200 ("), "pass target - 1"
    )
    assert_no_other_error(outcome, "class-index-out-of-range")


# https://github.com/open-mmlab/mmsegmentation/issues/2208
# single-class segmentation with num_classes=1 and CrossEntropyLoss: logits (N, 1, H, W)
def test_single_channel_segmentation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(14)
    mask = rng.integers(0, 2, (4, 32, 32))
    outcome = debug(
        tmp_path, capsys, "cross-entropy", rng.normal(size=(4, 1, 32, 32)).astype(np.float32), mask
    )
    assert_found(
        outcome,
        "single-logit-cross-entropy",
        "error",
        ("one class column",),
        "binary_cross_entropy_with_logits(input.squeeze(1)",
    )
    # label 1 is also out of range for C=1; both findings describe the same mistake
    assert_no_other_error(outcome, "single-logit-cross-entropy", "class-index-out-of-range")


# --- class dimension placement, broadcasting ---------------------------------------------


# https://duoke360.com/post/35135
# "Expected target size (128, 44), got torch.Size([128, 100])": LSTM tagger output
# (batch, seq, classes) given to CrossEntropyLoss with tags (batch, seq)
def test_lstm_output_classes_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(15)
    tags = rng.integers(0, 44, (8, 100))
    outcome = debug(
        tmp_path, capsys, "cross-entropy", rng.normal(size=(8, 100, 44)).astype(np.float32), tags
    )
    assert_found(outcome, "shape-mismatch", "error", ("classes last (C=44)",), "permute(0, 2, 1)")
    assert_found(outcome, "class-dim-last", "warning", ("(8, 100, 44)",), "permute(0, 2, 1)")
    assert_no_other_error(outcome, "shape-mismatch")


# https://github.com/spro/practical-pytorch/issues/27
# the decoder's outputs collected time-major, all_decoder_outputs (max_target_length, batch, vocab),
# scored against batch-first targets (batch, max_target_length) without the transpose(0, 1)
def test_time_major_decoder_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(19)
    targets = rng.integers(0, 50, (4, 10))
    scores = rng.normal(size=(10, 4, 50)) * 2
    shifted = scores - scores.max(axis=2, keepdims=True)
    log_probabilities = (shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))).astype(
        np.float32
    )
    outcome = debug(tmp_path, capsys, "nll", log_probabilities, targets)
    assert_found(outcome, "batch-size-mismatch", "error", ("N=10", "N=4"), "input.permute(1, 2, 0)")
    # dimension 1 is the batch here: no verdict on classes or log-probabilities read along it
    assert_no_other_error(outcome, "batch-size-mismatch")


# https://github.com/CSAILVision/semantic-segmentation-pytorch/issues/66
# "input and target batch or spatial sizes don't match: target [1 x 85 x 106], input
# [1 x 8 x 170 x 212]": the decoder's logits at twice the label map's resolution
def test_segmentation_logits_at_another_resolution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(20)
    labels = rng.integers(0, 8, (1, 85, 106))
    logits = rng.normal(size=(1, 8, 170, 212)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    assert_found(
        outcome,
        "shape-mismatch",
        "error",
        ("(1, 8, 170, 212)", "(1, 85, 106)"),
        "F.interpolate(input, size=(85, 106), mode='bilinear')",
    )
    assert_no_other_error(outcome, "shape-mismatch")


# https://github.com/deepset-ai/FARM/issues/229
# "Using a target size (torch.Size([32, 1])) that is different to the input size (torch.Size([32]))":
# regression logits squeezed, labels (32, 1); MSELoss averages 32 x 32 pairs
def test_regression_target_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(16)
    scores = rng.uniform(0, 16, (32, 1)).astype(np.float32)  # labels range from 0 to 16
    predictions = (scores[:, 0] + rng.normal(size=32)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "mse", predictions, scores)
    assert_found(
        outcome, "silent-broadcast", "error", ("broadcast to (32, 32)",), "target.squeeze(1)"
    )
    assert_no_other_error(outcome, "silent-broadcast")


# https://github.com/weka511/hpa-scc/issues/38
# "Using a target size (torch.Size([8, 18])) that is different to the input size
# (torch.Size([1, 18]))": one prediction row against a batch of 8 multi-label targets
def test_one_prediction_row_against_a_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(17)
    predictions = rng.random((1, 18)).astype(np.float32)
    targets = (rng.random((8, 18)) < 0.2).astype(np.float32)
    outcome = debug(tmp_path, capsys, "mse", predictions, targets)
    assert_found(
        outcome,
        "silent-broadcast",
        "error",
        ("input holds one sample", "all 8 samples"),
        "input is shaped (8, 18)",
    )
    assert_no_other_error(outcome, "silent-broadcast")


# --- class balance ------------------------------------------------------------------------


# https://androidkt.com/how-to-use-class-weight-in-crossentropyloss-for-an-imbalanced-dataset/
# a skewed dataset (900 / 60 / 30 / 10) trained without class weights
def test_imbalanced_classes_get_ready_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(18)
    labels = rng.permutation(np.repeat([0, 1, 2, 3], [900, 60, 30, 10]))
    outcome = debug(
        tmp_path, capsys, "cross-entropy", partly_trained_logits(rng, labels, 4), labels
    )
    found = assert_found(
        outcome, "class-imbalance", "info", ("0: 900", "3: 10", "90×"), "--weight '["
    )
    # inverse frequency, mean 1: 1/900 : 1/60 : 1/30 : 1/10 scaled by 4 / sum(1/count)
    inverse = 1 / np.array([900, 60, 30, 10])
    expected = inverse / inverse.mean()
    printed = found["fix"].split("--weight '")[1].split("'")[0]
    np.testing.assert_allclose(json.loads(printed), expected, rtol=1e-3)
    assert outcome.alarms() == set()
