"""Conversion: turn loaded arrays into the dtypes a loss needs, reporting every change.

A cast of a binary input (npy, npz, Parquet, .pt) that keeps every value is an ``info``
finding; text (CSV, standard input, inline arrays) has no dtype, so numbers read from it
that convert without changing a value are no finding. A conversion that would change
values (a fractional class index, a float beyond the range of the compute dtype) is an
``error`` and the argument is left as it was. With ``strict`` nothing is converted, so
torch sees exactly what was loaded.

Chunks of one input are converted alike: whether cross-entropy's target holds class
probabilities is decided once (:func:`soft_target_of`, from the whole input or its first
chunk: it depends on shapes, and for 1-D inputs, which are never split, on values), and
positions in messages count from the chunk's ``offset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from losscli.findings import Finding, Remedy, Severity, finding
from losscli.loaders import LoadedArray
from losscli.losses import Argument, DType, LossSpec, Role, torch_error
from losscli.text import position

# the numpy dtype that holds each compute dtype; numpy has no bfloat16, so bfloat16 values
# (rounded by torch itself) are held exactly in float32 and torch computes on them as bfloat16
FLOAT_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "bfloat16": np.float32,
}
# largest finite value of each compute dtype (bfloat16's is (2 - 2^-7) * 2^127)
_LARGEST = {
    "float32": float(np.finfo(np.float32).max),
    "float64": float(np.finfo(np.float64).max),
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": 3.3895313892515355e38,
}
# every whole number up to this magnitude is exact in the dtype (2^(mantissa bits + 1))
_EXACT_WHOLE = {"float32": 2.0**24, "float64": 2.0**53, "float16": 2.0**11, "bfloat16": 2.0**8}
# roles whose values a model produces: integers there are not targets cast to float
_MODEL_OUTPUTS = (Role.PREDICTION, Role.VARIANCE, Role.LOG_PROBS)
# the findings conversion raises (the checks and the pipeline raise the others)
FINDINGS = ("dtype-conversion", "float-class-target", "int-target-for-float-loss")


def can_raise(name: str, spec: LossSpec) -> bool:
    """Whether converting the arguments of ``spec`` can raise finding ``name``.

    Every loss has a float argument to cast (``dtype-conversion``); class indices may come as
    floats (``float-class-target``); float targets may come as integers
    (``int-target-for-float-loss``).
    """
    if name == "dtype-conversion":
        return True
    if name == "float-class-target":
        return any(a.dtype in (DType.INDEX, DType.CLASS) for a in spec.arguments)
    if name == "int-target-for-float-loss":
        return any(
            a.dtype in (DType.FLOAT, DType.CLASS) and a.role not in _MODEL_OUTPUTS
            for a in spec.arguments
        )
    return False


@dataclass(frozen=True)
class Converted:
    """The arrays handed to torch, by argument name, and what converting them found.

    Attributes:
        arrays: argument name → array in the dtype torch will see.
        findings: the conversions made (info) and refused (error).
        blocked: True when an argument could not be converted, so torch must not run.
        soft_target: cross-entropy's target holds class probabilities, not indices.
    """

    arrays: dict[str, np.ndarray]
    findings: list[Finding]
    blocked: bool
    soft_target: bool = False


def soft_target_of(spec: LossSpec, inputs: dict[str, LoadedArray], strict: bool = False) -> bool:
    """Whether cross-entropy's target holds class probabilities (torch's rule: shaped like the input)."""
    prediction = inputs[spec.arguments[0].name].values
    for argument in spec.arguments:
        if argument.dtype is DType.CLASS:
            values = inputs[argument.name].values
            if strict and values.dtype.kind != "f":
                return False
            return _is_probability_target(values, prediction)
    return False


def convert(
    spec: LossSpec,
    inputs: dict[str, LoadedArray],
    float_dtype: str = "float32",
    strict: bool = False,
    *,
    soft_target: bool | None = None,
    offset: int = 0,
) -> Converted:
    """Convert each argument of ``spec`` to the dtype it needs.

    Args:
        spec: the loss.
        inputs: argument name → loaded array (or one chunk of it), for every argument.
        float_dtype: the float dtype of float arguments (``float32``, ``float64``, ``float16``,
            ``bfloat16``: values rounded to bfloat16, held in float32).
        strict: convert nothing.
        soft_target: cross-entropy's target holds probabilities, as decided for the whole
            input; None decides it from ``inputs``.
        offset: the global index of the first sample of ``inputs`` (for positions).
    """
    if soft_target is None:
        soft_target = soft_target_of(spec, inputs, strict)
    arrays: dict[str, np.ndarray] = {}
    findings: list[Finding] = []
    blocked = False
    for argument in spec.arguments:
        loaded = inputs[argument.name]
        values = loaded.values
        if strict:
            arrays[argument.name] = np.asarray(values)
            continue
        wants = argument.dtype
        if wants is DType.CLASS:
            wants = DType.FLOAT if soft_target else DType.INDEX
        if wants is DType.FLOAT:
            converted, note = _to_float(argument, loaded, float_dtype, soft_target, offset)
        else:
            as_index, note = _to_index(argument, loaded, spec.call, offset)
            if as_index is None:
                blocked = True
            converted = np.asarray(values) if as_index is None else as_index
        arrays[argument.name] = converted
        if note is not None:
            findings.append(note)
    return Converted(arrays=arrays, findings=findings, blocked=blocked, soft_target=soft_target)


def _global(index: tuple[int, ...], argument: Argument, offset: int) -> tuple[int, ...]:
    """A position in a chunk as a position in the whole input."""
    if not offset or len(index) <= argument.batch_dim:
        return index
    shifted = list(index)
    shifted[argument.batch_dim] += offset
    return tuple(shifted)


def _is_probability_target(target: np.ndarray, prediction: np.ndarray) -> bool:
    """Cross-entropy reads a target shaped like the input as class probabilities (torch's rule).

    A 1-D input is one unbatched sample of C scores; a 1-D target shaped like it is read as
    probabilities only when it holds fractions, so whole-number labels next to one score per
    sample (a binary task given to cross-entropy) still reach the shape checks.
    """
    if target.shape != prediction.shape or target.ndim == 0:
        return False
    if target.ndim >= 2:
        return True
    if target.dtype.kind != "f":
        return False
    finite = target[np.isfinite(target)]
    return bool(np.any(np.floor(finite) != finite))


def stored_dtype(loaded: LoadedArray) -> str:
    """The dtype the file stored (a bfloat16 tensor arrives widened to float32)."""
    return loaded.stored_dtype or str(loaded.values.dtype)


def cast(values: np.ndarray, float_dtype: str) -> np.ndarray:
    """``values`` in compute dtype ``float_dtype``, as torch's ``.to()`` gives them.

    The half precisions are rounded by torch itself: its float64 → float16 cast goes through
    float32 and can differ from numpy's in the last bit. bfloat16, which numpy lacks, is held
    in float32 (exactly: every bfloat16 is a float32).
    """
    if float_dtype not in ("bfloat16", "float16"):
        return np.asarray(values, dtype=FLOAT_DTYPES[float_dtype])
    import torch

    array = np.asarray(values)
    if array.dtype.kind != "f":  # integers and bools: exact in float64 below 2^53
        array = array.astype(np.float64)
    # writable: torch warns on a read-only array (a memory-mapped file, a caller's tensor)
    tensor = torch.from_numpy(np.require(array, requirements=("C", "W")))
    if float_dtype == "float16":
        return tensor.to(torch.float16).numpy()
    return tensor.to(torch.bfloat16).to(torch.float32).numpy()


def _to_float(
    argument: Argument,
    loaded: LoadedArray,
    float_dtype: str,
    soft_target: bool,
    offset: int = 0,
) -> tuple[np.ndarray, Finding | None]:
    values = loaded.values
    # already what torch computes on (a bfloat16 tensor, widened to float32, is bfloat16's)
    if values.dtype == FLOAT_DTYPES[float_dtype] and (
        float_dtype != "bfloat16" or stored_dtype(loaded) == "bfloat16"
    ):
        return np.asarray(values), None
    with np.errstate(over="ignore", invalid="ignore"):
        converted = cast(values, float_dtype)
    low, high = _ends(values)
    # finite ends within the dtype's range: nothing overflowed (no value to look for)
    overflowed = (
        None
        if max(-low, high) <= _LARGEST[float_dtype]
        else np.isfinite(values) & ~np.isfinite(converted)
    )
    if overflowed is not None and overflowed.any():
        local = tuple(int(i) for i in np.argwhere(overflowed)[0])
        first = _global(local, argument, offset)
        count = int(overflowed.sum())
        return converted, finding(
            "dtype-conversion",
            Severity.ERROR,
            f"{argument.name} ({loaded.source}) holds {count} {values.dtype} value(s) beyond the range of "
            f"{float_dtype} (largest finite {_LARGEST[float_dtype]:.4g}; first at "
            f"{position(first)}: {values[local].item()!r}): casting would turn them into inf",
            "compute in double precision with --dtype float64, or rescale the values"
            if float_dtype != "float64"
            else "rescale the values",
            blocking=True,
            argument=argument.name,
            count=count,
            first_position=list(first),
        )
    if loaded.from_text:  # text has no dtype: its numbers are read as the loss needs them
        if max(-low, high) <= _EXACT_WHOLE[float_dtype]:  # every whole number stays exact
            return converted, None
        return converted, _rounded_whole_numbers(argument, loaded, converted, float_dtype, offset)
    is_target = argument.role not in _MODEL_OUTPUTS
    if values.dtype.kind in "biu" and is_target:
        # the cast that gives the compute dtype itself (float16 has no method in --map)
        method = {"float64": "double", "bfloat16": "bfloat16"}.get(float_dtype, "float")
        if soft_target:
            message = (
                f"{argument.name} ({loaded.source}) holds {values.dtype} values shaped like the input; "
                f"cross-entropy reads them as class probabilities, so they were cast to {float_dtype}"
            )
        else:
            message = f"{argument.name} ({loaded.source}) holds {values.dtype} values; cast to {float_dtype} as the loss needs"
        return converted, finding(
            "int-target-for-float-loss",
            Severity.INFO,
            message,
            f"in PyTorch, pass {argument.name}.{method}() (torch raises 'Found dtype Long but expected Float')",
            remedies=(Remedy(maps=(f"{argument.name} = {argument.name}.{method}()",)),),
            argument=argument.name,
            from_dtype=str(values.dtype),
            to_dtype=float_dtype,
        )
    return converted, finding(
        "dtype-conversion",
        Severity.INFO,
        f"{argument.name} ({loaded.source}) converted from {stored_dtype(loaded)} to {float_dtype}",
        "use --dtype float64 to compute in double precision" if float_dtype == "float32" else "",
        argument=argument.name,
        from_dtype=stored_dtype(loaded),
        to_dtype=float_dtype,
    )


def _ends(values: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value, or (-inf, inf) when there are none or a NaN is among
    them: two fast passes that stand for the masks of finite values when both ends are
    finite."""
    if not values.size:
        return -math.inf, math.inf
    low, high = float(values.min()), float(values.max())
    if math.isnan(low) or math.isnan(high):
        return -math.inf, math.inf
    return low, high


def _rounded_whole_numbers(
    argument: Argument, loaded: LoadedArray, converted: np.ndarray, float_dtype: str, offset: int
) -> Finding | None:
    """Whole numbers written as text that the compute dtype cannot hold exactly.

    Decimals are approximations in any binary dtype; a whole number is exact, so a cast that
    changes one (16777217 in float32) changes the data. Judged on the values, not on whether
    the text's column happened to parse as integers, so every chunk of a file agrees.
    """
    values = np.asarray(loaded.values)
    as64 = values.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(as64) & (np.floor(as64) == as64)
        changed = whole & (np.asarray(converted, dtype=np.float64) != as64)
    if not changed.any():
        return None
    local = tuple(int(i) for i in np.argwhere(changed)[0])
    count = int(changed.sum())
    return finding(
        "dtype-conversion",
        Severity.INFO,
        f"{argument.name} ({loaded.source}) holds {count} whole number(s) that {float_dtype} "
        f"cannot represent exactly (first at {position(_global(local, argument, offset))}: "
        f"{values[local].item()!r}, read as {converted[local].item()!r})",
        "compute in double precision with --dtype float64",
        argument=argument.name,
        count=count,
    )


def _to_index(
    argument: Argument, loaded: LoadedArray, call: str, offset: int = 0
) -> tuple[np.ndarray | None, Finding | None]:
    values = loaded.values
    if values.dtype == np.int64:
        return np.asarray(values), None
    if values.dtype.kind in "biu" and loaded.from_text:
        return values.astype(np.int64), None  # text has no dtype
    if values.dtype.kind in "biu":
        if values.dtype == np.uint64 and values.size and int(values.max()) > np.iinfo(np.int64).max:
            return None, finding(
                "dtype-conversion",
                Severity.ERROR,
                f"{argument.name} ({loaded.source}) holds uint64 values too large for int64",
                "store the indices as int64",
                argument=argument.name,
            )
        return values.astype(np.int64), _integer_indices(argument, loaded, call)
    # float class indices: cast only when every value is a finite integer
    finite = np.isfinite(values)
    fractional = finite & (np.floor(values) != values)
    if not finite.all() or fractional.any():
        bad = np.argwhere(~finite | fractional)
        example = values[tuple(int(i) for i in bad[0])].item()
        first = _global(tuple(int(i) for i in bad[0]), argument, offset)
        count = len(bad)
        return None, finding(
            "float-class-target",
            Severity.ERROR,
            f"{argument.name} ({loaded.source}) holds float values used as class indices, and "
            f"{count} of {values.size} are not whole numbers (first at {position(first)}: {example!r}); "
            "casting them would change the labels",
            _fractional_class_fix(argument.name, values[finite]),
            remedies=_fractional_class_remedies(argument.name, values[finite]),
            argument=argument.name,
            count=count,
            first_position=list(first),
        )
    if loaded.from_text:
        return values.astype(np.int64), None  # whole numbers written as text: class indices
    return values.astype(np.int64), _whole_float_indices(argument, loaded, call)


def _integer_indices(argument: Argument, loaded: LoadedArray, call: str) -> Finding:
    """Integer class indices of another dtype than int64: cast to int64.

    Where torch itself refuses the dtype (int32 labels to cross-entropy: it takes int64 and
    uint8 only), the training script crashes on these inputs. Where torch accepts it (uint8
    to cross-entropy, any integer for ctc), the cast is only reported.
    """
    dtype = str(loaded.values.dtype)
    refused = bool(argument.integer_dtypes) and dtype not in argument.integer_dtypes
    return _cast_to_int64(
        "dtype-conversion",
        argument,
        loaded,
        call if refused else "",
        f"{dtype} class indices",
        f"converted from {dtype} to int64 (class indices)",
    )


def _whole_float_indices(argument: Argument, loaded: LoadedArray, call: str) -> Finding:
    """Float class indices that are all whole numbers: cast to int64, as the value needs.

    Where torch itself raises on floats (cross-entropy, nll, the margin losses, ctc
    lengths), the training script crashes on these inputs. Where torch accepts them (ctc
    targets), the cast is only reported.
    """
    dtype = str(loaded.values.dtype)
    noun = "lengths" if argument.role is Role.LENGTHS else "class indices"
    return _cast_to_int64(
        "float-class-target",
        argument,
        loaded,
        call if argument.dtype_error else "",
        f"{dtype} {noun} ({loaded.values.size} values, all whole numbers)",
        f"holds {dtype} {noun}, all whole numbers; cast to int64",
    )


def _cast_to_int64(
    name: str, argument: Argument, loaded: LoadedArray, refused_by: str, held: str, cast: str
) -> Finding:
    """The cast of ``argument`` to int64 as finding ``name``: a warning quoting torch's own
    error when ``refused_by`` (torch's call) raises on the dtype, an info otherwise.

    Args:
        held: what the argument holds, for the warning (``int32 class indices``).
        cast: what was done, for the info (``converted from int32 to int64 ...``).
    """
    dtype = str(loaded.values.dtype)
    evidence: dict[str, Any] = {}
    if not refused_by:
        severity, message = Severity.INFO, f"{argument.name} ({loaded.source}) {cast}"
        fix = f"in PyTorch, pass {argument.name}.long()"
    else:
        error = torch_error(argument.dtype_error, dtype)
        severity = Severity.WARNING
        message = (
            f"{argument.name} ({loaded.source}) holds {held}: {refused_by} raises "
            f'"RuntimeError: {error}" on them; losscli cast them to int64 to compute the value'
        )
        fix = f"pass {argument.name}.long() where the labels are read or saved (torch wants int64)"
        evidence["torch_error"] = error
    return finding(
        name,
        severity,
        message,
        fix,
        remedies=(Remedy(maps=(f"{argument.name} = {argument.name}.long()",)),),
        argument=argument.name,
        from_dtype=dtype,
        to_dtype="int64",
        **evidence,
    )


def _divided_by_255(finite_values: np.ndarray) -> bool:
    """Values k/255: a label mask that ``transforms.ToTensor()`` divided by 255."""
    scaled = finite_values * 255.0
    return bool(
        finite_values.size
        and finite_values.min() >= 0
        and finite_values.max() <= 1
        and np.allclose(scaled, np.round(scaled), atol=1e-3)
    )


def _fractional_class_remedies(name: str, finite_values: np.ndarray) -> tuple[Remedy, ...]:
    """Class indices back from a mask divided by 255; nothing to read from other fractions."""
    if not _divided_by_255(finite_values):
        return ()
    return (
        Remedy(
            maps=(f"{name} = ({name} * 255).round().long()",),
            note="a label mask that ToTensor() divided by 255",
        ),
    )


def _fractional_class_fix(name: str, finite_values: np.ndarray) -> str:
    """The fix for fractional class indices, knowing masks that ToTensor() divided by 255."""
    if _divided_by_255(finite_values):
        return (
            f"these look like a label mask that transforms.ToTensor() divided by 255 (values k/255): "
            f"recover the labels with ({name} * 255).round().long(), or load masks with "
            "transforms.PILToTensor()"
        )
    return (
        "pass integer class labels; if these are probabilities or soft labels, give one column per class "
        "(shaped like the input)"
    )
