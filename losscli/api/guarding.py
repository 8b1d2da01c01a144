"""``losscli.guard``: the checks of ``losscli.check`` inside a running training loop.

``guard(nn.CrossEntropyLoss())`` returns a :class:`GuardedLoss`, a plain callable that is
called exactly like the loss and returns exactly what the loss returns (the same tensor,
with its autograd graph): the call itself goes straight to the wrapped loss. On the first
call and every ``check_every`` calls after, the call's tensors are checked first, on
detached copies, by the one pipeline (:func:`losscli.api.checking.report_of`); each finding at
warning or error severity that this guard has not reported yet is reported, in one
:class:`LossWarning` per call (or, with ``strict=True``, a :class:`LossMisuseError`): one
mistake often raises a cause and its symptom (raw scores to ``nll_loss``: ``logits-to-nll``
and ``negative-loss``), which read as one message, the cause first. The findings that judge
the model's outputs rather than the call (``constant-input``, ``fit-too-good``,
``misaligned-samples``, ...: ``Check.judges_model``) are left to ``check`` and the CLI: a
model in training is not trained yet (a zero-initialised head is constant at step 0 by
design). Under ``torch.autocast`` the check reads the float inputs in float32, as autocast
hands them to the loss. Between checks the guard costs a counter.

A batch of more than :data:`CHECKED_ELEMENTS` numbers is checked on evenly spaced rows, and
a row too large alone on strided positions (:func:`losscli.api.tensors.bounded_rows`; no
random number is drawn), and the warning says so. Inside ``torch.compile`` the check
runs eagerly at a graph break (``torch.compiler.disable``); the loss call itself is traced
as usual. A check that cannot run (a loss option losscli does not know, a custom distance
function) never stops training: it says why once, as a ``RuntimeWarning``.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from losscli.api import tensors as memory
from losscli.api.calls import CannotCheck, TorchLoss, loss_spec, torch_loss
from losscli.checks import model_findings
from losscli.errors import UnsupportedDtype
from losscli.findings import Finding, Severity
from losscli.losses import LossSpec
from losscli.report import Report

# the most numbers one check reads; beyond, evenly spaced rows of the batch (4 MB of
# float32; about a tenth of a second of checks, measured in benchmarks/README.md)
CHECKED_ELEMENTS = 1 << 20
# what the model's outputs are (constant, collapsed, fitting too well or by chance): not how
# the loss is called, and a model in training is not trained yet
_MODEL_FINDINGS = model_findings()
# the losscli package: frames inside it are not the caller a warning points to
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LossWarning(UserWarning):
    """A mistake in how a loss is called, found by :func:`guard`: each new finding, its
    numbers and its verified fix, in one warning per checked call.

    Attributes:
        findings: the findings, most severe first (``.name``, ``.severity``, ``.message``,
            ``.fix``, ``.fixes``).
        report: the whole report of the call.
    """

    def __init__(self, text: str, findings: tuple[Finding, ...], report: Report) -> None:
        super().__init__(text)
        self.findings = findings
        self.report = report


class LossMisuseError(ValueError):
    """What :func:`guard` raises instead of warning, with ``strict=True``.

    Attributes:
        findings: the findings at warning or error severity, most severe first.
        report: the whole report of the call.
    """

    def __init__(self, text: str, findings: tuple[Finding, ...], report: Report) -> None:
        super().__init__(text)
        self.findings = findings
        self.report = report


def guard(loss: Callable[..., Any], check_every: int = 100, strict: bool = False) -> GuardedLoss:
    """Wrap a torch loss so that the way it is called is checked while training runs.

    Args:
        loss: a ``torch.nn`` loss module (``nn.CrossEntropyLoss(label_smoothing=0.1)``) or
            a ``torch.nn.functional`` loss function (``F.cross_entropy``).
        check_every: check the first call and every ``check_every``-th call after it.
        strict: raise :class:`LossMisuseError` rather than warn.

    Returns:
        A callable that computes exactly what ``loss`` computes, and forwards attribute
        access (``.weight``, ``.to()``, ``.state_dict()``) to it.

    Raises:
        TypeError: ``loss`` is no torch loss losscli knows.
        ValueError: ``check_every`` is not a whole number of at least 1.
    """
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be a whole number >= 1, got {check_every!r}")
    loss_spec(loss)  # refuse what is no torch loss now, not at the first call
    return GuardedLoss(loss, check_every, strict)


class GuardedLoss:
    """A torch loss, checked on its first call and every ``check_every`` calls after.

    Not an ``nn.Module``: a proxy whose attributes are the wrapped loss's, so that
    ``criterion.weight`` and ``criterion.to(device)`` work as on the loss itself (a method
    that returns the loss returns the guard). The wrapped loss is ``__wrapped__``.
    """

    __slots__ = (
        "__wrapped__",
        "_broken",
        "_compiling",
        "_every",
        "_left",
        "_reported",
        "_strict",
    )

    def __init__(self, loss: Callable[..., Any], check_every: int, strict: bool) -> None:
        import torch

        own = object.__setattr__
        own(self, "__wrapped__", loss)
        own(self, "_every", check_every)
        own(self, "_strict", strict)
        own(self, "_left", 1)  # calls until the next check: the first call is checked
        own(self, "_reported", set())  # finding names already reported
        own(self, "_broken", False)  # a check could not run, and said so
        own(self, "_compiling", _is_compiling(torch))
        if GuardedLoss._at_a_graph_break is None:
            GuardedLoss._at_a_graph_break = torch.compiler.disable(GuardedLoss._count)

    # _count, run eagerly when torch.compile traces a call (set with the first guard: torch)
    _at_a_graph_break: Callable[[GuardedLoss, tuple[Any, ...], dict[str, Any]], None] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiling():  # traced by torch.compile: count and check eagerly
            GuardedLoss._at_a_graph_break(self, args, kwargs)  # type: ignore[misc]
        else:
            self._count(args, kwargs)
        return self.__wrapped__(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        """Copied and pickled as a new guard of the loss (``copy.deepcopy(model)`` of a model
        that holds it, ``torch.save``): the copy checks its own first call."""
        return (GuardedLoss, (self.__wrapped__, self._every, self._strict))

    def _count(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        left = self._left - 1
        if left > 0:
            object.__setattr__(self, "_left", left)
            return
        object.__setattr__(self, "_left", self._every)
        self._check(args, kwargs)

    def _check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Check one call; report what is new (or raise, when strict)."""
        spec = loss_spec(self.__wrapped__)
        try:
            found = torch_loss(self.__wrapped__)  # options as the module holds them now
            tensors, given = found.bind(args, kwargs)
        except CannotCheck as error:
            self._cannot_check(spec, error)
            return
        except TypeError:  # the call does not fit the loss: torch raises its own error next
            return
        try:
            report, rows = _checked(found, tensors, given)
        except Exception as error:  # a check never stops training
            self._cannot_check(spec, error)
            return
        new = tuple(
            f
            for f in sorted(report.findings, key=lambda f: -f.severity.rank)
            if f.severity is not Severity.INFO
            and f.name not in self._reported
            and f.name not in _MODEL_FINDINGS
        )
        if not new:
            return
        text = alarm_text(new, report, rows)
        if self._strict:
            raise LossMisuseError(text, new, report)
        self._reported.update(f.name for f in new)
        warnings.warn(LossWarning(text, new, report), stacklevel=_caller_level())

    def _cannot_check(self, spec: LossSpec, error: Exception) -> None:
        if self._broken:
            return
        object.__setattr__(self, "_broken", True)
        warnings.warn(
            f"losscli.guard cannot check {spec.name} here: {error}",
            RuntimeWarning,
            stacklevel=_caller_level(),
        )

    def __getattr__(self, name: str) -> Any:
        if name in GuardedLoss.__slots__:  # not set yet (a copy being built)
            raise AttributeError(name)
        value = getattr(self.__wrapped__, name)
        if callable(value) and getattr(value, "__self__", None) is self.__wrapped__:
            return self._returning_the_guard(value)
        return value

    def _returning_the_guard(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method`` of the loss, returning the guard where it returns the loss itself
        (``criterion = criterion.to(device)`` keeps the guard)."""

        @functools.wraps(method)
        def forwarded(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return self if result is self.__wrapped__ else result

        return forwarded

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)

    def __dir__(self) -> list[str]:
        return sorted({*dir(self.__wrapped__), *object.__dir__(self)})

    def __repr__(self) -> str:
        return (
            f"losscli.guard({self.__wrapped__!r}, check_every={self._every}, strict={self._strict})"
        )


def _checked(
    found: TorchLoss, tensors: list[Any], given: dict[str, Any]
) -> tuple[Report, memory.Rows | None]:
    """The report on the call's tensors (evenly spaced rows of a large batch), computed in
    their own dtype, or in float32 where torch has no CPU kernel for it."""
    from losscli.api.checking import report_of

    rows = memory.bounded_rows(tensors, CHECKED_ELEMENTS)
    if rows is not None:
        tensors = [memory.take_rows(t, rows) for t in tensors]
    if _under_autocast(tensors):
        tensors = [
            t.detach().float() if memory.is_tensor(t) and t.is_floating_point() else t
            for t in tensors
        ]
    try:
        return report_of(found.spec, tensors, given), rows
    except UnsupportedDtype:
        return report_of(found.spec, tensors, given, dtype="float32"), rows


def _under_autocast(tensors: list[Any]) -> bool:
    """Whether ``torch.autocast`` is on for the tensors' device: it then hands every loss it
    lists (all of torch's) its float inputs in float32, and the check reads them so."""
    import torch

    first = next((t for t in tensors if memory.is_tensor(t)), None)
    if first is None:
        return False
    device = first.device.type
    try:
        return bool(torch.is_autocast_enabled(device))
    except TypeError:  # torch < 2.4: one function per device type
        cpu = device == "cpu"
        return bool(torch.is_autocast_cpu_enabled() if cpu else torch.is_autocast_enabled())


def alarm_text(found: tuple[Finding, ...], report: Report, rows: memory.Rows | None) -> str:
    """The findings of one call as one warning: for each, its name, what was seen, the fix
    and what the fix gives, verified."""
    lines: list[str] = []
    for item in found:
        lines.append(f"{report.spec.name}: {item.name} ({item.severity.value}): {item.message}")
        if item.fix:
            lines.append(f"  fix: {item.fix}")
        lines += [
            f"  {fix.outcome()}" + (f" ({fix.note})" if fix.note else "") for fix in item.fixes
        ]
    if rows is not None:
        lines.append(f"({rows.text()})")
    return "\n".join(lines)


def _is_compiling(torch: Any) -> Callable[[], bool]:
    """torch's own test for being traced by ``torch.compile`` (``torch.compiler`` has it
    from torch 2.3; ``torch._dynamo`` before)."""
    found = getattr(torch.compiler, "is_compiling", None)
    return found if found is not None else torch._dynamo.is_compiling


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside losscli and torch: the line of the
    training script that called the loss (called by the function that warns)."""
    torch = sys.modules.get("torch")
    homes = [_PACKAGE]
    if torch is not None and torch.__file__ is not None:
        homes.append(os.path.dirname(torch.__file__))
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(tuple(homes)):
        frame = frame.f_back
        level += 1
    return level
