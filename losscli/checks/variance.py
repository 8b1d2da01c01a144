"""Variance checks: gaussian-nll's ``var`` against what a variance is.

- ``nonpositive-variance``: a var <= 0, where torch clamps it to ``eps`` (a log-variance head
  passed as var has negative values);
- ``variance-miscalibrated``: a var whose squared errors grow like a standard deviation's
  (``var ** 2``) or a log-variance's (``var.exp()``) rather than a variance's, judged by the
  fit of each reading and the slope of log(error**2) on log(var).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from losscli import text
from losscli.checks import Check, CheckContext, Scope
from losscli.checks.arguments import as_float, has_role
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.losses import Role

# a log-variance head's outputs: exp of them stays a sane variance (e^±20)
_LOG_VARIANCE_BOUND = 20.0


def _log_variance_remedies(name: str, finite: np.ndarray, negative: int) -> tuple[Remedy, ...]:
    """``var = var.exp()`` where the negative values read as a log-variance head's output."""
    if not negative or not finite.size or float(np.abs(finite).max()) > _LOG_VARIANCE_BOUND:
        return ()
    return (
        Remedy(
            maps=(f"{name} = {name}.exp()",),
            note="if the model predicts the log-variance (the usual variance head)",
        ),
    )


def check_nonpositive_variance(context: CheckContext) -> Iterator[Finding]:
    """gaussian-nll variances must be > 0: torch rejects negatives and clamps zeros to eps."""
    for argument in context.spec.arguments:
        if argument.role is not Role.VARIANCE:
            continue
        variance = as_float(context.arrays[argument.name])
        finite = np.isfinite(variance)
        negative = int((finite & (variance < 0)).sum())
        zero = int((variance == 0).sum())
        if not negative and not zero:
            continue
        bad = finite & (variance <= 0)
        name = argument.name
        first = text.first(context, name, bad)
        eps = context.options.get("eps", 1e-6)
        consequence = (
            "torch rejects negative variances ('var has negative entry/entries')"
            if negative
            else f"torch clamps them to eps={eps}, so those terms become (input - target)^2 / {eps}"
        )
        yield finding(
            "nonpositive-variance",
            Severity.ERROR,
            f"gaussian-nll wants {name} > 0, but {name} ({context.source(name)}) holds {negative} negative "
            f"and {zero} zero values of {variance.size} ({text.percent(negative + zero, variance.size)}; min "
            f"{text.number(float(variance[finite].min()))}; first at {text.position(first)}): {consequence}",
            f"make the variance head positive: `{name} = F.softplus(raw_{name}) + 1e-6` "
            f"(or predict log-variance and pass `{name} = log_{name}.exp()`)",
            remedies=(
                *_log_variance_remedies(name, variance[finite], negative),
                Remedy(
                    outside=True,
                    code=f"{name} = F.softplus(raw_{name}) + 1e-6 in the model's variance head",
                    note="a variance head needs a positive activation",
                ),
            ),
            blocking=negative > 0,  # torch raises for a negative variance
            argument=name,
            negative=negative,
            zero=zero,
            first_position=list(first),
        )


# ---------------------------------------------------------------- gaussian-nll: which reading of var


# judged on at least this many finite, non-zero errors
_MIN_VARIANCE_SAMPLES = 30
# the better reading must vary: the standard deviation of its log at least this (an untrained
# softplus head sits at 0.7 +- 3%: sd 0.04 of log(var), 0.08 of log(var**2), 0.02 of var; a
# std head on standardised load_diabetes: 0.75 to 1.45 of log(var**2); a log-variance head on
# raw load_diabetes: 0.8 of var). A constant var says nothing about how errors grow with it.
_MIN_LOG_VARIANCE_SPREAD = 0.2
# a reading must beat var as given by this many nats in all, both with its scale fitted (the
# shape of how errors grow) and as given (the loss the remedy gives). Synthetic data, n=200:
# a std passed as var wins by 8 to 20 nats scale-fitted and 23 to 32 as given; a true
# variance (or one 4x over- or under-confident) loses to var**2 by 29 to 67 nats, and
# exp(var) of an overconfident head never gains more than 0.6 nats scale-fitted
_READING_NATS = 3.0
# errors must grow faster than var itself: the slope of log((input - target)**2) on log(var)
# is about 1 for a variance, 2 for a standard deviation (and about mean(var) for a log-variance)
_VARIANCE_SLOPE = 1.0
# exp(var) is only tried while it stays a sane variance
_EXP_READING_BOUND = 20.0
# the better reading must also match the size of the errors: mean(error**2 / reading) within
# this factor of 1. A calibrated sigma head (trained through Normal(mu, sigma)) passed as var:
# 0.46 to 1.02 for var**2 (load_diabetes standardised, synthetic heteroscedastic data); a
# var head still growing towards raw load_diabetes targets (errors in the thousands) makes
# var**2 fit better in shape, but its scale is 2.7 to 440: the head is untrained, not a std
_READING_SCALE = 2.5
# ... and where the errors are this many times off var as given (either way) while a reading
# matches them within _READING_SCALE, the size of the errors is the evidence: the scale-fitted
# shape must only not speak against the reading (a gain of 0 nats, not _READING_NATS). A log
# sigma-squared head on raw load_diabetes passed as var (148 held-out patients): errors 388 times
# var, exp(var) within 0.91 of them, but 2 nats of shape evidence; simulated variances 0.01 to
# 100 times off (1500 draws of 40 to 500 samples) fire 0.4% of the time with this rule
_FAR_OFF_SCALE = 10.0


@dataclass(frozen=True)
class _Reading:
    """One reading of gaussian-nll's var: what to apply to it, and how well it fits."""

    code: str
    meaning: str
    scaled: float
    plain: float
    scale: float
    spread: float


def _profiled_nll(squared: np.ndarray, variance: np.ndarray) -> float:
    """Mean gaussian-nll (without the constant) for ``variance`` times its best constant factor."""
    scale = float(np.mean(squared / variance))
    return 0.5 * (float(np.mean(np.log(variance))) + math.log(scale) + 1.0)


def _plain_nll(squared: np.ndarray, variance: np.ndarray) -> float:
    """Mean gaussian-nll (without the constant) for ``variance`` as it is."""
    return 0.5 * float(np.mean(np.log(variance) + squared / variance))


def _variance_pairs(context: CheckContext) -> tuple[np.ndarray, np.ndarray] | None:
    """The squared errors and var, element by element as torch pairs them, where they can be judged:
    every var positive and finite (nonpositive-variance judges the others), enough finite non-zero
    errors, and a var that varies."""
    spec = context.spec
    variance_argument = spec.argument(Role.VARIANCE)
    if variance_argument is None:
        return None
    predictions = as_float(context.arrays[spec.arguments[0].name])
    targets = as_float(context.arrays[spec.arguments[1].name])
    variance = as_float(context.arrays[variance_argument.name])
    if predictions.shape != targets.shape:
        return None
    if variance.ndim == predictions.ndim - 1 and variance.shape == predictions.shape[:-1]:
        variance = variance[..., None]
    try:
        variance = np.broadcast_to(variance, predictions.shape)
    except ValueError:
        return None
    if not np.all(np.isfinite(variance)) or not np.all(variance > 0):
        return None
    squared = (predictions - targets) ** 2
    keep = np.isfinite(squared) & (squared > 0)
    squared, variance = squared[keep], variance[keep]
    if squared.size < _MIN_VARIANCE_SAMPLES or np.ptp(variance) == 0:
        return None
    return squared, variance


def _reading(code: str, meaning: str, squared: np.ndarray, variance: np.ndarray) -> _Reading:
    return _Reading(
        code,
        meaning,
        _profiled_nll(squared, variance),
        _plain_nll(squared, variance),
        float(np.mean(squared / variance)),
        float(np.std(np.log(variance))),
    )


def _readings(name: str, squared: np.ndarray, variance: np.ndarray) -> list[_Reading]:
    """var read as a variance, a standard deviation and a log-variance."""
    readings = [
        _reading(name, "a variance", squared, variance),
        _reading(f"{name} ** 2", "a standard deviation", squared, variance**2),
    ]
    if float(variance.max()) <= _EXP_READING_BOUND:
        readings.append(_reading(f"{name}.exp()", "a log-variance", squared, np.exp(variance)))
    return readings


def _slope(squared: np.ndarray, variance: np.ndarray) -> float:
    """Least-squares slope of log(error**2) on log(var)."""
    log_var = np.log(variance)
    centred = log_var - log_var.mean()
    return float(np.dot(centred, np.log(squared)) / np.dot(centred, centred))


def check_variance_reading(context: CheckContext) -> Iterator[Finding]:
    """gaussian-nll var whose errors grow like a standard deviation's or a log-variance's."""
    pairs = _variance_pairs(context)
    if pairs is None:
        return
    squared, variance = pairs
    name = next(a.name for a in context.spec.arguments if a.role is Role.VARIANCE)
    given, *others = _readings(name, squared, variance)
    best = min(others, key=lambda reading: reading.scaled)
    count = squared.size
    slope = _slope(squared, variance)
    far_off = not 1 / _FAR_OFF_SCALE <= given.scale <= _FAR_OFF_SCALE
    shape_nats = 0.0 if far_off else _READING_NATS
    if (
        count * (given.scaled - best.scaled) < shape_nats
        or count * (given.plain - best.plain) < _READING_NATS
        or slope <= _VARIANCE_SLOPE
        or best.spread < _MIN_LOG_VARIANCE_SPREAD
        or not 1 / _READING_SCALE <= best.scale <= _READING_SCALE
    ):
        return
    yield finding(
        "variance-miscalibrated",
        Severity.WARNING,
        f"{name} from {context.source(name)} behaves like {best.meaning}, not a variance: over "
        f"{count} elements the squared errors (input - target)**2 grow with {name} to the power "
        f"{text.number(slope)} (a variance gives 1, a standard deviation 2), and gaussian-nll "
        f"per element is {text.number(given.plain - best.plain)} nats lower with {best.code} "
        f"({text.number(given.scaled - best.scaled)} with the best constant scale for each); "
        f"{best.code} also matches the size of the errors (mean error**2 / {best.code} = "
        f"{text.number(best.scale)})",
        f"pass a variance: F.gaussian_nll_loss(input, target, {best.code})",
        remedies=(
            Remedy(
                maps=(f"{name} = {best.code}",),
                note=f"if the model's {name} head predicts {best.meaning}",
            ),
        ),
        argument=name,
        reading=best.meaning,
        slope=slope,
        nll_gain=given.plain - best.plain,
        scaled_nll_gain=given.scaled - best.scaled,
        scale=best.scale,
    )


CHECKS: tuple[Check, ...] = (
    Check(
        check_nonpositive_variance,
        ("nonpositive-variance",),
        Scope.CHUNK,
        applies=has_role(Role.VARIANCE),
    ),
    # how errors grow with var over every element: the values as a whole
    Check(
        check_variance_reading,
        ("variance-miscalibrated",),
        Scope.SAMPLE,
        applies=has_role(Role.VARIANCE),
    ),
)
