"""Options: resolve the command line's loss options for one loss, with torch's defaults.

An option given for a loss that does not take it is a usage error, never ignored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losscli.errors import LoadError, UsageError
from losscli.losses import LossSpec, Option, OptionType, flag_for


def resolve(spec: LossSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Options for ``spec``: torch keyword → value, defaults filled in.

    Args:
        spec: the loss.
        given: torch keyword → value for the options the user typed (None means not given).
            Tensor options are the raw text (inline JSON array or a file).
    """
    resolved: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        option = spec.option(name)
        if option is None:
            flag = flag_for(name)
            takes = ", ".join(o.flag for o in spec.options) or "no options"
            raise UsageError(f"{flag} does not apply to {spec.name} ({spec.name} takes {takes})")
        resolved[name] = _parse(spec, option, value)
    for option in spec.options:
        resolved.setdefault(option.name, option.default)
    return resolved


def _parse(spec: LossSpec, option: Option, value: Any) -> Any:
    if option.type is OptionType.TENSOR:
        return _tensor(option, str(value))
    if option.type is OptionType.CHOICE:
        text = str(value)
        if text not in option.choices:
            raise UsageError(
                f"{option.flag} for {spec.name} must be one of {', '.join(option.choices)}, got {value!r}"
            )
        return text
    if option.type is OptionType.INT:
        if isinstance(value, float) and not value.is_integer():
            raise UsageError(f"{option.flag} must be a whole number, got {value!r}")
        if option.choices and str(int(value)) not in option.choices:
            raise UsageError(
                f"{option.flag} for {spec.name} must be one of {', '.join(option.choices)}, got {value!r}"
            )
        return int(value)
    if option.type is OptionType.FLOAT:
        number = float(value)
        if not math.isfinite(number):
            raise UsageError(f"{option.flag} must be a finite number, got {value!r}")
        _check_range(spec, option, number)
        return number
    return bool(value)


def _check_range(spec: LossSpec, option: Option, number: float) -> None:
    """torch's own bounds (label_smoothing in [0, 1], delta > 0), as a usage error."""
    low, high = option.minimum, option.maximum
    too_low = low is not None and (number <= low if option.exclusive_minimum else number < low)
    too_high = high is not None and number > high
    if not (too_low or too_high):
        return
    if low is not None and high is not None:
        wanted = f"between {low:g} and {high:g}"
    elif low is not None:
        wanted = f"greater than {low:g}" if option.exclusive_minimum else f"at least {low:g}"
    else:
        wanted = f"at most {high:g}"
    raise UsageError(f"{option.flag} for {spec.name} must be {wanted}, got {number:g}")


def _tensor(option: Option, text: str) -> np.ndarray:
    from losscli.loaders import load
    from losscli.sources import parse_source

    try:
        loaded = load(parse_source(text))
    except LoadError as error:
        raise UsageError(f"{option.flag}: {error.line()}") from None
    values = np.asarray(loaded.values, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(np.size(values) - np.isfinite(values).sum())
        raise UsageError(
            f"{option.flag}: {loaded.source} holds {bad} NaN/Inf of {values.size} values; "
            "weights must be finite numbers"
        )
    return values


def json_ready(options: dict[str, Any]) -> dict[str, Any]:
    """Options with arrays written as lists, for JSON and tables."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in options.items()}
