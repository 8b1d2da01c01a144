"""Shards: a glob of files is one input, evaluated shard by shard, with the answer of the
concatenated input; shards that do not pair are one line and exit 2.

Every streamable loss of the conformance suite (valid inputs for each loss and its options)
is cut into shards of unequal sizes, one of them a single sample, and compared with the
same samples in one file.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from parity import answer, run
from test_conformance import CASES, Case

from losscli import losses
from losscli.shards import natural_key

# shard sizes: unequal, one of a single sample (the rest of the samples go to the last)
SIZES = (4, 1, 9)


def _flags(options: dict[str, Any]) -> list[str]:
    found = []
    for name, value in options.items():
        flag = losses.flag_for(name)
        if isinstance(value, bool):
            found.append(flag if value else f"--no-{flag.removeprefix('--')}")
        else:
            found += [flag, str(value)]
    return found


def _samples(case: Case) -> dict[str, np.ndarray]:
    """The case's inputs, generated a few times and concatenated: about 20 samples."""
    rng = np.random.default_rng(sum(map(ord, case.id)))
    parts = [case.make(rng) for _ in range(4)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _shardable(case: Case) -> bool:
    spec = case.spec
    arrays = case.make(np.random.default_rng(0))
    prediction = arrays[spec.arguments[0].name]
    per_sample_option = any(
        isinstance(v, str) and v.startswith("[[") for v in case.options.values()
    )
    return (
        spec.streamable
        and prediction.ndim >= spec.batched_ndim
        and all(a.batch_dim == 0 for a in spec.arguments)
        and not per_sample_option
    )


SHARDABLE = [case for case in CASES if _shardable(case)]


def write_shards(
    directory: Path, arrays: dict[str, np.ndarray], sizes: tuple[int, ...] = SIZES
) -> dict[str, str]:
    """Each argument as ``directory/<name>/part-<i>.npy`` (numbered 0, 5, 10, ... so that
    natural order differs from text order); argument name → its glob."""
    rows = len(next(iter(arrays.values())))
    cuts = np.cumsum([0, *sizes, max(rows - sum(sizes), 0)])
    globs = {}
    for name, values in arrays.items():
        (directory / name).mkdir(parents=True)
        for index, (start, end) in enumerate(itertools.pairwise(cuts)):
            if end > start:
                np.save(directory / name / f"part-{5 * index}.npy", values[start:end])
        globs[name] = str(directory / name / "part-*.npy")
    return globs


def write_whole(directory: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, values in arrays.items():
        np.save(directory / f"{name}.npy", values)
    return {name: str(directory / f"{name}.npy") for name in arrays}


def assert_same_answer(
    whole: dict[str, Any], sharded: dict[str, Any], label: str, composed: bool = False
) -> None:
    """The value to 1e-6 relative; n, min, max, argmax exactly; the mean to float64
    rounding (summed in another order); the exit code, shapes and findings the same.

    ``composed``: a loss composed from torch operations (focal), whose per-sample losses
    torch rounds differently by where a sample falls in a vectorised block (a whole tensor
    against a shard): its min and max agree to 1e-6 relative, like the value.
    """
    expected, found = answer(0, whole), answer(0, sharded)
    for key in ("shapes", "findings"):
        assert expected[key] == found[key], f"{label}: {key} {expected[key]} != {found[key]}"
    a, b = whole["value"], sharded["value"]
    assert (a is None) == (b is None), label
    if a is not None:
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12), f"{label}: {a} != {b}"
    mine, theirs = whole["per_sample_summary"], sharded["per_sample_summary"]
    assert (mine is None) == (theirs is None), label
    if mine is not None:
        for key in ("n", "argmax") if composed else ("n", "min", "max", "argmax"):
            assert mine[key] == theirs[key], f"{label}: {key} {mine[key]} != {theirs[key]}"
        closeness = 1e-6 if composed else 1e-12
        for key in ("mean", "min", "max"):
            assert math.isclose(mine[key], theirs[key], rel_tol=closeness), (label, key)
    worst = [w["sample"] for w in whole.get("worst", [])]
    assert worst == [w["sample"] for w in sharded.get("worst", [])], label


def whole_and_sharded(
    capsys: pytest.CaptureFixture[str],
    directory: Path,
    argv: list[str],
    arrays: dict[str, np.ndarray],
    *extra: str,
    sizes: tuple[int, ...] = SIZES,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """``argv`` (a command and its loss) on ``arrays`` in one file each, then in shards,
    with ``extra`` arguments after the inputs; both exit the same. Returns the exit code and
    the two JSON reports."""
    whole = write_whole(directory / "whole", arrays)
    globs = write_shards(directory / "shards", arrays, sizes)
    code, expected, err = run(capsys, *argv, *whole.values(), *extra)
    assert code != 2, err
    shard_code, found, err = run(capsys, *argv, *globs.values(), *extra)
    assert shard_code == code, err
    return code, expected, found


@pytest.mark.parametrize("case", SHARDABLE, ids=[c.id for c in SHARDABLE])
def test_shards_give_the_answer_of_the_concatenated_input(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays = _samples(case)
    names = [a.name for a in case.spec.arguments]
    whole = write_whole(tmp_path / "whole", arrays)
    globs = write_shards(tmp_path / "shards", arrays)
    flags = _flags(case.options)
    code, expected, err = run(capsys, "compute", case.loss, *[whole[n] for n in names], *flags)
    assert code != 2, err
    shard_code, found, err = run(capsys, "compute", case.loss, *[globs[n] for n in names], *flags)
    assert shard_code == code, err
    assert found["streamed"] and found["engine"] == "local", case.id
    assert_same_answer(expected, found, case.id, composed=bool(case.spec.composed))
    parts = len(list((tmp_path / "shards" / names[0]).iterdir()))
    for name in names:
        shards = found["inputs"][name]["shards"]
        assert shards["count"] == parts
        assert shards["first"].endswith(f"{name}/part-0.npy")
        assert shards["last"].endswith(f"{name}/part-{5 * (parts - 1)}.npy")
    assert found["streaming"]["shards"] == parts


def test_findings_and_their_sample_numbers_are_those_of_the_concatenated_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Softmax output given to cross-entropy and a NaN in the last shard: the findings are
    those of the concatenated input, and name the samples by their index in it."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((40, 5)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 5, 40)
    probabilities[31, 2] = np.nan
    arrays = {"input": probabilities, "target": labels}
    code, expected, found = whole_and_sharded(
        capsys, tmp_path, ["compute", "cross-entropy"], arrays, sizes=(7, 1, 20)
    )
    assert code == 1
    assert answer(code, expected)["findings"] == answer(code, found)["findings"]
    names = {f["name"] for f in found["findings"]}
    assert {"non-finite-input", "probabilities-as-logits"} <= names, names
    nan = next(f for f in found["findings"] if f["name"] == "non-finite-input")
    assert "[31, 2]" in nan["message"] and "part-*.npy" in nan["message"], nan["message"]


def test_text_shards_count_their_rows_as_they_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((30, 3))
    labels = rng.integers(0, 3, 30)
    for name, values, fmt in (("p", logits, "%.17g"), ("t", labels, "%d")):
        (tmp_path / name).mkdir()
        np.savetxt(tmp_path / f"{name}.csv", values, fmt=fmt, delimiter=",")
        for index, (start, end) in enumerate(((0, 1), (1, 12), (12, 30))):
            np.savetxt(
                tmp_path / name / f"rank{index}.csv", values[start:end], fmt=fmt, delimiter=","
            )
    _, expected, _ = run(
        capsys, "compute", "cross-entropy", str(tmp_path / "p.csv"), str(tmp_path / "t.csv")
    )
    code, found, err = run(
        capsys,
        "compute",
        "cross-entropy",
        str(tmp_path / "p" / "rank*.csv"),
        str(tmp_path / "t" / "rank*.csv"),
    )
    assert code == 0, err
    assert found["inputs"]["input"]["shape"] == [30, 3]
    assert_same_answer(expected, found, "csv")


def test_a_broadcast_input_goes_whole_to_every_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gaussian-nll with one variance for every sample: a file of one sample, not sharded."""
    rng = np.random.default_rng(5)
    arrays = {"input": rng.standard_normal((25, 2)), "target": rng.standard_normal((25, 2))}
    variance = tmp_path / "var.npy"
    np.save(variance, np.full((1, 2), 0.5))
    _, expected, found = whole_and_sharded(
        capsys, tmp_path, ["compute", "gaussian-nll"], arrays, str(variance)
    )
    assert_same_answer(expected, found, "gaussian-nll")
    assert "shards" not in found["inputs"]["var"]


def test_maps_apply_to_every_chunk_of_every_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(6)
    arrays = {"input": rng.standard_normal((20, 4)), "target": rng.integers(1, 5, 20)}
    mapped = ["--map", "target = target - 1"]
    _, expected, found = whole_and_sharded(
        capsys, tmp_path, ["compute", "cross-entropy"], arrays, *mapped
    )
    assert_same_answer(expected, found, "mapped")


def test_per_sample_out_writes_every_shard_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(7)
    arrays = {"input": rng.standard_normal(30), "target": rng.standard_normal(30)}
    globs = write_shards(tmp_path / "shards", arrays)
    out = tmp_path / "losses.npy"
    code, _, err = run(
        capsys, "compute", "mse", globs["input"], globs["target"], "--per-sample-out", str(out)
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        np.load(out),
        (arrays["input"].astype(np.float32) - arrays["target"].astype(np.float32)) ** 2,
    )


def test_debug_without_a_loss_infers_the_task_from_the_shards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(8)
    arrays = {"input": rng.standard_normal((30, 4)), "target": rng.integers(0, 4, 30)}
    globs = write_shards(tmp_path / "shards", arrays)
    code, found, err = run(capsys, "debug", globs["input"], globs["target"])
    assert code == 0, err
    assert found["loss"] == "cross-entropy"
    assert found["inputs"]["input"]["shape"] == [30, 4]


def test_natural_order_puts_part_2_before_part_10() -> None:
    names = ["p/part-10.npy", "p/part-2.npy", "p/part-1.npy", "p/part-02b.npy"]
    assert sorted(names, key=natural_key) == [
        "p/part-1.npy",
        "p/part-2.npy",
        "p/part-02b.npy",
        "p/part-10.npy",
    ]


# ---------------------------------------------------------------------------------------
# shards that do not pair: one line naming the shard, exit 2


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, record, err = run(capsys, *argv)
    assert code == 2 and record == {}, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    rng = np.random.default_rng(9)
    arrays = {"input": rng.standard_normal((20, 3)), "target": rng.integers(0, 3, 20)}
    return tmp_path, write_shards(tmp_path / "shards", arrays)


def test_a_missing_shard_is_named(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    (root / "shards" / "target" / "part-10.npy").unlink()
    line = _refused(capsys, "compute", "cross-entropy", globs["input"], globs["target"])
    assert "input/part-10.npy has no partner" in line
    assert "matches 4 shards" in line and "matches 3" in line


def test_a_shard_of_another_size_is_named(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    shard = root / "shards" / "target" / "part-5.npy"
    np.save(shard, np.zeros(2, dtype=np.int64))
    line = _refused(capsys, "compute", "cross-entropy", globs["input"], globs["target"])
    assert "target/part-5.npy holds 2 samples" in line and "input/part-5.npy holds 1" in line


def test_a_text_shard_of_another_size_is_named_when_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("p", "t"):
        (tmp_path / name).mkdir()
    for index, rows in enumerate((3, 4)):
        np.savetxt(tmp_path / "p" / f"{index}.csv", np.ones((rows, 2)), delimiter=",")
        np.savetxt(tmp_path / "t" / f"{index}.csv", np.ones((rows - index, 2)), delimiter=",")
    line = _refused(
        capsys, "compute", "mse", str(tmp_path / "p" / "*.csv"), str(tmp_path / "t" / "*.csv")
    )
    assert "t/1.csv holds 3 samples" in line and "p/1.csv holds 4" in line


def test_a_shard_of_another_dtype_is_named(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    shard = root / "shards" / "input" / "part-10.npy"
    np.save(shard, np.load(shard).astype(np.float32))
    line = _refused(capsys, "compute", "cross-entropy", globs["input"], globs["target"])
    assert "input/part-10.npy holds dtype float32" in line and "one dtype" in line


def test_a_shard_of_another_sample_shape_is_named(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    shard = root / "shards" / "input" / "part-5.npy"
    np.save(shard, np.zeros((1, 4)))
    line = _refused(capsys, "compute", "cross-entropy", globs["input"], globs["target"])
    assert "input/part-5.npy holds samples of shape (4,)" in line


def test_an_empty_glob_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _refused(capsys, "compute", "mse", str(tmp_path / "none-*.npy"), "[1]")
    assert "none-*.npy matches no file" in line


def test_an_input_that_is_not_sharded_like_the_others_is_refused(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    labels = root / "labels.npy"
    np.save(labels, np.zeros(20, dtype=np.int64))
    line = _refused(capsys, "compute", "cross-entropy", globs["input"], str(labels))
    assert "labels.npy is one input" in line and "4 shards" in line


def test_ctc_and_unbatched_shards_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p").mkdir()
    np.save(tmp_path / "p" / "0.npy", np.zeros(4))
    line = _refused(capsys, "compute", "ctc", str(tmp_path / "p" / "*.npy"), "[1]", "[4]", "[1]")
    assert "does not decompose over samples" in line
    line = _refused(capsys, "compute", "cross-entropy", str(tmp_path / "p" / "*.npy"), "[1]")
    assert "one unbatched sample" in line


def test_a_lone_bracket_is_a_name_not_a_glob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(capsys, "compute", "mse", str(tmp_path / "run[1.npy"), "[1]")
    assert "no such file" in line


def test_an_existing_file_with_glob_characters_is_read_as_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = tmp_path / "run[1].npy"
    np.save(name, np.ones(3))
    code, found, err = run(capsys, "compute", "mse", str(name), "[1, 1, 2]")
    assert code == 0, err
    assert "shards" not in found["inputs"]["input"] and "engine" not in found


def test_dask_without_shards_is_a_usage_error(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(capsys, "compute", "mse", "[1, 2]", "[1, 3]", "--dask", "local")
    assert "no INPUT is a glob" in line


def test_per_sample_out_with_dask_is_a_usage_error(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    line = _refused(
        capsys,
        "compute",
        "cross-entropy",
        globs["input"],
        globs["target"],
        "--dask",
        "local",
        "--per-sample-out",
        str(root / "out.npy"),
    )
    assert "--per-sample-out with --dask" in line
    assert not (root / "out.npy").exists()


def test_a_map_that_changes_the_sample_shape_applies_to_every_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(13)
    arrays = {"input": rng.standard_normal((20, 5)), "target": rng.integers(0, 3, 20)}
    mapped = ["--map", "input = input[:, :3]"]
    _, expected, found = whole_and_sharded(
        capsys, tmp_path, ["compute", "cross-entropy"], arrays, *mapped
    )
    assert found["inputs"]["input"]["shape"] == [20, 3]
    assert_same_answer(expected, found, "narrowed")


def test_per_sample_out_may_not_be_a_shard(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, globs = pairs
    shard = root / "shards" / "input" / "part-5.npy"
    before = shard.read_bytes()
    line = _refused(
        capsys,
        "compute",
        "cross-entropy",
        globs["input"],
        globs["target"],
        "--per-sample-out",
        str(shard),
    )
    assert "--per-sample-out" in line and shard.read_bytes() == before


def test_an_empty_first_shard_is_a_rank_that_wrote_no_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(14)
    arrays = {"input": rng.standard_normal((40, 4)), "target": rng.standard_normal((40, 4))}
    whole = write_whole(tmp_path / "whole", arrays)
    for name in arrays:
        (tmp_path / name).mkdir()
        for index, (start, end) in enumerate(((0, 0), (0, 0), (0, 10), (10, 10), (10, 40))):
            np.save(tmp_path / name / f"rank{index}.npy", arrays[name][start:end])
    _, expected, _ = run(capsys, "compute", "mse", whole["input"], whole["target"])
    code, found, err = run(
        capsys,
        "compute",
        "mse",
        str(tmp_path / "input" / "rank*.npy"),
        str(tmp_path / "target" / "rank*.npy"),
    )
    assert code == 0, err
    assert found["per_sample_summary"]["n"] == 40
    assert_same_answer(expected, found, "empty first shards")


def test_debug_without_a_loss_reads_past_a_short_first_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rank 0 wrote 4 samples whose targets happen to be 0 and 1; the rest are continuous:
    the task is regression, as for the concatenated input."""
    rng = np.random.default_rng(15)
    target = rng.standard_normal(40)
    target[:4] = [0.0, 1.0, 1.0, 0.0]
    arrays = {"input": target + 0.1 * rng.standard_normal(40), "target": target}
    _, expected, found = whole_and_sharded(capsys, tmp_path, ["debug"], arrays, sizes=(4,))
    assert found["loss"] == expected["loss"] == "mse"


def test_every_target_ignored_gives_the_findings_of_the_concatenated_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch's value is 0/0 and its gradient 0 (not NaN): no non-finite-gradient finding."""
    rng = np.random.default_rng(16)
    arrays = {"input": rng.standard_normal((30, 3)), "target": np.full(30, -100)}
    code, expected, found = whole_and_sharded(
        capsys, tmp_path, ["compute", "cross-entropy"], arrays
    )
    assert code == 1
    assert [f["name"] for f in found["findings"]] == [f["name"] for f in expected["findings"]]
    assert "non-finite-gradient" not in {f["name"] for f in found["findings"]}
    assert found["gradient"]["input"]["norm"] == 0


def test_an_inline_array_of_several_samples_beside_shards_is_refused(
    pairs: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, globs = pairs
    line = _refused(capsys, "compute", "cross-entropy", globs["input"], "[0, 1, 2]")
    assert "the inline target holds several samples" in line and "4 shards" in line
