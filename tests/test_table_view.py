"""The table view and its pictures: histograms of per-sample losses and |gradient|, and
predicted-versus-true class counts, rendered at a fixed width without colour."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console, RenderableType
from typer.testing import CliRunner

from losscli import losses, pipeline
from losscli.cli import app
from losscli.options import resolve
from losscli.render import charts, table
from losscli.report import Report

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LOGITS = str(SAMPLES / "classification" / "logits.csv")
LABELS = str(SAMPLES / "classification" / "labels.csv")
BINARY_LOGITS = str(SAMPLES / "binary" / "logits.npy")
BINARY_TARGETS = str(SAMPLES / "binary" / "targets.npy")


def _text(renderable: RenderableType, width: int = 100) -> str:
    console = Console(width=width, no_color=True, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _report(loss: str, *inputs: str, **given: object) -> Report:
    spec = losses.get(loss)
    assert spec is not None
    loaded = pipeline.load_inputs(spec, inputs)
    return pipeline.evaluate(spec, loaded, resolve(spec, dict(given)))


def _bar_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "█" in line or "▏" in line]


# --- histogram numbers ------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=200),
    st.booleans(),
)
def test_histogram_counts_every_value_once(values: list[float], log: bool) -> None:
    array = np.array(values, dtype=np.float64)
    binned = charts.histogram(array, log=log)
    finite = array[np.isfinite(array)]
    assert binned.non_finite == array.size - finite.size
    assert int(binned.counts.sum()) + binned.zeros == finite.size
    assert binned.counts.size <= charts.BINS
    assert np.all(np.diff(binned.edges) >= 0)


def test_linear_histogram_matches_numpy() -> None:
    values = np.random.default_rng(0).normal(size=500)
    binned = charts.histogram(values)
    expected, edges = np.histogram(values, bins=10)
    np.testing.assert_array_equal(binned.counts, expected)
    np.testing.assert_allclose(binned.edges, edges)


def test_log_histogram_spaces_bins_by_decade_and_counts_zeros_apart() -> None:
    # magnitudes 1e-6 .. 1e3, one per decade, and three exact zeros
    values = np.array([0.0, -0.0, 0.0] + [(-1) ** k * 10.0**k for k in range(-6, 4)])
    binned = charts.histogram(values, log=True)
    assert binned.zeros == 3
    assert binned.edges[0] == pytest.approx(1e-6) and binned.edges[-1] == pytest.approx(1e3)
    np.testing.assert_allclose(np.diff(np.log10(binned.edges)), 0.9)  # 9 decades / 10 bins
    assert int(binned.counts.sum()) == 10


def test_bar_uses_eighth_blocks_and_never_hides_a_non_empty_bin() -> None:
    assert charts.bar(10, 10, 5) == "█████"
    assert charts.bar(5, 10, 5) == "██▌"  # 2.5 cells
    assert charts.bar(1, 1000, 5) == "▏"  # rounds to zero eighths: still shown
    assert charts.bar(0, 10, 5) == ""


def test_histogram_view_is_bounded_and_none_when_empty() -> None:
    values = np.random.default_rng(1).lognormal(0, 4, size=10_000)
    text = _text(charts.histogram_view(values, "t"), width=200)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) == 11  # title and 10 bins
    assert max(len(line.rstrip()) for line in lines) <= charts.WIDTH
    counts = [int(line.split()[-1]) for line in lines[1:]]
    assert sum(counts) == 10_000
    assert charts.histogram_view(np.array([]), "t") is None


# --- the table view ---------------------------------------------------------------------


def test_table_view_has_value_worst_samples_and_histograms() -> None:
    report = _report("bce-logits", BINARY_LOGITS, BINARY_TARGETS)
    assert report.computation is not None and report.value is not None
    text = _text(table.render(report, top=3))
    assert f"bce-logits = {table.number(report.value)}" in text
    per_sample = report.computation.per_sample
    worst = np.argsort(per_sample)[::-1][:3]
    rank_rows = [
        line.split() for line in text.splitlines() if line.strip()[:2] in ("1 ", "2 ", "3 ")
    ]
    assert [int(row[1]) for row in rank_rows[:3]] == worst.tolist()
    assert "per-sample loss histogram (16 samples)" in text
    assert "|gradient| of input (log-spaced bins)" in text
    bins = [line for line in text.splitlines() if " – " in line]
    assert len(bins) == 20  # 10 bins for the losses, 10 for |gradient| (16 > 12 values)
    assert max(len(line.rstrip()) for line in bins) <= charts.WIDTH
    assert sum(int(line.split()[-1]) for line in bins[:10]) == 16
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "predicted (argmax)" not in text  # binary targets are not class indices


def test_small_inputs_list_values_instead_of_histograms() -> None:
    report = _report("l1", "[1,2.5,4,0.5]", "[2,2.5,2,1]")
    text = _text(table.render(report))
    assert "l1 = 0.875" in text
    assert "histogram" not in text and _bar_lines(text) == []


def test_ignored_samples_are_left_out_of_the_histogram() -> None:
    logits = "[" + ",".join(["[2,1]", "[0,3]"] * 4) + "]"
    labels = "[0,-100,1,-100,0,1,1,0]"
    report = _report("ce", logits, labels)
    text = _text(table.render(report))
    assert "histogram (6 samples, ignored left out)" in text


def test_class_counts_match_numpy_and_name_the_csv_columns() -> None:
    report = _report("cross-entropy", LOGITS, LABELS)
    logits = np.loadtxt(LOGITS, delimiter=",", skiprows=1)
    labels = np.loadtxt(LABELS, delimiter=",", skiprows=1).astype(int)
    predicted = logits.argmax(axis=1)
    counts = report.classes
    assert counts is not None
    assert counts.true.tolist() == np.bincount(labels, minlength=4).tolist()
    assert counts.predicted.tolist() == np.bincount(predicted, minlength=4).tolist()
    assert int(counts.correct.sum()) == int((predicted == labels).sum())
    text = _text(table.render(report))
    assert "predicted (argmax) vs true classes" in text
    for name in ("0 cat", "1 dog", "2 bird", "3 fish"):
        assert name in text
    accuracy = f"accuracy {int(counts.correct.sum())}/{labels.size}"
    assert accuracy in text


def test_class_counts_leave_out_ignored_and_count_out_of_range_targets() -> None:
    report = _report("nll", "[[-0.1,-2.3],[-2.3,-0.1],[-0.1,-2.3],[-2.3,-0.1]]", "[0,-100,1,5]")
    counts = report.classes
    assert counts is not None
    assert counts.ignored == 1
    assert counts.out_of_range == 1
    assert counts.true.tolist() == [1, 1]
    assert counts.predicted.tolist() == [2, 1]  # argmax of the 3 counted rows
    assert int(counts.correct.sum()) == 1  # sample 0 only


@pytest.mark.parametrize(
    ("loss", "inputs"),
    [
        ("mse", ("[1,2,3]", "[1,2,4]")),  # not a classification loss
        ("ce", ("[[2,1],[0,3]]", "[[0.5,0.5],[0.1,0.9]]")),  # probability targets
        ("ce", ("[[2,1],[0,3]]", "[0.5,1]")),  # fractional "class indices"
    ],
)
def test_no_class_counts_where_targets_are_not_class_indices(
    loss: str, inputs: tuple[str, str]
) -> None:
    assert _report(loss, *inputs).classes is None


def test_cli_table_at_a_fixed_width_without_colour() -> None:
    result = runner.invoke(
        app, ["compute", "ce", LOGITS, LABELS, "--top", "3"], env={"COLUMNS": "100"}
    )
    assert result.exit_code == 0
    out = result.stdout
    assert "\x1b[" not in out
    assert "cross-entropy = " in out
    assert "worst 3 of 12" in out
    assert "per-sample loss histogram (12 samples)" in out
    assert "predicted (argmax) vs true classes" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_class_counts_table_is_bounded_for_many_classes() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 30, size=200)
    scores = rng.normal(size=(200, 30))
    logits = "[" + ",".join("[" + ",".join(f"{v:.3f}" for v in row) + "]" for row in scores) + "]"
    targets = "[" + ",".join(str(v) for v in labels) + "]"
    report = _report("ce", logits, targets)
    text = _text(table.classes_view(report) or "", width=100)
    rows = [line.split() for line in text.splitlines() if "not shown" not in line]
    rows = [
        row for row in rows if len(row) in (5, 6) and row[0].isdigit()
    ]  # class true pred correct recall (mean loss)
    assert len(rows) == charts.CLASS_ROWS
    assert f"{30 - charts.CLASS_ROWS} more classes not shown" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 60


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    ),
    st.integers(1, 12),
)
def test_log_bins_count_as_numpy_does_with_the_same_edges(values: list[float], bins: int) -> None:
    # the log histogram bins by search, not by np.histogram's sort: the same counts, edges included
    array = np.array(values + [v * 10.0 for v in values[:3]], dtype=np.float64)
    binned = charts.histogram(array, bins=bins, log=True)
    magnitudes = np.abs(array)
    magnitudes = magnitudes[magnitudes > 0]
    if binned.counts.size == 0 or binned.edges.size < 3:
        return
    expected, _ = np.histogram(magnitudes, bins=binned.edges)
    assert binned.counts.tolist() == expected.tolist()
    assert int(binned.counts.sum()) == magnitudes.size


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=200),
    st.booleans(),
    st.integers(0, 3),
)
def test_float32_values_bin_as_their_float64_copy(values: list[float], log: bool, bad: int) -> None:
    # binned in their own dtype (no float64 copy of a large gradient): the same edges and counts
    single = np.array(values + [np.nan, np.inf, -np.inf][:bad], dtype=np.float32)
    ours, wide = (
        charts.histogram(single, log=log),
        charts.histogram(single.astype(np.float64), log=log),
    )
    assert ours.edges.dtype == np.float64
    assert ours.edges.tolist() == wide.edges.tolist()
    assert ours.counts.tolist() == wide.counts.tolist()
    assert (ours.zeros, ours.non_finite) == (wide.zeros, wide.non_finite)
