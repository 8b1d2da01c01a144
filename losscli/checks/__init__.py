"""Checks: the registry of small pure functions that judge the inputs and the result against a loss.

Every check is one :class:`Check` in :data:`REGISTRY` (ruff's rule registry): the function,
the finding names it can raise, the losses it applies to (a predicate on the
:class:`~losscli.losses.LossSpec`) and its :class:`Scope`, which says what data it sees and
so how the pipeline runs it on input of any size:

======================  ===================================================================
``Scope.SHAPES``        shapes, dtypes and options: once, before a value is read (on the
                        full shapes; values may be stand-ins when the input is streamed)
``Scope.CHUNK``         values, one sample at a time: on every chunk, before torch computes
                        it; a finding on all the data is one on some chunk (``Combine.ANY``)
                        or on every chunk (``Combine.ALL``). May block the computation.
``Scope.TOTALS``        counts over all the values (class frequencies, exact 0/1
                        probabilities, extremes): the check's ``collect`` on every chunk,
                        the sums added up, then the check once on the sums
``Scope.SAMPLE``        values as a whole (distributions, row statistics, the evidence's
                        per-sample losses and gradients): once, on the evidence, which holds
                        every sample, or a stratified random sample of them when there are many
``Scope.RESULT``        the accumulated computation (value, summaries, totals): once
======================  ===================================================================

A check reports; it never converts or repairs. It reads only its :class:`CheckContext`,
and names positions through :mod:`losscli.text`, which maps the rows of a chunk or
of the evidence to global sample indices.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from losscli.findings import Finding
from losscli.loaders import LoadedArray
from losscli.losses import LossSpec

if TYPE_CHECKING:
    from losscli.result import Computation


class Scope(str, enum.Enum):
    """What data a check sees, and so when the pipeline runs it (see the module docstring)."""

    SHAPES = "shapes"
    CHUNK = "chunk"
    TOTALS = "totals"
    SAMPLE = "sample"
    RESULT = "result"


class Combine(str, enum.Enum):
    """How the verdicts of a ``CHUNK`` check on each chunk make the verdict on all the data."""

    ANY = "any"  # it fires on the data when it fires on some chunk (a value outside a domain)
    ALL = "all"  # it fires on the data when it fires on every chunk (every target ignored)


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at: one view of the data (a chunk, the evidence, or all).

    Attributes:
        spec: the loss.
        inputs: argument name → the rows of this view as loaded (original dtype).
        arrays: argument name → the same rows as torch sees them (after conversion).
        options: torch keyword → value (tensor options as numpy arrays), defaults filled in.
        soft_target: cross-entropy's target holds class probabilities.
        strict: nothing was converted.
        rows: the global sample index of each row along the batch dimension, or None when
            row ``i`` is sample ``i`` (the view starts at sample 0 and is contiguous).
        offset: the global index of the first row of a contiguous view (a chunk).
        complete: the view holds every sample of the data.
        total: how many samples the data holds (None while unknown).
        computation: ``SAMPLE`` and ``RESULT`` checks: what torch computed; its ``per_sample``
            and ``gradients`` are those of this view's rows, its summaries those of all data.
        totals: ``TOTALS`` checks: what their ``collect`` counted on every chunk, added up
            (:func:`add_totals`); None when the view is all the data (the check counts it).
    """

    spec: LossSpec
    inputs: dict[str, LoadedArray]
    arrays: dict[str, np.ndarray]
    options: dict[str, Any]
    soft_target: bool = False
    strict: bool = False
    rows: np.ndarray | None = None
    offset: int = 0
    complete: bool = True
    total: int | None = None
    computation: Computation | None = None
    totals: Totals | None = None

    def source(self, argument: str) -> str:
        """How messages name the file an argument came from."""
        return self.inputs[argument].source

    def sample(self, row: int) -> int:
        """The global sample index of row ``row`` of this view."""
        if self.rows is not None:
            return int(self.rows[row])
        return self.offset + int(row)


CheckFunction = Callable[[CheckContext], Iterable[Finding]]
Totals = dict[str, Any]
"""Counts a ``TOTALS`` check collects on one chunk, added up by :func:`add_totals`."""


def add_totals(first: Totals | None, second: Totals) -> Totals:
    """Two chunks' counts as one: numbers and arrays add; by the key's prefix, ``all_`` values
    and, ``any_`` values or, ``min_``/``max_`` keep the extreme, ``first_`` keeps the first
    that is not None."""
    if first is None:
        return dict(second)
    added = dict(first)
    for key, value in second.items():
        if key not in added or added[key] is None:
            added[key] = value
        elif value is None or key.startswith("first_"):
            continue
        elif key.startswith("all_"):
            added[key] = added[key] and value
        elif key.startswith("any_"):
            added[key] = added[key] or value
        elif key.startswith("min_"):
            added[key] = min(added[key], value)
        elif key.startswith("max_"):
            added[key] = max(added[key], value)
        else:
            added[key] = added[key] + value
    return added


def _every_loss(spec: LossSpec) -> bool:
    del spec
    return True


@dataclass(frozen=True)
class Check:
    """One check of the registry.

    Attributes:
        function: ``function(context)`` yields the findings.
        findings: every finding name it can raise.
        scope: what data it sees (see :class:`Scope`).
        applies: whether it applies to a loss; the pipeline runs it only then, and ``explain``
            lists the losses it applies to.
        combine: ``CHUNK`` checks only: how chunk verdicts make the verdict on all the data.
        collect: ``TOTALS`` checks only: what to count on one chunk (its context).
        judges_model: it judges the model's outputs (whether they vary, how well they fit
            the targets), not how the loss is called; ``losscli.guard`` leaves it out, since
            a model in training is not trained yet (an untrained one scores at chance, a
            zero-initialised head is constant at step 0).
    """

    function: CheckFunction
    findings: tuple[str, ...]
    scope: Scope
    applies: Callable[[LossSpec], bool] = _every_loss
    combine: Combine = Combine.ANY
    collect: Callable[[CheckContext], Totals] | None = None
    judges_model: bool = False

    @property
    def name(self) -> str:
        return self.function.__name__

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its name, unpickled as the registry's own check: a check's findings
        come back from a Dask worker keyed by the same check (some checks hold closures,
        which would come back as copies, equal to nothing)."""
        return (registered, (self.name,))


def registered(name: str) -> Check:
    """The registry's check of this name."""
    return next(check for check in registry() if check.name == name)


def registry() -> tuple[Check, ...]:
    """Every check, in the order their findings are reported."""
    from losscli.checks import REGISTRY

    return REGISTRY


def model_findings() -> frozenset[str]:
    """The names of the findings raised by the checks that judge the model's outputs."""
    return frozenset(name for check in registry() if check.judges_model for name in check.findings)


def checks_for(spec: LossSpec, scope: Scope) -> tuple[Check, ...]:
    """The checks of ``scope`` that apply to ``spec``, in registry order."""
    return tuple(c for c in registry() if c.scope is scope and c.applies(spec))


def run(checks: Iterable[Check], context: CheckContext) -> list[tuple[Check, Finding]]:
    """Run ``checks`` on ``context``: each finding with the check that raised it."""
    return [(check, found) for check in checks for found in check.function(context)]


def losses_raising(name: str, specs: Iterable[LossSpec]) -> tuple[str, ...]:
    """The losses among ``specs`` that a check raising finding ``name`` applies to."""
    raising = [c for c in registry() if name in c.findings]
    return tuple(spec.name for spec in specs if any(c.applies(spec) for c in raising))


REGISTRY: tuple[Check, ...] = ()  # filled in below, once the check modules can import this one


def _build() -> tuple[Check, ...]:
    from losscli.checks import (
        balance,
        dtypes,
        fit,
        numerics,
        predictions,
        shapes,
        targets,
        variance,
    )

    return (
        *shapes.CHECKS,
        *targets.CHECKS,
        *predictions.CHECKS,
        *variance.CHECKS,
        *balance.CHECKS,
        *dtypes.CHECKS,
        *numerics.CHECKS,
        *fit.CHECKS,
    )


REGISTRY = _build()
