"""Clean outputs of real models, for every loss family and model state: nothing may fire.

Each case passes a real model's outputs (tests/realistic.py: tiny torch models trained on
scikit-learn's bundled datasets, outputs on a held-out split) correctly to a loss that suits
them (usually the one the model was trained with), and runs ``losscli debug --format json``.
It must exit 0 with no warning or error and offer no fix (an info may carry its documented
suggestion, see realistic.SUGGESTIONS): any alarm here is a false alarm, a bug. Every case
runs on the full held-out batch and on a small seeded batch (a DataLoader's last batch:
N = 8..16); the trained state of each family also runs streamed (judged in chunks, as inputs
larger than memory are).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import realistic as real
import torch
from debug_runner import debug
from realistic import SUGGESTIONS

from losscli import losses


@dataclass(frozen=True)
class Clean:
    """A correct call: the loss, its inputs in torch's order, options, and each batch dimension.

    Attributes:
        loss: the loss the model was trained with.
        inputs: the arrays, in the order of the loss's arguments.
        options: the losscli options of the call (as in the training code).
        batch_dims: the batch dimension of each input (ctc log_probs: 1); default all 0.
        formats: how each input is saved: ``npy`` (default), ``pt`` (a torch tensor, as
            ``torch.save(model(x))`` writes it) or ``csv`` (a ``label`` column of integers, as
            a data pipeline exports labels).
    """

    loss: str
    inputs: tuple[np.ndarray, ...]
    options: tuple[str, ...] = ()
    batch_dims: tuple[int, ...] = ()
    formats: tuple[str, ...] = ()

    def saved(self) -> tuple[np.ndarray | torch.Tensor | str, ...]:
        """The inputs as :func:`debug_runner.debug` saves them, in their formats."""
        formats = self.formats or ("npy",) * len(self.inputs)
        return tuple(_as(array, kind) for array, kind in zip(self.inputs, formats, strict=True))

    def small(self, size: int, seed: int) -> Clean:
        """The same call on ``size`` seeded samples: one small batch of a shuffled loader."""
        total = self.inputs[0].shape[self.batch_dims[0] if self.batch_dims else 0]
        rows = np.sort(np.random.default_rng(seed).choice(total, size=size, replace=False))
        dims = self.batch_dims or (0,) * len(self.inputs)
        return Clean(
            self.loss,
            tuple(
                np.take(array, rows, axis=dim) for array, dim in zip(self.inputs, dims, strict=True)
            ),
            self.options,
            self.batch_dims,
            self.formats,
        )


def _as(array: np.ndarray, kind: str) -> np.ndarray | torch.Tensor | str:
    if kind == "pt":
        return torch.from_numpy(np.array(array))
    if kind == "csv":
        return "label\n" + "".join(f"{int(v)}\n" for v in array)
    return array


def inline(values: tuple[float, ...] | list[float]) -> str:
    """A tensor option as losscli reads it inline: a JSON array."""
    return json.dumps([float(v) for v in values])


def log_softmax(logits: np.ndarray, dim: int = 1) -> np.ndarray:
    return torch.from_numpy(np.array(logits)).log_softmax(dim).numpy()


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.array(logits)).sigmoid().numpy()


def over_confident(logits: np.ndarray) -> np.ndarray:
    return (logits * real.OVER_CONFIDENCE).astype(np.float32)


# --- the cases ----------------------------------------------------------------------------

CLASSIFIER_DATASETS = ("digits", "iris", "wine")


def _multiclass(dataset: str, state: str) -> Clean:
    model = real.classifier(dataset, state)
    options: tuple[str, ...] = ()
    if state == "smoothed":
        options = ("--label-smoothing", str(real.LABEL_SMOOTHING))
    if model.class_weight is not None:
        options = ("--weight", inline(model.class_weight))
    return Clean("cross-entropy", (model.logits, model.labels), options)


def _training_loss(dataset: str) -> Clean:
    """The loss on the training split of a model that fits it (a training loop's loss)."""
    model = real.training_outputs(dataset)
    return Clean("cross-entropy", (model.logits, model.labels))


def _validation_without_smoothing(dataset: str) -> Clean:
    """A label-smoothed model's validation loss, computed without smoothing (a common choice)."""
    model = real.classifier(dataset, "smoothed")
    return Clean("cross-entropy", (model.logits, model.labels))


def _saved_by_torch(dataset: str) -> Clean:
    """Logits saved with torch.save, labels exported to a CSV column."""
    model = real.classifier(dataset, "trained")
    return Clean("cross-entropy", (model.logits, model.labels), formats=("pt", "csv"))


def _binary(loss: str, state: str) -> Clean:
    model = real.binary(state)
    labels = model.labels
    if state == "smoothed":
        labels = (labels * (1 - real.LABEL_SMOOTHING) + real.LABEL_SMOOTHING / 2).astype(np.float32)
    if loss == "soft-margin":
        return Clean(loss, (model.logits, (labels * 2 - 1).astype(np.float32)))
    if loss == "bce":
        return Clean(loss, (sigmoid(model.logits), labels))
    options = () if model.pos_weight is None else ("--pos-weight", inline([model.pos_weight]))
    return Clean(loss, (model.logits, labels), options)


def _multilabel(loss: str, state: str) -> Clean:
    model = real.multilabel("trained" if state == "over-confident" else state)
    logits = over_confident(model.logits) if state == "over-confident" else model.logits
    if loss == "multilabel-margin":
        return Clean(loss, (logits, model.tag_indices))
    if loss == "bce":
        return Clean(loss, (sigmoid(logits), model.tags))
    return Clean(loss, (logits, model.tags))


def _segmentation(state: str, void: bool = False, classes: int = 3) -> Clean:
    model = real.segmentation("trained" if state == "over-confident" else state, classes)
    logits = over_confident(model.logits) if state == "over-confident" else model.logits
    if void:
        return Clean(
            "cross-entropy",
            (logits, real.void_border(model.mask)),
            ("--ignore-index", str(real.VOID)),
        )
    return Clean("cross-entropy", (logits, model.mask))


def _binary_mask(loss: str, state: str) -> Clean:
    model = real.segmentation(state, classes=1)
    return Clean(loss, (model.logits, model.mask))


def _sequence(state: str, pad: int | None = real.PAD) -> Clean:
    model = real.sequence(state, pad)
    options = () if model.pad is None else ("--ignore-index", str(model.pad))
    return Clean("cross-entropy", (model.logits, model.tokens), options)


def _regression(loss: str, dataset: str, state: str) -> Clean:
    model = real.regression(dataset, state)
    return Clean(loss, (model.predictions, model.targets))


def _gaussian(state: str) -> Clean:
    model = real.heteroscedastic(state)
    return Clean("gaussian-nll", (model.mean, model.targets, model.variance))


def _poisson(state: str, log_input: bool = True, counts_of: str = "visits") -> Clean:
    model = real.poisson(state, counts_of)
    if log_input:
        return Clean("poisson-nll", (model.log_rates, model.counts))
    return Clean("poisson-nll", (model.rates, model.counts), ("--no-log-input",))


def _distillation(state: str, temperature: float = 1.0, log_target: bool = False) -> Clean:
    model = real.distillation(state, temperature)
    if log_target:
        teacher = np.log(model.teacher_probs).astype(np.float32)
        return Clean(
            "kl-div",
            (model.student_log_probs, teacher),
            ("--reduction", "batchmean", "--log-target"),
        )
    return Clean(
        "kl-div", (model.student_log_probs, model.teacher_probs), ("--reduction", "batchmean")
    )


def _soft_targets(state: str) -> Clean:
    """Distillation written with cross-entropy: the teacher's probabilities as soft targets."""
    model = real.distillation(state, real.TEMPERATURE)
    return Clean("cross-entropy", (model.student_log_probs, model.teacher_probs))


def _nll(state: str) -> Clean:
    model = real.classifier("digits", state)
    return Clean("nll", (log_softmax(model.logits), model.labels))


def _multi_margin(state: str) -> Clean:
    model = real.classifier("digits", state)
    return Clean("multi-margin", (model.logits, model.labels))


def _triplet(loss: str, state: str) -> Clean:
    model = real.triplets(state)
    return Clean(loss, (model.anchor, model.positive, model.negative))


def _cosine(state: str) -> Clean:
    model = real.pairs(state)
    return Clean("cosine-embedding", (model.first, model.second, model.signs), ("--margin", "0.5"))


def _hinge(state: str) -> Clean:
    model = real.pairs(state)
    # the distance of a pair is the input, +1 for a same-digit pair, -1 for a different one;
    # the margin is the distance a different pair should exceed (the triplet margin, 1.0)
    return Clean("hinge-embedding", (model.distances, model.signs))


def _ranking(state: str) -> Clean:
    model = real.ranking(state)
    return Clean("margin-ranking", (model.first, model.second, model.signs), ("--margin", "0.1"))


def _ctc(state: str) -> Clean:
    model = real.ctc(state)
    return Clean(
        "ctc",
        (model.log_probs, model.targets, model.input_lengths, model.target_lengths),
        batch_dims=(1, 0, 0, 0),
    )


BINARY_STATES = ("untrained", "trained", "over-confident", "prior", "smoothed", "weighted")
# sigmoid of a logit beyond ±17 is exactly 0 or 1 in float32: the trained breast-cancer MLP's
# held-out logits reach 134 (and 670 over-confident), so bce on its probabilities rightly says
# saturated-probabilities. bce is checked on the states whose probabilities stay inside (0, 1).
BCE_STATES = ("untrained", "prior", "smoothed")
TAGGER_STATES = ("untrained", "trained", "over-confident", "prior")
REGRESSION_LOSSES = ("mse", "l1", "huber", "smooth-l1")


def _cases() -> dict[str, Callable[[], Clean]]:
    cases: dict[str, Callable[[], Clean]] = {}

    def add(name: str, build: Callable[[], Clean]) -> None:
        assert name not in cases, name
        cases[name] = build

    for dataset in CLASSIFIER_DATASETS:
        for state in real.STATES:
            add(f"cross-entropy-{dataset}-{state}", lambda d=dataset, s=state: _multiclass(d, s))
    for dataset in CLASSIFIER_DATASETS:
        add(
            f"cross-entropy-{dataset}-validation",
            lambda d=dataset: _validation_without_smoothing(d),
        )
        add(f"cross-entropy-{dataset}-pt-csv", lambda d=dataset: _saved_by_torch(d))
        add(f"cross-entropy-{dataset}-training-split", lambda d=dataset: _training_loss(d))
    for state in ("untrained", "trained", "over-confident", "prior"):
        add(f"nll-digits-{state}", lambda s=state: _nll(s))
    for state in ("untrained", "trained", "over-confident"):
        add(f"multi-margin-digits-{state}", lambda s=state: _multi_margin(s))
    for state in BINARY_STATES:
        add(f"bce-logits-cancer-{state}", lambda s=state: _binary("bce-logits", s))
    for state in ("untrained", "trained", "prior"):
        add(f"soft-margin-cancer-{state}", lambda s=state: _binary("soft-margin", s))
    for state in BCE_STATES:
        add(f"bce-cancer-{state}", lambda s=state: _binary("bce", s))
    for loss in ("bce-logits", "multilabel-soft-margin", "multilabel-margin", "focal"):
        for state in TAGGER_STATES:
            add(f"{loss}-tags-{state}", lambda lo=loss, s=state: _multilabel(lo, s))
    for state in ("untrained", "prior"):
        add(f"bce-tags-{state}", lambda s=state: _multilabel("bce", s))
    for state in ("untrained", "trained", "over-confident", "prior"):
        add(f"segmentation-{state}", lambda s=state: _segmentation(s))
    for state in ("untrained", "trained"):
        add(f"segmentation-void-{state}", lambda s=state: _segmentation(s, void=True))
        add(f"segmentation-square-{state}", lambda s=state: _segmentation(s, classes=8))
    for loss in ("bce-logits", "dice", "focal"):
        for state in ("untrained", "trained", "prior"):
            add(f"{loss}-mask-{state}", lambda lo=loss, s=state: _binary_mask(lo, s))
    for state in ("untrained", "trained"):
        add(f"sequence-padded-{state}", lambda s=state: _sequence(s))
        add(f"sequence-end-pad-{state}", lambda s=state: _sequence(s, real.END_PAD))
        add(f"sequence-square-{state}", lambda s=state: _sequence(s, pad=None))
    for loss in REGRESSION_LOSSES:
        for dataset in ("diabetes", "linnerud"):
            for state in real.REGRESSION_STATES:
                add(
                    f"{loss}-{dataset}-{state}",
                    lambda lo=loss, d=dataset, s=state: _regression(lo, d, s),
                )
    for state in ("untrained", "trained"):
        add(f"gaussian-nll-{state}", lambda s=state: _gaussian(s))
        add(f"poisson-nll-log-rates-{state}", lambda s=state: _poisson(s))
        add(f"poisson-nll-rates-{state}", lambda s=state: _poisson(s, log_input=False))
        add(f"kl-div-distillation-{state}", lambda s=state: _distillation(s))
        add(
            f"kl-div-distillation-t2-{state}",
            lambda s=state: _distillation(s, real.TEMPERATURE),
        )
        add(
            f"kl-div-log-target-{state}",
            lambda s=state: _distillation(s, log_target=True),
        )
        add(f"cross-entropy-soft-targets-{state}", lambda s=state: _soft_targets(s))
        for loss in ("triplet-margin", "triplet-margin-distance"):
            add(f"{loss}-{state}", lambda lo=loss, s=state: _triplet(lo, s))
        add(f"cosine-embedding-{state}", lambda s=state: _cosine(s))
        add(f"hinge-embedding-{state}", lambda s=state: _hinge(s))
        add(f"margin-ranking-{state}", lambda s=state: _ranking(s))
        add(f"ctc-{state}", lambda s=state: _ctc(s))
    add("poisson-nll-progression-log-rates", lambda: _poisson("trained", counts_of="progression"))
    add(
        "poisson-nll-progression-rates",
        lambda: _poisson("trained", log_input=False, counts_of="progression"),
    )
    return cases


# --- variants: the same outputs under the other options and forms training code uses ------


def _soft_label_smoothing() -> Clean:
    """Label smoothing written by hand: (1 - ε)·one-hot + ε/C as probability targets."""
    model = real.classifier("digits", "trained")
    classes = model.logits.shape[1]
    eps = real.LABEL_SMOOTHING
    soft = ((1 - eps) * np.eye(classes)[model.labels] + eps / classes).astype(np.float32)
    return Clean("cross-entropy", (model.logits, soft))


def _reduction(loss: str, reduction: str) -> Clean:
    base = {
        "cross-entropy": lambda: _multiclass("digits", "trained"),
        "kl-div": lambda: _distillation("trained"),
        "ctc": lambda: _ctc("trained"),
    }[loss]()
    options = tuple(o for o in base.options if o not in ("--reduction", "batchmean"))
    return Clean(loss, base.inputs, (*options, "--reduction", reduction), base.batch_dims)


def _with(build: Callable[[], Clean], *options: str) -> Callable[[], Clean]:
    def variant() -> Clean:
        case = build()
        return Clean(case.loss, case.inputs, (*case.options, *options), case.batch_dims)

    return variant


def _homoscedastic() -> Clean:
    """One learned variance for every sample (a scalar parameter expanded to the batch)."""
    model = real.heteroscedastic("trained")
    variance = np.full_like(model.mean, float(np.mean((model.mean - model.targets) ** 2)))
    return Clean("gaussian-nll", (model.mean, model.targets, variance))


def _tags_pos_weight() -> Clean:
    """Multi-label tags with a per-tag pos_weight = negatives / positives."""
    model = real.multilabel("trained")
    pos_weight = (1 - model.tags).sum(axis=0) / model.tags.sum(axis=0)
    return Clean("bce-logits", (model.logits, model.tags), ("--pos-weight", inline(pos_weight)))


def _segmentation_weighted() -> Clean:
    """Per-pixel class weights by inverse frequency (the faint edge is 12% of the pixels)."""
    model = real.segmentation("trained")
    counts = np.bincount(model.mask.ravel(), minlength=model.logits.shape[1])
    weight = model.mask.size / (counts.shape[0] * counts)
    return Clean("cross-entropy", (model.logits, model.mask), ("--weight", inline(weight)))


def _converted(
    build: Callable[[], Clean], index: int, dtype: type[np.generic]
) -> Callable[[], Clean]:
    """The same call with one input stored in another dtype (a float64 model's logits)."""

    def variant() -> Clean:
        case = build()
        inputs = list(case.inputs)
        inputs[index] = inputs[index].astype(dtype)
        return Clean(case.loss, tuple(inputs), case.options, case.batch_dims)

    return variant


def _column(build: Callable[[], Clean]) -> Callable[[], Clean]:
    """Regression with a head of shape (N, 1) and targets unsqueezed to (N, 1), as they should."""

    def variant() -> Clean:
        case = build()
        return Clean(case.loss, tuple(a[:, None] for a in case.inputs), case.options)

    return variant


def _all_correct(build: Callable[[], Clean]) -> Callable[[], Clean]:
    """Only the samples an over-confident model gets right: the loss and gradient ≈ 0, rightly."""

    def variant() -> Clean:
        case = build()
        logits, labels = case.inputs
        right = (logits > 0) == (labels > 0.5) if logits.ndim == 1 else logits.argmax(1) == labels
        rows = np.flatnonzero(right)
        return Clean(case.loss, (logits[rows], labels[rows]), case.options)

    return variant


def _untrained_raw_scale() -> Clean:
    """An untrained model's first validation loss on the raw diabetes scale (≈ 0 vs ≈ 152)."""
    untrained = real.regression("diabetes", "untrained")
    raw = real.regression("diabetes", "raw-scale")
    return Clean("mse", (untrained.predictions, raw.targets))


# not here: labels or targets in integer dtypes. torch 2.13 refuses int32 class indices
# ("expected target dtype to be Long or Byte, but got Int"), so dtype-conversion's `.long()` is
# right there; it accepts uint8 masks and int64 mse / poisson-nll targets, where losscli still
# offers `.long()` / `.float()` under its info findings dtype-conversion and
# int-target-for-float-loss (SPEC: info; harmless, the value is the same), so those calls are
# not "nothing offered".
VARIANTS: dict[str, Callable[[], Clean]] = {
    "cross-entropy-hand-smoothed-targets": _soft_label_smoothing,
    "cross-entropy-reduction-sum": lambda: _reduction("cross-entropy", "sum"),
    "cross-entropy-reduction-none": lambda: _reduction("cross-entropy", "none"),
    "kl-div-reduction-sum": lambda: _reduction("kl-div", "sum"),
    "ctc-reduction-sum": lambda: _reduction("ctc", "sum"),
    "ctc-zero-infinity": _with(lambda: _ctc("trained"), "--zero-infinity"),
    "nll-digits-smoothed": lambda: _nll("smoothed"),
    "gaussian-nll-homoscedastic": _homoscedastic,
    "gaussian-nll-full": _with(lambda: _gaussian("trained"), "--full"),
    "poisson-nll-full": _with(lambda: _poisson("trained"), "--full"),
    "triplet-margin-swap": _with(lambda: _triplet("triplet-margin", "trained"), "--swap"),
    "triplet-margin-distance-cosine": _with(
        lambda: _triplet("triplet-margin-distance", "trained"),
        "--distance-function",
        "cosine",
        "--margin",
        "0.2",
    ),
    "cosine-embedding-margin-0": lambda: Clean("cosine-embedding", _cosine("trained").inputs),
    "hinge-embedding-margin-2": _with(lambda: _hinge("trained"), "--margin", "2.0"),
    "margin-ranking-margin-0": lambda: Clean("margin-ranking", _ranking("trained").inputs),
    "multi-margin-p2": _with(lambda: _multi_margin("trained"), "-p", "2"),
    "bce-logits-tags-pos-weight": _tags_pos_weight,
    "dice-tags-trained": lambda: _multilabel("dice", "trained"),
    "bce-tags-trained": lambda: _multilabel("bce", "trained"),
    "cross-entropy-segmentation-weighted": _segmentation_weighted,
    "cross-entropy-sequence-smoothed": _with(
        lambda: _sequence("trained"), "--label-smoothing", str(real.LABEL_SMOOTHING)
    ),
    "focal-mask-no-alpha": _with(lambda: _binary_mask("focal", "trained"), "--alpha", "-1"),
    "cross-entropy-segmentation-float64": _converted(
        lambda: _segmentation("trained"), 0, np.float64
    ),
    "mse-column-head": _column(lambda: _regression("mse", "diabetes", "raw-scale")),
    "bce-logits-column-head": _column(lambda: _binary("bce-logits", "trained")),
    "huber-raw-scale-delta-10": _with(
        lambda: _regression("huber", "diabetes", "raw-scale"), "--delta", "10"
    ),
    "mse-untrained-raw-scale": _untrained_raw_scale,
    "cross-entropy-wine-over-confident-all-right": _all_correct(
        lambda: _multiclass("wine", "over-confident")
    ),
    "multi-margin-over-confident-all-right": _all_correct(lambda: _multi_margin("over-confident")),
    "bce-logits-cancer-over-confident-all-right": _all_correct(
        lambda: _binary("bce-logits", "over-confident")
    ),
}

CASES = {**_cases(), **VARIANTS}

# false alarms found by this suite that belong to another branch's work (strict: they fire
# today; the integrator removes the mark after merging that branch)
SMALL_BATCH = (8, 16)  # the sizes drawn for the small batches


# the memory budget that makes losscli read and judge the inputs in chunks (the streamed path
# of inputs larger than memory); 100 bytes, so even linnerud's 20 × 3 floats are chunked.
# Every "-trained" case runs streamed too, but ctc, which does not decompose over samples and
# stops with a message instead
STREAMING_BUDGET = "100B"


def _batches(name: str) -> tuple[str, ...]:
    if name.endswith("-trained") and not name.startswith("ctc"):
        return ("full", "small", "streamed")
    return ("full", "small")


def _params() -> list[object]:
    params = []
    for name in CASES:
        for batch in _batches(name):
            params.append(pytest.param(name, batch, id=f"{name}-{batch}"))
    return params


def build(name: str, batch: str) -> Clean:
    case = CASES[name]()
    if batch == "full":
        return case
    if batch == "streamed":
        return Clean(
            case.loss,
            case.inputs,
            (*case.options, "--memory-budget", STREAMING_BUDGET),
            case.batch_dims,
            case.formats,
        )
    seed = sum(map(ord, name))  # a fixed seed per case, so each draws its own batch
    size = int(np.random.default_rng(seed).integers(SMALL_BATCH[0], SMALL_BATCH[1] + 1))
    return case.small(size, seed)


@pytest.mark.parametrize(("name", "batch"), _params())
def test_clean_outputs_raise_nothing(
    name: str, batch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = build(name, batch)
    outcome = debug(tmp_path, capsys, case.loss, *case.saved(), options=case.options)
    assert outcome.report.get("streamed", False) == (batch == "streamed"), name
    assert outcome.code == 0, outcome.alarm_lines()
    assert not outcome.alarms(), outcome.alarm_lines()
    assert not outcome.offered_fixes(besides=SUGGESTIONS), outcome.summary()


# losses with no clean case here, and why
EXEMPT: dict[str, str] = {}


def test_every_loss_has_a_clean_case() -> None:
    covered = {CASES[name]().loss for name in CASES}
    catalogue = {spec.name for spec in losses.LOSSES}  # names() also lists the aliases
    assert catalogue <= set(losses.names())
    missing = catalogue - covered - set(EXEMPT)
    assert not missing, sorted(missing)
    assert not set(EXEMPT) & covered, "an exempt loss has a case: drop the exemption"


def test_small_batches_are_small_and_sliced_together() -> None:
    case = build("ctc-trained", "small")
    batch = case.inputs[0].shape[1]
    assert SMALL_BATCH[0] <= batch <= SMALL_BATCH[1]
    assert [array.shape[0] for array in case.inputs[1:]] == [batch] * 3
