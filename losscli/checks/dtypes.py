"""Dtype checks: inputs stored in different float dtypes, and in float16/bfloat16."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from losscli.checks import Check, CheckContext, Scope
from losscli.findings import Finding, Severity, finding
from losscli.loaders import LoadedArray
from losscli.losses import Argument, DType

# storage dtypes whose rounding is large enough to move a loss
_LOW_PRECISION = ("float16", "bfloat16")


def _stored(loaded: LoadedArray) -> str:
    """The dtype the file stored (a bfloat16 tensor is widened to float32 when loaded)."""
    return loaded.stored_dtype or str(loaded.values.dtype)


def _stored_float(context: CheckContext) -> dict[str, str]:
    """Argument name → the float dtype it was stored in (float arguments stored in a binary
    file; text has no dtype)."""
    return {
        a.name: _stored(context.inputs[a.name])
        for a in context.spec.arguments
        if context.inputs[a.name].values.dtype.kind == "f" and not context.inputs[a.name].from_text
    }


def _takes_floats(argument: Argument, context: CheckContext) -> bool:
    """torch takes ``argument`` as floats: not class indices, which are int64 whatever the file
    stored (float labels there are float-class-target's, whose fix is ``.long()``)."""
    if argument.dtype is DType.CLASS:
        return context.soft_target
    return argument.dtype is DType.FLOAT


def check_mixed_float_dtypes(context: CheckContext) -> Iterator[Finding]:
    """Float inputs stored in different dtypes (float64 predictions, float32 targets).

    Only the arguments torch takes as floats count: whole-number class indices stored as
    float64 next to float32 logits are one mistake (float-class-target), not two.
    """
    floats = {a.name for a in context.spec.arguments if _takes_floats(a, context)}
    stored = {name: dtype for name, dtype in _stored_float(context).items() if name in floats}
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


def check_low_precision(context: CheckContext) -> Iterator[Finding]:
    """Inputs stored in float16/bfloat16: the loss in that precision against float64."""
    computation = context.computation
    if computation is None or computation.totals.precision is None:
        return
    low = {name: dtype for name, dtype in _stored_float(context).items() if dtype in _LOW_PRECISION}
    if not low:
        return
    probe = computation.totals.precision
    exact, rounded, precision = probe.exact, probe.low, probe.low_dtype
    floats = set(_stored_float(context))
    mixed = set(low) != floats
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
            if probe.promoted
            else f"torch refuses {others} next to it, so everything in {precision}: "
        ) + comparison
    if probe.no_kernel:
        comparison = (
            f"torch has no {stored} kernel for {context.spec.name} "
            f"on this device, so compare losscli's {precision} value instead: " + comparison
        )
    yield finding(
        "low-precision",
        Severity.WARNING,
        f"{listed} stored as {stored}: {comparison}; " + _computed_in(computation.dtype, precision),
        _low_precision_fix(computation.dtype, precision),
        arguments=list(low),
        precision=precision,
        value_low=rounded if np.isfinite(rounded) else None,
        value_float64=exact if np.isfinite(exact) else None,
        relative_error=relative if np.isfinite(relative) else None,
    )


def _computed_in(dtype: str, precision: str) -> str:
    """What losscli's value is: in the low precision when the compute dtype is that one
    (``--dtype bfloat16``, or a bfloat16 tensor given to ``losscli.check``)."""
    if dtype == precision:
        return f"losscli's value was computed in {dtype}: the value a {dtype} run sees"
    return f"losscli's value was computed in {dtype}"


def _low_precision_fix(dtype: str, precision: str) -> str:
    """Keep the loss in float32; the command that shows that value."""
    fix = (
        "keep the loss in float32: `loss_fn(input.float(), target.float())` (torch.autocast "
        "already runs most losses in float32)"
    )
    if dtype == precision:
        return (
            fix
            + "; computing in float32 (--dtype float32) shows that value, in float64 the exact one"
        )
    return fix + "; compare with --dtype float64"


CHECKS: tuple[Check, ...] = (
    # the dtypes the files stored, not their values
    Check(check_mixed_float_dtypes, ("mixed-float-dtypes",), Scope.SHAPES),
    Check(check_low_precision, ("low-precision",), Scope.RESULT),
)
