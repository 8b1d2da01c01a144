"""Readings: scores in [0, 1] against binary targets, read as logits and as probabilities.

Scores that all lie in [0, 1] may be sigmoid output (probabilities) or logits that happen to
lie there: a classifier initialised with the prior (small weights, output bias
log(p / (1 - p)) for the positive rate p) puts every logit in a narrow band around
logit(p), inside [0, 1] for p between 0.5 and 0.73. The values alone cannot tell them
apart; the targets can: whichever reading is the model's own is calibrated against them.
:func:`sigmoid_readings` measures both, for the ``probabilities-as-logits`` check and for
task inference.

Measured on breast_cancer subsampled to positive rates 0.55-0.7, whole and in random
batches of 8-64: trained models' sigmoid outputs fit 0.26-0.48 nats per element better as
probabilities, with a calibration error (over bins of the scores) of at most 0.35 times the
logit reading's; prior-initialised logits, up to a few SGD steps on, fit up to 0.155 nats
better as probabilities in whole data (and more in batches of 8-16, by chance), but as
logits they stay calibrated: their Hosmer-Lemeshow statistic stays within chance, which is
what rules them out (2 alarms in about 4000 batches, against every whole dataset quiet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from losscli import stable, text

# fewer values than this say nothing about which reading fits
FEWEST_VALUES = 8
# the probability reading must fit by at least this many nats per element ...
_PROBABILITY_FIT_NATS = 0.05
# ... with at most this share of the logit reading's calibration error ...
_CALIBRATION_SHARE = 0.5
# ... and the logit reading must be rejected: its Hosmer-Lemeshow statistic (chi-squared
# with one degree of freedom per bin when the reading is right) this many standard
# deviations above its mean
_REJECTED_SIGMAS = 4.0
# bins of the sorted scores: at most this many, with at least this many values each
_BINS = 10
_VALUES_PER_BIN = 8
# torch's bce clamps its logs at -100; a probability this close to 0 or 1 is clipped here
_CLIP = 1e-7


@dataclass(frozen=True)
class SigmoidReadings:
    """Scores in [0, 1] read as logits and as probabilities, against binary targets.

    Attributes:
        loss_as_logits: mean binary cross-entropy of sigmoid(scores), nats per element.
        loss_as_probabilities: mean binary cross-entropy of the scores themselves.
        calibration_as_logits: mean |target rate - sigmoid(scores)| over bins of the
            scores, weighted by their sizes.
        calibration_as_probabilities: the same for the scores themselves.
        logits_rejected: the logit reading's calibration is beyond chance (Hosmer-Lemeshow).
    """

    loss_as_logits: float
    loss_as_probabilities: float
    calibration_as_logits: float
    calibration_as_probabilities: float
    logits_rejected: bool

    @property
    def probabilities_fit_better(self) -> bool:
        """The probability reading is clearly the right one: a better fit and calibration,
        and the logit reading rejected."""
        return (
            self.logits_rejected
            and self.loss_as_logits - self.loss_as_probabilities >= _PROBABILITY_FIT_NATS
            and self.calibration_as_probabilities <= _CALIBRATION_SHARE * self.calibration_as_logits
        )

    @property
    def logits_fit_better(self) -> bool:
        """The logit reading fits the targets at least as well (a prior-initialised head).

        Judged by the binary cross-entropy of each reading: sigmoid keeps the order of the
        scores, so both readings rank the samples alike and the difference is calibration.
        Binned calibration errors are too noisy for it on a narrow band: breast-cancer
        logits at a prior init (0.50 to 0.57, 61% positives) are 0.085 off as logits and 0.082
        as probabilities over 10 bins, while their means are 0.02 and 0.075 off the rate and
        the logit reading's loss is 0.011 nats lower.
        """
        return (
            not self.probabilities_fit_better and self.loss_as_logits <= self.loss_as_probabilities
        )

    def text(self) -> str:
        """``; read as probabilities they fit the targets better: ...`` with both readings."""
        return (
            f"; read as probabilities they fit the targets better: binary cross-entropy "
            f"{text.number(self.loss_as_probabilities)} per element against "
            f"{text.number(self.loss_as_logits)} read as logits, calibration error "
            f"{text.number(self.calibration_as_probabilities)} against "
            f"{text.number(self.calibration_as_logits)}"
        )


def sigmoid_readings(scores: np.ndarray, targets: np.ndarray) -> SigmoidReadings | None:
    """Both readings of ``scores`` against ``targets`` in [0, 1] holding as many values.

    Args:
        scores: any shape, every finite value in [0, 1] (the caller checks).
        targets: as many values, paired element by element in row-major order.

    Returns:
        None when the targets do not pair with the scores, lie outside [0, 1], or fewer
        than :data:`FEWEST_VALUES` finite pairs remain.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if scores.size != targets.size:
        return None
    both = np.isfinite(scores) & np.isfinite(targets)
    scores, targets = scores[both], targets[both]
    if scores.size < FEWEST_VALUES or targets.min() < 0 or targets.max() > 1:
        return None
    as_logits = np.mean(np.logaddexp(0.0, scores) - targets * scores)
    clipped = np.clip(scores, _CLIP, 1 - _CLIP)
    as_probabilities = -np.mean(targets * np.log(clipped) + (1 - targets) * np.log1p(-clipped))
    count = max(1, min(_BINS, scores.size // _VALUES_PER_BIN))
    bins = np.array_split(np.argsort(scores, kind="stable"), count)
    sigmoid = stable.sigmoid(scores)
    return SigmoidReadings(
        loss_as_logits=float(as_logits),
        loss_as_probabilities=float(as_probabilities),
        calibration_as_logits=_calibration_error(bins, sigmoid, targets),
        calibration_as_probabilities=_calibration_error(bins, scores, targets),
        logits_rejected=_hosmer_lemeshow(bins, sigmoid, targets)
        >= count + _REJECTED_SIGMAS * math.sqrt(2 * count),
    )


def _calibration_error(bins: list[np.ndarray], predicted: np.ndarray, targets: np.ndarray) -> float:
    """Mean |target rate - predicted probability| over bins, weighted by their sizes."""
    gaps = [abs(float(targets[b].mean() - predicted[b].mean())) * b.size for b in bins]
    return float(sum(gaps) / predicted.size)


def _hosmer_lemeshow(bins: list[np.ndarray], predicted: np.ndarray, targets: np.ndarray) -> float:
    """Sum over bins of (observed - expected positives)^2 / variance.

    Chi-squared with one degree of freedom per bin when ``predicted`` are the true
    probabilities; sigmoid of scores in [0, 1] lies in [0.5, 0.73], so no variance is small.
    """
    total = 0.0
    for members in bins:
        expected = predicted[members]
        variance = float(np.sum(expected * (1 - expected)))
        total += float(np.sum(targets[members]) - np.sum(expected)) ** 2 / max(variance, 1e-12)
    return total
