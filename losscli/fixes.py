"""Fixes: every remedy a finding proposes, applied to the same inputs and re-checked first.

The checks propose :class:`~losscli.findings.Remedy` records; nothing here writes advice.
For each one, :func:`verify` makes the command the remedy stands for
(:meth:`Invocation.applying`), runs it through the one pipeline on the inputs already in
memory, and keeps it as a :class:`~losscli.findings.Fix` only when

- the finding it fixes is gone,
- no error appears that the inputs did not already raise, a value torch computed is not
  lost, and
- it does not quietly discard data (an ``--ignore-index`` whose value stands for a class
  the targets never use, on more than :data:`SMALL_SHARE` of the samples, is a different
  dataset, not a fix).

The fix carries the value the command prints and the warnings and errors that remain. A
remedy outside the inputs (change the model's output channels) is shown unverified, and so
is every remedy when the inputs were streamed: trying it would mean reading them again.

``swapped-inputs`` is found the same way: when the inputs raise a warning or an error, the
other orders of the INPUTs that the data points to are tried, closest first, and the first
that computes without an error (and without a warning, when there was no error) is the
finding, with that order as its fix. A fix's own outcome is judged the same way, swapped
inputs included, so ``verified.findings`` are the names its command reports.
"""

from __future__ import annotations

import itertools
import keyword
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath

import numpy as np

from losscli import text
from losscli.errors import LossCliError
from losscli.findings import Finding, Fix, Remedy, Severity, Verified, finding
from losscli.invocation import Invocation
from losscli.kinds import Kind, classify
from losscli.loaders import LoadedArray
from losscli.losses import Role
from losscli.report import Report

# an --ignore-index remedy that ignores more than this share of one-label-per-sample targets
# discards data
SMALL_SHARE = 0.2
# the other orders of the INPUTs tried for swapped-inputs, closest to the typed order first
MAX_ORDERS = 6


def verify(
    report: Report,
    invocation: Invocation,
    loaded: Mapping[str, LoadedArray] | None,
    budget: int,
) -> Report:
    """The report with each finding's remedies tried, and swapped inputs found.

    Args:
        report: what the pipeline found for ``invocation``.
        invocation: the command that produced it.
        loaded: INPUT text → the array as loaded (before any map), or None when the inputs
            were streamed: the remedies are then shown unverified.
        budget: the memory budget in bytes (it bounds what a map may allocate).
    """
    trials = None if loaded is None else Trials(invocation, dict(loaded), budget)
    found = list(report.findings)
    if trials is not None:
        swapped = swapped_inputs(report, invocation, trials)
        if swapped is not None:
            found.insert(0, swapped)
    return replace(
        report,
        findings=tuple(replace(f, fixes=_fixes(f, report, invocation, trials)) for f in found),
    )


@dataclass
class Trials:
    """Commands run on the inputs in memory, each once.

    Attributes:
        invocation: the command the user ran.
        loaded: INPUT text → the array as loaded.
        budget: the memory budget in bytes.
    """

    invocation: Invocation
    loaded: dict[str, LoadedArray]
    budget: int
    _done: dict[tuple[str, bool], Report | None] = field(default_factory=dict)

    def run(self, changed: Invocation, swaps: bool = True) -> Report | None:
        """What ``losscli compute`` reports for ``changed`` (its fixes aside), swapped inputs
        included unless ``swaps`` is False; None when the command is a usage error."""
        key = (changed.command(), swaps)
        if key not in self._done:
            self._done[key] = self._evaluate(changed, swaps)
        return self._done[key]

    def _evaluate(self, changed: Invocation, swaps: bool) -> Report | None:
        from losscli.runner import evaluate_in_memory

        try:
            result = evaluate_in_memory(changed, self.loaded, self.budget)
        except LossCliError:
            return None
        swapped = swapped_inputs(result, changed, self) if swaps else None
        if swapped is None:
            return result
        return replace(result, findings=(swapped, *result.findings))


def alarms(report: Report) -> tuple[str, ...]:
    """The names of the findings at warning or above, in report order, once each."""
    return tuple(
        dict.fromkeys(f.name for f in report.findings if f.severity.rank >= Severity.WARNING.rank)
    )


def _errors(report: Report) -> set[str]:
    return {f.name for f in report.findings if f.severity is Severity.ERROR}


def _fixes(
    item: Finding, report: Report, invocation: Invocation, trials: Trials | None
) -> tuple[Fix, ...]:
    kept: list[Fix] = []
    for remedy in item.remedies:
        fix = _tried(remedy, item, report, invocation, trials)
        if fix is not None and fix not in kept:
            kept.append(fix)
    return tuple(kept)


def _tried(
    remedy: Remedy, item: Finding, report: Report, invocation: Invocation, trials: Trials | None
) -> Fix | None:
    """The remedy as a fix when it works (see the module docstring), else None."""
    if remedy.outside:
        return Fix(code=remedy.code, command=None, verified=None, note=remedy.note)
    try:
        changed = invocation.applying(remedy)
    except LossCliError:
        return None
    code = remedy.code or code_line(remedy, changed)
    if trials is None:  # streamed: the command is shown, not tried
        return Fix(
            code=code,
            command=changed.command(),
            verified=None,
            note=remedy.note,
            invocation=changed,
        )
    result = trials.run(changed)
    if result is None or any(f.name == item.name for f in result.findings):
        return None
    if _errors(result) - _errors(report) or _discards(changed, invocation, result):
        return None
    if report.computation is not None and result.computation is None:  # the value is lost
        return None
    return Fix(
        code=code,
        command=changed.command(),
        verified=Verified(result.value, alarms(result), changed.loss),
        note=remedy.note,
        invocation=changed,
    )


def _discards(changed: Invocation, invocation: Invocation, result: Report) -> bool:
    """An ``ignore_index`` set by the remedy that drops a class, not unlabelled samples.

    The ignored value stands for a class when some class of the model never appears among
    the targets (the -1 of -1/+1 labels stands for class 0), and ignoring it is dropping
    data when it holds more than :data:`SMALL_SHARE` of the samples. Judged where each
    sample has one label: where a sample has a label per token or pixel, padding and void
    labels are not data, however many there are.
    """
    set_by_remedy = dict(changed.options).get("ignore_index") != dict(invocation.options).get(
        "ignore_index"
    )
    classes = result.classes
    if not set_by_remedy or classes is None or not classes.total:
        return False
    samples = next(iter(result.inputs.values())).shape[:1]
    one_label_per_sample = bool(samples) and classes.total <= samples[0]
    stands_for_a_class = bool((classes.true == 0).any())
    return (
        one_label_per_sample
        and stands_for_a_class
        and classes.ignored > SMALL_SHARE * classes.total
    )


def swapped_inputs(report: Report, invocation: Invocation, trials: Trials) -> Finding | None:
    """``swapped-inputs``: the inputs raise a warning or an error as given, and nothing
    worse than the warnings they had in another order that the data itself points to
    (:func:`_plausible`); when they raised only warnings, the other order must raise none."""
    errors = _errors(report)
    if not alarms(report) or len(set(invocation.arguments)) < 2:
        return None
    names = tuple(a.name for a in invocation.spec.arguments)
    for order in _orders(names):
        if not _plausible(order, invocation, trials):
            continue
        remedy = Remedy(order=order)
        changed = invocation.applying(remedy)
        result = trials.run(changed, swaps=False)
        if result is None or result.value is None or _errors(result):
            continue
        if not errors and alarms(result):
            continue
        return _swapped_finding(report, changed, result, set(alarms(report)), remedy)
    return None


def _orders(names: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The other orders of ``names``, fewest pairs out of order first (at most MAX_ORDERS)."""

    def inversions(order: tuple[str, ...]) -> int:
        position = [names.index(name) for name in order]
        return sum(1 for a, b in itertools.combinations(position, 2) if a > b)

    others = [o for o in itertools.permutations(names) if o != names]
    yield from sorted(others, key=inversions)[:MAX_ORDERS]


# where a model's output goes; every other role but those below holds a target
_PREDICTION_ROLES = frozenset({Role.PREDICTION, Role.LOG_PROBS})
# roles exchanged only with their own kind (ctc's two lengths), never with a prediction
_OWN_KIND_ONLY = frozenset({Role.VARIANCE, Role.LENGTHS, Role.CTC_TARGETS})


def _plausible(order: tuple[str, ...], invocation: Invocation, trials: Trials) -> bool:
    """Whether the data points to ``order``: every input moves to a place of its own kind.

    An input may move between two places of one role (ctc's input and target lengths),
    or between a prediction's place and a target's when the input moved into the target's
    place holds labels (whole numbers, at most two distinct values, or rows summing to 1)
    and the one moved into the prediction's place does not hold whole numbers. A variance
    never trades places with a prediction. One value of 0.5 against a target of 2 fits
    either way, so it is not taken as swapped.
    """
    spec = invocation.spec
    roles = {a.name: a.role for a in spec.arguments}
    names = [a.name for a in spec.arguments]
    typed = dict(zip(names, invocation.arguments, strict=True))
    for place, name in zip(names, order, strict=True):
        if name == place:
            continue
        before, after = roles[name], roles[place]
        if before == after:
            continue
        if before in _OWN_KIND_ONLY or after in _OWN_KIND_ONLY:
            return False
        if (before in _PREDICTION_ROLES) == (after in _PREDICTION_ROLES):
            return False
        values = trials.loaded[typed[name]].values
        if after in _PREDICTION_ROLES and _whole_numbers(values):
            return False
        if after not in _PREDICTION_ROLES and not _label_like(values):
            return False
    return True


def _whole_numbers(values: np.ndarray) -> bool:
    return bool(values.size) and classify(values).integral


def _label_like(values: np.ndarray) -> bool:
    """Labels: at least two distinct values, and whole numbers, exactly two values (smoothed
    0.05/0.95), or distributions. A constant (a dead model's output) is no label."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if not finite.size:
        return False
    low, high = finite.min(), finite.max()
    if low == high:  # fewer than two distinct values
        return False
    if classify(values).integral or bool(np.all((finite == low) | (finite == high))):
        return True  # whole numbers, or exactly two values: no sort of the values needed
    return values.ndim >= 2 and classify(values, class_axis=1).kind is Kind.PROBABILITIES


def _swapped_finding(
    report: Report, changed: Invocation, result: Report, given_alarms: set[str], remedy: Remedy
) -> Finding:
    spec = report.spec
    names = [a.name for a in spec.arguments]
    given = ", ".join(f"{name} {report.inputs[name].source}" for name in names)
    now = ", ".join(f"{name} {typed}" for name, typed in zip(names, changed.arguments, strict=True))
    raised = ", ".join(sorted(given_alarms))
    remaining = alarms(result)
    outcome = (
        f"{spec.name} = {text.number(result.value)}" if result.value is not None else "no value"
    ) + (f" with {', '.join(remaining)}" if remaining else ", no findings")
    return finding(
        "swapped-inputs",
        Severity.ERROR,
        f"the inputs fit {spec.name} once their order is changed: as given ({given}) they "
        f"raise {raised}; given as {now} they give {outcome}",
        f"pass the model's output first: torch takes {', '.join(names)} by position",
        remedies=(remedy,),
        order=list(changed.arguments),
    )


def code_line(remedy: Remedy, changed: Invocation) -> str | None:
    """The line for the training script: the maps, then the call when the command changed."""
    parts = list(remedy.maps)
    if remedy.loss is not None or remedy.options or remedy.order is not None:
        parts.append(call_text(changed))
    return "; ".join(parts) or None


def call_text(invocation: Invocation) -> str:
    """How PyTorch code calls the loss of ``invocation``: ``F.cross_entropy(logits, labels, ignore_index=255)``.

    The tensors are named after their files when every file name is a Python name
    (``logits.npy`` → ``logits``), else by the loss's argument names.
    """
    spec = invocation.spec
    stems = [_variable(a) for a in invocation.arguments]
    if any(s is None for s in stems) or len(set(stems)) != len(stems):
        stems = [a.name for a in spec.arguments]
    words = [str(s) for s in stems]
    words += [f"{name}={_python_value(name, value)}" for name, value in invocation.options]
    return f"{spec.call}({', '.join(words)})"


def _variable(typed: str) -> str | None:
    """``logits.npy:key`` → ``logits``; None when the file name is not a Python name."""
    stem = PurePath(typed.split(":", 1)[0]).name.split(".", 1)[0]
    return stem if stem.isidentifier() and not keyword.iskeyword(stem) else None


# a tensor option given as an array (the Python API) is written out up to this many values;
# a longer one is the caller's own variable, named after the option
_WRITTEN_VALUES = 16


def _python_value(name: str, value: object) -> str:
    if isinstance(value, str) and value.lstrip().startswith("["):
        return f"torch.tensor({value})"
    if isinstance(value, np.ndarray):
        return f"torch.tensor({value.tolist()})" if value.size <= _WRITTEN_VALUES else name
    return repr(value)


def recommended(
    report: Report,
    invocation: Invocation,
    loaded: Mapping[str, LoadedArray] | None,
    budget: int,
    steps: int = 3,
) -> tuple[Invocation, Verified | None]:
    """The command to recommend, and what it gives: ``invocation`` when it raises no warning
    or error, else the verified fixes that leave the fewest applied one after another.

    Never a command that repeats a mistake the checks found when a verified fix clears it;
    when none does, the command is returned with the findings that remain. None as the
    outcome when the inputs were streamed (nothing was tried).
    """
    if loaded is None:
        return invocation, None
    current, outcome = invocation, report
    for _ in range(steps):
        remaining = alarms(outcome)
        best = min(
            (
                fix
                for item in outcome.findings
                if item.name in remaining
                for fix in item.fixes
                if fix.verified is not None and fix.invocation is not None
            ),
            key=lambda fix: len(fix.verified.findings) if fix.verified else 0,
            default=None,
        )
        if not remaining or best is None or best.verified is None:
            break
        if len(best.verified.findings) >= len(remaining):
            break
        current = best.invocation
        trials = Trials(current, dict(loaded), budget)
        result = trials.run(current, swaps=False)  # verify() looks for swapped inputs itself
        if result is None:
            break
        outcome = verify(result, current, loaded, budget)
    return current, Verified(outcome.value, alarms(outcome), current.loss)
