"""Fit checks: mistakes that only show in the distribution of the values, against a trivial predictor.

Each check compares what the model's outputs do with what the trivial predictor would do
on the same targets: the target mean for regression, the class prior for classification,
every embedding at one point for margin losses. Every loss value quoted is torch's, computed
with the user's loss and options (:func:`losscli.compute.loss_function`) on the baseline
tensors; numpy only summarises (means, spreads, correlations, accuracies).

- ``collapsed-predictions``: regression outputs almost constant next to the targets' spread,
  sitting at the target mean; embeddings so close together that every sample's margin loss
  is the one identical embeddings give (``constant-input`` keeps the exactly constant case).
- ``scale-mismatch``: regression outputs on another scale than the targets, which a linear
  rescale read from the data (the targets' mean and spread) brings to a real fit.
- ``fit-too-good``: the loss a tiny fraction of the trivial predictor's: a leaked target.
- ``misaligned-samples``: confident outputs that do no better than chance: predictions and
  targets in different sample orders.

The thresholds were read off tiny models trained on scikit-learn's bundled data sets
(tests/test_fit_findings.py prints the statistics across model states); each constant says
what the data showed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from losscli import stable, text
from losscli.checks import Check, CheckContext, Scope
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.losses import Activation, Domain, Layout, LossSpec, Role

# ---------------------------------------------------------------- thresholds (what the data showed)

# collapsed regression: the predictions' spread / the targets' spread. MLPs trained on
# load_diabetes give 0.8-1.0 (0.5-0.8 on batches of 8-16), untrained ones scored against
# standardized targets 0.13-0.44; an MLP whose weights a weight decay of 100 held at zero on
# the unnormalised features gives 0.010. Untrained models against raw targets give 0.002,
# but far from the targets' mean (below).
COLLAPSED_SPREAD = 0.02
# ... and the predictions sit near the target mean (a model stuck at the mean): within this
# many target standard deviations. The weight-decayed MLP sits 0.65 below it (the decay pulls
# the bias down too); predictions on another scale sit 1.97 away (scale-mismatch says so),
# as do untrained models against raw targets.
COLLAPSED_LOCATION = 1.0
# collapsed embeddings: a sample "sits at the collapsed loss" when its loss is within this
# fraction of the loss scale (the margin, or the collapsed loss's mean) of what identical
# embeddings give. Untrained triplet nets on load_digits leave 12-38% of samples there (on
# 8 to 256 triplets), trained ones 0-1%; a net collapsed by Adam's L2 weight decay of 1.0
# leaves 100%, as do ranking scores of a head initialised near zero.
COLLAPSED_LOSS_TOLERANCE = 0.02
COLLAPSED_SHARE = 0.95
# the fewest samples collapse is judged on (a spread needs a few values)
COLLAPSED_MIN_SAMPLES = 8

# scale-mismatch: the loss at least this many times the mean predictor's. Standardized
# predictions against raw load_diabetes targets give 4.9 (5.9 on 24 samples: the mean of the
# squared raw targets over their variance); models on the right scale give 0.27-0.85 trained
# and 1.0-1.5 untrained. Untrained models against raw targets give 4.9 too: the rescale
# below tells them apart.
MISMATCH_WORSE = 2.0
# ... and the rescaled predictions at most this fraction of the mean predictor's loss: the
# trained MLPs rescaled give 0.27-0.30 of it (1 - R^2), 0.46-0.63 on 24 samples; untrained
# ones rescaled give 1.0-1.2 (they carry no signal a rescale could reveal).
MISMATCH_RESCALED = 0.75
# statistics of fewer samples are too noisy: a correlation's standard error is 1/sqrt(n),
# 0.35 on 8 samples, so a rescaled untrained model can look like a fit there by chance
MISMATCH_MIN_SAMPLES = 24

# fit-too-good, regression: 1 - R^2, the mean squared error over the targets' variance (the
# loss over the mean predictor's for mse; judged on squared errors for every loss, as an l1
# loss ratio is about its square root: a target leaked with noise of 0.5 on diabetes' raw
# scale gives 4e-5 in squared errors but 6e-3 as an l1 ratio). MLPs on
# load_diabetes reach 0.27-0.30 on their own training set and 0.6-0.85 held out; an MLP
# given the standardized target as an 11th feature reaches 2.6e-5 to 1.4e-4 (on 442 or on
# 16 samples). 1e-3 (R^2 = 0.999) sits 7x above the leaks and 270x below the real fits.
# Features computed from the target fire too, as they should: load_breast_cancer's mean
# radius regressed on the other columns (perimeter and area are functions of it) gives 4.6e-4.
FIT_RATIO = 1e-3
# fit-too-good, classification: the loss over the class prior's. A classifier on its own
# training set legitimately reaches 4e-5 of it (load_digits, 2000 Adam steps: 9.7e-5 against
# log 10), so the ratio alone decides nothing: it fires only when, besides, every sample of a
# class gets the same prediction row (the prediction is a function of the target: the target
# itself passed in: `F.one_hot(y) * 10` gives 1.8e-4, bce-logits on `y * 20 - 10` 7e-5).
FIT_CLASS_RATIO = 0.01
# rows of one class "identical": their spread below this fraction of the values' scale
IDENTICAL_ROWS = 1e-6
# the fewest samples a fit is judged on (an exact copy of the target is judged on any)
FIT_MIN_SAMPLES = 16
# a discrete target: whole numbers taking at most this many values (star ratings, small
# counts), where rounded predictions can match every target exactly (the false-alarm corpus
# has 1-5 star ratings fitted perfectly); load_diabetes's whole-number targets take 214 values
DISCRETE_LEVELS = 20
# a probability this close to 0 or 1 is saturated (or clamped): a confident model's rows of one
# class all equal it (bce's clamp at 1e-7), so equal rows there prove nothing
SATURATED = 1e-6

# misaligned, classification: the mean largest probability at least this. Trained models
# on load_digits / load_breast_cancer give 0.93-0.97, x5 logits 0.99; untrained ones
# 0.12-0.6 (0.24-0.39 with x5 logits), prior-initialised ones the largest class share (0.63 on
# breast cancer, 0.10 on digits).
MISALIGNED_CONFIDENT = 0.8
# ... accuracy within this many standard errors of chance (sum_k p_k q_k): permuted
# predictions sat at -1.0 to 1.4 of it; trained models, over-confident (x5) or weakly trained
# (15 steps, x8 logits) ones too, sat 6-67 above it on 169-597 samples, 2.4 on 16.
MISALIGNED_Z = 3.0
# a standard error needs samples: 16 trained breast-cancer samples sit only 2.4 standard
# errors above chance (a batch of 48 would sit 4.2 above it)
MISALIGNED_MIN_SAMPLES = 48
# misaligned, regression: predictions with real spread (over the targets'). Trained MLPs
# on load_diabetes spread 0.82-1.0 of the targets (a linear fit's r is 0.72); untrained MLPs
# 0.13-0.2 and untrained linear layers 0.31-0.44, whose correlation can sit near 0 by chance
MISALIGNED_SPREAD = 0.5
# ... located where the targets are (a trained model's mean is the targets'; an untrained
# one's is wherever its bias put it): within this many standard errors of the targets' mean
# (trained and permuted models sat within 0.4 of them, untrained MLPs 2.6-5.6 away on 442
# samples; untrained linear layers sat 0.8-1.9 away, and their spread keeps them out) ...
MISALIGNED_LOCATION_Z = 3.0
# ... and a correlation with the targets within this many standard errors (1/sqrt(n)) of 0
MISALIGNED_CORRELATION_Z = 2.5
# a regression needs more samples than a classifier: a mean and a correlation of 32 samples
# move by 0.18 standard deviations by chance
MISALIGNED_REGRESSION_MIN_SAMPLES = 64

# probabilities are clamped here before taking a log (the prior of an absent class)
_EPS = 1e-7
# values beyond this square past float64's range: no spread or correlation of them is finite
_LARGEST_STATISTIC = 1e150


# ---------------------------------------------------------------- which losses


def _regression(spec: LossSpec) -> bool:
    """mse, l1, huber, smooth-l1: real predictions against real targets, element-wise."""
    return (
        spec.layout is Layout.ELEMENTWISE
        and spec.activation is Activation.NONE
        and spec.input_domain is Domain.REAL
        and len(spec.arguments) == 2
        and spec.arguments[1].role is Role.TARGET
    )


def _embeddings(spec: LossSpec) -> bool:
    """triplet, paired-embedding and ranking margin losses: only model outputs and signs."""
    return spec.layout in (Layout.TRIPLET, Layout.PAIRED_EMBEDDINGS, Layout.PAIRED_SCORES)


def _multiclass(spec: LossSpec) -> bool:
    """cross-entropy and nll: class scores (logits or log-probabilities) and class indices."""
    return spec.layout is Layout.CLASS_SCORES and (
        spec.activation is Activation.SOFTMAX or spec.input_domain is Domain.LOG_PROBABILITIES
    )


def _binary(spec: LossSpec) -> bool:
    """bce and bce-logits: one probability (or logit) per element against a 0/1 target.

    The sigmoid losses with a probability counterpart are bce-logits itself; focal and dice
    weigh or pool their elements, so a prior is not their trivial predictor.
    """
    takes_binary = len(spec.arguments) == 2 and spec.arguments[1].role is Role.BINARY_TARGET
    return takes_binary and (
        spec.input_domain is Domain.PROBABILITIES or bool(spec.on_probabilities)
    )


def _classification(spec: LossSpec) -> bool:
    return _multiclass(spec) or _binary(spec)


def _fit_applies(spec: LossSpec) -> bool:
    return _regression(spec) or _classification(spec)


def _collapse_applies(spec: LossSpec) -> bool:
    return _regression(spec) or _embeddings(spec)


# ---------------------------------------------------------------- torch on baseline tensors


def _torch_losses(
    context: CheckContext, arrays: dict[str, np.ndarray], reduction: str = "mean"
) -> np.ndarray | None:
    """torch's loss with the user's options on ``arrays`` (None when torch refuses them)."""
    import torch

    from losscli.compute import loss_function, to_tensor

    function = loss_function(context.spec, context.options, context.soft_target)
    tensors = []
    for argument in context.spec.arguments:
        given = np.asarray(context.arrays[argument.name])
        values = np.asarray(arrays.get(argument.name, given))
        tensors.append(to_tensor(values.astype(given.dtype, copy=False)))
    try:
        with torch.no_grad():
            result = function(*tensors, reduction=reduction)
    except (RuntimeError, ValueError, IndexError, TypeError):
        return None
    return np.asarray(result.detach().double().numpy())


def _torch_value(context: CheckContext, arrays: dict[str, np.ndarray]) -> float | None:
    values = _torch_losses(context, arrays)
    if values is None or not math.isfinite(float(values)):
        return None
    return float(values)


def _float(context: CheckContext, name: str) -> np.ndarray:
    return np.asarray(context.arrays[name], dtype=np.float64)


# ---------------------------------------------------------------- regression statistics


@dataclass(frozen=True)
class _Regression:
    """Predictions against targets, with torch's loss of the model and of the target mean.

    Attributes:
        predictions: float64, flattened ``[elements]``.
        targets: float64, flattened ``[elements]``.
        samples: how many samples (the batch dimension).
        loss: torch's loss (reduction mean) of the predictions.
        baseline: torch's loss (reduction mean) of predicting the targets' mean everywhere.
    """

    predictions: np.ndarray
    targets: np.ndarray
    samples: int
    loss: float
    baseline: float

    @property
    def target_mean(self) -> float:
        return float(self.targets.mean())

    @property
    def target_spread(self) -> float:
        return float(self.targets.std())

    @property
    def prediction_mean(self) -> float:
        return float(self.predictions.mean())

    @property
    def prediction_spread(self) -> float:
        return float(self.predictions.std())

    @property
    def spread_ratio(self) -> float:
        return self.prediction_spread / self.target_spread

    @property
    def offset(self) -> float:
        """How far the predictions' mean is from the targets', in target standard deviations."""
        return abs(self.prediction_mean - self.target_mean) / self.target_spread

    @property
    def ratio(self) -> float:
        """The loss over the mean predictor's (1 - R^2 for mse)."""
        return self.loss / self.baseline if self.baseline > 0 else math.inf

    @property
    def unexplained(self) -> float:
        """1 - R^2: the mean squared error over the targets' variance, whatever the loss (for
        l1 or huber the loss ratio is about its square root, so it cannot be judged alone)."""
        residuals = self.predictions.astype(np.float64) - self.targets
        return float(np.mean(residuals**2)) / float(self.targets.var())

    def correlation(self) -> float:
        if self.prediction_spread == 0:
            return 0.0
        return float(np.corrcoef(self.predictions, self.targets)[0, 1])


def _regression_view(context: CheckContext) -> _Regression | None:
    """The statistics of a regression, or None when they mean nothing (shapes differ, a
    constant target, non-finite values, values whose squares overflow float64)."""
    prediction_name, target_name = (a.name for a in context.spec.arguments)
    predictions = _float(context, prediction_name)
    targets = _float(context, target_name)
    if predictions.shape != targets.shape or predictions.ndim == 0 or predictions.size < 2:
        return None
    if not (np.isfinite(predictions).all() and np.isfinite(targets).all()):
        return None
    if max(float(np.abs(predictions).max()), float(np.abs(targets).max())) > _LARGEST_STATISTIC:
        return None
    if targets.std() == 0:
        return None
    loss = _torch_value(context, {})
    baseline = _torch_value(
        context, {prediction_name: np.full_like(targets, targets.mean(), dtype=np.float64)}
    )
    if loss is None or baseline is None:
        return None
    return _Regression(
        predictions.reshape(-1), targets.reshape(-1), int(predictions.shape[0]), loss, baseline
    )


# ---------------------------------------------------------------- classification statistics


@dataclass(frozen=True)
class _Classes:
    """A classifier's outputs as probabilities against hard labels, with the prior's loss.

    Attributes:
        probabilities: ``[decisions, choices]``: each decision's probabilities (a softmax row,
            or ``[1 - p, p]`` for one element of a binary target).
        labels: int ``[decisions]``: the target of each decision.
        columns: ``[decisions]``: which output column the decision belongs to (0 for a
            multi-class row); chance is computed per column.
        samples: how many samples the decisions come from.
        loss: torch's loss (reduction mean) of the model.
        baseline: torch's loss (reduction mean) of the class prior for every sample.
    """

    probabilities: np.ndarray
    labels: np.ndarray
    columns: np.ndarray
    samples: int
    loss: float
    baseline: float

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max(axis=1).mean())

    @property
    def accuracy(self) -> float:
        return float((self.probabilities.argmax(axis=1) == self.labels).mean())

    def chance(self) -> float:
        """The accuracy of predictions independent of the targets: sum_k p_k q_k per column
        (p the predicted class shares, q the target class shares), averaged over decisions."""
        choices = self.probabilities.shape[1]
        predicted = self.probabilities.argmax(axis=1)
        agreement = 0.0
        for column in np.unique(self.columns):
            mine = self.columns == column
            p = np.bincount(predicted[mine], minlength=choices) / mine.sum()
            q = np.bincount(self.labels[mine], minlength=choices) / mine.sum()
            agreement += float(p @ q) * float(mine.sum())
        return agreement / self.labels.size

    @property
    def ratio(self) -> float:
        return self.loss / self.baseline if self.baseline > 0 else math.inf


def _classes_view(context: CheckContext) -> _Classes | None:
    if _multiclass(context.spec):
        return _multiclass_view(context)
    return _binary_view(context)


def _multiclass_view(context: CheckContext) -> _Classes | None:
    """cross-entropy / nll on ``[batch, classes]`` scores and ``[batch]`` class indices."""
    if context.soft_target:
        return None
    score_name, target_name = (a.name for a in context.spec.arguments)
    scores = _float(context, score_name)
    labels = np.asarray(context.arrays[target_name])
    if scores.ndim != 2 or labels.shape != scores.shape[:1] or labels.dtype.kind not in "iu":
        return None
    if scores.size == 0:
        return None
    if not np.isfinite(scores).all():
        return None
    kept = labels != context.options.get("ignore_index", -100)
    classes = scores.shape[1]
    if kept.sum() < 2 or labels[kept].min() < 0 or labels[kept].max() >= classes:
        return None
    shares = np.bincount(labels[kept], minlength=classes) / kept.sum()
    prior = np.broadcast_to(np.log(np.maximum(shares, _EPS)), scores.shape)
    loss = _torch_value(context, {})
    baseline = _torch_value(context, {score_name: np.array(prior)})
    if loss is None or baseline is None:
        return None
    # logits, or log-probabilities (renormalised the same way, in case they are off)
    probabilities = stable.softmax(scores, axis=1)
    return _Classes(
        probabilities[kept],
        labels[kept].astype(np.int64),
        np.zeros(int(kept.sum()), dtype=np.int64),
        int(kept.sum()),
        loss,
        baseline,
    )


def _binary_view(context: CheckContext) -> _Classes | None:
    """bce / bce-logits: each element a yes/no decision against a 0/1 (or smoothed) target."""
    prediction_name, target_name = (a.name for a in context.spec.arguments)
    predictions = _float(context, prediction_name)
    targets = _float(context, target_name)
    if predictions.shape != targets.shape or predictions.ndim == 0 or predictions.shape[0] < 2:
        return None
    if predictions.size == 0:
        return None
    if not (np.isfinite(predictions).all() and np.isfinite(targets).all()):
        return None
    if targets.min() < 0 or targets.max() > 1:
        return None
    samples = predictions.shape[0]
    columns = targets.reshape(samples, -1)
    shares = np.clip(columns.mean(axis=0), _EPS, 1 - _EPS)
    if context.spec.input_domain is Domain.PROBABILITIES:
        prior = np.broadcast_to(shares, columns.shape)
        positive = np.clip(predictions, 0.0, 1.0).reshape(samples, -1)
    else:
        prior = np.broadcast_to(np.log(shares / (1 - shares)), columns.shape)
        positive = stable.sigmoid(predictions.reshape(samples, -1))
    loss = _torch_value(context, {})
    baseline = _torch_value(context, {prediction_name: np.array(prior).reshape(targets.shape)})
    if loss is None or baseline is None:
        return None
    flat_positive = positive.reshape(-1)
    return _Classes(
        np.stack([1 - flat_positive, flat_positive], axis=1),
        (columns.reshape(-1) >= 0.5).astype(np.int64),
        np.tile(np.arange(columns.shape[1]), samples),
        samples,
        loss,
        baseline,
    )


# ---------------------------------------------------------------- collapsed-predictions


def check_collapsed_predictions(context: CheckContext) -> Iterator[Finding]:
    """Regression outputs almost constant at the target mean; embeddings all at one point."""
    if _regression(context.spec):
        yield from _collapsed_regression(context)
    else:
        yield from _collapsed_embeddings(context)


def _collapsed_regression(context: CheckContext) -> Iterator[Finding]:
    fit = _regression_view(context)
    if fit is None or fit.samples < COLLAPSED_MIN_SAMPLES:
        return
    if fit.prediction_spread == 0:  # exactly constant: constant-input says so
        return
    if fit.spread_ratio >= COLLAPSED_SPREAD or fit.offset > COLLAPSED_LOCATION:
        return
    name = context.spec.arguments[0].name
    target = context.spec.arguments[1].name
    yield finding(
        "collapsed-predictions",
        Severity.WARNING,
        f"{name} ({context.source(name)}) spreads {text.number(fit.prediction_spread)} (standard "
        f"deviation) around {text.number(fit.prediction_mean)}, while {target} spreads "
        f"{text.number(fit.target_spread)} around {text.number(fit.target_mean)}: a ratio of "
        f"{text.number(fit.spread_ratio)} (below {COLLAPSED_SPREAD:g}); the loss "
        f"{text.number(fit.loss)} is {text.number(fit.ratio)} times that of predicting the "
        "target mean: the model is stuck at the mean",
        "the model predicts (almost) the same value for every sample: check the learning rate and "
        "weight decay, that the output layer is not zero-initialised, and that the features are "
        "normalised (raw features in the thousands saturate the first layer)",
        remedies=(
            Remedy(
                outside=True,
                code="lower the learning rate / weight decay, and standardize the features: "
                "x = (x - x.mean(0)) / x.std(0)",
                note="the model is stuck at the target mean",
            ),
        ),
        argument=name,
        spread_ratio=fit.spread_ratio,
        prediction_spread=fit.prediction_spread,
        target_spread=fit.target_spread,
        loss_ratio=fit.ratio,
    )


def _collapsed_embeddings(context: CheckContext) -> Iterator[Finding]:
    """Every sample's loss is what identical embeddings give (the margin for a triplet)."""
    names = [a.name for a in context.spec.arguments if a.role is Role.PREDICTION]
    if any(
        np.ndim(context.arrays[name]) == 0 or np.size(context.arrays[name]) == 0 for name in names
    ):
        return
    # ranking scores [batch] are one-feature embeddings
    embeddings = [_float(context, name).reshape(len(context.arrays[name]), -1) for name in names]
    if any(e.ndim != 2 or not np.isfinite(e).all() for e in embeddings):
        return
    samples = embeddings[0].shape[0]
    if samples < COLLAPSED_MIN_SAMPLES or any(e.shape != embeddings[0].shape for e in embeddings):
        return
    if all(e.min() == e.max() for e in embeddings):  # exactly constant: constant-input says so
        return
    center = np.concatenate(embeddings).mean(axis=0)
    collapsed = {
        name: np.broadcast_to(center, e.shape).reshape(context.arrays[name].shape).copy()
        for name, e in zip(names, embeddings, strict=True)
    }
    actual = _torch_losses(context, {}, reduction="none")
    at_collapse = _torch_losses(context, collapsed, reduction="none")
    if actual is None or at_collapse is None or actual.shape != (samples,):
        return
    margin = float(context.options.get("margin", 0.0) or 0.0)
    scale = max(abs(margin), float(np.abs(at_collapse).mean()))
    if scale <= 0:
        return  # identical embeddings cost nothing here: nothing sits at a margin
    close = np.abs(actual - at_collapse) <= COLLAPSED_LOSS_TOLERANCE * scale
    share = float(close.mean())
    if share < COLLAPSED_SHARE:
        return
    spread = float(np.sqrt(np.mean([np.sum((e - center) ** 2, axis=1).mean() for e in embeddings])))
    yield finding(
        "collapsed-predictions",
        Severity.WARNING,
        f"{int(close.sum())} of {samples} per-sample losses ({text.percent(int(close.sum()), samples)}) "
        f"are within {COLLAPSED_LOSS_TOLERANCE:g} x {text.number(scale)} of what identical "
        f"embeddings give (mean {text.number(float(at_collapse.mean()))}, margin "
        f"{text.number(margin)}): the embeddings of {', '.join(names)} lie within "
        f"{text.number(spread)} (RMS) of one point, norm {text.number(float(np.linalg.norm(center)))}",
        "the embeddings collapsed to one point, so the loss sits at the margin and its gradient "
        "cannot separate them: lower the learning rate, mine harder negatives (or start with "
        "easier ones), check that the embedding head is not zero-initialised and that a "
        "normalisation (F.normalize) is applied before the distance",
        remedies=(
            Remedy(
                outside=True,
                code="lower the learning rate and check the embedding head's initialisation; "
                "normalise the embeddings: F.normalize(embedding, dim=1)",
                note="every embedding sits at one point",
            ),
        ),
        share=share,
        spread=spread,
        margin=margin,
    )


# ---------------------------------------------------------------- scale-mismatch


def check_scale_mismatch(context: CheckContext) -> Iterator[Finding]:
    """Regression predictions on another scale than the targets, which a rescale fixes."""
    fit = _regression_view(context)
    if fit is None or fit.samples < MISMATCH_MIN_SAMPLES or fit.prediction_spread == 0:
        return
    if fit.ratio < MISMATCH_WORSE:
        return
    name = context.spec.arguments[0].name
    for rescale, assumption in _rescales(name, fit):
        rescaled = _torch_value(context, {name: rescale(_float(context, name))})
        if rescaled is None or rescaled > MISMATCH_RESCALED * fit.baseline:
            continue
        yield _mismatch_finding(context, fit, rescale.code, assumption, rescaled)
        return


@dataclass(frozen=True)
class _Rescale:
    """``input * scale + shift`` as a function and as the ``--map`` line that applies it."""

    name: str
    scale: float
    shift: float

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.shift

    @property
    def code(self) -> str:
        if abs(self.scale) < 1:  # dividing reads better, and keeps the digits
            divisor = 1.0 / self.scale
            centre = -self.shift * divisor
            return f"{self.name} = ({self.name} - {centre:.6g}) / {divisor:.6g}"
        return f"{self.name} = {self.name} * {self.scale:.6g} + {self.shift:.6g}"


def _rescales(name: str, fit: _Regression) -> list[tuple[_Rescale, str]]:
    """The rescales to try: predictions in the targets' standard units (a model trained on
    standardized targets), then predictions on a raw scale against standardized targets."""
    # the standard deviations as torch's `y.std()` computes them (unbiased), which is what
    # standardized them; rounded to the digits the map line shows, so the map does what was tried
    scale = float(f"{float(np.std(fit.targets, ddof=1)):.6g}")
    shift = float(f"{fit.target_mean:.6g}")
    tried = [
        (
            _Rescale(name, scale, shift),
            f"{name} is in standard units of the target (a model trained on standardized targets)",
        )
    ]
    spread = float(f"{float(np.std(fit.predictions, ddof=1)):.6g}")
    centre = float(f"{fit.prediction_mean:.6g}")
    tried.append(
        (
            _Rescale(name, 1.0 / spread, -centre / spread),
            f"{name} is on a raw scale while the target is standardized",
        )
    )
    return tried


def _mismatch_finding(
    context: CheckContext, fit: _Regression, code: str, assumption: str, rescaled: float
) -> Finding:
    name, target = (a.name for a in context.spec.arguments)
    return finding(
        "scale-mismatch",
        Severity.WARNING,
        f"{name} ({context.source(name)}) has mean {text.number(fit.prediction_mean)} and standard "
        f"deviation {text.number(fit.prediction_spread)}, {target} mean "
        f"{text.number(fit.target_mean)} and standard deviation {text.number(fit.target_spread)}; "
        f"the loss {text.number(fit.loss)} is {text.number(fit.ratio)} times that of predicting "
        f"the target mean ({text.number(fit.baseline)}), and after `{code}` it is "
        f"{text.number(rescaled)} ({text.number(rescaled / fit.baseline)} times)",
        f"the predictions and the targets are on different scales ({assumption}): undo the "
        "standardization on the predictions with the training targets' mean and standard "
        "deviation, or standardize the targets the same way",
        remedies=(Remedy(maps=(code,), note=assumption),),
        argument=name,
        loss_ratio=fit.ratio,
        rescaled_ratio=rescaled / fit.baseline,
        prediction_mean=fit.prediction_mean,
        prediction_spread=fit.prediction_spread,
        target_mean=fit.target_mean,
        target_spread=fit.target_spread,
    )


# ---------------------------------------------------------------- fit-too-good


def check_fit_too_good(context: CheckContext) -> Iterator[Finding]:
    """The loss a tiny fraction of the trivial predictor's: a leaked target."""
    if _regression(context.spec):
        yield from _too_good_regression(context)
    else:
        yield from _too_good_classes(context)


_LEAK_FIX = (
    "a loss this close to zero on real data means the target reached the prediction: pass the "
    "model's output (not the target) to the loss, and drop any feature computed from the "
    "target (a column of y left in X, a future value in a time series)"
)
_LEAK_REMEDIES = (
    Remedy(
        outside=True,
        code="X = X.drop(columns=[target_column]); loss = F.mse_loss(model(X), y)",
        note="the target leaked into the features, or was passed as the prediction",
    ),
)


def _too_good_regression(context: CheckContext) -> Iterator[Finding]:
    fit = _regression_view(context)
    if fit is None or (_discrete(fit.targets) and _discrete(fit.predictions)):
        return  # rounded predictions of ratings or counts can match them all
    copied = bool(np.array_equal(fit.predictions, fit.targets))
    if not copied and (fit.samples < FIT_MIN_SAMPLES or fit.unexplained >= FIT_RATIO):
        return
    name, target = (a.name for a in context.spec.arguments)
    what = (
        f"{name} ({context.source(name)}) equals {target} ({context.source(target)}) element for element"
        if copied
        else f"1 - R^2 = {text.number(fit.unexplained)}, below {FIT_RATIO:g}"
    )
    yield finding(
        "fit-too-good",
        Severity.WARNING,
        f"the loss {text.number(fit.loss)} is {text.number(fit.ratio)} times that of predicting "
        f"the target mean ({text.number(fit.baseline)}): {what}",
        _LEAK_FIX,
        remedies=_LEAK_REMEDIES,
        loss_ratio=fit.ratio,
        copied=copied,
    )


def _discrete(values: np.ndarray) -> bool:
    """Whole numbers taking at most ``DISCRETE_LEVELS`` values, each seen twice on average
    (8 distinct whole numbers in a batch of 8 say nothing about levels)."""
    if not np.all(values == np.round(values)):
        return False
    return np.unique(values).size <= min(DISCRETE_LEVELS, values.size // 2)


def _too_good_classes(context: CheckContext) -> Iterator[Finding]:
    fit = _classes_view(context)
    if fit is None or fit.ratio >= FIT_CLASS_RATIO:
        return
    name = context.spec.arguments[0].name
    if not _rows_follow_labels(_float(context, name), fit):
        return
    yield finding(
        "fit-too-good",
        Severity.WARNING,
        f"the loss {text.number(fit.loss)} is {text.number(fit.ratio)} times that of predicting "
        f"the class prior ({text.number(fit.baseline)}), and every sample of a class gets the same "
        f"{name} row: {name} is a function of the target, not of the features",
        _LEAK_FIX,
        remedies=(
            Remedy(
                outside=True,
                code="loss = F.cross_entropy(model(X), y)  # the model's output, not one_hot(y)",
                note="the target (or a copy of it) was passed as the prediction",
            ),
        ),
        loss_ratio=fit.ratio,
    )


def _rows_follow_labels(values: np.ndarray, fit: _Classes) -> bool:
    """Every decision of one label has the same prediction values, short of saturation.

    Judged on the labels that hold two decisions or more (a label seen once proves nothing),
    which must hold at least ``FIT_MIN_SAMPLES`` decisions between them, of two labels.
    """
    decisions = fit.probabilities[:, 1] if fit.probabilities.shape[1] == 2 else fit.probabilities
    assigned = fit.probabilities[np.arange(fit.labels.size), fit.labels]
    if float(assigned.max()) > 1 - SATURATED:
        return False  # saturated (or clamped) probabilities: a confident model's rows are equal
    scale = max(float(np.abs(values).max()), 1.0)
    labels, counts = np.unique(fit.labels, return_counts=True)
    repeated = labels[counts >= 2]
    if repeated.size < 2 or int(counts[counts >= 2].sum()) < FIT_MIN_SAMPLES:
        return False
    for label in repeated:
        mine = decisions[fit.labels == label]
        if float(np.ptp(mine, axis=0).max()) > IDENTICAL_ROWS * scale:
            return False
    return True


# ---------------------------------------------------------------- misaligned-samples


_ALIGN_FIX = (
    "the predictions and the targets are in different sample orders (predictions gathered "
    "from a shuffled DataLoader, labels taken from the dataset in order): collect both in "
    "the same loop pass, or evaluate with shuffle=False"
)
_ALIGN_REMEDIES = (
    Remedy(
        outside=True,
        code="for x, y in DataLoader(dataset, shuffle=False): "
        "preds.append(model(x)); labels.append(y)",
        note="predictions and labels were collected in different orders",
    ),
)


def check_misaligned_samples(context: CheckContext) -> Iterator[Finding]:
    """Confident predictions at chance level, worse than the trivial predictor."""
    if _regression(context.spec):
        yield from _misaligned_regression(context)
    else:
        yield from _misaligned_classes(context)


def _misaligned_classes(context: CheckContext) -> Iterator[Finding]:
    fit = _classes_view(context)
    if fit is None or fit.samples < MISALIGNED_MIN_SAMPLES:
        return
    if fit.confidence < MISALIGNED_CONFIDENT or fit.loss <= fit.baseline:
        return
    chance = fit.chance()
    standard_error = math.sqrt(max(chance * (1 - chance), _EPS) / fit.samples)
    above = (fit.accuracy - chance) / standard_error
    if above > MISALIGNED_Z:
        return
    yield finding(
        "misaligned-samples",
        Severity.WARNING,
        f"the predictions are confident (mean largest probability {text.number(fit.confidence)}) "
        f"but their accuracy {text.number(fit.accuracy)} is what predictions independent of the "
        f"targets give ({text.number(chance)}, {text.number(above)} standard errors from it, over "
        f"{fit.samples} samples), and the loss {text.number(fit.loss)} is above the class prior's "
        f"({text.number(fit.baseline)})",
        _ALIGN_FIX,
        remedies=_ALIGN_REMEDIES,
        confidence=fit.confidence,
        accuracy=fit.accuracy,
        chance=chance,
        loss_ratio=fit.ratio,
    )


def _misaligned_regression(context: CheckContext) -> Iterator[Finding]:
    fit = _regression_view(context)
    if fit is None or fit.samples < MISALIGNED_REGRESSION_MIN_SAMPLES:
        return
    if _discrete(fit.targets):
        # 0/1 or star-rating targets: scores in [0, 1] spread like them with no fit at all
        # (the false-alarm corpus: uniform scores against 0/1 targets, spread 0.6, r = 0.1)
        return
    if fit.loss <= fit.baseline or fit.spread_ratio < MISALIGNED_SPREAD:
        return
    # the standard error of the difference of two means of n samples each
    location_error = math.sqrt((1 + fit.spread_ratio**2) / fit.samples)
    if fit.offset > MISALIGNED_LOCATION_Z * location_error:
        return
    correlation = fit.correlation()
    if abs(correlation) * math.sqrt(fit.samples) > MISALIGNED_CORRELATION_Z:
        return
    yield finding(
        "misaligned-samples",
        Severity.WARNING,
        f"the predictions spread like the targets (standard deviation "
        f"{text.number(fit.prediction_spread)} against {text.number(fit.target_spread)}, means "
        f"{text.number(fit.prediction_mean)} and {text.number(fit.target_mean)}) but correlate "
        f"{text.number(correlation)} with them over {fit.samples} samples, and the loss "
        f"{text.number(fit.loss)} is {text.number(fit.ratio)} times that of predicting the target mean",
        _ALIGN_FIX,
        remedies=_ALIGN_REMEDIES,
        correlation=correlation,
        spread_ratio=fit.spread_ratio,
        loss_ratio=fit.ratio,
    )


CHECKS: tuple[Check, ...] = (
    # spreads, locations and torch's loss of a trivial predictor: the values as a whole
    Check(
        check_collapsed_predictions,
        ("collapsed-predictions",),
        Scope.SAMPLE,
        applies=_collapse_applies,
        judges_model=True,
    ),
    Check(
        check_scale_mismatch,
        ("scale-mismatch",),
        Scope.SAMPLE,
        applies=_regression,
        judges_model=True,
    ),
    Check(
        check_fit_too_good,
        ("fit-too-good",),
        Scope.SAMPLE,
        applies=_fit_applies,
        judges_model=True,
    ),
    Check(
        check_misaligned_samples,
        ("misaligned-samples",),
        Scope.SAMPLE,
        applies=_fit_applies,
        judges_model=True,
    ),
)
