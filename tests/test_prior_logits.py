"""probabilities-as-logits on real models: prior-initialised logits are not sigmoid output.

A binary classifier initialised the standard way (small weights, output bias
log(p / (1 - p)) for the positive rate p) puts every logit in a narrow band around
logit(p), inside [0, 1] for p between 0.5 and 0.73. Those are logits: read as logits they are
calibrated (sigmoid(bias) = p), read as probabilities they are not. The check compares the
two readings against the targets and fires only when the probability reading is clearly the
right one, as it is for a trained model's sigmoid outputs. Models are tiny and seeded, on
scikit-learn's breast_cancer (binary) and digits (multiclass) data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import debug, run_json
from sklearn.datasets import load_breast_cancer, load_digits


def _breast_cancer(rate: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised features and 0/1 labels; with ``rate``, negatives dropped to that positive rate."""
    features, labels = load_breast_cancer(return_X_y=True)
    if rate is not None:
        positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        wanted = round(len(negatives) * rate / (1 - rate))  # positives for 212 negatives
        if wanted <= len(positives):
            rows = np.concatenate([positives[:wanted], negatives])
        else:
            rows = np.concatenate(
                [positives, negatives[: round(len(positives) * (1 - rate) / rate)]]
            )
        features, labels = features[rows], labels[rows]
        assert abs(labels.mean() - rate) < 0.005
    features = (features - features.mean(0)) / features.std(0)
    return torch.tensor(features, dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)


def _prior_initialised(x: torch.Tensor, y: torch.Tensor, seed: int) -> torch.nn.Linear:
    """nn.Linear with weights N(0, 0.01) and bias log(p / (1 - p)) for the positive rate p."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], 1)
    rate = float(y.mean())
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01)
        head.bias.fill_(math.log(rate / (1 - rate)))
    return head


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        F.binary_cross_entropy_with_logits(model(x).squeeze(1), y).backward()
        optimiser.step()


def _logits(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).squeeze(1).numpy()


def _assert_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], logits: np.ndarray, y: torch.Tensor
) -> None:
    outcome = debug(tmp_path, capsys, "bce-logits", logits, y.numpy())
    assert outcome.code == 0 and not outcome.alarms(), outcome.alarm_lines()
    expected = F.binary_cross_entropy_with_logits(torch.from_numpy(logits), y).item()
    assert outcome.report["value"] == expected


@pytest.mark.parametrize(("rate", "seed"), [(0.6, 0), (0.6, 1), (None, 0), (0.66, 2), (0.7, 3)])
def test_prior_initialised_logits_are_not_sigmoid_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: float | None, seed: int
) -> None:
    x, y = _breast_cancer(rate)
    logits = _logits(_prior_initialised(x, y, seed), x)
    assert logits.min() >= 0 and logits.max() <= 1  # precondition: a narrow band inside [0, 1]
    _assert_quiet(tmp_path, capsys, logits, y)


@pytest.mark.parametrize("steps", [1, 3])
def test_slightly_trained_prior_initialised_logits_are_not_sigmoid_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: int
) -> None:
    x, y = _breast_cancer(0.66)  # logit(0.66) = 0.66: the two readings start closest here
    head = _prior_initialised(x, y, seed=1)
    _train(head, x, y, steps=steps, lr=0.01)
    logits = _logits(head, x)
    assert logits.min() >= 0 and logits.max() <= 1
    _assert_quiet(tmp_path, capsys, logits, y)


def test_batches_of_prior_initialised_logits_are_not_sigmoid_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # what a training loop sees: batches of 32 logits, each of them judged on its own
    x, y = _breast_cancer(0.6)
    logits = _logits(_prior_initialised(x, y, seed=0), x)
    order = np.random.default_rng(0).permutation(len(logits))
    for batch in np.array_split(order, len(order) // 32)[:6]:
        _assert_quiet(tmp_path, capsys, logits[batch], y[batch])


def _trained_mlp(x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        optimiser.zero_grad()
        F.binary_cross_entropy_with_logits(model(x).squeeze(1), y).backward()
        optimiser.step()
    return model


def test_a_trained_models_sigmoid_output_still_fires_with_a_verified_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = _breast_cancer()
    probabilities = torch.sigmoid(torch.from_numpy(_logits(_trained_mlp(x, y), x))).numpy()
    outcome = debug(tmp_path, capsys, "bce-logits", probabilities, y.numpy())
    found = outcome.named("probabilities-as-logits")
    assert found["severity"] == "warning"
    assert "read as probabilities they fit the targets better" in found["message"]
    on_probabilities = F.binary_cross_entropy(torch.from_numpy(probabilities), y).item()
    clean = [
        f for f in found["fixes"] if f["verified"] is not None and not f["verified"]["findings"]
    ]
    assert any(f["verified"]["value"] == pytest.approx(on_probabilities, rel=1e-5) for f in clean)


def test_untrained_default_initialised_logits_are_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = _breast_cancer()
    torch.manual_seed(0)
    logits = _logits(torch.nn.Linear(x.shape[1], 1), x)
    _assert_quiet(tmp_path, capsys, logits, y)


def test_prior_initialised_multiclass_logits_are_not_softmax_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the multiclass prior initialisation: bias = log(class prior), so every logit is <= 0 and
    # no row can be read as probabilities summing to 1 (cross-entropy's check stays quiet)
    features, labels = load_digits(return_X_y=True)
    keep = (labels < 5) | (np.arange(len(labels)) % 4 == 0)  # uneven priors
    features, labels = features[keep], labels[keep]
    x = torch.tensor((features - features.mean(0)) / (features.std(0) + 1e-6), dtype=torch.float32)
    prior = np.bincount(labels, minlength=10) / len(labels)
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], 10)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01)
        head.bias.copy_(torch.tensor(np.log(prior), dtype=torch.float32))
        logits = head(x).numpy()
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    assert "probabilities-as-logits" not in {f["name"] for f in outcome.findings}
    assert outcome.code == 0


@pytest.mark.parametrize("case", ["prior-logits", "sigmoid-output"])
def test_streamed_inputs_get_the_same_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    # SPEC: streamed or not, the same findings; the readings see the targets chunk by chunk too
    if case == "prior-logits":
        x, y = _breast_cancer(0.6)
        scores = _logits(_prior_initialised(x, y, seed=0), x)
    else:
        x, y = _breast_cancer()
        scores = torch.sigmoid(torch.from_numpy(_logits(_trained_mlp(x, y), x))).numpy()
    paths = []
    for name, array in (("scores", scores), ("targets", y.numpy())):
        np.save(tmp_path / f"{name}.npy", array)
        paths.append(str(tmp_path / f"{name}.npy"))
    whole = run_json(capsys, ["compute", "bce-logits", *paths])
    streamed = run_json(capsys, ["compute", "bce-logits", *paths, "--memory-budget", "16KB"])
    assert streamed.report["streaming"]["chunks"] > 1
    verdicts = [{(f["name"], f["severity"]) for f in o.findings} for o in (whole, streamed)]
    assert verdicts[0] == verdicts[1]
    assert (("probabilities-as-logits", "warning") in verdicts[0]) == (case == "sigmoid-output")
