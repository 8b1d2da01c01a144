"""`losscli explain`: every loss and every finding, rendered from the catalogue records."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from losscli import losses
from losscli.cli import app, main
from losscli.findings import CATALOGUE, FindingDoc
from losscli.losses import LossSpec, PerSampleRule
from losscli.render import explain as render_explain

runner = CliRunner()
# wide and colourless, so long lines (formulas) are not wrapped
WIDE = {"COLUMNS": "400", "NO_COLOR": "1", "LOSSCLI_FORMAT": ""}


def _flat(text: str) -> str:
    """Text as a reader sees it: Markdown code marks gone, whitespace collapsed."""
    return " ".join(text.replace("`", "").split())


def _explain(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["explain", *args], env=WIDE)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("spec", losses.LOSSES, ids=[s.name for s in losses.LOSSES])
def test_explain_every_loss(spec: LossSpec) -> None:
    code, out, err = _explain(spec.name)
    assert code == 0, err
    flat = _flat(out)
    assert _flat(spec.formula) in flat
    assert spec.torch_class in flat
    for heading in ("Formula", "Inputs", "Options", "Per-sample losses", "Findings", "Example"):
        assert heading in out
    for argument in spec.arguments:
        assert argument.name in flat
    for option in spec.options:
        assert option.flag in flat
    for pitfall in spec.pitfalls:
        assert _flat(pitfall) in flat


@pytest.mark.parametrize("spec", losses.LOSSES, ids=[s.name for s in losses.LOSSES])
def test_explain_every_loss_as_json(spec: LossSpec) -> None:
    code, out, err = _explain(spec.name, "--format", "json")
    assert code == 0, err
    record = json.loads(out)
    assert record["kind"] == "loss"
    assert record["name"] == spec.name
    assert record["formula"] == spec.formula
    assert [i["name"] for i in record["inputs"]] == [a.name for a in spec.arguments]
    assert {o["name"]: o["default"] for o in record["options"]} == {
        o.name: o.default for o in spec.options
    }
    assert record["per_sample_rule"]["rule"] == spec.per_sample_rule.value
    # every finding listed is one the catalogue says applies to this loss
    for name in record["findings"]:
        assert spec.name in render_explain.applies_to(name)


@pytest.mark.parametrize("doc", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_explain_every_finding(doc: FindingDoc) -> None:
    code, out, err = _explain(doc.name)
    assert code == 0, err
    positions = [
        out.index(heading) for heading in ("What it checks", "Why it matters", "Example", "Instead")
    ]
    assert positions == sorted(positions)  # the four sections, in ruff's order
    flat = _flat(out)
    for section in (doc.what, doc.why, doc.example, doc.instead):
        assert _flat(section) in flat


@pytest.mark.parametrize("doc", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_explain_every_finding_as_json(doc: FindingDoc) -> None:
    code, out, err = _explain(doc.name, "-f", "json")
    assert code == 0, err
    record = json.loads(out)
    assert record["kind"] == "finding"
    assert {k: record[k] for k in ("name", "severity", "what", "why", "example", "instead")} == {
        "name": doc.name,
        "severity": doc.severity,
        "what": doc.what,
        "why": doc.why,
        "example": doc.example,
        "instead": doc.instead,
    }
    for name in record["losses"]:
        assert losses.get(name) is not None


def test_alias_explains_the_same_loss() -> None:
    assert _explain("ce")[1] == _explain("cross-entropy")[1]
    assert _explain("MAE")[1] == _explain("l1")[1]


def test_finding_name_with_underscores_is_forgiven() -> None:
    code, out, _ = _explain("silent_broadcast")
    assert code == 0
    assert "Why it matters" in out


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [
        ("silent-brodcast", "silent-broadcast"),  # a finding, misspelled
        ("cross-entorpy", "cross-entropy"),  # a loss, misspelled
        ("broadcast", "silent-broadcast"),  # a word of a finding name
    ],
)
def test_unknown_name_exits_2_with_did_you_mean(typed: str, suggestion: str) -> None:
    code, out, err = _explain(typed)
    assert code == 2
    assert out == ""
    assert f"did you mean '{suggestion}'" in err
    assert err.strip().count("\n") == 0  # one line, no traceback


def test_unknown_name_without_a_close_match() -> None:
    code, out, err = _explain("zzzzzz")
    assert code == 2
    assert out == ""
    assert "did you mean" not in err
    assert "losscli explain" in err


def test_explain_without_a_name_lists_everything() -> None:
    code, out, _ = _explain()
    assert code == 0
    for spec in losses.LOSSES:
        assert spec.name in out
    for name in CATALOGUE:
        assert name in out
    record = json.loads(_explain("-f", "json")[1])
    assert [f["name"] for f in record["findings"]] == list(CATALOGUE)
    assert [entry["name"] for entry in record["losses"]] == [s.name for s in losses.LOSSES]


@pytest.mark.parametrize("name", ["cross-entropy", "ce", "probabilities-as-logits"])
def test_explain_ndjson_is_the_json_record_on_one_line(name: str) -> None:
    code, out, err = _explain(name, "--format", "ndjson")
    assert (code, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    assert json.loads(out) == json.loads(_explain(name, "--format", "json")[1])


def test_explain_ndjson_without_a_name_is_one_line_per_loss_and_finding() -> None:
    code, out, err = _explain("--format", "ndjson")
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    record = json.loads(_explain("--format", "json")[1])
    assert [(e["kind"], e["name"]) for e in lines] == [
        *(("loss", entry["name"]) for entry in record["losses"]),
        *(("finding", entry["name"]) for entry in record["findings"]),
    ]
    assert [{k: v for k, v in e.items() if k != "kind"} for e in lines] == [
        *record["losses"],
        *record["findings"],
    ]


@pytest.mark.parametrize("refused", ["csv", "github"])
def test_per_sample_formats_are_refused(refused: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["explain", "mse", "--format", refused])
    captured = capsys.readouterr()
    assert done.value.code == 2
    assert captured.out == ""
    assert (
        captured.err == f"losscli: error: --format: '{refused}' is not one of table, json, ndjson\n"
    )


def test_help_offers_only_table_json_and_ndjson() -> None:
    code, out, _ = _explain("-h")
    assert code == 0
    assert "[table|json|ndjson]" in out.replace("<", "[").replace(">", "]")
    assert "csv" not in out and "github" not in out


@pytest.mark.parametrize("spec", losses.LOSSES, ids=[s.name for s in losses.LOSSES])
def test_per_sample_rule_text_names_the_rule(spec: LossSpec) -> None:
    text = render_explain.per_sample_rule(spec)
    expected = {
        PerSampleRule.MEAN: "value = mean(per_sample)",
        PerSampleRule.WEIGHTED: "summed weight of the non-ignored targets",
        PerSampleRule.BATCHMEAN: "value = mean(per_sample)",
        PerSampleRule.CTC: "max(target_length_i, 1)",
    }[spec.per_sample_rule]
    assert expected in text
    assert "--reduction sum" in text
    reduction = spec.option("reduction")
    offers_batchmean = reduction is not None and "batchmean" in reduction.choices
    assert ("value = sum(per_sample) / N" in text) == offers_batchmean


@pytest.mark.parametrize("args", [["cross-entropy"], ["probabilities-as-logits"], []])
def test_explain_imports_neither_torch_nor_pyarrow(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from losscli.cli import main\n"
        "try:\n"
        f"    main(['explain', *{args!r}, '--format', 'json'])\n"
        "except SystemExit as done:\n"
        "    assert done.code in (0, None), done.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pyarrow'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    assert json.loads(result.stdout)  # the explanation itself came out


def test_documented_value_rule_recovers_the_value_for_weighted_cross_entropy() -> None:
    # explain says: value = sum(per_sample) / denominator, the summed weight of the
    # non-ignored targets; check it on torch's own numbers
    result = runner.invoke(
        app,
        [
            "compute",
            "cross-entropy",
            "[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -1.0, 0.0], [0.0, 3.0, 1.0]]",
            "[0, 2, -100, 1]",
            "--weight",
            "[1.0, 2.0, 0.5]",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    # weights of the non-ignored targets 0, 2, 1: 1.0 + 0.5 + 2.0
    assert record["per_sample_rule"]["denominator"] == pytest.approx(3.5)
    assert sum(record["per_sample"]) / 3.5 == pytest.approx(record["value"], rel=1e-6)


def test_explain_markdown_is_plain_text_for_docs() -> None:
    body = render_explain.finding_markdown(CATALOGUE["silent-broadcast"])
    assert re.search(r"^## What it checks$", body, flags=re.MULTILINE)
    assert "Applies to:" in body


@pytest.mark.parametrize(
    ("loss", "words"),
    [
        ("cross-entropy", "applies log_softmax over the class dimension itself"),
        ("bce-logits", "applies a sigmoid itself"),
        ("bce", "probabilities in [0, 1]"),
        ("nll", "log-probabilities (log_softmax output"),
        ("kl-div", "log-probabilities (log_softmax output"),
    ],
)
def test_explain_says_what_the_prediction_must_hold(loss: str, words: str) -> None:
    code, out, _ = _explain(loss)
    assert code == 0
    assert words in _flat(out)


def test_explain_mse_has_no_prediction_note() -> None:
    # near miss: mse takes any real prediction, so there is nothing to warn about
    _, out, _ = _explain("mse")
    assert "applies" not in _flat(out).split("Options")[0]
    assert json.loads(_explain("mse", "-f", "json")[1])["prediction"] == ""


def test_documented_batchmean_rule_recovers_the_kl_value() -> None:
    # explain kl-div: with batchmean, value = sum(per_sample) / N; check on torch's numbers
    log_p = "[[-1.2, -0.9, -1.2], [-0.5, -1.5, -1.6], [-2.0, -0.4, -1.5]]"
    q = "[[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.7, 0.2]]"
    result = runner.invoke(
        app,
        ["compute", "kl-div", log_p, q, "--reduction", "batchmean", "--format", "json"],
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert len(record["per_sample"]) == 3
    assert sum(record["per_sample"]) / 3 == pytest.approx(record["value"], rel=1e-6)


def test_a_finding_lists_the_kinds_of_fix_losscli_tries() -> None:
    from losscli.findings import CATALOGUE
    from losscli.render.explain import finding_markdown, finding_record

    documented = [doc for doc in CATALOGUE.values() if doc.remedies]
    assert len(documented) >= 25
    for doc in documented:
        markdown = finding_markdown(doc)
        assert "## Fixes losscli tries" in markdown
        assert all(remedy in markdown for remedy in doc.remedies)
        assert finding_record(doc)["remedies"] == list(doc.remedies)
    # near miss: a finding with nothing concrete to try has no such section
    assert "Fixes losscli tries" not in finding_markdown(CATALOGUE["non-finite-input"])
