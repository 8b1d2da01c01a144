"""options.py: torch's defaults, options that do not apply, choices, and tensor options."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from losscli import losses, options, pipeline
from losscli.errors import UsageError
from losscli.loaders import LoadedArray

# torch constructor parameters that are deprecated spellings of `reduction`
_DEPRECATED = {"size_average", "reduce"}
# losscli names torch's default distance (distance_function=None: PairwiseDistance)
_DEFAULT_SPELLINGS = {("distance_function", None): "pairwise"}


def _spec(name: str) -> losses.LossSpec:
    spec = losses.get(name)
    assert spec is not None
    return spec


TORCH_NN_SPECS = [s for s in losses.LOSSES if s.torch_class.startswith("torch.nn.")]


@pytest.mark.parametrize("spec", TORCH_NN_SPECS, ids=lambda s: s.name)
def test_options_are_the_torch_constructor_options_with_torch_defaults(
    spec: losses.LossSpec,
) -> None:
    module = getattr(nn, spec.torch_class.removeprefix("torch.nn."))
    parameters = {
        name: p.default
        for name, p in inspect.signature(module).parameters.items()
        if name not in _DEPRECATED
    }
    assert {o.name for o in spec.options} == set(parameters)
    for option in spec.options:
        torch_default = parameters[option.name]
        expected = _DEFAULT_SPELLINGS.get((option.name, torch_default), torch_default)
        assert option.default == expected, option.name
    assert options.resolve(spec, {}) == {o.name: o.default for o in spec.options}


def test_focal_and_dice_defaults_follow_the_spec() -> None:
    # SPEC: focal is torchvision's formula with alpha 0.25, gamma 2, reduced by `mean` like
    # every other loss; dice smooths with s = 1e-6
    assert options.resolve(_spec("focal"), {}) == {"alpha": 0.25, "gamma": 2.0, "reduction": "mean"}
    assert options.resolve(_spec("dice"), {}) == {"smooth": 1e-6, "reduction": "mean"}


def test_an_option_that_does_not_apply_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--delta does not apply to mse") as raised:
        options.resolve(_spec("mse"), {"delta": 1.0})
    assert "--reduction" in raised.value.message  # says what mse does take


@pytest.mark.parametrize("spec", losses.LOSSES, ids=lambda s: s.name)
def test_every_foreign_option_is_refused(spec: losses.LossSpec) -> None:
    own = {o.name for o in spec.options}
    foreign = [o for name, o in losses.all_options().items() if name not in own]
    assert foreign  # every loss lacks some option of another loss
    for option in foreign:
        with pytest.raises(UsageError, match=option.flag):
            options.resolve(
                spec, {option.name: option.default if option.default is not None else "[1]"}
            )


def test_options_not_given_are_none_and_take_torch_defaults() -> None:
    resolved = options.resolve(_spec("huber"), {"delta": None, "beta": None, "reduction": None})
    assert resolved == {"reduction": "mean", "delta": 1.0}


def test_typed_values_are_parsed() -> None:
    resolved = options.resolve(
        _spec("poisson-nll"), {"log_input": False, "full": True, "eps": 1, "reduction": "sum"}
    )
    assert resolved == {"log_input": False, "full": True, "eps": 1.0, "reduction": "sum"}
    assert isinstance(resolved["eps"], float)


@pytest.mark.parametrize("reduction", ["avg", "batchmean", "MEAN", ""])
def test_reduction_outside_the_choices_is_a_usage_error(reduction: str) -> None:
    with pytest.raises(UsageError, match=r"--reduction for mse must be one of mean, sum, none"):
        options.resolve(_spec("mse"), {"reduction": reduction})


def test_batchmean_belongs_to_kl_div() -> None:
    assert options.resolve(_spec("kl-div"), {"reduction": "batchmean"})["reduction"] == "batchmean"


@pytest.mark.parametrize("p", [3, 3.0, 0, -1])
def test_multi_margin_p_outside_one_and_two_is_a_usage_error(p: float) -> None:
    with pytest.raises(UsageError, match=r"-p for multi-margin must be one of 1, 2"):
        options.resolve(_spec("multi-margin"), {"p": p})


def test_multi_margin_p_must_be_whole() -> None:
    with pytest.raises(UsageError, match="whole number"):
        options.resolve(_spec("multi-margin"), {"p": 1.5})


def test_multi_margin_p_from_the_command_line_float_becomes_an_int() -> None:
    p = options.resolve(_spec("multi-margin"), {"p": 2.0})["p"]
    assert p == 2 and isinstance(p, int)


def test_triplet_p_is_any_float() -> None:
    assert options.resolve(_spec("triplet-margin"), {"p": 3.0})["p"] == 3.0


def test_distance_function_choices() -> None:
    spec = _spec("triplet-margin-distance")
    assert options.resolve(spec, {"distance_function": "cosine"})["distance_function"] == "cosine"
    with pytest.raises(UsageError, match="pairwise, cosine"):
        options.resolve(spec, {"distance_function": "euclidean"})


# ---------------------------------------------------------------------------------------
# tensor options


def test_tensor_option_inline() -> None:
    weight = options.resolve(_spec("cross-entropy"), {"weight": "[1, 2.5, 0.5]"})["weight"]
    assert isinstance(weight, np.ndarray)
    assert weight.dtype == np.float64
    assert weight.tolist() == [1.0, 2.5, 0.5]


def test_tensor_option_from_npy_and_csv_files(tmp_path: Path) -> None:
    np.save(tmp_path / "pos_weight.npy", np.array([3.0, 0.5], dtype=np.float32))
    (tmp_path / "weight.csv").write_text("weight\n0.25\n2\n")
    resolved = options.resolve(
        _spec("bce-logits"),
        {"pos_weight": str(tmp_path / "pos_weight.npy"), "weight": str(tmp_path / "weight.csv")},
    )
    assert resolved["pos_weight"].tolist() == [3.0, 0.5]
    assert resolved["weight"].tolist() == [0.25, 2.0]


@pytest.mark.parametrize("text", ["[1, 2", '["a"]', "no-such-weights.npy"])
def test_unreadable_tensor_option_is_a_usage_error_naming_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--weight: "):
        options.resolve(_spec("nll"), {"weight": text})


def test_json_ready_writes_arrays_as_lists() -> None:
    resolved = options.resolve(_spec("nll"), {"weight": "[1, 2]"})
    assert options.json_ready(resolved) == {
        "weight": [1.0, 2.0],
        "ignore_index": -100,
        "reduction": "mean",
    }


# ---------------------------------------------------------------------------------------
# --reduction none


def test_reduction_none_gives_no_value_per_sample_losses_and_the_gradient_of_the_sum() -> None:
    spec = _spec("cross-entropy")
    scores = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]], dtype=np.float32)
    labels = np.array([0, 2, 1])
    inputs = {"input": LoadedArray(scores, "x.npy"), "target": LoadedArray(labels, "y.npy")}
    report = pipeline.evaluate(spec, inputs, options.resolve(spec, {"reduction": "none"}))
    computation = report.computation
    assert computation is not None
    assert report.value is None

    logits = torch.from_numpy(scores).requires_grad_()
    losses_none = torch.nn.CrossEntropyLoss(reduction="none")(logits, torch.from_numpy(labels))
    assert computation.per_sample.tolist() == losses_none.double().tolist()
    (gradient,) = torch.autograd.grad(losses_none.sum(), logits)
    assert torch.equal(torch.from_numpy(computation.gradients["input"]), gradient)


# ---------------------------------------------------------------------------------------
# values torch refuses are usage errors (exit 2), not a torch-rejected finding


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_non_finite_float_options_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--margin must be a finite number"):
        options.resolve(_spec("margin-ranking"), {"margin": float(text)})


def test_non_finite_tensor_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"--pos-weight: inline holds 1 NaN/Inf of 2 values"):
        options.resolve(_spec("bce-logits"), {"pos_weight": "[NaN, 1]"})


@pytest.mark.parametrize(
    ("loss", "name", "value", "message"),
    [
        ("cross-entropy", "label_smoothing", 1.5, "between 0 and 1"),
        ("cross-entropy", "label_smoothing", -0.1, "between 0 and 1"),
        ("huber", "delta", 0.0, "greater than 0"),
        ("smooth-l1", "beta", -1.0, "at least 0"),
    ],
)
def test_values_outside_torchs_bounds_are_usage_errors(
    loss: str, name: str, value: float, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        options.resolve(_spec(loss), {name: value})


# torch documents label_smoothing as "a float in [0.0, 1.0]" (nn.CrossEntropyLoss) and says
# so in its error message, but its check only enforces the upper end
DOCUMENTED_ONLY = {("cross-entropy", "label_smoothing", "minimum")}
BOUNDED = [
    (spec, option)
    for spec in losses.LOSSES
    for option in spec.options
    if option.minimum is not None or option.maximum is not None
]


@pytest.mark.parametrize(
    ("spec", "option"), BOUNDED, ids=[f"{s.name}-{o.name}" for s, o in BOUNDED]
)
def test_option_bounds_are_the_ones_torch_enforces(
    spec: losses.LossSpec, option: losses.Option
) -> None:
    from test_conformance import CASES

    from losscli.compute import TorchRejected, compute

    case = next(c for c in CASES if c.spec is spec)
    arrays = {
        k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in case.arrays().items()
    }
    defaults = options.resolve(spec, {})
    edges = [
        ("minimum", option.minimum, not option.exclusive_minimum, -1e-3),
        ("maximum", option.maximum, True, 1e-3),
    ]
    for side, bound, inclusive, step in edges:
        if bound is None:
            continue
        # just outside: torch refuses, and so does resolve
        if (spec.name, option.name, side) not in DOCUMENTED_ONLY:
            with pytest.raises(TorchRejected):
                compute(spec, arrays, {**defaults, option.name: bound + step})
        with pytest.raises(UsageError):
            options.resolve(spec, {option.name: bound + step})
        # the bound itself (or just inside an exclusive one): both accept
        inside = bound if inclusive else bound - step
        resolved = options.resolve(spec, {option.name: inside})
        assert compute(spec, arrays, resolved).value is not None
