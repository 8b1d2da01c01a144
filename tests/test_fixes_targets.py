"""Verified fixes of the target, balance and conversion findings, on mistakes as they happen.

Each case rebuilds the tensors of a real training mistake, runs ``losscli debug --format
json`` (``debug_runner.debug`` also runs every verified fix's command and checks that it
prints what it announced), and asserts that the remedy that undoes the mistake is kept,
clears every warning and error, and gives the value torch gives on the corrected tensors,
computed here directly. The near misses assert that a wrong remedy is not offered.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import Outcome, debug

RNG = np.random.default_rng(20261130)


def codes(outcome: Outcome, name: str) -> list[str | None]:
    return [fix.get("code") for fix in outcome.named(name)["fixes"]]


def fix_with(outcome: Outcome, name: str, code: str) -> dict[str, Any]:
    found = [fix for fix in outcome.named(name)["fixes"] if fix.get("code") == code]
    assert len(found) == 1, (code, outcome.named(name)["fixes"])
    return found[0]


def fix_running(outcome: Outcome, name: str, words: str) -> dict[str, Any]:
    found = [fix for fix in outcome.named(name)["fixes"] if words in (fix.get("command") or "")]
    assert len(found) == 1, (words, outcome.named(name)["fixes"])
    return found[0]


def assert_clean(fix: dict[str, Any], expected: float) -> None:
    """The fix clears every warning and error and gives torch's value on the fixed tensors."""
    assert fix["verified"]["findings"] == []
    assert fix["verified"]["value"] == pytest.approx(expected, rel=1e-6)


def no_placeholders(outcome: Outcome) -> None:
    for item in outcome.findings:
        for fix in item["fixes"]:
            text = f"{fix.get('code')} {fix.get('command')}"
            assert "positive_label" not in text and "lut[" not in text, text


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


# --- class-index-out-of-range: masks saved as pixels ----------------------------------------


def _jpeg_mask(size: tuple[int, int, int]) -> np.ndarray:
    """A black/white mask saved as JPEG: 0 and 255 with a band of in-between values on edges."""
    binary = RNG.random(size) < 0.3
    mask = np.where(binary, 255, 0).astype(np.uint8)
    edges = RNG.random(size) < 0.03
    blur = RNG.integers(1, 32, size=size)
    mask[edges] = np.where(binary[edges], 255 - blur[edges], blur[edges]).astype(np.uint8)
    return mask


def test_jpeg_binary_mask_is_thresholded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(2, 2, 16, 16)).astype(np.float32)
    mask = _jpeg_mask((2, 16, 16))
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, mask)
    fix = fix_with(outcome, "class-index-out-of-range", "target = (target > 127).long()")
    assert_clean(fix, F.cross_entropy(t(logits), t((mask > 127).astype(np.int64))).item())
    no_placeholders(outcome)


def test_palette_mask_gets_no_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # four grey levels (a palette of 4 classes) against a 2-class head: no threshold is honest
    logits = RNG.normal(size=(2, 2, 8, 8)).astype(np.float32)
    mask = RNG.choice(np.array([0, 85, 170, 255], dtype=np.uint8), size=(2, 8, 8))
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, mask)
    assert "target = (target > 127).long()" not in codes(outcome, "class-index-out-of-range")
    no_placeholders(outcome)


def test_ctc_padding_counted_in_target_lengths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # targets padded with -1 to the longest transcript, lengths given as the padded width
    time, batch, classes = 30, 4, 12
    log_probs = torch.randn(time, batch, classes).log_softmax(2).numpy()
    lengths = np.array([6, 4, 5, 3])
    targets = np.full((batch, 6), -1, dtype=np.int64)
    for n, length in enumerate(lengths):
        targets[n, :length] = RNG.integers(1, classes, size=length)
    outcome = debug(
        tmp_path, capsys, "ctc", log_probs, targets, np.full(batch, time), np.full(batch, 6)
    )
    fix = fix_with(outcome, "class-index-out-of-range", "target_lengths = (targets >= 0).sum(1)")
    expected = F.ctc_loss(
        t(log_probs), t(targets), t(np.full(batch, time)), t(lengths), reduction="mean"
    ).item()
    assert_clean(fix, expected)


# --- one-hot, multi-hot and soft targets ----------------------------------------------------


def test_one_hot_target_becomes_class_indices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(16, 5)).astype(np.float32)
    labels = RNG.integers(0, 5, size=16)
    one_hot = np.eye(5, dtype=np.float32)[labels]
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, one_hot)
    fix = fix_with(outcome, "one-hot-target", "target = target.argmax(1)")
    assert_clean(fix, F.cross_entropy(t(logits), t(labels)).item())


def test_multi_hot_target_moves_to_bce_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # tags of an image: several ones per row, stored as int64 by the dataset
    logits = RNG.normal(size=(32, 6)).astype(np.float32)
    tags = (RNG.random((32, 6)) < 0.35).astype(np.int64)
    tags[0, :3] = 1
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, tags)
    found = outcome.named("multilabel-target")
    assert "losscli compute" not in found["fix"]
    fix = fix_running(outcome, "multilabel-target", "compute bce-logits")
    assert fix["code"].startswith("target = target.float(); F.binary_cross_entropy_with_logits(")
    expected = F.binary_cross_entropy_with_logits(t(logits), t(tags).float()).item()
    assert_clean(fix, expected)


def test_multi_hot_rows_for_multilabel_margin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(16, 5)).astype(np.float32)
    multi_hot = (RNG.random((16, 5)) < 0.4).astype(np.int64)
    outcome = debug(tmp_path, capsys, "multilabel-margin", logits, multi_hot)
    fix = fix_running(outcome, "multilabel-target", "compute multilabel-soft-margin")
    expected = F.multilabel_soft_margin_loss(t(logits), t(multi_hot).float()).item()
    assert_clean(fix, expected)


def test_mixup_rows_summing_to_two_are_normalised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # target = lam * onehot_a + onehot_b: the second term lost its (1 - lam)
    logits = RNG.normal(size=(16, 4)).astype(np.float32)
    eye = np.eye(4, dtype=np.float32)
    lam = RNG.uniform(0.2, 0.8, size=(16, 1)).astype(np.float32)
    mixed = lam * eye[RNG.integers(0, 4, 16)] + eye[RNG.integers(0, 4, 16)]
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, mixed)
    fix = fix_with(
        outcome, "soft-target-not-distribution", "target = target / target.sum(1, keepdim=True)"
    )
    normalised = t(mixed) / t(mixed).sum(1, keepdim=True)
    assert_clean(fix, F.cross_entropy(t(logits), normalised).item())
    assert "target = target.softmax(1)" not in codes(outcome, "soft-target-not-distribution")


def test_teacher_scores_as_soft_targets_get_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(16, 4)).astype(np.float32)
    teacher = RNG.normal(scale=3, size=(16, 4)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, teacher)
    fix = fix_with(outcome, "soft-target-not-distribution", "target = target.softmax(1)")
    assert_clean(fix, F.cross_entropy(t(logits), t(teacher).softmax(1)).item())
    assert not any("sum(1" in (c or "") for c in codes(outcome, "soft-target-not-distribution"))


# --- the unit interval ------------------------------------------------------------------------


def test_0_255_mask_for_bce_logits_is_divided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(2, 1, 8, 8)).astype(np.float32)
    mask = np.where(RNG.random((2, 1, 8, 8)) < 0.4, 255, 0).astype(np.uint8)
    outcome = debug(tmp_path, capsys, "bce-logits", logits, mask)
    fix = fix_with(outcome, "target-outside-unit-interval", "target = target / 255")
    expected = F.binary_cross_entropy_with_logits(t(logits), t(mask).float() / 255).item()
    assert_clean(fix, expected)


def test_sign_labels_for_bce_logits_offer_both_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = RNG.normal(size=64).astype(np.float32)
    signs = np.where(RNG.random(64) < 0.5, 1.0, -1.0).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", scores, signs)
    mapped = fix_with(outcome, "target-outside-unit-interval", "target = (target + 1) / 2")
    expected = F.binary_cross_entropy_with_logits(t(scores), (t(signs) + 1) / 2).item()
    assert_clean(mapped, expected)
    kept_signs = fix_running(outcome, "target-outside-unit-interval", "compute soft-margin")
    assert_clean(kept_signs, F.soft_margin_loss(t(scores), t(signs)).item())


def test_labels_one_and_two_become_zero_and_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = RNG.normal(size=40).astype(np.float32)
    labels = RNG.integers(1, 3, size=40)
    outcome = debug(tmp_path, capsys, "bce-logits", scores, labels)
    fix = fix_with(outcome, "target-outside-unit-interval", "target = (target == 2).float()")
    expected = F.binary_cross_entropy_with_logits(t(scores), (t(labels) == 2).float()).item()
    assert_clean(fix, expected)


def test_void_255_in_a_0_1_mask_gets_no_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dividing by 255 would turn every 1 into 0.004: the void label must be left out instead
    logits = RNG.normal(size=(2, 1, 8, 8)).astype(np.float32)
    mask = RNG.choice(np.array([0, 1, 255], dtype=np.uint8), size=(2, 1, 8, 8))
    outcome = debug(tmp_path, capsys, "bce-logits", logits, mask)
    assert outcome.named("target-outside-unit-interval")["fixes"] == []


# --- sign targets -----------------------------------------------------------------------------


def test_zero_one_pair_labels_for_hinge_embedding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distances = RNG.uniform(0, 3, size=50).astype(np.float32)
    same = RNG.integers(0, 2, size=50).astype(np.float32)
    outcome = debug(tmp_path, capsys, "hinge-embedding", distances, same)
    fix = fix_with(outcome, "sign-target-expected", "target = target * 2 - 1")
    assert_clean(fix, F.hinge_embedding_loss(t(distances), t(same) * 2 - 1).item())


def test_one_two_pair_labels_written_with_the_real_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x1 = RNG.normal(size=(20, 8)).astype(np.float32)
    x2 = RNG.normal(size=(20, 8)).astype(np.float32)
    labels = RNG.integers(1, 3, size=20).astype(np.float32)  # 1 = different, 2 = same
    outcome = debug(tmp_path, capsys, "cosine-embedding", x1, x2, labels)
    fix = fix_with(outcome, "sign-target-expected", "y = torch.where(y == 2, 1.0, -1.0)")
    signs = torch.where(t(labels) == 2, 1.0, -1.0)
    assert_clean(fix, F.cosine_embedding_loss(t(x1), t(x2), signs).item())
    assert "positive_label" not in outcome.fix("sign-target-expected")
    no_placeholders(outcome)


def test_random_normal_sign_target_gets_no_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x1 = RNG.normal(size=20).astype(np.float32)
    x2 = RNG.normal(size=20).astype(np.float32)
    y = RNG.normal(size=20).astype(np.float32)  # torch.randn as a stand-in for labels
    outcome = debug(tmp_path, capsys, "margin-ranking", x1, x2, y)
    assert outcome.named("sign-target-expected")["fixes"] == []


# --- kl-div ----------------------------------------------------------------------------------


def test_log_probability_target_without_log_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    student = torch.randn(8, 10).log_softmax(1).numpy()
    teacher = torch.randn(8, 10).log_softmax(1).numpy()
    outcome = debug(
        tmp_path, capsys, "kl-div", student, teacher, options=("--reduction", "batchmean")
    )
    fix = fix_running(outcome, "kl-target-not-distribution", "--log-target")
    expected = F.kl_div(t(student), t(teacher), reduction="batchmean", log_target=True).item()
    assert_clean(fix, expected)


def test_teacher_logits_as_kl_target_get_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    student = torch.randn(8, 10).log_softmax(1).numpy()
    teacher = (torch.randn(8, 10) * 3).numpy()
    outcome = debug(
        tmp_path, capsys, "kl-div", student, teacher, options=("--reduction", "batchmean")
    )
    fix = fix_with(outcome, "kl-target-not-distribution", "target = target.softmax(1)")
    expected = F.kl_div(t(student), t(teacher).softmax(1), reduction="batchmean").item()
    assert_clean(fix, expected)
    assert not any(
        "--log-target" in (f["command"] or "")
        for f in outcome.named("kl-target-not-distribution")["fixes"]
    )


def test_probabilities_given_with_log_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    student = torch.randn(8, 10).log_softmax(1).numpy()
    teacher = torch.randn(8, 10).softmax(1).numpy()
    outcome = debug(
        tmp_path,
        capsys,
        "kl-div",
        student,
        teacher,
        options=("--reduction", "batchmean", "--log-target"),
    )
    [fix] = outcome.named("kl-target-not-distribution")["fixes"]
    assert "--log-target" not in fix["command"]
    assert_clean(fix, F.kl_div(t(student), t(teacher), reduction="batchmean").item())


# --- ctc ---------------------------------------------------------------------------------------


def test_ctc_zero_based_labels_are_shifted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    time, batch, classes = 26, 8, 37
    log_probs = torch.randn(time, batch, classes).log_softmax(2).numpy()
    targets = RNG.integers(0, classes - 1, size=(batch, 6))  # alphabet.index(char)
    targets[0, 0] = 0
    lengths = (np.full(batch, time), np.full(batch, 6))
    outcome = debug(tmp_path, capsys, "ctc", log_probs, targets, *lengths)
    fix = fix_with(outcome, "ctc-blank-in-targets", "targets = targets + 1")
    expected = F.ctc_loss(t(log_probs), t(targets + 1), t(lengths[0]), t(lengths[1])).item()
    assert_clean(fix, expected)


def test_ctc_few_impossible_samples_get_zero_infinity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    time, batch, classes = 6, 32, 37
    log_probs = torch.randn(time, batch, classes).log_softmax(2).numpy()
    targets = RNG.integers(1, classes, size=(batch, 4))
    targets[:, 1] = targets[:, 0] % (classes - 1) + 1  # no repeats but where set below
    targets[1] = [9, 9, 9, 9]  # needs 7 frames of 6
    lengths = (np.full(batch, time), np.full(batch, 4))
    outcome = debug(tmp_path, capsys, "ctc", log_probs, targets, *lengths)
    fix = fix_running(outcome, "ctc-target-too-long", "--zero-infinity")
    expected = F.ctc_loss(
        t(log_probs), t(targets), t(lengths[0]), t(lengths[1]), zero_infinity=True
    ).item()
    assert_clean(fix, expected)


def test_ctc_mostly_impossible_samples_get_no_zero_infinity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the model downsamples 4x too much: every target is too long; zeroing them all is no fix
    time, batch, classes = 3, 8, 20
    log_probs = torch.randn(time, batch, classes).log_softmax(2).numpy()
    targets = RNG.integers(1, classes, size=(batch, 5))
    outcome = debug(
        tmp_path, capsys, "ctc", log_probs, targets, np.full(batch, time), np.full(batch, 5)
    )
    assert outcome.named("ctc-target-too-long")["fixes"] == []
    weighted = debug(
        tmp_path,
        capsys,
        "ctc",
        log_probs,
        targets,
        np.full(batch, time),
        np.full(batch, 5),
        options=("--zero-infinity",),
    )
    assert weighted.named("ctc-target-too-long")["severity"] == "warning"


# --- class-imbalance ---------------------------------------------------------------------------


def _weights_of(fix: dict[str, Any], flag: str) -> torch.Tensor:
    words = fix["command"].split(f"{flag} ", 1)[1]
    return torch.tensor(ast.literal_eval(words.split("'")[1]))


def test_rare_classes_get_exact_inverse_frequency_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.concatenate([np.zeros(180), np.ones(15), np.full(5, 2)]).astype(np.int64)
    logits = RNG.normal(size=(200, 3)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    fix = fix_running(outcome, "class-imbalance", "--weight")
    weight = 1 / torch.tensor([180.0, 15.0, 5.0], dtype=torch.float64)
    weight = (weight / weight.mean()).float()
    assert torch.equal(_weights_of(fix, "--weight").float(), weight)
    assert_clean(fix, F.cross_entropy(t(logits), t(labels), weight=weight).item())
    # weighted, the imbalance is handled: no finding
    again = debug(
        tmp_path, capsys, "cross-entropy", logits, labels, options=("--weight", "[1,1,1]")
    )
    assert "class-imbalance" not in {f["name"] for f in again.findings}


def test_rare_positives_get_pos_weight(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits = RNG.normal(size=(300, 2)).astype(np.float32)
    targets = np.zeros((300, 2), dtype=np.float32)
    targets[:7, 0] = 1
    targets[:60, 1] = 1
    outcome = debug(tmp_path, capsys, "bce-logits", logits, targets)
    fix = fix_running(outcome, "class-imbalance", "--pos-weight")
    pos_weight = torch.tensor([293 / 7, 240 / 60])
    assert torch.allclose(_weights_of(fix, "--pos-weight").float(), pos_weight)
    expected = F.binary_cross_entropy_with_logits(t(logits), t(targets), pos_weight=pos_weight)
    assert_clean(fix, expected.item())


# --- conversion: float class indices, integer targets, other integer dtypes ---------------------


def test_float_labels_from_numpy_are_cast_to_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(10, 3)).astype(np.float32)
    labels = RNG.integers(0, 3, size=10).astype(np.float64)  # np.loadtxt('labels.csv')
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    fix = fix_with(outcome, "float-class-target", "target = target.long()")
    assert_clean(fix, F.cross_entropy(t(logits), t(labels).long()).item())


def _digits_classifier() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a linear classifier trained briefly on load_digits (seeded), and its labels."""
    from sklearn.datasets import load_digits

    features, labels = load_digits(return_X_y=True)
    x = torch.tensor(features[:256] / 16.0, dtype=torch.float32)
    y = torch.tensor(labels[:256])
    torch.manual_seed(0)
    head = torch.nn.Linear(64, 10)
    optimiser = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(20):
        optimiser.zero_grad()
        F.cross_entropy(head(x), y).backward()
        optimiser.step()
    with torch.no_grad():
        return head(x), y


@pytest.mark.parametrize("saved", ["pt", "npy"])
def test_labels_saved_after_float_warn_with_torchs_error_and_cast_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], saved: str
) -> None:
    # torch.save(y.float(), ...) or np.save('labels.npy', y.astype(np.float32)): torch itself
    # raises on these labels, losscli casts them, warns, and verifies `.long()`
    logits, labels = _digits_classifier()
    as_float = labels.float() if saved == "pt" else labels.numpy().astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits.numpy(), as_float)
    found = outcome.named("float-class-target")
    assert found["severity"] == "warning" and outcome.code == 0
    with pytest.raises(RuntimeError) as raised:
        F.cross_entropy(logits, labels.float())
    assert str(raised.value) in found["message"]
    expected = F.cross_entropy(logits, labels).item()
    assert outcome.report["value"] == expected  # computed after the cast
    fix = fix_with(outcome, "float-class-target", "target = target.long()")
    assert_clean(fix, expected)


def test_mask_divided_by_255_is_recovered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # transforms.ToTensor() on a label PNG: classes 0..3 became k/255
    logits = RNG.normal(size=(2, 4, 8, 8)).astype(np.float32)
    labels = RNG.integers(0, 4, size=(2, 8, 8))
    scaled = (labels / 255).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, scaled)
    fix = fix_with(outcome, "float-class-target", "target = (target * 255).round().long()")
    assert_clean(fix, F.cross_entropy(t(logits), t(labels)).item())


def test_fractional_class_targets_get_no_cast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # regression targets given to a classification loss: no cast keeps them
    logits = RNG.normal(size=(10, 3)).astype(np.float32)
    values = RNG.uniform(0, 2, size=10).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, values)
    assert outcome.named("float-class-target")["fixes"] == []


def test_int64_binary_labels_cast_to_float(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=30).astype(np.float32)
    labels = RNG.integers(0, 2, size=30)
    labels[:10] = 1
    outcome = debug(tmp_path, capsys, "bce-logits", logits, labels)
    fix = fix_with(outcome, "int-target-for-float-loss", "target = target.float()")
    expected = F.binary_cross_entropy_with_logits(t(logits), t(labels).float()).item()
    assert_clean(fix, expected)


def test_int32_labels_from_pandas_cast_to_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(12, 3)).astype(np.float32)
    labels = np.array([0, 1, 2] * 4, dtype=np.int32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    fix = fix_with(outcome, "dtype-conversion", "target = target.long()")
    assert_clean(fix, F.cross_entropy(t(logits), t(labels).long()).item())


# --- all-targets-ignored -----------------------------------------------------------------------


def test_all_void_crop_gets_the_loop_change_unverified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(1, 3, 4, 4)).astype(np.float32)
    mask = np.full((1, 4, 4), 255, dtype=np.int64)
    outcome = debug(
        tmp_path, capsys, "cross-entropy", logits, mask, options=("--ignore-index", "255")
    )
    [fix] = outcome.named("all-targets-ignored")["fixes"]
    assert fix["verified"] is None and "command" not in fix
    assert fix["code"].startswith("if (target != 255).any():")


def test_focal_rare_positives_get_alpha_share_of_negatives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=300).astype(np.float32)
    targets = np.zeros(300, dtype=np.float32)
    targets[:10] = 1
    outcome = debug(tmp_path, capsys, "focal", logits, targets)
    fix = fix_running(outcome, "class-imbalance", "--alpha")
    alpha = 290 / 300
    assert f"alpha={alpha!r}" in fix["code"]  # every digit: the script weighs what was verified
    # torchvision.ops.sigmoid_focal_loss, gamma 2, written out
    x, y = t(logits), t(targets)
    p = torch.sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    expected = ((alpha * y + (1 - alpha) * (1 - y)) * ce * (1 - p_t) ** 2).mean().item()
    assert_clean(fix, expected)
