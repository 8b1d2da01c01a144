"""Text: how findings write numbers, shapes, positions and commands.

One spelling for every check: numbers to 4 significant digits, shapes as Python tuples,
positions as NumPy indices whose batch dimension is the global sample index (a chunk
starting at sample 1000 reports sample 1000, not 0). Commands are written by
:class:`losscli.invocation.Invocation`, from the command as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from losscli.checks import CheckContext


def number(value: float) -> str:
    """A number as messages print it: up to 4 significant digits."""
    return f"{value:.4g}"


def count(value: float) -> str:
    """A count: whole counts in full (524288, not 5.243e+05), soft counts to 4 digits."""
    return str(int(value)) if value.is_integer() else number(value)


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal (``0%`` of nothing)."""
    return f"{100.0 * part / whole:.1f}%" if whole else "0%"


def span(values: np.ndarray) -> str:
    """The finite values' range: ``-2.5 to 3``."""
    finite = values[np.isfinite(values)]
    return f"{number(float(finite.min()))} to {number(float(finite.max()))}"


def shape_text(shape: Sequence[int]) -> str:
    """A shape as messages print it: ``(4,)``, ``(4, 3)``, ``()``."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def described(context: CheckContext, argument: str) -> str:
    """An argument with its shape and file: ``input (4, 3) from pred.npy``."""
    return (
        f"{argument} {shape_text(context.arrays[argument].shape)} from {context.source(argument)}"
    )


def array_flag(values: np.ndarray) -> str:
    """Numbers as an inline array for an option: ``[0.5,2,1.25]``."""
    return "[" + ",".join(number(float(v)) for v in values) + "]"


def positions(
    context: CheckContext, argument: str, mask: np.ndarray, limit: int = 3
) -> list[list[int]]:
    """The first ``limit`` indices where ``mask`` (shaped like ``argument``) is True.

    The index along the argument's batch dimension (``Argument.batch_dim``: 0, or 1 for
    ctc's log_probs) is the global sample index (:meth:`CheckContext.sample`).
    """
    spec_argument = next((a for a in context.spec.arguments if a.name == argument), None)
    batch_dim = spec_argument.batch_dim if spec_argument is not None else 0
    found = []
    for index in np.argwhere(mask)[:limit]:
        listed = [int(i) for i in index]
        if len(listed) > batch_dim:
            listed[batch_dim] = context.sample(listed[batch_dim])
        found.append(listed)
    return found


def first(context: CheckContext, argument: str, mask: np.ndarray) -> tuple[int, ...]:
    """The first index where ``mask`` is True, with the global sample index (see :func:`positions`)."""
    return tuple(positions(context, argument, mask, limit=1)[0])


def position(index: Sequence[int]) -> str:
    """One index: ``index 5`` in a 1-D array, ``position [5, 2]`` otherwise."""
    return f"index {index[0]}" if len(index) == 1 else f"position {list(index)}"


def where(found: list[list[int]]) -> str:
    """Several indices: ``5, 9`` in a 1-D array, ``[5, 2], [9, 0]`` otherwise."""
    return ", ".join(str(p[0]) if len(p) == 1 else str(p) for p in found)
