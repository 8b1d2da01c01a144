"""--dtype bfloat16 and float16: a mixed-precision run's numbers, reproduced by torch itself.

For every conformance case, losscli's value on ``--dtype bfloat16`` (and float16) is torch's
on tensors of that dtype, bit for bit, and so are the gradients; a loss whose CPU kernel
lacks the dtype is one usage line, exit 2 (found by trying torch, not from a list). The JSON
``inputs`` say the dtype as stored and the dtype torch was given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_conformance import CASES, Case, gradient_arguments
from typer.testing import CliRunner

from losscli import options, pipeline
from losscli.cli import app
from losscli.errors import UsageError
from losscli.loaders import LoadedArray

runner = CliRunner()
LOW = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _tensors(case: Case, arrays: dict[str, np.ndarray], dtype: torch.dtype) -> dict[str, Any]:
    tensors = {}
    for name, values in arrays.items():
        tensor = torch.from_numpy(values)
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.requires_grad_(name in gradient_arguments(case.loss))
    return tensors


def _torch_options(case: Case, dtype: torch.dtype) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, value in case.options.items():
        if isinstance(value, str) and value.startswith("["):
            value = torch.tensor(json.loads(value), dtype=dtype)
        kwargs[name] = value
    return {**kwargs, "reduction": "mean"}


def _reference(case: Case, tensors: dict[str, Any], dtype: torch.dtype) -> Any:
    """torch's value, or the NotImplementedError of a loss with no CPU kernel in ``dtype``."""
    try:
        return case.reference(tensors, _torch_options(case, dtype))
    except NotImplementedError as error:
        return error


@pytest.mark.parametrize("dtype", list(LOW))
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_value_and_gradient_are_torchs_in_that_dtype(case: Case, dtype: str) -> None:
    arrays = case.arrays()
    tensors = _tensors(case, arrays, LOW[dtype])
    expected = _reference(case, tensors, LOW[dtype])
    spec = case.spec
    resolved = options.resolve(spec, {**case.options, "reduction": "mean"})
    inputs = {name: LoadedArray(values, f"{name}.npy") for name, values in arrays.items()}
    if isinstance(expected, NotImplementedError):
        with pytest.raises(UsageError) as refused:
            pipeline.evaluate(spec, inputs, resolved, float_dtype=dtype)
        line = refused.value.line()
        assert f"torch has no {dtype} kernel for {spec.name}" in line
        assert str(expected).splitlines()[0] in line
        return
    report = pipeline.evaluate(spec, inputs, resolved, float_dtype=dtype)
    computation = report.computation
    assert computation is not None, [f.to_dict() for f in report.findings]
    assert computation.dtype == dtype
    assert computation.value == expected.item()  # bit for bit
    names = gradient_arguments(case.loss)
    expected_gradients = torch.autograd.grad(expected, [tensors[n] for n in names])
    for name, expected_gradient in zip(names, expected_gradients, strict=True):
        got = torch.from_numpy(computation.gradients[name]).to(expected_gradient.dtype)
        assert torch.equal(got, expected_gradient), name
    for name, info in report.inputs.items():
        wanted = dtype if arrays[name].dtype.kind == "f" else str(arrays[name].dtype)
        assert info.torch_dtype == wanted


def test_no_kernel_is_one_usage_line(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    np.save(tmp_path / "t.npy", np.array([0, 2, 1, 0]))
    result = runner.invoke(
        app,
        [
            "compute",
            "multi-margin",
            str(tmp_path / "p.npy"),
            str(tmp_path / "t.npy"),
            "--dtype",
            "bfloat16",
        ],
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "torch has no bfloat16 kernel for multi-margin" in lines[0]
    assert "--dtype float32 or float64" in lines[0]


def test_bfloat16_checkpoint_reports_its_stored_dtype_and_reproduces_the_run(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    logits = torch.from_numpy(rng.normal(scale=3, size=(32, 5))).to(torch.bfloat16)
    labels = torch.from_numpy(rng.integers(0, 5, size=32))
    torch.save({"logits": logits, "labels": labels}, tmp_path / "step.pt")
    argv = ["compute", "cross-entropy", f"{tmp_path / 'step.pt'}:logits"]
    argv.append(f"{tmp_path / 'step.pt'}:labels")

    result = runner.invoke(app, [*argv, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    default = json.loads(result.stdout)
    assert default["inputs"]["input"]["dtype"] == "bfloat16"
    assert default["inputs"]["input"]["torch_dtype"] == "float32"
    assert default["dtype"] == "float32"
    assert default["value"] == F.cross_entropy(logits.float(), labels).item()

    result = runner.invoke(app, [*argv, "-f", "json", "--dtype", "bfloat16"])
    assert result.exit_code == 0, result.stderr
    asked = json.loads(result.stdout)
    assert asked["inputs"]["input"] == {
        "source": f"{tmp_path / 'step.pt'}:logits",
        "shape": [32, 5],
        "dtype": "bfloat16",
        "torch_dtype": "bfloat16",
    }
    assert asked["dtype"] == "bfloat16"
    assert asked["value"] == F.cross_entropy(logits, labels).item()
    # the value is torch's on bfloat16, so no dtype-conversion; low-precision knows it was asked
    (found,) = asked["findings"]
    assert found["name"] == "low-precision"
    assert "computed in bfloat16: the value a bfloat16 run sees" in found["message"]
    assert "(--dtype float32) shows that value" in found["fix"]
    assert "computed in float32" not in found["message"]


def test_float64_file_in_bfloat16_is_torchs_cast(tmp_path: Path) -> None:
    # 1 + 2^-8 + tiny: a float64 just above a bfloat16 tie, where a cast through float32 can
    # differ from torch's own; losscli casts with torch, from the values as stored
    rng = np.random.default_rng(9)
    predictions = np.concatenate([rng.normal(size=61), [1 + 2**-8 + 2**-30, 3.0 + 2**-7, -1.0]])
    targets = rng.normal(size=64)
    np.save(tmp_path / "p.npy", predictions)
    np.save(tmp_path / "t.npy", targets)
    result = runner.invoke(
        app,
        [
            "compute",
            "mse",
            str(tmp_path / "p.npy"),
            str(tmp_path / "t.npy"),
            "-f",
            "json",
            "--dtype",
            "bfloat16",
        ],
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    expected = F.mse_loss(
        torch.from_numpy(predictions).to(torch.bfloat16),
        torch.from_numpy(targets).to(torch.bfloat16),
    )
    assert record["value"] == expected.item()
    found = {(f["name"], f["message"]) for f in record["findings"]}
    assert (
        "dtype-conversion",
        f"input ({tmp_path / 'p.npy'}) converted from float64 to bfloat16",
    ) in found


def test_whole_numbers_from_text_that_bfloat16_rounds_are_named() -> None:
    # 257 is not a bfloat16 (8 bits of mantissa): the text's value would change
    result = runner.invoke(
        app,
        ["compute", "mse", "[257, 2, 3]", "[1, 2, 3]", "-f", "json", "--dtype", "bfloat16"],
    )
    assert result.exit_code == 0, result.stderr
    (found,) = json.loads(result.stdout)["findings"]
    assert found["name"] == "dtype-conversion"
    assert "that bfloat16 cannot represent exactly" in found["message"]
    assert "257, read as 256.0" in found["message"]


def test_help_offers_bfloat16() -> None:
    result = runner.invoke(app, ["compute", "--help"], env={"COLUMNS": "200"})
    assert "bfloat16" in result.stdout
