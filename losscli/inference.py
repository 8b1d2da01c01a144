"""Task inference: which task the arrays look like, and which loss to run on them.

``losscli debug`` without a loss calls :func:`infer`. Inference only suggests: it
never changes what ``compute`` does, and it reads the arrays through :mod:`losscli.kinds`
(classify, then judge).

The policy, in one sentence: recommend the loss that is right for the task **given what
the predictions are**, and when the predictions need a one-line change first, name that
change in ``reason`` and keep the command the one to run after it. ``debug`` then runs the
recommended loss on the data as given, so whatever is still wrong shows up as a finding
with its fix. In detail:

=======================================  ===========  =====================================
predictions / targets                    task         loss
=======================================  ===========  =====================================
continuous targets shaped like the       regression   ``mse``
predictions
counts (whole numbers >= 0) with         count        ``poisson-nll`` (log_input)
predictions whose exp() fits them
[batch] or [batch, 1] logits, {0, 1}     binary       ``bce-logits``
targets (also 0/255 masks: divide)
the same, predictions in [0, 1]          binary       ``bce`` (``bce-logits`` on logits is
                                                      more stable), unless read as logits
                                                      they are the better calibrated
                                                      (a prior-initialised bias):
                                                      ``bce-logits``
[batch, classes, ...] logits or          multiclass   ``cross-entropy`` (log-softmax of
log-probabilities, integer targets                    log-probabilities changes nothing)
[batch, classes, ...] log-probabilities  multiclass   ``nll``
... softmax probabilities                multiclass   ``nll`` after ``torch.log`` (or logits
                                                      to ``cross-entropy``)
[batch, classes] with one-hot targets    multiclass   ``cross-entropy`` (probability targets)
[batch, classes] with multi-hot targets  multilabel   ``bce-logits`` (``bce`` on probabilities)
[batch, classes] with soft targets       multiclass   ``cross-entropy``; log-probabilities:
                                                      ``kl-div --reduction batchmean``
{-1, 1} targets, non-negative inputs     similarity   ``hinge-embedding`` (distances)
{-1, 1} targets, other inputs            binary       ``soft-margin``
x1 [batch], x2 [batch], y {-1, 1}        ranking      ``margin-ranking``
x1, x2 [batch, features], y [batch]      similarity   ``cosine-embedding``
anchor, positive, negative               metric       ``triplet-margin``
means, targets, positive variances [N]   regression   ``gaussian-nll``
log_probs [T, N, C], targets, lengths    sequence     ``ctc``
=======================================  ===========  =====================================

With predictions alone the command has a ``TARGETS`` placeholder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from losscli import text
from losscli.findings import Verified
from losscli.kinds import ArrayKind, Kind, classify
from losscli.readings import sigmoid_readings

# the placeholder for the targets in a command built from predictions alone
TARGETS = "TARGETS"


@dataclass(frozen=True)
class Recommendation:
    """What the data looks like and the loss to run on it.

    Attributes:
        task: regression, count, binary, multiclass, multilabel, ranking, similarity,
            metric or sequence.
        loss: the recommended loss's name (a key of ``losses.get``).
        reason: what was seen, and the one-line change to make first if there is one.
        command: the exact ``losscli compute ...`` line, with the user's INPUT arguments.
        options: torch keyword → value the command sets (``reduction: batchmean``).
        complete: the command has every input (False: predictions alone, ``TARGETS``
            stands for the missing targets).
        verified: what the command gives, once ``debug`` has run it with the fixes of its
            findings (:func:`losscli.fixes.recommended`); None before, or when streamed.
    """

    task: str
    loss: str
    reason: str
    command: str
    options: tuple[tuple[str, str], ...] = ()
    complete: bool = True
    verified: Verified | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``recommended`` object."""
        return {
            "task": self.task,
            "loss": self.loss,
            "command": self.command,
            "reason": self.reason,
            "verified": None if self.verified is None else self.verified.to_dict(),
        }


def command_line(
    loss: str, arguments: Sequence[str], options: Sequence[tuple[str, str]] = ()
) -> str:
    """``losscli compute LOSS INPUT... OPTIONS``, written by :class:`~losscli.invocation.Invocation`.

    Args:
        loss: the loss's name.
        arguments: the INPUT arguments as the user typed them (``TARGETS`` stays a placeholder).
        options: torch keyword → value, written as flags (``-p 2``, ``--reduction batchmean``).
    """
    from losscli.invocation import Invocation

    return Invocation(loss, tuple(arguments), tuple(options)).command()


def infer(arrays: Sequence[np.ndarray], arguments: Sequence[str]) -> Recommendation | None:
    """Infer the task from 1 to 4 arrays and recommend a loss.

    Args:
        arrays: the inputs as loaded: predictions, then targets (or x1, x2, y; anchor,
            positive, negative; input, target, var; or ctc's four).
        arguments: the INPUT arguments as the user typed them (for the command).

    Returns:
        The recommendation, or None when the shapes fit no task losscli knows.
    """
    if len(arrays) != len(arguments):
        raise ValueError("one argument per array")
    if len(arrays) == 1:
        return _from_predictions(np.asarray(arrays[0]), arguments[0])
    if len(arrays) == 2:
        return _pair_in_either_order(np.asarray(arrays[0]), np.asarray(arrays[1]), arguments)
    if len(arrays) == 3:
        return _from_triple([np.asarray(a) for a in arrays], arguments)
    if len(arrays) == 4:
        return _from_quadruple([np.asarray(a) for a in arrays], arguments)
    return None


def _recommend(
    task: str,
    loss: str,
    reason: str,
    arguments: Sequence[str],
    options: tuple[tuple[str, str], ...] = (),
) -> Recommendation:
    return Recommendation(
        task=task,
        loss=loss,
        reason=reason,
        command=command_line(loss, arguments, options),
        options=options,
        complete=TARGETS not in arguments,
    )


def _has_class_axis(predictions: np.ndarray) -> bool:
    """[batch, classes, ...] with at least two classes."""
    return predictions.ndim >= 2 and predictions.shape[1] >= 2


def _is_single_column(predictions: np.ndarray) -> bool:
    """[batch] or [batch, 1]: one score per sample."""
    return predictions.ndim == 1 or (predictions.ndim == 2 and predictions.shape[1] == 1)


def _multiclass(
    predictions: np.ndarray,
    scores: ArrayKind,
    seen: str,
    arguments: Sequence[str],
    index_targets: bool = True,
) -> Recommendation:
    """Multi-class: pick the loss from what the class scores are.

    ``index_targets`` is False for one-hot targets, which nll cannot take.
    """
    spatial = " per position (segmentation)" if predictions.ndim > 2 else ""
    described = f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}"
    if scores.kind is Kind.PROBABILITIES or scores.kind is Kind.ONE_HOT:
        return _recommend(
            "multiclass",
            "nll",
            f"{described}; {seen}: multi-class classification{spatial} on softmax probabilities. "
            "cross-entropy would apply softmax a second time: take the log and use nll "
            "(F.nll_loss(torch.log(probabilities), labels)), or better, pass the logits to "
            "cross-entropy",
            arguments,
        )
    if scores.kind is Kind.LOG_PROBABILITIES and not index_targets:
        return _recommend(
            "multiclass",
            "cross-entropy",
            f"{described}; {seen}: multi-class classification{spatial} on log-softmax output; "
            "log_softmax leaves log-probabilities unchanged, so cross-entropy computes exactly "
            "the negative log-likelihood and takes the targets as they are",
            arguments,
        )
    if scores.kind is Kind.LOG_PROBABILITIES:
        return _recommend(
            "multiclass",
            "nll",
            f"{described}; {seen}: multi-class classification{spatial} on log-softmax output, "
            "which is what nll takes (cross-entropy gives the same value)",
            arguments,
        )
    return _recommend(
        "multiclass",
        "cross-entropy",
        f"{described}; {seen}: multi-class classification{spatial} on logits",
        arguments,
    )


def _binary(
    predictions: np.ndarray,
    targets_seen: str,
    arguments: Sequence[str],
    fix: str = "",
    targets: np.ndarray | None = None,
) -> Recommendation:
    scores = classify(predictions)
    described = f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}"
    prior = _prior_logits(predictions, targets) if scores.in_unit_interval else ""
    if prior:
        return _recommend(
            "binary",
            "bce-logits",
            f"{described}; {targets_seen}: binary classification on logits{fix}; {prior}",
            arguments,
        )
    if scores.in_unit_interval:
        return _recommend(
            "binary",
            "bce",
            f"{described}; {targets_seen}: binary classification on probabilities{fix}. "
            "If you have the logits, bce-logits on them is more stable",
            arguments,
        )
    return _recommend(
        "binary",
        "bce-logits",
        f"{described}; {targets_seen}: binary classification on logits{fix}",
        arguments,
    )


def _prior_logits(predictions: np.ndarray, targets: np.ndarray | None) -> str:
    """Why scores in [0, 1] are logits: as logits they fit the targets better ("" if not).

    A classifier initialised with the prior (output bias log(p / (1 - p)), small weights)
    puts every logit near logit(p), inside [0, 1] for p in 0.5-0.73; sigmoid of them then
    matches the positive rate, while the scores read as probabilities do not, and the logit
    reading's binary cross-entropy is the lower.
    """
    if targets is None:
        return ""
    readings = sigmoid_readings(predictions, targets)
    if readings is None or not readings.logits_fit_better:
        return ""
    rate = float(np.mean(targets))
    return (
        f"the scores lie in [0, 1], but read as logits they fit the targets better (binary "
        f"cross-entropy {text.number(readings.loss_as_logits)} per element against "
        f"{text.number(readings.loss_as_probabilities)} read as probabilities; positive rate "
        f"{text.number(rate)}, logit of it {text.number(float(np.log(rate / (1 - rate)))) if 0 < rate < 1 else 'inf'}): "
        "logits of a head initialised with the prior"
    )


# counts read as a Poisson model's log-rates: exp() of the predictions must average within
# this factor of the mean count (a fitted intercept makes them equal on the training data) ...
_COUNT_SCALE = 2.0
# ... and fit the counts better than the predictions read as the counts' expected values, by
# this many nats per element (poisson-nll of both readings; a Poisson GLM on diabetes features
# fits 0.4+ nats better as log-rates, an mse model of the counts is off the scale above)
_LOG_RATE_FIT_NATS = 0.1


def _log_rates_of_counts(predictions: np.ndarray, targets: np.ndarray) -> str:
    """Why the predictions are log-rates of counts ("" if they are not).

    Counts are whole numbers >= 0 beyond 0/1; the predictions are log-rates when exp() of
    them has the counts' scale and fits them better than the predictions themselves.
    """
    counts = np.asarray(targets, dtype=np.float64).reshape(-1)
    scores = np.asarray(predictions, dtype=np.float64).reshape(-1)
    kind = classify(counts)
    if counts.size != scores.size or not kind.integral or kind.min < 0 or kind.max < 2:
        return ""
    if not np.all(np.isfinite(scores)) or not np.all(np.isfinite(counts)):
        return ""
    rates = np.exp(np.minimum(scores, 50.0))
    mean_count, mean_rate = float(counts.mean()), float(rates.mean())
    if mean_count <= 0 or not 1 / _COUNT_SCALE <= mean_rate / mean_count <= _COUNT_SCALE:
        return ""
    as_log_rates = float(np.mean(rates - counts * scores))
    as_rates = (
        float(np.mean(scores - counts * np.log(scores))) if scores.min() > 0 else float("inf")
    )
    if as_rates - as_log_rates < _LOG_RATE_FIT_NATS:
        return ""
    return (
        f"exp() of the predictions averages {text.number(mean_rate)} against a mean count of "
        f"{text.number(mean_count)}, and poisson-nll reads them as log-rates "
        f"({text.number(as_log_rates)} per element, against "
        + ("no fit" if as_rates == float("inf") else text.number(as_rates))
        + " read as rates)"
    )


def _from_predictions(predictions: np.ndarray, argument: str) -> Recommendation | None:
    arguments = (argument, TARGETS)
    if predictions.size == 0:
        return None
    if _has_class_axis(predictions):
        scores = classify(predictions, class_axis=1)
        if scores.kind in (Kind.UNIT_INTERVAL, Kind.MULTI_HOT):
            return _recommend(
                "multilabel",
                "bce",
                f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}, rows not "
                "summing to 1: independent per-class probabilities (multi-label); give the "
                "[batch, classes] 0/1 targets",
                arguments,
            )
        return _multiclass(
            predictions, scores, "no targets given (they should be class indices)", arguments
        )
    if _is_single_column(predictions):
        scores = classify(predictions)
        if scores.in_unit_interval:
            return _binary(predictions, "no targets given (they should be 0/1)", arguments)
        return _recommend(
            "regression",
            "mse",
            f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}; no targets "
            "given: one value per sample, read as regression (binary logits if the targets "
            "turn out 0/1)",
            arguments,
        )
    return None


def _from_pair(
    predictions: np.ndarray, targets: np.ndarray, arguments: Sequence[str]
) -> Recommendation | None:
    if predictions.size == 0 or targets.size == 0:
        return None
    same_shape = predictions.shape == targets.shape
    plain = classify(targets)
    target_text = f"targets {text.shape_text(targets.shape)} are {plain.describe()}"
    if same_shape and _has_class_axis(predictions):
        by_row = classify(targets, class_axis=1)
        scores = classify(predictions, class_axis=1)
        if by_row.kind is Kind.ONE_HOT:
            found = _multiclass(
                predictions, scores, f"targets are {by_row.describe()}", arguments, False
            )
            return replace(
                found,
                reason=found.reason + "; with one-hot targets cross-entropy reads the rows as "
                "class probabilities (class indices, onehot.argmax(1), also allow --ignore-index)",
            )
        if by_row.kind is Kind.MULTI_HOT:
            if scores.in_unit_interval:
                return _recommend(
                    "multilabel",
                    "bce",
                    f"predictions are {scores.describe()}; targets are {by_row.describe()}: "
                    "multi-label classification on probabilities (bce-logits on the logits is "
                    "more stable)",
                    arguments,
                )
            return _recommend(
                "multilabel",
                "bce-logits",
                f"predictions are {scores.describe()}; targets are {by_row.describe()}: "
                "multi-label classification on logits",
                arguments,
            )
        if by_row.kind is Kind.PROBABILITIES:
            if scores.kind is Kind.LOG_PROBABILITIES:
                return _recommend(
                    "multiclass",
                    "kl-div",
                    f"predictions are {scores.describe()}; targets are {by_row.describe()}: "
                    "matching a soft distribution (distillation); batchmean is the KL divergence",
                    arguments,
                    (("reduction", "batchmean"),),
                )
            return _recommend(
                "multiclass",
                "cross-entropy",
                f"predictions are {scores.describe()}; targets are {by_row.describe()}: "
                "multi-class with soft labels; cross-entropy takes class probabilities as "
                "targets",
                arguments,
            )
    # one score per sample (or per position): [batch, classes] scores with 0/1 class
    # indices are multi-class, below
    one_per_sample = same_shape or _is_single_column(predictions)
    if plain.zero_one and one_per_sample:
        return _binary(predictions, target_text, arguments, targets=targets)
    if plain.mask_255 and one_per_sample:
        return _binary(
            predictions, target_text, arguments, fix=" once the mask is divided by 255 (mask / 255)"
        )
    if plain.signs and one_per_sample:
        scores = classify(predictions)
        if scores.nonnegative:
            return _recommend(
                "similarity",
                "hinge-embedding",
                f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}, all >= 0 "
                f"(distances); {target_text}: similar (1) / dissimilar (-1) pairs",
                arguments,
            )
        return _recommend(
            "binary",
            "soft-margin",
            f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}; {target_text}: "
            "binary classification with {-1, 1} labels (soft-margin equals bce-logits on "
            "(y + 1) / 2)",
            arguments,
        )
    if plain.integral and _has_class_axis(predictions) and _index_shaped(predictions, targets):
        classes = predictions.shape[1]
        scores = classify(predictions, class_axis=1)
        seen = f"{target_text}"
        if plain.max == classes and plain.min >= 1:
            seen += f" (1..{classes}: 1-based labels, use labels - 1)"
        return _multiclass(predictions, scores, seen, arguments)
    if predictions.shape == targets.shape or _broadcast_column(predictions, targets):
        scores = classify(predictions)
        log_rates = _log_rates_of_counts(predictions, targets)
        if log_rates:
            return _recommend(
                "count",
                "poisson-nll",
                f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}; "
                f"{target_text}: counts, with the predictions as log-rates: {log_rates}",
                arguments,
            )
        return _recommend(
            "regression",
            "mse",
            f"predictions {text.shape_text(predictions.shape)} are {scores.describe()}; {target_text}: "
            "regression",
            arguments,
        )
    return None


def _pair_in_either_order(
    first: np.ndarray, second: np.ndarray, arguments: Sequence[str]
) -> Recommendation | None:
    """Predictions then targets, or the reverse when only the reverse reads as a task.

    scikit-learn users type ``y_true, y_pred``. When the pair read in the order given fits
    no task, or only as regression while the first input holds labels (whole numbers) and
    the second does not, the reverse order is read instead; the loss recommended is the
    reverse's, and ``debug`` then finds ``swapped-inputs`` on the order given and verifies
    the reordered command.
    """
    given = _from_pair(first, second, arguments)
    if given is not None and not (
        given.task == "regression" and _labels(first) and not _labels(second)
    ):
        return given
    reverse = _from_pair(second, first, list(reversed(arguments)))
    if reverse is None or reverse.task == "regression":
        return given
    return replace(
        reverse,
        reason=f"the first input holds labels and the second scores, so they read as targets "
        f"then predictions (y_true, y_pred order); {reverse.reason}",
    )


def _labels(values: np.ndarray) -> bool:
    """Whole numbers with few distinct values: class labels, not model output."""
    kind = classify(values)
    return values.size > 0 and kind.integral and (kind.zero_one or kind.signs or kind.max < 1000)


def _index_shaped(predictions: np.ndarray, targets: np.ndarray) -> bool:
    """Targets shaped like class indices for [batch, classes, ...] scores: one dimension fewer
    ([batch, d1, ...]), or a trailing column ([batch, 1]); batch sizes may still differ."""
    if targets.ndim == predictions.ndim - 1:
        return True
    return targets.ndim == predictions.ndim == 2 and targets.shape[1] == 1


def _broadcast_column(predictions: np.ndarray, targets: np.ndarray) -> bool:
    """(N, 1) against (N,) or the reverse: the same samples, one value each."""
    one, other = sorted((predictions.shape, targets.shape), key=len)
    return len(other) == len(one) + 1 and other[-1] == 1 and other[:-1] == one


def _from_triple(arrays: list[np.ndarray], arguments: Sequence[str]) -> Recommendation | None:
    first, second, third = arrays
    if min(a.size for a in arrays) == 0:
        return None
    if first.ndim == 1 and first.shape == second.shape == third.shape:
        labels = classify(third)
        if labels.signs or labels.zero_one:
            fix = "" if labels.signs else " once the labels are mapped to {-1, 1} (2 * y - 1)"
            return _recommend(
                "ranking",
                "margin-ranking",
                f"two score vectors {text.shape_text(first.shape)} and labels {labels.describe()}: "
                f"pairwise ranking{fix}",
                arguments,
            )
        variance = classify(third)
        if variance.min > 0 and not variance.integral:
            return _recommend(
                "regression",
                "gaussian-nll",
                f"predicted means {text.shape_text(first.shape)}, targets, and positive values "
                f"{variance.describe()} as the third input: regression with a predicted variance",
                arguments,
            )
    if (
        first.ndim == 2
        and first.shape == second.shape
        and third.ndim == 1
        and third.shape[0] == first.shape[0]
    ):
        labels = classify(third)
        return _recommend(
            "similarity",
            "cosine-embedding",
            f"two embedding batches {text.shape_text(first.shape)} and labels {labels.describe()}: "
            "similar (1) / dissimilar (-1) pairs by cosine similarity",
            arguments,
        )
    if first.ndim == 2 and first.shape == second.shape == third.shape:
        return _recommend(
            "metric",
            "triplet-margin",
            f"three embedding batches {text.shape_text(first.shape)}: anchor, positive, negative "
            "(metric learning)",
            arguments,
        )
    return None


def _from_quadruple(arrays: list[np.ndarray], arguments: Sequence[str]) -> Recommendation | None:
    """ctc: log_probs [time, batch, classes], targets, input_lengths [batch], target_lengths."""
    log_probs, targets, input_lengths, target_lengths = arrays
    if log_probs.ndim != 3 or min(a.size for a in arrays) == 0:
        return None
    batch = log_probs.shape[1]
    lengths = (classify(input_lengths), classify(target_lengths))
    if not (
        input_lengths.shape == target_lengths.shape == (batch,)
        and all(kind.integral for kind in lengths)
        and classify(targets).integral
    ):
        return None
    scores = classify(log_probs, class_axis=2)
    note = (
        ""
        if scores.kind is Kind.LOG_PROBABILITIES
        else "; the frames are not log-softmax output: apply log_softmax(2) first"
    )
    return _recommend(
        "sequence",
        "ctc",
        f"log_probs {text.shape_text(log_probs.shape)} as [time, batch, classes] are {scores.describe()}, "
        f"with integer targets and {batch} input and target lengths: sequence labelling "
        f"without alignment{note}",
        arguments,
    )


def fitting_losses(recommendation: Recommendation, arrays: Sequence[np.ndarray]) -> list[str]:
    """The catalogue's losses that fit the inferred task, the recommended one first.

    ``compare`` without ``-l`` compares these. A loss fits when, by its catalogue data, it
    serves the task (``LossSpec.tasks``), takes as many inputs, and reads them as the
    recommended loss does (:func:`_reads_alike`): regression on values gives mse, l1,
    huber and smooth-l1; multi-class logits with class indices cross-entropy and, on
    [batch, classes], multi-margin; log-probabilities nll.

    Args:
        recommendation: what :func:`infer` made of the arrays.
        arrays: the inputs as loaded, in the order given.
    """
    from losscli import losses

    chosen = losses.get(recommendation.loss)
    if chosen is None:
        return [recommendation.loss]
    fitting = [
        spec.name
        for spec in losses.LOSSES
        if spec is not chosen
        and recommendation.task in spec.tasks
        and len(spec.arguments) == len(arrays)
        and _reads_alike(spec, chosen, arrays)
    ]
    return [chosen.name, *fitting]


def _reads_alike(candidate: Any, chosen: Any, arrays: Sequence[np.ndarray]) -> bool:
    """Whether ``candidate`` reads the inputs as ``chosen`` (both LossSpecs) does.

    The predictions in the same domain (values, probabilities or log-probabilities), the
    same layout of shapes (or [batch, classes] class scores without positions, for a loss
    that takes only those), and each other input in the same role, where a float target
    shaped like the input takes anything (counts too), and class indices serve a loss
    that takes class indices or class targets.
    """
    from losscli.losses import Layout, Role

    if candidate.input_domain is not chosen.input_domain:
        return False
    predictions = np.asarray(arrays[0])
    flat = candidate.layout is Layout.CLASS_SCORES_FLAT and chosen.layout is Layout.CLASS_SCORES
    if candidate.layout is not chosen.layout and not (flat and predictions.ndim == 2):
        return False
    indices = len(arrays) > 1 and _index_shaped(predictions, np.asarray(arrays[1]))
    classes = {Role.CLASS_TARGET, Role.CLASS_INDEX}
    for theirs, ours in zip(candidate.arguments[1:], chosen.arguments[1:], strict=True):
        alike = (
            theirs.role is ours.role
            or theirs.role is Role.TARGET
            or (indices and {theirs.role, ours.role} <= classes)
        )
        if not alike:
            return False
    return True
