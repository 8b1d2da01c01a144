"""The fit findings on tensors from tiny models trained here on scikit-learn's bundled data sets.

collapsed-predictions, scale-mismatch, fit-too-good and misaligned-samples: each has cases
that fire, modelled on how the mistake happens in training code (a weight decay that holds an
MLP at the mean, a model trained on standardized targets scored on raw ones, the target left
in the features, predictions from a shuffled DataLoader against labels in dataset order), and
near misses that must not fire: trained, untrained (default init), over-confident (logits x5),
prior-initialised, label-smoothed, class-weighted models, and batches of 8 and 16.
The thresholds in losscli/checks/fit.py cite the statistics these models gave
(`python tests/test_fit_findings.py` prints them).

Every model is seeded and trains in a second or two on the CPU.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import debug
from evaluation import evaluate
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from torch import nn

from losscli.checks import fit

FIT_FINDINGS = ("collapsed-predictions", "scale-mismatch", "fit-too-good", "misaligned-samples")
SEEDS = (0, 1)


# ---------------------------------------------------------------- data and models


def _standardized(features: np.ndarray) -> np.ndarray:
    return ((features - features.mean(0)) / features.std(0)).astype(np.float32)


def _mlp(features: int, outputs: int, hidden: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def _train(
    model: nn.Module,
    features: np.ndarray,
    loss: Callable[[torch.Tensor], torch.Tensor],
    steps: int,
    lr: float = 0.01,
    weight_decay: float = 0.0,
) -> nn.Module:
    """Full-batch Adam on ``loss(model(features))``, on one thread.

    These models are tiny: on the shared test machine one thread trains them in seconds where
    torch's default threads spend a minute waiting on each other.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        inputs = torch.as_tensor(features)
        for _ in range(steps):
            optimizer.zero_grad()
            loss(model(inputs)).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model


def _outputs(model: nn.Module, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(model(torch.as_tensor(features)).numpy(), dtype=np.float32)


@functools.cache
def diabetes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardized features [442, 10], the unnormalised ones as shipped (column scale 0.048),
    raw targets [442] (mean 152.1, std 77.0) and standardized targets."""
    raw_features, targets = load_diabetes(return_X_y=True)
    raw = targets.astype(np.float32)
    return (
        _standardized(raw_features),
        raw_features.astype(np.float32),
        raw,
        ((raw - raw.mean()) / raw.std()).astype(np.float32),
    )


@functools.cache
def standardized_predictions(seed: int) -> np.ndarray:
    """An MLP trained on the standardized targets: its outputs [442] in standard units."""
    features, _, _, standard = diabetes()
    column = torch.as_tensor(standard)[:, None]
    model = _train(_mlp(10, 1, 16, seed), features, lambda out: F.mse_loss(out, column), 400)
    return _outputs(model, features)[:, 0]


def raw_predictions(seed: int) -> np.ndarray:
    """The same model's predictions brought back to the raw scale, as the training code should."""
    _, _, raw, _ = diabetes()
    return (standardized_predictions(seed) * raw.std() + raw.mean()).astype(np.float32)


@functools.cache
def stuck_predictions(seed: int) -> np.ndarray:
    """An MLP on the unnormalised features with a weight decay that holds its weights at zero."""
    _, unnormalised, raw, _ = diabetes()
    column = torch.as_tensor(raw)[:, None]
    model = _train(
        _mlp(10, 1, 16, seed),
        unnormalised,
        lambda out: F.mse_loss(out, column),
        500,
        lr=0.1,
        weight_decay=100.0,
    )
    return _outputs(model, unnormalised)[:, 0]


@functools.cache
def leaked_predictions(seed: int) -> np.ndarray:
    """An MLP given the standardized target as an 11th feature (a column of y left in X)."""
    features, _, _, standard = diabetes()
    leaky = np.concatenate([features, standard[:, None]], axis=1)
    column = torch.as_tensor(standard)[:, None]
    model = _train(_mlp(11, 1, 16, seed), leaky, lambda out: F.mse_loss(out, column), 1000)
    return _outputs(model, leaky)[:, 0]


def untrained_regression(seed: int, hidden: int | None = 16) -> np.ndarray:
    features = diabetes()[0]
    if hidden is None:
        torch.manual_seed(seed)
        return _outputs(nn.Linear(10, 1), features)[:, 0]
    return _outputs(_mlp(10, 1, hidden, seed), features)[:, 0]


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """load_digits scaled to [0, 1]: features [1797, 64], labels [1797]."""
    features, labels = load_digits(return_X_y=True)
    return (features / 16).astype(np.float32), labels.astype(np.int64)


DIGITS_TRAIN = slice(0, 1200)
DIGITS_TEST = slice(1200, None)


@functools.cache
def digit_logits(seed: int, steps: int = 300) -> np.ndarray:
    """An MLP trained on the first 1200 digits: logits [1797, 10] for every digit."""
    features, labels = digits()
    target = torch.as_tensor(labels[DIGITS_TRAIN])
    model = _train(
        _mlp(64, 10, 32, seed),
        features[DIGITS_TRAIN],
        lambda out: F.cross_entropy(out, target),
        steps,
    )
    return _outputs(model, features)


@functools.cache
def cancer() -> tuple[np.ndarray, np.ndarray]:
    features, labels = load_breast_cancer(return_X_y=True)
    return _standardized(features), labels.astype(np.float32)


CANCER_TRAIN = slice(0, 400)
CANCER_TEST = slice(400, None)


@functools.cache
def cancer_logits(seed: int) -> np.ndarray:
    """An MLP trained on the first 400 breast-cancer samples: logits [569] for every sample."""
    features, labels = cancer()
    target = torch.as_tensor(labels[CANCER_TRAIN])[:, None]
    model = _train(
        _mlp(30, 1, 16, seed),
        features[CANCER_TRAIN],
        lambda out: F.binary_cross_entropy_with_logits(out, target),
        300,
    )
    return _outputs(model, features)[:, 0]


def _triplet_indices(seed: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors, positives of the same digit and negatives of another, drawn with ``seed``."""
    _, labels = digits()
    rng = np.random.default_rng(seed)
    anchors = rng.integers(0, labels.size, count)
    positives = np.array([rng.choice(np.flatnonzero(labels == labels[i])) for i in anchors])
    negatives = np.array([rng.choice(np.flatnonzero(labels != labels[i])) for i in anchors])
    return anchors, positives, negatives


@functools.cache
def digit_embeddings(seed: int, weight_decay: float | None) -> np.ndarray:
    """Embeddings [1797, 8] of an MLP trained with the triplet loss on the digits (None: untrained).

    Adam's L2 weight_decay of 1.0 drives every embedding to one point.
    """
    features, _ = digits()
    model = _mlp(64, 8, 32, seed)
    if weight_decay is None:
        return _outputs(model, features)
    anchors, positives, negatives = _triplet_indices(seed + 100, 512)

    def triplet(out: torch.Tensor) -> torch.Tensor:
        return F.triplet_margin_loss(out[anchors], out[positives], out[negatives])

    return _outputs(_train(model, features, triplet, 300, weight_decay=weight_decay), features)


def _triplets(embeddings: np.ndarray, seed: int, count: int) -> list[np.ndarray]:
    return [embeddings[index] for index in _triplet_indices(seed, count)]


def _permuted(values: np.ndarray, seed: int) -> np.ndarray:
    """``values`` in the order a shuffled DataLoader yields them."""
    return values[np.random.default_rng(seed).permutation(len(values))]


def _fit_alarms(loss: str, *arrays: Any, **options: Any) -> list[str]:
    """The fit findings the pipeline raises on these arrays (in memory, no CLI)."""
    report = evaluate(loss, *arrays, **options)
    return [f.name for f in report.findings if f.name in FIT_FINDINGS]


# ---------------------------------------------------------------- collapsed-predictions


@pytest.mark.parametrize("seed", SEEDS)
def test_a_regressor_held_at_the_mean_by_weight_decay_is_collapsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    _, _, raw, _ = diabetes()
    stuck = stuck_predictions(seed)
    assert stuck.min() < stuck.max()  # not the exact case (constant-input)
    outcome = debug(tmp_path, capsys, "mse", stuck, raw)
    found = outcome.named("collapsed-predictions")
    assert found["severity"] == "warning"
    spread = float(stuck.std() / raw.std())
    assert found["evidence"]["spread_ratio"] == pytest.approx(spread, rel=1e-3)
    assert f"{spread:.4g}" in found["message"]
    assert "constant-input" not in outcome.alarms()
    assert outcome.alarms() == {"collapsed-predictions"}, outcome.alarm_lines()
    # a change to the training code: shown, never verified
    assert [f["verified"] for f in found["fixes"]] == [None]
    assert "learning rate" in found["fixes"][0]["code"]


def test_an_exactly_constant_prediction_is_constant_input_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, raw, _ = diabetes()
    constant = np.full_like(raw, raw.mean())
    outcome = debug(tmp_path, capsys, "mse", constant, raw)
    assert "constant-input" in outcome.alarms()
    assert "collapsed-predictions" not in outcome.alarms()


@pytest.mark.parametrize("seed", SEEDS)
def test_triplet_embeddings_collapsed_by_weight_decay_sit_at_the_margin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    collapsed = digit_embeddings(seed, 1.0)
    anchor, positive, negative = _triplets(collapsed, seed, 128)
    outcome = debug(tmp_path, capsys, "triplet-margin", anchor, positive, negative)
    found = outcome.named("collapsed-predictions")
    assert found["evidence"]["share"] >= fit.COLLAPSED_SHARE
    assert outcome.report["value"] == pytest.approx(1.0, abs=1e-3)  # the margin
    assert "constant-input" not in outcome.alarms()


def test_collapsed_embeddings_fire_for_a_cosine_triplet_loss_too() -> None:
    collapsed = digit_embeddings(0, 1.0)
    assert "collapsed-predictions" in _fit_alarms(
        "triplet-margin-distance", *_triplets(collapsed, 0, 64), distance_function="cosine"
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weight_decay", [None, 0.0], ids=["untrained", "trained"])
@pytest.mark.parametrize("count", [8, 16, 256])
def test_trained_and_untrained_embeddings_are_not_collapsed(
    seed: int, weight_decay: float | None, count: int
) -> None:
    embeddings = digit_embeddings(seed, weight_decay)
    for loss, options in (
        ("triplet-margin", {}),
        ("triplet-margin-distance", {"distance_function": "cosine", "margin": 0.5}),
    ):
        assert _fit_alarms(loss, *_triplets(embeddings, seed, count), **options) == []


def test_cosine_embedding_pairs_of_a_trained_net_are_not_collapsed() -> None:
    embeddings = digit_embeddings(0, 0.0)
    _, labels = digits()
    rng = np.random.default_rng(3)
    first, second = rng.integers(0, labels.size, 128), rng.integers(0, labels.size, 128)
    similar = np.where(labels[first] == labels[second], 1.0, -1.0).astype(np.float32)
    pairs = (embeddings[first], embeddings[second], similar)
    assert _fit_alarms("cosine-embedding", *pairs) == []
    untrained = digit_embeddings(0, None)
    assert _fit_alarms("cosine-embedding", untrained[first], untrained[second], similar) == []


def _ranking_pairs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of digits and y = 1 where the first has the larger label (a ranking task)."""
    _, labels = digits()
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, labels.size, 128), rng.integers(0, labels.size, 128)
    return first, second, np.where(labels[first] > labels[second], 1.0, -1.0).astype(np.float32)


@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_scores_of_a_near_zero_head_sit_at_the_margin(seed: int) -> None:
    features, _ = digits()
    first, second, order = _ranking_pairs(seed)
    model = _mlp(64, 1, 32, seed)
    with torch.no_grad():
        model[2].weight.mul_(1e-4)  # a head initialised near zero: every score the same
    scores = _outputs(model, features)[:, 0]
    pairs = (scores[first], scores[second], order)
    assert _fit_alarms("margin-ranking", *pairs, margin=1.0) == ["collapsed-predictions"]
    # with torch's default margin 0 identical scores cost nothing: nothing sits at a margin
    assert _fit_alarms("margin-ranking", *pairs) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_scores_of_trained_and_untrained_scorers_are_not_collapsed(seed: int) -> None:
    features, _ = digits()
    first, second, order = _ranking_pairs(seed)
    target = torch.as_tensor(order)

    def ranking(out: torch.Tensor) -> torch.Tensor:
        return F.margin_ranking_loss(out[first, 0], out[second, 0], target, margin=1.0)

    untrained = _outputs(_mlp(64, 1, 32, seed), features)[:, 0]
    trained = _outputs(_train(_mlp(64, 1, 32, seed), features, ranking, 200), features)[:, 0]
    for scores in (untrained, trained):
        for margin in (1.0, 0.1):
            pairs = (scores[first], scores[second], order)
            assert _fit_alarms("margin-ranking", *pairs, margin=margin) == []


# ---------------------------------------------------------------- scale-mismatch


@pytest.mark.parametrize("seed", SEEDS)
def test_standardized_predictions_against_raw_targets_are_rescaled_by_a_verified_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    _, _, raw, _ = diabetes()
    standard = standardized_predictions(seed)
    outcome = debug(tmp_path, capsys, "mse", standard, raw)
    found = outcome.named("scale-mismatch")
    assert found["evidence"]["loss_ratio"] >= fit.MISMATCH_WORSE
    [fixed] = found["fixes"]
    # the targets' standard deviation (unbiased, as torch's y.std()) and mean: 77.0931, 152.133
    scale, shift = float(raw.std(ddof=1)), float(raw.mean())
    assert fixed["code"] == f"input = input * {scale:.6g} + {shift:.6g}"
    assert fixed["verified"]["findings"] == []
    # the verified value is torch's on the rescaled input
    rescaled = torch.as_tensor(standard) * float(f"{scale:.6g}") + float(f"{shift:.6g}")
    expected = F.mse_loss(rescaled, torch.as_tensor(raw)).item()
    assert fixed["verified"]["value"] == pytest.approx(expected, rel=1e-5)
    mean_predictor = torch.full_like(torch.as_tensor(raw), float(raw.mean()))
    baseline = F.mse_loss(mean_predictor, torch.as_tensor(raw)).item()
    assert expected < fit.MISMATCH_RESCALED * baseline


def test_raw_predictions_against_standardized_targets_are_standardized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, _, standard_targets = diabetes()
    predictions = raw_predictions(0)
    outcome = debug(tmp_path, capsys, "l1", predictions, standard_targets)
    [fixed] = outcome.named("scale-mismatch")["fixes"]
    centre, spread = float(predictions.mean()), float(predictions.std(ddof=1))
    assert fixed["code"] == f"input = (input - {centre:.6g}) / {spread:.6g}"
    assert fixed["verified"]["findings"] == []


def test_a_mismatch_on_24_samples_still_fires() -> None:
    _, _, raw, _ = diabetes()
    batch = slice(0, fit.MISMATCH_MIN_SAMPLES)
    assert _fit_alarms("mse", standardized_predictions(0)[batch], raw[batch]) == ["scale-mismatch"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("hidden", [16, None], ids=["mlp", "linear"])
def test_untrained_models_are_not_a_scale_mismatch(seed: int, hidden: int | None) -> None:
    # an untrained model against raw targets is off in scale too, but no rescale reveals a fit
    _, _, raw, standard = diabetes()
    untrained = untrained_regression(seed, hidden)
    assert _fit_alarms("mse", untrained, raw) == []
    assert _fit_alarms("mse", untrained, standard) == []


# ---------------------------------------------------------------- fit-too-good


@pytest.mark.parametrize("seed", SEEDS)
def test_a_target_left_in_the_features_fits_too_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    _, _, raw, standard = diabetes()
    leaked = leaked_predictions(seed)
    outcome = debug(tmp_path, capsys, "mse", leaked, standard)
    found = outcome.named("fit-too-good")
    baseline = F.mse_loss(torch.zeros(standard.size), torch.as_tensor(standard)).item()
    ratio = F.mse_loss(torch.as_tensor(leaked), torch.as_tensor(standard)).item() / baseline
    assert found["evidence"]["loss_ratio"] == pytest.approx(ratio, rel=1e-4)
    assert ratio < fit.FIT_RATIO
    assert [f["verified"] for f in found["fixes"]] == [None]
    # on the raw scale, and on a batch of 16
    rescaled = (leaked * raw.std() + raw.mean()).astype(np.float32)
    assert _fit_alarms("mse", rescaled, raw) == ["fit-too-good"]
    assert _fit_alarms("mse", rescaled[:16], raw[:16]) == ["fit-too-good"]


def test_the_target_passed_as_the_prediction_fits_too_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, raw, _ = diabetes()
    found = debug(tmp_path, capsys, "mse", raw, raw).named("fit-too-good")
    assert found["evidence"]["copied"] is True
    assert "element for element" in found["message"]
    # exact copies are judged on any batch
    assert _fit_alarms("mse", raw[:8], raw[:8]) == ["fit-too-good"]


def test_one_hot_targets_passed_as_logits_fit_too_well() -> None:
    _, labels = digits()
    one_hot = (np.eye(10, dtype=np.float32)[labels] * 10).astype(np.float32)
    assert _fit_alarms("cross-entropy", one_hot, labels) == ["fit-too-good"]
    _, binary = cancer()
    assert _fit_alarms("bce-logits", binary * 20 - 10, binary) == ["fit-too-good"]
    # exactly 0 and 1: saturated-probabilities says so; equal saturated rows prove nothing
    assert _fit_alarms("bce", binary, binary) == []


def test_rounded_predictions_of_star_ratings_may_match_them_all() -> None:
    ratings = np.random.default_rng(5).integers(1, 6, 200).astype(np.float32)
    assert _fit_alarms("l1", ratings, ratings) == []


def test_a_classifier_on_its_own_training_set_does_not_fit_too_well() -> None:
    # 300 Adam steps: the cross-entropy on the training digits falls to 0.0044, 0.002 of the
    # prior's (2000 steps: 1e-4)
    _, labels = digits()
    overtrained = digit_logits(0)[DIGITS_TRAIN]
    ratio = F.cross_entropy(torch.as_tensor(overtrained), torch.as_tensor(labels[DIGITS_TRAIN]))
    assert ratio.item() / math.log(10) < fit.FIT_CLASS_RATIO
    assert _fit_alarms("cross-entropy", overtrained, labels[DIGITS_TRAIN]) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_real_regression_fits_are_not_too_good(seed: int) -> None:
    _, _, raw, standard = diabetes()
    assert _fit_alarms("mse", standardized_predictions(seed), standard) == []
    assert _fit_alarms("mse", raw_predictions(seed), raw) == []
    assert _fit_alarms("huber", standardized_predictions(seed), standard) == []
    for start in (0, 8, 100):
        batch = slice(start, start + 16)
        eight = slice(start, start + 8)
        assert _fit_alarms("mse", raw_predictions(seed)[batch], raw[batch]) == []
        assert _fit_alarms("l1", raw_predictions(seed)[eight], raw[eight]) == []


# ---------------------------------------------------------------- misaligned-samples


@pytest.mark.parametrize("seed", SEEDS)
def test_digit_logits_from_a_shuffled_loader_are_misaligned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    _, labels = digits()
    shuffled = _permuted(digit_logits(seed)[DIGITS_TEST], seed)
    outcome = debug(tmp_path, capsys, "cross-entropy", shuffled, labels[DIGITS_TEST])
    found = outcome.named("misaligned-samples")
    evidence = found["evidence"]
    assert evidence["confidence"] >= fit.MISALIGNED_CONFIDENT
    assert abs(evidence["accuracy"] - evidence["chance"]) < 0.05
    assert evidence["loss_ratio"] > 1
    assert [f["verified"] for f in found["fixes"]] == [None]
    assert "shuffle=False" in found["fix"]
    log_probabilities = torch.log_softmax(torch.as_tensor(shuffled), 1).numpy()
    assert _fit_alarms("nll", log_probabilities, labels[DIGITS_TEST]) == ["misaligned-samples"]
    batch = slice(0, fit.MISALIGNED_MIN_SAMPLES)
    assert _fit_alarms("cross-entropy", shuffled[batch], labels[DIGITS_TEST][batch]) == [
        "misaligned-samples"
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_breast_cancer_logits_from_a_shuffled_loader_are_misaligned(seed: int) -> None:
    _, labels = cancer()
    shuffled = _permuted(cancer_logits(seed)[CANCER_TEST], seed)
    assert _fit_alarms("bce-logits", shuffled, labels[CANCER_TEST]) == ["misaligned-samples"]


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_predictions_from_a_shuffled_loader_are_misaligned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    _, _, raw, _ = diabetes()
    shuffled = _permuted(raw_predictions(seed), seed)
    outcome = debug(tmp_path, capsys, "mse", shuffled, raw)
    found = outcome.named("misaligned-samples")
    assert abs(found["evidence"]["correlation"]) < 0.1
    assert outcome.alarms() == {"misaligned-samples"}, outcome.alarm_lines()
    assert _fit_alarms("l1", shuffled[:64], raw[:64]) == ["misaligned-samples"]


def _digit_states(seed: int) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Test-set logits of digit classifiers in the states that must not fire."""
    _, labels = digits()
    trained = digit_logits(seed)[DIGITS_TEST]
    features, _ = digits()
    untrained = _outputs(_mlp(64, 10, 32, seed), features)[DIGITS_TEST]
    shares = np.bincount(labels) / labels.size
    prior = np.broadcast_to(np.log(shares), trained.shape).astype(np.float32)
    weights = "[" + ",".join(f"{w:.3g}" for w in np.linspace(0.5, 2, 10)) + "]"
    return {
        "trained": (trained, {}),
        "over-confident": (trained * 5, {}),
        "weakly trained, over-confident": (digit_logits(seed, 15)[DIGITS_TEST] * 8, {}),
        "untrained": (untrained, {}),
        "untrained x5": (untrained * 5, {}),
        "prior-initialised": (prior + 1e-3 * untrained, {}),
        "label-smoothed": (trained, {"label_smoothing": 0.1}),
        "class-weighted": (trained, {"weight": weights}),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_digit_classifiers_in_every_honest_state_raise_no_fit_finding(seed: int) -> None:
    _, labels = digits()
    targets = labels[DIGITS_TEST]
    for state, (logits, options) in _digit_states(seed).items():
        for batch in (slice(None), slice(0, 8), slice(8, 24), slice(100, 148)):
            found = _fit_alarms("cross-entropy", logits[batch], targets[batch], **options)
            assert found == [], (state, batch, found)


@pytest.mark.parametrize("seed", SEEDS)
def test_breast_cancer_classifiers_in_every_honest_state_raise_no_fit_finding(seed: int) -> None:
    features, labels = cancer()
    targets = labels[CANCER_TEST]
    trained = cancer_logits(seed)[CANCER_TEST]
    untrained = _outputs(_mlp(30, 1, 16, seed), features)[CANCER_TEST, 0]
    share = float(labels.mean())
    prior = np.full_like(trained, math.log(share / (1 - share))) + 1e-3 * untrained
    smoothed = (targets * 0.9 + 0.05).astype(np.float32)
    for state, logits, target, options in (
        ("trained", trained, targets, {}),
        ("over-confident", trained * 5, targets, {}),
        ("untrained", untrained, targets, {}),
        ("prior-initialised", prior, targets, {}),
        ("label-smoothed", trained, smoothed, {}),
        ("class-weighted", trained, targets, {"pos_weight": "[0.6]"}),
    ):
        for batch in (slice(None), slice(0, 8), slice(8, 24), slice(50, 98)):
            found = _fit_alarms("bce-logits", logits[batch], target[batch], **options)
            assert found == [], (state, batch, found)
    probabilities = torch.sigmoid(torch.as_tensor(trained)).numpy()
    assert _fit_alarms("bce", probabilities, targets) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_regressors_in_every_honest_state_raise_no_fit_finding(seed: int) -> None:
    _, _, raw, standard = diabetes()
    states = {
        "trained, standard units": (standardized_predictions(seed), standard),
        "trained, raw units": (raw_predictions(seed), raw),
        "untrained mlp": (untrained_regression(seed), standard),
        "untrained linear": (untrained_regression(seed, None), standard),
    }
    for state, (predictions, targets) in states.items():
        for batch in (slice(None), slice(0, 8), slice(8, 24), slice(64, 128), slice(200, 264)):
            for loss in ("mse", "l1", "smooth-l1"):
                found = _fit_alarms(loss, predictions[batch], targets[batch])
                assert found == [], (state, loss, batch, found)


def test_a_permuted_batch_too_small_to_judge_does_not_fire() -> None:
    _, labels = digits()
    shuffled = _permuted(digit_logits(0)[DIGITS_TEST], 0)
    small = fit.MISALIGNED_MIN_SAMPLES - 1
    assert _fit_alarms("cross-entropy", shuffled[:small], labels[DIGITS_TEST][:small]) == []


# ---------------------------------------------------------------- the statistics behind the thresholds


def _statistics() -> None:  # pragma: no cover - run by hand: python tests/test_fit_findings.py
    """Print what the thresholds in losscli/checks/fit.py were read from."""
    _, _, raw, standard = diabetes()

    def regression(name: str, predictions: np.ndarray, targets: np.ndarray) -> None:
        baseline = float(((targets - targets.mean()) ** 2).mean())
        ratio = float(((predictions - targets) ** 2).mean()) / baseline
        correlation = float(np.corrcoef(predictions, targets)[0, 1])
        offset = abs(float(predictions.mean() - targets.mean())) / float(targets.std())
        print(
            f"{name:40s} spread {predictions.std() / targets.std():.4f} offset {offset:.3f} "
            f"loss/mean-predictor {ratio:.4g} r {correlation:.3f}"
        )

    for seed in SEEDS:
        regression(f"trained s{seed}", standardized_predictions(seed), standard)
        regression(f"standardized vs raw s{seed}", standardized_predictions(seed), raw)
        regression(f"stuck s{seed}", stuck_predictions(seed), raw)
        regression(f"leaked s{seed}", leaked_predictions(seed), standard)
        regression(f"shuffled s{seed}", _permuted(raw_predictions(seed), seed), raw)
        regression(f"untrained mlp s{seed}", untrained_regression(seed), standard)
        regression(f"untrained linear s{seed}", untrained_regression(seed, None), standard)


if __name__ == "__main__":  # pragma: no cover
    _statistics()
