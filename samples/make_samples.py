"""Regenerate the sample files used by README.md's tour (deterministic; run from the repo root).

python samples/make_samples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _csv(path: Path, header: list[str], rows: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", header=",".join(header), comments="", fmt=fmt)


def main() -> None:
    rng = np.random.default_rng(7)

    # regression: predictions near the targets, float32
    regression = HERE / "regression"
    regression.mkdir(exist_ok=True)
    true = rng.normal(3.0, 1.0, size=8).astype(np.float32)
    pred = (true + rng.normal(0.0, 0.4, size=8)).astype(np.float32)
    np.save(regression / "true.npy", true)
    np.save(regression / "pred.npy", pred)

    # multi-class: 12 samples, 4 classes, raw logits of a half-trained model, integer labels
    classification = HERE / "classification"
    labels = rng.integers(0, 4, size=12)
    logits = rng.normal(0.0, 1.0, size=(12, 4))
    logits[np.arange(12), labels] += 1.5
    _csv(classification / "logits.csv", ["cat", "dog", "bird", "fish"], logits, "%.4f")
    _csv(classification / "labels.csv", ["label"], labels.reshape(-1, 1), "%d")

    # binary: logits and {0, 1} targets
    binary = HERE / "binary"
    binary.mkdir(exist_ok=True)
    targets = rng.integers(0, 2, size=16).astype(np.float32)
    binary_logits = (rng.normal(0.0, 1.0, size=16) + 2.0 * (targets - 0.5)).astype(np.float32)
    np.save(binary / "logits.npy", binary_logits)
    np.save(binary / "targets.npy", targets)

    # classic mistakes
    mistakes = HERE / "mistakes"
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    _csv(
        mistakes / "softmax_probs.csv", ["cat", "dog", "bird", "fish"], probabilities, "%.6f"
    )  # softmax applied
    mistakes.mkdir(exist_ok=True)
    np.save(mistakes / "pred_column.npy", pred.reshape(-1, 1))  # (N, 1) against (N,)
    distances = np.abs(rng.normal(1.0, 0.5, size=10)).astype(np.float32)
    np.save(mistakes / "distances.npy", distances)
    np.save(
        mistakes / "zero_one_targets.npy", rng.integers(0, 2, size=10).astype(np.float32)
    )  # hinge wants ±1
    _csv(mistakes / "one_based_labels.csv", ["label"], labels.reshape(-1, 1) + 1, "%d")  # 1..C

    # the other input formats, holding the same numbers as above (so the values agree)
    _formats(pred, true, logits, labels)

    # mistakes that only show in the numbers (their own generator, so the files above stay)
    _numbers_mistakes(np.random.default_rng(12))


def _numbers_mistakes(rng: np.random.Generator) -> None:
    mistakes = HERE / "mistakes"
    # scale-mismatch: a model trained on standardized targets (z-scores), scored against the
    # raw targets (mean 150, std 75)
    z = rng.normal(size=64)
    np.save(mistakes / "raw_targets.npy", (150.0 + 75.0 * z).astype(np.float32))
    standardized = 0.9 * z + 0.35 * rng.normal(size=64)
    np.save(mistakes / "standardized_pred.npy", standardized.astype(np.float32))
    # padding-not-ignored: 8 token sequences of 6 to 16 tokens padded with 0 to length 16, and a
    # tagger's (N, C, T) logits over 20 token ids, the true id pushed up
    lengths = rng.integers(6, 17, size=8)
    tokens = rng.integers(1, 20, size=(8, 16))
    tokens[np.arange(16)[None, :] >= lengths[:, None]] = 0
    token_logits = rng.normal(0.0, 1.0, size=(8, 20, 16))
    np.put_along_axis(
        token_logits,
        tokens[:, None, :],
        np.take_along_axis(token_logits, tokens[:, None, :], 1) + 3.0,
        1,
    )
    np.save(mistakes / "padded_tokens.npy", tokens.astype(np.int64))
    np.save(mistakes / "token_logits.npy", token_logits.astype(np.float32))


def _formats(pred: np.ndarray, true: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    formats = HERE / "formats"
    formats.mkdir(exist_ok=True)
    # regression predictions as a one-column CSV (for standard input), targets in an .npz
    _csv(formats / "preds.csv", ["pred"], pred.reshape(-1, 1), "%.9g")
    np.savez(formats / "targets.npz", y=true)
    # the classification logits (as rounded in logits.csv) in a torch checkpoint, labels in Parquet
    rounded = np.round(logits, 4).astype(np.float32)
    torch.save({"logits": torch.from_numpy(rounded)}, formats / "ckpt.pt")
    table = pa.table({"label": pa.array(labels.astype(np.int64))})
    pq.write_table(table, formats / "labels.parquet")
    # an evaluation dump as training code writes one: outputs nested in dicts and lists
    hidden = [torch.zeros(len(labels), 2), torch.ones(len(labels), 2)]
    evaluation = {
        "epoch": 3,
        "outputs": {"logits": torch.from_numpy(rounded), "hidden": hidden},
        "labels": torch.from_numpy(labels.astype(np.int64)),
    }
    torch.save(evaluation, formats / "eval.pt")
    # the same outputs in safetensors (Hugging Face's format: no pickle)
    from safetensors.numpy import save_file

    save_file(
        {"logits": rounded, "labels": labels.astype(np.int64)}, str(formats / "eval.safetensors")
    )
    # numpy's own text: np.savetxt with a header writes '# pred true' over space-separated rows
    np.savetxt(formats / "scores.txt", np.column_stack([pred, true]), header="pred true")


if __name__ == "__main__":
    main()
