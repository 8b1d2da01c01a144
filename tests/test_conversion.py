"""conversion.py: every cast is reported, casts that would change values are refused, and
``--strict`` hands torch exactly what was loaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losscli import losses, options, pipeline
from losscli.conversion import Converted, convert
from losscli.findings import Finding, Severity
from losscli.loaders import LoadedArray
from losscli.report import Report


def _spec(name: str) -> losses.LossSpec:
    spec = losses.get(name)
    assert spec is not None
    return spec


def _inputs(**arrays: np.ndarray) -> dict[str, LoadedArray]:
    return {name: LoadedArray(np.asarray(values), f"{name}.npy") for name, values in arrays.items()}


def _convert(
    loss: str, float_dtype: str = "float32", strict: bool = False, **arrays: np.ndarray
) -> Converted:
    return convert(_spec(loss), _inputs(**arrays), float_dtype, strict)


def _evaluate(
    loss: str, strict: bool = False, float_dtype: str = "float32", **arrays: np.ndarray
) -> Report:
    spec = _spec(loss)
    return pipeline.evaluate(
        spec, _inputs(**arrays), options.resolve(spec, {}), float_dtype, strict
    )


def _named(findings: list[Finding] | tuple[Finding, ...], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def test_float_inputs_become_float32_by_default_and_each_cast_is_reported() -> None:
    converted = _convert("mse", input=np.array([1.5, 2.0]), target=np.array([1.0, 0.25]))
    assert converted.arrays["input"].dtype == np.float32
    assert converted.arrays["target"].dtype == np.float32
    assert [f.severity for f in converted.findings] == [Severity.INFO, Severity.INFO]
    assert {f.evidence["argument"] for f in converted.findings} == {"input", "target"}
    assert not converted.blocked


def test_float32_inputs_are_left_alone() -> None:
    converted = _convert(
        "mse", input=np.array([1.5], dtype=np.float32), target=np.array([1.0], dtype=np.float32)
    )
    assert converted.findings == []
    assert converted.arrays["input"].dtype == np.float32


def test_dtype_float64_computes_in_double_precision() -> None:
    input_values = np.array([0.1, 0.7, 1.3], dtype=np.float32)
    target_values = np.array([0.3, 0.3, 0.3])
    converted = _convert("mse", "float64", input=input_values, target=target_values)
    assert converted.arrays["input"].dtype == np.float64
    assert converted.arrays["target"].dtype == np.float64
    # only the float32 input was cast; the float64 target already had the dtype
    assert [f.evidence["argument"] for f in converted.findings] == ["input"]

    report = _evaluate("mse", float_dtype="float64", input=input_values, target=target_values)
    assert report.computation is not None
    assert report.computation.dtype == "float64"
    expected = F.mse_loss(torch.from_numpy(input_values).double(), torch.from_numpy(target_values))
    assert report.value == expected.item()


def test_integer_targets_for_a_float_loss_are_cast_with_an_info_finding() -> None:
    converted = _convert("bce-logits", input=np.array([0.3, -1.2, 2.0]), target=np.array([1, 0, 1]))
    assert converted.arrays["target"].dtype == np.float32
    assert converted.arrays["target"].tolist() == [1.0, 0.0, 1.0]
    (note,) = _named(converted.findings, "int-target-for-float-loss")
    assert note.severity is Severity.INFO
    assert note.evidence["from_dtype"] == "int64"
    assert "target.float()" in note.fix


def test_boolean_masks_are_integer_targets_too() -> None:
    converted = _convert("bce-logits", input=np.array([0.3, -1.2]), target=np.array([True, False]))
    assert converted.arrays["target"].tolist() == [1.0, 0.0]
    assert _named(converted.findings, "int-target-for-float-loss")


def test_integer_predictions_are_a_plain_conversion_not_a_target_finding() -> None:
    converted = _convert("mse", input=np.array([1, 2]), target=np.array([1.0, 2.0]))
    assert converted.arrays["input"].dtype == np.float32
    assert not _named(converted.findings, "int-target-for-float-loss")
    assert [f.evidence["argument"] for f in converted.findings] == ["input", "target"]


def test_int_target_value_equals_torch_on_the_float_target() -> None:
    input_values, target_values = np.array([0.5, 1.5, 3.0]), np.array([1, 2, 2])
    report = _evaluate("mse", input=input_values, target=target_values)
    expected = F.mse_loss(
        torch.tensor([0.5, 1.5, 3.0], dtype=torch.float32),
        torch.tensor([1, 2, 2]).float(),
    )
    assert report.value == expected.item()  # (0.25 + 0.25 + 1) / 3 = 0.5
    assert report.value == 0.5


def _torch_refusal(call: object, *tensors: torch.Tensor) -> str:
    """The RuntimeError torch raises on ``tensors`` (fails the test when it computes)."""
    with pytest.raises(RuntimeError) as raised:
        call(*tensors)  # type: ignore[operator]
    return str(raised.value)


_SCORES = np.array([[0.2, -1.0, 0.5, 2.0], [1.0, 0.0, -0.5, 0.1], [0.3, 0.3, -2.0, 1.2]])


@pytest.mark.parametrize(
    ("loss", "call", "labels"),
    [
        ("cross-entropy", F.cross_entropy, [0.0, 3.0, 1.0]),
        ("nll", F.nll_loss, [0.0, 3.0, 1.0]),
        ("multi-margin", F.multi_margin_loss, [0.0, 3.0, 1.0]),
        ("multilabel-margin", F.multilabel_margin_loss, [[0, 3, -1, -1]] * 3),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_integral_float_class_indices_are_cast_with_a_warning_quoting_torch(
    loss: str, call: object, labels: list[object], dtype: type
) -> None:
    """torch raises on float class indices: losscli casts them but warns with torch's own words."""
    target = np.array(labels, dtype=dtype)
    converted = _convert(loss, input=_SCORES, target=target)
    assert converted.arrays["target"].dtype == np.int64
    assert converted.arrays["target"].tolist() == np.array(labels).astype(np.int64).tolist()
    (note,) = _named(converted.findings, "float-class-target")
    assert note.severity is Severity.WARNING
    assert not converted.blocked
    refusal = _torch_refusal(
        call, torch.tensor(_SCORES, dtype=torch.float32), torch.from_numpy(target)
    )
    assert refusal in note.message
    assert note.evidence["torch_error"] == refusal


def test_integral_float_ctc_lengths_warn_with_torch_error_and_float_ctc_labels_do_not() -> None:
    """torch's ctc_loss casts float label sequences itself, but refuses float lengths."""
    log_probs = torch.randn(6, 2, 5, generator=torch.Generator().manual_seed(0)).log_softmax(2)
    labels = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    lengths = np.array([6.0, 6.0], dtype=np.float32)
    two = np.array([2, 2])
    converted = _convert(
        "ctc",
        log_probs=log_probs.numpy(),
        targets=labels,
        input_lengths=lengths,
        target_lengths=two,
    )
    by_argument = {
        f.evidence["argument"]: f for f in _named(converted.findings, "float-class-target")
    }
    accepted = F.ctc_loss(
        log_probs, torch.from_numpy(labels), torch.tensor([6, 6]), torch.tensor(two)
    )
    assert torch.isfinite(accepted)  # torch computes with float labels: only reported
    assert by_argument["targets"].severity is Severity.INFO
    refusal = _torch_refusal(
        F.ctc_loss,
        log_probs,
        torch.from_numpy(labels).long(),
        torch.from_numpy(lengths),
        torch.tensor(two),
    )
    assert refusal == "input_lengths must be integral"
    assert by_argument["input_lengths"].severity is Severity.WARNING
    assert refusal in by_argument["input_lengths"].message


def test_integral_float_class_indices_are_still_computed_after_the_cast() -> None:
    labels = np.array([0.0, 3.0, 1.0], dtype=np.float32)
    report = _evaluate("cross-entropy", input=_SCORES.astype(np.float32), target=labels)
    expected = F.cross_entropy(torch.tensor(_SCORES, dtype=torch.float32), torch.tensor([0, 3, 1]))
    assert report.value == expected.item()
    assert [f.severity for f in report.findings if f.name == "float-class-target"] == [
        Severity.WARNING
    ]


def test_fractional_class_indices_are_an_error_and_torch_is_not_called() -> None:
    scores = np.array([[2.0, 0.1, -1.0], [0.3, 0.2, 0.1], [0.0, 1.0, 0.0]])
    labels = np.array([0.0, 1.5, 2.0])
    converted = _convert("cross-entropy", input=scores, target=labels)
    assert converted.blocked
    (error,) = _named(converted.findings, "float-class-target")
    assert error.severity is Severity.ERROR
    assert error.evidence["count"] == 1
    assert error.evidence["first_position"] == [1]
    assert "first at index 1: 1.5)" in error.message  # a plain number, not np.float64(1.5)

    report = _evaluate("cross-entropy", input=scores, target=labels)
    assert report.computation is None
    assert report.value is None


def test_non_finite_class_indices_are_an_error() -> None:
    converted = _convert("nll", input=np.zeros((2, 3)), target=np.array([1.0, np.nan]))
    assert converted.blocked
    assert _named(converted.findings, "float-class-target")[0].severity is Severity.ERROR


@pytest.mark.parametrize(
    ("loss", "call", "labels"),
    [
        ("cross-entropy", F.cross_entropy, [0, 3, 1]),
        ("nll", F.nll_loss, [0, 3, 1]),
        ("multi-margin", F.multi_margin_loss, [0, 3, 1]),
        ("multilabel-margin", F.multilabel_margin_loss, [[0, 3, 1, 2]] * 3),
    ],
)
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int16, np.int8, np.bool_])
def test_narrow_integer_indices_are_widened_with_a_warning_where_torch_refuses_them(
    loss: str, call: object, labels: list[object], dtype: type
) -> None:
    """int32 labels (numpy's default int on Windows, pandas' int32 columns) crash
    F.cross_entropy; uint8 ones do not. The verdict is torch's own, run here."""
    target = np.array(labels).astype(dtype)
    converted = _convert(loss, input=_SCORES, target=target)
    assert converted.arrays["target"].dtype == np.int64
    assert not converted.blocked
    (note,) = [
        f
        for f in _named(converted.findings, "dtype-conversion")
        if f.evidence["argument"] == "target"
    ]
    scores = torch.tensor(_SCORES, dtype=torch.float32)
    try:
        call(scores, torch.from_numpy(target))  # type: ignore[operator]
    except RuntimeError as refused:
        assert note.severity is Severity.WARNING
        assert str(refused).splitlines()[0] in note.message
        assert note.evidence["torch_error"] == str(refused).splitlines()[0]
    else:
        assert note.severity is Severity.INFO
    assert note.remedies[0].maps == ("target = target.long()",)


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint8])
def test_narrow_integer_ctc_targets_are_widened_quietly_as_torch_takes_them(dtype: type) -> None:
    converted = _convert(
        "ctc",
        log_probs=np.log(np.full((6, 2, 4), 0.25, dtype=np.float32)),
        targets=np.array([[1, 2], [3, 1]], dtype=dtype),
        input_lengths=np.array([6, 6], dtype=dtype),
        target_lengths=np.array([2, 2], dtype=dtype),
    )
    assert not converted.blocked
    assert {f.severity for f in _named(converted.findings, "dtype-conversion")} <= {Severity.INFO}


def test_int64_indices_are_left_alone() -> None:
    converted = _convert(
        "nll", input=np.zeros((2, 3), dtype=np.float32), target=np.array([2, 0], dtype=np.int64)
    )
    assert converted.findings == []


def test_uint64_indices_beyond_int64_are_refused() -> None:
    huge = np.array([1, 2**63 + 5], dtype=np.uint64)
    converted = _convert("nll", input=np.zeros((2, 3)), target=huge)
    assert converted.blocked
    assert converted.findings[-1].severity is Severity.ERROR


def test_cross_entropy_target_shaped_like_the_input_is_read_as_probabilities() -> None:
    probabilities = np.array([[0.2, 0.8], [0.5, 0.5]])
    converted = _convert("cross-entropy", input=np.zeros((2, 2)), target=probabilities)
    assert converted.soft_target
    assert converted.arrays["target"].dtype == np.float32

    one_hot = np.array([[0, 1], [1, 0]])
    converted = _convert("cross-entropy", input=np.zeros((2, 2)), target=one_hot)
    assert converted.soft_target
    assert converted.arrays["target"].dtype == np.float32
    assert "probabilities" in _named(converted.findings, "int-target-for-float-loss")[0].message


def test_unbatched_cross_entropy_target_shaped_like_the_input() -> None:
    # torch reads a target shaped like the input as probabilities, for a 1-D input too
    scores = np.array([0.5, -1.0, 2.0])
    probabilities = np.array([0.2, 0.5, 0.3])
    assert _convert("cross-entropy", input=scores, target=probabilities).soft_target
    assert _convert("cross-entropy", strict=True, input=scores, target=probabilities).soft_target
    # near misses: whole-number labels next to one score per sample are a binary task given
    # to cross-entropy, left as class indices so the shape checks explain it
    for labels in (np.array([0.0, 1.0, 1.0]), np.array([0, 1, 1])):
        converted = _convert("cross-entropy", input=scores, target=labels)
        assert not converted.soft_target
        assert converted.arrays["target"].dtype == np.int64


def test_ctc_lengths_are_widened_to_int64() -> None:
    converted = _convert(
        "ctc",
        log_probs=np.log(np.full((4, 1, 3), 1 / 3)),
        targets=np.array([[1, 2]], dtype=np.int32),
        input_lengths=np.array([4], dtype=np.int32),
        target_lengths=np.array([2.0]),
    )
    for name in ("targets", "input_lengths", "target_lengths"):
        assert converted.arrays[name].dtype == np.int64
    assert converted.arrays["log_probs"].dtype == np.float32


# ---------------------------------------------------------------------------------------
# --strict


def test_strict_converts_nothing() -> None:
    converted = _convert(
        "nll",
        strict=True,
        input=np.zeros((2, 3)),
        target=np.array([2, 0], dtype=np.int32),
    )
    assert converted.findings == []
    assert converted.arrays["input"].dtype == np.float64
    assert converted.arrays["target"].dtype == np.int32


def test_strict_computes_in_the_dtypes_torch_would_see() -> None:
    # torch promotes float64 input and float32 target to float64
    input_values = np.array([0.1, 0.7, 1.3])
    target_values = np.array([0.3, 0.2, 0.1], dtype=np.float32)
    report = _evaluate("mse", strict=True, input=input_values, target=target_values)
    assert report.computation is not None
    assert report.computation.dtype == "float64"
    expected = F.mse_loss(torch.from_numpy(input_values), torch.from_numpy(target_values))
    assert report.value == expected.item()


def test_strict_soft_target_detection_needs_a_float_target_shaped_like_the_input() -> None:
    probabilities = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert _convert(
        "cross-entropy", strict=True, input=np.zeros((2, 2)), target=probabilities
    ).soft_target
    indices = np.array([1, 0])
    assert not _convert(
        "cross-entropy", strict=True, input=np.zeros((2, 2)), target=indices
    ).soft_target


@pytest.mark.parametrize(
    ("loss", "arrays", "torch_says"),
    [
        # torch: "expected target dtype to be Long or Byte, but got Float"
        (
            "cross-entropy",
            {
                "input": np.zeros((3, 4), dtype=np.float32),
                "target": np.array([0.0, 1.0, 2.0], dtype=np.float32),
            },
            "Long",
        ),
        # torch: "result type Float can't be cast to the desired output type Long"
        (
            "bce-logits",
            {"input": np.array([0.5, -0.5, 1.0], dtype=np.float32), "target": np.array([1, 0, 1])},
            "Long",
        ),
    ],
)
def test_strict_torch_rejection_becomes_a_torch_rejected_finding(
    loss: str, arrays: dict[str, np.ndarray], torch_says: str
) -> None:
    report = _evaluate(loss, True, "float32", **arrays)
    assert report.computation is None
    (rejected,) = _named(report.findings, "torch-rejected")
    assert rejected.severity is Severity.ERROR
    assert torch_says in rejected.message
    # the same inputs without --strict are converted and computed
    assert _evaluate(loss, False, "float32", **arrays).computation is not None


def test_mask_divided_by_255_gets_the_recovering_fix() -> None:
    # a segmentation mask of classes {0, 1, 2} after transforms.ToTensor(): values k / 255
    mask = (np.array([[0, 1], [2, 1]], dtype=np.float32) / 255.0).reshape(2, 2)
    spec = losses.get("nll")
    assert spec is not None
    log_probabilities = np.log(np.full((2, 3, 2), 1 / 3, dtype=np.float32))
    inputs = {
        "input": LoadedArray(log_probabilities, "logits.npy"),
        "target": LoadedArray(mask.reshape(2, 2), "mask.npy"),
    }
    converted = convert(spec, inputs)
    assert converted.blocked
    (note,) = [f for f in converted.findings if f.name == "float-class-target"]
    assert "(target * 255).round().long()" in note.fix


def test_fractional_labels_that_are_not_a_scaled_mask_keep_the_generic_fix() -> None:
    spec = losses.get("nll")
    assert spec is not None
    inputs = {
        "input": LoadedArray(np.zeros((2, 3), dtype=np.float32), "logits.npy"),
        "target": LoadedArray(np.array([0.5, 1.0], dtype=np.float32), "labels.npy"),
    }
    (note,) = [f for f in convert(spec, inputs).findings if f.name == "float-class-target"]
    assert "255" not in note.fix and "integer class labels" in note.fix


def test_a_float64_value_beyond_float32_range_is_an_error_not_a_silent_inf() -> None:
    # SPEC: a conversion that would change values is an error; 1e39 > float32 max (3.4e38)
    spec = losses.get("mse")
    assert spec is not None
    inputs = {
        "input": LoadedArray(np.array([1.0, 1e39]), "inline"),
        "target": LoadedArray(np.array([1.0, 2.0]), "inline"),
    }
    report = pipeline.evaluate(spec, inputs, options.resolve(spec, {}))
    (overflow,) = [f for f in report.findings if f.severity is Severity.ERROR]
    assert overflow.name == "dtype-conversion" and "1e+39" in overflow.message
    assert "--dtype float64" in overflow.fix
    assert report.computation is None  # torch never saw an inf that was not in the data
    # the near miss: the same values in float64 compute, and equal torch's value
    computed = pipeline.evaluate(spec, inputs, options.resolve(spec, {}), "float64")
    assert computed.computation is not None
    expected = F.mse_loss(
        torch.tensor([1.0, 1e39], dtype=torch.float64),
        torch.tensor([1.0, 2.0], dtype=torch.float64),
    )
    assert computed.value == expected.item()
