"""class-index-out-of-range quotes the error torch itself raises on the user's targets.

torch names the first offending class index it meets (in memory order, ignore_index
skipped): every case here runs torch on the same tensors and compares its message with the
one the finding quotes, over random targets with indices above C, negative ones and
ignore_index present.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from losscli import losses, options, pipeline
from losscli.cli import app
from losscli.findings import Finding
from losscli.loaders import LoadedArray


def _finding(loss: str, scores: np.ndarray, target: np.ndarray, **given: Any) -> Finding:
    spec = losses.get(loss)
    assert spec is not None
    inputs = {
        spec.arguments[0].name: LoadedArray(scores, "scores.npy"),
        spec.arguments[1].name: LoadedArray(target, "target.npy"),
    }
    report = pipeline.evaluate(spec, inputs, options.resolve(spec, dict(given)))
    (found,) = [f for f in report.findings if f.name == "class-index-out-of-range"]
    return found


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread: with reduction='none' its kernel may split the batch over threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _torch_error(function: Any, scores: np.ndarray, target: np.ndarray, **kwargs: Any) -> str:
    with _one_thread(), pytest.raises((IndexError, RuntimeError)) as raised:
        function(torch.from_numpy(scores), torch.from_numpy(target), **kwargs)
    return f"{raised.type.__name__}: {raised.value}"


def _bad_targets(
    rng: np.random.Generator, shape: tuple[int, ...], classes: int, ignore: int | None
) -> np.ndarray:
    """Targets in 0..C-1 with a few above C-1, a few negative, and ignore_index scattered in."""
    target = rng.integers(0, classes, size=shape)
    flat = target.reshape(-1)
    spots = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
    for spot in spots:
        kind = rng.integers(0, 3)
        if kind == 0:
            flat[spot] = rng.integers(classes, classes + 7)
        elif kind == 1:
            flat[spot] = -int(rng.integers(1, 5))
        elif ignore is not None:
            flat[spot] = ignore
    if not (
        ((target < 0) | (target >= classes)) & (target != (ignore if ignore is not None else -999))
    ).any():
        flat[spots[0]] = classes + 1
    return target


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_quotes_the_target_torch_names(seed: int, reduction: str) -> None:
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 6))
    spatial = seed % 3 == 0  # (N, C, H, W) scores and (N, H, W) masks
    shape = (int(rng.integers(3, 9)), 3, 4) if spatial else (int(rng.integers(3, 40)),)
    scores = rng.normal(size=(shape[0], classes, *shape[1:])).astype(np.float32)
    ignore = [-100, 255, 0, -1][seed % 4]
    target = _bad_targets(rng, shape, classes, ignore)
    given: dict[str, Any] = {"reduction": reduction, "ignore_index": ignore}
    if seed % 2:
        given["label_smoothing"] = 0.1
    found = _finding("cross-entropy", scores, target, **given)
    expected = _torch_error(F.cross_entropy, scores, target, **given)
    assert found.evidence["torch_error"] == expected
    assert f'torch raises "{expected}"' in found.message


@pytest.mark.parametrize("seed", range(6))
def test_nll_quotes_the_target_torch_names(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    classes = 4
    scores = np.log(rng.dirichlet(np.ones(classes), size=20)).astype(np.float32)
    target = _bad_targets(rng, (20,), classes, -100)
    found = _finding("nll", scores, target)
    assert found.evidence["torch_error"] == _torch_error(F.nll_loss, scores, target)


def test_the_quoted_index_is_the_offending_one_not_an_example() -> None:
    # the case: labels reach 3 for C=3; torch names 3 (the docs once said "Target 5")
    scores = np.zeros((8, 3), dtype=np.float32)
    target = np.array([0, 1, 2, 3, 0, 1, 2, 0])
    found = _finding("cross-entropy", scores, target)
    assert found.evidence["torch_error"] == "IndexError: Target 3 is out of bounds."
    assert "Target 5" not in found.message


def test_margin_losses_quote_their_own_errors() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(4, 3)).astype(np.float32)
    margin_target = np.array([0, 5, 1, -2])
    found = _finding("multi-margin", scores, margin_target)
    assert found.evidence["torch_error"] == _torch_error(F.multi_margin_loss, scores, margin_target)
    multilabel_target = np.array([[0, 7, -1], [1, -1, -1], [2, 0, -1], [0, -1, -1]])
    found = _finding("multilabel-margin", scores, multilabel_target)
    assert found.evidence["torch_error"] == _torch_error(
        F.multilabel_margin_loss, scores, multilabel_target
    )


def test_debug_shows_torchs_error_for_the_real_index(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.zeros((8, 3), dtype=np.float32))
    np.save(tmp_path / "t.npy", np.array([0, 1, 2, 0, 1, -3, 2, 4]))
    result = CliRunner().invoke(
        app,
        ["debug", "-l", "cross-entropy", str(tmp_path / "p.npy"), str(tmp_path / "t.npy")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    # -3 at position 5 comes before 4 at position 7: torch names -3
    assert 'torch raises "IndexError: Target -3 is out of bounds."' in result.stdout
    assert "Target 5" not in result.stdout
    assert "class-index-out-of-range" in result.stderr
