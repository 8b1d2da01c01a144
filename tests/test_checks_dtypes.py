"""Dtype checks: mixed float dtypes (info) and low precision (the loss in float16/bfloat16 against float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losscli import losses, options, pipeline
from losscli.findings import Finding, Severity
from losscli.loaders import LoadedArray
from losscli.report import Report

RNG = np.random.default_rng(7)


def evaluate(loss: str, *loaded: LoadedArray, **given: object) -> Report:
    spec = losses.get(loss)
    assert spec is not None
    inputs = {a.name: array for a, array in zip(spec.arguments, loaded, strict=True)}
    return pipeline.evaluate(spec, inputs, options.resolve(spec, dict(given)))


def array(values: object, source: str, stored_dtype: str | None = None) -> LoadedArray:
    return LoadedArray(np.asarray(values), source, stored_dtype=stored_dtype)


def named(report: Report, name: str) -> list[Finding]:
    return [f for f in report.findings if f.name == name]


# --- mixed-float-dtypes --------------------------------------------------------------------------


def test_float32_predictions_against_float64_targets_from_csv() -> None:
    # model output saved with np.save (float32) against targets read by pandas (float64)
    predictions = array(RNG.random(10).astype(np.float32), "pred.npy")
    targets = array(RNG.random(10), "true.csv")
    (found,) = named(evaluate("mse", predictions, targets), "mixed-float-dtypes")
    assert found.severity is Severity.INFO
    assert "input (pred.npy) float32, target (true.csv) float64" in found.message
    assert "computed in float32" in found.message
    assert "target.to(input.dtype)" in found.fix


def test_same_float_dtype_or_integer_targets_are_not_mixed() -> None:
    same = evaluate(
        "mse", array(RNG.random(4).astype(np.float32), "a"), array(np.ones(4, np.float32), "b")
    )
    integer = evaluate(
        "bce-logits", array(RNG.normal(size=4).astype(np.float32), "a"), array([0, 1, 1, 0], "b")
    )
    assert not named(same, "mixed-float-dtypes") and not named(integer, "mixed-float-dtypes")


# --- low-precision ---------------------------------------------------------------------------------


def test_half_precision_logits_report_the_float16_and_float64_losses() -> None:
    # logits = model.half()(x); loss = F.cross_entropy(logits, y) outside autocast
    logits16 = (RNG.normal(scale=4, size=(64, 10))).astype(np.float16)
    labels = RNG.integers(0, 10, size=64)
    report = evaluate("cross-entropy", array(logits16, "logits.npy"), array(labels, "labels.npy"))
    (found,) = named(report, "low-precision")
    assert found.severity is Severity.WARNING
    # expected numbers: torch on the same stored values, in float16 and in float64
    half = float(F.cross_entropy(torch.from_numpy(logits16), torch.from_numpy(labels)))
    double = float(F.cross_entropy(torch.from_numpy(logits16).double(), torch.from_numpy(labels)))
    assert found.evidence["value_low"] == pytest.approx(half, abs=0)
    assert found.evidence["value_float64"] == pytest.approx(double, rel=1e-12)
    assert found.evidence["relative_error"] == pytest.approx(abs(half - double) / abs(double))
    assert f"{half:.6g} in float16" in found.message and f"{double:.8g} in float64" in found.message
    assert "input (logits.npy) stored as float16" in found.message
    assert "input.float()" in found.fix


def test_float16_sum_that_overflows_is_named() -> None:
    # 4096 squared errors of about 30^2 = 900 sum to ~3.7e6, above float16's 65504
    predictions = np.full(4096, 30.0, dtype=np.float16)
    report = evaluate(
        "mse",
        array(predictions + RNG.random(4096).astype(np.float16), "p.npy"),
        array(np.zeros(4096, np.float16), "t.npy"),
        reduction="sum",
    )
    (found,) = named(report, "low-precision")
    assert "overflows in float16" in found.message


def test_bfloat16_from_a_pt_file_is_computed_in_bfloat16() -> None:
    # a .pt bfloat16 tensor arrives widened to float32, with stored_dtype="bfloat16"
    stored = torch.randn(32, 5, dtype=torch.bfloat16)
    labels = RNG.integers(0, 5, size=32)
    report = evaluate(
        "cross-entropy",
        array(stored.float().numpy(), "out.pt", stored_dtype="bfloat16"),
        array(labels, "y.npy"),
    )
    (found,) = named(report, "low-precision")
    expected = float(F.cross_entropy(stored, torch.from_numpy(labels)))  # torch in bfloat16
    assert found.evidence["precision"] == "bfloat16"
    assert found.evidence["value_low"] == pytest.approx(expected, abs=0)
    assert "stored as bfloat16" in found.message


def test_ctc_in_float16_falls_back_to_the_computed_float32_value() -> None:
    # torch has no float16 ctc kernel on CPU: compare losscli's float32 value with float64
    log_probs = F.log_softmax(torch.randn(12, 1, 5), 2).half().numpy()
    report = evaluate(
        "ctc",
        array(log_probs, "lp.npy"),
        array([[1, 2, 3]], "t.npy"),
        array([12], "il.npy"),
        array([3], "tl.npy"),
    )
    (found,) = named(report, "low-precision")
    assert found.evidence["precision"] == "float32"


def test_float32_inputs_are_not_low_precision() -> None:
    report = evaluate(
        "mse",
        array(RNG.random(8).astype(np.float32), "a"),
        array(RNG.random(8).astype(np.float32), "b"),
    )
    assert not named(report, "low-precision")


def test_float16_target_with_float32_logits_says_what_torch_promotes_to() -> None:
    # mixup labels kept in float16 next to float32 logits: torch's bce-with-logits returns
    # float16 for this pair, mse promotes to float32; the message names the dtype torch used
    logits = RNG.normal(size=64).astype(np.float32)
    labels = (RNG.random(64) > 0.5).astype(np.float16)
    for loss, function in (
        ("bce-logits", F.binary_cross_entropy_with_logits),
        ("mse", F.mse_loss),
    ):
        report = evaluate(loss, array(logits, "logits.npy"), array(labels, "y.npy"))
        (found,) = named(report, "low-precision")
        expected = function(torch.from_numpy(logits), torch.from_numpy(labels))
        torch_dtype = str(expected.dtype).removeprefix("torch.")
        assert found.evidence["precision"] == torch_dtype
        assert found.evidence["value_low"] == pytest.approx(float(expected), abs=0)
        assert "target (y.npy) stored as float16" in found.message
        assert f"with input float32 as given, torch computes in {torch_dtype}" in found.message


def test_ctc_without_a_float16_kernel_says_so() -> None:
    log_probs = F.log_softmax(torch.randn(12, 1, 5), 2).half().numpy()
    report = evaluate(
        "ctc",
        array(log_probs, "lp.npy"),
        array([[1, 2, 3]], "t.npy"),
        array([12], "il.npy"),
        array([3], "tl.npy"),
    )
    (found,) = named(report, "low-precision")
    assert "torch has no float16 kernel for ctc on this device" in found.message


def test_float16_target_that_torch_refuses_next_to_float32_is_computed_all_in_float16() -> None:
    # F.binary_cross_entropy raises "Found dtype Half but expected Float" for this pair
    probabilities = RNG.random(32).astype(np.float32)
    labels = (RNG.random(32) > 0.5).astype(np.float16)
    with pytest.raises(RuntimeError, match="Found dtype"):
        F.binary_cross_entropy(torch.from_numpy(probabilities), torch.from_numpy(labels))
    report = evaluate("bce", array(probabilities, "p.npy"), array(labels, "y.npy"))
    (found,) = named(report, "low-precision")
    expected = F.binary_cross_entropy(
        torch.from_numpy(probabilities).half(), torch.from_numpy(labels)
    )
    assert found.evidence["value_low"] == pytest.approx(float(expected), abs=0)
    assert "torch refuses input float32 next to it, so everything in float16" in found.message


def test_float_class_labels_next_to_float32_logits_are_one_finding_with_one_fix() -> None:
    # labels saved as float64 (np.save of y.astype(float)) next to float32 logits: the labels
    # are class indices, which torch wants as int64, not floats of the logits' dtype
    logits = array(RNG.normal(size=(8, 3)).astype(np.float32), "logits.npy")
    for dtype in (np.float64, np.float32):
        labels = array(RNG.integers(0, 3, size=8).astype(dtype), "labels.npy")
        report = evaluate("cross-entropy", logits, labels)
        assert [f.name for f in report.findings] == ["float-class-target"]
        (found,) = report.findings
        assert found.severity is Severity.WARNING
        assert "target.long()" in found.fix and ".to(" not in found.fix
    # one-hot float64 rows next to float32 logits are probabilities: those are floats to torch
    one_hot = array(np.eye(3)[RNG.integers(0, 3, size=8)], "one_hot.npy")
    assert named(evaluate("cross-entropy", logits, one_hot), "mixed-float-dtypes")
