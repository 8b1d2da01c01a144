"""`losscli.check`: the CLI's pipeline on tensors in memory.

One path: for every conformance case of every loss, ``check(...).to_dict()`` is the JSON
that ``losscli compute --format json`` prints for the same numbers saved as ``.npy`` (the
inputs' names aside), for torch tensors and NumPy arrays, in float32 and float64; the value
and gradients are torch's own, bit for bit. The tensors are read, never changed: not their
values, not their graph, not torch's or NumPy's random number generators.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from test_conformance import (
    CASES,
    TORCH_DTYPES,
    Case,
    cli_flags,
    gradient_arguments,
    torch_options,
)
from typer.testing import CliRunner

import losscli
from losscli import losses
from losscli.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:reduction.*batchmean:UserWarning")
runner = CliRunner()
KINDS = ("tensor", "array")
SOURCES = {"tensor": "<tensor>", "array": "<array>"}


def _stored(case: Case, dtype: str) -> dict[str, np.ndarray]:
    """The case's numbers as a training script holds them: floats in ``dtype``."""
    return {
        name: values.astype(dtype) if values.dtype.kind == "f" else values
        for name, values in case.arrays().items()
    }


def _python_options(case: Case) -> dict[str, Any]:
    """The case's options as Python values (inline arrays as lists)."""
    return {
        name: json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        for name, value in case.options.items()
    }


def _cli_record(case: Case, arrays: dict[str, np.ndarray], dtype: str, kind: str) -> Any:
    """``losscli compute --format json`` on the arrays saved as ``<argument>.npy``, with each
    file's name written as the API names its input, and no fix commands (the API's inputs
    are no files to name in a command)."""
    for name, values in arrays.items():
        np.save(f"{name}.npy", values)
    result = runner.invoke(
        app,
        [
            "compute",
            case.loss,
            *(f"{name}.npy" for name in arrays),
            *cli_flags(case),
            "--dtype",
            dtype,
            "--format",
            "json",
        ],
    )
    assert result.exit_code in (0, 1), result.stderr
    text = result.stdout
    for name in arrays:
        text = text.replace(f"{name}.npy", SOURCES[kind])
    record = json.loads(text)
    for item in record["findings"]:
        for fix in item["fixes"]:
            fix.pop("command", None)
    return record


def _given(arrays: dict[str, np.ndarray], kind: str) -> list[Any]:
    if kind == "array":
        return list(arrays.values())
    return [torch.from_numpy(values.copy()) for values in arrays.values()]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", tuple(TORCH_DTYPES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_check_is_the_cli_json(
    case: Case, dtype: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    arrays = _stored(case, dtype)
    report = losscli.check(case.loss, *_given(arrays, kind), **_python_options(case))
    assert json.loads(json.dumps(report.to_dict())) == _cli_record(case, arrays, dtype, kind)


def test_every_loss_of_the_catalogue_is_checked() -> None:
    assert {case.spec.name for case in CASES} == {spec.name for spec in losses.LOSSES}


@pytest.mark.parametrize("dtype", tuple(TORCH_DTYPES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_value_and_gradients_are_torchs_bit_for_bit(case: Case, dtype: str) -> None:
    arrays = _stored(case, dtype)
    tensors = {
        name: torch.from_numpy(values.copy()).requires_grad_(
            name in gradient_arguments(case.loss) and values.dtype.kind == "f"
        )
        for name, values in arrays.items()
    }
    expected = case.reference(tensors, torch_options(case, "mean", dtype))
    expected.backward()
    options = {
        name: torch.tensor(value, dtype=TORCH_DTYPES[dtype]) if isinstance(value, list) else value
        for name, value in _python_options(case).items()
    }
    report = losscli.check(case.loss, *tensors.values(), **options)
    assert report.value == expected.item()
    assert report.to_dict()["dtype"] == dtype
    for name, tensor in tensors.items():
        if tensor.grad is not None:
            assert np.array_equal(report.gradient[name], tensor.grad.numpy()), name


# ---------------------------------------------------------------------------------------
# the tensors are read, not touched


def test_the_tensors_their_graph_and_the_generators_are_left_as_they_were() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 5)
    features = torch.randn(32, 8)
    labels = torch.randint(0, 5, (32,))
    logits = layer(features)  # a non-leaf tensor, in the middle of a graph
    before = logits.detach().clone()
    states = (torch.get_rng_state(), np.random.get_state(), random.getstate())

    report = losscli.check("cross-entropy", logits, labels)

    assert torch.equal(torch.get_rng_state(), states[0])
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), states[1], strict=True))
    assert random.getstate() == states[2]
    assert torch.equal(logits.detach(), before)
    assert logits.requires_grad and logits.grad_fn is not None
    assert layer.weight.grad is None
    F.cross_entropy(logits, labels).backward()  # the graph still works, and is the user's
    expected = torch.autograd.grad(
        F.cross_entropy(layer(features), labels), layer.weight, retain_graph=False
    )[0]
    assert torch.equal(layer.weight.grad, expected)
    assert report.value == F.cross_entropy(before, labels).item()


def test_numpy_arrays_are_not_written() -> None:
    logits = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    labels = np.arange(16) % 4
    copies = logits.copy(), labels.copy()
    losscli.check("cross-entropy", logits, labels)
    assert np.array_equal(logits, copies[0]) and np.array_equal(labels, copies[1])
    assert logits.flags.writeable  # the caller's array keeps its own flags


@pytest.mark.parametrize(
    "context",
    [torch.no_grad, torch.inference_mode, lambda: torch.autocast("cpu", dtype=torch.bfloat16)],
    ids=["no_grad", "inference_mode", "autocast"],
)
def test_a_validation_loops_context_changes_nothing(context: Any) -> None:
    # criterion(...) inside `with torch.no_grad():` is how every validation loop runs
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(20) % 3
    plain = losscli.check("cross-entropy", logits, labels).to_dict()
    with context():
        inside = losscli.check("cross-entropy", logits, labels).to_dict()
    assert inside == plain
    assert inside["gradient"]


def test_low_precision_tensors_are_computed_in_their_own_dtype() -> None:
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    labels = torch.arange(64) % 10
    report = losscli.check("cross-entropy", logits, labels)
    assert report.value == F.cross_entropy(logits, labels).item()
    record = report.to_dict()
    assert record["dtype"] == "bfloat16"
    assert record["inputs"]["input"] == {
        "source": "<tensor>",
        "shape": [64, 10],
        "dtype": "bfloat16",
        "torch_dtype": "bfloat16",
    }
    in_float64 = losscli.check("cross-entropy", logits, labels, dtype=torch.float64)
    assert in_float64.value == F.cross_entropy(logits.double(), labels).item()


# ---------------------------------------------------------------------------------------
# a loss by name, or by the torch module or function itself


def test_a_torch_module_gives_its_options() -> None:
    logits = torch.randn(30, 4, generator=torch.Generator().manual_seed(4))
    labels = torch.arange(30) % 4
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0])
    module = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1, ignore_index=3)
    by_module = losscli.check(module, logits, labels)
    by_name = losscli.check(
        "CrossEntropyLoss", logits, labels, weight=weight, label_smoothing=0.1, ignore_index=3
    )
    assert by_module.to_dict() == by_name.to_dict()
    assert by_module.value == module(logits, labels).item()
    assert by_module.to_dict()["options"]["ignore_index"] == 3


def test_a_report_answers_in_python() -> None:
    probabilities = torch.softmax(torch.randn(40, 5, generator=torch.Generator().manual_seed(5)), 1)
    labels = torch.arange(40) % 5
    report = losscli.check("cross-entropy", probabilities, labels)
    assert not report.ok
    assert [f.name for f in report.findings] == ["probabilities-as-logits"]
    item = report.findings[0]
    assert item.severity.value == "warning" and item.fix
    assert item.fixes and item.fixes[0].verified is not None
    assert item.fixes[0].command is None  # a command would name files the user does not have
    assert report.per_sample is not None and report.per_sample.shape == (40,)
    assert report.gradient["input"].shape == (40, 5)
    assert "probabilities-as-logits" in repr(report)
    console = Console(record=True, width=100, color_system=None)
    console.print(report)
    shown = console.export_text()
    assert "cross-entropy =" in shown and "probabilities-as-logits" in shown
    assert "<tensor>" in shown


def test_a_clean_call_is_ok() -> None:
    report = losscli.check("mse", np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    assert report.ok and report.value == pytest.approx((0.25 + 0 + 1) / 3)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: losscli.check("MSELos", [1.0], [1.0]), ValueError, "did you mean 'mse'"),
        (lambda: losscli.check("mse", [1.0]), TypeError, "mse takes 2 tensors"),
        (
            lambda: losscli.check("cross-entropy", [[1.0, 2.0]], [0], label_smoothing=2),
            ValueError,
            "label_smoothing= for cross-entropy must be between 0 and 1",
        ),
        (
            lambda: losscli.check("mse", [1.0], [1.0], delta=1.0),
            ValueError,
            "delta= does not apply to mse",
        ),
        (
            lambda: losscli.check("mse", torch.ones(2, dtype=torch.complex64), [1.0, 1.0]),
            TypeError,
            "real numbers",
        ),
        (lambda: losscli.check("mse", [1.0], [1.0], dtype="int8"), ValueError, "dtype="),
        (lambda: losscli.check(torch.nn.Linear(2, 2), [1.0], [1.0]), TypeError, "not a torch loss"),
    ],
    ids=[
        "unknown-loss",
        "one-tensor",
        "option-range",
        "foreign-option",
        "complex",
        "dtype",
        "module",
    ],
)
def test_a_wrong_call_is_one_python_error(call: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=None) as raised:
        call()
    assert words in str(raised.value)
