"""Balance checks: class frequencies 10x apart or more, with ready inverse-frequency weights.

``class-imbalance`` compares the classes present in the targets (absent classes are named
in the message): class indices, multilabel-margin's index lists, and 0/1 targets of the
binary losses that take a weight to tune. Once the classes are weighted (``--weight`` on
class indices, ``--pos-weight`` on bce-logits, an ``--alpha`` other than focal's default)
the imbalance is handled and the check is silent: the weights it proposes are then a fix
that clears it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from losscli import text
from losscli.checks import Check, CheckContext, Scope, Totals
from losscli.checks.arguments import (
    class_count,
    hard_target,
    ignore_index,
    prediction,
    takes_class_indices,
    target_lines_up,
)
from losscli.findings import Finding, Remedy, Severity, finding
from losscli.kinds import classify, rows_of
from losscli.losses import Layout, LossSpec, Role

# class-imbalance fires when the most frequent present class is this many times the rarest
IMBALANCE_RATIO = 10.0
# class-imbalance needs the rarest count to be this unlikely under a balanced draw ...
CHANCE = 0.01
# ... which a rarest count this large (with the ratio above) always is
_SURELY_BEYOND_CHANCE = 100
# at most this many classes are listed by name in a message
_LISTED = 8
# a ready --weight / --pos-weight is printed for at most this many classes
_MAX_READY_WEIGHTS = 256
# the options that weight the classes of a binary loss (dice balances overlap by construction)
_BINARY_WEIGHTS = ("weight", "pos_weight", "alpha")


def _counts_classes(spec: LossSpec) -> bool:
    """Class indices, multilabel index lists, or 0/1 targets with a weight to tune."""
    if takes_class_indices(spec) or spec.layout is Layout.MULTILABEL_INDICES:
        return True
    return spec.arguments[1].role is Role.BINARY_TARGET and any(
        spec.option(name) is not None for name in _BINARY_WEIGHTS
    )


def count_classes(context: CheckContext) -> Totals:
    """How often each class is the target in this view (what ``class-imbalance`` judges).

    ``classes`` counts class indices (or sums probability targets, or multilabel index
    lists); for 0/1 targets of the binary losses, ``positives`` per column over ``rows``. A
    flag says when the targets are no such thing (out of range, not 0/1, negative), and the
    check then stays silent: other findings name the problem.
    """
    spec = context.spec
    if takes_class_indices(spec):
        return _index_counts(context)
    if spec.layout is Layout.MULTILABEL_INDICES:
        return _multilabel_counts(context)
    target = spec.arguments[1].name
    values = np.asarray(context.inputs[target].values)
    kind = classify(values)
    if kind.size == 0:
        return {}
    if not kind.zero_one:
        return {"any_unusable": True}
    columns = values.reshape(-1, values.shape[-1]) if values.ndim == 2 else values.reshape(-1, 1)
    return {
        "positives": (columns == 1).sum(axis=0).astype(np.float64),
        "rows": int(columns.shape[0]),
        "any_unusable": False,
    }


def _index_counts(context: CheckContext) -> Totals:
    _, scores = prediction(context)
    if scores.size == 0 or scores.ndim == 0:
        return {}
    classes = class_count(scores)
    target = context.spec.arguments[1].name
    if context.soft_target:
        values = np.asarray(context.inputs[target].values, dtype=np.float64)
        if not np.all(np.isfinite(values)) or values.min() < 0:
            return {"any_unusable": True}
        return {"classes": rows_of(values, 1).sum(axis=0), "any_unusable": False}
    hard = hard_target(context)
    if hard is None or not target_lines_up(context):
        return {"any_unusable": True}
    _, indices = hard
    ignore = ignore_index(context)
    kept = indices[indices != ignore] if ignore is not None else indices.reshape(-1)
    if kept.size and (kept.min() < 0 or kept.max() >= classes):
        return {"any_unusable": True}  # class-index-out-of-range says it
    return {
        "classes": np.bincount(kept, minlength=classes).astype(np.float64),
        "any_unusable": False,
    }


def _multilabel_counts(context: CheckContext) -> Totals:
    _, scores = prediction(context)
    target = context.spec.arguments[1].name
    values = np.asarray(context.arrays[target])
    if scores.ndim == 0 or values.ndim == 0 or values.size == 0:
        return {}
    if values.dtype.kind not in "iu":
        return {"any_unusable": True}
    classes = int(scores.shape[-1])
    rows = values.reshape(-1, values.shape[-1])
    # torch reads each row up to its first -1
    labels = rows[np.cumsum(rows == -1, axis=1) == 0]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        return {"any_unusable": True}
    return {
        "classes": np.bincount(labels, minlength=classes).astype(np.float64),
        "any_unusable": False,
    }


def check_class_imbalance(context: CheckContext) -> Iterator[Finding]:
    """Class frequencies 10x apart or more, counted over every sample: the counts and weights."""
    if _weighted(context):
        return  # the user weights the classes: the imbalance is handled
    totals = context.totals if context.totals is not None else count_classes(context)
    if totals.get("any_unusable", True):
        return
    target = context.spec.arguments[1].name
    if "positives" in totals:
        yield from _binary_imbalance(context, totals["positives"], int(totals["rows"]))
        return
    counts = totals["classes"]
    if context.spec.layout is Layout.MULTILABEL_INDICES:
        fix = (
            f"{context.spec.name} takes no class weights; for weighted multi-label training use "
            "bce-logits with --pos-weight on 0/1 targets"
        )
    else:
        fix = _class_weight_fix(context, counts)
    yield from _report_counts(context, target, counts, fix, _class_weight_remedies(context, counts))


def _weighted(context: CheckContext) -> bool:
    """The classes are weighted already: ``--weight`` per class, ``--pos-weight``, or an alpha
    other than focal's default."""
    spec = context.spec
    options = context.options
    if spec.class_weight and options.get("weight") is not None:
        return True
    if spec.option("pos_weight") is not None and options.get("pos_weight") is not None:
        return True
    alpha = spec.option("alpha")
    return alpha is not None and options.get("alpha", alpha.default) != alpha.default


def _exact_array(values: np.ndarray) -> str:
    """Numbers as an inline array with every digit (``[0.4, 3.6]``): the command and the
    training script's ``torch.tensor(...)`` then weigh exactly what was verified."""
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def _class_weight_remedies(context: CheckContext, counts: np.ndarray) -> tuple[Remedy, ...]:
    spec = context.spec
    if not spec.class_weight or spec.option("weight") is None or counts.size > _MAX_READY_WEIGHTS:
        return ()
    weights = inverse_frequency_weights(counts)
    return (
        Remedy(
            options=(("weight", _exact_array(weights)),),
            note="if the rare classes matter: weights by inverse frequency, mean 1",
        ),
    )


def _report_counts(
    context: CheckContext,
    target: str,
    counts: np.ndarray,
    fix: str,
    remedies: tuple[Remedy, ...] = (),
) -> Iterator[Finding]:
    present = counts > 0
    if present.sum() < 2:
        return
    ratio = float(counts[present].max() / counts[present].min())
    if ratio < IMBALANCE_RATIO or not _beyond_chance(counts[present]):
        return
    order = np.argsort(-counts, kind="stable")
    listed = [f"{int(c)}: {text.count(float(counts[c]))}" for c in order if present[c]]
    shown = ", ".join(listed[:_LISTED]) + (
        f" and {len(listed) - _LISTED} more" if len(listed) > _LISTED else ""
    )
    absent = np.flatnonzero(~present)
    absent_text = (
        f"; absent: {', '.join(str(int(c)) for c in absent[:_LISTED])}"
        + (f" and {absent.size - _LISTED} more" if absent.size > _LISTED else "")
        if absent.size
        else ""
    )
    yield finding(
        "class-imbalance",
        Severity.INFO,
        f"class counts in {context.source(target)} (class: count, most frequent first): {shown}; the most "
        f"frequent present class is {text.number(ratio)}× the rarest{absent_text}",
        fix,
        remedies=remedies,
        counts=[float(c) for c in counts],
        ratio=ratio,
        absent=[int(c) for c in absent],
    )


def _beyond_chance(counts: np.ndarray) -> bool:
    """Whether the rarest class is rarer than a balanced draw of this many targets explains.

    A batch of 64 CIFAR images over 10 balanced classes holds one of some class now and then
    (12× the most frequent): that is sampling noise, not an imbalance to weight. Under a
    balanced draw over the classes present, the chance that one of them holds at most the
    rarest count (binomial, union over the classes) must be below :data:`CHANCE`.
    """
    total = int(counts.sum())
    rarest = int(counts.min())
    if rarest >= _SURELY_BEYOND_CHANCE:
        return True
    p = 1.0 / counts.size
    log_terms = [
        math.lgamma(total + 1)
        - math.lgamma(k + 1)
        - math.lgamma(total - k + 1)
        + k * math.log(p)
        + (total - k) * math.log1p(-p)
        for k in range(rarest + 1)
    ]
    return counts.size * sum(math.exp(term) for term in log_terms) < CHANCE


def inverse_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """Per-class weights ∝ 1 / count, with mean 1; absent classes weigh like the rarest present one.

    Args:
        counts: float ``[classes]``, at least one positive.

    Returns:
        float64 ``[classes]``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not (counts > 0).any():
        return np.ones_like(counts)
    rarest = counts[counts > 0].min()
    inverse = 1.0 / np.where(counts > 0, counts, rarest)
    return inverse / inverse.mean()


def _class_weight_fix(context: CheckContext, counts: np.ndarray) -> str:
    spec = context.spec
    weights = inverse_frequency_weights(counts)
    if counts.size > _MAX_READY_WEIGHTS:
        ready = "weight = 1 / counts, divided by its mean"
    else:
        ready = f"--weight '{text.array_flag(weights)}'"
    if spec.class_weight and spec.option("weight") is not None:
        return (
            f"if the rare classes matter, weight them by inverse frequency: {ready} "
            f"({spec.call}(..., weight=torch.tensor({text.array_flag(weights)})))"
            if counts.size <= _MAX_READY_WEIGHTS
            else f"weight the classes by inverse frequency: {ready}"
        )
    return "resample the rare classes, or use a loss that takes class weights"


def _binary_imbalance(context: CheckContext, positives: np.ndarray, rows: int) -> Iterator[Finding]:
    spec = context.spec
    target = spec.arguments[1].name
    negatives = rows - positives
    both = (positives > 0) & (negatives > 0)
    if not both.any():
        return
    ratios = np.maximum(positives, negatives)[both] / np.minimum(positives, negatives)[both]
    if ratios.max() < IMBALANCE_RATIO:
        return
    pos_weight = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    no_positive = np.flatnonzero(positives == 0)
    if positives.size == 1:
        counts_text = f"{int(positives[0])} positive vs {int(negatives[0])} negative ({text.number(float(ratios[0]))}×)"
    else:
        listed = ", ".join(
            f"{c}: {int(positives[c])}/{rows}" for c in range(min(positives.size, _LISTED))
        )
        more = f" and {positives.size - _LISTED} more" if positives.size > _LISTED else ""
        counts_text = (
            f"positives per class (class: positives/samples) {listed}{more}; the most skewed class is "
            f"{text.number(float(ratios.max()))}× one-sided"
        )
    absent = (
        f"; no positives in class {', '.join(str(int(c)) for c in no_positive[:_LISTED])} (pos_weight 1 there)"
        if no_positive.size
        else ""
    )
    ready = text.array_flag(pos_weight)
    exact = _exact_array(pos_weight)
    remedies: tuple[Remedy, ...]
    if spec.option("pos_weight") is not None:
        fix = f"weight the positives by neg/pos: --pos-weight '{ready}' (pos_weight=torch.tensor({ready}))"
        remedies = (
            Remedy(
                options=(("pos_weight", exact),), note="positives weighted by negatives/positives"
            ),
        )
    elif spec.option("alpha") is not None:
        share = float(negatives.sum() / (negatives.sum() + positives.sum()))
        fix = f"weight the positives by alpha = share of negatives: --alpha {share:.3g}"
        remedies = (Remedy(options=(("alpha", share),), note="alpha = the share of negatives"),)
    else:
        fix = (
            f"on logits use bce-logits with --pos-weight '{ready}' "
            "(F.binary_cross_entropy_with_logits(..., pos_weight=...)); in PyTorch a per-element "
            f"weight 1 + (pos_weight - 1) * {target} does the same"
        )
        remedies = (
            Remedy(
                maps=(f"{spec.arguments[0].name} = {spec.arguments[0].name}.logit()",),
                loss="bce-logits",
                options=(("pos_weight", exact),),
                note="the probabilities turned back into logits (or drop the model's final sigmoid)",
            ),
        )
    yield finding(
        "class-imbalance",
        Severity.INFO,
        f"{target} from {context.source(target)}: {counts_text}{absent}",
        fix,
        remedies=remedies,
        positives=[int(p) for p in positives],
        samples=rows,
        pos_weight=[float(p) for p in pos_weight],
    )


CHECKS: tuple[Check, ...] = (
    # counts over all the samples
    Check(
        check_class_imbalance,
        ("class-imbalance",),
        Scope.TOTALS,
        applies=_counts_classes,
        collect=count_classes,
    ),
)
