"""Command-line options made from the catalogue, and renderers behind one registry."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losscli import losses, parameters, render
from losscli.cli import app
from losscli.losses import Option, OptionType

runner = CliRunner()


@pytest.mark.parametrize("command", ["compute", "debug", "compare"])
def test_every_catalogue_option_is_a_flag_with_torchs_defaults(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    for name, option in losses.all_options().items():
        assert option.flag in flat, (command, option.flag)
        takers = [spec.name for spec in losses.LOSSES if spec.option(name) is not None]
        if len(takers) < len(losses.LOSSES):  # the losses that take it are named
            assert all(loss in parameters.option_help(name) for loss in takers), name
    assert "torch default 1e-08 for poisson-nll; 1e-06 for gaussian-nll, triplet-margin" in flat


def test_a_new_catalogue_option_becomes_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = losses.get("huber")
    assert spec is not None
    extra = Option("softness", OptionType.FLOAT, 0.5, "how soft the corner is")
    patched = dataclasses.replace(spec, options=(*spec.options, extra))
    monkeypatch.setattr(losses, "LOSSES", tuple(patched if s is spec else s for s in losses.LOSSES))
    made = {p.name: p for p in parameters.loss_parameters()}
    assert "softness" in made
    assert parameters.option_help("softness") == (
        "huber: how soft the corner is; torch default 0.5."
    )


def test_shared_options_are_declared_once() -> None:
    made = [p.name for p in parameters.run_parameters(top=None)]
    assert "top" not in made
    assert {f.name for f in dataclasses.fields(parameters.RunOptions)} == {*made, "top"}


def test_p_is_an_integer_for_multi_margin_and_a_float_for_triplets(tmp_path: Path) -> None:
    scores = "[[0.1,0.9,0.3],[0.8,0.1,0.4]]"
    ok = runner.invoke(app, ["compute", "multi-margin", scores, "[1,0]", "-p", "2", "-f", "json"])
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["options"]["p"] == 2
    bad = runner.invoke(app, ["compute", "multi-margin", scores, "[1,0]", "-p", "1.5"])
    assert bad.exit_code == 2 and "-p" in bad.stderr and "--p" not in bad.stderr
    embeddings = "[[0.1,0.2],[0.3,0.4]]"
    triplet = runner.invoke(
        app,
        ["compute", "triplet", embeddings, embeddings, "[[1,1],[2,2]]", "-p", "1.5", "-f", "json"],
    )
    assert triplet.exit_code == 0, triplet.stderr
    assert json.loads(triplet.stdout)["options"]["p"] == 1.5


# ------------------------------------------------------------------ the renderer registry


@pytest.mark.parametrize("name", sorted(render.FORMATS))
def test_every_format_renders_reports_and_comparisons(name: str) -> None:
    from losscli import compare, options, pipeline
    from losscli.loaders import LoadedArray

    spec = losses.get("mse")
    assert spec is not None
    arrays = {
        "input": LoadedArray(np.array([1.0, 2.5, 4.0], np.float32), "p.npy"),
        "target": LoadedArray(np.array([2.0, 2.5, 2.0], np.float32), "t.npy"),
    }
    report = pipeline.evaluate(spec, arrays, options.resolve(spec, {}))
    view = render.View(tripped={"mse": []})
    rendered = render.renderer(name).report(report, view)
    shown = rendered.text or _plain(rendered.renderable)
    if name == "csv":  # the per-sample rows: (4 - 2)^2 = 4 for sample 2
        assert "2,4.0,4.0,2.0" in shown
    else:  # the value: (1 + 0 + 4) / 3
        assert "1.66667" in shown or "1.6666" in shown
    entries = compare.evaluate_all(
        [spec], ["[1, 2.5, 4]", "[2, 2.5, 2]"], {}, pipeline.Settings(), budget=1 << 30
    )
    compared = render.renderer(name).comparison(entries, view)
    assert "mse" in (compared.text or _plain(compared.renderable))


def _plain(renderable: object) -> str:
    import io

    from rich.console import Console

    console = Console(width=120, no_color=True, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_json_holds_what_the_table_shows() -> None:
    samples = Path(__file__).resolve().parents[1] / "samples" / "classification"
    argv = ["compute", "ce", str(samples / "logits.csv"), str(samples / "labels.csv")]
    record = json.loads(runner.invoke(app, [*argv, "-f", "json"]).stdout)
    table = runner.invoke(app, [*argv, "--top", "3"], env={"COLUMNS": "120"}).stdout
    classes = record["classes"]
    assert classes["true"] and classes["accuracy"] is not None
    correct, total = sum(classes["correct"]), classes["total"]
    assert f"accuracy {correct}/{total}" in table
    worst = record["worst"][:3]
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    ranked = [row[1] for row in rows if len(row) == 3][:3]
    assert ranked == [str(w["sample"]) for w in worst]
    assert all(isinstance(m, float) for m in classes["mean_loss"] if m is not None)


def test_csv_predicted_column_comes_from_the_report(tmp_path: Path) -> None:
    logits = np.array([[2.0, 0.1], [0.1, 3.0], [1.0, 0.0]], dtype=np.float32)
    np.save(tmp_path / "l.npy", logits)
    result = runner.invoke(app, ["compute", "ce", str(tmp_path / "l.npy"), "[0,1,1]", "-f", "csv"])
    lines = result.stdout.splitlines()
    assert lines[0].split(",")[-1] == "predicted"
    assert [line.split(",")[-1] for line in lines[1:]] == ["0", "1", "0"]


# ------------------------------------------------------------------ --per-sample-out


def test_per_sample_out_never_names_an_input(tmp_path: Path) -> None:
    pred = tmp_path / "p.npy"
    np.save(pred, np.arange(4, dtype=np.float32))
    before = pred.read_bytes()
    result = runner.invoke(
        app, ["compute", "mse", str(pred), "[0,1,2,3]", "--per-sample-out", str(pred)]
    )
    assert result.exit_code == 2 and "is an input" in result.stderr and result.stdout == ""
    assert pred.read_bytes() == before


@pytest.mark.parametrize("budget", ["512MB", "1KB"])
def test_a_failed_run_leaves_the_output_file_as_it_was(tmp_path: Path, budget: str) -> None:
    out = tmp_path / "losses.npy"
    out.write_bytes(b"precious")
    np.save(tmp_path / "p.npy", np.zeros((300, 1), np.float32))  # (N, 1) against (N,): no value
    np.save(tmp_path / "t.npy", np.zeros(300, np.float32))
    argv = ["compute", "mse", str(tmp_path / "p.npy"), str(tmp_path / "t.npy")]
    result = runner.invoke(app, [*argv, "--per-sample-out", str(out), "--memory-budget", budget])
    assert result.exit_code == 1
    assert out.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_successful_run_replaces_the_output_file(tmp_path: Path) -> None:
    out = tmp_path / "losses.npy"
    out.write_bytes(b"old")
    result = runner.invoke(
        app, ["compute", "l1", "[1,2.5,4,0.5]", "[2,2.5,2,1]", "--per-sample-out", str(out)]
    )
    assert result.exit_code == 0
    assert np.load(out).tolist() == [1.0, 0.0, 2.0, 0.5]
