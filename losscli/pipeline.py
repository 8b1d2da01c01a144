"""Pipeline: one loss on one set of inputs, load → convert → check → compute → report.

Data flows one way; torch is imported only when the inputs can be computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from losscli.checks import REGISTRY, Check, CheckContext, Scope, checks_for, run
from losscli.conversion import convert
from losscli.errors import UsageError
from losscli.findings import Finding, Severity, finding
from losscli.loaders import LoadedArray, load
from losscli.losses import LossSpec
from losscli.options import json_ready
from losscli.report import InputInfo, Report
from losscli.sources import check_one_stdin, parse_source

# the finding the pipeline raises itself, for every loss (the checks and conversion raise the rest)
FINDINGS = ("torch-rejected",)


def bind(spec: LossSpec, arguments: Sequence[str]) -> dict[str, str]:
    """Pair INPUT arguments with the loss's tensor arguments, in torch's order."""
    names = [a.name for a in spec.arguments]
    if len(arguments) != len(names):
        raise UsageError(
            f"{spec.name} takes {len(names)} inputs ({' '.join(names)}), got {len(arguments)}"
            + (f": {' '.join(arguments)}" if arguments else "")
        )
    check_one_stdin(arguments)
    return dict(zip(names, arguments, strict=True))


def load_inputs(
    spec: LossSpec, arguments: Sequence[str], stdin_format: str = "csv"
) -> dict[str, LoadedArray]:
    """Load every INPUT of ``spec``; unreadable input raises LoadError."""
    return {
        name: load(parse_source(text), stdin_format) for name, text in bind(spec, arguments).items()
    }


def evaluate(
    spec: LossSpec,
    inputs: dict[str, LoadedArray],
    options: dict[str, Any],
    float_dtype: str = "float32",
    strict: bool = False,
    want_gradient: bool = True,
) -> Report:
    """Check and compute ``spec`` on loaded ``inputs`` with resolved ``options``.

    The whole input is one view: the SHAPES and CHUNK checks run on it before torch (a
    blocking finding stops torch), then the SAMPLE and RESULT checks with what torch
    computed. Findings come in registry order: conversion's first, torch-rejected last.
    """
    converted = convert(spec, inputs, float_dtype, strict)
    context = CheckContext(
        spec=spec,
        inputs=inputs,
        arrays=converted.arrays,
        options=options,
        soft_target=converted.soft_target,
        strict=strict,
    )
    found = run((*checks_for(spec, Scope.SHAPES), *checks_for(spec, Scope.CHUNK)), context)
    computation = None
    rejected: list[Finding] = []
    blocking = any(f.blocking for f in (*converted.findings, *(f for _, f in found)))
    if not converted.blocked and not blocking:
        from losscli.compute import TorchRejected, compute

        try:
            computation = compute(
                spec, converted.arrays, options, converted.soft_target, want_gradient
            )
        except TorchRejected as error:
            rejected.append(
                finding(
                    "torch-rejected",
                    Severity.ERROR,
                    f"torch raised: {error}",
                    f"run losscli debug --loss {spec.name} on the same inputs for an explanation",
                )
            )
    context = dataclasses.replace(context, computation=computation)
    found += run((*checks_for(spec, Scope.SAMPLE), *checks_for(spec, Scope.RESULT)), context)
    findings = [*converted.findings, *_in_registry_order(found), *rejected]
    info = {
        name: InputInfo(
            source=loaded.source, shape=tuple(loaded.values.shape), dtype=str(loaded.values.dtype)
        )
        for name, loaded in inputs.items()
    }
    return Report(
        spec=spec,
        options=json_ready(options),
        inputs=info,
        computation=computation,
        findings=tuple(findings),
        loaded=dict(inputs),
    )


def _in_registry_order(found: list[tuple[Check, Finding]]) -> list[Finding]:
    """The findings ordered by the check that raised them, each check's in its own order."""
    rank = {check: position for position, check in enumerate(REGISTRY)}
    return [f for _, f in sorted(found, key=lambda pair: rank[pair[0]])]
