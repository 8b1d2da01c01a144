"""The realistic data is what its docstrings say: trained models learned, states differ as named.

The clean and mistake suites lean on tests/realistic.py producing real model outputs in the
states it names; these tests hold the numbers quoted in its comments, so a change to a model
or a seed that makes a state meaningless (an "untrained" model that is accurate, a "trained"
one that is not, a "collapsed" one that is not collapsed) fails here, not silently there.
"""

from __future__ import annotations

import numpy as np
import pytest
import realistic as real
import torch.nn.functional as F

t = real.tensor

# held-out accuracy of the trained MLPs (realistic.STEPS: ≈ 97% on digits, 98% iris and wine)
TRAINED_ACCURACY = {"digits": 0.95, "iris": 0.93, "wine": 0.93, "breast-cancer": 0.93}


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


@pytest.mark.parametrize("dataset", ["digits", "iris", "wine", "breast-cancer"])
def test_trained_classifiers_learned_and_untrained_ones_did_not(dataset: str) -> None:
    trained = real.classifier(dataset, "trained")
    untrained = real.classifier(dataset, "untrained")
    chance = 1 / trained.logits.shape[1]
    assert accuracy(trained.logits, trained.labels) >= TRAINED_ACCURACY[dataset]
    assert accuracy(untrained.logits, untrained.labels) < chance + 0.3
    assert accuracy(real.classifier(dataset, "smoothed").logits, trained.labels) >= 0.9


@pytest.mark.parametrize("dataset", ["digits", "iris", "wine"])
def test_states_are_what_they_are_named(dataset: str) -> None:
    trained = real.classifier(dataset, "trained")
    over = real.classifier(dataset, "over-confident")
    assert np.array_equal(over.logits, trained.logits * real.OVER_CONFIDENCE)
    prior = real.classifier(dataset, "prior")
    # every row ≈ the log prior of the training split: the spread comes from N(0, 0.01²) weights
    assert np.abs(prior.logits - prior.logits.mean(axis=0)).max() < 0.2
    assert np.allclose(np.exp(prior.logits.mean(axis=0)).sum(), 1.0, atol=0.05)
    smoothed = F.softmax(t(real.classifier(dataset, "smoothed").logits), 1).max(1).values
    sharp = F.softmax(t(trained.logits), 1).max(1).values
    assert float(smoothed.median()) < float(sharp.median())  # smoothing caps the confidence


def test_weighted_state_trains_on_a_tenfold_imbalance() -> None:
    weighted = real.classifier("digits", "weighted")
    assert weighted.class_weight is not None
    assert max(weighted.class_weight) / min(weighted.class_weight) > 5
    assert accuracy(weighted.logits, weighted.labels) >= 0.85  # evaluated on balanced data


def test_binary_states() -> None:
    trained = real.binary("trained")
    assert float(((trained.logits > 0) == (trained.labels > 0.5)).mean()) >= 0.93
    prior = real.binary("prior")
    rate = float(real.binary("untrained").labels.mean())  # held-out malignant rate ≈ 0.39
    assert np.abs(prior.logits - np.log(rate / (1 - rate))).max() < 0.15  # 0.12
    weighted = real.binary("weighted")
    assert weighted.pos_weight is not None and weighted.pos_weight > 5


def test_regression_learned_more_than_the_mean() -> None:
    trained = real.regression("diabetes", "trained")
    mse = float(np.mean((trained.predictions - trained.targets) ** 2))
    mean_only = float(np.var(trained.targets))
    assert mse < 0.7 < mean_only  # 0.60 against 0.99 (standardized)
    raw = real.regression("diabetes", "raw-scale")
    assert 140 < raw.targets.mean() < 165 and 70 < raw.targets.std() < 85


def test_heteroscedastic_variance_is_calibrated() -> None:
    model = real.heteroscedastic("trained")
    z2 = float(np.mean((model.mean - model.targets) ** 2 / model.variance))
    assert 0.7 < z2 < 1.3  # 0.91: the variance head means what it says


def test_trained_models_beat_their_untrained_selves() -> None:
    def poisson(state: str) -> float:
        model = real.poisson(state)
        # full=True adds log(k!): without it the NLL of a good fit is negative
        return F.poisson_nll_loss(t(model.log_rates), t(model.counts), full=True).item()

    def kl(state: str) -> float:
        model = real.distillation(state)
        return F.kl_div(
            t(model.student_log_probs), t(model.teacher_probs), reduction="batchmean"
        ).item()

    def ctc(state: str) -> float:
        model = real.ctc(state)
        return F.ctc_loss(
            t(model.log_probs), t(model.targets), t(model.input_lengths), t(model.target_lengths)
        ).item()

    def triplet(state: str) -> float:
        model = real.triplets(state)
        return F.triplet_margin_loss(t(model.anchor), t(model.positive), t(model.negative)).item()

    for loss in (poisson, kl, ctc, triplet):
        assert 0 < loss("trained") < 0.7 * loss("untrained"), loss.__name__


def test_taggers_and_segmenters_learned() -> None:
    sequence = real.sequence("trained")
    real_tokens = sequence.tokens != sequence.pad
    assert float((sequence.logits.argmax(1) == sequence.tokens)[real_tokens].mean()) > 0.95
    square = real.sequence("trained", pad=None)
    assert square.logits.shape[1] == square.logits.shape[2] == 8  # T == C
    segmented = real.segmentation("trained")
    assert float((segmented.logits.argmax(1) == segmented.mask).mean()) > 0.8
    tags = real.multilabel("trained")
    assert float(((tags.logits > 0) == (tags.tags > 0.5)).mean()) > 0.9


def test_broken_runs_are_broken() -> None:
    stuck = real.collapsed_regression()
    assert stuck.predictions.std() < 0.01 * stuck.targets.std()  # 0.17 against 77
    collapsed = real.collapsed_triplets()
    spread = float(collapsed.anchor.std(axis=0).mean())
    assert spread < 1e-3 * float(np.linalg.norm(collapsed.anchor, axis=1).mean())
    value = F.triplet_margin_loss(
        t(collapsed.anchor), t(collapsed.positive), t(collapsed.negative)
    ).item()
    assert value == pytest.approx(1.0, abs=1e-3)  # at the margin


def test_training_outputs_fit_and_split_is_a_partition() -> None:
    train, held = real.split(100)
    assert len(set(train) | set(held)) == 100 and not set(train) & set(held)
    fitted = real.training_outputs("digits")
    assert F.cross_entropy(t(fitted.logits), t(fitted.labels)).item() < 0.01


def test_cached_arrays_are_read_only() -> None:
    logits = real.classifier("iris", "trained").logits
    with pytest.raises(ValueError, match="read-only"):
        logits[0, 0] = 0.0
