"""Dtype checks: mixed float dtypes and low precision."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from losscli.checks import CheckContext, InputCheck, ResultCheck
from losscli.findings import Finding, Severity, finding
from losscli.loaders import LoadedArray
from losscli.result import Computation

# storage dtypes whose rounding is large enough to move a loss
_LOW_PRECISION = ("float16", "bfloat16")


def _stored(loaded: LoadedArray) -> str:
    """The dtype the file stored (a bfloat16 tensor is widened to float32 when loaded)."""
    return loaded.stored_dtype or str(loaded.values.dtype)


def _stored_float(context: CheckContext) -> dict[str, str]:
    """Argument name → the float dtype it was stored in (float arguments only)."""
    return {
        a.name: _stored(context.inputs[a.name])
        for a in context.spec.arguments
        if context.inputs[a.name].values.dtype.kind == "f"
    }


def check_mixed_float_dtypes(context: CheckContext) -> Iterator[Finding]:
    """Float inputs stored in different dtypes (float64 predictions, float32 targets)."""
    stored = _stored_float(context)
    if len(set(stored.values())) < 2:
        return
    computed = sorted(
        {
            str(context.arrays[name].dtype)
            for name in stored
            if context.arrays[name].dtype.kind == "f"
        }
    )
    listed = ", ".join(f"{name} ({context.source(name)}) {dtype}" for name, dtype in stored.items())
    names = list(stored)
    yield finding(
        "mixed-float-dtypes",
        Severity.INFO,
        f"the inputs are stored in different float dtypes: {listed}; losscli computed in "
        f"{' and '.join(computed)}",
        f"in PyTorch, cast to one dtype before the loss, `{names[1]} = {names[1]}.to({names[0]}.dtype)` "
        "(torch raises 'expected scalar type Float but found Double' for several losses)",
        dtypes=stored,
    )


def _loss_in(context: CheckContext, precision: str) -> float | None:
    """The loss with every float argument in ``precision`` (the summed loss for 'none').

    None when torch has no kernel for this loss in that precision on this device.
    """
    import torch

    from losscli.compute import loss_function, to_tensor

    dtype = getattr(torch, precision)
    function = loss_function(context.spec, context.options, context.soft_target)
    tensors = []
    for argument in context.spec.arguments:
        tensor = to_tensor(context.arrays[argument.name])
        tensors.append(tensor.to(dtype) if tensor.is_floating_point() else tensor)
    reduction = str(context.options.get("reduction", "mean"))
    try:
        with torch.no_grad():
            loss = function(*tensors, reduction=reduction).to(torch.float64)
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
        return None
    return float(loss.sum().item())


def _total(computation: Computation) -> float:
    """The value, or the per-sample sum when there is none (reduction 'none')."""
    if computation.value is not None:
        return float(computation.value)
    return float(np.sum(computation.per_sample))


def check_low_precision(context: CheckContext, computation: Computation) -> Iterator[Finding]:
    """Inputs stored in float16/bfloat16: the loss in that precision against float64."""
    low = {name: dtype for name, dtype in _stored_float(context).items() if dtype in _LOW_PRECISION}
    if not low:
        return
    exact = _loss_in(context, "float64")
    if exact is None:
        return
    precision = "bfloat16" if "bfloat16" in low.values() else "float16"
    rounded = _loss_in(context, precision)
    if rounded is None:  # torch has no kernel for this loss in that precision on this device
        precision, rounded = computation.dtype, _total(computation)
    listed = ", ".join(f"{name} ({context.source(name)})" for name in low)
    stored = "/".join(sorted(set(low.values())))
    if not np.isfinite(rounded):
        comparison = f"the loss overflows in {precision} ({rounded}) but is {exact:.8g} in float64"
        relative = float("inf")
    else:
        relative = abs(rounded - exact) / max(abs(exact), np.finfo(np.float64).tiny)
        comparison = (
            f"the loss is {rounded:.6g} in {precision} against {exact:.8g} in float64 "
            f"(relative error {relative:.2e})"
        )
    yield finding(
        "low-precision",
        Severity.WARNING,
        f"{listed} stored as {stored}: {comparison}; losscli's value was computed in {computation.dtype}",
        "keep the loss in float32: `loss_fn(input.float(), target.float())` (torch.autocast already runs "
        "most losses in float32); compare with --dtype float64",
        arguments=list(low),
        precision=precision,
        value_low=rounded if np.isfinite(rounded) else None,
        value_float64=exact,
        relative_error=relative if np.isfinite(relative) else None,
    )


CHECKS: tuple[InputCheck, ...] = (check_mixed_float_dtypes,)
RESULT_CHECKS: tuple[ResultCheck, ...] = (check_low_precision,)
