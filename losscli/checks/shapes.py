"""Shape checks: empty inputs, shapes that cannot work, and shapes that silently broadcast."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from losscli.checks import CheckContext, InputCheck
from losscli.findings import Finding, Severity, finding
from losscli.losses import Role

# target roles that must match the prediction's shape element for element
_ELEMENTWISE_TARGETS = (
    Role.TARGET,
    Role.BINARY_TARGET,
    Role.SIGN_TARGET,
    Role.COUNT_TARGET,
    Role.DISTRIBUTION_TARGET,
)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_empty(context: CheckContext) -> Iterator[Finding]:
    for argument in context.spec.arguments:
        values = context.inputs[argument.name].values
        if values.size == 0:
            yield finding(
                "empty-input",
                Severity.ERROR,
                f"{argument.name} ({context.source(argument.name)}) has zero elements (shape {_shape(values.shape)})",
                "check the file or the column selection: an empty batch has no loss",
                blocking=True,
                argument=argument.name,
                shape=list(values.shape),
            )


def check_elementwise_shapes(context: CheckContext) -> Iterator[Finding]:
    """Element-wise losses need the target shaped exactly like the prediction."""
    spec = context.spec
    prediction = spec.arguments[0]
    if prediction.role is not Role.PREDICTION:
        return
    predicted = context.arrays[prediction.name]
    for argument in spec.arguments[1:]:
        if argument.role not in _ELEMENTWISE_TARGETS or spec.arguments[0].name != "input":
            continue
        target = context.arrays[argument.name]
        if target.shape == predicted.shape or predicted.size == 0 or target.size == 0:
            continue
        names = (
            f"{prediction.name} {_shape(predicted.shape)} from {context.source(prediction.name)}"
        )
        other = f"{argument.name} {_shape(target.shape)} from {context.source(argument.name)}"
        try:
            broadcast = np.broadcast_shapes(predicted.shape, target.shape)
        except ValueError:
            broadcast = None
        if broadcast is None:
            if predicted.ndim >= 2 and target.ndim >= 1 and predicted.shape[0] != target.shape[0]:
                name = "batch-size-mismatch"
                message = (
                    f"{spec.name} wants {argument.name} shaped like {prediction.name}; "
                    f"N={predicted.shape[0]} in {context.source(prediction.name)} but N={target.shape[0]} "
                    f"in {context.source(argument.name)}"
                )
            else:
                name = "shape-mismatch"
                message = f"{spec.name} wants {argument.name} shaped like {prediction.name}: {names}, {other}"
            yield finding(
                name,
                Severity.ERROR,
                message,
                "make both come from the same batch (same number of samples, same layout)",
                blocking=True,
                shapes={prediction.name: list(predicted.shape), argument.name: list(target.shape)},
            )
            continue
        squeeze = _squeeze_fix(predicted.shape, target.shape, prediction.name, argument.name)
        yield finding(
            "silent-broadcast",
            Severity.ERROR,
            f"{names} and {other} broadcast to {_shape(broadcast)}: torch compares every {prediction.name} "
            f"with every {argument.name} and averages {int(np.prod(broadcast))} terms instead of "
            f"{max(predicted.size, target.size)}",
            squeeze,
            shapes={prediction.name: list(predicted.shape), argument.name: list(target.shape)},
            broadcast=list(broadcast),
        )


def _squeeze_fix(
    predicted: tuple[int, ...], target: tuple[int, ...], p_name: str, t_name: str
) -> str:
    if len(predicted) == len(target) + 1 and predicted[-1] == 1:
        return f"squeeze the extra dimension: loss_fn({p_name}.squeeze(-1), {t_name})"
    if len(target) == len(predicted) + 1 and target[-1] == 1:
        return f"squeeze the extra dimension: loss_fn({p_name}, {t_name}.squeeze(-1))"
    return f"reshape so both have the same shape: {t_name}.view_as({p_name})"


CHECKS: tuple[InputCheck, ...] = (check_empty, check_elementwise_shapes)
