"""Streaming: results forced through small chunks agree with the whole-tensor results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losscli import accumulator, chunks
from losscli.cli import main
from losscli.errors import UsageError

# a budget this small forces streaming with chunks of a few dozen samples
TINY = "2KB"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    with pytest.raises(SystemExit) as done:
        main(["compute", *argv, "--format", "json"])
    captured = capsys.readouterr()
    record = json.loads(captured.out) if captured.out.strip() else {}
    return int(done.value.code or 0), record, captured.err


def close(a: float | None, b: float | None, rel: float) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


def save(tmp_path: Path, name: str, values: np.ndarray) -> str:
    path = tmp_path / name
    np.save(path, values)
    return str(path)


def save_csv(tmp_path: Path, name: str, values: np.ndarray, header: str | None = None) -> str:
    path = tmp_path / name
    fmt = "%d" if values.dtype.kind in "iu" else "%.9g"
    np.savetxt(path, values, delimiter=",", fmt=fmt, header=header or "", comments="")
    return str(path)


def _cases(tmp_path: Path) -> dict[str, list[str]]:
    rng = np.random.default_rng(0)
    n = 700
    pred = rng.standard_normal(n).astype(np.float32)
    true = rng.standard_normal(n).astype(np.float32)
    wide = rng.standard_normal((n, 3)).astype(np.float32)
    wide_true = rng.standard_normal((n, 3)).astype(np.float32)
    logits = rng.standard_normal((n, 4)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    labels[::7] = -100  # ignored targets
    binary = (rng.random((n, 5)) < 0.3).astype(np.float32)
    log_probs = np.log(rng.dirichlet(np.ones(4), n)).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), n).astype(np.float32)
    table = np.column_stack([pred, true, rng.standard_normal(n), rng.standard_normal(n)])
    table_csv = save_csv(tmp_path, "table.csv", table, header="p,t,a,b")
    return {
        "mse-1d": ["mse", save(tmp_path, "p.npy", pred), save(tmp_path, "t.npy", true)],
        "mse-2d-sum": [
            "mse",
            save(tmp_path, "w.npy", wide),
            save(tmp_path, "wt.npy", wide_true),
            "--reduction",
            "sum",
        ],
        "l1-none": ["l1", str(tmp_path / "p.npy"), str(tmp_path / "t.npy"), "--reduction", "none"],
        "huber-csv-columns": ["huber", f"{table_csv}:p", f"{table_csv}:t", "--delta", "0.5"],
        "ce-weight-ignore-csv": [
            "cross-entropy",
            save_csv(tmp_path, "logits.csv", logits),
            save_csv(tmp_path, "labels.csv", labels),
            "--weight",
            "[1,2,3,0.5]",
        ],
        "nll-npy": [
            "nll",
            save(tmp_path, "logp.npy", log_probs),
            save(tmp_path, "y.npy", labels),
        ],
        "bce-logits-2d": [
            "bce-logits",
            save(tmp_path, "bl.npy", rng.standard_normal((n, 5)).astype(np.float32)),
            save(tmp_path, "bt.npy", binary),
        ],
        "kl-batchmean": [
            "kl-div",
            str(tmp_path / "logp.npy"),
            save(tmp_path, "probs.npy", probs),
            "--reduction",
            "batchmean",
        ],
        "dice": ["dice", str(tmp_path / "bl.npy"), str(tmp_path / "bt.npy")],
        "float64": [
            "mse",
            str(tmp_path / "p.npy"),
            str(tmp_path / "t.npy"),
            "--dtype",
            "float64",
        ],
    }


CASES = [
    "mse-1d",
    "mse-2d-sum",
    "l1-none",
    "huber-csv-columns",
    "ce-weight-ignore-csv",
    "nll-npy",
    "bce-logits-2d",
    "kl-batchmean",
    "dice",
    "float64",
]

REDUCED_INSIDE_TORCH = {"dice"}


@pytest.mark.parametrize("case", CASES)
def test_streamed_matches_whole_tensor(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _cases(tmp_path)[case]
    out = tmp_path / "per_sample.npy"
    code_whole, whole, _ = run(capsys, *argv, "--all-values")
    code_streamed, streamed, err = run(
        capsys, *argv, "--memory-budget", TINY, "--per-sample-out", str(out)
    )
    assert (code_whole, code_streamed) == (0, 0), err
    assert whole["streamed"] is False and streamed["streamed"] is True
    assert streamed["streaming"]["chunks"] > 5  # really went through small chunks
    # the SPEC's promise: a streamed value agrees with torch's whole-tensor value to 1e-6
    assert close(streamed["value"], whole["value"], 1e-6)
    whole_denominator = whole["per_sample_rule"]["denominator"]
    if whole_denominator is None:  # reduction none: there is no value to recover
        assert streamed["per_sample_rule"]["denominator"] is None
    else:
        assert streamed["per_sample_rule"]["denominator"] == pytest.approx(
            whole_denominator, rel=1e-12
        )
    ours, theirs = streamed["per_sample_summary"], whole["per_sample_summary"]
    assert ours["n"] == theirs["n"] and ours["argmax"] == theirs["argmax"]
    for key in ("min", "max"):
        assert ours[key] == theirs[key]
    # float32 losses summed in blocks of 1024, the blocks in float64
    assert close(ours["mean"], theirs["mean"], 1e-6)
    # 700 samples fit in the sketch: the quantiles are exact
    for key in ("p50", "p90", "p99"):
        assert close(ours[key], theirs[key], 1e-12)
    assert streamed["gradient"].keys() == whole["gradient"].keys()
    for name, gradient in whole["gradient"].items():
        mine = streamed["gradient"][name]
        assert mine["shape"] == gradient["shape"]
        # the gradient of the chunk sums, scaled by 1/denominator in float64 at the end
        assert close(mine["norm"], gradient["norm"], 1e-5)
        assert close(mine["max_abs"], gradient["max_abs"], 1e-6)
        assert mine["zero_fraction"] == gradient["zero_fraction"]
        assert mine["non_finite"] == gradient["non_finite"] == 0
    written = np.load(out)
    assert written.dtype == np.float64
    expected = np.array(whole["per_sample"], dtype=np.float64)
    if case in REDUCED_INSIDE_TORCH:
        # torch reduces inside a sample in float32, and its kernel's summation order depends
        # on the batch size: one ulp of float32 apart
        np.testing.assert_allclose(written, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(written, expected)


def test_streamed_value_is_torchs_to_1e6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    pred = (rng.standard_normal(20_000) * 3 + 1).astype(np.float32)
    true = rng.standard_normal(20_000).astype(np.float32)
    a, b = save(tmp_path, "a.npy", pred), save(tmp_path, "b.npy", true)
    _, whole, _ = run(capsys, "mse", a, b)
    _, streamed, _ = run(capsys, "mse", a, b, "--memory-budget", "16KB")
    expected = F.mse_loss(torch.from_numpy(pred), torch.from_numpy(true)).item()
    assert whole["value"] == expected  # below the budget: torch's value, bit for bit
    assert streamed["streamed"] and close(streamed["value"], expected, 1e-6)


def test_per_sample_out_csv_reads_back_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _cases(tmp_path)["ce-weight-ignore-csv"]
    out = tmp_path / "losses.csv"
    _, whole, _ = run(capsys, *argv, "--all-values")
    code, _, err = run(capsys, *argv, "--memory-budget", TINY, "--per-sample-out", str(out))
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0] == "per_sample"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=np.float64), whole["per_sample"])


def test_per_sample_out_without_streaming(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _cases(tmp_path)["mse-2d-sum"]
    out = tmp_path / "losses.npy"
    _, whole, _ = run(capsys, *argv, "--all-values", "--per-sample-out", str(out))
    assert whole["streamed"] is False
    np.testing.assert_array_equal(np.load(out), whole["per_sample"])


def test_per_sample_out_wrong_suffix_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _cases(tmp_path)["mse-1d"]
    code, record, err = run(capsys, *argv, "--per-sample-out", str(tmp_path / "x.json"))
    assert code == 2 and record == {}
    assert "--per-sample-out" in err and ".npy or a .csv" in err


def test_non_streamable_loss_over_budget_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_probs = np.log(np.full((50, 4, 5), 0.2, dtype=np.float32))
    argv = [
        "ctc",
        save(tmp_path, "lp.npy", log_probs),
        save(tmp_path, "tg.npy", np.ones((4, 3), dtype=np.int64)),
        save(tmp_path, "il.npy", np.full(4, 50)),
        save(tmp_path, "tl.npy", np.full(4, 3)),
    ]
    assert run(capsys, *argv)[0] == 0  # within the default budget: computed whole
    code, record, err = run(capsys, *argv, "--memory-budget", TINY)
    assert code == 2 and record == {}
    assert "ctc does not decompose over samples, so it cannot be streamed" in err
    assert "--memory-budget" in err and err.count("\n") == 1


def test_unchunkable_input_over_budget_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a large .npz cannot be read in chunks; small inputs (inline arrays, one-row files) are
    # read whole and given to every chunk
    pred = save(tmp_path, "p.npy", np.zeros(300_000, dtype=np.float32))
    np.savez(tmp_path / "t.npz", t=np.zeros(300_000, dtype=np.float32))
    code, _, err = run(capsys, "mse", pred, str(tmp_path / "t.npz"), "--memory-budget", "1MB")
    assert code == 2 and "cannot be read in chunks" in err and "save it as .npy" in err
    small = json.dumps([0.5] * 600)
    pred = save(tmp_path, "p600.npy", np.zeros(600, dtype=np.float32))
    code, streamed, err = run(capsys, "mse", pred, small, "--memory-budget", "1KB")
    _, whole, _ = run(capsys, "mse", pred, small)
    assert code == 0, err
    assert streamed["streamed"] and streamed["value"] == pytest.approx(whole["value"], rel=1e-6)


def test_non_finite_input_is_counted_over_every_chunk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = np.linspace(-1, 1, 900).astype(np.float32)
    pred[[5, 610, 611]] = [np.nan, np.inf, np.nan]
    argv = [
        "mse",
        save(tmp_path, "p.npy", pred),
        save(tmp_path, "t.npy", np.zeros(900, np.float32)),
    ]
    _, whole, _ = run(capsys, *argv)
    code, streamed, _ = run(capsys, *argv, "--memory-budget", TINY)
    assert code == 1
    found = {f["name"]: f for f in streamed["findings"]}
    expected = {f["name"]: f for f in whole["findings"]}
    assert found.keys() == expected.keys() >= {"non-finite-input", "non-finite-loss"}
    assert found["non-finite-input"]["message"] == expected["non-finite-input"]["message"]
    assert "3 of 900 per-sample losses" in found["non-finite-loss"]["message"]
    assert streamed["value"] is None and streamed["per_sample_summary"]["n"] == 900


def test_finite_inputs_give_no_non_finite_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # near miss: huge but finite float64 values overflow a float32 sum, not the input check
    pred = np.linspace(1, 2, 900) * 1e300
    argv = ["l1", save(tmp_path, "p.npy", pred), save(tmp_path, "t.npy", pred)]
    code, streamed, _ = run(capsys, *argv, "--memory-budget", TINY, "--dtype", "float64")
    assert code == 0 and streamed["value"] == 0.0
    assert not [f for f in streamed["findings"] if f["name"].startswith("non-finite")]


def test_csv_inputs_of_different_lengths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = save_csv(tmp_path, "a.csv", np.arange(500, dtype=np.float64))
    b = save_csv(tmp_path, "b.csv", np.arange(480, dtype=np.float64))
    code, record, _ = run(capsys, "mse", a, b, "--memory-budget", TINY)
    assert code == 1 and record["value"] is None
    # the lengths are known only at the ends of the files: the shapes are judged again there
    assert record["inputs"]["input"]["shape"] == [500]
    assert record["inputs"]["target"]["shape"] == [480]
    _, whole, _ = run(capsys, "mse", a, b)
    assert [f["message"] for f in record["findings"]] == [f["message"] for f in whole["findings"]]
    mismatch = [f for f in record["findings"] if f["name"] == "shape-mismatch"]
    assert (
        len(mismatch) == 1 and "500" in mismatch[0]["message"] and "480" in mismatch[0]["message"]
    )


def test_npy_shape_findings_use_the_full_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = save(tmp_path, "a.npy", np.zeros((600, 1), np.float32))
    b = save(tmp_path, "b.npy", np.zeros(600, np.float32))
    _, whole, _ = run(capsys, "mse", a, b)
    code, streamed, _ = run(capsys, "mse", a, b, "--memory-budget", TINY)
    # (600, 1) against (600,) broadcasts: no value on either path (SPEC), the same finding
    assert code == 1 and streamed["value"] is None and streamed["per_sample_summary"] is None
    assert whole["value"] is None
    silent = [f["message"] for f in whole["findings"] if f["name"] == "silent-broadcast"]
    assert silent
    assert [f["message"] for f in streamed["findings"]] == [f["message"] for f in whole["findings"]]


def test_table_view_shows_the_worst_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _cases(tmp_path)["mse-1d"]
    with pytest.raises(SystemExit):
        main(["compute", *argv, "--memory-budget", TINY, "--no-color", "--top", "3"])
    text = capsys.readouterr().out
    pred, true = np.load(argv[1]), np.load(argv[2])
    worst = int(np.argmax((pred - true) ** 2))
    assert "streamed" in text and "worst 3 of" in text and f" {worst} " in text


def test_quantile_sample_stays_bounded_and_close() -> None:
    losses = np.random.default_rng(3).exponential(size=200_000)
    sample = accumulator.QuantileSample(expected=None, capacity=4096)
    for start in range(0, losses.size, 3000):
        sample.add(losses[start : start + 3000])
        assert sample.size <= 2 * 4096
    assert not sample.exact
    estimates = sample.quantiles([0.5, 0.9, 0.99])
    assert estimates is not None
    for level, estimate in zip((0.5, 0.9, 0.99), estimates, strict=True):
        rank = float(np.mean(losses <= estimate))
        # documented error: the rank is within 3·sqrt(p(1-p)/m) (m ≥ 4096 kept); 4σ here
        assert abs(rank - level) <= 4 * math.sqrt(level * (1 - level) / 4096)


def test_quantile_sample_is_exact_when_everything_fits() -> None:
    losses = np.random.default_rng(4).random(1000)
    sample = accumulator.QuantileSample(expected=1000, capacity=4096)
    sample.add(losses[:600])
    sample.add(losses[600:])
    assert sample.exact
    assert sample.quantiles([0.5, 0.99]) == list(np.quantile(losses, [0.5, 0.99]))


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("300MB", 300 << 20),
        ("2GB", 2 << 30),
        ("64kib", 64 << 10),
        ("1000", 1000),
        ("1.5M", 3 << 19),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert chunks.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-5MB", "0", "12 parsecs"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        chunks.parse_size(text)


def test_bad_budget_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _cases(tmp_path)["mse-1d"]
    code, _, err = run(capsys, *argv, "--memory-budget", "lots")
    assert code == 2 and "is not a size" in err and err.count("\n") == 1


def test_columns_of_one_csv_keep_their_own_dtypes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # logits and integer labels in one file: read once, the label column stays int64
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((600, 3))
    labels = rng.integers(0, 3, 600)
    path = tmp_path / "both.csv"
    with path.open("w") as stream:
        stream.write("x0,x1,x2,label\n")
        for row, label in zip(logits, labels, strict=True):
            stream.write(",".join(f"{v:.9g}" for v in row) + f",{label}\n")
    argv = ["cross-entropy", f"{path}:x0,x1,x2", f"{path}:label"]
    _, whole, _ = run(capsys, *argv)
    code, streamed, err = run(capsys, *argv, "--memory-budget", TINY)
    assert code == 0, err
    assert streamed["inputs"] == whole["inputs"]  # shapes and dtypes as the loaders read them
    assert streamed["inputs"]["target"]["dtype"] == "int64"
    assert close(streamed["value"], whole["value"], 1e-6)
    assert [f["name"] for f in streamed["findings"]] == [f["name"] for f in whole["findings"]]


def test_streamed_worst_samples_match_the_whole_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(9)
    pred = rng.standard_normal(5000).astype(np.float32)
    pred[[10, 4000, 4500]] = 9.0  # ties among the worst: the later sample is listed first
    argv = [
        "l1",
        save(tmp_path, "p.npy", pred),
        save(tmp_path, "t.npy", np.zeros(5000, np.float32)),
    ]

    def rows(*extra: str) -> list[str]:
        with pytest.raises(SystemExit):
            main(["compute", *argv, "--no-color", "--top", "6", *extra])
        text = capsys.readouterr().out
        return [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()][:6]

    assert rows("--memory-budget", "16KB") == rows()


def test_npy_and_csv_inputs_stream_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the CSV's length is unknown until its end; the .npy header's 700 is assumed meanwhile
    rng = np.random.default_rng(10)
    pred = rng.standard_normal(700).astype(np.float32)
    true = rng.standard_normal(700)
    argv = ["mse", save(tmp_path, "p.npy", pred), save_csv(tmp_path, "t.csv", true, header="t")]
    _, whole, _ = run(capsys, *argv)
    code, streamed, err = run(capsys, *argv, "--memory-budget", TINY)
    assert code == 0, err
    assert streamed["streaming"]["chunks"] > 5 and streamed["inputs"] == whole["inputs"]
    assert close(streamed["value"], whole["value"], 1e-6)
    shorter = save_csv(tmp_path, "short.csv", true[:650], header="t")
    code, mismatch, _ = run(capsys, argv[0], argv[1], shorter, "--memory-budget", TINY)
    assert code == 1 and mismatch["value"] is None
    assert "shape-mismatch" in [f["name"] for f in mismatch["findings"]]


def _catalogue_inputs(name: str, rng: np.random.Generator, n: int) -> list[np.ndarray] | None:
    """Valid inputs for each streamable loss (None: no case written yet)."""
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.standard_normal((n, 4)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    signs = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    binary = (rng.random((n, 4)) < 0.4).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), n).astype(np.float32)
    cases: dict[str, list[np.ndarray]] = {
        "l1": [x, y],
        "mse": [x, y],
        "huber": [x, y],
        "smooth-l1": [x, y],
        "bce": [1 / (1 + np.exp(-x)), binary],
        "bce-logits": [x, binary],
        "cross-entropy": [x, labels],
        "nll": [np.log(probs), labels],
        "poisson-nll": [x, rng.poisson(2.0, (n, 4)).astype(np.float32)],
        "gaussian-nll": [x, y, rng.random((n, 1)).astype(np.float32) + 0.1],
        "kl-div": [np.log(probs), rng.dirichlet(np.ones(4), n).astype(np.float32)],
        "margin-ranking": [x[:, 0].copy(), y[:, 0].copy(), signs],
        "hinge-embedding": [np.abs(x), np.where(binary > 0, 1.0, -1.0).astype(np.float32)],
        "multilabel-margin": [x, np.where(rng.random((n, 4)) < 0.5, labels[:, None], -1)],
        "soft-margin": [x, np.where(binary > 0, 1.0, -1.0).astype(np.float32)],
        "multilabel-soft-margin": [x, binary],
        "cosine-embedding": [x, y, signs],
        "multi-margin": [x, labels],
        "triplet-margin": [x, y, rng.standard_normal((n, 4)).astype(np.float32)],
        "triplet-margin-distance": [x, y, rng.standard_normal((n, 4)).astype(np.float32)],
        "focal": [x, binary],
        "dice": [x, binary],
    }
    return cases.get(name)


def test_every_streamable_loss_streams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from losscli import losses

    rng = np.random.default_rng(11)
    missing = []
    for spec in losses.LOSSES:
        arrays = _catalogue_inputs(spec.name, rng, 300)
        if not spec.streamable:
            continue
        if arrays is None:
            missing.append(spec.name)
            continue
        files = [save(tmp_path, f"{spec.name}-{i}.npy", a) for i, a in enumerate(arrays)]
        code_whole, whole, _ = run(capsys, spec.name, *files)
        code, streamed, err = run(capsys, spec.name, *files, "--memory-budget", "4KB")
        assert code == code_whole, (spec.name, err)
        assert streamed["streamed"] and streamed["streaming"]["chunks"] > 3, spec.name
        assert close(streamed["value"], whole["value"], 1e-6), spec.name
        mine, theirs = streamed["per_sample_summary"], whole["per_sample_summary"]
        assert mine["n"] == theirs["n"] and mine["argmax"] == theirs["argmax"], spec.name
        for name, gradient in whole["gradient"].items():
            assert close(streamed["gradient"][name]["norm"], gradient["norm"], 1e-5), spec.name
    assert missing == [], f"streamable losses without a streaming case: {missing}"


def test_streamed_json_says_what_the_checks_saw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3000 samples through 2KB chunks: every check saw every sample, and the JSON says so
    rng = np.random.default_rng(3)
    np.save(tmp_path / "p.npy", rng.normal(size=3000).astype(np.float32))
    np.save(tmp_path / "t.npy", rng.normal(size=3000).astype(np.float32))
    code, streamed, err = run(
        capsys,
        "mse",
        str(tmp_path / "p.npy"),
        str(tmp_path / "t.npy"),
        "--memory-budget",
        TINY,
    )
    assert code == 0, err
    assert streamed["streaming"]["chunks"] > 10
    assert streamed["checks"] == {"samples": 3000, "evidence_samples": 3000, "complete": True}
