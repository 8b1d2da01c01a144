"""The files people have (issue 13, item 2 and 3): nested checkpoints, safetensors, numpy's
``savetxt`` headers, pandas' blank lines, ``.npy`` on standard input, and a memory budget
that follows the machine and counts what the inputs really decode to.

CLI tests assert exit code, stdout and stderr separately; values come from torch on the
same data.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from losscli import chunks
from losscli.cli import main
from losscli.errors import LoadError
from losscli.formats import stdin_formats
from losscli.loaders import chunk_estimate, load, size_text
from losscli.sources import parse_source

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``losscli ARGV`` in this process (through ``main``, as the console script runs it)."""
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    assert err == ""
    return dict(json.loads(out))


def one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr: that line."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def cli_subprocess(*argv: str, cwd: Path, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """``python -m losscli ARGV`` with ``stdin`` piped in (a real pipe, not a test double)."""
    env = {k: v for k, v in os.environ.items() if k != "LOSSCLI_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "losscli", *argv],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def _close(value: float, expected: torch.Tensor) -> None:
    assert value == pytest.approx(float(expected), rel=1e-6)


# --- nested .pt checkpoints ---------------------------------------------------------------

LOGITS = torch.randn(32, 5, generator=torch.Generator().manual_seed(13))
LABELS = torch.randint(0, 5, (32,), generator=torch.Generator().manual_seed(14))


def _checkpoint() -> dict[str, Any]:
    return {
        "outputs": {"logits": LOGITS, "hidden": [LOGITS * 2, LOGITS.softmax(1)]},
        "labels": LABELS,
        "model.fc.weight": torch.ones(5, 3),  # a key with dots in it (a state_dict's)
        "config": {"name": "run-7", "lr": 0.1},
        "epoch": 3,
    }


@pytest.mark.parametrize(
    ("logits", "expected"),
    [
        ("ckpt.pt:outputs.logits", LOGITS),
        ("ckpt.pt:outputs/logits", LOGITS),
        ("ckpt.pt:outputs.hidden.0", LOGITS * 2),
        ("ckpt.pt:outputs/hidden/-2", LOGITS * 2),
    ],
)
def test_a_dotted_path_selects_inside_a_checkpoint(
    logits: str, expected: torch.Tensor, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(_checkpoint(), "ckpt.pt")
    report = run_json(capsys, "compute", "cross-entropy", logits, "ckpt.pt:labels")
    _close(report["value"], F.cross_entropy(expected, LABELS))
    assert report["inputs"]["input"]["shape"] == [32, 5]


def test_a_key_that_holds_dots_is_reachable(here: Path) -> None:
    checkpoint = _checkpoint()
    checkpoint["model"] = {"fc": {"weight": torch.zeros(2)}}  # the nested path, besides
    torch.save(checkpoint, "ckpt.pt")
    assert load(parse_source("ckpt.pt:model.fc.weight")).values.shape == (5, 3)  # whole key
    assert load(parse_source("ckpt.pt:model/fc/weight")).values.shape == (2,)  # the path


def test_one_tensor_anywhere_needs_no_selector(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save({"outputs": {"logits": LOGITS}, "step": 100}, "out.pt")
    torch.save(LABELS, "y.pt")
    report = run_json(capsys, "compute", "cross-entropy", "out.pt", "y.pt")
    _close(report["value"], F.cross_entropy(LOGITS, LABELS))
    # a selection that lands on a container with one tensor in it gives that tensor
    np.testing.assert_array_equal(load(parse_source("out.pt:outputs")).values, LOGITS.numpy())


def test_a_checkpoint_of_several_tensors_lists_their_paths(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(_checkpoint(), "ckpt.pt")
    line = one_error(capsys, "compute", "cross-entropy", "ckpt.pt", "ckpt.pt:labels")
    assert "ckpt.pt holds 5 tensors; pick one with ckpt.pt:PATH" in line, line
    assert (
        "(its tensors: outputs.logits, outputs.hidden.0, outputs.hidden.1, labels, "
        "model.fc.weight)" in line
    ), line
    assert "config" not in line and "epoch" not in line  # only tensors are listed


@pytest.mark.parametrize(
    ("selection", "words"),
    [
        ("ckpt.pt:outputs.logitz", "ckpt.pt has no 'outputs.logitz' (its tensors: outputs.logits,"),
        ("ckpt.pt:outputs.hidden.2", "ckpt.pt has no 'outputs.hidden.2' (its tensors:"),
        ("ckpt.pt:config.name", "ckpt.pt:config.name holds a str, not a tensor (its tensors:"),
        ("ckpt.pt:config", "ckpt.pt:config holds a dict with no tensors in it"),
        ("ckpt.pt:outputs", "ckpt.pt:outputs holds 3 tensors; pick one with ckpt.pt:PATH"),
    ],
)
def test_a_selection_that_is_no_tensor_is_one_line(
    selection: str, words: str, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(_checkpoint(), "ckpt.pt")
    line = one_error(capsys, "compute", "cross-entropy", selection, "ckpt.pt:labels")
    assert words in line, line


def test_the_listing_is_bounded(here: Path) -> None:
    torch.save({"layers": [{"w": torch.ones(1)} for _ in range(30)]}, "many.pt")
    with pytest.raises(LoadError) as error:
        load(parse_source("many.pt"))
    line = error.value.line()
    assert "many.pt holds 30 tensors" in line and "layers.0.w, layers.1.w" in line, line
    assert line.endswith("layers.11.w and 18 more)"), line


def test_a_checkpoint_is_never_unpickled_beyond_tensors(here: Path) -> None:
    # torch.load(weights_only=True) refuses a class it does not know: one line naming it
    torch.save({"logits": LOGITS, "when": io.BytesIO(b"x")}, "odd.pt")
    with pytest.raises(LoadError) as error:
        load(parse_source("odd.pt:logits"))
    assert "refuses to unpickle" in error.value.line()


# --- the budget counts the tensor chosen, not the whole checkpoint ---------------------------


def test_each_selection_counts_its_own_tensor(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the case scaled down: a torch.save of logits [N, 30] float32 and int64 labels
    # was counted as the whole archive once per selection (twice the file: "244 MB" for a
    # 128 MB file); each selection is its tensor's bytes
    logits = torch.randn(4000, 30)
    labels = torch.randint(0, 30, (4000,))
    torch.save({"logits": logits, "labels": labels}, "run.pt")
    archive = Path("run.pt").stat().st_size
    decoded = logits.numpy().nbytes + labels.numpy().nbytes
    assert chunk_estimate(parse_source("run.pt:logits")).nbytes == logits.numpy().nbytes
    assert chunk_estimate(parse_source("run.pt:labels")).nbytes == labels.numpy().nbytes
    # a budget that holds the decoded tensors, and not the archive counted twice
    budget = chunks.WHOLE_TENSOR_FACTOR * (decoded + archive) // 2
    assert chunks.WHOLE_TENSOR_FACTOR * decoded < budget < chunks.WHOLE_TENSOR_FACTOR * 2 * archive
    report = run_json(
        capsys, "compute", "cross-entropy", "run.pt:logits", "run.pt:labels",
        "--memory-budget", str(budget),
    )  # fmt: skip
    _close(report["value"], F.cross_entropy(logits, labels))
    # over a smaller budget, the refusal states each input's decoded size
    line = one_error(
        capsys, "compute", "cross-entropy", "run.pt:logits", "run.pt:labels",
        "--memory-budget", "64KB",
    )  # fmt: skip
    assert f"the inputs hold {size_text(decoded)} once decoded" in line, line
    assert f"run.pt:logits: {size_text(logits.numpy().nbytes)}" in line, line
    assert f"run.pt:labels: {size_text(labels.numpy().nbytes)}" in line, line


def test_a_bfloat16_tensor_counts_as_the_float32_it_becomes(here: Path) -> None:
    torch.save({"p": torch.ones(1000, dtype=torch.bfloat16), "q": torch.ones(10)}, "b.pt")
    assert chunk_estimate(parse_source("b.pt:p")).nbytes == 1000 * 4


# --- safetensors ----------------------------------------------------------------------------


def test_safetensors_by_key_computes_torchs_value(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_torch({"model.logits": LOGITS, "labels": LABELS}, "eval.safetensors")
    report = run_json(
        capsys, "compute", "cross-entropy", "eval.safetensors:model.logits",
        "eval.safetensors:labels",
    )  # fmt: skip
    _close(report["value"], F.cross_entropy(LOGITS, LABELS))
    assert report["inputs"]["target"]["dtype"] == "int64"


def test_safetensors_with_one_tensor_needs_no_key(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions = np.linspace(0, 1, 9, dtype=np.float32)
    save_numpy({"p": predictions}, "p.safetensors")
    save_numpy({"t": predictions[::-1].copy()}, "t.safetensors")
    report = run_json(capsys, "compute", "mse", "p.safetensors", "t.safetensors")
    _close(
        report["value"],
        F.mse_loss(torch.from_numpy(predictions), torch.from_numpy(predictions[::-1].copy())),
    )


def test_safetensors_bfloat16_widens_exactly_and_remembers(here: Path) -> None:
    stored = torch.tensor([1.5, -2.25, 3.0, 1e-3], dtype=torch.bfloat16)
    save_torch({"p": stored, "other": torch.ones(1)}, "b.safetensors")
    loaded = load(parse_source("b.safetensors:p"))
    assert loaded.values.dtype == np.float32 and loaded.stored_dtype == "bfloat16"
    np.testing.assert_array_equal(loaded.values, stored.float().numpy())
    assert chunk_estimate(parse_source("b.safetensors:p")).nbytes == 4 * 4


def test_safetensors_lists_its_keys(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_numpy({f"layer.{i}": np.ones(2, np.float32) for i in range(14)}, "m.safetensors")
    line = one_error(capsys, "compute", "mse", "m.safetensors", "[1, 1]")
    assert "m.safetensors holds 14 tensors; pick one with m.safetensors:KEY (its tensors:" in line
    assert line.endswith("and 2 more)"), line
    line = one_error(capsys, "compute", "mse", "m.safetensors:layer.99", "[1, 1]")
    assert "m.safetensors has no tensor 'layer.99' (its tensors: layer.0," in line, line


def test_safetensors_budget_is_judged_from_the_header(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = np.zeros((20000,), np.float16)
    save_numpy({"p": values}, "h.safetensors")
    assert chunk_estimate(parse_source("h.safetensors")).nbytes == values.nbytes
    line = one_error(
        capsys, "compute", "mse", "h.safetensors", "h.safetensors", "--memory-budget", "64KB"
    )
    assert f"h.safetensors: {size_text(values.nbytes)}" in line, line


def _safetensors_image() -> bytes:
    buffer = io.BytesIO()
    from safetensors.numpy import save

    buffer.write(save({"p": np.arange(8, dtype=np.float32)}))
    return buffer.getvalue()


HOSTILE_SAFETENSORS = {
    "truncated": _safetensors_image()[:-5],
    "bad-header": struct.pack("<Q", 12) + b"{not json!!}",
    "huge-header": struct.pack("<Q", 1 << 62) + b"{}",
    "header-past-the-end": struct.pack("<Q", 4096) + b'{"p": {}}',
    "offsets-past-the-end": (lambda header: struct.pack("<Q", len(header)) + header + b"\x00" * 8)(
        b'{"p":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}'
    ),
    "text": b"1,2,3\n",
    "zero-bytes": b"",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_SAFETENSORS))
def test_a_hostile_safetensors_file_is_one_line(
    kind: str, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("x.safetensors").write_bytes(HOSTILE_SAFETENSORS[kind])
    before = Path("x.safetensors").read_bytes()
    line = one_error(capsys, "compute", "mse", "x.safetensors", "[1.0]")
    assert "x.safetensors" in line, line
    assert "is not a safetensors file" in line or "is empty (0 bytes)" in line, line
    assert Path("x.safetensors").read_bytes() == before


# --- numpy's savetxt header and pandas' blank lines ---------------------------------------


@pytest.mark.parametrize(
    ("name", "delimiter"), [("scores.csv", ","), ("scores.txt", " ")], ids=["csv", "txt"]
)
def test_a_savetxt_header_names_the_columns_whole_and_streamed(
    name: str, delimiter: str, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(500, 2))
    np.savetxt(name, data, delimiter=delimiter, header=delimiter.join(["pred", "true"]))
    assert Path(name).read_text().startswith("# pred")  # numpy's comment header
    expected = F.mse_loss(
        torch.from_numpy(data[:, 0]).float(), torch.from_numpy(data[:, 1]).float()
    )
    whole = run_json(capsys, "compute", "mse", f"{name}:pred", f"{name}:true")
    streamed = run_json(
        capsys, "compute", "mse", f"{name}:pred", f"{name}:true", "--memory-budget", "4KB"
    )
    _close(whole["value"], expected)
    assert streamed["streamed"] is True and whole["streamed"] is False
    assert streamed["value"] == pytest.approx(whole["value"], rel=1e-6)
    assert whole["inputs"]["input"]["shape"] == streamed["inputs"]["input"]["shape"] == [500]


def _pandas_one_column(values: list[float | None]) -> str:
    """What ``pd.Series(values, name='y').to_csv(index=False)`` writes: a missing value is
    an empty line (pandas writes ``na_rep=''``, and one column has no separators)."""
    return "y\n" + "".join("\n" if v is None else f"{v!r}\n" for v in values)


def test_a_blank_line_in_one_column_is_a_missing_value(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets: list[float | None] = [float(i % 7) for i in range(300)]
    targets[10] = targets[150] = None
    Path("y.csv").write_text(_pandas_one_column(targets) + "\n\n")  # and a blank end
    predictions = np.arange(300, dtype=np.float32) % 7
    np.save("p.npy", predictions)
    values = load(parse_source("y.csv")).values
    assert values.shape == (300,)  # aligned with the predictions, sample for sample
    assert np.flatnonzero(np.isnan(values)).tolist() == [10, 150]
    whole = run(capsys, "compute", "mse", "p.npy", "y.csv", "--format", "json")
    streamed = run(
        capsys, "compute", "mse", "p.npy", "y.csv", "--format", "json", "--memory-budget", "4KB"
    )
    assert whole[0] == streamed[0]
    reports = [json.loads(ran[1]) for ran in (whole, streamed)]
    assert [r["inputs"]["target"]["shape"] for r in reports] == [[300], [300]]
    names = [sorted(f["name"] for f in r["findings"]) for r in reports]
    assert names[0] == names[1] and "batch-size-mismatch" not in names[0]
    assert "non-finite-input" in names[0], names  # the NaN is seen, where it is


def test_blank_lines_between_rows_of_several_columns_are_no_rows(here: Path) -> None:
    # near miss: with separators, a missing value is written as an empty cell (",,")
    Path("two.csv").write_text("p,t\n1,2\n\n3,4\n\n")
    np.testing.assert_array_equal(load(parse_source("two.csv:t")).values, [2, 4])


# --- standard input ------------------------------------------------------------------------


@pytest.mark.parametrize("stdin_format", [None, "csv", "tsv", "json"])
def test_npy_on_standard_input_is_read_as_npy(stdin_format: str | None, here: Path) -> None:
    predictions = np.array([0.5, 1.5, 2.0], np.float32)
    np.save("t.npy", np.array([1.0, 1.0, 1.0], np.float32))
    image = io.BytesIO()
    np.save(image, predictions)
    flags = [] if stdin_format is None else ["--stdin-format", stdin_format]
    done = cli_subprocess(
        "compute", "mse", "-", "t.npy", "--format", "json", *flags, cwd=here, stdin=image.getvalue()
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    report = json.loads(done.stdout)
    _close(report["value"], F.mse_loss(torch.from_numpy(predictions), torch.ones(3)))


def test_binary_on_standard_input_gets_a_tip_it_can_follow(here: Path) -> None:
    image = io.BytesIO()
    np.savez(image, p=np.ones(3))
    done = cli_subprocess("compute", "mse", "-", "[1, 1, 1]", cwd=here, stdin=image.getvalue())
    assert done.returncode == 2 and done.stdout == b""
    line = done.stderr.decode()
    assert len(line.splitlines()) == 1, line
    assert "--stdin-format npz" in line and "name it" not in line, line


def test_stdin_format_help_lists_the_formats_that_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "compute", "--help")
    assert code == 0 and err == ""
    flat = " ".join(out.replace("│", " ").split())
    assert f"Format of '-' (standard input): {', '.join(stdin_formats())};" in flat, flat
    assert stdin_formats() == ["npy", "npz", "csv", "tsv", "json"]


@pytest.mark.parametrize(
    ("argv", "suggested"),
    [
        (["compute", "mse", "-:label", "t.npy"], "losscli compute mse -- -:label t.npy"),
        (["debug", "-:y", "t.npy", "--loss", "mse"], "the options first, then --, then the inputs"),
    ],
)
def test_a_stdin_column_before_the_inputs_says_to_use_double_dash(
    argv: list[str], suggested: str, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # click reads any word that starts with '-' as an option: -:label is "No such option: -:"
    line = one_error(capsys, *argv)
    assert "reads as an option" in line and "put the inputs after '--'" in line, line
    assert suggested in line, line


def test_a_stdin_column_after_double_dash_is_read(here: Path) -> None:
    np.save("t.npy", np.array([1.0, 2.0], np.float32))
    done = cli_subprocess(
        "compute",
        "mse",
        "--format",
        "json",
        "--",
        "-:label",
        "t.npy",
        cwd=here,
        stdin=b"id,label\n1,1.5\n2,2.5\n",
    )
    assert done.returncode == 0, done.stderr
    _close(
        json.loads(done.stdout)["value"],
        F.mse_loss(torch.tensor([1.5, 2.5]), torch.tensor([1.0, 2.0])),
    )


# --- the default memory budget follows the machine -----------------------------------------


@pytest.fixture
def fresh_default() -> Iterator[None]:
    chunks._startup.cache_clear()
    yield
    chunks._startup.cache_clear()


@pytest.mark.parametrize(
    ("available", "budget"),
    [
        (16 << 30, 4 << 30),  # a quarter of what is available
        (3 << 30, 768 << 20),
        (1 << 30, 512 << 20),  # never below the old default
        (0, 512 << 20),
        (None, 512 << 20),  # the system does not say
    ],
)
def test_the_default_budget_is_a_quarter_of_the_available_memory(
    available: int | None, budget: int, monkeypatch: pytest.MonkeyPatch, fresh_default: None
) -> None:
    monkeypatch.setattr(chunks, "available_memory", lambda: available)
    assert chunks.default_budget() == budget
    assert chunks.parse_size("auto") == budget


def test_available_memory_reads_meminfo_and_the_container_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chunks, "_meminfo_available", lambda: 8 << 30)
    monkeypatch.setattr(chunks, "_cgroup_allowance", lambda: None)
    assert chunks.available_memory() == 8 << 30
    monkeypatch.setattr(chunks, "_cgroup_allowance", lambda: 2 << 30)  # a container's limit
    assert chunks.available_memory() == 2 << 30
    if Path("/proc/meminfo").exists():  # the real reader, on Linux
        assert (chunks._meminfo_available() or 0) > 0


def test_a_file_refused_at_512mb_loads_at_a_default_that_follows_the_machine(
    here: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_default: None,
) -> None:
    # the 160 MB .npz, scaled down 1,000 times: its whole-tensor computation needs
    # more than the floor but less than a quarter of the memory available
    monkeypatch.setattr(chunks, "LEAST_DEFAULT_BUDGET", 512 << 10)
    logits = np.random.default_rng(0).normal(size=(1400, 30)).astype(np.float32)
    labels = np.arange(1400) % 30
    np.savez_compressed("run.npz", logits=logits, labels=labels)
    decoded = [
        chunk_estimate(parse_source(f"run.npz:{key}")).nbytes for key in ("logits", "labels")
    ]
    assert decoded[0] >= logits.nbytes and decoded[1] >= labels.nbytes  # with .npy headers
    needed = chunks.WHOLE_TENSOR_FACTOR * sum(decoded)
    assert needed > chunks.LEAST_DEFAULT_BUDGET
    args = ("compute", "cross-entropy", "run.npz:logits", "run.npz:labels")
    monkeypatch.setattr(chunks, "available_memory", lambda: 0)  # the floor: refused
    line = one_error(capsys, *args)
    assert "over --memory-budget 512 KB" in line or "over --memory-budget 524,288 bytes" in line, (
        line
    )
    chunks._startup.cache_clear()
    monkeypatch.setattr(chunks, "available_memory", lambda: 4 * needed + 4096)
    report = run_json(capsys, *args)
    _close(report["value"], F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))


def test_the_json_says_how_the_budget_was_chosen(
    here: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_default: None,
) -> None:
    monkeypatch.setattr(chunks, "LEAST_DEFAULT_BUDGET", 4 << 10)
    monkeypatch.setattr(chunks, "available_memory", lambda: 16 << 10)
    np.save("p.npy", np.zeros(5000, np.float32))
    report = run_json(capsys, "compute", "mse", "p.npy", "p.npy")
    assert report["streamed"] is True
    streaming = report["streaming"]
    assert streaming["memory_budget_bytes"] == 4 << 10
    assert streaming["memory_budget_rule"].startswith("auto: a quarter of the memory available")
    chunks._startup.cache_clear()
    given = run_json(capsys, "compute", "mse", "p.npy", "p.npy", "--memory-budget", "8KB")
    assert given["streaming"]["memory_budget_bytes"] == 8 << 10
    assert given["streaming"]["memory_budget_rule"] == "--memory-budget"


def test_the_help_says_how_the_default_is_chosen(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "compute", "--help")
    flat = " ".join(out.replace("│", " ").split())
    assert code == 0
    assert "auto: a quarter of the memory available" in flat and "at least 512MB" in flat, flat
