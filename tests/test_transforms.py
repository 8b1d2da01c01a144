"""--map transforms: every whitelisted form equals torch bit for bit; everything else is refused."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from losscli.errors import UsageError
from losscli.transforms import (
    MAX_TEXT_LENGTH,
    Map,
    apply_maps,
    mixing_problem,
    parse_map,
    parse_maps,
    renamed,
    substitute,
)

NAMES = ("input", "target", "x1", "var", "mask")
BUDGET = 512 << 20
FLOAT_DTYPES = (np.float32, np.float64, np.float16)

Tensors = dict[str, torch.Tensor]


def arrays_of(dtype: type, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs every parity case reads: floats of ``dtype``, int64 classes, a bool mask."""
    generator = np.random.default_rng(seed)
    values = generator.normal(size=(6, 4)) * 3
    values[0, 0] = np.nan
    values[1, 1] = 0.0
    values[2, 2] = -0.0
    return {
        "input": values.astype(dtype),
        "target": generator.integers(0, 4, size=6).astype(np.int64),
        "x1": generator.normal(size=(6, 1)).astype(dtype),
        "var": generator.uniform(0.1, 2.0, size=(6, 4)).astype(dtype),
        "mask": generator.random(size=(6, 4)) > 0.5,
    }


def tensors_of(arrays: dict[str, np.ndarray]) -> Tensors:
    return {name: torch.from_numpy(array.copy()) for name, array in arrays.items()}


def assert_bitwise_equal(ours: np.ndarray, expected: torch.Tensor) -> None:
    """Same dtype, same shape, same bytes (so NaNs, and the sign of zeros, in the same places)."""
    if expected.dtype == torch.bfloat16:
        expected = expected.float()
    theirs = expected.detach().numpy()
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    assert np.ascontiguousarray(ours).tobytes() == np.ascontiguousarray(theirs).tobytes()


def assert_parity(text: str, expected: Callable[[Tensors], object], arrays: dict) -> None:
    """The map gives what the same torch expression gives, or fails where torch fails."""
    name = text.split("=", 1)[0].strip()
    map_ = parse_map(text, NAMES)
    try:
        want = expected(tensors_of(arrays))
    except (RuntimeError, TypeError, IndexError, ValueError):
        with pytest.raises(UsageError, match="torch raised"):
            apply_maps([map_], arrays, BUDGET)
        return
    got = apply_maps([map_], arrays, BUDGET)[name]
    if isinstance(want, torch.Tensor):
        assert_bitwise_equal(got, want)
    else:
        assert got.shape == ()
        assert got.dtype == np.asarray(want).dtype
        assert got.item() == want


# (text, the same expression written in torch); `t` maps names to tensors
FLOAT_CASES: list[tuple[str, Callable[[Tensors], object]]] = [
    # binary operators with scalars, with another input, reflected
    ("input = input + 1", lambda t: t["input"] + 1),
    ("input = input - 2.5", lambda t: t["input"] - 2.5),
    ("input = input * x1", lambda t: t["input"] * t["x1"]),
    ("input = input / var", lambda t: t["input"] / t["var"]),
    ("input = input // 2", lambda t: t["input"] // 2),
    ("input = input ** 2", lambda t: t["input"] ** 2),
    ("input = input ** 0.5", lambda t: t["input"] ** 0.5),
    ("input = var ** x1", lambda t: t["var"] ** t["x1"]),
    ("input = input % 3", lambda t: t["input"] % 3),
    ("input = 2 - input", lambda t: 2 - t["input"]),
    ("input = 1 / var", lambda t: 1 / t["var"]),
    ("input = 2 ** x1", lambda t: 2 ** t["x1"]),
    ("input = -input", lambda t: -t["input"]),
    ("input = input * True", lambda t: t["input"] * True),
    ("input = input + 2 ** 3", lambda t: t["input"] + 2**3),
    ("input = input * (1 / 3)", lambda t: t["input"] * (1 / 3)),
    # comparisons and & | ~ on them
    ("input = input > 0", lambda t: t["input"] > 0),
    ("input = input == x1", lambda t: t["input"] == t["x1"]),
    ("input = input != 0", lambda t: t["input"] != 0),
    ("input = input < var", lambda t: t["input"] < t["var"]),
    ("input = input <= 0.5", lambda t: t["input"] <= 0.5),
    ("input = input >= -1", lambda t: t["input"] >= -1),
    ("input = (input > 0) & (var < 1)", lambda t: (t["input"] > 0) & (t["var"] < 1)),
    ("input = (input > 0) | (x1 > 0)", lambda t: (t["input"] > 0) | (t["x1"] > 0)),
    ("input = ~(input > 0)", lambda t: ~(t["input"] > 0)),
    # subscripts
    ("input = input[:, 1]", lambda t: t["input"][:, 1]),
    ("input = input[..., :-1]", lambda t: t["input"][..., :-1]),
    ("input = input[1:4, ::2]", lambda t: t["input"][1:4, ::2]),
    ("input = input[-1]", lambda t: t["input"][-1]),
    ("input = input[..., 0]", lambda t: t["input"][..., 0]),
    ("input = input[:, 1:3][..., 0]", lambda t: t["input"][:, 1:3][..., 0]),
    ("input = input[2, 3]", lambda t: t["input"][2, 3]),
    ("input = input[::-1]", lambda t: t["input"][::-1]),
    ("input = input[:, 9]", lambda t: t["input"][:, 9]),
    # shape methods
    ("input = x1.squeeze(1)", lambda t: t["x1"].squeeze(1)),
    ("input = x1.squeeze()", lambda t: t["x1"].squeeze()),
    ("input = x1.squeeze(dim=-1)", lambda t: t["x1"].squeeze(dim=-1)),
    ("input = input.unsqueeze(1)", lambda t: t["input"].unsqueeze(1)),
    ("input = input.unsqueeze(dim=-1)", lambda t: t["input"].unsqueeze(dim=-1)),
    ("input = input.permute(1, 0)", lambda t: t["input"].permute(1, 0)),
    ("input = input.permute((1, 0))", lambda t: t["input"].permute((1, 0))),
    ("input = input.permute(dims=(1, 0))", lambda t: t["input"].permute(dims=(1, 0))),
    ("input = input.transpose(0, 1)", lambda t: t["input"].transpose(0, 1)),
    ("input = input.transpose(dim0=1, dim1=0)", lambda t: t["input"].transpose(dim0=1, dim1=0)),
    ("input = input.flatten()", lambda t: t["input"].flatten()),
    ("input = input.unsqueeze(2).flatten(1)", lambda t: t["input"].unsqueeze(2).flatten(1)),
    ("input = input.flatten(start_dim=0, end_dim=1)", lambda t: t["input"].flatten(0, 1)),
    ("input = input.reshape(-1)", lambda t: t["input"].reshape(-1)),
    ("input = input.reshape(3, 8)", lambda t: t["input"].reshape(3, 8)),
    ("input = input.reshape((2, 12))", lambda t: t["input"].reshape((2, 12))),
    ("input = input.reshape(shape=(24,))", lambda t: t["input"].reshape(shape=(24,))),
    ("input = input.reshape(5, 5)", lambda t: t["input"].reshape(5, 5)),
    ("input = input.view(-1)", lambda t: t["input"].view(-1)),
    ("input = input.view(size=(4, 6))", lambda t: t["input"].view(size=(4, 6))),
    ("input = input.view(torch.int16)", lambda t: t["input"].view(torch.int16)),
    # dtypes
    ("input = input.float()", lambda t: t["input"].float()),
    ("input = input.double()", lambda t: t["input"].double()),
    ("input = var.long()", lambda t: t["var"].long()),
    ("input = var.int()", lambda t: t["var"].int()),
    ("input = input.to(torch.float16)", lambda t: t["input"].to(torch.float16)),
    ("input = input.to(dtype=torch.float64)", lambda t: t["input"].to(dtype=torch.float64)),
    ("input = input.to(torch.bfloat16)", lambda t: t["input"].to(torch.bfloat16)),
    ("input = input.to(torch.half)", lambda t: t["input"].to(torch.half)),
    ("input = var.to(torch.uint8)", lambda t: t["var"].to(torch.uint8)),
    ("input = input.to(torch.bool)", lambda t: t["input"].to(torch.bool)),
    # reductions
    ("input = input.argmax()", lambda t: t["input"].argmax()),
    ("input = var.argmax(1)", lambda t: t["var"].argmax(1)),
    ("input = var.argmax(dim=1, keepdim=True)", lambda t: t["var"].argmax(dim=1, keepdim=True)),
    ("input = input.sum()", lambda t: t["input"].sum()),
    ("input = var.sum(1)", lambda t: t["var"].sum(1)),
    ("input = var.sum(dim=0, keepdim=True)", lambda t: t["var"].sum(dim=0, keepdim=True)),
    ("input = var.sum(1, dtype=torch.float64)", lambda t: t["var"].sum(1, dtype=torch.float64)),
    ("input = var.sum((0, 1))", lambda t: t["var"].sum((0, 1))),
    ("input = var.mean()", lambda t: t["var"].mean()),
    ("input = var.mean(1)", lambda t: t["var"].mean(1)),
    (
        "input = var.mean(dim=1, keepdim=True, dtype=torch.float64)",
        lambda t: t["var"].mean(dim=1, keepdim=True, dtype=torch.float64),
    ),
    # elementwise functions
    ("input = input.log()", lambda t: t["input"].log()),
    ("input = input.exp()", lambda t: t["input"].exp()),
    ("input = input.sigmoid()", lambda t: t["input"].sigmoid()),
    ("input = input.sigmoid().logit()", lambda t: t["input"].sigmoid().logit()),
    ("input = input.logit(1e-06)", lambda t: t["input"].logit(1e-06)),
    ("input = input.logit(eps=0.01)", lambda t: t["input"].logit(eps=0.01)),
    ("input = input.softmax(1)", lambda t: t["input"].softmax(1)),
    ("input = input.softmax(dim=0)", lambda t: t["input"].softmax(dim=0)),
    ("input = input.softmax(1, torch.float64)", lambda t: t["input"].softmax(1, torch.float64)),
    (
        "input = input.softmax(1, dtype=torch.float64)",
        lambda t: t["input"].softmax(1, dtype=torch.float64),
    ),
    ("input = input.log_softmax(1)", lambda t: t["input"].log_softmax(1)),
    (
        "input = input.log_softmax(dim=-1, dtype=torch.float64)",
        lambda t: t["input"].log_softmax(dim=-1, dtype=torch.float64),
    ),
    ("input = input.clamp(0, 1)", lambda t: t["input"].clamp(0, 1)),
    ("input = input.clamp(min=0)", lambda t: t["input"].clamp(min=0)),
    ("input = input.clamp(max=0.5)", lambda t: t["input"].clamp(max=0.5)),
    ("input = input.clamp(min=None, max=0.5)", lambda t: t["input"].clamp(min=None, max=0.5)),
    ("input = input.clamp(min=x1)", lambda t: t["input"].clamp(min=t["x1"])),
    ("input = input.clamp(x1, var)", lambda t: t["input"].clamp(t["x1"], t["var"])),
    ("input = input.abs()", lambda t: t["input"].abs()),
    ("input = input.sqrt()", lambda t: t["input"].sqrt()),
    ("input = input.sign()", lambda t: t["input"].sign()),
    ("input = input.round()", lambda t: t["input"].round()),
    ("input = input.round(decimals=2)", lambda t: t["input"].round(decimals=2)),
    # masks and where
    ("input = input.masked_fill(mask, 0.0)", lambda t: t["input"].masked_fill(t["mask"], 0.0)),
    (
        "input = input.masked_fill(mask=input > 0, value=-1)",
        lambda t: t["input"].masked_fill(mask=t["input"] > 0, value=-1),
    ),
    ("input = input.masked_fill(x1 > 0, 2.0)", lambda t: t["input"].masked_fill(t["x1"] > 0, 2.0)),
    ("input = input.where(mask, 0.0)", lambda t: t["input"].where(t["mask"], 0.0)),
    (
        "input = input.where(condition=input > 0, other=var)",
        lambda t: t["input"].where(condition=t["input"] > 0, other=t["var"]),
    ),
    (
        "input = torch.where(mask, input, var)",
        lambda t: torch.where(t["mask"], t["input"], t["var"]),
    ),
    ("input = torch.where(input > 0, 1.0, 0.0)", lambda t: torch.where(t["input"] > 0, 1.0, 0.0)),
    (
        "input = torch.where(condition=mask, input=input, other=x1)",
        lambda t: torch.where(condition=t["mask"], input=t["input"], other=t["x1"]),
    ),
    # chains
    (
        "input = input.softmax(1).log()[..., 1:].sum(1, keepdim=True) * 2 ** 3 - x1",
        lambda t: t["input"].softmax(1).log()[..., 1:].sum(1, keepdim=True) * 2**3 - t["x1"],
    ),
    (
        "input = (input - input.mean(1, keepdim=True)).abs().clamp(max=1).double()",
        lambda t: (t["input"] - t["input"].mean(1, keepdim=True)).abs().clamp(max=1).double(),
    ),
    # errors torch raises are torch's
    ("input = input + var.permute(1, 0)", lambda t: t["input"] + t["var"].permute(1, 0)),
    ("input = input.transpose(0, 5)", lambda t: t["input"].transpose(0, 5)),
]

INTEGER_CASES: list[tuple[str, Callable[[Tensors], object]]] = [
    ("target = F.one_hot(target)", lambda t: F.one_hot(t["target"])),
    ("target = F.one_hot(target, 5)", lambda t: F.one_hot(t["target"], 5)),
    ("target = F.one_hot(target, num_classes=6)", lambda t: F.one_hot(t["target"], num_classes=6)),
    ("target = F.one_hot(target, -1)", lambda t: F.one_hot(t["target"], -1)),
    ("target = F.one_hot(target, 2)", lambda t: F.one_hot(t["target"], 2)),
    ("target = torch.nn.functional.one_hot(target, 4)", lambda t: F.one_hot(t["target"], 4)),
    ("target = F.one_hot(target.float())", lambda t: F.one_hot(t["target"].float())),
    ("target = target - 1", lambda t: t["target"] - 1),
    ("target = target // 2", lambda t: t["target"] // 2),
    ("target = target % 3", lambda t: t["target"] % 3),
    ("target = target / 2", lambda t: t["target"] / 2),
    ("target = target * 1.5", lambda t: t["target"] * 1.5),
    ("target = target ** 2", lambda t: t["target"] ** 2),
    ("target = target // 0", lambda t: t["target"] // 0),
    ("target = target.float()", lambda t: t["target"].float()),
    ("target = target.to(torch.float32)", lambda t: t["target"].to(torch.float32)),
    ("target = target.to(torch.int32)", lambda t: t["target"].to(torch.int32)),
    ("target = (target == 1) | (target == 2)", lambda t: (t["target"] == 1) | (t["target"] == 2)),
    ("target = target.unsqueeze(1).float()", lambda t: t["target"].unsqueeze(1).float()),
    ("target = ~target", lambda t: ~t["target"]),
    ("target = target & 1", lambda t: t["target"] & 1),
    ("target = target.clamp(0, 2)", lambda t: t["target"].clamp(0, 2)),
    ("target = target.sum()", lambda t: t["target"].sum()),
    ("target = target.argmax()", lambda t: t["target"].argmax()),
    ("target = target.abs()", lambda t: t["target"].abs()),
    ("target = target.sign()", lambda t: t["target"].sign()),
    ("target = target.mean()", lambda t: t["target"].mean()),
    ("target = target.log()", lambda t: t["target"].log()),
    ("target = target.sqrt()", lambda t: t["target"].sqrt()),
    ("target = target.softmax(0)", lambda t: t["target"].softmax(0)),
    ("target = target.exp()", lambda t: t["target"].exp()),
    ("target = target.sigmoid()", lambda t: t["target"].sigmoid()),
    ("target = target.round()", lambda t: t["target"].round()),
    ("target = target.long()", lambda t: t["target"].long()),
    (
        "target = target.masked_fill(target == 0, -100)",
        lambda t: t["target"].masked_fill(t["target"] == 0, -100),
    ),
    (
        "target = torch.where(target > 1, target, 0)",
        lambda t: torch.where(t["target"] > 1, t["target"], 0),
    ),
    # booleans
    ("mask = ~mask", lambda t: ~t["mask"]),
    (
        "mask = mask & (target > 0).unsqueeze(1)",
        lambda t: t["mask"] & (t["target"] > 0).unsqueeze(1),
    ),
    ("mask = mask | True", lambda t: t["mask"] | True),
    ("mask = mask.float()", lambda t: t["mask"].float()),
    ("mask = mask.long()", lambda t: t["mask"].long()),
    ("mask = mask.sum(1)", lambda t: t["mask"].sum(1)),
    ("mask = mask.to(torch.int8)", lambda t: t["mask"].to(torch.int8)),
    ("mask = mask * 2", lambda t: t["mask"] * 2),
    ("mask = -mask", lambda t: -t["mask"]),
    ("mask = mask.int()", lambda t: t["mask"].int()),
]

LITERAL_CASES: list[tuple[str, object]] = [
    ("input = 2 ** 3", 2**3),
    ("input = 2 ** -1", 2**-1),
    ("input = 1.5 * 2", 1.5 * 2),
    ("input = 7 // 2", 7 // 2),
    ("input = -3 % 5", -3 % 5),
    ("input = 1 < 2", True),
    ("input = True | False", True),
    ("input = ~5", ~5),
    ("input = 0.1 + 0.2", 0.1 + 0.2),
    ("input = 3", 3),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize(("text", "expected"), FLOAT_CASES, ids=[case[0] for case in FLOAT_CASES])
def test_float_forms_match_torch_bit_for_bit(
    text: str, expected: Callable[[Tensors], object], dtype: type
) -> None:
    assert_parity(text, expected, arrays_of(dtype))


@pytest.mark.parametrize(
    ("text", "expected"), INTEGER_CASES, ids=[case[0] for case in INTEGER_CASES]
)
def test_integer_and_bool_forms_match_torch_bit_for_bit(
    text: str, expected: Callable[[Tensors], object]
) -> None:
    assert_parity(text, expected, arrays_of(np.float32))


@pytest.mark.parametrize(("text", "value"), LITERAL_CASES, ids=[case[0] for case in LITERAL_CASES])
def test_literal_arithmetic_is_python_arithmetic_in_a_0d_array(text: str, value: object) -> None:
    result = apply_maps([parse_map(text, NAMES)], arrays_of(np.float32), BUDGET)["input"]
    assert result.shape == ()
    assert result.dtype == np.asarray(value).dtype
    assert result.item() == value


def test_float_cases_hit_torch_errors_and_successes() -> None:
    """The parity table is not vacuous: most cases compute, a few are torch's own errors."""
    failures = 0
    for _, expected in FLOAT_CASES:
        try:
            expected(tensors_of(arrays_of(np.float32)))
        except (RuntimeError, IndexError, ValueError, TypeError):
            failures += 1
    assert 3 <= failures <= 6


def test_bfloat16_results_come_back_as_float32() -> None:
    result = apply_maps(
        [parse_map("input = input.to(torch.bfloat16)", NAMES)], arrays_of(np.float32), BUDGET
    )["input"]
    assert result.dtype == np.float32


EXPRESSIONS_FOR_FUZZ = [
    "input = input * 2 - 1",
    "input = input.sigmoid()",
    "input = input.softmax(1)",
    "input = input.log_softmax(-1)",
    "input = input.clamp(-1, 1).abs().sqrt()",
    "input = input[:, :1].squeeze(1) / 3",
    "input = torch.where(input > 0, input, input.exp() - 1)",
    "input = input.masked_fill(input != input, 0.0)",
    "input = (input > 0.5) | (input < -0.5)",
    "input = input.sum(1, keepdim=True) % 2",
    "input = input.argmax(1)",
    "input = input ** 2 // 3",
    "input = input.round(decimals=1).sign()",
]
FUZZ_TORCH: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    EXPRESSIONS_FOR_FUZZ[0]: lambda x: x * 2 - 1,
    EXPRESSIONS_FOR_FUZZ[1]: lambda x: x.sigmoid(),
    EXPRESSIONS_FOR_FUZZ[2]: lambda x: x.softmax(1),
    EXPRESSIONS_FOR_FUZZ[3]: lambda x: x.log_softmax(-1),
    EXPRESSIONS_FOR_FUZZ[4]: lambda x: x.clamp(-1, 1).abs().sqrt(),
    EXPRESSIONS_FOR_FUZZ[5]: lambda x: x[:, :1].squeeze(1) / 3,
    EXPRESSIONS_FOR_FUZZ[6]: lambda x: torch.where(x > 0, x, x.exp() - 1),
    EXPRESSIONS_FOR_FUZZ[7]: lambda x: x.masked_fill(x != x, 0.0),
    EXPRESSIONS_FOR_FUZZ[8]: lambda x: (x > 0.5) | (x < -0.5),
    EXPRESSIONS_FOR_FUZZ[9]: lambda x: x.sum(1, keepdim=True) % 2,
    EXPRESSIONS_FOR_FUZZ[10]: lambda x: x.argmax(1),
    EXPRESSIONS_FOR_FUZZ[11]: lambda x: x**2 // 3,
    EXPRESSIONS_FOR_FUZZ[12]: lambda x: x.round(decimals=1).sign(),
}


@settings(max_examples=150, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.float16]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5),
        elements={"allow_nan": True, "allow_infinity": True},
    ),
    text=st.sampled_from(EXPRESSIONS_FOR_FUZZ),
)
def test_fuzzed_arrays_match_torch_bit_for_bit(array: np.ndarray, text: str) -> None:
    before = array.copy()
    got = apply_maps([parse_map(text, NAMES)], {"input": array}, BUDGET)["input"]
    assert_bitwise_equal(got, FUZZ_TORCH[text](torch.from_numpy(array.copy())))
    assert np.array_equal(array, before, equal_nan=True)


# ------------------------------------------------------------------------ rejections

REJECTED: list[tuple[str, str]] = [
    # attribute access outside the whitelist
    ("input = input.data", ".data is not supported"),
    ("input = input.__class__", ".__class__ is not supported"),
    ("input = input.T", ".T is not supported"),
    ("input = input.numpy()", ".numpy() is not supported (supported tensor methods: squeeze"),
    ("input = input.__class__.__bases__", ".__class__ is not supported"),
    ("input = input.exp_()", ".exp_() is not supported"),
    ("input = input.sum", ".sum must be called"),
    ("input = torch.load('x')", "torch.load() is not supported"),
    ("input = torch.load", "torch.load is not supported"),
    ("input = torch.float32", "torch.float32 is only supported as an argument"),
    ("input = torch", "torch is a module"),
    ("input = np.log(input)", "np is not an input of mse"),
    ("input = os.system(1)", "os is not an input of mse (inputs: input, target)"),
    ("input = torch.softmax(input, 1)", "write it as a tensor method, e.g. input.softmax(...)"),
    ("input = F.softmax(input, 1)", "F.softmax() is not supported"),
    ("input = input.to(torch.complex64)", "not torch.complex64"),
    ("input = input.sum(dtype=torch.complex64)", "torch.complex64 is not a supported dtype"),
    ("input = input.to('cuda')", ".to() takes a dtype"),
    ("input = input.to(input)", ".to() takes a dtype"),
    # unknown calls and names
    ("input = print(input)", "print() is not supported"),
    ("input = open('x')", "open() is not supported"),
    ("input = __import__('os')", "__import__() is not supported"),
    ("input = eval('1')", "eval() is not supported"),
    ("input = input[0](1)", "calling input[0] is not supported"),
    ("input = x + 1", "x is not an input of mse"),
    ("x = input", "x is not an input of mse"),
    ("input = __builtins__", "__builtins__ is not an input"),
    # other syntax
    ("input = lambda: input", "lambdas are not supported"),
    ("input = [x for x in input]", "list comprehensions are not supported"),
    ("input = (x for x in input)", "generator expressions are not supported"),
    ("input = {x: 1 for x in input}", "dict comprehensions are not supported"),
    ("input = f'{input}'", "f-strings are not supported"),
    ("input = 'input'", "strings are not supported"),
    ("input = b'1'", "strings are not supported"),
    ("input = 1j", "complex numbers are not supported"),
    ("input = None", "None is only supported as an argument"),
    ("input = ...", "... is only supported in a subscript"),
    ("input = (y := input)", "assignment expressions (:=) are not supported"),
    ("input = input.sum(*target)", "* unpacking is not supported in .sum()"),
    ("input = *input,", "tuples are only supported as arguments"),
    ("input = input.sum(**target)", "** unpacking is not supported"),
    ("input = [input]", "list literals are not supported"),
    ("input = {input}", "set literals are not supported"),
    ("input = {'a': input}", "dict literals are not supported"),
    ("input = input if target else 1", "if-else expressions are not supported"),
    ("input = input and target", "and/or (use & and |) are not supported"),
    ("input = not input", "not is not supported"),
    ("input = +input", "unary + is not supported"),
    ("input = input @ target", "the operator @ is not supported"),
    ("input = input ^ target", "the operator ^ is not supported"),
    ("input = input << 1", "the operator << is not supported"),
    ("input = input in target", "the comparison in is not supported"),
    ("input = input is target", "the comparison is is not supported"),
    ("input = 0 <= input <= 1", "chained comparisons are not supported"),
    ("input = input.sum((input, 1))", "a tuple may only hold numbers, not input"),
    ("input = (1, 2)", "tuples are only supported as arguments"),
    ("input = input.reshape((1,) * 10 ** 8)", "tuples are only supported as arguments"),
    ("input = input + (1, 2)", "tuples are only supported as arguments"),
    # subscripts with names, calls, side effects or non-integers
    ("input = input[target]", "the subscript [target] is not supported"),
    ("input = input[len(x)]", "the subscript [len(x)] is not supported"),
    ("input = input[input.exp_()]", "the subscript [input.exp_()] is not supported"),
    ("input = input[1.5]", "the subscript [1.5] is not supported"),
    ("input = input[True]", "the subscript [True] is not supported"),
    ("input = input[None]", "the subscript [None] is not supported"),
    ("input = input[:target]", "the subscript [:target] is not supported"),
    ("input = input[1 + 1]", "the subscript [1 + 1] is not supported"),
    ("input = input[[0, 1]]", "the subscript [[0, 1]] is not supported"),
    ("input = input[(x := 1)]", "the subscript [(x := 1)] is not supported"),
    # arguments
    ("input = input.sum(foo=1)", "the keyword foo= is not supported by .sum()"),
    ("input = input.round(2)", ".round() does not take 1 positional argument"),
    ("input = input.transpose(0, 1, 2)", ".transpose() does not take 3 positional arguments"),
    ("input = input.transpose(0)", ".transpose() does not take 1 positional argument"),
    ("input = input.unsqueeze()", ".unsqueeze() does not take 0 positional arguments"),
    ("input = input.log(1)", ".log() does not take 1 positional argument"),
    ("input = input.softmax(1, torch.float32, 3)", ".softmax() does not take 3"),
    ("input = input.clamp()", ".clamp() does not take 0"),
    ("input = torch.where(input > 0)", "torch.where() does not take 1"),
    ("input = F.one_hot(num_classes=3)", "F.one_hot() takes its tensor as the first positional"),
    ("input = F.one_hot(target, 3, 4)", "F.one_hot() does not take 3"),
    ("input = input.masked_fill(mask=input > 0, value=1, x=2)", "the keyword x= is not supported"),
    ("input = input.sum(dim=print)", "print is not an input"),
    # huge numbers
    ("input = input ** 10 ** 100", "10 ** 100 is too large"),
    ("input = input ** 10 ** 10 ** 10", "10 ** 10000000000 is too large"),
    ("input = input ** 9 ** 9 ** 9", "is too large"),
    ("input = input * (2 ** 62 * 4)", "is too large"),
    ("input = input + 1" + "0" * 30, "the integer 1" + "0" * 30),
    ("input = input + 2.0 ** 1e10", "2.0 ** 10000000000.0 overflows"),
    ("input = input + (-8) ** 0.5", "(-8) ** 0.5 is a complex number"),
    ("input = input / (1 // 0)", "1 // 0 fails in Python: integer division or modulo by zero"),
    ("input = input + ~1.5", "~1.5 fails in Python"),
    # statements
    ("input = 1; target = 2", "holds 2 statements"),
    ("input += 1", "augmented assignment: write it as NAME = EXPR"),
    ("input - 1", "write it as NAME = EXPR, e.g. --map 'target = target - 1'"),
    ("input, target = target, input", "replace one input per --map"),
    ("input = target = 1", "replace one input per --map"),
    ("input: int = 1", "write it as NAME = EXPR"),
    ("import os", "write it as NAME = EXPR"),
    ("input.data = 1", "replace one input per --map"),
    ("", "holds 0 statements"),
    ("input =", "is not a Python expression"),
    ("input = input\x00", "is not a Python expression"),
    (
        "input = " + "(" * 300 + "input" + ")" * 300,
        "is not a Python expression (too many nested parentheses)",
    ),
    ("input = " + "-" * 900 + "input", "nests more than 64 levels deep"),
    ("input = input" + ".abs()" * 150, "nests more than 64 levels deep"),
    ("input = " + "[" * 300 + "]" * 300, "is not a Python expression"),
    ("input = " + "-" * 100000 + "input", "characters long, more than 1,000"),
    ("input = " + "(" * 10000 + "input" + ")" * 10000, "characters long"),
    ("input = input + " + " + ".join(["1"] * 400), "characters long"),
]


@pytest.mark.parametrize(
    ("text", "named"),
    REJECTED,
    ids=[f"{index}:{case[0][:40]}" for index, case in enumerate(REJECTED)],
)
def test_everything_else_is_refused_naming_the_part(text: str, named: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_map(text, ("input", "target"), loss="mse")
    message = caught.value.message
    assert named in message
    assert "\n" not in caught.value.line()
    assert caught.value.line().startswith("--map '")


def test_messages_quote_the_map_as_typed_and_name_the_loss_inputs() -> None:
    with pytest.raises(UsageError) as caught:
        parse_map("x = input", ("input", "target"), loss="mse")
    assert (
        caught.value.message
        == "--map 'x = input': x is not an input of mse (inputs: input, target)"
    )
    with pytest.raises(UsageError) as caught:
        parse_map("input = os.system(1)", ("input", "target"))
    assert (
        caught.value.message
        == "--map 'input = os.system(1)': os is not an input (inputs: input, target)"
    )


def test_deep_nesting_never_raises_recursion_error() -> None:
    for text in (
        "input = " + "-" * 995 + "input",
        "input = " + "~" * 995 + "input",
        "input = " + "input + " * 120 + "input",
        "input = input" + "[0]" * 300,
    ):
        with pytest.raises(UsageError):
            parse_map(text, NAMES)
    assert len("input = " + "input + " * 120 + "input") <= MAX_TEXT_LENGTH


def test_parentheses_alone_do_not_nest_the_tree() -> None:
    map_ = parse_map("input = " + "(" * 150 + "input" + ")" * 150, NAMES)
    assert map_.expression == "input"


def test_two_maps_of_one_input_are_refused() -> None:
    with pytest.raises(UsageError, match="both replace target"):
        parse_maps(["target = target - 1", "target = target.float()"], NAMES)


def test_a_tree_that_bypassed_parsing_is_still_refused_when_applied() -> None:
    hostile = Map("input", "input.numpy()", ast.parse("input.numpy()", mode="eval").body)
    with pytest.raises(UsageError, match=r"\.numpy\(\) is not supported"):
        apply_maps([hostile], arrays_of(np.float32), BUDGET)
    listed = Map("input", "[input]", ast.parse("[input]", mode="eval").body)
    with pytest.raises(UsageError, match="list literals are not supported"):
        apply_maps([listed], arrays_of(np.float32), BUDGET)


def test_a_tuple_that_bypassed_parsing_is_neither_repeated_nor_returned() -> None:
    for text in ("(1,) * 10 ** 8", "(1, 2)"):
        hostile = Map("input", text, ast.parse(text, mode="eval").body)
        with pytest.raises(UsageError, match="tuples outside arguments are not supported"):
            apply_maps([hostile], arrays_of(np.float32), BUDGET)
    none_plus_one = Map("input", "None + 1", ast.parse("None + 1", mode="eval").body)
    with pytest.raises(UsageError, match="only on numbers and tensors"):
        apply_maps([none_plus_one], arrays_of(np.float32), BUDGET)


def test_torch_errors_are_one_line_usage_errors() -> None:
    map_ = parse_map("target = target.mean()", NAMES)
    with pytest.raises(UsageError) as caught:
        apply_maps([map_], arrays_of(np.float32), BUDGET)
    assert caught.value.message.startswith(
        "--map 'target = target.mean()': torch raised: mean(): could not infer output dtype"
    )
    assert "\n" not in caught.value.message


# ---------------------------------------------------------------------------- memory


def test_a_broadcast_over_the_budget_is_refused_before_it_is_computed() -> None:
    rows = 1_000_000
    arrays = {"input": np.zeros((rows, 1), np.float32), "target": np.zeros(rows, np.float32)}
    started = time.perf_counter()
    with pytest.raises(UsageError) as caught:
        apply_maps([parse_map("input = input + target", NAMES)], arrays, BUDGET)
    assert time.perf_counter() - started < 1.0
    assert caught.value.message == (
        "--map 'input = input + target': the result would hold (1000000, 1000000) values "
        "(3.6 TB), more than the memory budget (512.0 MB)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "input = input == target",
        "input = (input > 0) & (target > 0)",
        "input = torch.where(input > 0, target, 0.0)",
        "input = input.where(input > 0, target)",
        "input = input.masked_fill(target > 0, 1.0)",
        "input = input.clamp(min=target)",
    ],
)
def test_every_broadcasting_form_is_guarded(text: str) -> None:
    arrays = {"input": np.zeros((4000, 1), np.float32), "target": np.zeros(4000, np.float32)}
    with pytest.raises(UsageError, match="the result would hold"):
        apply_maps([parse_map(text, NAMES)], arrays, 1 << 20)
    apply_maps([parse_map(text, NAMES)], arrays, 1 << 30)


@pytest.mark.parametrize(
    "text", ["target = F.one_hot(target, 10 ** 7)", "target = F.one_hot(target)"]
)
def test_one_hot_over_the_budget_is_refused_before_it_is_computed(text: str) -> None:
    target = np.zeros(1_000_000, np.int64)
    target[0] = 10**7 - 1
    started = time.perf_counter()
    with pytest.raises(UsageError, match=r"\(1000000, 10000000\) values"):
        apply_maps([parse_map(text, NAMES)], {"target": target}, BUDGET)
    assert time.perf_counter() - started < 1.0


def test_a_conversion_that_grows_past_the_budget_is_refused() -> None:
    arrays = {"mask": np.zeros(300_000, bool)}
    with pytest.raises(UsageError, match="the result would hold"):
        apply_maps([parse_map("mask = mask.double()", NAMES)], arrays, 1 << 20)


def test_results_no_larger_than_their_operands_are_not_refused() -> None:
    arrays = {"input": np.zeros((1000, 100), np.float32)}
    result = apply_maps([parse_map("input = input.exp() + 1", NAMES)], arrays, 1024)["input"]
    assert result.shape == (1000, 100)


# ---------------------------------------------------------------------- applying maps


def test_every_map_sees_the_inputs_as_given() -> None:
    arrays = arrays_of(np.float32)
    maps = parse_maps(["input = var", "var = input"], NAMES)
    swapped = apply_maps(maps, arrays, BUDGET)
    assert np.array_equal(swapped["input"], arrays["var"])
    assert np.array_equal(swapped["var"], arrays["input"], equal_nan=True)
    assert swapped["target"] is arrays["target"]


def test_the_inputs_are_never_modified() -> None:
    arrays = arrays_of(np.float64)
    arrays["var"] = arrays["var"][:, ::2]  # not contiguous
    arrays["x1"] = arrays["x1"].astype(">f8")  # not native
    arrays["input"].setflags(write=False)
    before = {name: array.copy() for name, array in arrays.items()}
    maps = parse_maps(["input = input.abs()", "var = var * 2", "x1 = x1 + 1"], NAMES)
    results = apply_maps(maps, arrays, BUDGET)
    results["input"][...] = 7
    for name, array in arrays.items():
        assert np.array_equal(array, before[name], equal_nan=True)
    assert results is not arrays
    assert np.array_equal(results["x1"], before["x1"] + 1)


def test_an_input_torch_cannot_read_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="torch cannot read input"):
        apply_maps(
            [parse_map("input = input * 2", NAMES)], {"input": np.array(["a"], object)}, BUDGET
        )


def test_parsing_imports_neither_torch_nor_numpy() -> None:
    code = (
        "import sys; from losscli.transforms import parse_map, parse_maps, substitute, renamed; "
        "m = parse_map('target = F.one_hot(target.long(), 3).to(torch.float32) - 1', ['input', 'target']); "
        "substitute(m, {'target': 'input'}); renamed(m, {'target': 'input'}); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'numpy' not in sys.modules, 'numpy imported'"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=root, env={"PYTHONPATH": str(root)}
    )


# ---------------------------------------------------------------------- maps as data


def test_a_map_is_its_normalised_text() -> None:
    map_ = parse_map("  target=target-1 ", NAMES)
    assert map_.expression == "target - 1"
    assert map_.text == "target = target - 1"
    assert map_ == parse_map("target = (target - 1)", NAMES)
    assert len({map_, parse_map("target = target - 1", NAMES)}) == 1
    assert "tree" not in repr(map_)
    assert parse_map(map_.text, NAMES) == map_


def test_reads_names_the_inputs_only() -> None:
    map_ = parse_map(
        "input = torch.where(mask, F.one_hot(target, 4).to(torch.float32), input)", NAMES
    )
    assert map_.reads() == frozenset({"mask", "target", "input"})
    assert parse_map("input = 2 ** 3", NAMES).reads() == frozenset()


@pytest.mark.parametrize(
    ("text", "replacements", "expected"),
    [
        ("target = target * 2", {"target": "target - 1"}, "target = (target - 1) * 2"),
        ("input = input.log()", {"input": "input.softmax(1)"}, "input = input.softmax(1).log()"),
        ("input = input ** 2", {"input": "-input"}, "input = (-input) ** 2"),
        (
            "input = input - target",
            {"input": "target", "target": "input"},
            "input = target - input",
        ),
        ("input = input.to(torch.float64)", {"torch": "input"}, "input = input.to(torch.float64)"),
        (
            "target = F.one_hot(target, 3)",
            {"F": "x1", "target": "target.long()"},
            "target = F.one_hot(target.long(), 3)",
        ),
        ("input = input[:, 1]", {"input": "input + x1"}, "input = (input + x1)[:, 1]"),
    ],
)
def test_substitute_splices_expressions_as_trees(
    text: str, replacements: dict[str, str], expected: str
) -> None:
    substituted = substitute(parse_map(text, NAMES), replacements)
    assert substituted.text == expected
    assert parse_map(substituted.text, NAMES) == substituted


def test_substitute_composes_what_two_maps_would_do() -> None:
    arrays = arrays_of(np.float64)
    first = parse_map("input = input.softmax(1)", NAMES)
    second = parse_map("input = input.log() * x1", NAMES)
    composed = substitute(second, {"input": first.expression})
    once = apply_maps([first], arrays, BUDGET)
    twice = apply_maps([second], once, BUDGET)["input"]
    assert np.array_equal(apply_maps([composed], arrays, BUDGET)["input"], twice, equal_nan=True)


@pytest.mark.parametrize(
    ("replacement", "named"),
    [("input.numpy()", ".numpy() is not supported"), ("input +", "is not a Python expression")],
)
def test_substitute_refuses_what_parse_map_refuses(replacement: str, named: str) -> None:
    with pytest.raises(
        UsageError, match=named.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")
    ):
        substitute(parse_map("input = input * 2", NAMES), {"input": replacement})


def test_substitute_refuses_a_result_that_nests_too_deeply() -> None:
    map_ = parse_map("input = input" + ".abs()" * 30, NAMES)
    with pytest.raises(UsageError, match="nests more than"):
        substitute(map_, {"input": "input" + ".exp()" * 40})


def test_renamed_renames_target_and_reads_at_once() -> None:
    swap = {"target": "input", "input": "target"}
    map_ = renamed(parse_map("target = target - input.argmax(1)", NAMES), swap)
    assert map_.text == "input = input - target.argmax(1)"
    assert renamed(map_, swap) == parse_map("target = target - input.argmax(1)", NAMES)
    kept = renamed(parse_map("target = torch.where(target > 0, x1, var)", NAMES), {"x1": "input"})
    assert kept.text == "target = torch.where(target > 0, input, var)"
    assert parse_map(kept.text, NAMES) == kept


# ------------------------------------------------------------------------- streaming


ONE_HOT_MIXES = "F.one_hot() without num_classes reads the class count from all samples"


def sample_rows() -> dict[str, np.ndarray]:
    generator = np.random.default_rng(3)
    return {
        "input": generator.normal(size=(6, 3)).astype(np.float32),
        "target": np.array([0, 1, 2, 0, 1, 2]),
        "x1": generator.normal(size=(6, 1)).astype(np.float32),
    }


@pytest.mark.parametrize(
    "text",
    [
        "input = input * 2 - 1",
        "input = input.exp().log()",
        "x1 = x1.squeeze(1)",
        "input = input.softmax(1)",
        "input = input.log_softmax(dim=-1)",
        "target = input[:, 1]",
        "target = F.one_hot(target, 5)",
        "target = input.argmax(1)",
        "input = input.sum(-1)",
        "input = input.mean(1, keepdim=True)",
        "input = input.unsqueeze(1)",
        "input = input.reshape(-1, 3)",
        "input = input.flatten(1)",
        "input = torch.where(input > 0, input, x1)",
        "input = input[..., :-1]",
        "target = target.float() + 2 ** 3",
    ],
)
def test_maps_on_samples_apart_are_streamable(text: str) -> None:
    assert mixing_problem([parse_map(text, NAMES)], sample_rows(), BUDGET) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("input = input.softmax(0)", "applied to part of the samples it gives different values"),
        (
            "input = input - input.mean(0)",
            "applied to part of the samples it gives different values",
        ),
        ("input = input.sum()", ".sum() without a dim reduces over all samples"),
        ("input = input.mean()", ".mean() without a dim reduces over all samples"),
        ("target = input.argmax()", ".argmax() without a dim reduces over all samples"),
        ("input = input.sum(dim=None)", ".sum() without a dim reduces over all samples"),
        ("input = input[1:]", "applied to 6 samples it gives 5 rows"),
        ("input = input[0]", "applied to 6 samples it gives 3 rows"),
        ("input = input.unsqueeze(0)", "applied to 6 samples it gives 1 row"),
        ("input = input.permute(1, 0)", "applied to 6 samples it gives 3 rows"),
        ("input = input.reshape(-1)", "applied to 6 samples it gives 18 rows"),
        (
            "x1 = x1.squeeze()",
            ".squeeze() without a dim also drops the sample dimension of a one-sample chunk",
        ),
        ("x1 = x1.squeeze(0)", "applied to part of the samples it gives results of another shape"),
        ("target = F.one_hot(target)", ONE_HOT_MIXES),
        ("target = F.one_hot(target, num_classes=-1)", ONE_HOT_MIXES),
        ("input = input.flatten()", "applied to 6 samples it gives 18 rows"),
        ("input = 2 ** 3", "applied to 6 samples it gives a single value"),
    ],
)
def test_maps_that_mix_samples_are_named_in_one_sentence(text: str, reason: str) -> None:
    problem = mixing_problem(
        [parse_map("input = input + 1", NAMES), parse_map(text, NAMES)], sample_rows(), BUDGET
    )
    assert problem == (
        f"--map '{parse_map(text, NAMES).text}' mixes samples ({reason}), so it cannot be "
        "applied to a streamed input; raise --memory-budget to load it whole"
    )


def test_a_map_that_fails_on_part_of_the_samples_mixes() -> None:
    rows = {"input": sample_rows()["input"][:2]}
    problem = mixing_problem([parse_map("input = input[1] * 0 + input", NAMES)], rows, BUDGET)
    assert problem is not None and "fails on part of the samples" in problem


def test_squeeze_of_the_sample_dimension_mixes_and_of_another_does_not() -> None:
    rows = {"x1": np.ones((2, 1), np.float32)}
    assert mixing_problem([parse_map("x1 = x1.squeeze(0)", NAMES)], rows, BUDGET) is not None
    assert mixing_problem([parse_map("x1 = x1.squeeze(1)", NAMES)], rows, BUDGET) is None


def test_a_single_row_sample_is_judged_by_its_shape_alone() -> None:
    rows = {"input": np.ones((1, 3), np.float32)}
    assert mixing_problem([parse_map("input = input.softmax(0)", NAMES)], rows, BUDGET) is None
    assert mixing_problem([parse_map("input = input[0]", NAMES)], rows, BUDGET) is not None


def test_a_map_that_fails_on_the_whole_sample_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="torch raised"):
        mixing_problem([parse_map("target = target.mean(1)", NAMES)], sample_rows(), BUDGET)


def test_no_maps_and_no_rows_mix_nothing() -> None:
    assert mixing_problem([], sample_rows(), BUDGET) is None
    assert mixing_problem([parse_map("input = input * 2", NAMES)], {}, BUDGET) is None
