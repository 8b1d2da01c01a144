"""False alarms: clean, realistic inputs must produce no warning and no error (info is fine).

A debugger that cries wolf is useless in CI, so each case here is a bug if it fails. The
inputs are made the way a training script makes them (log_softmax output, sigmoid output,
softplus variances, padded CTC batches), and a few are drawn at random with hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import losses, options, pipeline
from losscli.cli import main
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


# --- realistic variation: regression scales, extreme but valid probabilities, log space ---------


def regression_at_every_scale(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = []
    for scale in (1e-6, 1e-3, 1.0, 1e3, 1e6):
        positive = rng.lognormal(size=256) * scale  # prices, concentrations, durations
        noisy = positive * (1 + 0.05 * rng.normal(size=256))
        signed = rng.normal(size=256) * scale
        for loss in ("mse", "l1", "huber", "smooth-l1"):
            cases.append((loss, (f32(noisy), f32(positive)), {}))
        cases.append(("mse", (f32(signed + 0.1 * scale * rng.normal(size=256)), f32(signed)), {}))
    return cases


def integer_regression_targets(rng: np.random.Generator) -> list[Case]:
    ratings = rng.integers(1, 6, size=(200, 1))  # 1..5 stars, int64 as pandas reads them
    counts = rng.poisson(3.0, size=300)
    return [
        ("mse", (f32(ratings + 0.3 * rng.normal(size=(200, 1))), ratings), {}),
        ("l1", (f32(ratings), ratings), {}),  # a perfect fit: zero loss, zero gradient
        ("huber", (counts + rng.normal(size=300), counts.astype(np.float64)), {}),
        ("mse", (f32(rng.random(64)), rng.integers(0, 2, 64)), {}),  # 0/1 regression target
        ("mse", (f32(2 + 0.1 * rng.normal(size=64)), f32(np.full(64, 2.0))), {}),
    ]


def probabilities_at_the_edge(rng: np.random.Generator) -> list[Case]:
    cases: list[Case] = []
    for scale in (1.0, 3.0, 8.0, 15.0):
        logits = rng.normal(scale=scale, size=512)
        probabilities = np.clip(1 / (1 + np.exp(-logits)), 1e-7, 1 - 1e-7)
        labels = (rng.random(512) < probabilities).astype(np.float64)
        cases += [
            ("bce", (f32(probabilities), f32(labels)), {}),
            ("bce", (probabilities, labels), {}),
            ("bce-logits", (f32(logits), f32(labels)), {}),
            ("focal", (f32(logits), f32(labels)), {}),
            ("dice", (f32(logits.reshape(8, 64)), f32(labels.reshape(8, 64))), {}),
        ]
    edge = np.r_[np.full(8, 1e-7), np.full(8, 1 - 1e-7)]
    cases.append(("bce", (f32(edge), f32(np.r_[np.zeros(8), np.ones(8)])), {}))
    cases.append(("bce", (f32(rng.random(64)), rng.integers(0, 2, 64).astype(np.int8)), {}))
    return cases


def margins_all_met(rng: np.random.Generator) -> list[Case]:
    # nothing left to learn: zero loss and zero gradient is not a vanishing gradient
    x1, x2 = rng.normal(size=128), rng.normal(size=128)
    signs = np.sign(x1 - x2)
    distances = np.abs(rng.normal(size=128))
    labels = rng.choice([-1, 1], 128)
    embeddings = rng.normal(size=(64, 16))
    pair_labels = rng.choice([-1.0, 1.0], 64)
    anchor = rng.normal(size=(32, 8))
    scores = rng.normal(size=(32, 5))
    classes = scores.argmax(1)
    scores[np.arange(32), classes] += 10
    return [
        ("margin-ranking", (f32(x1 + 5 * signs), f32(x2), f32(signs)), {"margin": 0.5}),
        ("margin-ranking", (f32(x1 + 5 * signs), f32(x2), signs.astype(np.int8)), {}),
        ("margin-ranking", (f32(x1), f32(x2), signs.astype(np.int64)), {}),
        ("hinge-embedding", (f32(np.where(labels < 0, 5.0, 0.0)), labels), {}),
        ("hinge-embedding", (f32(distances + np.where(labels < 0, 2, 0)), f32(labels)), {}),
        (
            "cosine-embedding",
            (f32(embeddings), f32(embeddings * pair_labels[:, None]), pair_labels.astype(np.int64)),
            {"margin": 0.1},
        ),
        ("triplet-margin", (f32(anchor), f32(anchor + 0.01), f32(anchor + 10)), {}),
        ("multi-margin", (f32(scores), classes), {}),
    ]


def log_space_variation(rng: np.random.Generator) -> list[Case]:
    student = F.log_softmax(torch.from_numpy(rng.normal(scale=5, size=(2, 8, 32000))), -1)
    teacher = F.softmax(torch.from_numpy(rng.normal(scale=5, size=(2, 8, 32000))), -1)
    smoothed = np.eye(10)[rng.integers(0, 10, 32)] * 0.9 + 0.01
    time, batch, classes = 1000, 8, 29
    log_probs = F.log_softmax(torch.from_numpy(rng.normal(size=(time, batch, classes))), 2)
    targets = rng.integers(1, classes, size=(batch, 250))
    target_lengths = rng.integers(100, 250, batch)
    logits = rng.normal(size=(64, 10))
    logits[:, 8:] = -np.inf  # two classes masked out (an action mask)
    counts = rng.poisson(1.0, size=500)
    mean = rng.normal(size=256)
    return [
        ("kl-div", (f32(student), f32(teacher)), {"reduction": "batchmean"}),
        (
            "kl-div",
            (f32(student[0]), f32(np.log(teacher[0].numpy()))),
            {"log_target": True, "reduction": "batchmean"},
        ),
        ("kl-div", (f32(np.log(smoothed) - 0.1), f32(smoothed)), {"reduction": "batchmean"}),
        ("ctc", (f32(log_probs), targets, np.full(batch, time), target_lengths), {}),
        (
            "ctc",
            (f32(log_probs), targets, np.full(batch, time), target_lengths),
            {"zero_infinity": True},
        ),
        ("cross-entropy", (f32(logits), rng.integers(0, 8, 64)), {}),
        ("poisson-nll", (f32(0.05 * rng.normal(size=500)), f32(counts)), {}),
        ("poisson-nll", (f32(np.log(0.01) + 0.1 * rng.normal(size=500)), counts * 0), {}),
        ("gaussian-nll", (f32(mean + 1e-4), f32(mean), f32(np.full(256, 1e-8))), {}),
        ("gaussian-nll", (f32(mean * 1e3), f32(mean * 1e3 + 10), f32(np.full(256, 1e6))), {}),
        ("margin-ranking", (f32(mean), f32(np.zeros(256)), f32(np.sign(mean))), {}),
    ]


VARIATIONS: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    family.__name__: family
    for family in (
        regression_at_every_scale,
        integer_regression_targets,
        probabilities_at_the_edge,
        margins_all_met,
        log_space_variation,
    )
}


@pytest.mark.parametrize("family", sorted(VARIATIONS))
def test_realistic_variation_raises_no_alarm(family: str) -> None:
    for loss, arrays, given_options in VARIATIONS[family](np.random.default_rng(7)):
        report = evaluate(loss, arrays, given_options)
        assert report.computation is not None, loss
        assert alarms(report) == [], (loss, given_options)


# --- near misses for the heuristics the variations above exercise ------------------------------


def test_float64_probabilities_that_round_to_one_in_float32_are_info() -> None:
    # 1 - 1e-12 is a valid probability; only losscli's cast to float32 makes it exactly 1
    probabilities = np.r_[np.full(4, 1 - 1e-12), np.full(12, 0.5)]
    report = evaluate("bce", (probabilities, np.r_[np.ones(4), np.zeros(12)]), {})
    (found,) = [f for f in report.findings if f.name == "saturated-probabilities"]
    assert found.severity is Severity.INFO and "--dtype float64" in found.fix
    # near miss: exact ones in the file, one of them on a 0 target, cost 100 in any precision
    stored = np.r_[np.ones(4), np.full(12, 0.5)]
    report = evaluate("bce", (stored, np.r_[np.ones(3), np.zeros(13)]), {})
    (found,) = [f for f in report.findings if f.name == "saturated-probabilities"]
    assert (
        found.severity is Severity.WARNING and "1 of them away from their target" in found.message
    )


def test_trained_sigmoid_model_saturated_on_easy_samples_is_info() -> None:
    # sigmoid + BCELoss on a trained model: easy samples round to exactly 0/1 in float32, and
    # every one of them is right, so each term is exactly 0 either way
    rng = np.random.default_rng(5)
    labels = (rng.random(256) < 0.5).astype(np.float32)
    logits = np.where(labels == 1, 1.0, -1.0) * rng.uniform(0.5, 40, size=256)
    probabilities = torch.sigmoid(torch.from_numpy(logits.astype(np.float32))).numpy()
    assert ((probabilities == 0) | (probabilities == 1)).sum() > 10  # precondition
    report = evaluate("bce", (probabilities, labels), {})
    assert alarms(report) == []
    (found,) = [f for f in report.findings if f.name == "saturated-probabilities"]
    assert found.severity is Severity.INFO and "every one equal to its target" in found.message


def test_masked_logits_are_info_but_a_fully_masked_row_is_an_error() -> None:
    logits = np.random.default_rng(0).normal(size=(16, 10)).astype(np.float32)
    logits[:, 8:] = -np.inf
    report = evaluate("cross-entropy", (logits, np.arange(16) % 8), {})
    (found,) = [f for f in report.findings if f.name == "non-finite-input"]
    assert found.severity is Severity.INFO and "masked" in found.message
    assert report.computation is not None and np.isfinite(report.computation.value)
    # a target on a masked class: the loss is inf and the fix names the mask
    report = evaluate("cross-entropy", (logits, np.r_[9, np.arange(15) % 8]), {})
    (loss,) = [f for f in report.findings if f.name == "non-finite-loss"]
    assert loss.severity is Severity.ERROR and "masked (-inf)" in loss.fix
    # near miss: a row with every class masked has no distribution; NaN is never a mask
    logits[0] = -np.inf
    report = evaluate("cross-entropy", (logits, np.arange(16) % 8), {})
    assert any(
        f.name == "non-finite-input" and f.severity is Severity.ERROR for f in report.findings
    )
    logits[0] = np.nan
    report = evaluate("cross-entropy", (logits, np.arange(16) % 8), {})
    assert any(
        f.name == "non-finite-input" and f.severity is Severity.ERROR for f in report.findings
    )
    # near miss: -inf logits for a sigmoid loss are not a mask (bce-logits gives NaN)
    report = evaluate("bce-logits", (f32(np.r_[-np.inf, np.zeros(7)]), f32(np.zeros(8))), {})
    assert any(
        f.name == "non-finite-input" and f.severity is Severity.ERROR for f in report.findings
    )


def test_one_constant_baseline_is_not_a_dead_model() -> None:
    scores = np.random.default_rng(1).normal(size=64)
    report = evaluate("margin-ranking", (f32(scores), f32(np.zeros(64)), f32(np.sign(scores))), {})
    assert not [f for f in report.findings if f.name == "constant-input"]
    # near miss: both sides constant is a collapsed model
    report = evaluate(
        "margin-ranking", (f32(np.ones(64)), f32(np.ones(64)), f32(np.sign(scores))), {}
    )
    assert len([f for f in report.findings if f.name == "constant-input"]) == 2


def test_float16_soft_labels_a_rounding_unit_above_one_are_not_outside() -> None:
    # mixup of float16 labels: lam * 1 + (1 - lam) * 1 can round to 1 + 2^-10 in float16
    targets = np.full(16, 1 + 2**-10, dtype=np.float16)
    assert targets[0] > 1
    logits = f32(np.random.default_rng(2).normal(size=16))
    report = evaluate("bce-logits", (logits, targets), {})
    assert not [f for f in report.findings if f.name == "target-outside-unit-interval"]
    # near miss: a real excess in float16 still fires
    report = evaluate("bce-logits", (logits, np.full(16, 1.01, dtype=np.float16)), {})
    assert [f for f in report.findings if f.name == "target-outside-unit-interval"]


def test_star_ratings_from_a_csv_raise_no_alarm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a recommender's export: integer 1..5 ratings next to ids, float predictions
    rng = np.random.default_rng(11)
    ratings = rng.integers(1, 6, size=300)
    (tmp_path / "ratings.csv").write_text(
        "user,item,rating\n"
        + "".join(
            f"{u},{i},{r}\n" for u, i, r in zip(range(300), range(300, 600), ratings, strict=True)
        )
    )
    predictions = np.clip(ratings + rng.normal(scale=0.7, size=300), 1, 5)
    (tmp_path / "pred.csv").write_text("prediction\n" + "".join(f"{p:.4f}\n" for p in predictions))
    for loss in ("mse", "l1", "huber"):
        try:
            main(
                [
                    "debug",
                    str(tmp_path / "pred.csv:prediction"),
                    str(tmp_path / "ratings.csv:rating"),
                    "--loss",
                    loss,
                    "--format",
                    "json",
                ]
            )
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        report = json.loads(capsys.readouterr().out)
        assert code == 0
        assert [f["name"] for f in report["findings"] if f["severity"] != "info"] == []


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    log_mean=st.floats(np.log(0.05), np.log(5000.0)),
    shape=st.floats(0.5, 20.0),
    noise=st.floats(0.0, 1.0),
)
def test_log_rates_of_any_scale_are_not_read_as_rates(
    seed: int, log_mean: float, shape: float, noise: float
) -> None:
    # a log-rate model (log_input=True, the default) at any count scale, well or badly fit
    rng = np.random.default_rng(seed)
    rates = np.maximum(rng.gamma(shape, np.exp(log_mean) / shape, size=200), 1e-3)
    log_rates = np.log(rates) + noise * rng.normal(size=200)
    report = evaluate("poisson-nll", (f32(log_rates), f32(rng.poisson(rates))), {})
    assert not [f for f in report.findings if f.name == "poisson-log-input-mismatch"]
