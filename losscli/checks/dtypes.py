"""Dtype checks: inputs stored in different float dtypes, and in float16/bfloat16."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from losscli.checks import Check, CheckContext, Scope
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


def _loss_in(
    context: CheckContext, precision: str, only: frozenset[str] | None = None
) -> tuple[float, str] | None:
    """The loss with float arguments in ``precision``, computed by torch (see compute.value_in)."""
    from losscli.compute import value_in

    return value_in(
        context.spec, context.arrays, context.options, context.soft_target, precision, only
    )


def _total(computation: Computation) -> float:
    """The value, or the per-sample sum when there is none (reduction 'none')."""
    if computation.value is not None:
        return float(computation.value)
    return float(np.sum(computation.per_sample))


def check_low_precision(context: CheckContext) -> Iterator[Finding]:
    """Inputs stored in float16/bfloat16: the loss in that precision against float64."""
    computation = context.computation
    if computation is None:
        return
    low = {name: dtype for name, dtype in _stored_float(context).items() if dtype in _LOW_PRECISION}
    if not low:
        return
    exact_result = _loss_in(context, "float64")
    if exact_result is None:
        return
    exact = exact_result[0]
    precision = "bfloat16" if "bfloat16" in low.values() else "float16"
    floats = set(_stored_float(context))
    # as stored: the low-precision arguments in their dtype, the others as computed; torch
    # promotes (or refuses, and the user has to cast everything to one dtype)
    mixed = set(low) != floats
    result = _loss_in(context, precision, frozenset(low)) if mixed else None
    promoted = result is not None
    if result is None:
        result = _loss_in(context, precision)
    no_kernel = result is None
    if result is None:  # torch has no kernel for this loss in that precision on this device
        result = (_total(computation), computation.dtype)
    rounded, precision = result
    listed = ", ".join(f"{name} ({context.source(name)})" for name in low)
    stored = "/".join(sorted(set(low.values())))
    if not np.isfinite(exact):
        comparison = (
            f"the loss is {exact} even in float64, so the NaN/Inf comes from the values "
            "(see non-finite-input), not from the precision"
        )
        relative = float("nan")
    elif not np.isfinite(rounded):
        comparison = f"the loss overflows in {precision} ({rounded}) but is {exact:.8g} in float64"
        relative = float("inf")
    else:
        relative = abs(rounded - exact) / max(abs(exact), np.finfo(np.float64).tiny)
        comparison = (
            f"the loss is {rounded:.6g} in {precision} against {exact:.8g} in float64 "
            f"(relative error {relative:.2e})"
        )
    if mixed:
        others = ", ".join(
            f"{name} {context.arrays[name].dtype}" for name in sorted(floats - set(low))
        )
        comparison = (
            f"with {others} as given, torch computes in {precision}: "
            if promoted
            else f"torch refuses {others} next to it, so everything in {precision}: "
        ) + comparison
    if no_kernel:
        comparison = (
            f"torch has no {'/'.join(sorted(set(low.values())))} kernel for {context.spec.name} "
            f"on this device, so compare losscli's {precision} value instead: " + comparison
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
        value_float64=exact if np.isfinite(exact) else None,
        relative_error=relative if np.isfinite(relative) else None,
    )


CHECKS: tuple[Check, ...] = (
    # the dtypes the files stored, not their values
    Check(check_mixed_float_dtypes, ("mixed-float-dtypes",), Scope.SHAPES),
    Check(check_low_precision, ("low-precision",), Scope.RESULT),
)
