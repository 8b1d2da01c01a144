"""`losscli list`: the catalogue as a table, JSON and NDJSON, without importing torch."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

from losscli import losses
from losscli.cli import app, main
from losscli.render import catalogue

runner = CliRunner()


def test_list_json_has_every_loss_with_inputs_domains_and_torch_defaults() -> None:
    result = runner.invoke(app, ["list", "--format", "json"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["schema_version"] == 1
    by_name = {entry["name"]: entry for entry in record["losses"]}
    assert list(by_name) == [spec.name for spec in losses.LOSSES]
    for entry in record["losses"]:
        assert {"aliases", "torch", "inputs", "target_domain", "options"} <= set(entry)
        assert all({"name", "shape", "dtype", "gradient"} <= set(i) for i in entry["inputs"])
    ce = by_name["cross-entropy"]
    assert ce["aliases"] == ["ce", "crossentropy"]
    assert ce["torch"] == "torch.nn.CrossEntropyLoss"
    assert [i["name"] for i in ce["inputs"]] == ["input", "target"]
    assert ce["inputs"][0]["gradient"] is True and ce["inputs"][1]["gradient"] is False
    # torch's defaults (torch.nn.CrossEntropyLoss docs): ignore_index=-100, label_smoothing=0.0
    defaults = {o["name"]: o["default"] for o in ce["options"]}
    assert defaults["ignore_index"] == -100 and defaults["label_smoothing"] == 0.0
    assert by_name["hinge-embedding"]["target_domain"] == {"target": "-1 or 1"}
    assert by_name["bce"]["target_domain"] == {"target": "values in [0, 1]"}
    assert set(by_name["gaussian-nll"]["target_domain"]) == {"target", "var"}


def test_every_non_prediction_role_has_a_domain() -> None:
    for spec in losses.LOSSES:
        for argument in spec.arguments:
            if argument.role is not losses.Role.PREDICTION:
                assert argument.role in catalogue.DOMAINS, (spec.name, argument.name)


def test_list_ndjson_is_one_loss_per_line() -> None:
    result = runner.invoke(app, ["list", "--format", "ndjson"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == [s.name for s in losses.LOSSES]


def test_list_table_names_every_loss_its_torch_class_and_options() -> None:
    console = Console(width=80, no_color=True, record=True, file=io.StringIO())
    console.print(catalogue.render_table(losses.LOSSES))
    text = console.export_text()
    rows = [line.split() for line in text.splitlines()]
    for spec in losses.LOSSES:
        assert [spec.name] in [row[:1] for row in rows]  # a heading row per loss, whole
        for alias in spec.aliases:
            assert alias in text.replace(",", " ").replace(";", " ").split()
        for option in spec.options:  # a row per option: the flag, then torch's default
            assert option.flag in {row[0] for row in rows if len(row) == 2}
    assert "torch.nn.CrossEntropyLoss" in text
    assert ["--label-smoothing", "0.0"] in rows and ["--ignore-index", "-100"] in rows
    assert "-1 or 1" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_list_table_through_the_cli() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "cross-entropy" in result.stdout and "CrossEntropyLoss" in result.stdout
    assert "\x1b[" not in result.stdout


@pytest.mark.parametrize("refused", ["csv", "github"])
def test_list_refuses_per_sample_formats(refused: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["list", "--format", refused])
    captured = capsys.readouterr()
    assert done.value.code == 2
    assert captured.out == ""
    assert captured.err == (
        f"losscli: error: --format: '{refused}' is not one of table, json, ndjson\n"
    )


def test_list_help_offers_only_the_formats_it_writes() -> None:
    result = runner.invoke(app, ["list", "-h"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "<table|json|ndjson>" in result.stdout
    assert "csv" not in result.stdout and "github" not in result.stdout


_NO_TORCH = """
import json, sys
from losscli.cli import main
codes = []
for argv in {argvs!r}:
    try:
        main(argv)
        codes.append(0)
    except SystemExit as done:
        codes.append(done.code)
heavy = [m for m in ("torch", "pyarrow") if m in sys.modules]
sys.stderr.write("RESULT " + json.dumps({{"codes": codes, "heavy": heavy}}) + "\\n")
"""


def test_list_help_and_version_never_import_torch_or_pyarrow() -> None:
    argvs = [
        ["list"],
        ["list", "--format", "json"],
        ["--help"],
        ["-h"],
        ["--version"],
        ["compute", "--help"],
        ["compare", "-h"],
        ["list", "-h"],
        [],
    ]
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH.format(argvs=argvs)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    )
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["codes"] == [0] * len(argvs)
    assert result["heavy"] == []
    assert "cross-entropy" in done.stdout  # the catalogue did print
