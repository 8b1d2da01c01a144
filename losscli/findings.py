"""Findings: what losscli says about the inputs, and the catalogue of finding names."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    """How bad a finding is; ordered ``info < warning < error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Finding:
    """One observation about the inputs or the result.

    Attributes:
        name: kebab-case name from :data:`CATALOGUE` (states the problem).
        severity: info, warning or error.
        message: what was seen, with the numbers that triggered it.
        fix: what to change in the user's PyTorch code, or the losscli command to run.
        evidence: machine-readable numbers behind the message (counts, positions, shapes).
        blocking: the inputs cannot work for the loss, so torch is not called (value null).
    """

    name: str
    severity: Severity
    message: str
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    blocking: bool = False

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
        }
        if self.evidence:
            record["evidence"] = self.evidence
        return record


@dataclass(frozen=True)
class FindingDoc:
    """The documentation record of one finding name, rendered by ``losscli explain``.

    Attributes:
        name: the finding's name.
        severity: its usual severity (some findings are raised at two levels).
        summary: one line: fires when ...
        what: *What it checks*.
        why: *Why it matters*.
        example: *Example*: how the mistake happens in training code.
        instead: *Instead*: what to do.
    """

    name: str
    severity: str
    summary: str
    what: str = ""
    why: str = ""
    example: str = ""
    instead: str = ""


def _doc(name: str, severity: str, summary: str, **texts: str) -> FindingDoc:
    return FindingDoc(name=name, severity=severity, summary=summary, **texts)


# The catalogue: every finding losscli can raise. The names are a contract (SPEC.md).
CATALOGUE: dict[str, FindingDoc] = {
    doc.name: doc
    for doc in (
        _doc("shape-mismatch", "error", "shapes cannot work for this loss"),
        _doc(
            "silent-broadcast",
            "error",
            "shapes differ but broadcast: torch computes the wrong value",
        ),
        _doc("batch-size-mismatch", "error", "first (batch) dimensions differ"),
        _doc("target-has-extra-dim", "error", "class-index target of shape (N, 1)"),
        _doc(
            "class-dim-last",
            "warning",
            "cross-entropy input (N, H, W, C) where torch wants (N, C, H, W)",
        ),
        _doc("empty-input", "error", "an input has zero elements"),
        _doc(
            "float-class-target",
            "info / error",
            "float class indices: integral ones are cast, fractional ones are an error",
        ),
        _doc(
            "int-target-for-float-loss",
            "info",
            "integer targets for a loss that needs float targets: cast to float",
        ),
        _doc("mixed-float-dtypes", "info", "inputs of different float dtypes"),
        _doc(
            "low-precision",
            "warning",
            "float16/bfloat16 inputs: the loss in that precision against float64",
        ),
        _doc(
            "class-index-out-of-range",
            "error",
            "a class index is >= C or negative (and not ignore_index)",
        ),
        _doc("all-targets-ignored", "error", "every target equals ignore_index: the mean is NaN"),
        _doc(
            "target-outside-unit-interval",
            "error",
            "bce/bce-logits/focal/dice target outside [0, 1]",
        ),
        _doc(
            "input-outside-unit-interval", "error", "bce input outside [0, 1]: logits given to bce"
        ),
        _doc("sign-target-expected", "error", "a {-1, 1} target is needed but another was given"),
        _doc("negative-poisson-target", "error", "poisson-nll target < 0"),
        _doc("nonpositive-variance", "error", "gaussian-nll variance <= 0"),
        _doc(
            "kl-target-not-distribution", "error", "kl-div target is not a probability distribution"
        ),
        _doc(
            "kl-input-not-log",
            "error",
            "kl-div input with positive entries: probabilities, not log-probabilities",
        ),
        _doc(
            "probabilities-as-logits",
            "warning",
            "cross-entropy/bce-logits input already in [0, 1]: softmax/sigmoid applied twice",
        ),
        _doc("logits-to-nll", "error", "nll input that is not log-probabilities"),
        _doc(
            "probabilities-to-nll",
            "error",
            "nll input in [0, 1] with rows summing to 1: log was never taken",
        ),
        _doc(
            "saturated-probabilities",
            "warning",
            "bce input exactly 0 or 1: clamped log, vanishing gradient",
        ),
        _doc("one-hot-target", "info", "cross-entropy target given as one-hot (N, C)"),
        _doc(
            "multilabel-target",
            "warning",
            "(N, C) 0/1 target with several ones per row used with cross-entropy",
        ),
        _doc("class-imbalance", "info", "class frequencies differ by 10x or more"),
        _doc("non-finite-input", "error", "NaN or Inf in an input"),
        _doc("non-finite-loss", "error", "the value or a per-sample loss is NaN/Inf"),
        _doc("non-finite-gradient", "error", "NaN/Inf in the gradient"),
        _doc(
            "vanishing-gradient", "warning", "the gradient is zero or below 1e-12 almost everywhere"
        ),
        _doc("constant-input", "warning", "every prediction is the same value"),
        _doc(
            "soft-target-not-distribution",
            "warning",
            "cross-entropy probability targets whose rows do not sum to 1",
        ),
        _doc("ctc-input-not-log-probs", "error", "ctc log_probs that are not log-softmax output"),
        _doc("ctc-blank-in-targets", "error", "ctc targets contain the blank index"),
        _doc("ctc-target-too-long", "error", "a ctc target longer than its input length allows"),
        _doc(
            "single-logit-cross-entropy",
            "error",
            "cross-entropy input with one class column: the loss is always 0",
        ),
        _doc("unbatched-input", "warning", "1-D cross-entropy input: one sample with N classes"),
        _doc(
            "weight-length-mismatch",
            "error",
            "--weight or --pos-weight does not fit the class count",
        ),
        _doc(
            "kl-mean-reduction", "warning", "kl-div with reduction mean: divides by every element"
        ),
        _doc(
            "poisson-log-input-mismatch",
            "warning / error",
            "poisson-nll log_input does not fit the inputs",
        ),
        _doc("dtype-conversion", "info", "an input was converted to the dtype the loss needs"),
        _doc("torch-rejected", "error", "torch raised an error for these inputs"),
        _doc("negative-loss", "error", "a loss that cannot be negative came out negative"),
    )
}


def finding(
    name: str,
    severity: Severity,
    message: str,
    fix: str = "",
    *,
    blocking: bool = False,
    **evidence: Any,
) -> Finding:
    """Build a :class:`Finding`, checking that ``name`` is in the catalogue."""
    if name not in CATALOGUE:
        raise KeyError(f"unknown finding name {name!r}")
    return Finding(
        name=name, severity=severity, message=message, fix=fix, evidence=evidence, blocking=blocking
    )
