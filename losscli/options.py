"""Options: resolve the loss options for one loss, with torch's defaults.

The command line gives them as typed text (``--weight '[1, 2]'``, ``--weight w.npy``); the
Python API as Python values (``weight=torch.tensor([1., 2.])``, already a NumPy array here).
Both are judged by the same rules, and messages name an option the way it was given: a flag
(``--label-smoothing``) or a keyword (``label_smoothing=``). An option given for a loss that
does not take it is a usage error, never ignored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losscli.errors import LoadError, UsageError
from losscli.losses import LossSpec, Option, OptionType, flag_for


def resolve(spec: LossSpec, given: dict[str, Any], *, keywords: bool = False) -> dict[str, Any]:
    """Options for ``spec``: torch keyword → value, defaults filled in.

    Args:
        spec: the loss.
        given: torch keyword → value for the options given (None means not given). Tensor
            options are the raw text (inline JSON array or a file) or an array.
        keywords: name options in messages as Python keywords (``label_smoothing=``), for
            the Python API, rather than as flags.
    """
    spell = _keyword if keywords else flag_for
    resolved: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        option = spec.option(name)
        if option is None:
            takes = ", ".join(spell(o.name) for o in spec.options) or "no options"
            raise UsageError(
                f"{spell(name)} does not apply to {spec.name} ({spec.name} takes {takes})"
            )
        resolved[name] = _parse(spec, option, value, spell(name))
    for option in spec.options:
        resolved.setdefault(option.name, option.default)
    return resolved


def _keyword(name: str) -> str:
    return f"{name}="


def _parse(spec: LossSpec, option: Option, value: Any, named: str) -> Any:
    if option.type is OptionType.TENSOR:
        if isinstance(value, str):
            return _tensor(named, value)
        return _finite_weights(named, np.asarray(value, dtype=np.float64), "the array")
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a 0-d tensor's value
        value = value.item()
    if option.type is OptionType.CHOICE:
        text = str(value)
        if text not in option.choices:
            raise UsageError(
                f"{named} for {spec.name} must be one of {', '.join(option.choices)}, got {value!r}"
            )
        return text
    if option.type is OptionType.INT:
        if isinstance(value, float) and not value.is_integer():
            raise UsageError(f"{named} must be a whole number, got {value!r}")
        if option.choices and str(int(value)) not in option.choices:
            raise UsageError(
                f"{named} for {spec.name} must be one of {', '.join(option.choices)}, got {value!r}"
            )
        return int(value)
    if option.type is OptionType.FLOAT:
        number = float(value)
        if not math.isfinite(number):
            raise UsageError(f"{named} must be a finite number, got {value!r}")
        _check_range(spec, option, number, named)
        return number
    return bool(value)


def _check_range(spec: LossSpec, option: Option, number: float, named: str) -> None:
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
    raise UsageError(f"{named} for {spec.name} must be {wanted}, got {number:g}")


def _tensor(named: str, text: str) -> np.ndarray:
    from losscli.loaders import load
    from losscli.sources import parse_source

    try:
        loaded = load(parse_source(text))
    except LoadError as error:
        raise UsageError(f"{named}: {error.line()}") from None
    return _finite_weights(named, np.asarray(loaded.values, dtype=np.float64), loaded.source)


def _finite_weights(named: str, values: np.ndarray, source: str) -> np.ndarray:
    if not np.isfinite(values).all():
        bad = int(np.size(values) - np.isfinite(values).sum())
        raise UsageError(
            f"{named}: {source} holds {bad} NaN/Inf of {values.size} values; "
            "weights must be finite numbers"
        )
    return values


def json_ready(options: dict[str, Any]) -> dict[str, Any]:
    """Options with arrays written as lists, for JSON and tables."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in options.items()}
