"""Real model outputs for the realistic-data suite: tiny torch models on scikit-learn's datasets.

Every array here comes from a model that was actually run: a linear layer or a one-hidden-layer
MLP trained full-batch with Adam for a few hundred steps on a dataset bundled with scikit-learn
(no download), seeded with ``torch.manual_seed``. Each model trains on a seeded two thirds of
its dataset and the arrays are its outputs on the held-out third: what a validation loop hands
to the loss. Each builder is a pure function of its arguments and cached
(``functools.cache``), so a test run trains each model once; everything builds in about ten
seconds on two busy CPU cores.

Model states (the ``state`` argument):

- ``untrained``: PyTorch's default initialisation, never stepped;
- ``trained``: the model after training;
- ``over-confident``: the trained logits multiplied by 5 (a model trained far past the point
  of calibration);
- ``prior``: the output layer's weights drawn N(0, 0.01²) and its bias set to the log class
  prior (the log-odds for a binary head), as RetinaNet initialises its head: step 0;
- ``smoothed``: trained with ``label_smoothing=0.1``;
- ``weighted``: trained on an imbalanced subset with class weights (``weight=`` /
  ``pos_weight=``).

Regression models have their own states (:data:`REGRESSION_STATES`); the other families
(segmentation, sequences, embeddings, heteroscedastic, Poisson, distillation, multi-label, ctc)
take the states that make sense for them.

Datasets: load_digits (1797 8×8 images, 10 classes), load_breast_cancer (569, binary),
load_iris (150, 3 classes, sorted by class), load_wine (178, 3 classes), load_diabetes
(442, regression; raw target mean ≈ 152, std ≈ 77) and load_linnerud (20, 3 outputs).

Arrays are returned as numpy (float32 predictions, int64 class indices), read-only: they are
shared through the cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import datasets
from torch import nn

SEED = 20261130
STEPS = 300  # full-batch Adam steps: held-out accuracy ≈ 97% on digits, 98% on iris and wine
LEARNING_RATE = 0.02
HIDDEN = 32
OVER_CONFIDENCE = 5.0  # the trained logits × 5
LABEL_SMOOTHING = 0.1
# info findings whose documented remedy may be offered on clean data: real token and tag
# frequencies are skewed (a tagger's tokens 238× apart, a digit being prime 1 in 13 of a small
# batch), and SPEC's class-imbalance is an info that "prints the counts and a ready --weight"
SUGGESTIONS = frozenset({"class-imbalance"})
STATES = ("untrained", "trained", "over-confident", "prior", "smoothed", "weighted")


def _freeze(array: np.ndarray) -> np.ndarray:
    """A read-only, contiguous copy: cached arrays cannot be changed by a test."""
    frozen = np.ascontiguousarray(array).copy()
    frozen.setflags(write=False)
    return frozen


def _float(tensor: torch.Tensor) -> np.ndarray:
    return _freeze(tensor.detach().to(torch.float32).numpy())


def tensor(array: np.ndarray) -> torch.Tensor:
    """A torch tensor holding a copy of ``array`` (cached arrays are read-only)."""
    return torch.from_numpy(np.array(array))


# --- datasets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A dataset: standardized float32 features ``[batch, features]`` and its targets."""

    features: np.ndarray
    targets: np.ndarray


def _standardize(features: np.ndarray) -> np.ndarray:
    spread = features.std(axis=0)
    spread[spread == 0] = 1.0
    return ((features - features.mean(axis=0)) / spread).astype(np.float32)


@functools.cache
def table(name: str) -> Table:
    """One of scikit-learn's bundled datasets, features standardized per column."""
    loader: Callable[..., tuple[np.ndarray, np.ndarray]] = {
        "digits": datasets.load_digits,
        "breast-cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
        "linnerud": datasets.load_linnerud,
    }[name]
    features, targets = loader(return_X_y=True)
    return Table(_freeze(_standardize(features)), _freeze(targets))


# --- training ---------------------------------------------------------------------------


def mlp(inputs: int, outputs: int, hidden: int = HIDDEN) -> nn.Sequential:
    """A one-hidden-layer MLP with PyTorch's default initialisation."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def fit(
    model: nn.Module,
    objective: Callable[[], torch.Tensor],
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
) -> nn.Module:
    """Full-batch Adam on ``objective()`` (which runs the model); returns the model in eval mode.

    Runs on one thread: these models are tiny, and on a shared two-core machine torch's thread
    pool only adds contention (the threads setting is restored afterwards).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        for _ in range(steps):
            optimizer.zero_grad()
            objective().backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


# RetinaNet's initialisation of its classification head: weights N(0, 0.01²), bias the log
# prior (log-odds), so the first predictions are the class prior with a little spread
PRIOR_WEIGHT_STD = 0.01


def _prior_head(model: nn.Sequential, bias: torch.Tensor) -> None:
    """Set the last layer to the prior initialisation: weights ≈ 0, bias the log prior."""
    last = model[-1]
    assert isinstance(last, nn.Linear | nn.Conv2d)
    with torch.no_grad():
        last.weight.normal_(0.0, PRIOR_WEIGHT_STD)
        last.bias.copy_(bias)


def split(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded training and held-out sample indices (two thirds, one third).

    Every builder trains on the first and reports the model's outputs on the held-out part:
    the numbers a validation loop passes to the loss.
    """
    order = np.random.default_rng(SEED).permutation(count)
    cut = 2 * count // 3
    return np.sort(order[:cut]), np.sort(order[cut:])


# --- multi-class classification ---------------------------------------------------------


@dataclass(frozen=True)
class Classified:
    """A classifier's logits ``[batch, classes]`` and the int64 labels ``[batch]``.

    ``class_weight`` is the ``weight=`` it was trained with (``weighted`` state), else None.
    """

    logits: np.ndarray
    labels: np.ndarray
    class_weight: tuple[float, ...] | None = None


# the weighted state keeps every training sample of the first half of the classes and this
# fraction of the rest: digits' training split goes from 109..127 per class to 9..18 for
# classes 5..9 (class weights 13.8× apart)
MINORITY_FRACTION = 0.1


def _imbalanced(labels: np.ndarray, classes: int) -> np.ndarray:
    """Indices of an imbalanced subset: the upper half of the classes thinned out."""
    rng = np.random.default_rng(SEED)
    keep = (labels < classes // 2 + classes % 2) | (rng.random(labels.shape[0]) < MINORITY_FRACTION)
    return np.flatnonzero(keep)


def inverse_frequency(labels: np.ndarray, classes: int) -> tuple[float, ...]:
    """Class weights N / (C · count): the usual ``weight=`` for an imbalanced training set."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return tuple(float(w) for w in np.round(labels.shape[0] / (classes * counts), 4))


@functools.cache
def _classifier_model(dataset: str, state: str) -> tuple[nn.Module, tuple[float, ...] | None]:
    """The MLP of :func:`classifier`, trained on the training split, and its class weights."""
    data = table(dataset)
    train, _ = split(data.targets.shape[0])
    labels = data.targets.astype(np.int64)
    classes = int(labels.max()) + 1
    if state == "weighted":
        train = train[_imbalanced(labels[train], classes)]
    features, targets = tensor(data.features[train]), tensor(labels[train])
    torch.manual_seed(SEED)
    model = mlp(features.shape[1], classes)
    weight = inverse_frequency(labels[train], classes) if state == "weighted" else None
    if state == "prior":
        prior = torch.bincount(targets, minlength=classes).float() / targets.shape[0]
        _prior_head(model, prior.log())
    elif state != "untrained":
        smoothing = LABEL_SMOOTHING if state == "smoothed" else 0.0
        class_weight = None if weight is None else torch.tensor(weight)

        def objective() -> torch.Tensor:
            return F.cross_entropy(
                model(features), targets, weight=class_weight, label_smoothing=smoothing
            )

        fit(model, objective)
    return model.eval(), weight


@functools.cache
def training_outputs(dataset: str) -> Classified:
    """The trained MLP's logits on its own training split: what the training loop's loss sees.

    It fits them: cross-entropy 0.0003 on digits (the prior's is log 10 = 2.3), 0.0001 on wine,
    0.008 on iris. A training loss that small is normal for a network that can memorise its
    data; it is no sign of a leaked target.
    """
    data = table(dataset)
    train, _ = split(data.targets.shape[0])
    model, _ = _classifier_model(dataset, "trained")
    with torch.no_grad():
        logits = model(tensor(data.features[train]))
    return Classified(_float(logits), _freeze(data.targets[train].astype(np.int64)))


@functools.cache
def classifier(dataset: str, state: str) -> Classified:
    """A one-hidden-layer MLP's held-out logits on digits / iris / wine, in one of :data:`STATES`."""
    if state == "over-confident":
        trained = classifier(dataset, "trained")
        return Classified(_freeze(trained.logits * OVER_CONFIDENCE), trained.labels)
    data = table(dataset)
    _, held = split(data.targets.shape[0])
    model, weight = _classifier_model(dataset, state)
    with torch.no_grad():
        logits = model(tensor(data.features[held]))
    return Classified(_float(logits), _freeze(data.targets[held].astype(np.int64)), weight)


# --- binary classification --------------------------------------------------------------


@dataclass(frozen=True)
class Binary:
    """A binary head's logits ``[batch]`` and the float 0/1 labels ``[batch]``.

    ``pos_weight`` is the ``pos_weight=`` it was trained with (``weighted`` state), else None.
    """

    logits: np.ndarray
    labels: np.ndarray
    pos_weight: float | None = None


# the weighted state keeps this fraction of the malignant tumours (the positives): the
# training split's 138 go down to 18 against 241 benign (pos_weight 13.4)
POSITIVE_FRACTION = 0.15


@functools.cache
def binary(state: str) -> Binary:
    """A one-hidden-layer MLP's held-out single logit on breast cancer (positive = malignant)."""
    if state == "over-confident":
        trained = binary("trained")
        return Binary(_freeze(trained.logits * OVER_CONFIDENCE), trained.labels)
    data = table("breast-cancer")
    labels = (data.targets == 0).astype(np.float32)  # scikit-learn codes malignant as 0
    train, held = split(labels.shape[0])
    if state == "weighted":
        rng = np.random.default_rng(SEED)
        keep = (labels[train] == 0) | (rng.random(train.shape[0]) < POSITIVE_FRACTION)
        train = train[keep]
    features, targets = tensor(data.features[train]), tensor(labels[train])
    torch.manual_seed(SEED)
    model = mlp(features.shape[1], 1)
    pos_weight = None
    if state == "weighted":
        positives = float(targets.sum())
        pos_weight = round((targets.shape[0] - positives) / positives, 4)
    if state == "prior":
        rate = targets.mean()
        _prior_head(model, torch.log(rate / (1 - rate)).reshape(1))
    elif state != "untrained":
        smoothed = targets * (1 - LABEL_SMOOTHING) + LABEL_SMOOTHING / 2
        goal = smoothed if state == "smoothed" else targets
        weight_tensor = None if pos_weight is None else torch.tensor([pos_weight])

        def objective() -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(
                model(features).squeeze(1), goal, pos_weight=weight_tensor
            )

        fit(model, objective)
    with torch.no_grad():
        logits = model(tensor(data.features[held])).squeeze(1)
    return Binary(_float(logits), _freeze(labels[held]), pos_weight)


# --- regression -------------------------------------------------------------------------


@dataclass(frozen=True)
class Regressed:
    """A regression head's predictions and targets, both ``[batch]`` or ``[batch, outputs]``."""

    predictions: np.ndarray
    targets: np.ndarray


# no "prior" state for regression: a head with weights ≈ 0 and the target mean as bias outputs
# the mean ± 0.01 for every sample, which is exactly the collapsed-predictions mistake (a
# model stuck at the mean) and cannot be told apart from it; the prior initialisation is a
# classification habit (log prior / log-odds), checked there
REGRESSION_STATES = ("untrained", "trained", "raw-scale")
# regression heads stop early: at STEPS the diabetes MLP overfits its 294 training patients and
# its held-out MSE (1.03 standardized) is worse than predicting the mean (0.99); after 100
# steps at lr 0.01 it is 0.60 (R² ≈ 0.4; a linear model's is 0.54 on the same split)
REGRESSION_STEPS = 100
REGRESSION_LEARNING_RATE = 0.01


@functools.cache
def regression(dataset: str, state: str) -> Regressed:
    """An MLP's held-out predictions on diabetes (``[batch]``) or linnerud (``[batch, 3]``).

    The model is trained on standardized targets, as usual; ``raw-scale`` un-standardizes the
    trained model's predictions (``pred * std + mean``) and compares them with the raw targets,
    the correct way to report a loss in the target's units.
    Linnerud has 20 samples: its model reports on all 20 (it is trained on them too).
    """
    data = table(dataset)
    raw = data.targets.astype(np.float32)
    raw = raw if raw.ndim == 2 else raw[:, None]
    train, held = split(raw.shape[0])
    if dataset == "linnerud":
        train = held = np.arange(raw.shape[0])
    mean, spread = raw[train].mean(axis=0), raw[train].std(axis=0)
    standardized = (raw - mean) / spread
    features, goal = tensor(data.features[train]), tensor(standardized[train])
    torch.manual_seed(SEED)
    model = mlp(features.shape[1], raw.shape[1])
    if state != "untrained":
        fit(
            model,
            lambda: F.mse_loss(model(features), goal),
            REGRESSION_STEPS,
            REGRESSION_LEARNING_RATE,
        )
    with torch.no_grad():
        predictions = model(tensor(data.features[held])).numpy()
    targets = standardized[held]
    if state == "raw-scale":
        predictions, targets = predictions * spread + mean, raw[held]
    if dataset == "diabetes":
        predictions, targets = predictions[:, 0], targets[:, 0]
    return Regressed(_freeze(predictions.astype(np.float32)), _freeze(targets.astype(np.float32)))


@dataclass(frozen=True)
class Gaussian:
    """A heteroscedastic regressor: mean ``[batch]``, target ``[batch]``, variance ``[batch]``."""

    mean: np.ndarray
    targets: np.ndarray
    variance: np.ndarray


@functools.cache
def heteroscedastic(state: str) -> Gaussian:
    """A linear model with a mean and a variance head (softplus) on diabetes, gaussian_nll_loss.

    Targets are standardized; outputs are on the held-out split. ``untrained`` is the default
    initialisation (variance ≈ softplus(0) ≈ 0.69). Linear, not the MLP: the MLP's variance
    head overfits the 294 training patients (held-out variances down to 0.002, mean squared
    z-score 4.9, NLL 1.66); the linear one is calibrated (mean z² 0.91, NLL 0.17).
    """
    data = table("diabetes")
    raw = data.targets.astype(np.float32)
    train, held = split(raw.shape[0])
    standardized = (raw - raw[train].mean()) / raw[train].std()
    torch.manual_seed(SEED)
    model = nn.Linear(data.features.shape[1], 2)

    def heads(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(tensor(data.features[rows]))
        return out[:, 0], F.softplus(out[:, 1]) + 1e-4

    if state != "untrained":
        goal = tensor(standardized[train])

        def objective() -> torch.Tensor:
            mean, variance = heads(train)
            return F.gaussian_nll_loss(mean, goal, variance)

        fit(model, objective, REGRESSION_STEPS, REGRESSION_LEARNING_RATE)
    with torch.no_grad():
        mean, variance = heads(held)
    return Gaussian(_float(mean), _freeze(standardized[held]), _float(variance))


@dataclass(frozen=True)
class Counts:
    """A Poisson GLM's log-rates ``[batch]`` and the observed counts ``[batch]`` (float32)."""

    log_rates: np.ndarray
    counts: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        return _freeze(np.exp(self.log_rates).astype(np.float32))


def _visits() -> np.ndarray:
    """Synthetic counts from a known log-linear rate on the diabetes features.

    The true rate is exp(0.4 · x·w + log 6) with w a fixed random unit direction: mean count
    ≈ 6 (visits per month), 0..20.
    """
    data = table("diabetes")
    rng = np.random.default_rng(SEED)
    direction = rng.normal(size=data.features.shape[1])
    direction /= np.linalg.norm(direction)
    true_log_rate = 0.4 * data.features @ direction + math.log(6.0)
    return rng.poisson(np.exp(true_log_rate)).astype(np.float32)


@functools.cache
def poisson(state: str, counts_of: str = "visits") -> Counts:
    """A linear Poisson GLM on diabetes features, held-out log-rates.

    ``counts_of``: ``visits``, small synthetic counts (mean ≈ 6); or ``progression``, the
    dataset's own target, a whole number 25..346 (log-rates ≈ 4..6, every one positive).
    The bias starts at the log of the mean count, as a GLM's intercept usually does.
    """
    data = table("diabetes")
    counts = _visits() if counts_of == "visits" else data.targets.astype(np.float32)
    train, held = split(counts.shape[0])
    features, goal = tensor(data.features[train]), tensor(counts[train])
    torch.manual_seed(SEED)
    model = nn.Linear(features.shape[1], 1)
    if state != "untrained":
        with torch.no_grad():
            model.bias.fill_(math.log(float(goal.mean())))
        fit(model, lambda: F.poisson_nll_loss(model(features).squeeze(1), goal))
    with torch.no_grad():
        log_rates = model(tensor(data.features[held])).squeeze(1)
    return Counts(_float(log_rates), _freeze(counts[held]))


# --- distillation and multi-label ---------------------------------------------------------


@dataclass(frozen=True)
class Distilled:
    """A student's log-probabilities and a teacher's probabilities, ``[batch, classes]``."""

    student_log_probs: np.ndarray
    teacher_probs: np.ndarray


TEMPERATURE = 2.0


@functools.cache
def distillation(state: str, temperature: float = 1.0) -> Distilled:
    """A linear student distilled from the trained digits MLP (the teacher), held-out outputs.

    With ``temperature`` T both are softened (``softmax(z / T)``), as in Hinton et al.
    """
    data = table("digits")
    train, held = split(data.targets.shape[0])
    teacher, _ = _classifier_model("digits", "trained")
    torch.manual_seed(SEED)
    student = nn.Linear(data.features.shape[1], int(data.targets.max()) + 1)

    def outputs(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        features = tensor(data.features[rows])
        with torch.no_grad():
            teacher_probs = (teacher(features) / temperature).softmax(1)
        return (student(features) / temperature).log_softmax(1), teacher_probs

    if state != "untrained":
        fit(student, lambda: F.kl_div(*outputs(train), reduction="batchmean"))
    with torch.no_grad():
        log_probs, teacher_probs = outputs(held)
    return Distilled(_float(log_probs), _float(teacher_probs))


# four yes/no questions about a digit: even, greater than 4, has a closed loop, prime
_TAGS = np.array(
    [[d % 2 == 0, d > 4, d in (0, 4, 6, 8, 9), d in (2, 3, 5, 7)] for d in range(10)],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Tagged:
    """A multi-label head's logits ``[batch, tags]`` and its float 0/1 tags ``[batch, tags]``."""

    logits: np.ndarray
    tags: np.ndarray

    @property
    def tag_indices(self) -> np.ndarray:
        """The tags as multilabel-margin wants them: int64 indices of the ones, padded with -1."""
        indices = np.full(self.tags.shape, -1, dtype=np.int64)
        for row, tags in enumerate(self.tags):
            on = np.flatnonzero(tags)
            indices[row, : on.shape[0]] = on
        return _freeze(indices)


@functools.cache
def multilabel(state: str) -> Tagged:
    """A one-hidden-layer MLP answering four yes/no questions about each digit (held out)."""
    data = table("digits")
    tags = _TAGS[data.targets]
    train, held = split(tags.shape[0])
    features, goal = tensor(data.features[train]), tensor(tags[train])
    torch.manual_seed(SEED)
    model = mlp(features.shape[1], tags.shape[1])
    if state == "prior":
        rate = goal.mean(dim=0)
        _prior_head(model, torch.log(rate / (1 - rate)))
    elif state != "untrained":
        fit(model, lambda: F.binary_cross_entropy_with_logits(model(features), goal))
    with torch.no_grad():
        logits = model(tensor(data.features[held]))
    return Tagged(_float(logits), _freeze(tags[held]))


# --- segmentation -------------------------------------------------------------------------

# digits pixels run 0..16: ink levels for the masks
MAX_PIXEL = 16
INK = 8.0  # a pixel at least half dark is ink
FAINT = 2.0  # a pixel above this but below INK is the stroke's faint edge
SEGMENTATION_IMAGES = 96  # 64 to train on, 32 held out
PIXEL_NOISE = 0.5  # the model sees the image with this much Gaussian noise (in std units)


@dataclass(frozen=True)
class Segmented:
    """A per-pixel classifier's logits ``[batch, classes, H, W]`` and mask ``[batch, H, W]``.

    Binary masks (one class) are float 0/1 ``[batch, 1, H, W]``, shaped like the logits.
    """

    logits: np.ndarray
    mask: np.ndarray


def _images() -> tuple[torch.Tensor, np.ndarray]:
    """Noisy standardized 8×8 digits images ``[batch, 1, 8, 8]`` and their raw pixels."""
    pixels = datasets.load_digits().images[:SEGMENTATION_IMAGES]
    rng = np.random.default_rng(SEED)
    scaled = (pixels - pixels.mean()) / pixels.std()
    noisy = scaled + PIXEL_NOISE * rng.normal(size=pixels.shape)
    return torch.from_numpy(noisy.astype(np.float32))[:, None], pixels


def _pixel_net(classes: int) -> nn.Sequential:
    """A per-pixel classifier: a 3×3 convolution, ReLU, a 1×1 convolution to the classes."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, classes, 1))


def _pixel_prior(mask: torch.Tensor, classes: int) -> torch.Tensor:
    """The log prior of each class over the pixels (the log-odds of ink for one class)."""
    if classes == 1:
        rate = mask.mean()
        return torch.log(rate / (1 - rate)).reshape(1)
    return (torch.bincount(mask.flatten(), minlength=classes) / mask.numel()).log()


@functools.cache
def segmentation(state: str, classes: int = 3) -> Segmented:
    """Per-pixel classes (background, faint edge, ink) or, with ``classes == 1``, a binary ink mask.

    Any other ``classes`` quantises the ink into that many levels (8: logits ``[batch, 8, 8,
    8]``, where the class dimension cannot be told from the image dimensions by shape).

    Multi-class: logits ``[batch, 3, 8, 8]`` and int64 mask ``[batch, 8, 8]``. Binary: logits
    ``[batch, 1, 8, 8]`` and float 0/1 mask ``[batch, 1, 8, 8]`` (bce-logits, dice, focal).
    Outputs are on the held-out images.
    """
    images, pixels = _images()
    if classes == 1:
        mask = torch.from_numpy((pixels >= INK).astype(np.float32))[:, None]
    elif classes == 3:
        levels = (pixels > FAINT).astype(np.int64) + (pixels >= INK).astype(np.int64)
        mask = torch.from_numpy(levels)
    else:  # ink quantised to `classes` levels; 8 levels on 8×8 images make C == H == W
        mask = torch.from_numpy((pixels * classes // (MAX_PIXEL + 1)).astype(np.int64))
    train, held = split(SEGMENTATION_IMAGES)
    torch.manual_seed(SEED)
    model = _pixel_net(classes)
    if state == "prior":
        _prior_head(model, _pixel_prior(mask[train], classes))
    elif state != "untrained":
        inputs, goal = images[train], mask[train]
        if classes == 1:
            fit(model, lambda: F.binary_cross_entropy_with_logits(model(inputs), goal))
        else:
            fit(model, lambda: F.cross_entropy(model(inputs), goal))
    with torch.no_grad():
        logits = model(images[held])
    return Segmented(_float(logits), _freeze(mask[held].numpy()))


VOID = 255


def void_border(mask: np.ndarray) -> np.ndarray:
    """VOC-style masks: the void label 255 on every background pixel touching a stroke."""
    ink = mask > 0
    grown = ink.copy()
    grown[:, 1:, :] |= ink[:, :-1, :]
    grown[:, :-1, :] |= ink[:, 1:, :]
    grown[:, :, 1:] |= ink[:, :, :-1]
    grown[:, :, :-1] |= ink[:, :, 1:]
    voided = mask.copy()
    voided[grown & ~ink] = VOID
    return _freeze(voided)


# --- sequences ----------------------------------------------------------------------------

PAD = 0
END_PAD = 8  # a pad id at the end of the vocabulary (GPT-2 pads with its last id, 50256)
SEQUENCE_IMAGES = 384  # 256 sentences to train on, 128 held out
MIN_LENGTH = 4


@dataclass(frozen=True)
class Sequenced:
    """A token tagger's logits ``[batch, classes, time]`` and int64 tokens ``[batch, time]``.

    ``pad`` is the id filling the ends of the shorter sequences (None: no padding).
    """

    logits: np.ndarray
    tokens: np.ndarray
    pad: int | None


def _sentences(pad: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Digit images as sentences: rows ``[batch, time, 8]`` and tokens ``[batch, time]``."""
    rows = datasets.load_digits().images[:SEQUENCE_IMAGES].astype(np.float32) / MAX_PIXEL
    tokens = rows.argmax(axis=2).astype(np.int64)  # 0..7: the column of the darkest pixel
    if pad is not None:
        rng = np.random.default_rng(SEED)
        lengths = rng.integers(MIN_LENGTH, rows.shape[1] + 1, size=rows.shape[0])
        if pad == 0:
            tokens = tokens + 1  # ids 1..8 after the pad, as a tokenizer with <pad> = 0
        for index, length in enumerate(lengths):
            tokens[index, length:] = pad
            rows[index, length:] = 0.0
    return rows, tokens


@functools.cache
def sequence(state: str, pad: int | None = PAD) -> Sequenced:
    """Each digit image read row by row: the token of a row is the column of its darkest pixel.

    Padded (``pad`` 0 or :data:`END_PAD`): a vocabulary of 9 over 8 steps, the sequences cut
    to a seeded length of 4..8 rows, as sentences padded to the longest with ``pad`` (tokens
    1..8 with pad 0, as ``<pad>`` = 0 tokenizers; tokens 0..7 with pad 8, as GPT-2's pad = the
    last id); trained with ``ignore_index=pad``. ``pad=None``: tokens 0..7 over 8 steps, no
    padding (vocabulary 8: T == C). The model is a per-step MLP over the row's 8 pixels
    (padded steps see zero rows); logits are on the held-out sentences.
    """
    rows, tokens = _sentences(pad)
    train, held = split(SEQUENCE_IMAGES)
    # the vocabulary is every column a row's darkest pixel can be in, plus the pad: some ids
    # never occur (no digit is darkest in its last column), as in any real vocabulary
    classes = rows.shape[2] + (pad is not None)
    ignore = -100 if pad is None else pad
    torch.manual_seed(SEED)
    model = mlp(rows.shape[2], classes)

    def logits_of(which: np.ndarray) -> torch.Tensor:
        return model(tensor(rows[which])).permute(0, 2, 1)  # [batch, time, C] → [batch, C, time]

    if state != "untrained":
        goal = tensor(tokens[train])
        fit(model, lambda: F.cross_entropy(logits_of(train), goal, ignore_index=ignore))
    with torch.no_grad():
        logits = logits_of(held)
    return Sequenced(_float(logits), _freeze(tokens[held]), pad)


# --- embeddings ---------------------------------------------------------------------------

EMBEDDING_DIM = 16
TRIPLETS = 256


def triplet_indices(labels: np.ndarray, count: int = TRIPLETS) -> tuple[np.ndarray, ...]:
    """Seeded (anchor, positive, negative) sample indices: same class, then another class."""
    rng = np.random.default_rng(SEED)
    anchor = rng.integers(0, labels.shape[0], size=count)
    positive = np.array([rng.choice(np.flatnonzero(labels == labels[a])) for a in anchor])
    negative = np.array([rng.choice(np.flatnonzero(labels != labels[a])) for a in anchor])
    return anchor, positive, negative


def pair_indices(labels: np.ndarray, count: int = TRIPLETS) -> tuple[np.ndarray, np.ndarray]:
    """Seeded pairs (first, second): half of the same class, half of different classes."""
    anchor, positive, negative = triplet_indices(labels, count)
    same = np.arange(count) % 2 == 0
    return anchor, np.where(same, positive, negative)


@functools.cache
def embedding(state: str) -> Classified:
    """A small embedding net on digits (64 → 32 → 16), trained with a triplet margin loss.

    Returns the held-out embeddings ``[batch, 16]`` (in ``logits``) and their digit labels.
    """
    data = table("digits")
    labels = data.targets.astype(np.int64)
    train, held = split(labels.shape[0])
    features = tensor(data.features[train])
    torch.manual_seed(SEED)
    model = mlp(features.shape[1], EMBEDDING_DIM)
    anchor, positive, negative = (tensor(i) for i in triplet_indices(labels[train]))
    if state != "untrained":

        def objective() -> torch.Tensor:
            out = model(features)
            return F.triplet_margin_loss(out[anchor], out[positive], out[negative])

        fit(model, objective)
    with torch.no_grad():
        out = model(tensor(data.features[held]))
    return Classified(_float(out), _freeze(labels[held]))


@dataclass(frozen=True)
class Triplets:
    """Anchor, positive and negative embeddings, each ``[batch, features]``."""

    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray


@functools.cache
def triplets(state: str) -> Triplets:
    net = embedding(state)
    anchor, positive, negative = triplet_indices(net.labels)
    return Triplets(
        _freeze(net.logits[anchor]), _freeze(net.logits[positive]), _freeze(net.logits[negative])
    )


@dataclass(frozen=True)
class Pairs:
    """Two embeddings ``[batch, features]`` and whether they match, as -1/1 ``[batch]``."""

    first: np.ndarray
    second: np.ndarray
    signs: np.ndarray

    @property
    def distances(self) -> np.ndarray:
        """The Euclidean distance of each pair ``[batch]`` (what hinge-embedding is given)."""
        return _freeze(np.linalg.norm(self.first - self.second, axis=1).astype(np.float32))


@functools.cache
def pairs(state: str) -> Pairs:
    net = embedding(state)
    first, second = pair_indices(net.labels)
    same = net.labels[first] == net.labels[second]
    return Pairs(
        _freeze(net.logits[first]),
        _freeze(net.logits[second]),
        _freeze(np.where(same, 1.0, -1.0).astype(np.float32)),
    )


@dataclass(frozen=True)
class Ranked:
    """Two scores ``[batch]`` and -1/1 ``[batch]``: 1 where the first should rank higher."""

    first: np.ndarray
    second: np.ndarray
    signs: np.ndarray


@functools.cache
def ranking(state: str) -> Ranked:
    """Pairs of diabetes patients scored by the regression MLP: who progresses more."""
    regressed = regression("diabetes", state)
    rng = np.random.default_rng(SEED)
    first = rng.integers(0, regressed.targets.shape[0], size=TRIPLETS)
    second = rng.integers(0, regressed.targets.shape[0], size=TRIPLETS)
    keep = regressed.targets[first] != regressed.targets[second]
    first, second = first[keep], second[keep]
    signs = np.where(regressed.targets[first] > regressed.targets[second], 1.0, -1.0)
    return Ranked(
        _freeze(regressed.predictions[first]),
        _freeze(regressed.predictions[second]),
        _freeze(signs.astype(np.float32)),
    )


# --- ctc ----------------------------------------------------------------------------------

CTC_FRAMES = 48  # the longest utterance: 2 + 6 labels × (5 + 2) frames = 44
CTC_CLASSES = 8  # blank 0 and labels 1..7
CTC_UTTERANCES = 72  # 48 to train on, 24 held out
FRAME_NOISE = 1.0


@dataclass(frozen=True)
class Aligned:
    """CTC inputs: log_probs ``[time, batch, classes]``, padded targets ``[batch, S]``, lengths."""

    log_probs: np.ndarray
    targets: np.ndarray
    input_lengths: np.ndarray
    target_lengths: np.ndarray


def _utterances() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded frame labels ``[time, batch]`` (each label held 3..5 frames, blanks between),
    padded targets, input and target lengths."""
    rng = np.random.default_rng(SEED)
    frames = np.zeros((CTC_FRAMES, CTC_UTTERANCES), dtype=np.int64)
    target_lengths = rng.integers(3, 7, size=CTC_UTTERANCES)
    targets = np.zeros((CTC_UTTERANCES, int(target_lengths.max())), dtype=np.int64)
    input_lengths = np.zeros(CTC_UTTERANCES, dtype=np.int64)
    for n, length in enumerate(target_lengths):
        labels = rng.integers(1, CTC_CLASSES, size=length)
        targets[n, :length] = labels
        t = int(rng.integers(0, 3))
        for label in labels:
            hold = int(rng.integers(3, 6))
            frames[t : t + hold, n] = label
            t += hold + int(rng.integers(1, 3))
        input_lengths[n] = min(CTC_FRAMES, t + int(rng.integers(0, 4)))
    return frames, targets, input_lengths, target_lengths.astype(np.int64)


@functools.cache
def ctc(state: str) -> Aligned:
    """A linear frame classifier over noisy one-hot acoustic frames, trained with ctc_loss."""
    frames, targets, input_lengths, target_lengths = _utterances()
    rng = np.random.default_rng(SEED + 1)
    acoustic = np.eye(CTC_CLASSES, dtype=np.float32)[frames]
    acoustic += FRAME_NOISE * rng.normal(size=acoustic.shape).astype(np.float32)
    train, held = split(CTC_UTTERANCES)
    torch.manual_seed(SEED)
    model = nn.Linear(CTC_CLASSES, CTC_CLASSES)
    if state != "untrained":
        features = tensor(acoustic[:, train])  # [time, batch, classes]
        given = tuple(tensor(a[train]) for a in (targets, input_lengths, target_lengths))
        fit(model, lambda: F.ctc_loss(model(features).log_softmax(2), *given))
    with torch.no_grad():
        log_probs = model(tensor(acoustic[:, held])).log_softmax(2)
    return Aligned(
        _float(log_probs),
        _freeze(targets[held]),
        _freeze(input_lengths[held]),
        _freeze(target_lengths[held]),
    )


# --- broken training runs (for the mistakes) ----------------------------------------------

DOUBLE_SCALE = 255.0  # a pipeline that divides by 255 as if the features were 8-bit pixels


@functools.cache
def collapsed_regression() -> Regressed:
    """A diabetes MLP stuck at the target mean, raw scale (held out).

    scikit-learn's diabetes features come already scaled (each column std ≈ 0.048); the
    pipeline divides them by 255 again, so the MLP sees inputs ≈ 2e-4 and, in the usual 100
    steps, can only learn the mean: held-out predictions 152.3 ± 0.17 against targets ± 77.
    """
    features, targets = datasets.load_diabetes(return_X_y=True)
    raw = targets.astype(np.float32)
    train, held = split(raw.shape[0])
    mean, spread = raw[train].mean(), raw[train].std()
    shrunk = (features / DOUBLE_SCALE).astype(np.float32)
    inputs, goal = tensor(shrunk[train]), tensor((raw[train] - mean) / spread)[:, None]
    torch.manual_seed(SEED)
    model = mlp(inputs.shape[1], 1)
    fit(model, lambda: F.mse_loss(model(inputs), goal), REGRESSION_STEPS, REGRESSION_LEARNING_RATE)
    with torch.no_grad():
        predictions = model(tensor(shrunk[held]))[:, 0].numpy() * spread + mean
    return Regressed(_freeze(predictions.astype(np.float32)), _freeze(raw[held]))


@functools.cache
def collapsed_triplets() -> Triplets:
    """Triplets from an embedding net fed pixels divided by 255 twice, at its first validation.

    Every input is ≈ 0, so every embedding is ≈ the output layer's bias (spread across samples
    ≈ 1.5e-5 against a norm ≈ 0.4): the triplet loss sits at its margin.
    """
    digits = datasets.load_digits()
    shrunk = (digits.data / DOUBLE_SCALE / DOUBLE_SCALE).astype(np.float32)
    _, held = split(shrunk.shape[0])
    torch.manual_seed(SEED)
    model = mlp(shrunk.shape[1], EMBEDDING_DIM)
    with torch.no_grad():
        out = model(tensor(shrunk[held])).numpy()
    anchor, positive, negative = triplet_indices(digits.target[held])
    return Triplets(_freeze(out[anchor]), _freeze(out[positive]), _freeze(out[negative]))


@functools.cache
def shared_variance() -> Gaussian:
    """Linnerud's three exercise targets with one variance per athlete: mean ``[20, 3]``,
    target ``[20, 3]`` (standardized), variance ``[20, 1]`` (a single softplus head), as
    gaussian_nll_loss allows and the model was trained with."""
    data = table("linnerud")
    raw = data.targets.astype(np.float32)
    standardized = tensor((raw - raw.mean(axis=0)) / raw.std(axis=0))
    features = tensor(data.features)
    torch.manual_seed(SEED)
    model = nn.Linear(features.shape[1], raw.shape[1] + 1)

    def heads() -> tuple[torch.Tensor, torch.Tensor]:
        out = model(features)
        return out[:, :-1], F.softplus(out[:, -1:]) + 1e-4

    def objective() -> torch.Tensor:
        mean, variance = heads()
        return F.gaussian_nll_loss(mean, standardized, variance)

    fit(model, objective, REGRESSION_STEPS, REGRESSION_LEARNING_RATE)
    with torch.no_grad():
        mean, variance = heads()
    return Gaussian(_float(mean), _float(standardized), _float(variance))
