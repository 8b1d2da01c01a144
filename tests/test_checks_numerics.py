"""Numeric checks: non-finite inputs, losses and gradients; vanishing gradients; constant inputs; negative losses."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from evaluation import evaluate, named, only

from losscli.findings import Severity

RNG = np.random.default_rng(11)


# --- non-finite-input, non-finite-loss, non-finite-gradient -------------------------------------


def test_nan_predictions_are_counted_with_their_samples() -> None:
    predictions = RNG.normal(size=(10, 3)).astype(np.float32)
    predictions[4, 1] = np.nan
    predictions[7, :] = np.inf
    found = only(evaluate("mse", predictions, np.zeros((10, 3))), "non-finite-input")
    assert found.severity is Severity.ERROR
    assert "1 NaN and 3 Inf of 30 values, in 2 of 10 samples" in found.message
    assert "position [4, 1]" in found.message
    assert "set_detect_anomaly" in found.fix
    assert not named(evaluate("mse", np.ones(3), np.zeros(3)), "non-finite-input")


def test_nan_in_a_target_file_gets_a_data_fix_not_a_model_one() -> None:
    # regression targets with a missing value read as NaN: the model is not to blame
    predictions = RNG.normal(size=(8, 3)).astype(np.float32)
    targets = RNG.normal(size=(8, 3))
    targets[2, 1] = np.nan
    report = evaluate("mse", predictions, targets)
    found = only(report, "non-finite-input")
    assert found.message.startswith("target (target.npy) holds 1 NaN")
    assert "target is data, not model output" in found.fix
    assert "target.npy" in found.fix
    assert "forward pass" not in found.fix and "set_detect_anomaly" not in found.fix
    # the loss and the gradient name the input the NaN is in
    for name in ("non-finite-loss", "non-finite-gradient"):
        fix = only(report, name).fix
        assert "comes from target (target.npy)" in fix, fix
        assert "input (input.npy)" not in fix


def test_nan_in_the_predictions_gets_the_forward_pass_fix() -> None:
    predictions = RNG.normal(size=(8, 3)).astype(np.float32)
    predictions[5, 0] = np.nan
    report = evaluate("mse", predictions, RNG.normal(size=(8, 3)))
    found = only(report, "non-finite-input")
    assert "input is the model's output" in found.fix and "forward pass" in found.fix
    assert "comes from input (input.npy)" in only(report, "non-finite-loss").fix


def test_nan_in_a_gaussian_variance_head_is_the_model_s() -> None:
    mean = RNG.normal(size=6).astype(np.float32)
    var = np.abs(RNG.normal(size=6)).astype(np.float32) + 0.1
    var[3] = np.nan
    found = [
        f
        for f in named(evaluate("gaussian-nll", mean, RNG.normal(size=6), var), "non-finite-input")
    ]
    assert len(found) == 1 and "var is the model's output" in found[0].fix


def test_nan_class_labels_get_the_data_fix() -> None:
    labels = np.array([0, 1, np.nan, 2], dtype=np.float32)
    report = evaluate("cross-entropy", RNG.normal(size=(4, 3)).astype(np.float32), labels)
    fix = only(report, "non-finite-input").fix
    assert "target is data" in fix and "forward pass" not in fix


def test_overflowing_log_rate_names_the_sample_and_its_value() -> None:
    # a poisson head without a clamp: one log-rate of 120 overflows exp() in float32
    log_rates = RNG.normal(size=8)
    log_rates[5] = 120.0
    counts = RNG.poisson(2, size=8)
    report = evaluate("poisson-nll", log_rates, counts)
    found = only(report, "non-finite-loss")
    assert found.severity is Severity.ERROR
    assert "1 of 8 per-sample losses are non-finite (1 +Inf)" in found.message
    assert "sample 5: input 120" in found.message
    assert found.evidence["samples"] == [5]
    assert "input[[5]]" in found.fix
    # torch agrees: exp(120) is inf in float32
    assert torch.isinf(torch.exp(torch.tensor(120.0)))


def test_impossible_ctc_alignment_names_the_lengths() -> None:
    log_probs = F.log_softmax(torch.randn(4, 2, 6), 2).numpy()
    targets = np.array([[1, 2, 3, 4, 5], [1, 2, 0, 0, 0]])
    report = evaluate("ctc", log_probs, targets, np.array([4, 4]), np.array([5, 2]))
    found = only(report, "non-finite-loss")
    assert "sample 0" in found.message
    assert "input_lengths 4, target_lengths 5" in found.message
    assert "--zero-infinity" in found.fix


def test_large_but_finite_losses_are_not_non_finite() -> None:
    report = evaluate("mse", np.full(4, 1e15, dtype=np.float32), np.zeros(4))
    assert not named(report, "non-finite-loss")


def test_infinite_prediction_gives_an_infinite_gradient() -> None:
    predictions = np.array([0.5, np.inf, 0.1], dtype=np.float32)
    report = evaluate("mse", predictions, np.zeros(3))
    found = only(report, "non-finite-gradient")
    assert found.severity is Severity.ERROR
    assert "1 NaN/Inf of 3 values (first at index 1)" in found.message
    # the inf loss of sample 1 explains it, and the inf input explains that
    assert "loss is itself non-finite ([1])" in found.message
    assert "see non-finite-input" in found.fix
    assert not named(evaluate("mse", np.ones(3), np.zeros(3)), "non-finite-gradient")


# --- vanishing-gradient ---------------------------------------------------------------------------


def test_dice_on_saturated_logits_has_no_gradient() -> None:
    # logits multiplied by a runaway scale: sigmoid is exactly 0 or 1 in float32
    logits = RNG.choice([-90.0, 90.0], size=(4, 64)).astype(np.float32)
    mask = (RNG.random((4, 64)) > 0.5).astype(np.float32)
    report = evaluate("dice", logits, mask)
    found = only(report, "vanishing-gradient")
    assert found.severity is Severity.WARNING
    assert "256 of 256 elements (100.00%)" in found.message
    assert report.computation is not None and report.computation.value is not None
    assert f"the loss is {report.computation.value:.6g}" in found.message
    assert "|input| = 90" in found.fix


def test_perfect_regression_fit_is_not_vanishing() -> None:
    # zero loss and zero gradient: an exact fit, nothing to learn
    values = RNG.random(32).astype(np.float32)
    assert not named(evaluate("mse", values, values), "vanishing-gradient")


def test_margins_all_met_with_zero_loss_are_not_vanishing() -> None:
    x1 = RNG.normal(size=50).astype(np.float32)
    report = evaluate("margin-ranking", x1 + 2, x1, np.ones(50), margin=1.0)
    assert report.computation is not None and report.computation.value == 0.0
    assert not named(report, "vanishing-gradient")


def test_a_few_violated_margins_carry_the_loss_and_the_gradient() -> None:
    # 995 pairs ranked with room to spare, 5 violated: zero gradient on 99.5% of elements,
    # but the loss lives where the gradient is
    x1 = RNG.normal(size=1000).astype(np.float32)
    x2 = x1 - 3
    x2[:5] = x1[:5] + 1
    report = evaluate("margin-ranking", x1, x2, np.ones(1000), margin=1.0)
    assert report.computation is not None and report.computation.value > 0
    assert not named(report, "vanishing-gradient")


# --- constant-input ----------------------------------------------------------------------------------


def test_zero_initialised_head_predicts_one_value() -> None:
    predictions = np.zeros(16, dtype=np.float32)  # nn.init.zeros_(head.weight); bias 0
    found = only(evaluate("bce-logits", predictions, (RNG.random(16) > 0.5)), "constant-input")
    assert found.severity is Severity.WARNING
    assert "every one of the 16 finite values of input (input.npy) is 0" in found.message
    assert "zero-initialised" in found.fix


def test_constant_variance_and_single_predictions_are_fine() -> None:
    homoscedastic = evaluate("gaussian-nll", RNG.normal(size=8), RNG.normal(size=8), np.ones(8))
    assert not named(homoscedastic, "constant-input")
    assert not named(evaluate("mse", [0.5], [1.0]), "constant-input")
    assert not named(evaluate("mse", [0.5, 0.50001], [1.0, 0.0]), "constant-input")


# --- negative-loss --------------------------------------------------------------------------------------


def test_nll_on_raw_scores_goes_negative() -> None:
    # model(x) without log_softmax, fed to nn.NLLLoss
    scores = RNG.normal(scale=3, size=(12, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=12)
    scores[np.arange(12), labels] = (
        np.abs(scores[np.arange(12), labels]) + 1
    )  # positive on the label
    report = evaluate("nll", scores, labels)
    found = only(report, "negative-loss")
    expected = float(F.nll_loss(torch.from_numpy(scores), torch.from_numpy(labels)))  # torch
    assert found.severity is Severity.ERROR
    assert f"nll came out {expected:.6g}" in found.message
    assert "12 of 12 per-sample losses are negative" in found.message
    assert "F.log_softmax(logits, dim=1)" in found.fix


def test_ctc_on_softmax_output_goes_negative_and_says_log_softmax() -> None:
    probabilities = F.softmax(torch.randn(20, 2, 6, generator=torch.Generator().manual_seed(3)), 2)
    targets = np.array([[1, 2, 3], [4, 5, 1]])
    report = evaluate("ctc", probabilities.numpy(), targets, np.array([20, 20]), np.array([3, 3]))
    found = only(report, "negative-loss")
    assert "2 of 2 per-sample losses are negative" in found.message
    assert "logits.log_softmax(2)" in found.fix


def test_cosine_embedding_rounding_below_zero_is_not_negative() -> None:
    # 1 - cos(x, 3.3 x) rounds to about -1e-7 in float32 for some rows
    x = np.random.default_rng(0).normal(size=(256, 7)).astype(np.float32)
    y = x * np.float32(3.3)
    per_sample = F.cosine_embedding_loss(
        torch.from_numpy(x), torch.from_numpy(y), torch.ones(256), reduction="none"
    )
    assert per_sample.min() < 0  # precondition: torch rounds below zero
    report = evaluate("cosine-embedding", x, y, np.ones(256))
    assert not named(report, "negative-loss")


def test_losses_that_may_be_negative_are_not_reported() -> None:
    # gaussian-nll with small variances is negative by design
    report = evaluate("gaussian-nll", np.zeros(4), np.zeros(4), np.full(4, 0.01))
    assert report.computation is not None and report.computation.value is not None
    assert report.computation.value < 0
    assert not named(report, "negative-loss")


def _breast_cancer_hinge_scores() -> tuple[np.ndarray, np.ndarray]:
    """A linear dissimilarity score trained with HingeEmbeddingLoss on breast_cancer (seeded).

    The score is unconstrained (no distance, no softplus), as in a siamese head that
    outputs ``w @ x + b``: samples labelled 1 are pushed down, and below zero.
    """
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    features = (features - features.mean(0)) / features.std(0)
    x = torch.tensor(features, dtype=torch.float32)
    signs = torch.tensor(np.where(labels == 1, 1.0, -1.0), dtype=torch.float32)
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], 1)
    optimiser = torch.optim.SGD(head.parameters(), lr=0.05)
    for _ in range(30):
        optimiser.zero_grad()
        F.hinge_embedding_loss(head(x).squeeze(1), signs).backward()
        optimiser.step()
    with torch.no_grad():
        scores = head(x).squeeze(1)
    return scores.numpy(), signs.numpy()


def test_hinge_embedding_with_negative_inputs_for_target_one_is_not_negative_loss() -> None:
    # torch: l_i = x_i for y_i = 1, unclamped, so a negative score gives a negative loss
    scores, signs = _breast_cancer_hinge_scores()
    expected = F.hinge_embedding_loss(torch.from_numpy(scores), torch.from_numpy(signs))
    assert expected.item() < 0  # precondition: torch itself returns a negative loss
    report = evaluate("hinge-embedding", scores, signs)
    assert report.computation is not None and report.computation.value == expected.item()
    assert not named(report, "negative-loss")
    assert not [f for f in report.findings if f.severity is not Severity.INFO]


def test_minus_inf_in_ctc_log_probs_stays_an_error() -> None:
    # unlike cross-entropy logits, ctc's gradient at a -inf log-probability is NaN
    logits = torch.randn(30, 2, 8, generator=torch.Generator().manual_seed(3))
    logits[:, :, 7] = -float("inf")
    log_probs = logits.log_softmax(2).numpy()
    report = evaluate(
        "ctc", log_probs, np.array([[1, 2, 3], [4, 5, 6]]), np.array([30, 30]), np.array([3, 3])
    )
    (found,) = named(report, "non-finite-input")
    assert found.severity is Severity.ERROR
    assert named(report, "non-finite-gradient")


def test_float16_infinities_point_at_the_float16_range() -> None:
    values = np.array([1.0, np.inf, 3.0, 2.0], dtype=np.float16)
    (found,) = named(evaluate("mse", values, np.zeros(4, np.float16)), "non-finite-input")
    assert "65504" in found.fix
    # near miss: the same inf in a float32 file is not float16's overflow
    (found,) = named(evaluate("mse", values.astype(np.float32), np.zeros(4)), "non-finite-input")
    assert "65504" not in found.fix
