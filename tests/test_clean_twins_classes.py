"""Clean twins of tests/test_real_mistakes_classes.py: the corrected code's tensors raise nothing.

Each twin rebuilds the mistake's tensors from the same seed, applies the change the finding's
fix names (pass the logits, ``target.squeeze(1)``, ``--ignore-index 255``, ``target + 1``...),
and runs the real CLI: no warning and no error may remain (info is fine). The last cases are
clean code from the same threads (what the answer said the poster should have written).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from debug_runner import Outcome, debug
from scenarios import label_column, partly_trained_logits, softmax


def assert_clean(outcome: Outcome) -> None:
    assert outcome.alarm_lines() == []
    assert outcome.code == 0
    value = outcome.report["value"]
    assert value is not None and np.isfinite(value) and value >= 0


def log_softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(logits.dtype)


# --- twins of the real mistakes (same seeds, the fix applied) -----------------------------


# https://discuss.pytorch.org/t/cross-entropy-loss-is-not-decreasing/43814/16: drop nn.Softmax
def test_logits_into_cross_entropy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 32)
    assert_clean(
        debug(tmp_path, capsys, "cross-entropy", partly_trained_logits(rng, labels, 10), labels)
    )


# https://github.com/AnubhavGupta3377/Text-Classification-Models-Pytorch/issues/9:
# F.nll_loss(torch.log(probs), target)
def test_log_of_probabilities_into_nll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 64)
    probabilities = softmax(partly_trained_logits(rng, labels, 4))
    assert_clean(debug(tmp_path, capsys, "nll", np.log(probabilities), labels))


# https://runebook.dev/en/docs/pytorch/generated/torch.nn.nllloss/torch.nn.NLLLoss:
# F.nll_loss(F.log_softmax(logits, dim=1), target), or the logits to cross-entropy
@pytest.mark.parametrize("loss", ["nll", "cross-entropy"])
def test_log_softmax_into_nll(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loss: str
) -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 64)
    logits = partly_trained_logits(rng, labels, 4) * 2
    given = log_softmax(logits) if loss == "nll" else logits
    assert_clean(debug(tmp_path, capsys, loss, given, labels))


# https://runebook.dev/en/articles/pytorch/generated/torch.nn.softmax: log_softmax over dim=1
# for nll, the logits themselves for cross-entropy
@pytest.mark.parametrize("loss", ["cross-entropy", "nll"])
def test_softmax_over_the_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loss: str
) -> None:
    rng = np.random.default_rng(24)
    labels = rng.integers(0, 10, 32)
    logits = partly_trained_logits(rng, labels, 10)
    given = logits if loss == "cross-entropy" else log_softmax(logits, axis=1)
    assert_clean(debug(tmp_path, capsys, loss, given, labels))


# https://openillumi.com/en/en-pytorch-0d-1d-target-tensor-error-fix: no unsqueeze(1)
def test_flat_class_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 64)
    assert_clean(
        debug(tmp_path, capsys, "cross-entropy", partly_trained_logits(rng, labels, 10), labels)
    )


# https://taourl.com/read-2437117.html: target.argmax(1)
def test_one_hot_argmax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, 32)
    one_hot = np.eye(5, dtype=np.int64)[labels]
    logits = partly_trained_logits(rng, labels, 5)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, one_hot.argmax(1)))


# https://discuss.pytorch.org/t/using-bcewithlogisloss-for-multi-label-classification/67011:
# BCEWithLogitsLoss on the multi-hot tags
def test_multi_hot_with_bce_logits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(6)
    tags = (rng.random((32, 5)) < 0.35).astype(np.float32)
    tags[0] = [1, 1, 0, 0, 1]
    logits = rng.normal(size=(32, 5)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "bce-logits", logits, tags))


# https://github.com/pytorch/pytorch/pull/16644: multilabel-soft-margin on the multi-hot table,
# or multilabel-margin on the index lists the fix builds from it
@pytest.mark.parametrize("loss", ["multilabel-soft-margin", "multilabel-margin"])
def test_multi_hot_with_the_right_margin_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loss: str
) -> None:
    rng = np.random.default_rng(7)
    tags = (rng.random((16, 6)) < 0.3).astype(np.int64)
    tags[0] = [1, 0, 1, 0, 0, 0]
    logits = rng.normal(size=(16, 6)).astype(np.float32)
    if loss == "multilabel-margin":
        # the fix's expression: [c for c in range(C) if row[c]] + [-1] * (C - row.sum())
        columns = tags.shape[1]
        target = np.array(
            [[c for c in range(columns) if row[c]] + [-1] * (columns - row.sum()) for row in tags]
        )
    else:
        target = tags.astype(np.float32)
    assert_clean(debug(tmp_path, capsys, loss, logits, target))


# https://discuss.pytorch.org/t/need-guidance-on-loss-function-for-multi-label-multi-output-classification/189373:
# the K-dimensional case: logits (8, 3, 47), target (y + 1).long() shaped (8, 47)
def test_labels_per_position_k_dimensional(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(8)
    labels = rng.integers(-1, 2, (8, 47)).astype(np.float32)
    logits = (rng.normal(size=(8, 3, 47)) * 0.01).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, (labels + 1).astype(np.int64)))


# https://github.com/sacmehta/ESPNetv2/issues/4: nn.CrossEntropyLoss(ignore_index=255)
def test_voc_with_ignore_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(9)
    mask = rng.integers(0, 21, (2, 64, 64)).astype(np.uint8)
    mask[:, :3, :] = 255
    mask[:, :, -3:] = 255
    logits = rng.normal(size=(2, 21, 64, 64)).astype(np.float32)
    assert_clean(
        debug(tmp_path, capsys, "cross-entropy", logits, mask, options=("--ignore-index", "255"))
    )


# https://github.com/yiskw713/boundary_loss_for_remote_sensing/issues/6: ignore_index=255
def test_binary_mask_with_ignore_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(10)
    mask = rng.integers(0, 2, (4, 32, 32))
    mask[:, 0, :] = 255
    logits = rng.normal(size=(4, 2, 32, 32)).astype(np.float32)
    assert_clean(
        debug(tmp_path, capsys, "cross-entropy", logits, mask, options=("--ignore-index", "255"))
    )


# https://github.com/milesial/Pytorch-UNet/issues/291: (mask > 127).long()
def test_thresholded_greyscale_mask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(11)
    mask = np.zeros((2, 32, 32), dtype=np.uint8)
    mask[:, 8:24, 8:24] = 255
    mask[:, 8, 8:24] = 192
    mask[:, 23, 8:24] = 64
    logits = rng.normal(size=(2, 2, 32, 32)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, (mask > 127).astype(np.int64)))


# https://github.com/EricFillion/happy-transformer/issues/248: labels + 1 (0, 1, 2)
def test_shifted_sentiment_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(12)
    labels = rng.integers(-1, 2, 64)
    logits = partly_trained_logits(rng, labels + 1, 3)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, label_column(labels + 1)))


# https://github.com/PaddlePaddle/Paddle/issues/41687: labels - 1 (0..199)
def test_zero_based_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(13)
    labels = rng.integers(1, 201, 64)
    labels[5] = 200
    logits = rng.normal(size=(64, 200)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, label_column(labels - 1)))


# https://github.com/open-mmlab/mmsegmentation/issues/2208:
# F.binary_cross_entropy_with_logits(input.squeeze(1), target.float())
def test_single_channel_with_bce_logits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(14)
    mask = rng.integers(0, 2, (4, 32, 32))
    logits = rng.normal(size=(4, 1, 32, 32)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "bce-logits", logits[:, 0], mask.astype(np.float32)))


# https://duoke360.com/post/35135: output.permute(0, 2, 1) -> (batch, classes, seq)
def test_lstm_output_permuted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(15)
    tags = rng.integers(0, 44, (8, 100))
    logits = rng.normal(size=(8, 100, 44)).astype(np.float32)
    permuted = np.ascontiguousarray(logits.transpose(0, 2, 1))
    assert_clean(debug(tmp_path, capsys, "cross-entropy", permuted, tags))


# https://github.com/spro/practical-pytorch/issues/27: outputs.permute(1, 2, 0) -> (batch, vocab, T)
def test_decoder_output_batch_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(19)
    targets = rng.integers(0, 50, (4, 10))
    log_probabilities = log_softmax(rng.normal(size=(10, 4, 50)) * 2, axis=2).astype(np.float32)
    permuted = np.ascontiguousarray(log_probabilities.transpose(1, 2, 0))
    assert_clean(debug(tmp_path, capsys, "nll", permuted, targets))


# https://github.com/CSAILVision/semantic-segmentation-pytorch/issues/66: logits resized to the
# label map (F.interpolate(..., size=(85, 106), mode='bilinear'), done here by sampling)
def test_segmentation_logits_resized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(20)
    labels = rng.integers(0, 8, (1, 85, 106))
    logits = rng.normal(size=(1, 8, 170, 212)).astype(np.float32)
    resized = np.ascontiguousarray(logits[:, :, ::2, ::2])
    assert_clean(debug(tmp_path, capsys, "cross-entropy", resized, labels))


# https://github.com/codertimo/BERT-pytorch/issues/35: NLLLoss on mask_lm_output.transpose(1, 2),
# (batch, vocab, seq) log-probabilities against (batch, seq) labels
def test_masked_lm_transposed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(23)
    labels = rng.integers(0, 300, (4, 20))
    log_probabilities = log_softmax(rng.normal(size=(4, 20, 300)) * 2, axis=2).astype(np.float32)
    transposed = np.ascontiguousarray(log_probabilities.transpose(0, 2, 1))
    assert_clean(debug(tmp_path, capsys, "nll", transposed, labels))


# https://github.com/deepset-ai/FARM/issues/229: target.squeeze(1)
def test_regression_target_squeezed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(16)
    scores = rng.uniform(0, 16, (32, 1)).astype(np.float32)
    predictions = (scores[:, 0] + rng.normal(size=32)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "mse", predictions, scores[:, 0]))


# https://github.com/weka511/hpa-scc/issues/38: predictions for the whole batch, (8, 18)
def test_prediction_for_every_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(17)
    rng.random((1, 18))  # the mistake's single row, drawn to keep the seed's stream aligned
    targets = (rng.random((8, 18)) < 0.2).astype(np.float32)
    predictions = rng.random((8, 18)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "mse", predictions, targets))


# https://androidkt.com/how-to-use-class-weight-in-crossentropyloss-for-an-imbalanced-dataset/:
# the printed --weight, pasted back
def test_imbalanced_classes_with_printed_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(18)
    labels = rng.permutation(np.repeat([0, 1, 2, 3], [900, 60, 30, 10]))
    logits = partly_trained_logits(rng, labels, 4)
    first = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    weight = first.fix("class-imbalance").split("--weight '")[1].split("'")[0]
    assert_clean(
        debug(tmp_path, capsys, "cross-entropy", logits, labels, options=("--weight", weight))
    )


# --- clean code from the threads ----------------------------------------------------------


# https://discuss.pytorch.org/t/why-the-loss-function-can-be-apply-on-different-size-tensors/23032:
# an untrained nn.Linear(4, 4) output (2, 4) against gt = torch.tensor([1, 1]): not broadcasting
def test_untrained_head_batch_of_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(19)
    output = (rng.normal(size=(2, 4)) * 0.3).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", output, np.array([1, 1])))


# https://discuss.pytorch.org/t/semantic-segmentation-how-does-it-work/89580:
# U-Net with 3 output channels, mask of class indices 0/1/2 (background 0)
def test_unet_three_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(20)
    mask = np.zeros((2, 64, 64), dtype=np.uint8)
    mask[:, 10:30, 10:40] = 1
    mask[:, 40:60, 20:50] = 2
    logits = rng.normal(size=(2, 3, 64, 64)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, mask))


# https://github.com/pytorch/pytorch/issues/108345: a language model's labels with -100 where
# the sequence is padded (torch's default ignore_index); logits (batch, vocab, seq)
def test_language_model_with_padding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(21)
    labels = rng.integers(0, 1000, (4, 16))
    labels[:, 11:] = -100
    logits = rng.normal(size=(4, 1000, 16)).astype(np.float32)
    assert_clean(debug(tmp_path, capsys, "cross-entropy", logits, labels))


# https://github.com/keon/seq2seq/pull/5: the decoder ends in log_softmax; cross_entropy on it is
# harmless (log_softmax is idempotent), nll_loss is what the PR switched to
@pytest.mark.parametrize("loss", ["cross-entropy", "nll"])
def test_log_softmax_decoder_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loss: str
) -> None:
    rng = np.random.default_rng(22)
    words = rng.integers(0, 500, 48)
    log_probabilities = log_softmax(partly_trained_logits(rng, words, 500))
    assert_clean(debug(tmp_path, capsys, loss, log_probabilities, words))
