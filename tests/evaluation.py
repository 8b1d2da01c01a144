"""Run losscli's pipeline on arrays held in memory: shared by the check suites."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from losscli import losses, options, pipeline
from losscli.compute import TorchRejected, compute
from losscli.conversion import convert
from losscli.findings import Finding
from losscli.loaders import LoadedArray
from losscli.report import Report


def in_memory(
    loss: str, arrays: Sequence[Any], sources: Sequence[str] | None = None
) -> dict[str, LoadedArray]:
    """The loss's arguments as LoadedArrays; sources default to ``<argument>.npy``."""
    spec = losses.get(loss)
    assert spec is not None
    names = [a.name for a in spec.arguments]
    files = list(sources) if sources is not None else [f"{name}.npy" for name in names]
    return {
        name: LoadedArray(np.asarray(values), source)
        for name, values, source in zip(names, arrays, files[: len(names)], strict=True)
    }


def evaluate(loss: str, *arrays: object, **given: object) -> Report:
    """Run ``loss`` on arrays named ``<argument>.npy``, with command-line options ``given``."""
    spec = losses.get(loss)
    assert spec is not None
    return pipeline.evaluate(spec, in_memory(loss, arrays), options.resolve(spec, dict(given)))


def torch_raises(loss: str, arrays: Sequence[Any], **given: Any) -> bool:
    """Whether torch itself rejects these inputs (after losscli's dtype conversion)."""
    spec = losses.get(loss)
    assert spec is not None
    converted = convert(spec, in_memory(loss, arrays))
    try:
        compute(spec, converted.arrays, options.resolve(spec, given), converted.soft_target, False)
    except TorchRejected:
        return True
    return False


def named(report: Report, name: str) -> list[Finding]:
    return [f for f in report.findings if f.name == name]


def only(report: Report, name: str) -> Finding:
    found = named(report, name)
    assert len(found) == 1, [f.name for f in report.findings]
    return found[0]
