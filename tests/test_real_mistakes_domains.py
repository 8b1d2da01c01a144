"""Real mistakes from public issue threads, replayed through `losscli debug --format json`.

Each case rebuilds the tensors the poster had (shapes, dtypes, value ranges from the thread),
writes them to files and runs the real CLI. It asserts the finding that explains the mistake
fires with the right severity and a fix that would work, and that no unrelated error fires.
The corrected code's tensors are in tests/test_clean_twins_domains.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import debug

RNG = np.random.default_rng(20261123)


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def log_softmax(values: np.ndarray, axis: int) -> np.ndarray:
    shifted = values - values.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(values: np.ndarray, axis: int) -> np.ndarray:
    return np.exp(log_softmax(values, axis))


# --- bce / bce-logits / dice: the unit interval ------------------------------------------------


# https://github.com/pytorch/pytorch/issues/1010 (comment: "BCELoss() requires the input ... x>=0
# && x<=1, which result in that we may need a sigmoid ... after the fc-layer")
def test_fc_layer_output_given_to_bce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = RNG.normal(scale=2.0, size=(64, 1)).astype(np.float32)  # nn.Linear(…, 1) output
    labels = (RNG.random((64, 1)) < 0.4).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce", logits, labels)
    found = outcome.named("input-outside-unit-interval")
    assert found["severity"] == "error" and outcome.code == 1
    assert "bce-logits" in found["fix"] and "BCEWithLogitsLoss" in found["fix"]
    assert outcome.report["value"] is None  # torch rejects it: not computed
    assert outcome.errors() == {"input-outside-unit-interval"}


# https://github.com/pytorch/pytorch/issues/1010 (comment: "Assertion `input >= 0. && input <= 1.`
# failed ... product of two softmax ... when the error occur, the input is 1 ... floating-point
# precision?"): a computed probability one float32 rounding unit above 1
def test_product_of_softmaxes_a_rounding_unit_above_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = softmax(RNG.normal(scale=8, size=(32, 5)), 1).astype(np.float32)
    second = softmax(RNG.normal(scale=8, size=(32, 5)), 1).astype(np.float32)
    probabilities = (first * second).sum(axis=1) / (first * second).sum(axis=1).max()
    probabilities[[3, 17]] = np.nextafter(np.float32(1), np.float32(2))  # 1 + 2^-23
    labels = (RNG.random(32) < 0.5).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce", probabilities.astype(np.float32), labels)
    found = outcome.named("input-outside-unit-interval")
    assert found["severity"] == "error" and "rounding error" in found["message"]
    assert "input.clamp(0, 1)" in found["fix"]
    assert "sigmoid was never applied" not in found["message"]
    assert outcome.errors() == {"input-outside-unit-interval"}


# https://github.com/ray-project/ray/issues/17117 (BCELoss on nn.Linear(1, 1) fed LinearDataset:
# y = 2x + 5 regression targets; "all elements of input should be between 0 and 1")
def test_bce_on_a_linear_regression_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.arange(0, 10, 10 / 32, dtype=np.float32).reshape(32, 1)
    predictions = (0.4 * x - 0.3).astype(np.float32)  # an untrained nn.Linear(1, 1)
    targets = (2 * x + 5).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce", predictions, targets)
    assert outcome.named("input-outside-unit-interval")["severity"] == "error"
    target = outcome.named("target-outside-unit-interval")
    assert target["severity"] == "error"
    assert "mse" in target["fix"]  # regression targets: a regression loss
    assert outcome.errors() == {"input-outside-unit-interval", "target-outside-unit-interval"}


# https://github.com/milesial/Pytorch-UNet/issues/176 ("I add a sigmoid in the lastconv output"
# and keep nn.BCEWithLogitsLoss: the sigmoid is applied twice)
def test_sigmoid_output_given_to_bce_with_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the U-Net still learns through the double sigmoid: its outputs follow the masks
    # (about 10% foreground), so the masks are drawn from them
    probabilities = sigmoid(RNG.normal(loc=-3.0, scale=3.0, size=(4, 1, 32, 32))).astype(np.float32)
    masks = (RNG.random((4, 1, 32, 32)) < probabilities).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", probabilities, masks)
    found = outcome.named("probabilities-as-logits")
    assert found["severity"] == "warning"
    assert "sigmoid" in found["fix"].lower()
    assert not outcome.errors()


# https://github.com/milesial/Pytorch-UNet/issues/78 (negative BCE loss, Dice > 1: "please ensure
# mask is 0-1, not 0-255"): sigmoid output and a PNG mask read as uint8 0/255
def test_png_mask_0_255_with_bce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    probabilities = sigmoid(RNG.normal(size=(2, 1, 64, 64))).astype(np.float32)
    mask = (RNG.random((2, 1, 64, 64)) < 0.3).astype(np.uint8) * 255
    outcome = debug(tmp_path, capsys, "bce", probabilities, mask)
    found = outcome.named("target-outside-unit-interval")
    assert found["severity"] == "error" and found["fix"].count("/ 255") == 1
    assert outcome.errors() == {"target-outside-unit-interval"}


# https://github.com/MontaEllis/Pytorch-Medical-Segmentation/issues/8 (negative BCEWithLogitsLoss:
# "your label is most likely a png image. Do normalisation")
def test_png_mask_0_255_with_bce_logits_and_dice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(2, 1, 16, 32, 32)).astype(np.float32)  # 3-D volumes
    mask = (RNG.random((2, 1, 16, 32, 32)) < 0.2).astype(np.uint8) * 255
    for loss in ("bce-logits", "dice"):
        outcome = debug(tmp_path, capsys, loss, logits, mask)
        found = outcome.named("target-outside-unit-interval")
        assert found["severity"] == "error"
        assert f"{loss} wants target in [0, 1]" in found["message"]
        assert "target.float() / 255" in found["fix"]
        # the negative loss the poster saw is the same mistake, reported with it
        assert outcome.errors() <= {"target-outside-unit-interval", "negative-loss"}


# https://github.com/bigmb/Unet-Segmentation-Pytorch-Nest-of-Unets/issues/18 ("I have do the
# augment to mask, which cause mask's value to [-1, 1]"): Normalize(0.5, 0.5) applied to the mask
def test_mask_normalised_to_minus_one_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(4, 1, 32, 32)).astype(np.float32)
    mask = np.where(RNG.random((4, 1, 32, 32)) < 0.3, 1.0, -1.0).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", logits, mask)
    found = outcome.named("target-outside-unit-interval")
    assert found["severity"] == "error"
    assert "(target + 1) / 2" in found["fix"]
    assert outcome.errors() <= {"target-outside-unit-interval", "negative-loss"}


# https://github.com/pytorch/pytorch/issues/123339 (BCEWithLogitsLoss()(tensor([.5]),
# tensor([2])) returns -0.0259 where BCELoss raises)
def test_bce_logits_target_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = debug(
        tmp_path, capsys, "bce-logits", np.array([0.5], np.float32), np.array([2.0], np.float32)
    )
    found = outcome.named("target-outside-unit-interval")
    assert found["severity"] == "error"
    # torch computes it (the value is what torch returns) but it is not a loss
    expected = F.binary_cross_entropy_with_logits(torch.tensor([0.5]), torch.tensor([2.0]))
    assert outcome.report["value"] == pytest.approx(float(expected))  # -0.0259 in the thread
    assert outcome.errors() <= {"target-outside-unit-interval", "negative-loss"}


# https://github.com/pytorch/pytorch/issues/45373 (DCGAN tutorial: label = torch.full((b_size,),
# real_label) with real_label = 1 gives int64: "Found dtype Long but expected Float")
def test_dcgan_integer_label_for_bce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = sigmoid(RNG.normal(size=128)).astype(np.float32)  # netD(real_cpu).view(-1)
    label = np.full(128, 1, dtype=np.int64)
    outcome = debug(tmp_path, capsys, "bce", output, label)
    found = outcome.named("int-target-for-float-loss")
    assert found["severity"] == "info"
    assert "target.float()" in found["fix"] and "Found dtype Long" in found["fix"]
    assert outcome.code == 0 and not outcome.alarms(), outcome.summary()
    expected = F.binary_cross_entropy(torch.from_numpy(output), torch.ones(128))
    assert outcome.report["value"] == pytest.approx(float(expected), rel=1e-6)


# https://github.com/pytorch/pytorch/issues/4867 (BCELoss(input=[1, 1], target=[0, 0]) gives a
# strange constant: log is clamped, the probabilities are saturated)
def test_saturated_probabilities_to_bce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = debug(
        tmp_path, capsys, "bce", np.array([1.0, 1.0], np.float32), np.array([0.0, 0.0], np.float32)
    )
    found = outcome.named("saturated-probabilities")
    assert found["severity"] == "warning" and "bce-logits" in found["fix"]
    assert outcome.report["value"] == pytest.approx(100.0)  # log(0) clamped at -100
    assert not outcome.errors(), outcome.summary()


# --- sign targets ------------------------------------------------------------------------------


# https://github.com/seathiefwang/RankPose/issues/4 ("nn.MarginRankingLoss ... y expect 1 or -1,
# but labels only has value in 0 or 1")
def test_margin_ranking_with_zero_one_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x1, x2 = RNG.normal(size=64).astype(np.float32), RNG.normal(size=64).astype(np.float32)
    labels = (x1 > x2).astype(np.int64)
    outcome = debug(tmp_path, capsys, "margin-ranking", x1, x2, labels)
    found = outcome.named("sign-target-expected")
    assert found["severity"] == "error" and "y * 2 - 1" in found["fix"]
    assert outcome.errors() == {"sign-target-expected"}


# https://github.com/huggingface/sentence-transformers/issues/622 ("CosineEmbeddingLoss is only
# defined for y=1 and y=-1. But the gold score can also have values like 0.2 or 0.8")
def test_cosine_embedding_with_similarity_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    u = RNG.normal(size=(32, 768)).astype(np.float32)
    v = RNG.normal(size=(32, 768)).astype(np.float32)
    scores = RNG.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], size=32).astype(np.float32)
    scores[:2] = [0.2, 0.8]
    outcome = debug(tmp_path, capsys, "cosine-embedding", u, v, scores)
    found = outcome.named("sign-target-expected")
    assert found["severity"] == "error"
    assert "not whole numbers" in found["message"]
    assert outcome.errors() == {"sign-target-expected"}


# https://github.com/pytorch/pytorch/issues/22965 (HingeEmbeddingLoss on classifier logits around
# -40 with y = 1: the loss is -39.4). torch documents l = x for y = 1, unclamped, so a negative
# loss is what the formula gives: hinge-embedding is not a nonnegative loss, and negative-loss
# does not fire (torch's value is reported as it is)
def test_hinge_embedding_on_signed_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = np.array([[-40.4363, -37.7542], [-41.0224, -38.3677]], np.float32)
    y = np.ones((2, 2), dtype=np.int64)
    outcome = debug(tmp_path, capsys, "hinge-embedding", logits, y)
    assert outcome.report["value"] == pytest.approx(-39.3951, abs=1e-3)  # as in the thread
    assert "negative-loss" not in {f["name"] for f in outcome.findings}
    assert outcome.errors() == set() and outcome.code == 0


# --- kl-div ----------------------------------------------------------------------------------


# https://discuss.pytorch.org/t/kullback-leibler-divergence-loss-function-giving-negative-values/763
# (x = F.softmax(x) as the CIFAR net's output, one-hot labels, nn.KLDivLoss())
def test_kl_div_on_softmax_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = softmax(RNG.normal(size=(4, 10)), axis=1).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[RNG.integers(0, 10, size=4)]
    outcome = debug(tmp_path, capsys, "kl-div", outputs, labels)
    found = outcome.named("kl-input-not-log")
    assert found["severity"] == "error" and "log_softmax" in found["fix"]
    assert outcome.named("kl-mean-reduction")["severity"] == "warning"
    assert outcome.errors() <= {"kl-input-not-log", "negative-loss"}


# https://github.com/yuanli2333/Teacher-free-Knowledge-Distillation/issues/41 (nn.KLDivLoss()
# with the default reduction 'mean' on CIFAR-100 logits / T: "the KL loss value could be quite
# small because it gets averaged")
def test_distillation_kl_with_mean_reduction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    temperature = 4.0
    student = RNG.normal(scale=3, size=(128, 100))
    teacher = student + RNG.normal(scale=1, size=(128, 100))
    outcome = debug(
        tmp_path,
        capsys,
        "kl-div",
        log_softmax(student / temperature, 1).astype(np.float32),
        softmax(teacher / temperature, 1).astype(np.float32),
    )
    found = outcome.named("kl-mean-reduction")
    assert found["severity"] == "warning" and "100x smaller" in found["message"]
    assert "batchmean" in found["fix"]
    assert outcome.alarms() == {"kl-mean-reduction"}, outcome.summary()


# --- gaussian-nll / poisson-nll ----------------------------------------------------------------


# https://github.com/barbararoessle/dense_depth_priors_nerf/issues/28 (compute_depth_loss fails in
# F.gaussian_nll_loss: "var has negative entry/entries"): depth in metres, an unconstrained var head
def test_depth_variance_head_goes_negative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    depth = RNG.uniform(0.5, 8.0, size=(1024,)).astype(np.float32)
    predicted = (depth + RNG.normal(scale=0.3, size=1024)).astype(np.float32)
    variance = RNG.normal(loc=0.05, scale=0.1, size=1024).astype(np.float32)  # raw linear output
    outcome = debug(tmp_path, capsys, "gaussian-nll", predicted, depth, variance)
    found = outcome.named("nonpositive-variance")
    assert found["severity"] == "error" and "softplus" in found["fix"]
    assert outcome.report["value"] is None  # torch raises ValueError
    assert outcome.errors() == {"nonpositive-variance"}


# https://github.com/pytorch/pytorch/issues/184030 (PoissonNLLLoss(log_input=False) on
# torch.randn(2, 8): NaN for every negative input)
def test_poisson_rates_that_are_log_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = torch.randn(2, 8, generator=torch.Generator().manual_seed(0)).numpy()
    counts = RNG.poisson(1.0, size=(2, 8)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "poisson-nll", inputs, counts, options=("--no-log-input",))
    found = outcome.named("poisson-log-input-mismatch")
    assert found["severity"] == "error"
    assert "--no-log-input" not in found["fix"].split("drop")[0]
    assert "log_input=True" in found["fix"]
    assert outcome.errors() <= {"poisson-log-input-mismatch", "non-finite-loss"}


# https://pytorch.org/docs/main/generated/torch.nn.PoissonNLLLoss.html (the docs' own example:
# `log_input = torch.randn(5, 2); target = torch.randn(5, 2)`, negative "counts")
def test_poisson_docs_example_with_randn_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = torch.Generator().manual_seed(1)
    log_input, target = (
        torch.randn(5, 2, generator=generator),
        torch.randn(5, 2, generator=generator),
    )
    outcome = debug(tmp_path, capsys, "poisson-nll", log_input.numpy(), target.numpy())
    found = outcome.named("negative-poisson-target")
    assert found["severity"] == "error"
    assert f"{int((target < 0).sum())} negative values of 10" in found["message"]
    assert outcome.errors() <= {"negative-poisson-target", "negative-loss"}


# --- ctc -------------------------------------------------------------------------------------


# https://github.com/gwx314/STARS/issues/9 ("CTC loss appears to use raw logits instead of
# log-probabilities ... I noticed negative ph_ctc_loss")
def test_ctc_on_raw_logits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    time, batch, classes = 120, 4, 64
    logits = RNG.normal(scale=4, size=(time, batch, classes)).astype(np.float32)
    targets = RNG.integers(1, classes, size=(batch, 20))
    outcome = debug(
        tmp_path,
        capsys,
        "ctc",
        logits,
        targets,
        np.full(batch, time),
        np.array([20, 18, 15, 12]),
    )
    found = outcome.named("ctc-input-not-log-probs")
    assert found["severity"] == "error" and "log_softmax(2)" in found["fix"]
    assert outcome.errors() <= {"ctc-input-not-log-probs", "negative-loss"}


# https://github.com/ypwhs/captcha_break/issues/29 (ctc loss becomes nan: "target_length 过长,
# input_length 过短" after shrinking the image, the model emits too few frames)
def test_captcha_ctc_with_too_few_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    time, batch, classes = 6, 32, 37  # 36 characters + blank
    log_probs = log_softmax(RNG.normal(size=(time, batch, classes)), 2).astype(np.float32)
    targets = RNG.integers(1, classes, size=(batch, 4))
    targets[0] = [5, 5, 7, 7]  # "AABB" needs 6 frames
    targets[1] = [9, 9, 9, 9]  # "CCCC" needs 7 frames
    outcome = debug(
        tmp_path,
        capsys,
        "ctc",
        log_probs,
        targets,
        np.full(batch, time),
        np.full(batch, 4),
    )
    found = outcome.named("ctc-target-too-long")
    assert found["severity"] == "error" and "sample 1 needs 7 frames" in found["message"]
    assert "--zero-infinity" in found["fix"]
    # the inf loss makes the gradient NaN: reported as a consequence, pointing at the cause
    gradient = outcome.named("non-finite-gradient")
    assert "non-finite loss" in gradient["message"] and "zero-infinity" in gradient["fix"]
    assert outcome.errors() == {"ctc-target-too-long", "non-finite-loss", "non-finite-gradient"}


# https://github.com/meijieru/crnn.pytorch/issues/132 ("0 is reserved for 'blank' required by
# wrap_ctc", so characters map to i + 1; labels that start at 0 collide with the blank)
def test_ctc_labels_start_at_blank(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    time, batch, classes = 26, 8, 37
    log_probs = log_softmax(RNG.normal(size=(time, batch, classes)), 2).astype(np.float32)
    targets = RNG.integers(0, classes - 1, size=(batch, 6))  # alphabet.index(char), 0-based
    targets[0, 0] = 0
    outcome = debug(
        tmp_path, capsys, "ctc", log_probs, targets, np.full(batch, time), np.full(batch, 6)
    )
    found = outcome.named("ctc-blank-in-targets")
    assert found["severity"] == "error" and "targets + 1" in found["fix"]
    assert outcome.errors() == {"ctc-blank-in-targets"}


# https://runebook.dev/en/docs/pytorch/generated/torch.nn.functional.ctc_loss ("CTC Loss expects
# (Time_steps, Batch_size, Num_classes) ... typical PyTorch model outputs are (N, T, C)")
def test_ctc_batch_first_log_probs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch, time, classes = 4, 50, 30
    log_probs = log_softmax(RNG.normal(size=(batch, time, classes)), 2).astype(np.float32)
    targets = RNG.integers(1, classes, size=(batch, 10))
    outcome = debug(
        tmp_path,
        capsys,
        "ctc",
        log_probs,
        targets,
        np.full(batch, time),
        np.array([10, 9, 8, 7]),
    )
    # the shape check (checks/shapes.py) sees N and T swapped before any value check runs
    found = outcome.named("batch-size-mismatch")
    assert found["severity"] == "error"
    assert "log_probs.transpose(0, 1)" in found["fix"]
    assert outcome.errors() == {"batch-size-mismatch"}


# --- low precision -----------------------------------------------------------------------------


# https://github.com/qubvel-org/segmentation_models.pytorch/issues/463 ("Mixed Precision (float16)
# lead to nan loss (soft_dice_score is inf)": 512 * 512 = 262144 pixels overflow float16 sums)
def test_float16_dice_overflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = torch.full((1, 1, 512, 512), 6.0, dtype=torch.float16)
    mask = torch.ones((1, 1, 512, 512), dtype=torch.float16)
    outcome = debug(tmp_path, capsys, "dice", logits, mask)
    found = outcome.named("low-precision")
    assert found["severity"] == "warning"
    assert "overflows in float16" in found["message"]
    assert ".float()" in found["fix"]
    assert not outcome.errors(), outcome.summary()


# https://github.com/openvla/openvla/issues/30 ("using float16 for computation could cause the
# train_loss to become NaN"; "float16 captures a smaller range of numbers ... overflow"): logits
# of a float16 model that overflowed, saved for debugging
def test_float16_logits_that_overflowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = RNG.normal(scale=20, size=(8, 1000)).astype(np.float16)
    logits[2, 5] = np.inf  # an activation beyond 65504
    logits[3, :4] = np.nan  # inf - inf further down the network
    labels = RNG.integers(0, 1000, size=8)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    found = outcome.named("non-finite-input")
    assert found["severity"] == "error"
    assert "65504" in found["fix"] and "bfloat16" in found["fix"]
    precision = outcome.named("low-precision")
    assert "even in float64" in precision["message"]  # not blamed on the precision
    assert outcome.errors() == {"non-finite-input", "non-finite-loss", "non-finite-gradient"}


# --- shapes (the other reviewer's checks; only tested here) -------------------------------------


# https://github.com/deepset-ai/FARM/issues/229 ("Using a target size (torch.Size([32, 1])) that
# is different to the input size (torch.Size([32]))", a regression task with labels 0..16)
def test_regression_head_n_by_1_against_n(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions = RNG.uniform(0, 16, size=32).astype(np.float32)
    labels = RNG.integers(0, 17, size=(32, 1)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "mse", predictions, labels)
    found = outcome.named("silent-broadcast")
    assert found["severity"] == "error"
    assert outcome.errors() == {"silent-broadcast"}
