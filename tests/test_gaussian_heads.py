"""gaussian-nll on a heteroscedastic regression model: torch's documented broadcasting is quiet.

A tiny two-headed model (means, variances) is trained on scikit-learn's diabetes data
(seeded, a second or two). ``GaussianNLLLoss`` documents a var with a last dimension of 1 or
one dimension fewer, and a target "with one dimension equal to 1": those pair every mean
with its own sample and raise nothing; a 1-D target against an (N, 1) head broadcasts into an
(N, N) grid and stays ``silent-broadcast``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import debug
from sklearn.datasets import load_diabetes


@dataclass(frozen=True)
class Heads:
    """What a trained mean/variance model returns on the diabetes data.

    Attributes:
        means: [batch, outputs] predicted means.
        variances: [batch, 1] one predicted variance per sample.
        targets: [batch, outputs] standardised targets.
    """

    means: np.ndarray
    variances: np.ndarray
    targets: np.ndarray


def _trained_heads(outputs: int, steps: int = 150) -> Heads:
    """Disease progression (and, for two outputs, the s5 serum measure) from the other features."""
    features, progression = load_diabetes(return_X_y=True)
    columns = [progression, features[:, 8]][:outputs]
    kept = np.delete(features, 8, axis=1) if outputs > 1 else features
    targets = np.stack(columns, axis=1)
    targets = (targets - targets.mean(0)) / targets.std(0)
    x = torch.tensor((kept - kept.mean(0)) / kept.std(0), dtype=torch.float32)
    y = torch.tensor(targets, dtype=torch.float32)
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 16), torch.nn.ReLU())
    mean_head, variance_head = torch.nn.Linear(16, outputs), torch.nn.Linear(16, 1)
    parameters = [*body.parameters(), *mean_head.parameters(), *variance_head.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=0.01)
    for _ in range(steps):
        optimiser.zero_grad()
        hidden = body(x)
        variance = F.softplus(variance_head(hidden)) + 1e-3
        F.gaussian_nll_loss(mean_head(hidden), y, variance).backward()
        optimiser.step()
    with torch.no_grad():
        hidden = body(x)
        means = mean_head(hidden).numpy()
        variances = (F.softplus(variance_head(hidden)) + 1e-3).numpy()
    return Heads(means, variances, targets.astype(np.float32))


def _torch_value(means: np.ndarray, targets: np.ndarray, variances: np.ndarray) -> float:
    return F.gaussian_nll_loss(
        torch.from_numpy(means), torch.from_numpy(targets), torch.from_numpy(variances)
    ).item()


def test_two_means_and_one_variance_per_sample_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heads = _trained_heads(outputs=2)
    assert heads.means.shape == (442, 2) and heads.variances.shape == (442, 1)
    outcome = debug(tmp_path, capsys, "gaussian-nll", heads.means, heads.targets, heads.variances)
    assert outcome.code == 0 and not outcome.alarms(), outcome.alarm_lines()
    expected = _torch_value(heads.means, heads.targets, heads.variances)
    assert outcome.report["value"] == expected


def test_a_variance_with_one_dimension_fewer_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heads = _trained_heads(outputs=1)
    variances = heads.variances[:, 0]  # (N,) against (N, 1) means: torch unsqueezes it
    outcome = debug(tmp_path, capsys, "gaussian-nll", heads.means, heads.targets, variances)
    assert outcome.code == 0 and not outcome.alarms(), outcome.alarm_lines()
    assert outcome.report["value"] == _torch_value(heads.means, heads.targets, variances)


def test_several_draws_against_a_target_column_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # K predicted means per sample (an ensemble of heads, or K dropout draws) scored against
    # the one target of the sample, (N, 1): GaussianNLLLoss's documented target broadcasting
    heads = _trained_heads(outputs=1)
    rng = np.random.default_rng(0)
    draws = (heads.means + rng.normal(0.0, 0.1, size=(heads.means.shape[0], 5))).astype(np.float32)
    variances = np.repeat(heads.variances, 5, axis=1)
    outcome = debug(tmp_path, capsys, "gaussian-nll", draws, heads.targets, variances)
    assert outcome.code == 0 and not outcome.alarms(), outcome.alarm_lines()
    per_element = F.gaussian_nll_loss(
        torch.from_numpy(draws),
        torch.from_numpy(heads.targets),
        torch.from_numpy(variances),
        reduction="none",
    )
    assert per_element.shape == draws.shape  # each draw against its own sample's target
    assert outcome.report["value"] == _torch_value(draws, heads.targets, variances)


def test_a_one_dimensional_target_against_a_column_head_still_fires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # y straight from load_diabetes is (N,); the heads are (N, 1): torch broadcasts to (N, N)
    heads = _trained_heads(outputs=1)
    flat_targets = heads.targets[:, 0]
    grid = F.gaussian_nll_loss(
        torch.from_numpy(heads.means),
        torch.from_numpy(flat_targets),
        torch.from_numpy(heads.variances),
        reduction="none",
    )
    assert grid.shape == (442, 442)  # precondition: torch computes the wrong value silently
    outcome = debug(tmp_path, capsys, "gaussian-nll", heads.means, flat_targets, heads.variances)
    found = outcome.named("silent-broadcast")
    assert found["severity"] == "error" and outcome.code == 1
    assert "(442, 442)" in found["message"]
    correct = _torch_value(heads.means, heads.targets, heads.variances)
    verified = [
        fix["verified"]["value"]
        for fix in found["fixes"]
        if fix["verified"] is not None and not fix["verified"]["findings"]
    ]
    assert verified and all(value == pytest.approx(correct, rel=1e-6) for value in verified)
