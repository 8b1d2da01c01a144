"""Shape findings for every loss family: each fires on the mistake as it happens in training
code, names N across files, and is blocking exactly when torch cannot compute; legitimate
shapes (torch's documented broadcasts) raise nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from evaluation import in_memory, torch_raises
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import losses
from losscli.checks import CheckContext
from losscli.checks.shapes import check_shapes
from losscli.conversion import convert
from losscli.findings import Finding, Severity
from losscli.loaders import LoadedArray
from losscli.losses import Layout
from losscli.options import resolve
from losscli.pipeline import evaluate
from losscli.report import Report

RNG = np.random.default_rng(7)
SHAPE_FINDINGS = ("shape-mismatch", "silent-broadcast", "batch-size-mismatch", "empty-input")


def _scores(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def _labels(classes: int, *shape: int) -> np.ndarray:
    return RNG.integers(0, classes, size=shape)


def _signs(*shape: int) -> np.ndarray:
    return np.where(RNG.random(size=shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _binary(*shape: int) -> np.ndarray:
    return (RNG.random(size=shape) < 0.5).astype(np.float32)


def _log_probs(steps: int, batch: int, classes: int) -> np.ndarray:
    logits = RNG.normal(size=(steps, batch, classes))
    peak = logits.max(axis=2, keepdims=True)
    return (logits - peak - np.log(np.exp(logits - peak).sum(axis=2, keepdims=True))).astype(
        np.float32
    )


def _evaluate(
    loss: str, arrays: list[Any], sources: list[str] | None = None, **options: Any
) -> Report:
    spec = losses.get(loss)
    assert spec is not None
    return evaluate(spec, in_memory(loss, arrays, sources), resolve(spec, options))


def _shape_findings(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.name in SHAPE_FINDINGS]


@dataclass(frozen=True)
class Fires:
    """A shape mistake and what losscli must say about it."""

    id: str
    loss: str
    arrays: list[Any]
    name: str
    quotes: tuple[str, ...]  # substrings of the message
    fix: str  # substring of the fix
    sources: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


FIRES = [
    # regression head nn.Linear(h, 1) -> (N, 1) against labels (N,)
    Fires(
        "mse-(N,1)-vs-(N,)",
        "mse",
        [_scores(4, 1), _scores(4)],
        "silent-broadcast",
        ("(4, 1)", "(4,)", "(4, 4)", "16 terms instead of 4"),
        "input.squeeze(1)",
        ["pred.npy", "true.csv"],
    ),
    # the model ran on one example (a [0] index or batch size 1) against a batch of 8 targets
    Fires(
        "mse-one-prediction-row-vs-batch",
        "mse",
        [_scores(1, 18), _scores(8, 18)],
        "silent-broadcast",
        ("input holds one sample", "all 8 samples"),
        "run the model on the whole batch so that input is shaped (8, 18)",
        ["pred.npy", "true.csv"],
    ),
    # a seq2seq decoder's time-major log-probabilities (T, N, C) against batch-first targets (N, T)
    Fires(
        "nll-time-major-decoder-output",
        "nll",
        [_scores(12, 4, 20), _labels(20, 4, 12)],
        "batch-size-mismatch",
        ("N=12", "N=4"),
        "input.permute(1, 2, 0) (shape (4, 20, 12)",
    ),
    # DeepLab-style logits at output stride 2 against the full-resolution mask
    Fires(
        "ce-logits-at-lower-resolution",
        "cross-entropy",
        [_scores(2, 3, 16, 16), _labels(3, 2, 32, 32)],
        "shape-mismatch",
        ("(2, 3, 16, 16)", "(2, 32, 32)"),
        "F.interpolate(input, size=(32, 32), mode='bilinear')",
    ),
    Fires(
        "mse-(4,)-vs-(5,)",
        "mse",
        [_scores(4), _scores(5)],
        "shape-mismatch",
        ("input (4,) from pred.npy", "target (5,) from true.csv"),
        "4 values",
        ["pred.npy", "true.csv"],
    ),
    Fires(
        "l1-batches-differ",
        "l1",
        [_scores(8, 3), _scores(6, 3)],
        "batch-size-mismatch",
        ("N=8 in pred.npy but N=6 in true.csv",),
        "same batch",
        ["pred.npy", "true.csv"],
    ),
    # bce/bce-logits refuse any size difference: blocking, not a broadcast
    Fires(
        "bce-logits-(N,1)-vs-(N,)",
        "bce-logits",
        [_scores(4, 1), _binary(4)],
        "shape-mismatch",
        ("exactly", "(4, 1)", "(4,)"),
        "input.squeeze(1)",
    ),
    Fires(
        "soft-margin-(N,1)-vs-(N,)",
        "soft-margin",
        [_scores(4, 1), _signs(4)],
        "shape-mismatch",
        ("(4, 1)",),
        "squeeze(1)",
    ),
    Fires(
        "kl-div-target-one-row",
        "kl-div",
        [_scores(4, 3), np.full((1, 3), 1 / 3, dtype=np.float32)],
        "silent-broadcast",
        ("one sample", "all 4 samples"),
        "one row per sample, shaped (4, 3)",
    ),
    # the SPEC's batch example: cross-entropy on (8, 3) and (6,)
    Fires(
        "ce-batch",
        "cross-entropy",
        [_scores(8, 3), _labels(3, 6)],
        "batch-size-mismatch",
        ("cross-entropy wants input (N, C) and target (N,); N=8 in pred.npy but N=6 in true.csv",),
        "same batch",
        ["pred.npy", "true.csv"],
    ),
    # logits flattened to (N*H*W, C) but the mask kept (N, H, W)
    Fires(
        "ce-flattened-logits",
        "cross-entropy",
        [_scores(2 * 4 * 4, 3), _labels(3, 2, 4, 4)],
        "shape-mismatch",
        ("input (32, 3)", "target (2, 4, 4)"),
        "target.view(-1)",
    ),
    Fires(
        "ce-spatial-mismatch",
        "cross-entropy",
        [_scores(2, 3, 8, 8), _labels(3, 2, 4, 4)],
        "shape-mismatch",
        ("(N, C, H, W)", "(N, H, W)", "(2, 4, 4)"),
        "(2, 8, 8)",
    ),
    Fires(
        "ce-channels-last",
        "cross-entropy",
        [_scores(2, 8, 8, 3), _labels(3, 2, 8, 8)],
        "shape-mismatch",
        ("classes last", "C=3"),
        "input.permute(0, 3, 1, 2)",
    ),
    Fires(
        "ce-probability-target-wrong-classes",
        "cross-entropy",
        [_scores(4, 3), np.full((4, 5), 0.2, dtype=np.float32)],
        "shape-mismatch",
        ("(class probabilities)", "(4, 5)"),
        "one column per class",
    ),
    # binary model with one logit per sample given to cross-entropy
    Fires(
        "ce-1d-input",
        "cross-entropy",
        [_scores(6), _labels(2, 6)],
        "shape-mismatch",
        ("ONE sample", "C=6"),
        "F.binary_cross_entropy_with_logits",
    ),
    Fires(
        "nll-one-hot-target",
        "nll",
        [_scores(4, 3), np.eye(3, dtype=np.int64)[[0, 1, 2, 0]]],
        "shape-mismatch",
        ("(4, 3)",),
        "target.argmax(1)",
    ),
    Fires(
        "multi-margin-batch",
        "multi-margin",
        [_scores(5, 3), _labels(3, 4)],
        "batch-size-mismatch",
        ("N=5", "N=4"),
        "same batch",
    ),
    Fires(
        "multi-margin-spatial",
        "multi-margin",
        [_scores(5, 3, 2), _labels(3, 5, 2)],
        "shape-mismatch",
        ("(5, 3, 2)",),
        "reshape(-1, C)",
    ),
    Fires(
        "multilabel-margin-short-rows",
        "multilabel-margin",
        [_scores(4, 3), np.array([[0, -1]] * 4)],
        "shape-mismatch",
        ("(4, 2)", "padded with -1"),
        "F.pad(target, (0, 1), value=-1)",
    ),
    Fires(
        "multilabel-margin-batch",
        "multilabel-margin",
        [_scores(4, 3), np.array([[0, -1, -1]] * 3)],
        "batch-size-mismatch",
        ("N=4", "N=3"),
        "same batch",
    ),
    Fires(
        "margin-ranking-(N,1)-scores",
        "margin-ranking",
        [_scores(4, 1), _scores(4, 1), _signs(4)],
        "shape-mismatch",
        ("same number of dimensions", "x1 (4, 1)"),
        "x1.squeeze(1)",
    ),
    Fires(
        "margin-ranking-batch",
        "margin-ranking",
        [_scores(4), _scores(3), _signs(4)],
        "batch-size-mismatch",
        ("N=4 in s1.npy but N=3 in s2.npy",),
        "same batch",
        ["s1.npy", "s2.npy", "y.npy"],
    ),
    Fires(
        "margin-ranking-one-label",
        "margin-ranking",
        [_scores(4), _scores(4), _signs(1)],
        "silent-broadcast",
        ("repeats",),
        "(4,)",
    ),
    Fires(
        "cosine-labels-(N,1)",
        "cosine-embedding",
        [_scores(4, 8), _scores(4, 8), _signs(4, 1)],
        "shape-mismatch",
        ("y (4, 1)",),
        "y.squeeze(1)",
    ),
    Fires(
        "cosine-label-batch",
        "cosine-embedding",
        [_scores(4, 8), _scores(4, 8), _signs(3)],
        "batch-size-mismatch",
        ("N=4", "N=3"),
        "same batch",
    ),
    Fires(
        "cosine-feature-dims",
        "cosine-embedding",
        [_scores(4, 8), _scores(4, 6), _signs(4)],
        "shape-mismatch",
        ("(4, 8)", "(4, 6)"),
        "x2",
    ),
    Fires(
        "cosine-one-label",
        "cosine-embedding",
        [_scores(4, 8), _scores(4, 8), _signs(1)],
        "silent-broadcast",
        ("one label", "4 pairs"),
        "4 values",
    ),
    Fires(
        "triplet-positive-one-row",
        "triplet-margin",
        [_scores(4, 8), _scores(1, 8), _scores(4, 8)],
        "silent-broadcast",
        ("positive holds one sample", "all 4 samples"),
        "(4, 8)",
    ),
    Fires(
        "triplet-ndim",
        "triplet-margin",
        [_scores(4, 8), _scores(8), _scores(4, 8)],
        "shape-mismatch",
        ("same number of dimensions",),
        "same number of dimensions",
    ),
    Fires(
        "triplet-distance-batch",
        "triplet-margin-distance",
        [_scores(4, 8), _scores(5, 8), _scores(4, 8)],
        "batch-size-mismatch",
        ("N=4", "N=5"),
        "same batch",
    ),
    Fires(
        "gaussian-var-per-feature-only",
        "gaussian-nll",
        [_scores(4, 3), _scores(4, 3), np.ones(3, dtype=np.float32)],
        "batch-size-mismatch",
        ("N=4", "N=3"),
        "same batch",
    ),
    Fires(
        "gaussian-var-(N,1)-for-(N,)",
        "gaussian-nll",
        [_scores(4), _scores(4), np.ones((4, 1), dtype=np.float32)],
        "shape-mismatch",
        ("var is of incorrect size", "(4, 1)"),
        "var.squeeze(1)",
    ),
    Fires(
        "gaussian-target-(N,1)",
        "gaussian-nll",
        [_scores(4), _scores(4, 1), np.ones(4, dtype=np.float32)],
        "silent-broadcast",
        ("(4, 4)",),
        "target.squeeze(1)",
    ),
    # a (N, 1) head against a 1-D target from the data loader: an (N, N) grid
    Fires(
        "gaussian-input-(N,1)-target-(N,)",
        "gaussian-nll",
        [_scores(4, 1), _scores(4), np.ones((4, 1), dtype=np.float32)],
        "silent-broadcast",
        ("(4, 4)",),
        "squeeze",
    ),
    # one target row for every sample is not torch's per-sample broadcasting
    Fires(
        "gaussian-target-(1,D)",
        "gaussian-nll",
        [_scores(4, 3), _scores(1, 3), np.ones((4, 3), dtype=np.float32)],
        "silent-broadcast",
        ("(1, 3)",),
        "one row per sample",
    ),
    # a batch-first RNN output given to ctc
    Fires(
        "ctc-batch-first",
        "ctc",
        [
            _log_probs(10, 3, 5).transpose(1, 0, 2),
            RNG.integers(1, 5, size=(3, 4)),
            np.array([10, 10, 10]),
            np.array([4, 3, 2]),
        ],
        "batch-size-mismatch",
        ("N=10", "holds 3 lengths"),
        "log_probs.transpose(0, 1)",
    ),
    Fires(
        "ctc-concatenated-short",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=8),
            np.array([10, 10, 10]),
            np.array([4, 3, 2]),
        ],
        "shape-mismatch",
        ("hold 8 labels", "sum to 9"),
        "concatenate",
    ),
    Fires(
        "ctc-targets-narrow",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=(3, 3)),
            np.array([10, 10, 10]),
            np.array([4, 3, 2]),
        ],
        "shape-mismatch",
        ("S=3", "up to 4"),
        "pad targets",
    ),
    Fires(
        "ctc-input-length-past-T",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=(3, 4)),
            np.array([12, 10, 10]),
            np.array([4, 3, 2]),
        ],
        "shape-mismatch",
        ("up to 12", "T=10"),
        "at most 10",
    ),
    Fires(
        "ctc-target-lengths-count",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=(3, 4)),
            np.array([10, 10, 10]),
            np.array([4, 3]),
        ],
        "batch-size-mismatch",
        ("N=3", "holds 2 lengths"),
        "same batch",
    ),
    Fires(
        "empty-prediction",
        "mse",
        [np.zeros(0, dtype=np.float32), _scores(4)],
        "empty-input",
        ("zero elements",),
        "empty batch",
    ),
]


@pytest.mark.parametrize("case", FIRES, ids=[c.id for c in FIRES])
def test_shape_mistake_fires_with_numbers_and_fix(case: Fires) -> None:
    report = _evaluate(case.loss, case.arrays, case.sources, **case.options)
    found = [f for f in report.findings if f.name == case.name]
    assert found, [(f.name, f.message) for f in report.findings]
    first = found[0]
    assert first.severity is Severity.ERROR
    for quote in case.quotes:
        assert quote in first.message, first.message
    assert case.fix in first.fix, first.fix
    # exactly one shape finding per mistake (no pile-up of restatements)
    assert len(_shape_findings(report)) == 1


@pytest.mark.parametrize("case", [c for c in FIRES if c.name != "empty-input"], ids=lambda c: c.id)
def test_blocking_exactly_when_torch_cannot_compute(case: Fires) -> None:
    report = _evaluate(case.loss, case.arrays, case.sources, **case.options)
    blocking = any(f.blocking for f in _shape_findings(report))
    assert blocking == torch_raises(case.loss, case.arrays, **case.options)
    # a shape error makes the value null on every path (SPEC), silent broadcasts included
    assert report.value is None


@dataclass(frozen=True)
class Clean:
    id: str
    loss: str
    arrays: list[Any]
    options: dict[str, Any] = field(default_factory=dict)


NEAR_MISSES = [
    Clean("mse-same", "mse", [_scores(4, 1), _scores(4, 1)]),
    Clean("bce-logits-same-(N,C)", "bce-logits", [_scores(4, 3), _binary(4, 3)]),
    Clean("ce-(N,C)-(N,)", "cross-entropy", [_scores(4, 3), _labels(3, 4)]),
    Clean("ce-unbatched-(C,)-()", "cross-entropy", [_scores(3), np.array(1)]),
    Clean("ce-probabilities", "cross-entropy", [_scores(4, 3), np.full((4, 3), 1 / 3)]),
    # real segmentation: (N, C, H, W) with (N, H, W); C equal to W must not confuse it
    Clean("ce-segmentation", "cross-entropy", [_scores(2, 4, 6, 6), _labels(4, 2, 6, 6)]),
    Clean("ce-segmentation-C==H==W", "cross-entropy", [_scores(2, 4, 4, 4), _labels(4, 2, 4, 4)]),
    Clean("ce-sequence-(N,C,L)", "cross-entropy", [_scores(2, 5, 7), _labels(5, 2, 7)]),
    Clean("nll", "nll", [_scores(4, 3), _labels(3, 4)]),
    Clean("multi-margin", "multi-margin", [_scores(4, 3), _labels(3, 4)]),
    Clean("multilabel-margin", "multilabel-margin", [_scores(4, 3), np.array([[0, 2, -1]] * 4)]),
    Clean("margin-ranking", "margin-ranking", [_scores(5), _scores(5), _signs(5)]),
    Clean("cosine", "cosine-embedding", [_scores(5, 8), _scores(5, 8), _signs(5)]),
    Clean("cosine-unbatched", "cosine-embedding", [_scores(8), _scores(8), np.array(1.0)]),
    Clean("triplet", "triplet-margin", [_scores(5, 8), _scores(5, 8), _scores(5, 8)]),
    # gaussian-nll's documented variance shapes
    Clean("gaussian-var-same", "gaussian-nll", [_scores(4, 3), _scores(4, 3), np.ones((4, 3))]),
    Clean("gaussian-var-(N,)", "gaussian-nll", [_scores(4, 3), _scores(4, 3), np.ones(4)]),
    Clean("gaussian-var-(N,1)", "gaussian-nll", [_scores(4, 3), _scores(4, 3), np.ones((4, 1))]),
    Clean("gaussian-var-(1,D)", "gaussian-nll", [_scores(4, 3), _scores(4, 3), np.ones((1, 3))]),
    Clean("gaussian-(N,1)-var-(N,)", "gaussian-nll", [_scores(4, 1), _scores(4, 1), np.ones(4)]),
    Clean("gaussian-one-var", "gaussian-nll", [_scores(4), _scores(4), np.ones(1)]),
    # and its documented target shape: like the input with one (non-batch) dimension of 1
    Clean(
        "gaussian-target-(N,1)-for-(N,K)",
        "gaussian-nll",
        [_scores(4, 3), _scores(4, 1), np.ones((4, 3))],
    ),
    Clean(
        "gaussian-target-(N,1,H,W)",
        "gaussian-nll",
        [_scores(2, 3, 4, 4), _scores(2, 1, 4, 4), np.ones((2, 1, 4, 4))],
    ),
    Clean(
        "ctc-padded",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=(3, 4)),
            np.array([10, 9, 8]),
            np.array([4, 3, 2]),
        ],
    ),
    Clean(
        "ctc-concatenated",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=9),
            np.array([10, 10, 10]),
            np.array([4, 3, 2]),
        ],
    ),
    Clean(
        "ctc-lengths-(N,1)",
        "ctc",
        [
            _log_probs(10, 3, 5),
            RNG.integers(1, 5, size=(3, 4)),
            np.array([[10], [10], [10]]),
            np.array([4, 3, 2]),
        ],
    ),
]


@pytest.mark.parametrize("case", NEAR_MISSES, ids=[c.id for c in NEAR_MISSES])
def test_legitimate_shapes_raise_nothing(case: Clean) -> None:
    report = _evaluate(case.loss, case.arrays, **case.options)
    assert _shape_findings(report) == []
    assert report.value is not None or report.options.get("reduction") == "none"


def test_every_layout_has_a_case_that_fires_and_a_near_miss() -> None:
    # "we shouldn't forget any layout": each family of the catalogue is exercised both ways
    def layouts(cases: list[Any]) -> set[Layout]:
        return {spec.layout for c in cases if (spec := losses.get(c.loss)) is not None}

    assert layouts(FIRES) == set(Layout)
    assert layouts(NEAR_MISSES) == set(Layout)


def test_every_loss_has_an_empty_input_finding() -> None:
    for spec in losses.LOSSES:
        arrays = {
            a.name: LoadedArray(np.zeros((0,), dtype=np.float32), f"{a.name}.npy")
            for a in spec.arguments
        }
        context = CheckContext(
            spec=spec, inputs=arrays, arrays={k: v.values for k, v in arrays.items()}, options={}
        )
        assert list(check_shapes(context)) == []  # empty-input speaks alone
        report = evaluate(spec, arrays, resolve(spec, {}))
        empty = [f for f in report.findings if f.name == "empty-input"]
        assert len(empty) == len(spec.arguments) and all(f.blocking for f in empty)
        assert report.value is None


_DIMS = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)


@settings(max_examples=60, deadline=None)
@given(
    loss=st.sampled_from([spec.name for spec in losses.LOSSES]),
    shapes=st.lists(_DIMS, min_size=4, max_size=4),
    integers=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_checks_never_crash_on_any_shapes(
    loss: str, shapes: list[tuple[int, ...]], integers: bool, seed: int
) -> None:
    # every check of the registry that reads the inputs, on arbitrary shapes and values:
    # findings only
    from losscli.checks import REGISTRY, Scope
    from losscli.findings import CATALOGUE

    spec = losses.get(loss)
    assert spec is not None
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(-2, 5, size=shape) if integers or i > 0 else rng.normal(size=shape)
        for i, shape in enumerate(shapes[: len(spec.arguments)])
    ]
    inputs = in_memory(loss, arrays)
    converted = convert(spec, inputs)
    context = CheckContext(
        spec=spec,
        inputs=inputs,
        arrays=converted.arrays,
        options=resolve(spec, {}),
        soft_target=converted.soft_target,
    )
    for check in REGISTRY:
        if check.scope is Scope.RESULT or not check.applies(spec):
            continue
        for found in check.function(context):
            assert found.name in CATALOGUE
            assert found.message and found.fix


def test_pytorch_fixes_line_the_shapes_up() -> None:
    # the code named in each fix, applied with torch, gives shapes torch pairs sample by sample
    import torch
    import torch.nn.functional as F

    def fix_of(loss: str, arrays: list[Any]) -> str:
        return _shape_findings(_evaluate(loss, arrays))[0].fix

    prediction, target = _scores(4, 1), _scores(4)
    fix = fix_of("mse", [prediction, target])
    assert "input.squeeze(1)" in fix
    squeezed = torch.tensor(prediction).squeeze(1)
    assert squeezed.shape == torch.Size([4])
    assert torch.allclose(
        F.mse_loss(squeezed, torch.tensor(target)),
        ((torch.tensor(prediction[:, 0]) - torch.tensor(target)) ** 2).mean(),
    )

    flat_logits, masks = _scores(2 * 4 * 4, 3), _labels(3, 2, 4, 4)
    assert "target.view(-1)" in fix_of("cross-entropy", [flat_logits, masks])
    F.cross_entropy(torch.tensor(flat_logits), torch.tensor(masks).view(-1))  # runs

    batch_first = _log_probs(10, 3, 5).transpose(1, 0, 2)
    arrays = [
        batch_first,
        RNG.integers(1, 5, size=(3, 4)),
        np.array([10, 10, 10]),
        np.array([4, 3, 2]),
    ]
    assert "log_probs.transpose(0, 1)" in fix_of("ctc", arrays)
    F.ctc_loss(
        torch.tensor(batch_first).transpose(0, 1),
        *(torch.tensor(a) for a in arrays[1:]),
    )  # runs
