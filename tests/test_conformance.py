"""Conformance: losscli's numbers are torch's numbers, for every loss of the catalogue.

One valid-input case (or more) per loss: realistic random inputs from a fixed seed, in the
shapes, dtypes and domains the loss needs. Each case is run through losscli's own path
(``options.resolve`` → ``pipeline.evaluate``: conversion, checks, compute) and compared with
an independent reference: the ``torch.nn`` module class built from the same options (so
losscli's defaults are checked against torch's own), torchvision's focal formula quoted
inline, and the SPEC's Dice formula. Values and gradients must be equal bit for bit; the
per-sample breakdown must recover the value by the SPEC's rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losscli import losses, options, pipeline
from losscli.loaders import LoadedArray
from losscli.losses import PerSampleRule
from losscli.report import Report
from losscli.result import Computation

# the reference kl-div calls with reduction mean warn (losscli records it as data)
pytestmark = pytest.mark.filterwarnings("ignore:reduction.*batchmean:UserWarning")
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# rtol of the per-sample recovery: per_sample is float64, torch's value is in the compute dtype
RECOVERY_RTOL = {"float32": 1e-5, "float64": 1e-10}

Arrays = dict[str, np.ndarray]
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One valid input for one loss.

    Attributes:
        loss: the catalogue name.
        id: a short name for the test id.
        make: seeded generator → argument name → array (float64 for float arguments,
            int64 for indices and lengths), in the domain the loss needs.
        reference: (tensors, torch keyword arguments) → torch's result; the keyword
            arguments hold only the options this case sets, plus ``reduction``.
        options: the options as a user types them (tensor options as inline JSON text).
    """

    loss: str
    id: str
    make: Callable[[np.random.Generator], Arrays]
    reference: Callable[[Tensors, dict[str, Any]], torch.Tensor]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> losses.LossSpec:
        spec = losses.get(self.loss)
        assert spec is not None, self.loss
        return spec

    def arrays(self) -> Arrays:
        return self.make(np.random.default_rng(sum(map(ord, self.id))))


# ---------------------------------------------------------------------------------------
# input factories (numpy, float64 / int64)


def _normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def _log_softmax(scores: np.ndarray, axis: int) -> np.ndarray:
    shifted = scores - scores.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _signs(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=shape)


def _binary(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.random(shape) < 0.4).astype(np.float64)


def _regression(rng: np.random.Generator) -> Arrays:
    # predictions and targets at different scales, so every loss has both small and large errors
    return {"input": rng.standard_normal((6, 3)), "target": 2.0 * rng.standard_normal((6, 3))}


def _probabilities_and_soft_targets(rng: np.random.Generator) -> Arrays:
    probabilities = 1.0 / (1.0 + np.exp(-rng.standard_normal((5, 4))))
    return {"input": probabilities, "target": rng.random((5, 4))}


def _logits_and_binary_targets(rng: np.random.Generator) -> Arrays:
    return {"input": 1.5 * rng.standard_normal((5, 4)), "target": _binary(rng, 5, 4)}


def _class_logits(rng: np.random.Generator) -> Arrays:
    return {"input": rng.standard_normal((6, 4)), "target": rng.integers(0, 4, 6)}


def _class_logits_with_ignored(rng: np.random.Generator) -> Arrays:
    # two of eight targets carry the ignore_index the case sets (3): a void label
    target = rng.integers(0, 3, 8)
    target[[1, 5]] = 3
    return {"input": rng.standard_normal((8, 5)), "target": target}


def _class_probabilities(rng: np.random.Generator) -> Arrays:
    scores = rng.standard_normal((6, 4))
    return {"input": scores, "target": np.exp(_log_softmax(rng.standard_normal((6, 4)), 1))}


def _segmentation(rng: np.random.Generator) -> Arrays:
    # [batch, classes, height, width] scores; [batch, height, width] masks with 255 void pixels
    target = rng.integers(0, 3, (2, 4, 5))
    target[0, 0, :2] = 255
    target[1, 3, 4] = 255
    return {"input": rng.standard_normal((2, 3, 4, 5)), "target": target}


def _log_probabilities(rng: np.random.Generator) -> Arrays:
    return {"input": _log_softmax(rng.standard_normal((6, 5)), 1), "target": rng.integers(0, 5, 6)}


def _log_probabilities_with_ignored(rng: np.random.Generator) -> Arrays:
    target = rng.integers(0, 5, 7)
    target[[2, 4]] = -1  # -1 padding, ignored with --ignore-index -1
    return {"input": _log_softmax(rng.standard_normal((7, 5)), 1), "target": target}


def _poisson_log_rates(rng: np.random.Generator) -> Arrays:
    log_rates = 0.5 * rng.standard_normal((6, 2))
    return {"input": log_rates, "target": rng.poisson(np.exp(log_rates)).astype(np.float64)}


def _poisson_rates(rng: np.random.Generator) -> Arrays:
    rates = rng.uniform(0.2, 3.0, (6, 2))
    return {"input": rates, "target": rng.poisson(rates).astype(np.float64)}


def _gaussian(rng: np.random.Generator) -> Arrays:
    return {
        "input": rng.standard_normal((5, 3)),
        "target": rng.standard_normal((5, 3)),
        "var": rng.uniform(0.3, 2.0, (5, 3)),
    }


def _gaussian_shared_variance(rng: np.random.Generator) -> Arrays:
    # one variance per sample, [batch, 1], broadcast over the features (torch allows it)
    return {
        "input": rng.standard_normal((5, 3)),
        "target": rng.standard_normal((5, 3)),
        "var": rng.uniform(0.3, 2.0, (5, 1)),
    }


def _kl(rng: np.random.Generator) -> Arrays:
    return {
        "input": _log_softmax(rng.standard_normal((5, 4)), 1),
        "target": np.exp(_log_softmax(rng.standard_normal((5, 4)), 1)),
    }


def _kl_log_target(rng: np.random.Generator) -> Arrays:
    return {
        "input": _log_softmax(rng.standard_normal((5, 4)), 1),
        "target": _log_softmax(rng.standard_normal((5, 4)), 1),
    }


def _ranking(rng: np.random.Generator) -> Arrays:
    return {"x1": rng.standard_normal(8), "x2": rng.standard_normal(8), "y": _signs(rng, 8)}


def _distances_and_signs(rng: np.random.Generator) -> Arrays:
    return {"input": np.abs(rng.standard_normal((8, 3))), "target": _signs(rng, 8, 3)}


def _multilabel_indices(rng: np.random.Generator) -> Arrays:
    # each row: its labels first, then -1 padding (torch stops at the first -1)
    classes = 5
    target = np.full((4, classes), -1, dtype=np.int64)
    for row, count in enumerate((1, 2, 3, 5)):
        target[row, :count] = rng.permutation(classes)[:count]
    return {"input": rng.standard_normal((4, classes)), "target": target}


def _logits_and_signs(rng: np.random.Generator) -> Arrays:
    return {"input": rng.standard_normal((6, 3)), "target": _signs(rng, 6, 3)}


def _embedding_pairs(rng: np.random.Generator) -> Arrays:
    return {
        "x1": rng.standard_normal((6, 8)),
        "x2": rng.standard_normal((6, 8)),
        "y": _signs(rng, 6),
    }


def _triplets(rng: np.random.Generator) -> Arrays:
    anchor = rng.standard_normal((5, 8))
    return {
        "anchor": anchor,
        "positive": anchor + 0.5 * rng.standard_normal((5, 8)),
        "negative": rng.standard_normal((5, 8)),
    }


def _ctc(rng: np.random.Generator, blank: int = 0, concatenated: bool = False) -> Arrays:
    # [time, batch, classes] log-softmax; targets padded to the longest, without the blank
    time, batch, classes = 12, 3, 5
    log_probs = _log_softmax(rng.standard_normal((time, batch, classes)), 2)
    input_lengths = np.array([12, 10, 11], dtype=np.int64)
    target_lengths = np.array([4, 2, 3], dtype=np.int64)
    labels = [c for c in range(classes) if c != blank]
    targets = rng.choice(labels, size=(batch, 4)).astype(np.int64)
    if concatenated:
        targets = np.concatenate([targets[i, :n] for i, n in enumerate(target_lengths)])
    return {
        "log_probs": log_probs,
        "targets": targets,
        "input_lengths": input_lengths,
        "target_lengths": target_lengths,
    }


def _dice_masks(rng: np.random.Generator) -> Arrays:
    # [batch, height, width] logits and 0/1 masks
    return {"input": rng.standard_normal((4, 3, 3)), "target": _binary(rng, 4, 3, 3)}


# ---------------------------------------------------------------------------------------
# references


def _pair(module: Callable[..., nn.Module]) -> Callable[[Tensors, dict[str, Any]], torch.Tensor]:
    return lambda t, o: module(**o)(t["input"], t["target"])


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # torch's documented example of a custom distance_function: 1 - cosine similarity
    return 1.0 - F.cosine_similarity(a, b)


def _triplet_with_distance(t: Tensors, o: dict[str, Any]) -> torch.Tensor:
    kwargs = dict(o)
    if kwargs.get("distance_function") == "cosine":
        kwargs["distance_function"] = _cosine_distance
    return nn.TripletMarginWithDistanceLoss(**kwargs)(t["anchor"], t["positive"], t["negative"])


def torchvision_sigmoid_focal_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: str = "none",
) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss (torchvision/ops/focal_loss.py), quoted line for line."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)

    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss

    # Check reduction option and return loss accordingly
    if reduction == "none":
        pass
    elif reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    else:
        raise ValueError(
            f"Invalid Value for arg 'reduction': '{reduction} \n Supported reduction modes: 'none', 'mean', 'sum'"
        )
    return loss


def spec_dice(
    logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1e-6, reduction: str = "mean"
) -> torch.Tensor:
    """SPEC.md "Precise rules": p = sigmoid(input); per sample over its non-batch dimensions,
    1 − (2·Σp·t + s) / (Σp + Σt + s); reduced over samples."""
    p = torch.sigmoid(logits).flatten(1)
    t = targets.flatten(1)
    per_sample = 1 - (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)
    return {"mean": per_sample.mean, "sum": per_sample.sum}.get(reduction, lambda: per_sample)()


def _focal(t: Tensors, o: dict[str, Any]) -> torch.Tensor:
    return torchvision_sigmoid_focal_loss(t["input"], t["target"], **o)


def _dice(t: Tensors, o: dict[str, Any]) -> torch.Tensor:
    return spec_dice(t["input"], t["target"], **o)


def _ctc_reference(t: Tensors, o: dict[str, Any]) -> torch.Tensor:
    return nn.CTCLoss(**o)(t["log_probs"], t["targets"], t["input_lengths"], t["target_lengths"])


def _triple(
    module: Callable[..., nn.Module], a: str, b: str, c: str
) -> Callable[..., torch.Tensor]:
    return lambda t, o: module(**o)(t[a], t[b], t[c])


CASES: tuple[Case, ...] = (
    Case("l1", "l1", _regression, _pair(nn.L1Loss)),
    Case("mse", "mse", _regression, _pair(nn.MSELoss)),
    Case("huber", "huber", _regression, _pair(nn.HuberLoss)),
    Case("huber", "huber-delta", _regression, _pair(nn.HuberLoss), {"delta": 0.4}),
    Case("smooth-l1", "smooth-l1", _regression, _pair(nn.SmoothL1Loss)),
    Case("smooth-l1", "smooth-l1-beta", _regression, _pair(nn.SmoothL1Loss), {"beta": 0.3}),
    Case("bce", "bce", _probabilities_and_soft_targets, _pair(nn.BCELoss)),
    Case(
        "bce",
        "bce-weight",
        _probabilities_and_soft_targets,
        _pair(nn.BCELoss),
        {"weight": "[0.5, 1.0, 2.0, 1.5]"},
    ),
    Case("bce-logits", "bce-logits", _logits_and_binary_targets, _pair(nn.BCEWithLogitsLoss)),
    Case(
        "bce-logits",
        "bce-logits-pos-weight",
        _logits_and_binary_targets,
        _pair(nn.BCEWithLogitsLoss),
        {"pos_weight": "[3.0, 1.0, 0.5, 2.0]", "weight": "[1.0, 0.2, 1.0, 2.5]"},
    ),
    Case("cross-entropy", "ce-indices", _class_logits, _pair(nn.CrossEntropyLoss)),
    Case(
        "cross-entropy",
        "ce-weight-ignore",
        _class_logits_with_ignored,
        _pair(nn.CrossEntropyLoss),
        {"weight": "[0.2, 1.0, 3.0, 0.7, 1.5]", "ignore_index": 3},
    ),
    Case(
        "cross-entropy",
        "ce-smoothing-weight",
        _class_logits_with_ignored,
        _pair(nn.CrossEntropyLoss),
        {"weight": "[0.2, 1.0, 3.0, 0.7, 1.5]", "ignore_index": 3, "label_smoothing": 0.1},
    ),
    Case("cross-entropy", "ce-probabilities", _class_probabilities, _pair(nn.CrossEntropyLoss)),
    Case(
        "cross-entropy",
        "ce-probabilities-smoothing-weight",
        _class_probabilities,
        _pair(nn.CrossEntropyLoss),
        {"weight": "[1.0, 2.0, 0.5, 1.0]", "label_smoothing": 0.2},
    ),
    Case(
        "cross-entropy",
        "ce-segmentation",
        _segmentation,
        _pair(nn.CrossEntropyLoss),
        {"ignore_index": 255, "weight": "[1.0, 2.0, 0.5]"},
    ),
    Case("nll", "nll", _log_probabilities, _pair(nn.NLLLoss)),
    Case(
        "nll",
        "nll-weight-ignore",
        _log_probabilities_with_ignored,
        _pair(nn.NLLLoss),
        {"weight": "[0.5, 2.0, 1.0, 1.0, 3.0]", "ignore_index": -1},
    ),
    Case("poisson-nll", "poisson-nll", _poisson_log_rates, _pair(nn.PoissonNLLLoss)),
    Case(
        "poisson-nll",
        "poisson-nll-rates-full",
        _poisson_rates,
        _pair(nn.PoissonNLLLoss),
        {"log_input": False, "full": True, "eps": 1e-4},
    ),
    Case(
        "gaussian-nll",
        "gaussian-nll",
        _gaussian,
        lambda t, o: nn.GaussianNLLLoss(**o)(t["input"], t["target"], t["var"]),
    ),
    Case(
        "gaussian-nll",
        "gaussian-nll-full-shared-var",
        _gaussian_shared_variance,
        lambda t, o: nn.GaussianNLLLoss(**o)(t["input"], t["target"], t["var"]),
        {"full": True, "eps": 0.5},
    ),
    Case("kl-div", "kl-div", _kl, _pair(nn.KLDivLoss)),
    Case("kl-div", "kl-div-log-target", _kl_log_target, _pair(nn.KLDivLoss), {"log_target": True}),
    Case(
        "margin-ranking", "margin-ranking", _ranking, _triple(nn.MarginRankingLoss, "x1", "x2", "y")
    ),
    Case(
        "margin-ranking",
        "margin-ranking-margin",
        _ranking,
        _triple(nn.MarginRankingLoss, "x1", "x2", "y"),
        {"margin": 0.5},
    ),
    Case("hinge-embedding", "hinge-embedding", _distances_and_signs, _pair(nn.HingeEmbeddingLoss)),
    Case(
        "hinge-embedding",
        "hinge-embedding-margin",
        _distances_and_signs,
        _pair(nn.HingeEmbeddingLoss),
        {"margin": 2.0},
    ),
    Case(
        "multilabel-margin",
        "multilabel-margin",
        _multilabel_indices,
        _pair(nn.MultiLabelMarginLoss),
    ),
    Case("soft-margin", "soft-margin", _logits_and_signs, _pair(nn.SoftMarginLoss)),
    Case(
        "multilabel-soft-margin",
        "multilabel-soft-margin",
        _logits_and_binary_targets,
        _pair(nn.MultiLabelSoftMarginLoss),
    ),
    Case(
        "multilabel-soft-margin",
        "multilabel-soft-margin-weight",
        _logits_and_binary_targets,
        _pair(nn.MultiLabelSoftMarginLoss),
        {"weight": "[1.0, 0.5, 2.0, 3.0]"},
    ),
    Case(
        "cosine-embedding",
        "cosine-embedding",
        _embedding_pairs,
        _triple(nn.CosineEmbeddingLoss, "x1", "x2", "y"),
    ),
    Case(
        "cosine-embedding",
        "cosine-embedding-margin",
        _embedding_pairs,
        _triple(nn.CosineEmbeddingLoss, "x1", "x2", "y"),
        {"margin": 0.2},
    ),
    Case("multi-margin", "multi-margin", _class_logits, _pair(nn.MultiMarginLoss)),
    Case(
        "multi-margin",
        "multi-margin-p2-weight",
        _class_logits,
        _pair(nn.MultiMarginLoss),
        {"p": 2, "margin": 0.5, "weight": "[1.0, 2.0, 0.5, 1.5]"},
    ),
    Case(
        "triplet-margin",
        "triplet-margin",
        _triplets,
        _triple(nn.TripletMarginLoss, "anchor", "positive", "negative"),
    ),
    Case(
        "triplet-margin",
        "triplet-margin-p1-swap",
        _triplets,
        _triple(nn.TripletMarginLoss, "anchor", "positive", "negative"),
        {"p": 1.0, "swap": True, "margin": 0.5, "eps": 1e-3},
    ),
    Case("triplet-margin-distance", "triplet-distance", _triplets, _triplet_with_distance),
    Case(
        "triplet-margin-distance",
        "triplet-distance-cosine-swap",
        _triplets,
        _triplet_with_distance,
        {"distance_function": "cosine", "swap": True, "margin": 0.3},
    ),
    Case("ctc", "ctc", _ctc, _ctc_reference),
    Case(
        "ctc",
        "ctc-blank-last-zero-infinity",
        lambda rng: _ctc(rng, blank=4),
        _ctc_reference,
        {"blank": 4, "zero_infinity": True},
    ),
    Case("ctc", "ctc-concatenated", lambda rng: _ctc(rng, concatenated=True), _ctc_reference),
    Case("focal", "focal", _logits_and_binary_targets, _focal),
    Case(
        "focal",
        "focal-alpha-gamma",
        _logits_and_binary_targets,
        _focal,
        {"alpha": 0.6, "gamma": 1.5},
    ),
    Case("focal", "focal-no-alpha", _logits_and_binary_targets, _focal, {"alpha": -1.0}),
    Case("dice", "dice", _dice_masks, _dice),
    Case("dice", "dice-smooth", _dice_masks, _dice, {"smooth": 1.0}),
)

# SPEC "Which tensors get a gradient": the floating-point arguments a model produces
GRADIENT_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "margin-ranking": ("x1", "x2"),
    "cosine-embedding": ("x1", "x2"),
    "triplet-margin": ("anchor", "positive", "negative"),
    "triplet-margin-distance": ("anchor", "positive", "negative"),
    "gaussian-nll": ("input", "var"),
    "ctc": ("log_probs",),
}


def gradient_arguments(loss: str) -> tuple[str, ...]:
    return GRADIENT_ARGUMENTS.get(loss, ("input",))


def reductions(spec: losses.LossSpec) -> tuple[str, ...]:
    option = spec.option("reduction")
    assert option is not None
    return option.choices


def run_losscli(case: Case, arrays: Arrays, reduction: str, dtype: str) -> Report:
    """The case through losscli's own path: options → conversion → checks → compute."""
    spec = case.spec
    resolved = options.resolve(spec, {**case.options, "reduction": reduction})
    inputs = {name: LoadedArray(values, f"{name}.npy") for name, values in arrays.items()}
    return pipeline.evaluate(spec, inputs, resolved, float_dtype=dtype)


def torch_inputs(case: Case, arrays: Arrays, dtype: str) -> Tensors:
    """The arrays as the user would hand them to torch: floats in ``dtype``, indices int64."""
    tensors = {}
    for name, values in arrays.items():
        tensor = torch.from_numpy(values)
        if tensor.is_floating_point():
            tensor = tensor.to(TORCH_DTYPES[dtype])
        tensors[name] = tensor.requires_grad_(name in gradient_arguments(case.loss))
    return tensors


def cli_flags(case: Case) -> list[str]:
    """The case's options as command-line words (``--label-smoothing 0.1``, ``--no-full``)."""
    spec = case.spec
    words: list[str] = []
    for name, value in case.options.items():
        option = spec.option(name)
        assert option is not None
        if option.type is losses.OptionType.BOOL:
            words.append(option.flag if value else "--no-" + option.flag.removeprefix("--"))
        else:
            words += [option.flag, str(value)]
    return words


def torch_options(case: Case, reduction: str, dtype: str) -> dict[str, Any]:
    """The case's options as torch keywords: inline arrays become tensors in ``dtype``."""
    kwargs: dict[str, Any] = {}
    for name, value in case.options.items():
        if isinstance(value, str) and value.startswith("["):
            value = torch.tensor(json.loads(value), dtype=TORCH_DTYPES[dtype])
        kwargs[name] = value
    return {**kwargs, "reduction": reduction}


PARAMS = [
    pytest.param(case, reduction, dtype, id=f"{case.id}-{reduction}-{dtype}")
    for case in CASES
    for reduction in reductions(case.spec)
    for dtype in TORCH_DTYPES
]


def test_every_loss_has_a_case() -> None:
    # scikit-learn's test_common habit: a loss added to the catalogue without a case fails here
    covered = {case.spec.name for case in CASES}
    missing = [spec.name for spec in losses.LOSSES if spec.name not in covered]
    assert not missing, f"no conformance case for {missing}"
    assert len(losses.LOSSES) == 23  # SPEC: the 21 torch.nn losses plus focal and dice


def test_every_option_is_exercised_away_from_its_default() -> None:
    missing = []
    for spec in losses.LOSSES:
        for option in spec.options:
            if option.name == "reduction":
                continue  # every choice is parametrised below
            if not any(c.spec is spec and option.name in c.options for c in CASES):
                missing.append(f"{spec.name} {option.flag}")
            for case in CASES:
                if case.spec is spec and option.name in case.options:
                    assert case.options[option.name] != option.default, (case.id, option.name)
    assert not missing, f"options never set in a conformance case: {missing}"


@pytest.mark.parametrize(("case", "reduction", "dtype"), PARAMS)
def test_value_per_sample_and_gradient_equal_torch(case: Case, reduction: str, dtype: str) -> None:
    arrays = case.arrays()
    report = run_losscli(case, arrays, reduction, dtype)
    computation = report.computation
    assert computation is not None, [f.to_dict() for f in report.findings]
    assert not [f for f in report.findings if f.severity.value == "error"], report.findings

    tensors = torch_inputs(case, arrays, dtype)
    expected = case.reference(tensors, torch_options(case, reduction, dtype))

    # value: bit for bit
    assert computation.dtype == dtype
    if reduction == "none":
        assert computation.value is None
    else:
        assert computation.value == expected.item()

    # gradient: autograd on the reference call (of the sum under reduction none)
    names = gradient_arguments(case.loss)
    assert set(computation.gradients) == set(names)
    total = expected.sum() if reduction == "none" else expected
    expected_gradients = torch.autograd.grad(total, [tensors[n] for n in names])
    for name, expected_gradient in zip(names, expected_gradients, strict=True):
        got = torch.from_numpy(computation.gradients[name])
        assert got.dtype == expected_gradient.dtype
        assert torch.equal(got, expected_gradient), name

    # per-sample: from torch's reduction='none', recovering the value by the SPEC's rule
    check_per_sample(case, arrays, tensors, computation, reduction, dtype)


def check_per_sample(
    case: Case,
    arrays: Arrays,
    tensors: Tensors,
    computation: Computation,
    reduction: str,
    dtype: str,
) -> None:
    """per_sample[i] is sample i's part of torch's reduction='none' output, and the value is
    recovered from it by the SPEC's rule for the loss and reduction (computed here from the
    rule, independently of the report's own denominator, which is checked last)."""
    spec = case.spec
    with torch.no_grad():
        none = case.reference(tensors, torch_options(case, "none", dtype)).to(torch.float64)
    batch = arrays[spec.arguments[0].name].shape[spec.arguments[0].batch_dim]
    if none.dim() == 0:
        none = none.reshape(1)
    elements = none.reshape(batch, -1)
    per_sample = torch.from_numpy(computation.per_sample)
    assert per_sample.shape == (batch,)
    rtol = RECOVERY_RTOL[dtype]

    soft_target = (
        spec.per_sample_rule is PerSampleRule.WEIGHTED and arrays["target"].dtype.kind == "f"
    )
    if reduction in ("sum", "none"):
        # per_sample[i] sums sample i's elements; the value is their sum
        torch.testing.assert_close(per_sample, elements.sum(1), rtol=rtol, atol=rtol * 1e-3)
        if reduction == "sum":
            assert sum(computation.per_sample) == pytest.approx(computation.value, rel=rtol)
        return
    if reduction == "batchmean":
        # SPEC: kl-div batchmean is the sum over samples divided by N
        torch.testing.assert_close(per_sample, elements.sum(1), rtol=rtol, atol=rtol * 1e-3)
        recovered = per_sample.sum() / batch
    elif spec.per_sample_rule is PerSampleRule.CTC:
        # SPEC: ctc mean divides each sample's loss by its target length before averaging
        lengths = torch.from_numpy(arrays["target_lengths"]).clamp_min(1).to(torch.float64)
        torch.testing.assert_close(
            per_sample, elements.sum(1) / lengths, rtol=rtol, atol=rtol * 1e-3
        )
        recovered = per_sample.mean()
    elif spec.per_sample_rule is PerSampleRule.WEIGHTED and not soft_target:
        # SPEC: cross-entropy/nll with class indices divide the sum by the summed weight of
        # the non-ignored targets; ignored samples have per-sample loss 0 and are marked
        target = torch.from_numpy(arrays["target"])
        resolved = options.resolve(spec, case.options)
        keep = target != resolved["ignore_index"]
        weight = resolved["weight"]
        class_weight = (
            torch.ones(int(target[keep].max()) + 1, dtype=torch.float64)
            if weight is None
            else torch.from_numpy(weight)
        )
        total_weight = class_weight[target[keep]].sum()
        torch.testing.assert_close(per_sample, elements.mean(1), rtol=rtol, atol=rtol * 1e-3)
        recovered = elements.sum() / total_weight
        assert computation.ignored is not None
        assert computation.ignored.tolist() == (~keep).reshape(batch, -1).all(1).tolist()
        assert (per_sample[torch.from_numpy(computation.ignored)] == 0).all()
    else:
        # a plain mean: per_sample[i] is the mean of sample i's elements; the value their mean
        torch.testing.assert_close(per_sample, elements.mean(1), rtol=rtol, atol=rtol * 1e-3)
        recovered = per_sample.mean()
    assert float(recovered) == pytest.approx(computation.value, rel=rtol)
    # and the report's own recipe, value = sum(per_sample) / denominator
    assert computation.denominator is not None
    assert float(per_sample.sum()) / computation.denominator == pytest.approx(
        computation.value, rel=rtol
    )
