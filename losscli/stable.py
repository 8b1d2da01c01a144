"""Numerically stable numpy forms of the functions the checks read values through.

Checks judge values (is each row log-probabilities? which reading of the scores fits the
targets?); torch computes every loss value losscli reports. These are the shifted forms that
neither overflow on large scores nor lose the small ones, shared so that every check reads a
row the same way.
"""

from __future__ import annotations

import numpy as np


def logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(values))) along ``axis``, which is removed."""
    peak = np.max(values, axis=axis, keepdims=True)
    return np.squeeze(peak, axis=axis) + np.log(np.exp(values - peak).sum(axis=axis))


def log_softmax(values: np.ndarray, axis: int) -> np.ndarray:
    """``values`` minus their logsumexp along ``axis`` (the shape is kept)."""
    return values - np.expand_dims(logsumexp(values, axis), axis)


def softmax(values: np.ndarray, axis: int) -> np.ndarray:
    """exp of :func:`log_softmax`: every slice along ``axis`` sums to 1."""
    return np.exp(log_softmax(values, axis))


def sigmoid(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-values)), written with tanh so that no magnitude overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(values)))
