"""compute.py: torch's value, the per-sample breakdown and gradients, and torch's refusals.

The hypothesis tests fuzz shapes and options of the element-wise family and the
class-index family through losscli's own path and compare with ``torch.nn.functional``
called directly: the value bit for bit, the per-sample losses recovering it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conformance import spec_dice, torchvision_sigmoid_focal_loss

from losscli import losses, options, pipeline
from losscli.compute import TorchRejected, compute, per_sample_losses, to_tensor
from losscli.loaders import LoadedArray
from losscli.report import Report

# the reference kl-div calls with reduction mean warn (losscli records it as data)
pytestmark = pytest.mark.filterwarnings("ignore:reduction.*batchmean:UserWarning")
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
RECOVERY_RTOL = {"float32": 1e-5, "float64": 1e-10}
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def _spec(name: str) -> losses.LossSpec:
    spec = losses.get(name)
    assert spec is not None
    return spec


def _evaluate(
    name: str, arrays: dict[str, np.ndarray], given_options: dict[str, Any], dtype: str
) -> Report:
    spec = _spec(name)
    resolved = options.resolve(spec, given_options)
    inputs = {key: LoadedArray(values, f"{key}.npy") for key, values in arrays.items()}
    return pipeline.evaluate(spec, inputs, resolved, float_dtype=dtype)


def _assert_recovers(report: Report, dtype: str) -> None:
    """value == sum(per_sample) / denominator, to the precision of the compute dtype."""
    computation = report.computation
    assert computation is not None
    if computation.value is None:
        assert computation.denominator is None
        return
    assert computation.denominator is not None
    per_sample = computation.per_sample
    rtol = RECOVERY_RTOL[dtype]
    scale = float(np.abs(per_sample).sum()) / computation.denominator
    recovered = float(per_sample.sum()) / computation.denominator
    assert recovered == pytest.approx(computation.value, rel=rtol, abs=rtol * scale)


def _weights(rng: np.random.Generator, count: int) -> list[float]:
    return [float(w) for w in rng.uniform(0.1, 3.0, count)]


# ---------------------------------------------------------------------------------------
# element-wise family: input and target of one shape


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def _regression(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return rng.standard_normal(shape), 2.0 * rng.standard_normal(shape)


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return _sigmoid(2.0 * rng.standard_normal(shape)), rng.random(shape)


def _logits(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return 2.0 * rng.standard_normal(shape), (rng.random(shape) < 0.5).astype(np.float64)


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return rng.standard_normal(shape), rng.choice(np.array([-1.0, 1.0]), size=shape)


def _distances(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return np.abs(rng.standard_normal(shape)), rng.choice(np.array([-1.0, 1.0]), size=shape)


def _counts(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    log_rates = 0.5 * rng.standard_normal(shape)
    return log_rates, rng.poisson(np.exp(log_rates)).astype(np.float64)


def _distributions(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    # log-probabilities and probabilities over the last dimension
    def softmax(scores: np.ndarray) -> np.ndarray:
        exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    return np.log(softmax(rng.standard_normal(shape))), softmax(rng.standard_normal(shape))


def _focal(input: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return torchvision_sigmoid_focal_loss(input, target, **kwargs)


# loss → (the torch function, the input factory, option strategies: torch keyword → strategy)
ELEMENTWISE: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., Any], dict[str, Any]]] = {
    "l1": (F.l1_loss, _regression, {}),
    "mse": (F.mse_loss, _regression, {}),
    "huber": (F.huber_loss, _regression, {"delta": st.floats(0.05, 5.0)}),
    "smooth-l1": (F.smooth_l1_loss, _regression, {"beta": st.floats(0.0, 3.0)}),
    "bce": (F.binary_cross_entropy, _probabilities, {"weight": st.just("last-dim")}),
    "bce-logits": (
        F.binary_cross_entropy_with_logits,
        _logits,
        {"weight": st.just("last-dim"), "pos_weight": st.just("last-dim")},
    ),
    "soft-margin": (F.soft_margin_loss, _signs, {}),
    "hinge-embedding": (F.hinge_embedding_loss, _distances, {"margin": st.floats(0.0, 3.0)}),
    "poisson-nll": (
        F.poisson_nll_loss,
        _counts,
        {"log_input": st.booleans(), "full": st.booleans(), "eps": st.floats(1e-8, 1e-2)},
    ),
    "kl-div": (F.kl_div, _distributions, {"log_target": st.booleans()}),
    "multilabel-soft-margin": (
        F.multilabel_soft_margin_loss,
        _logits,
        {"weight": st.just("last-dim")},
    ),
    "focal": (
        _focal,
        _logits,
        {"alpha": st.one_of(st.just(-1.0), st.floats(0.0, 1.0)), "gamma": st.floats(0.0, 4.0)},
    ),
}


@st.composite
def elementwise_examples(
    draw: st.DrawFn,
) -> tuple[str, np.ndarray, np.ndarray, dict[str, Any], str]:
    name = draw(st.sampled_from(sorted(ELEMENTWISE)))
    _, factory, option_strategies = ELEMENTWISE[name]
    shape = (draw(st.integers(1, 6)), *draw(st.lists(st.integers(1, 4), max_size=2)))
    if name == "multilabel-soft-margin":  # [batch, classes]; a 1-D input is one sample
        shape = (shape[0], draw(st.integers(1, 5)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    input_values, target_values = factory(rng, shape)
    chosen: dict[str, Any] = {}
    for option_name, strategy in option_strategies.items():
        if not draw(st.booleans()):
            continue  # leave it at torch's default
        value = draw(strategy)
        if value == "last-dim":  # a per-class tensor, broadcast over the last dimension
            value = json.dumps(_weights(rng, shape[-1]))
        chosen[option_name] = value
    # the options that change what the input or the target holds
    if chosen.get("log_input") is False:  # poisson-nll: rates, not log-rates
        input_values = np.exp(input_values)
    if chosen.get("log_target"):  # kl-div: the target as log-probabilities
        target_values = np.log(target_values)
    reductions = _spec(name).option("reduction")
    assert reductions is not None
    chosen["reduction"] = draw(st.sampled_from(reductions.choices))
    return name, input_values, target_values, chosen, draw(st.sampled_from(sorted(TORCH_DTYPES)))


def _torch_kwargs(chosen: dict[str, Any], dtype: str) -> dict[str, Any]:
    return {
        key: torch.tensor(json.loads(value), dtype=TORCH_DTYPES[dtype])
        if isinstance(value, str) and value.startswith("[")
        else value
        for key, value in chosen.items()
    }


@FUZZ
@given(elementwise_examples())
def test_elementwise_family_equals_torch(
    example: tuple[str, np.ndarray, np.ndarray, dict[str, Any], str],
) -> None:
    name, input_values, target_values, chosen, dtype = example
    report = _evaluate(name, {"input": input_values, "target": target_values}, chosen, dtype)
    computation = report.computation
    assert computation is not None, [f.to_dict() for f in report.findings]

    function = ELEMENTWISE[name][0]
    prediction = torch.from_numpy(input_values).to(TORCH_DTYPES[dtype]).requires_grad_()
    target = torch.from_numpy(target_values).to(TORCH_DTYPES[dtype])
    expected = function(prediction, target, **_torch_kwargs(chosen, dtype))
    if chosen["reduction"] == "none":
        assert computation.value is None
        expected = expected.sum()
    else:
        assert computation.value == expected.item()
    (gradient,) = torch.autograd.grad(expected, prediction)
    assert torch.equal(torch.from_numpy(computation.gradients["input"]), gradient)
    assert computation.per_sample.shape == (input_values.shape[0],)
    _assert_recovers(report, dtype)


# ---------------------------------------------------------------------------------------
# class-index family: [batch, classes, d1, ...] scores and [batch, d1, ...] class indices


@st.composite
def class_index_examples(draw: st.DrawFn) -> tuple[str, dict[str, np.ndarray], dict[str, Any], str]:
    name = draw(st.sampled_from(["cross-entropy", "nll", "multi-margin"]))
    batch, classes = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    spatial = () if name == "multi-margin" else tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scores = 3.0 * rng.standard_normal((batch, classes, *spatial))
    target = rng.integers(0, classes, (batch, *spatial))
    chosen: dict[str, Any] = {}
    if name == "nll":  # nll wants log-probabilities over the class dimension
        shifted = scores - scores.max(axis=1, keepdims=True)
        scores = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if draw(st.booleans()):
        chosen["weight"] = json.dumps(_weights(rng, classes))
    if name == "multi-margin":
        chosen["p"] = draw(st.sampled_from([1, 2]))
        chosen["margin"] = draw(st.floats(0.0, 2.0))
    else:
        ignore_index = draw(st.sampled_from([None, -1, 255, 0]))
        if ignore_index is not None:
            chosen["ignore_index"] = ignore_index
            void = rng.random(target.shape) < 0.3
            target[void] = ignore_index
            if (target == ignore_index).all():  # keep one target, so the mean is defined
                target.flat[0] = 1
    if name == "cross-entropy" and draw(st.booleans()):
        chosen["label_smoothing"] = draw(st.floats(0.0, 0.9))
    if name == "cross-entropy" and draw(st.booleans()):
        # class probabilities shaped like the input (ignore_index does not apply to them)
        chosen.pop("ignore_index", None)
        logits = rng.standard_normal(scores.shape)
        target = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    chosen["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    dtype = draw(st.sampled_from(sorted(TORCH_DTYPES)))
    return name, {"input": scores, "target": target}, chosen, dtype


FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "cross-entropy": F.cross_entropy,
    "nll": F.nll_loss,
    "multi-margin": F.multi_margin_loss,
}


@FUZZ
@given(class_index_examples())
def test_class_index_family_equals_torch(
    example: tuple[str, dict[str, np.ndarray], dict[str, Any], str],
) -> None:
    name, arrays, chosen, dtype = example
    report = _evaluate(name, arrays, chosen, dtype)
    computation = report.computation
    assert computation is not None, [f.to_dict() for f in report.findings]

    scores = torch.from_numpy(arrays["input"]).to(TORCH_DTYPES[dtype]).requires_grad_()
    target = torch.from_numpy(arrays["target"])
    if target.is_floating_point():
        target = target.to(TORCH_DTYPES[dtype])
    expected = FUNCTIONS[name](scores, target, **_torch_kwargs(chosen, dtype))
    if chosen["reduction"] == "none":
        assert computation.value is None
        expected = expected.sum()
    else:
        assert computation.value == expected.item()
    (gradient,) = torch.autograd.grad(expected, scores)
    assert torch.equal(torch.from_numpy(computation.gradients["input"]), gradient)
    _assert_recovers(report, dtype)
    if "ignore_index" in chosen and computation.ignored is not None:
        # a sample whose every target is ignored contributes exactly 0
        assert (computation.per_sample[computation.ignored] == 0).all()


# ---------------------------------------------------------------------------------------
# compute() directly


def _f32(values: list[Any]) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_shape_torch_cannot_use_raises_torch_rejected_with_torchs_message() -> None:
    with pytest.raises(TorchRejected, match=r"size of tensor a \(3\) must match"):
        compute(
            _spec("mse"),
            {"input": _f32([1, 2, 3]), "target": _f32([1, 2, 3, 4])},
            {"reduction": "mean"},
        )


@pytest.mark.skipif(
    np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 on this platform"
)
def test_a_dtype_torch_has_no_tensor_for_is_torch_rejected_not_a_crash() -> None:
    # --strict hands float128 through; torch.from_numpy refuses it
    with pytest.raises(TorchRejected, match="longdouble"):
        compute(
            _spec("mse"),
            {"input": np.ones(2, dtype=np.longdouble), "target": _f32([1, 2])},
            {"reduction": "mean"},
        )


def test_reduction_none_has_no_value_and_the_gradient_of_the_sum() -> None:
    input_values, target_values = _f32([1.0, 2.5, 4.0, 0.5]), _f32([2.0, 2.5, 2.0, 1.0])
    computation = compute(
        _spec("mse"), {"input": input_values, "target": target_values}, {"reduction": "none"}
    )
    assert computation.value is None
    assert computation.denominator is None
    # (input - target)^2 by hand: 1, 0, 4, 0.25; d/dinput of the sum is 2 (input - target)
    assert computation.per_sample.tolist() == [1.0, 0.0, 4.0, 0.25]
    assert computation.gradients["input"].tolist() == [-2.0, 0.0, 4.0, -1.0]


def test_want_gradient_false_computes_no_gradient() -> None:
    computation = compute(
        _spec("l1"),
        {"input": _f32([1, 2]), "target": _f32([0, 0])},
        {"reduction": "mean"},
        want_gradient=False,
    )
    assert computation.gradients == {}
    assert computation.value == 1.5  # (1 + 2) / 2


def test_torch_warnings_are_kept() -> None:
    log_probabilities = np.log(_f32([[0.25, 0.75], [0.5, 0.5]]))
    computation = compute(
        _spec("kl-div"),
        {"input": log_probabilities, "target": _f32([[0.5, 0.5], [0.1, 0.9]])},
        {"reduction": "mean", "log_target": False},
    )
    assert any("batchmean" in w for w in computation.warnings)


def test_nll_per_sample_rule_with_weight_and_ignored_target() -> None:
    spec = _spec("nll")
    arrays = {
        "input": _f32([[-1.0, -2.0], [-3.0, -4.0], [-0.5, -0.7]]),
        "target": np.array([0, 1, -100]),
    }
    resolved = options.resolve(spec, {"weight": "[2.0, 1.0]"})
    computation = compute(spec, arrays, resolved)
    # by hand: losses w[y] * -input[y] = 2*1, 1*4 and 0 (ignored); mean = (2 + 4) / (2 + 1)
    assert computation.value == 2.0
    assert computation.per_sample.tolist() == [2.0, 4.0, 0.0]
    assert computation.denominator == 3.0
    assert computation.ignored is not None
    assert computation.ignored.tolist() == [False, False, True]


def test_per_sample_losses_sum_and_batchmean() -> None:
    unreduced = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 6.0]])
    spec = _spec("kl-div")
    per_sample, denominator, _ = per_sample_losses(spec, unreduced, {}, {}, "batchmean")
    assert per_sample.tolist() == [4.0, 4.0, 6.0]  # row sums
    assert denominator == 3.0  # batchmean divides by N
    per_sample, denominator, _ = per_sample_losses(spec, unreduced, {}, {}, "mean")
    assert per_sample.tolist() == [2.0, 2.0, 3.0]  # row means
    assert denominator == 3.0
    per_sample, denominator, _ = per_sample_losses(spec, unreduced, {}, {}, "sum")
    assert denominator == 1.0


def test_multi_margin_p_given_as_a_float_reaches_torch_as_an_int() -> None:
    scores, target = _f32([[0.1, 0.9, -0.3], [1.2, 0.2, 0.4]]), np.array([1, 0])
    computation = compute(
        _spec("multi-margin"),
        {"input": scores, "target": target},
        {"p": 2.0, "margin": 1.0, "weight": None, "reduction": "mean"},
    )
    expected = F.multi_margin_loss(torch.from_numpy(scores), torch.from_numpy(target), p=2)
    assert computation.value == expected.item()


def test_dice_on_one_dimensional_input_treats_each_element_as_a_sample() -> None:
    logits, masks = _f32([2.0, -1.0, 0.5, -3.0]), _f32([1, 0, 1, 1])
    computation = compute(
        _spec("dice"), {"input": logits, "target": masks}, {"smooth": 1e-6, "reduction": "mean"}
    )
    expected = spec_dice(
        torch.from_numpy(logits).reshape(-1, 1), torch.from_numpy(masks).reshape(-1, 1)
    )
    assert computation.value == expected.item()
    assert computation.per_sample.shape == (4,)


def test_focal_defaults_are_torchvisions() -> None:
    spec = _spec("focal")
    logits, targets = _f32([[2.0, -1.0], [0.3, -0.2]]), _f32([[1, 0], [0, 1]])
    computation = compute(spec, {"input": logits, "target": targets}, options.resolve(spec, {}))
    expected = torchvision_sigmoid_focal_loss(
        torch.from_numpy(logits), torch.from_numpy(targets), reduction="mean"
    )
    assert computation.value == expected.item()


def test_unbatched_cross_entropy_with_a_0d_class_index() -> None:
    # torch: a 1-D input is one sample; its target is a 0-d class index
    scores, label = _f32([0.5, -1.0, 2.0]), np.array(2)
    computation = compute(
        _spec("cross-entropy"), {"input": scores, "target": label}, options.resolve(_spec("ce"), {})
    )
    expected = F.cross_entropy(torch.from_numpy(scores), torch.tensor(2))
    assert computation.value == expected.item()
    assert computation.per_sample.tolist() == [expected.item()]


def test_to_tensor_widens_unsigned_and_copies_read_only_arrays() -> None:
    assert to_tensor(np.array([1, 2], dtype=np.uint16)).dtype == torch.int64
    assert to_tensor(np.array([1, 2], dtype=np.uint8)).dtype == torch.uint8
    frozen = np.arange(4.0)
    frozen.flags.writeable = False
    tensor = to_tensor(frozen)
    tensor += 1  # must not fail, nor touch the caller's array
    assert frozen.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert to_tensor(np.arange(6.0).reshape(2, 3).T).tolist() == [[0, 3], [1, 4], [2, 5]]
    assert to_tensor(np.array(3)).shape == ()  # 0-d stays 0-d (not (1,))


@pytest.mark.parametrize("spec", losses.LOSSES, ids=lambda spec: spec.name)
def test_every_loss_has_a_torch_function_or_a_composed_formula(spec: losses.LossSpec) -> None:
    from losscli import compute as compute_module

    if spec.composed:
        assert not spec.function and spec.composed in compute_module._COMPOSED
    else:
        assert callable(getattr(torch.nn.functional, spec.function))
    assert spec.call.endswith(spec.python_call or spec.function)
