"""Predicted versus true classes: the numbers behind the classification views (numpy only).

A report is a classification report when its loss takes class-index targets (the
``class-target`` or ``class-index`` role) and the target, as loaded, holds one integral
class index per position of the prediction's non-class dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from losscli.losses import Role
from losscli.report import Report

_CLASS_ROLES = (Role.CLASS_TARGET, Role.CLASS_INDEX)


@dataclass(frozen=True)
class ClassPairs:
    """Each sample's predicted class next to its true class.

    Attributes:
        predicted: int64 ``[batch, *]``: argmax over the class dimension of the prediction.
        true: int64 ``[batch, *]``: the target class indices.
        counted: bool ``[batch, *]``: positions whose target is not ``ignore_index``.
        classes: C, the size of the prediction's class dimension (dimension 1).
        names: a name per class when the prediction came from a table with C named columns.
    """

    predicted: np.ndarray
    true: np.ndarray
    counted: np.ndarray
    classes: int
    names: tuple[str, ...] | None


def class_pairs(report: Report) -> ClassPairs | None:
    """Predicted (argmax) and true classes of a classification report, or None.

    None when the loss takes no class indices, the inputs were not kept, the target holds
    probabilities (``[batch, classes]`` like the prediction) or the shapes do not line up.
    """
    spec = report.spec
    target_argument = next((a for a in spec.arguments if a.role in _CLASS_ROLES), None)
    prediction_argument = next((a for a in spec.arguments if a.role is Role.PREDICTION), None)
    if target_argument is None or prediction_argument is None:
        return None
    prediction = report.loaded.get(prediction_argument.name)
    target = report.loaded.get(target_argument.name)
    if prediction is None or target is None:
        return None
    scores = np.asarray(prediction.values)
    labels = np.asarray(target.values)
    if scores.ndim < 2 or scores.shape[1] == 0 or labels.ndim != scores.ndim - 1:
        return None
    if labels.shape != (scores.shape[0], *scores.shape[2:]) or labels.size == 0:
        return None
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            return None
    elif labels.dtype.kind not in "iub":
        return None
    true = labels.astype(np.int64)
    # NaN scores would make argmax meaningless; they are findings of their own
    finite_scores = np.where(np.isfinite(scores), scores, -np.inf)
    predicted = np.argmax(finite_scores, axis=1).astype(np.int64)
    ignore_index = report.options.get("ignore_index")
    counted = np.ones(true.shape, dtype=bool) if ignore_index is None else true != ignore_index
    classes = int(scores.shape[1])
    names = (
        prediction.columns if prediction.columns and len(prediction.columns) == classes else None
    )
    return ClassPairs(predicted, true, counted, classes, names)


@dataclass(frozen=True)
class ClassCount:
    """How often one class is the target, the prediction, and both.

    Attributes:
        label: the class index.
        name: the class's column name, if known.
        true: positions whose target is this class.
        predicted: positions whose argmax is this class.
        correct: positions where both are this class.
    """

    label: int
    name: str | None
    true: int
    predicted: int
    correct: int


@dataclass(frozen=True)
class ClassCounts:
    """Per-class counts of a classification report.

    Attributes:
        rows: one per class in ``0..C-1``, in class order.
        out_of_range: counted targets outside ``0..C-1``.
        ignored: targets equal to ``ignore_index``.
        total: counted targets (in range or not).
        correct: counted positions where argmax equals the target.
    """

    rows: tuple[ClassCount, ...]
    out_of_range: int
    ignored: int
    total: int
    correct: int


def class_counts(pairs: ClassPairs) -> ClassCounts:
    """Count true, predicted and correct positions per class."""
    true = pairs.true[pairs.counted]
    predicted = pairs.predicted[pairs.counted]
    in_range = (true >= 0) & (true < pairs.classes)
    true_counts = np.bincount(true[in_range], minlength=pairs.classes)
    predicted_counts = np.bincount(predicted, minlength=pairs.classes)
    hits = true[in_range & (predicted == true)]
    correct_counts = np.bincount(hits, minlength=pairs.classes)
    rows = tuple(
        ClassCount(
            label=label,
            name=pairs.names[label] if pairs.names else None,
            true=int(true_counts[label]),
            predicted=int(predicted_counts[label]),
            correct=int(correct_counts[label]),
        )
        for label in range(pairs.classes)
    )
    return ClassCounts(
        rows=rows,
        out_of_range=int((~in_range).sum()),
        ignored=int((~pairs.counted).sum()),
        total=int(true.size),
        correct=int(hits.size),
    )
