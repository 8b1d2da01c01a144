"""``losscli.check``: the CLI's pipeline on tensors already in memory.

The tensors are read as the loaders read a file (:mod:`losscli.api.tensors`), the options
as the command line's are (:func:`losscli.options.resolve`), and the rest is the CLI's own
path, :func:`losscli.runner.run_loaded`: the same checks, torch's value bit for bit, the
same remedies tried before a fix is shown. The :class:`~losscli.report.Report` returned is
the one ``losscli compute`` renders; ``report.to_dict()`` is its JSON.

torch runs here as a plain script runs it, whatever the caller's context: gradients on
(a validation loop's ``torch.no_grad()``), no inference mode, no CPU autocast, CPU as the
default device. Nothing here draws a random number or changes torch's global state.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from losscli import losses
from losscli.api import tensors as memory
from losscli.api.calls import torch_loss
from losscli.errors import LossCliError, UnsupportedDtype
from losscli.losses import LossSpec
from losscli.report import Report


def check(
    loss: object, /, *tensors: Any, dtype: Any = None, strict: bool = False, **options: Any
) -> Report:
    """Check and compute a loss on tensors in memory, as ``losscli compute`` does on files.

    Args:
        loss: a loss name or alias (``"cross-entropy"``, ``"CrossEntropyLoss"``,
            ``"F.cross_entropy"``), or a torch loss module or function, whose options
            (``label_smoothing``, ``weight``, ...) are then read from it.
        *tensors: the loss's tensor arguments in torch's order: torch tensors on any device
            (read as detached CPU copies, never modified) or NumPy arrays.
        dtype: the dtype to compute in (``"float64"``, ``torch.float64``); default: the
            tensors' own (the prediction's).
        strict: convert nothing (``--strict``).
        **options: the loss options, with torch's keywords (``label_smoothing=0.1``,
            ``weight=torch.tensor([...])``, ``reduction="sum"``).

    Returns:
        The report: ``.value`` (torch's), ``.findings`` (each with its verified fixes),
        ``.ok``, ``.per_sample``, ``.gradient``, ``.to_dict()``; ``rich.print(report)``
        shows the CLI's table.

    Raises:
        TypeError: ``loss`` is no torch loss losscli knows, the wrong number of tensors,
            or a tensor that is no real-valued array.
        ValueError: an unknown loss name, an option the loss does not take, or a value it
            refuses.
    """
    spec, held = _loss(loss)
    try:
        return report_of(spec, tensors, {**held, **options}, dtype=dtype, strict=strict)
    except UnsupportedDtype as error:
        raise ValueError(
            f"torch has no {error.dtype} kernel for {spec.name} on the CPU, where losscli "
            "computes: pass dtype=torch.float32"
        ) from None
    except LossCliError as error:
        raise ValueError(error.line()) from None


def report_of(
    spec: LossSpec,
    tensors: Sequence[Any],
    given: dict[str, Any],
    *,
    dtype: Any = None,
    strict: bool = False,
) -> Report:
    """The report of ``spec`` on ``tensors`` with the options ``given`` (torch keyword →
    value): :func:`check` once the loss is known, with losscli's own errors (``guard``
    tells them apart).

    Raises:
        TypeError: the wrong number of tensors, or one that is no real-valued array.
        UnsupportedDtype: torch has no CPU kernel for the loss in the compute dtype.
        LossCliError: an option the loss does not take or a value it refuses.
    """
    from losscli import chunks, options, pipeline, runner
    from losscli.invocation import Invocation

    names = [a.name for a in spec.arguments]
    if len(tensors) != len(names):
        raise TypeError(
            f"{spec.name} takes {len(names)} tensors ({', '.join(names)}), got {len(tensors)}"
        )
    arrays = {name: memory.loaded(value, name) for name, value in zip(names, tensors, strict=True)}
    given = {name: memory.option_value(value) for name, value in given.items() if value is not None}
    chosen = _dtype(dtype) if dtype is not None else memory.own_dtype(spec, arrays)
    # the inputs are named after the arguments: a fix's code line reads F.mse_loss(input, target)
    invocation = Invocation(
        spec.name, tuple(names), tuple(given.items()), dtype=chosen, strict=strict
    )
    resolved = options.resolve(spec, given, keywords=True)
    with _as_a_script():
        report = runner.run_loaded(
            invocation, resolved, arrays, chunks.default_budget(), pipeline.Settings(chosen, strict)
        )
    return _without_commands(report)


def _loss(loss: object) -> tuple[LossSpec, dict[str, Any]]:
    """The catalogue loss ``loss`` names or is, and the options it holds."""
    if isinstance(loss, str):
        spec = losses.get(loss)
        if spec is None:
            guess = losses.suggest(loss)
            hint = f"; did you mean {guess!r}?" if guess else "; losscli list shows the catalogue"
            raise ValueError(f"unknown loss {loss!r}{hint}")
        return spec, {}
    found = torch_loss(loss)
    return found.spec, {**found.held, **found.partial_keywords}


def _dtype(dtype: Any) -> str:
    name = str(dtype).removeprefix("torch.")
    if name not in memory.COMPUTE_DTYPES:
        raise ValueError(f"dtype={dtype!r}: losscli computes in {', '.join(memory.COMPUTE_DTYPES)}")
    return name


@contextlib.contextmanager
def _as_a_script() -> Iterator[None]:
    """torch as a plain script has it: gradients on, no inference mode or CPU autocast,
    tensors created on the CPU. Restored on exit; nothing else is touched."""
    import torch

    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.autocast("cpu", enabled=False),
        torch.device("cpu"),
    ):
        yield


def _without_commands(report: Report) -> Report:
    """The report with no ``losscli compute`` command in its fixes: the inputs are tensors,
    not files, so the code line is the fix (a UsageError's "run losscli ..." aside)."""
    findings = tuple(
        dataclasses.replace(f, fixes=tuple(dataclasses.replace(x, command=None) for x in f.fixes))
        for f in report.findings
    )
    return dataclasses.replace(report, findings=findings)
