"""The check registry: it covers the finding catalogue exactly, each check raises only the
findings it declares, blocking findings come only from checks that run before torch, and
the pipeline reports findings in registry order.

"Raises only what it declares" is judged on a corpus: the fires / near-miss / clean-input
cases of the check suites, plus the cases below for the value checks those lists leave out.
The corpus must make every check raise every finding it declares, so that a check cannot
hide a finding it never gets to raise here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import test_checks_classes
import test_checks_shapes
import test_false_alarms_classes
import test_false_alarms_domains
from evaluation import in_memory

from losscli import conversion, losses, options, pipeline
from losscli.checks import REGISTRY, Check, CheckContext, Scope, checks_for, run
from losscli.findings import CATALOGUE, Finding
from losscli.render.explain import applies_to

Case = tuple[str, list[Any], dict[str, Any]]
RNG = np.random.default_rng(17)


def _log_softmax(values: np.ndarray, axis: int) -> np.ndarray:
    peak = values.max(axis=axis, keepdims=True)
    shifted = values - peak
    return (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)


_LOG_PROBS = _log_softmax(RNG.normal(size=(6, 2, 4)), 2)  # ctc [time, batch, classes]
_LENGTHS = [np.array([6, 6]), np.array([2, 2])]
_COUNTS = RNG.poisson(40, size=32)
_TOKENS = RNG.integers(1, 50, size=(8, 24))
_TOKENS[np.arange(24) >= RNG.integers(8, 24, size=(8, 1))] = 0  # padded with 0 to length 24
_MEANS, _STDS = RNG.normal(0, 2, size=200), RNG.uniform(0.5, 3, size=200)
_STEP_LABELS = RNG.integers(0, 10, size=(16, 10))  # (N, T) with T == C == 10
_STEP_LOGITS = RNG.normal(size=(16, 10, 10))  # (N, T, C): the classes last
np.put_along_axis(_STEP_LOGITS, _STEP_LABELS[..., None], 4.0, axis=2)
_SCORES = RNG.normal(size=64)  # a regression's predictions in standard units
_TARGETS = 150 + 75 * (0.9 * _SCORES + 0.3 * RNG.normal(size=64))  # the raw targets they fit
_POINT = RNG.normal(size=4)  # where collapsed embeddings sit

# one case per value finding that the suites' case lists do not raise
LOCAL: list[Case] = [
    ("ctc", [_LOG_PROBS, np.array([[1, 2], [0, 3]]), *_LENGTHS], {}),  # the blank 0 as a label
    ("ctc", [_LOG_PROBS, np.array([[1, 5], [2, 3]]), *_LENGTHS], {}),  # label 5 of 4 classes
    ("ctc", [RNG.normal(size=(6, 2, 4)) * 3, np.array([[1, 2], [2, 3]]), *_LENGTHS], {}),  # logits
    ("bce", [RNG.normal(size=8) * 4, (RNG.random(8) > 0.5) * 1.0], {}),  # logits to bce
    ("bce", [np.array([0.0, 1.0, 0.3, 0.7]), np.array([1.0, 0.0, 0.0, 1.0])], {}),  # saturated
    ("bce-logits", [RNG.normal(size=8), np.array([0, 255] * 4, dtype=np.float32)], {}),  # 0/255
    ("hinge-embedding", [np.abs(RNG.normal(size=8)), np.array([0.0, 1.0] * 4)], {}),  # {0, 1}
    ("poisson-nll", [RNG.normal(size=8), -RNG.poisson(3, size=8) - 1.0], {}),  # negative counts
    (
        "poisson-nll",
        [np.array([-0.7, 0.5, 2.0, 1.2]), np.array([1, 2, 7, 3])],
        {"log_input": False},
    ),
    ("poisson-nll", [_COUNTS + RNG.uniform(0.5, 3, size=32), _COUNTS], {}),  # rates as log-rates
    ("gaussian-nll", [RNG.normal(size=8), RNG.normal(size=8), RNG.normal(size=8)], {}),
    ("kl-div", [_log_softmax(RNG.normal(size=(4, 3)), 1), RNG.normal(size=(4, 3))], {}),
    ("mse", [np.array([[0.5, np.nan], [1.0, 2.0]]), np.zeros((2, 2))], {}),  # NaN in the input
    ("mse", [np.array([0.5, np.inf, 0.1], dtype=np.float32), np.zeros(3)], {}),  # inf gradient
    ("dice", [RNG.choice([-90.0, 90.0], size=(4, 64)), (RNG.random((4, 64)) > 0.5) * 1.0], {}),
    ("cross-entropy", [RNG.normal(size=(8, 50, 24)), _TOKENS], {}),  # pads counted
    ("gaussian-nll", [_MEANS, _MEANS + _STDS * RNG.normal(size=200), _STDS], {}),  # std as var
    ("cross-entropy", [_STEP_LOGITS, _STEP_LABELS], {}),  # (N, T, C) read as (N, C, T)
    *(  # the fit findings (tests/test_fit_findings.py has them on trained models)
        ("mse", [_TARGETS.mean() + RNG.normal(0, 0.1, 64), _TARGETS], {}),  # stuck at the mean
        ("mse", [_SCORES, _TARGETS], {}),  # standard units against raw targets
        ("mse", [_TARGETS, _TARGETS], {}),  # the target as the prediction
        ("mse", [_TARGETS[::-1] + RNG.normal(0, 1, 64), _TARGETS], {}),  # another order
        ("triplet-margin", [_POINT + RNG.normal(0, 1e-6, (16, 4)) for _ in range(3)], {}),
    ),
]


def _suite_cases() -> Iterator[Case]:
    for fires in test_checks_classes.FIRES:
        yield fires.loss, fires.arrays, fires.options
    for near in test_checks_classes.NEAR_MISSES:
        yield near.loss, near.arrays, near.options
    for shape in test_checks_shapes.FIRES:
        yield shape.loss, shape.arrays, shape.options
    for clean in test_checks_shapes.NEAR_MISSES:
        yield clean.loss, clean.arrays, clean.options
    for loss, make in test_false_alarms_classes.CLEAN.values():
        arrays, given = make(np.random.default_rng(0))
        yield loss, arrays, given
    for make_case in test_false_alarms_domains.CASES.values():
        loss, tensors, given = make_case(np.random.default_rng(2026))
        yield loss, list(tensors), dict(given)


Raised = list[tuple[Check, Finding]]


@pytest.fixture(scope="module")
def raised() -> Raised:
    """Every (check, finding) the pipeline's checks raised over the corpus."""
    found: Raised = []

    def recording(checks: Any, context: CheckContext) -> list[tuple[Check, Finding]]:
        pairs = run(checks, context)
        found.extend(pairs)
        return pairs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "run", recording)
        for loss, arrays, given in [*_suite_cases(), *LOCAL]:
            spec = losses.get(loss)
            assert spec is not None
            pipeline.evaluate(spec, in_memory(loss, arrays), options.resolve(spec, given))
    return found


def test_the_registry_conversion_and_pipeline_raise_exactly_the_catalogue() -> None:
    raised_by_checks = {name for check in REGISTRY for name in check.findings}
    everything = raised_by_checks | set(conversion.FINDINGS) | set(pipeline.FINDINGS)
    assert everything == set(CATALOGUE), (
        f"no check raises {sorted(set(CATALOGUE) - everything)}; "
        f"not in the catalogue: {sorted(everything - set(CATALOGUE))}"
    )


def test_every_check_raises_only_what_it_declares(raised: Raised) -> None:
    undeclared = {(check.name, f.name) for check, f in raised if f.name not in check.findings}
    assert undeclared == set()


def test_the_corpus_makes_every_check_raise_every_finding_it_declares(raised: Raised) -> None:
    # near miss for the test above: a corpus that never runs a check proves nothing about it
    declared = {(check.name, name) for check in REGISTRY for name in check.findings}
    seen = {(check.name, f.name) for check, f in raised}
    assert declared - seen == set()


def test_blocking_findings_come_only_from_checks_that_run_before_torch(raised: Raised) -> None:
    blocking = Counter(check.scope for check, f in raised if f.blocking)
    assert set(blocking) <= {Scope.SHAPES, Scope.CHUNK}
    assert blocking[Scope.SHAPES] and blocking[Scope.CHUNK]  # the corpus has both


def test_every_catalogue_finding_applies_to_some_loss() -> None:
    for name in CATALOGUE:
        assert applies_to(name), name


def test_every_check_applies_to_some_loss() -> None:
    for check in REGISTRY:
        assert any(check.applies(spec) for spec in losses.LOSSES), check.name


def test_no_two_checks_share_a_function() -> None:
    functions = [check.function for check in REGISTRY]
    assert len(set(functions)) == len(functions)
    assert len({check.name for check in REGISTRY}) == len(REGISTRY)


def test_combine_all_only_on_chunk_checks() -> None:
    from losscli.checks import Combine

    for check in REGISTRY:
        if check.combine is Combine.ALL:
            assert check.scope is Scope.CHUNK, check.name


def test_checks_for_keeps_registry_order_and_the_predicate() -> None:
    spec = losses.get("cross-entropy")
    assert spec is not None
    chunk = checks_for(spec, Scope.CHUNK)
    assert all(check.scope is Scope.CHUNK and check.applies(spec) for check in chunk)
    positions = [REGISTRY.index(check) for check in chunk]
    assert positions == sorted(positions)
    mse = losses.get("mse")
    assert mse is not None
    assert "check_class_index_range" in {c.name for c in chunk}
    assert "check_class_index_range" not in {c.name for c in checks_for(mse, Scope.CHUNK)}


def test_checks_that_read_the_computation_say_nothing_without_one() -> None:
    spec = losses.get("mse")
    assert spec is not None
    inputs = in_memory("mse", [np.array([0.5, np.inf]), np.zeros(2)])
    context = CheckContext(
        spec=spec,
        inputs=inputs,
        arrays={name: loaded.values for name, loaded in inputs.items()},
        options=options.resolve(spec, {}),
    )
    assert run(checks_for(spec, Scope.RESULT), context) == []
    sample = {check.name: check for check in checks_for(spec, Scope.SAMPLE)}
    assert list(sample["check_vanishing_gradient"].function(context)) == []


def test_findings_are_reported_in_registry_order() -> None:
    # one-hot float64 targets against float32 logits: conversion, then a SAMPLE check
    # (one-hot-target, targets) before a SHAPES one registered later (mixed-float-dtypes)
    spec = losses.get("cross-entropy")
    assert spec is not None
    logits = RNG.normal(size=(6, 3)).astype(np.float32)
    one_hot = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    report = pipeline.evaluate(
        spec, in_memory("cross-entropy", [logits, one_hot]), options.resolve(spec, {})
    )
    names = [f.name for f in report.findings]
    assert names[0] == "dtype-conversion"
    assert names.index("one-hot-target") < names.index("mixed-float-dtypes")
    rank = {name: position for position, check in enumerate(REGISTRY) for name in check.findings}
    checked = [name for name in names if name in rank]
    assert checked == sorted(checked, key=rank.__getitem__)


def test_shape_checks_read_no_values_of_streamable_losses() -> None:
    # streaming gives the SHAPES checks zero stand-ins of the full shapes: for every loss that
    # streams, they must say the same on zeros as on the values
    from losscli.conversion import convert

    def shape_findings(
        spec: losses.LossSpec, inputs: dict[str, Any], given: dict[str, Any]
    ) -> list[dict[str, Any]]:
        converted = convert(spec, inputs)
        context = CheckContext(
            spec=spec,
            inputs=inputs,
            arrays=converted.arrays,
            options=options.resolve(spec, given),
            soft_target=converted.soft_target,
        )
        return [f.to_dict() for _, f in run(checks_for(spec, Scope.SHAPES), context)]

    compared = 0
    for loss, arrays, given in [*_suite_cases(), *LOCAL]:
        spec = losses.get(loss)
        assert spec is not None
        if not spec.streamable:
            continue
        inputs = in_memory(loss, arrays)
        zeros = {
            name: type(loaded)(np.zeros_like(loaded.values), loaded.source)
            for name, loaded in inputs.items()
        }
        assert shape_findings(spec, zeros, given) == shape_findings(spec, inputs, given), loss
        compared += 1
    assert compared > 50
