"""False alarms: clean, realistic inputs must produce no warning and no error (info is fine).

A debugger that cries wolf is useless in CI, so each case here is a bug if it fails. The
inputs are made the way a training script makes them (log_softmax output, sigmoid output,
softplus variances, padded CTC batches), and a few are drawn at random with hypothesis.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import losses, options, pipeline
from losscli.findings import Severity
from losscli.loaders import LoadedArray
from losscli.report import Report

Case = tuple[str, tuple[np.ndarray, ...], dict[str, object]]


def evaluate(loss: str, arrays: tuple[np.ndarray, ...], given_options: dict[str, object]) -> Report:
    spec = losses.get(loss)
    assert spec is not None
    inputs = {
        argument.name: LoadedArray(np.asarray(values), f"{argument.name}.npy")
        for argument, values in zip(spec.arguments, arrays, strict=True)
    }
    return pipeline.evaluate(spec, inputs, options.resolve(spec, given_options))


def alarms(report: Report) -> list[str]:
    return [f"{f.name}: {f.message}" for f in report.findings if f.severity is not Severity.INFO]


def f32(values: torch.Tensor | np.ndarray) -> np.ndarray:
    array = values.numpy() if isinstance(values, torch.Tensor) else values
    return np.asarray(array, dtype=np.float32)


def regression_in_unit_interval(rng: np.random.Generator) -> Case:
    targets = rng.random(128)
    return "mse", (f32(targets + rng.normal(scale=0.05, size=128)), f32(targets)), {}


def robust_regression(rng: np.random.Generator) -> Case:
    targets = rng.normal(scale=10, size=(64, 3))
    return "huber", (f32(targets + rng.normal(size=(64, 3))), f32(targets)), {"delta": 1.0}


def hinge_with_sign_targets(rng: np.random.Generator) -> Case:
    labels = rng.choice([-1.0, 1.0], size=64)
    distances = np.abs(rng.normal(size=64)) + np.where(labels > 0, 0.0, 0.8)
    return "hinge-embedding", (f32(distances), f32(labels)), {}


def ranking_with_sign_targets(rng: np.random.Generator) -> Case:
    x1, x2 = rng.normal(size=64), rng.normal(size=64)
    return (
        "margin-ranking",
        (f32(x1), f32(x2), f32(np.sign(x1 - x2 + 0.3 * rng.normal(size=64)))),
        {},
    )


def cosine_pairs(rng: np.random.Generator) -> Case:
    return (
        "cosine-embedding",
        (
            f32(rng.normal(size=(32, 8))),
            f32(rng.normal(size=(32, 8))),
            f32(rng.choice([-1.0, 1.0], 32)),
        ),
        {"margin": 0.2},
    )


def soft_margin(rng: np.random.Generator) -> Case:
    return "soft-margin", (f32(rng.normal(size=40)), f32(rng.choice([-1.0, 1.0], 40))), {}


def valid_ctc(rng: np.random.Generator) -> Case:
    time, batch, classes = 50, 4, 20
    log_probs = F.log_softmax(torch.from_numpy(rng.normal(size=(time, batch, classes))), 2).numpy()
    input_lengths = np.array([50, 46, 40, 33])
    log_probs[33:, 3, :] = 0.0  # frames beyond the input length, padded after log_softmax
    target_lengths = np.array([12, 9, 15, 4])
    targets = np.zeros((batch, 15), dtype=np.int64)  # padded with 0 (the blank) beyond each length
    for n, length in enumerate(target_lengths):
        targets[n, :length] = rng.integers(1, classes, size=length)
    return "ctc", (f32(log_probs), targets, input_lengths, target_lengths), {}


def ctc_concatenated_targets(rng: np.random.Generator) -> Case:
    log_probs = F.log_softmax(torch.from_numpy(rng.normal(size=(30, 2, 8))), 2).numpy()
    target_lengths = np.array([5, 7])
    targets = rng.integers(1, 8, size=12)
    return "ctc", (f32(log_probs), targets, np.array([30, 25]), target_lengths), {}


def bce_on_probabilities(rng: np.random.Generator) -> Case:
    probabilities = torch.sigmoid(torch.from_numpy(rng.normal(scale=2, size=(32, 4))))
    return "bce", (f32(probabilities), f32(rng.random((32, 4)) > 0.5)), {}


def segmentation_bce_logits(rng: np.random.Generator) -> Case:
    mask = f32(rng.random((2, 1, 32, 32)) > 0.8)
    return "bce-logits", (f32(rng.normal(size=(2, 1, 32, 32))), mask), {"pos_weight": "[4.0]"}


def focal_and_dice(rng: np.random.Generator) -> Case:
    return "focal", (f32(rng.normal(size=(8, 64))), f32(rng.random((8, 64)) > 0.9)), {}


def dice_masks(rng: np.random.Generator) -> Case:
    return "dice", (f32(rng.normal(size=(4, 1, 16, 16))), f32(rng.random((4, 1, 16, 16)) > 0.5)), {}


def multilabel(rng: np.random.Generator) -> Case:
    return (
        "multilabel-soft-margin",
        (f32(rng.normal(size=(16, 6))), f32(rng.random((16, 6)) > 0.6)),
        {},
    )


def distillation_kl(rng: np.random.Generator) -> Case:
    student = F.log_softmax(torch.from_numpy(rng.normal(size=(32, 10))), 1)
    teacher = F.softmax(torch.from_numpy(rng.normal(scale=2, size=(32, 10))) / 4.0, 1)
    return "kl-div", (f32(student), f32(teacher)), {"reduction": "batchmean"}


def distillation_kl_log_target(rng: np.random.Generator) -> Case:
    student = F.log_softmax(torch.from_numpy(rng.normal(size=(16, 50))), 1)
    teacher = F.log_softmax(torch.from_numpy(rng.normal(size=(16, 50))), 1)
    return "kl-div", (f32(student), f32(teacher)), {"reduction": "batchmean", "log_target": True}


def sequence_kl(rng: np.random.Generator) -> Case:
    student = F.log_softmax(torch.from_numpy(rng.normal(size=(4, 12, 100))), -1)
    teacher = F.softmax(torch.from_numpy(rng.normal(size=(4, 12, 100))), -1)
    return "kl-div", (f32(student), f32(teacher)), {"reduction": "batchmean"}


def gaussian_with_softplus_variance(rng: np.random.Generator) -> Case:
    head = torch.from_numpy(rng.normal(size=(64, 2)))
    variance = F.softplus(head[:, 1]) + 1e-6
    return "gaussian-nll", (f32(head[:, 0]), f32(rng.normal(size=64)), f32(variance)), {}


def poisson_log_rates(rng: np.random.Generator) -> Case:
    rates = rng.gamma(2.0, 3.0, size=100)
    counts = rng.poisson(rates)
    return "poisson-nll", (f32(np.log(rates)), counts.astype(np.int64)), {}


def poisson_rates_without_log(rng: np.random.Generator) -> Case:
    rates = rng.gamma(2.0, 3.0, size=100)
    return "poisson-nll", (f32(rates), rng.poisson(rates)), {"log_input": False}


def trained_classifier(rng: np.random.Generator) -> Case:
    # confident and mostly right: the gradient is small (about 1e-7) but not vanishing
    labels = rng.integers(0, 5, size=256)
    logits = rng.normal(size=(256, 5))
    logits[np.arange(256), labels] += 12.0
    return "cross-entropy", (f32(logits), labels), {}


def trained_binary_classifier(rng: np.random.Generator) -> Case:
    labels = rng.random(512) > 0.5
    logits = np.where(labels, 9.0, -9.0) + rng.normal(size=512)
    return "bce-logits", (f32(logits), f32(labels)), {}


def nll_on_log_softmax(rng: np.random.Generator) -> Case:
    log_probabilities = F.log_softmax(torch.from_numpy(rng.normal(size=(16, 4))), 1)
    return "nll", (f32(log_probabilities), rng.integers(0, 4, size=16)), {}


def triplets(rng: np.random.Generator) -> Case:
    anchor = F.normalize(torch.from_numpy(rng.normal(size=(32, 16))), dim=1)
    positive = F.normalize(anchor + 0.3 * torch.from_numpy(rng.normal(size=(32, 16))), dim=1)
    negative = F.normalize(torch.from_numpy(rng.normal(size=(32, 16))), dim=1)
    return "triplet-margin", (f32(anchor), f32(positive), f32(negative)), {"margin": 0.5}


CASES: dict[str, Callable[[np.random.Generator], Case]] = {
    case.__name__: case
    for case in (
        regression_in_unit_interval,
        robust_regression,
        hinge_with_sign_targets,
        ranking_with_sign_targets,
        cosine_pairs,
        soft_margin,
        valid_ctc,
        ctc_concatenated_targets,
        bce_on_probabilities,
        segmentation_bce_logits,
        focal_and_dice,
        dice_masks,
        multilabel,
        distillation_kl,
        distillation_kl_log_target,
        sequence_kl,
        gaussian_with_softplus_variance,
        poisson_log_rates,
        poisson_rates_without_log,
        trained_classifier,
        trained_binary_classifier,
        nll_on_log_softmax,
        triplets,
    )
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_clean_inputs_raise_no_alarm(name: str) -> None:
    loss, arrays, given_options = CASES[name](np.random.default_rng(2026))
    report = evaluate(loss, arrays, given_options)
    assert report.computation is not None
    assert alarms(report) == []


def test_trained_classifier_gradient_is_small_but_present() -> None:
    # the case above is meaningful: its gradient is far below 1e-3 yet above the 1e-12 floor
    loss, arrays, given_options = trained_classifier(np.random.default_rng(2026))
    report = evaluate(loss, arrays, given_options)
    assert report.computation is not None
    gradient = np.abs(report.computation.gradients["input"])
    assert gradient.max() < 1e-3
    assert np.mean(gradient > 1e-12) > 0.5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(CASES)))
def test_clean_inputs_raise_no_alarm_for_any_draw(seed: int, name: str) -> None:
    loss, arrays, given_options = CASES[name](np.random.default_rng(seed))
    assert alarms(evaluate(loss, arrays, given_options)) == []
