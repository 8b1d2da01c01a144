"""Option values coerced without the validation library when the answer is plain.

Typer 0.29 coerces every parameter through a pydantic ``TypeAdapter``, built the first time
the parameter is processed, even when it was not given: importing pydantic and building
compute's ~37 adapters is ~0.17 s of a run that otherwise takes little more than torch's
import. Most values are plain (a word for a ``str`` option, digits for an ``int``, a
choice's exact name, an option left out), and their coercion is not in doubt; those are
coerced here. Any other value, and every value Typer would refuse, goes to Typer's own
coercion, so that a refusal, its message and every edge case stay Typer's by construction.
``tests/test_coercion.py`` holds the two to the same answer on every parameter.
"""

from __future__ import annotations

import enum
import re
from typing import Any, get_args, get_origin

# digits only: int() would also take '1_000', '٣' and spaces, which pydantic may not
_WHOLE = re.compile(r"[+-]?[0-9]+\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


class _Declined:
    """The plain coercion has no answer: Typer's decides."""


DECLINED = _Declined()


def plain_value(annotation: Any, value: Any, bounds: tuple[Any, Any] = (None, None)) -> Any:
    """``value`` as Typer would coerce it to ``annotation``, or :data:`DECLINED`.

    Args:
        annotation: the parameter's type as Typer resolved it (``Optional`` removed).
        value: the value as parsed: a string, a tuple of strings, or the default.
        bounds: the smallest and largest value an int or float option accepts.
    """
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if not isinstance(value, (list, tuple)):
            return DECLINED
        items = [plain_value(item, one, bounds) for one in value]
        return DECLINED if any(one is DECLINED for one in items) else items
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if isinstance(value, annotation):
            return value
        for member in annotation:
            if isinstance(value, str) and value == str(member.value):
                return member
        return DECLINED
    if annotation is str:
        return value if isinstance(value, str) else DECLINED
    if annotation is int:
        number = _number(value, _WHOLE, int)
    elif annotation is float:
        number = _number(value, _DECIMAL, float)
    else:
        return DECLINED
    low, high = bounds
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        return DECLINED
    return number


def _number(value: Any, pattern: re.Pattern[str], kind: type) -> Any:
    if isinstance(value, str):
        if not pattern.match(value):
            return None
        try:
            return kind(value)
        except ValueError:  # past int()'s 4300 digits: Typer's refusal
            return None
    if type(value) is kind:  # a default (never a bool for an int)
        return value
    return None


class PlainFirst:
    """A parameter's coercion: :func:`plain_value`, else Typer's own (built only then)."""

    def __init__(self, param: Any) -> None:
        self._param = param
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multiple = param.multiple or param.nargs == -1
        if value is None:
            return () if multiple else None
        if not (multiple and isinstance(value, str)):
            bounds = (getattr(param, "min", None), getattr(param, "max", None))
            plain = plain_value(param.type_descriptor.annotation, value, bounds)
            if plain is not DECLINED:
                return plain
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(param.type_descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def plain_first(params: list[Any]) -> list[Any]:
    """Put :class:`PlainFirst` in front of each Typer parameter's coercion.

    A Typer without per-parameter coercion objects (before 0.2x: click's types, which cost
    nothing) is left as it is. A clamping parameter is left to Typer.
    """
    for param in params:
        parameter_info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
        if parameter_info is None or not hasattr(param, "_runtime_param"):
            continue
        if getattr(parameter_info, "clamp", False) or param._runtime_param is not None:
            continue
        param._runtime_param = PlainFirst(param)
    return params
