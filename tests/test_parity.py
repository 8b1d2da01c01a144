"""One evaluation path: the same input, whole or forced through tiny chunks, gets one answer.

A corpus of every loss family, clean and with the mistakes people make (modelled on how they
happen in training code), saved as ``.npy`` and as CSV, plus the text files that streaming
once read differently (a first cell ``NA``, ``TRUE`` cells, a byte-order mark, blank-aligned
``np.savetxt`` output, an integer column that turns float late). Each case runs through
``compute`` (and ``debug``/``compare``) whole and with a memory budget so small that chunks
hold a few samples: same exit code, same shapes, same value (1e-6 relative), same finding
names and severities. With a small evidence capacity the same holds when the checks that
judge distributions see a sample. A reader that drops a row must fail the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from parity import TINY, parity, run

from losscli import evidence

N = 240


# ------------------------------------------------------------------ the corpus


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _corpus() -> dict[str, tuple[str, list[np.ndarray], list[str]]]:
    """name → (loss, arrays in torch's order, extra options), as a trained model's outputs."""
    rng = np.random.default_rng(7)
    f32 = np.float32
    features = rng.standard_normal((N, 5))
    weights = rng.standard_normal((5, 4))
    logits = (features @ weights + 0.3 * rng.standard_normal((N, 4))).astype(f32)
    labels = np.argmax(features @ weights + rng.standard_normal((N, 4)), axis=1)
    truth = features @ rng.standard_normal(5)
    pred = (truth + 0.2 * rng.standard_normal(N)).astype(f32)
    binary = (truth > 0).astype(f32)
    score = (2 * truth + rng.standard_normal(N)).astype(f32)
    multi_hot = (rng.random((N, 4)) < 0.3).astype(f32)
    signs = np.where(rng.random(N) < 0.5, -1.0, 1.0).astype(f32)
    emb = rng.standard_normal((N, 6)).astype(f32)
    counts = rng.poisson(3.0, N).astype(f32)
    late_bad_target = binary.copy()
    late_bad_target[N - 7] = 3.0  # a label bug far from the first chunk
    nan_pred = pred.copy()
    nan_pred[N - 11] = np.nan
    one_based = labels + 1
    one_based[labels.argmax()] = 4  # labels 1..C
    ignored = labels.copy()
    ignored[::9] = -100
    imbalanced = np.where(rng.random(N) < 0.95, 0, labels)
    cases: dict[str, tuple[str, list[np.ndarray], list[str]]] = {
        "mse-clean": ("mse", [pred, truth.astype(f32)], []),
        "mse-column-vs-flat": ("mse", [pred[:, None], truth.astype(f32)], []),
        "mse-nan-late": ("mse", [nan_pred, truth.astype(f32)], []),
        "l1-constant": ("l1", [np.full(N, 0.5, f32), truth.astype(f32)], []),
        "huber-sum": ("huber", [pred, truth.astype(f32)], ["--reduction", "sum", "--delta", "0.5"]),
        "smooth-l1-none": ("smooth-l1", [pred, truth.astype(f32)], ["--reduction", "none"]),
        "bce-clean": ("bce", [1 / (1 + np.exp(-score)), binary], []),
        "bce-on-logits": ("bce", [score, binary], []),
        "bce-logits-clean": ("bce-logits", [score, binary], []),
        "bce-logits-sigmoid-twice": ("bce-logits", [1 / (1 + np.exp(-score)), binary], []),
        "bce-logits-bad-target-late": ("bce-logits", [score, late_bad_target], []),
        "ce-clean": ("cross-entropy", [logits, labels], []),
        "ce-softmax-first": ("cross-entropy", [_softmax(logits).astype(f32), labels], []),
        "ce-one-based": ("cross-entropy", [logits, one_based], []),
        "ce-ignore-weight": (
            "cross-entropy",
            [logits, ignored],
            ["--weight", "[1,2,0.5,1]", "--label-smoothing", "0.1"],
        ),
        "ce-imbalanced": ("cross-entropy", [logits, imbalanced], []),
        "ce-soft-targets": ("cross-entropy", [logits, _softmax(logits * 2).astype(f32)], []),
        "nll-clean": ("nll", [np.log(_softmax(logits)).astype(f32), labels], []),
        "nll-raw-scores": ("nll", [logits, labels], []),
        "poisson-clean": ("poisson-nll", [np.log(counts + 0.5), counts], []),
        "gaussian-clean": ("gaussian-nll", [pred, truth.astype(f32), np.full(N, 0.3, f32)], []),
        "gaussian-zero-var": (
            "gaussian-nll",
            [pred, truth.astype(f32), np.where(np.arange(N) % 50 == 3, 0, 0.3).astype(f32)],
            [],
        ),
        "kl-batchmean": (
            "kl-div",
            [np.log(_softmax(logits)).astype(f32), _softmax(logits * 0.5).astype(f32)],
            ["--reduction", "batchmean"],
        ),
        "kl-probabilities-as-input": (
            "kl-div",
            [_softmax(logits).astype(f32), _softmax(logits * 0.5).astype(f32)],
            ["--reduction", "batchmean"],
        ),
        "margin-ranking-01": ("margin-ranking", [score, pred, binary], []),
        "hinge-clean": ("hinge-embedding", [np.abs(score), signs], []),
        "soft-margin": ("soft-margin", [score, signs], []),
        "multilabel-soft-margin": ("multilabel-soft-margin", [logits, multi_hot], []),
        "cosine": ("cosine-embedding", [emb, emb + 0.1, signs], []),
        "multi-margin": ("multi-margin", [logits, labels], []),
        "multilabel-margin": (
            "multilabel-margin",
            [logits, np.where(multi_hot > 0, np.arange(4), -1).astype(np.int64)],
            [],
        ),
        "triplet": ("triplet-margin", [emb, emb + 0.1, -emb], []),
        "triplet-distance": ("triplet-margin-distance", [emb, emb + 0.1, -emb], []),
        "focal": ("focal", [score, binary], []),
        "dice": ("dice", [logits, multi_hot], []),
        # more mistakes, as they happen in training code
        "ce-float16-logits": ("cross-entropy", [(logits * 30).astype(np.float16), labels], []),
        "mse-float64-vs-float32": ("mse", [pred.astype(np.float64), truth.astype(f32)], []),
        "bce-saturated": (
            "bce",
            [np.where(score > 2, 1.0, 1 / (1 + np.exp(-score))).astype(f32), binary],
            [],
        ),
        "poisson-rates-as-log": ("poisson-nll", [counts + 20, counts], []),
        "ce-integer-one-hot": ("cross-entropy", [logits, np.eye(4, dtype=np.int64)[labels]], []),
        "nll-probabilities": ("nll", [_softmax(logits).astype(f32), labels], []),
        "ce-target-column": ("cross-entropy", [logits, labels[:, None]], []),
        "ce-channels-last": (
            "cross-entropy",
            [rng.standard_normal((N, 3, 5, 4)).astype(f32), rng.integers(0, 4, (N, 3, 5))],
            [],
        ),
        "kl-mean": (
            "kl-div",
            [np.log(_softmax(logits)).astype(f32), _softmax(logits * 0.5).astype(f32)],
            [],
        ),
        "triplet-collapsed": (
            "triplet-margin",
            [np.ones_like(emb), np.ones_like(emb), np.ones_like(emb)],
            [],
        ),
        "cosine-01": ("cosine-embedding", [emb, emb + 0.1, binary], []),
        "gaussian-negative-var": (
            "gaussian-nll",
            [pred, truth.astype(f32), np.where(np.arange(N) == N - 2, -0.1, 0.3).astype(f32)],
            [],
        ),
        "multi-margin-out-of-range": ("multi-margin", [logits, one_based], []),
        "focal-255-mask": ("focal", [score, binary * 255], []),
        "bce-logits-imbalanced": ("bce-logits", [score, (rng.random(N) < 0.04).astype(f32)], []),
    }
    return cases


CORPUS = _corpus()


def _save(tmp_path: Path, name: str, values: np.ndarray, fmt: str) -> str:
    if fmt == "npy":
        path = tmp_path / f"{name}.npy"
        np.save(path, values)
        return str(path)
    path = tmp_path / f"{name}.csv"
    number = "%d" if values.dtype.kind in "iu" else "%.9g"
    np.savetxt(path, values.reshape(len(values), -1), delimiter=",", fmt=number)
    return str(path)


def _argv(tmp_path: Path, case: str, fmt: str) -> list[str]:
    loss, arrays, extra = CORPUS[case]
    files = [_save(tmp_path, f"{case}-{i}", a, fmt) for i, a in enumerate(arrays)]
    return [loss, *files, *extra]


@pytest.mark.parametrize("fmt", ["npy", "csv"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_compute_whole_and_streamed_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, fmt: str
) -> None:
    if fmt == "csv" and CORPUS[case][1][0].ndim > 2:
        pytest.skip("CSV holds tables")
    parity(capsys, ["compute", *_argv(tmp_path, case, fmt)], f"{case} ({fmt})")


@pytest.mark.parametrize(
    "case",
    [
        "ce-softmax-first",
        "bce-logits-bad-target-late",
        "nll-raw-scores",
        "mse-nan-late",
        "ce-imbalanced",
    ],
)
def test_checks_on_a_sample_agree_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """With more samples than the evidence holds, distribution checks see the same sample."""
    monkeypatch.setattr(evidence, "MAX_SAMPLES", 50)
    record = parity(capsys, ["compute", *_argv(tmp_path, case, "npy")], case)
    assert record["checks"]["complete"] is False
    sampled = record["checks"]["sampled"]
    assert "vanishing-gradient" in sampled  # judged on the evidence's gradients
    assert "class-imbalance" not in sampled and "constant-input" not in sampled  # counted
    assert 0 < record["checks"]["evidence_samples"] <= 50


def test_rare_problems_are_counted_over_every_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare class and a few saturated probabilities, beyond what the evidence holds."""
    monkeypatch.setattr(evidence, "MAX_SAMPLES", 40)
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, N)
    labels[[17, N - 3]] = 2  # 2 of 240: far below a tenth of the others
    logits = rng.normal(size=(N, 3)).astype(np.float32)
    files = [_save(tmp_path, "rare-l", logits, "npy"), _save(tmp_path, "rare-y", labels, "npy")]
    record = parity(capsys, ["compute", "cross-entropy", *files], "rare class")
    imbalance = [f for f in record["findings"] if f["name"] == "class-imbalance"]
    assert imbalance and "2: 2" in imbalance[0]["message"]
    probabilities = rng.uniform(0.05, 0.95, N).astype(np.float32)
    probabilities[[7, N - 9]] = [0.0, 1.0]
    targets = 1 - np.round(probabilities)  # both saturated values miss their target
    files = [_save(tmp_path, "q", probabilities, "npy"), _save(tmp_path, "t", targets, "npy")]
    record = parity(capsys, ["compute", "bce", *files], "saturated")
    saturated = [f for f in record["findings"] if f["name"] == "saturated-probabilities"]
    assert saturated and saturated[0]["severity"] == "warning"
    assert "1 values of exactly 0 and 1 of exactly 1" in saturated[0]["message"]


def test_a_late_target_error_is_found_whole_and_streamed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bce-logits target of 3.0 near the end: every chunk is checked, not the first one."""
    record = parity(
        capsys, ["compute", *_argv(tmp_path, "bce-logits-bad-target-late", "npy")], "late"
    )
    found = [f for f in record["findings"] if f["name"] == "target-outside-unit-interval"]
    assert found and str(N - 7) in found[0]["message"]


@pytest.mark.parametrize("case", ["ce-softmax-first", "nll-raw-scores", "mse-column-vs-flat"])
def test_debug_whole_and_streamed_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    argv = _argv(tmp_path, case, "npy")
    parity(capsys, ["debug", *argv[1:], "--loss", argv[0]], f"debug {case}")
    parity(capsys, ["debug", *argv[1:]], f"debug inferred {case}")


def test_compare_whole_and_streamed_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(tmp_path, "mse-clean", "csv")
    parity(capsys, ["compare", *argv[1:], "-l", "mse", "-l", "l1", "-l", "huber"], "compare")


# ------------------------------------------------------------------ text files that streaming once misread

TEXT_FILES: dict[str, tuple[str, str]] = {
    # name → (first column text, second column text); both columns are one input each
    "first-cell-NA": ("NA\n" + "\n".join(f"{i / 10}" for i in range(1, 40)), ""),
    "true-false-cells": ("TRUE,1\nFALSE,0\n" * 20, ""),
    "byte-order-mark": ("\ufeff" + "\n".join(f"{i / 7:.5f}" for i in range(60)), ""),
}


def _text_pair(tmp_path: Path, name: str) -> tuple[list[str], Path]:
    rng = np.random.default_rng(3)
    if name == "blank-aligned":
        table = np.column_stack([rng.standard_normal(80), rng.standard_normal(80)])
        path = tmp_path / "aligned.txt"
        np.savetxt(path, table)  # runs of blanks, negative signs taking a column
        return [f"{path}:0", f"{path}:1"], path
    if name == "int-turns-float":
        path = tmp_path / "late_float.csv"
        values = [str(i % 5) for i in range(3000)] + ["2.5"]
        targets = [f"{rng.standard_normal():.6f}" for _ in values]
        path.write_text("".join(f"{v},{t}\n" for v, t in zip(values, targets, strict=True)))
        return [f"{path}:0", f"{path}:1"], path
    text = TEXT_FILES[name][0]
    path = tmp_path / f"{name}.csv"
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    other = tmp_path / f"{name}-target.npy"
    rows = len([line for line in text.splitlines() if line.strip()])
    np.save(other, rng.standard_normal(rows).astype(np.float32))
    return [str(path), str(other)], path


@pytest.mark.parametrize(
    "name",
    ["first-cell-NA", "true-false-cells", "byte-order-mark", "blank-aligned", "int-turns-float"],
)
def test_text_files_read_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    inputs, _ = _text_pair(tmp_path, name)
    code, _record, err = run(capsys, "compute", "mse", *inputs)
    if code == 2:  # unreadable whole: unreadable streamed, with the same line
        streamed_code, _, streamed_err = run(
            capsys, "compute", "mse", *inputs, "--memory-budget", TINY
        )
        assert (streamed_code, streamed_err) == (code, err)
        return
    parity(capsys, ["compute", "mse", *inputs], name)


# ------------------------------------------------------------------ the comparison can fail


def test_a_reader_that_drops_a_row_fails_parity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from losscli.loaders import npy

    original: Callable[..., Any] = npy.NpyChunks.read
    first_call: set[int] = set()

    def read(self: Any, count: int) -> Any:
        values = original(self, count)
        if values is not None and id(self) not in first_call:
            first_call.add(id(self))
            return values[1:]  # the first sample of every file goes missing
        return values

    monkeypatch.setattr(npy.NpyChunks, "read", read)
    with pytest.raises(AssertionError):
        parity(capsys, ["compute", *_argv(tmp_path, "ce-clean", "npy")], "broken reader")
