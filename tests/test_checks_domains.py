"""Domain checks: each finding fires on the mistake as it happens in training code, and a near miss does not.

Every case runs through ``pipeline.evaluate`` (conversion, checks, torch, result checks).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from evaluation import evaluate, named, only
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from losscli.cli import app
from losscli.findings import Severity

RNG = np.random.default_rng(20261123)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    return F.log_softmax(torch.from_numpy(logits), dim=axis).numpy()


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    return F.softmax(torch.from_numpy(logits), dim=axis).numpy()


# --- target-outside-unit-interval -----------------------------------------------------------


def segmentation_logits() -> np.ndarray:
    return RNG.normal(size=(4, 1, 16, 16)).astype(np.float32)


def test_uint8_255_mask_to_bce_logits_says_divide_by_255() -> None:
    # a binary mask saved as PNG/uint8: foreground 255
    mask = (RNG.random((4, 1, 16, 16)) > 0.7).astype(np.uint8) * 255
    report = evaluate("bce-logits", segmentation_logits(), mask)
    found = only(report, "target-outside-unit-interval")
    assert found.severity is Severity.ERROR
    outside = int((mask == 255).sum())
    assert f"{outside} of 1024 values" in found.message
    assert "max 255" in found.message and "uint8" in found.fix
    assert "target = target.float() / 255" in found.fix
    # bce-logits computes anyway (torch does not check), and the value is computed
    assert report.computation is not None and not found.blocking


def test_signs_target_to_focal_says_shift_to_zero_one() -> None:
    # labels from an SVM-style dataset: -1 / 1
    labels = RNG.choice([-1.0, 1.0], size=(32, 3)).astype(np.float32)
    found = only(
        evaluate("focal", RNG.normal(size=(32, 3)), labels), "target-outside-unit-interval"
    )
    assert f"{int((labels == -1).sum())} of 96 values" in found.message
    assert "min -1" in found.message
    assert "(target + 1) / 2" in found.fix


def test_void_label_255_in_a_binary_mask_says_leave_it_out() -> None:
    mask = (RNG.random((2, 8, 8)) > 0.5).astype(np.uint8)
    mask[:, 0, :] = 255  # border pixels marked void
    found = only(evaluate("dice", RNG.normal(size=(2, 8, 8)), mask), "target-outside-unit-interval")
    assert "16 of 128 values" in found.message
    assert "!= 255" in found.fix


def test_the_fix_sentence_and_the_remedies_read_the_targets_the_same_way() -> None:
    # ImageNet-style class indices (0..999) given to bce-logits with one logit per class:
    # the sentence says class indices, and the remedy is the loss for class indices
    logits = RNG.normal(size=(64, 1000)).astype(np.float32)
    labels = RNG.integers(0, 1000, size=64)
    found = only(evaluate("bce-logits", logits, labels), "target-outside-unit-interval")
    assert "look like class indices" in found.fix
    assert [r.loss for r in found.remedies] == ["cross-entropy"]
    # -1 marks entries to ignore in a {0, -1} target: dropping them is not a map, so the
    # sentence says drop them and there is no remedy (not "map -1 and 0 to 0 and 1")
    ignored = RNG.choice([-1.0, 0.0], size=(32, 3)).astype(np.float32)
    found = only(
        evaluate("bce-logits", RNG.normal(size=(32, 3)), ignored), "target-outside-unit-interval"
    )
    assert "padding or an ignore label" in found.fix
    assert found.remedies == ()


def test_bce_target_outside_blocks_because_torch_rejects_it() -> None:
    probabilities = RNG.uniform(0.05, 0.95, size=16).astype(np.float32)
    targets = RNG.integers(0, 3, size=16)  # class indices 0..2 given to bce
    targets[0] = 2
    report = evaluate("bce", probabilities, targets)
    found = only(report, "target-outside-unit-interval")
    assert found.blocking and report.computation is None
    assert "cross-entropy" in found.fix  # whole numbers 0..2 look like class indices
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
        F.binary_cross_entropy(torch.from_numpy(probabilities), torch.from_numpy(targets).float())


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from(["bce-logits", "focal", "dice", "multilabel-soft-margin"]),
    foreground=st.floats(0.01, 0.99),
)
def test_any_255_mask_fires_for_every_binary_target_loss(
    seed: int, loss: str, foreground: float
) -> None:
    rng = np.random.default_rng(seed)
    mask = (rng.random((3, 20)) < foreground).astype(np.uint8) * 255
    mask[0, 0] = 255  # at least one foreground pixel
    found = only(evaluate(loss, rng.normal(size=(3, 20)), mask), "target-outside-unit-interval")
    assert f"{int((mask == 255).sum())} of 60 values" in found.message
    assert "/ 255" in found.fix


def test_soft_and_hard_targets_inside_unit_interval_do_not_fire() -> None:
    # near miss: label smoothing 0.05/0.95, and exact 0 and 1
    smoothed = RNG.choice([0.05, 0.95], size=(8, 5))
    smoothed[0, :2] = [0.0, 1.0]
    for loss in ("bce-logits", "focal", "dice", "multilabel-soft-margin"):
        assert not named(
            evaluate(loss, RNG.normal(size=(8, 5)), smoothed), "target-outside-unit-interval"
        )


def test_rounding_a_hair_above_one_is_not_outside_for_bce_logits() -> None:
    # soft labels averaged in float32 can land one ulp above 1; torch's bce-logits accepts it
    targets = np.array(
        [0.0, 1.0, np.nextafter(np.float32(1), np.float32(2)), 0.5], dtype=np.float32
    )
    assert targets[2] > 1  # precondition
    report = evaluate("bce-logits", RNG.normal(size=4).astype(np.float32), targets)
    assert not named(report, "target-outside-unit-interval")


# --- input-outside-unit-interval, saturated-probabilities -----------------------------------


def test_logits_given_to_bce_names_the_bce_logits_command() -> None:
    logits = RNG.normal(scale=2, size=(64,)).astype(np.float32)
    targets = (RNG.random(64) > 0.5).astype(np.float32)
    report = evaluate("bce", logits, targets)
    found = only(report, "input-outside-unit-interval")
    assert found.severity is Severity.ERROR and found.blocking
    negative, above = int((logits < 0).sum()), int((logits > 1).sum())
    assert f"{negative + above} of 64 values" in found.message
    assert f"{negative} negative, {above} above 1" in found.message
    assert "bce-logits" in found.fix
    assert [r.loss for r in found.remedies] == ["bce-logits"]  # beyond [-1, 1]: not tanh
    assert report.computation is None


def test_sigmoid_outputs_inside_unit_interval_do_not_fire() -> None:
    probabilities = 1 / (1 + np.exp(-RNG.normal(size=64)))
    report = evaluate("bce", probabilities, (RNG.random(64) > 0.5).astype(np.float32))
    assert not named(report, "input-outside-unit-interval")
    assert not named(report, "saturated-probabilities")


def test_sigmoid_of_large_logits_saturates_to_exactly_one() -> None:
    # torch.sigmoid(out) in float32 with |out| > 17 rounds to exactly 1.0 (or 0 below -88)
    logits = RNG.normal(scale=30, size=(256,)).astype(np.float32)
    probabilities = torch.sigmoid(torch.from_numpy(logits)).numpy()
    zeros, ones = int((probabilities == 0).sum()), int((probabilities == 1).sum())
    assert ones > 0  # precondition for the case
    found = only(
        evaluate("bce", probabilities, (RNG.random(256) > 0.5).astype(np.float32)),
        "saturated-probabilities",
    )
    assert found.severity is Severity.WARNING
    assert f"{zeros} values of exactly 0 and {ones} of exactly 1" in found.message
    assert "bce-logits" in found.fix


def test_clipped_probabilities_do_not_saturate() -> None:
    probabilities = np.clip(RNG.random(100), 1e-6, 1 - 1e-6).astype(np.float32)
    report = evaluate("bce", probabilities, (RNG.random(100) > 0.5).astype(np.float32))
    assert not named(report, "saturated-probabilities")


# --- sign-target-expected ---------------------------------------------------------------------


def test_hinge_embedding_with_zero_one_labels_says_times_two_minus_one() -> None:
    # labels from a {0, 1} "similar / dissimilar" pairs dataset, fed to nn.HingeEmbeddingLoss
    distances = np.abs(RNG.normal(size=32)).astype(np.float32)
    labels = RNG.integers(0, 2, size=32)
    found = only(evaluate("hinge-embedding", distances, labels), "sign-target-expected")
    zeros = int((labels == 0).sum())
    assert found.severity is Severity.ERROR
    assert f"{zeros} of 32 values" in found.message and f"0 ×{zeros}" in found.message
    assert "target * 2 - 1" in found.fix


def test_margin_ranking_with_random_normal_target_says_so() -> None:
    # y = torch.randn(N) copied from a docs example
    x1, x2, y = (RNG.normal(size=20).astype(np.float32) for _ in range(3))
    found = only(evaluate("margin-ranking", x1, x2, y), "sign-target-expected")
    assert "20 of 20" in found.message and "continuous" in found.message
    assert "random or continuous" in found.fix


def test_cosine_and_soft_margin_with_sign_targets_do_not_fire() -> None:
    y = RNG.choice([-1.0, 1.0], size=12)
    cosine = evaluate("cosine-embedding", RNG.normal(size=(12, 4)), RNG.normal(size=(12, 4)), y)
    soft = evaluate("soft-margin", RNG.normal(size=12), y)
    assert not named(cosine, "sign-target-expected") and not named(soft, "sign-target-expected")


# --- poisson-nll --------------------------------------------------------------------------------


def test_standardised_counts_are_negative_poisson_targets() -> None:
    counts = RNG.poisson(4, size=50).astype(np.float64)
    standardised = (counts - counts.mean()) / counts.std()  # StandardScaler on the target
    found = only(
        evaluate("poisson-nll", RNG.normal(size=50), standardised), "negative-poisson-target"
    )
    negative = int((standardised < 0).sum())
    assert found.severity is Severity.ERROR
    assert f"{negative} negative values of 50" in found.message
    assert "raw counts" in found.fix


def test_zero_counts_are_fine() -> None:
    counts = np.zeros(10)
    counts[3] = 2
    assert not named(
        evaluate("poisson-nll", RNG.normal(size=10), counts), "negative-poisson-target"
    )


def test_rates_with_log_input_warn_that_exp_explodes() -> None:
    # a model with a softplus head predicting counts directly, loss left at log_input=True
    counts = RNG.poisson(40, size=32)
    rates = counts + RNG.uniform(0.5, 3, size=32)
    found = only(evaluate("poisson-nll", rates, counts), "poisson-log-input-mismatch")
    assert found.severity is Severity.WARNING
    assert f"median {np.median(rates):.4g}" in found.message
    assert f"largest count of {counts.max()}" in found.message
    assert "--no-log-input" in found.fix


def test_log_rates_of_large_counts_do_not_look_like_rates() -> None:
    # near miss: log-rates around 5.3 (counts around 200) are large but correct
    counts = RNG.poisson(200, size=64)
    log_rates = np.log(counts + RNG.uniform(-5, 5, size=64))
    assert np.median(log_rates) > 5  # above the median threshold alone
    report = evaluate("poisson-nll", log_rates, counts)
    assert not named(report, "poisson-log-input-mismatch")


def test_log_rates_with_no_log_input_are_an_error() -> None:
    counts = RNG.poisson(2, size=16)
    log_rates = np.log(counts + 0.5)
    log_rates[0] = -0.7
    report = evaluate("poisson-nll", log_rates, counts, log_input=False)
    found = only(report, "poisson-log-input-mismatch")
    assert found.severity is Severity.ERROR
    assert f"{int((log_rates < 0).sum())} negative values of 16" in found.message
    assert "drop --no-log-input" in found.fix
    rates = counts + 0.5
    assert not named(
        evaluate("poisson-nll", rates, counts, log_input=False), "poisson-log-input-mismatch"
    )


# --- gaussian-nll -------------------------------------------------------------------------------


def test_unconstrained_variance_head_goes_negative() -> None:
    # mean, var = model(x)[:, 0], model(x)[:, 1], with no softplus on the variance
    head = RNG.normal(size=(24, 2)).astype(np.float32)
    mean, variance = head[:, 0], head[:, 1]
    report = evaluate("gaussian-nll", mean, RNG.normal(size=24), variance)
    found = only(report, "nonpositive-variance")
    assert found.severity is Severity.ERROR and found.blocking
    assert f"{int((variance < 0).sum())} negative and 0 zero values of 24" in found.message
    assert "F.softplus(raw_var) + 1e-6" in found.fix
    assert report.computation is None


def test_zero_variance_is_reported_but_computed() -> None:
    variance = np.ones(8)
    variance[5] = 0.0
    report = evaluate("gaussian-nll", RNG.normal(size=8), RNG.normal(size=8), variance)
    found = only(report, "nonpositive-variance")
    assert "0 negative and 1 zero" in found.message and "index 5" in found.message
    assert not found.blocking and report.computation is not None


def test_tiny_positive_variance_does_not_fire() -> None:
    variance = F.softplus(torch.full((8,), -12.0)).numpy() + 1e-6  # tiny but > 0
    report = evaluate("gaussian-nll", RNG.normal(size=8), RNG.normal(size=8), variance)
    assert not named(report, "nonpositive-variance")


# --- kl-div ---------------------------------------------------------------------------------------


def test_kl_div_given_softmax_outputs_says_log_softmax() -> None:
    student, teacher = RNG.normal(size=(16, 10)), RNG.normal(size=(16, 10))
    report = evaluate("kl-div", softmax(student, 1), softmax(teacher, 1), reduction="batchmean")
    found = only(report, "kl-input-not-log")
    assert found.severity is Severity.ERROR
    assert "160 positive values of 160" in found.message and "probabilities" in found.message
    assert "F.log_softmax(logits, dim=1)" in found.fix


def test_kl_div_softmax_over_the_vocabulary_names_that_dim() -> None:
    # sequence distillation [batch, time, vocab]: F.softmax(student_logits, dim=-1) by mistake
    student = softmax(RNG.normal(size=(2, 6, 40)), -1)
    teacher = softmax(RNG.normal(size=(2, 6, 40)), -1)
    found = only(evaluate("kl-div", student, teacher, reduction="batchmean"), "kl-input-not-log")
    assert "F.log_softmax(logits, dim=2)" in found.fix


def test_kl_div_arguments_swapped_is_named() -> None:
    # F.kl_div(p_teacher, log_q_student): target first
    student, teacher = RNG.normal(size=(8, 5)), RNG.normal(size=(8, 5))
    report = evaluate("kl-div", softmax(teacher, 1), log_softmax(student, 1), reduction="batchmean")
    assert "swapped" in only(report, "kl-input-not-log").fix
    assert not named(report, "kl-target-not-distribution")  # one mistake, one finding


def test_kl_div_raw_logits_input() -> None:
    report = evaluate(
        "kl-div",
        RNG.normal(size=(8, 5)),
        softmax(RNG.normal(size=(8, 5)), 1),
        reduction="batchmean",
    )
    assert "logits" in only(report, "kl-input-not-log").message


def test_kl_div_log_probability_target_without_log_target() -> None:
    target = log_softmax(RNG.normal(size=(8, 5)), 1)
    report = evaluate(
        "kl-div", log_softmax(RNG.normal(size=(8, 5)), 1), target, reduction="batchmean"
    )
    found = only(report, "kl-target-not-distribution")
    assert found.severity is Severity.ERROR
    assert "40 negative values of 40" in found.message
    assert "--log-target" in found.fix


def test_kl_div_target_rows_not_summing_to_one() -> None:
    # a histogram of counts normalised by the wrong total
    counts = RNG.integers(1, 10, size=(6, 4)).astype(np.float64)
    target = counts / counts.sum()  # should be counts / counts.sum(dim=1, keepdim=True)
    report = evaluate(
        "kl-div", log_softmax(RNG.normal(size=(6, 4)), 1), target, reduction="batchmean"
    )
    found = only(report, "kl-target-not-distribution")
    sums = target.sum(axis=1)
    assert "6 of 6 rows" in found.message
    assert f"sums from {sums.min():.4g} to {sums.max():.4g}" in found.message
    assert "sum(dim=1, keepdim=True)" in found.fix


def test_kl_div_probability_target_with_log_target() -> None:
    report = evaluate(
        "kl-div",
        log_softmax(RNG.normal(size=(6, 4)), 1),
        softmax(RNG.normal(size=(6, 4)), 1),
        reduction="batchmean",
        log_target=True,
    )
    found = only(report, "kl-target-not-distribution")
    assert "24 positive values" in found.message and "drop --log-target" in found.fix


def test_kl_div_log_target_checked_in_log_space() -> None:
    # teacher_logits - teacher_logits.max(): <= 0 but never normalised
    logits = RNG.normal(size=(6, 4))
    unnormalised = logits - logits.max(axis=1, keepdims=True)
    report = evaluate(
        "kl-div",
        log_softmax(RNG.normal(size=(6, 4)), 1),
        unnormalised,
        reduction="batchmean",
        log_target=True,
    )
    found = only(report, "kl-target-not-distribution")
    sums = np.exp(unnormalised).sum(axis=1)
    assert "each row of exp(target) to sum to 1" in found.message
    assert "6 of 6 rows" in found.message and f"sums from {sums.min():.4g}" in found.message
    assert "F.log_softmax(teacher_logits, dim=1)" in found.fix


def test_kl_div_valid_targets_in_both_spaces_do_not_fire() -> None:
    student, teacher = RNG.normal(size=(8, 5)), RNG.normal(size=(8, 5))
    linear = evaluate("kl-div", log_softmax(student, 1), softmax(teacher, 1), reduction="batchmean")
    in_log = evaluate(
        "kl-div",
        log_softmax(student, 1),
        log_softmax(teacher, 1),
        reduction="batchmean",
        log_target=True,
    )
    for report in (linear, in_log):
        assert not named(report, "kl-target-not-distribution")
        assert not named(report, "kl-input-not-log")


def test_kl_div_sequence_distillation_over_the_vocabulary_does_not_fire() -> None:
    # [batch, time, vocab] with softmax over the last dim; padded positions all zero
    teacher = softmax(RNG.normal(size=(2, 7, 30)), -1)
    teacher[1, 5:] = 0.0
    student = log_softmax(RNG.normal(size=(2, 7, 30)), -1)
    report = evaluate("kl-div", student, teacher, reduction="batchmean")
    assert not named(report, "kl-target-not-distribution")
    assert not named(report, "kl-input-not-log")


def test_kl_div_default_mean_reduction_warns_with_the_factor() -> None:
    student, teacher = RNG.normal(size=(16, 10)), RNG.normal(size=(16, 10))
    report = evaluate("kl-div", log_softmax(student, 1), softmax(teacher, 1))
    found = only(report, "kl-mean-reduction")
    assert found.severity is Severity.WARNING
    assert "all 160 elements" in found.message and "N=16" in found.message
    assert "10x smaller" in found.message
    assert "--reduction batchmean" in found.fix
    # the factor is right: batchmean equals mean times 10 (torch)
    assert report.computation is not None and report.computation.value is not None
    batchmean = F.kl_div(
        torch.from_numpy(log_softmax(student, 1)).float(),
        torch.from_numpy(softmax(teacher, 1)).float(),
        reduction="batchmean",
    )
    assert float(batchmean) == pytest.approx(report.computation.value * 10, rel=1e-5)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
def test_kl_div_other_reductions_do_not_warn(reduction: str) -> None:
    report = evaluate(
        "kl-div",
        log_softmax(RNG.normal(size=(4, 3)), 1),
        softmax(RNG.normal(size=(4, 3)), 1),
        reduction=reduction,
    )
    assert not named(report, "kl-mean-reduction")


def test_kl_div_mean_on_one_distribution_equals_batchmean_and_does_not_warn() -> None:
    report = evaluate("kl-div", log_softmax(RNG.normal(size=6)), softmax(RNG.normal(size=6)))
    assert not named(report, "kl-mean-reduction")


# --- ctc ------------------------------------------------------------------------------------------


def ctc_batch(
    time: int = 40, batch: int = 4, classes: int = 12, target_length: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Encoder logits [time, batch, classes], padded targets (0 beyond length), lengths."""
    logits = RNG.normal(size=(time, batch, classes)).astype(np.float32)
    target_lengths = RNG.integers(3, target_length + 1, size=batch)
    targets = np.zeros((batch, target_length), dtype=np.int64)
    for n, length in enumerate(target_lengths):
        targets[n, :length] = RNG.integers(1, classes, size=length)
    input_lengths = np.full(batch, time)
    input_lengths[-1] = time - 5
    return logits, targets, input_lengths, target_lengths


def test_ctc_softmax_instead_of_log_softmax() -> None:
    logits, targets, input_lengths, target_lengths = ctc_batch()
    probabilities = softmax(logits, 2)
    report = evaluate("ctc", probabilities, targets, input_lengths, target_lengths)
    found = only(report, "ctc-input-not-log-probs")
    frames = int(input_lengths.sum())
    assert found.severity is Severity.ERROR
    assert f"{frames} of {frames} frames" in found.message and "softmax output" in found.message
    assert "logits.log_softmax(2)" in found.fix


def test_ctc_raw_logits() -> None:
    logits, targets, input_lengths, target_lengths = ctc_batch()
    found = only(
        evaluate("ctc", logits, targets, input_lengths, target_lengths), "ctc-input-not-log-probs"
    )
    assert "raw scores" in found.message and "log_softmax(2)" in found.fix


def test_ctc_log_softmax_over_the_batch_dim() -> None:
    logits, targets, input_lengths, target_lengths = ctc_batch()
    found = only(
        evaluate("ctc", log_softmax(logits, 1), targets, input_lengths, target_lengths),
        "ctc-input-not-log-probs",
    )
    assert "batch dim" in found.message and "not dim=1" in found.fix


def test_ctc_zero_padded_frames_beyond_input_length_do_not_fire() -> None:
    logits, targets, input_lengths, target_lengths = ctc_batch()
    log_probs = log_softmax(logits, 2)
    log_probs[int(input_lengths[-1]) :, -1, :] = (
        0.0  # pad_sequence(padding_value=0) after log_softmax
    )
    report = evaluate("ctc", log_probs, targets, input_lengths, target_lengths)
    assert not named(report, "ctc-input-not-log-probs")


def test_ctc_zero_based_vocabulary_hits_the_blank() -> None:
    # char_to_index = {c: i for i, c in enumerate(alphabet)}: the first character is 0 = blank
    logits, targets, input_lengths, target_lengths = ctc_batch(classes=12)
    targets = targets - 1
    for n, length in enumerate(target_lengths):
        targets[n, length:] = 0  # padding stays 0
    targets[0, 1] = 0
    targets[2, 0] = 0
    report = evaluate("ctc", log_softmax(logits, 2), targets, input_lengths, target_lengths)
    found = only(report, "ctc-blank-in-targets")
    inside = sum(int((targets[n, :length] == 0).sum()) for n, length in enumerate(target_lengths))
    assert found.severity is Severity.ERROR
    assert f"{inside} times" in found.message and "sample 0, position" in found.message
    assert "targets + 1" in found.fix


def test_ctc_blank_padding_beyond_the_length_does_not_fire() -> None:
    logits, targets, input_lengths, target_lengths = ctc_batch()
    assert (targets == 0).any()  # padding exists
    report = evaluate("ctc", log_softmax(logits, 2), targets, input_lengths, target_lengths)
    assert not named(report, "ctc-blank-in-targets")


def test_ctc_last_class_blank_used_as_a_label_suggests_an_unused_index() -> None:
    # nn.CTCLoss(blank=C - 1) with labels 1..C-1: the last label collides with the blank
    logits, _, input_lengths, _ = ctc_batch(batch=2, classes=6)
    targets = np.array([[1, 5, 2], [3, 4, 5]])
    report = evaluate(
        "ctc", log_softmax(logits, 2), targets, input_lengths, np.array([3, 3]), blank=5
    )
    found = only(report, "ctc-blank-in-targets")
    assert "blank index 5" in found.message and "2 times in 2 of 2 samples" in found.message
    assert "--blank 0" in found.fix  # 0 is the only class no label uses


def test_ctc_concatenated_targets_with_blank() -> None:
    logits, _, input_lengths, _ = ctc_batch(batch=2)
    targets = np.array([3, 4, 5, 0, 2, 2, 7])  # sample 1 holds the blank
    target_lengths = np.array([3, 4])
    found = only(
        evaluate("ctc", log_softmax(logits, 2), targets, input_lengths, target_lengths),
        "ctc-blank-in-targets",
    )
    assert "once in 1 of 2 samples" in found.message and "sample 1, position 0" in found.message


def test_ctc_targets_longer_than_the_downsampled_time_axis() -> None:
    # 200 audio frames, a 4x-downsampling encoder: 50 frames; transcripts of 60 characters
    logits = RNG.normal(size=(50, 2, 30)).astype(np.float32)
    targets = RNG.integers(1, 30, size=(2, 60))
    input_lengths = np.array([50, 50])
    target_lengths = np.array([60, 20])
    report = evaluate("ctc", log_softmax(logits, 2), targets, input_lengths, target_lengths)
    found = only(report, "ctc-target-too-long")
    repeats = int((targets[0, 1:60] == targets[0, :59]).sum())
    assert found.severity is Severity.ERROR
    assert f"sample 0 needs {60 + repeats} frames (60 labels + {repeats} repeated pairs)" in (
        found.message
    )
    assert "has 50" in found.message and "1 of 2" in found.message
    assert "--zero-infinity" in found.fix
    assert report.computation is not None and report.computation.per_sample[0] == np.inf


def test_ctc_repeated_labels_need_a_blank_between_them() -> None:
    # "hello" has one repeated pair ("ll"): 5 labels need 6 frames
    log_probs = log_softmax(RNG.normal(size=(6, 1, 10)).astype(np.float32), 2)
    hello = np.array([[8, 5, 3, 3, 6]])
    assert not named(
        evaluate("ctc", log_probs, hello, np.array([6]), np.array([5])), "ctc-target-too-long"
    )
    report = evaluate("ctc", log_probs, hello, np.array([5]), np.array([5]))
    found = only(report, "ctc-target-too-long")
    assert "needs 6 frames (5 labels + 1 repeated pairs) but has 5" in found.message
    # torch agrees: the loss is infinite with 5 frames and finite with 6
    loss = F.ctc_loss(
        torch.from_numpy(log_probs[:5]), torch.from_numpy(hello), (5,), (5,), reduction="none"
    )
    assert torch.isinf(loss).all()


def test_ctc_too_long_with_zero_infinity_is_a_warning() -> None:
    log_probs = log_softmax(RNG.normal(size=(6, 1, 10)).astype(np.float32), 2)
    hello = np.array([[8, 5, 3, 3, 6]])
    report = evaluate("ctc", log_probs, hello, np.array([5]), np.array([5]), zero_infinity=True)
    found = only(report, "ctc-target-too-long")
    assert found.severity is Severity.WARNING and "sets their loss to 0" in found.message


def test_ctc_input_lengths_beyond_time_block() -> None:
    logits, targets, _, target_lengths = ctc_batch(time=20)
    report = evaluate(
        "ctc", log_softmax(logits, 2), targets, np.array([20, 20, 21, 20]), target_lengths
    )
    found = only(report, "ctc-target-too-long")
    assert found.blocking and "sample 2, length 21" in found.message and "T=20" in found.fix
    assert report.computation is None


# --- end to end through the CLI -------------------------------------------------------------------


def test_cli_debug_on_a_saved_255_mask_exits_1_with_the_fix(tmp_path: Path) -> None:
    logits, mask = tmp_path / "logits.npy", tmp_path / "mask.npy"
    np.save(logits, RNG.normal(size=(2, 1, 8, 8)).astype(np.float32))
    np.save(mask, (RNG.random((2, 1, 8, 8)) > 0.5).astype(np.uint8) * 255)
    result = CliRunner().invoke(
        app, ["debug", str(logits), str(mask), "--loss", "bce-logits", "--format", "json"]
    )
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    (found,) = [f for f in report["findings"] if f["name"] == "target-outside-unit-interval"]
    assert found["severity"] == "error" and "/ 255" in found["fix"]
    assert f"{mask}" in found["message"]


def test_cli_compute_on_clean_log_softmax_kl_exits_0(tmp_path: Path) -> None:
    student, teacher = tmp_path / "student.npy", tmp_path / "teacher.npy"
    np.save(student, log_softmax(RNG.normal(size=(8, 5))).astype(np.float32))
    np.save(teacher, softmax(RNG.normal(size=(8, 5))).astype(np.float32))
    result = CliRunner().invoke(
        app,
        [
            *("compute", "kl-div", str(student), str(teacher)),
            *("--reduction", "batchmean", "--format", "json", "--fail-on", "warning"),
        ],
    )
    assert result.exit_code == 0, result.stdout
    assert [f["name"] for f in json.loads(result.stdout)["findings"]] == []


# --- ctc labels out of range (class-index-out-of-range) ------------------------------------------


def test_ctc_minus_one_padding_inside_the_target_lengths() -> None:
    # targets padded with -1 but target_lengths set to the padded width
    log_probs = log_softmax(RNG.normal(size=(30, 2, 8)), 2).astype(np.float32)
    targets = np.array([[1, 2, -1, -1], [3, 4, 5, -1]])
    report = evaluate("ctc", log_probs, targets, np.array([30, 30]), np.array([4, 4]))
    found = only(report, "class-index-out-of-range")
    assert found.severity is Severity.ERROR and found.blocking
    assert "3 labels outside 0..7" in found.message and "2 of 2 samples" in found.message
    assert "(targets >= 0).sum(1)" in found.fix
    # near miss: the same padding beyond correct lengths is never read
    report = evaluate("ctc", log_probs, targets, np.array([30, 30]), np.array([2, 3]))
    assert not named(report, "class-index-out-of-range")
    assert report.computation is not None


def test_ctc_labels_beyond_the_class_dim_name_the_class_count() -> None:
    log_probs = log_softmax(RNG.normal(size=(30, 2, 8)), 2).astype(np.float32)
    targets = np.array([[1, 2, 8, 3], [3, 4, 5, 9]])  # a 10-symbol alphabet, an 8-class head
    found = only(
        evaluate("ctc", log_probs, targets, np.array([30, 30]), np.array([4, 4])),
        "class-index-out-of-range",
    )
    assert "values 8 to 9" in found.message and "10 classes" in found.fix
    # near miss: the largest valid label, C - 1
    targets[:, 2:] = 7
    report = evaluate("ctc", log_probs, targets, np.array([30, 30]), np.array([4, 4]))
    assert not named(report, "class-index-out-of-range")


# --- poisson-nll: rates given to log_input=True, read by fit -----------------------------------


def test_softplus_rates_with_the_default_log_input_fit_better_as_rates() -> None:
    # a softplus head predicting rates around 1-6, passed to nn.PoissonNLLLoss() (log_input=True)
    rates = (np.log1p(np.exp(RNG.normal(1.0, 1.0, size=500))) + 0.5).astype(np.float32)
    counts = RNG.poisson(rates).astype(np.float32)
    found = only(evaluate("poisson-nll", rates, counts), "poisson-log-input-mismatch")
    assert found.severity is Severity.WARNING
    assert "read as rates they fit the counts far better" in found.message
    assert "--no-log-input" in found.fix
    # near misses: the log of those rates, and log-rates of large counts that are all positive
    assert not named(evaluate("poisson-nll", np.log(rates), counts), "poisson-log-input-mismatch")
    big = RNG.gamma(20.0, 5.0, size=500)
    report = evaluate("poisson-nll", np.log(big).astype(np.float32), RNG.poisson(big))
    assert not named(report, "poisson-log-input-mismatch")


def test_probabilities_a_rounding_unit_outside_say_clamp_not_logits() -> None:
    probabilities = np.array([0.2, 1.0000001, 0.7, -1e-8, 0.5, 0.9, 0.1, 0.4], np.float32)
    found = only(
        evaluate("bce", probabilities, np.ones(8, np.float32)), "input-outside-unit-interval"
    )
    assert found.blocking and "rounding error" in found.message
    assert "clamp(0, 1)" in found.fix
    # near miss: 1.001 is not rounding (a logit, or a broken probability): the logits diagnosis
    probabilities[1] = 1.001
    found = only(
        evaluate("bce", probabilities, np.ones(8, np.float32)), "input-outside-unit-interval"
    )
    assert "sigmoid was never applied" in found.message
