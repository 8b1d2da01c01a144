"""The names users know (issue 13, item 1): torch's class and functional names as aliases,
suggestions that find them, ``debug [LOSS] INPUT...``, and ``compare`` without ``-l``; and
the parser's messages and help in losscli's own words (flags as flags, --format choices
each command writes, one line naming the option and what it accepts)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from losscli import inference, losses
from losscli.cli import _complete_loss, _loss_first, _resolve_loss, app, main
from losscli.errors import UsageError
from losscli.render import FORMATS

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PRED = str(SAMPLES / "regression" / "pred.npy")
TRUE = str(SAMPLES / "regression" / "true.npy")
LOGITS = str(SAMPLES / "classification" / "logits.csv")
LABELS = str(SAMPLES / "classification" / "labels.csv") + ":label"

EVERY_NAME = [(spec, name) for spec in losses.LOSSES for name in losses.names_of(spec)]


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the console entry point in-process: exit code, stdout, stderr."""
    code = 0
    try:
        main(list(args))
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- torch's names ------------------------------------------------------------------------


def test_torch_names_come_from_the_catalogue_data() -> None:
    ce = losses.get("cross-entropy")
    assert ce is not None
    assert losses.torch_names(ce) == (
        "CrossEntropyLoss",
        "nn.CrossEntropyLoss",
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        "F.cross_entropy",
        "torch.nn.functional.cross_entropy",
    )
    for spec in losses.LOSSES:
        names = losses.torch_names(spec)
        if spec.torch_class.startswith("torch.nn."):
            assert spec.torch_class in names
        if spec.function:
            assert f"torch.nn.functional.{spec.function}" in names


@pytest.mark.parametrize(
    ("name", "loss"),
    [
        ("TripletMarginWithDistanceLoss", "triplet-margin-distance"),
        ("F.triplet_margin_with_distance_loss", "triplet-margin-distance"),
        ("TripletMarginLoss", "triplet-margin"),
        ("sigmoid_focal_loss", "focal"),
        ("torchvision.ops.sigmoid_focal_loss", "focal"),
        ("BCEWithLogitsLoss", "bce-logits"),
        ("binary_cross_entropy", "bce"),
        ("kl_div", "kl-div"),
        ("nn.NLLLoss", "nll"),
    ],
)
def test_the_ambiguous_names_find_their_own_loss(name: str, loss: str) -> None:
    found = losses.get(name)
    assert found is not None and found.name == loss


def test_dice_has_no_torch_name() -> None:
    dice = losses.get("dice")
    assert dice is not None and losses.torch_names(dice) == ()


def test_no_name_answers_for_two_losses() -> None:
    # _by_key refuses a clash at import; every accepted name leads back to its own loss
    for spec, name in EVERY_NAME:
        assert losses.get(name) is spec, name


@pytest.mark.parametrize(("spec", "name"), EVERY_NAME, ids=[n for _, n in EVERY_NAME])
def test_every_name_resolves_in_every_command(spec: losses.LossSpec, name: str) -> None:
    # compute, debug -l and compare -l resolve through _resolve_loss
    assert _resolve_loss(name) is spec
    # debug's positional form takes it as the loss when no file has that name
    assert _loss_first([name, "p.npy", "t.npy"], None) == (name, ["p.npy", "t.npy"])
    # shell completion offers it from its first letters, in any case
    assert name in _complete_loss(name[:3].upper())
    # explain shows the loss, with its names
    result = runner.invoke(app, ["explain", name, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["name"] == spec.name
    assert name in (record["name"], *record["aliases"], *record["torch_names"])


def test_torch_names_compute_the_same_value_as_the_catalogue_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = float(F.cross_entropy(torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0])))
    for name in ("cross-entropy", "CrossEntropyLoss", "nn.CrossEntropyLoss", "F.cross_entropy"):
        code, out, err = _main(capsys, "compute", name, "[[2,0.5,-1]]", "[0]", "-f", "json")
        assert (code, err) == (0, "")
        record = json.loads(out)
        assert record["loss"] == "cross-entropy"
        assert record["value"] == pytest.approx(expected, rel=1e-6)


def test_compare_takes_torch_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "compare", PRED, TRUE, "-l", "MSELoss", "-l", "F.l1_loss")
    assert code == 0
    assert re.search(r"^ mse ", out, flags=re.M) and re.search(r"^ l1 ", out, flags=re.M)


def test_explain_lists_every_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "explain", "nn.CrossEntropyLoss", "--no-color")
    assert code == 0
    flat = " ".join(out.split())
    assert "cross-entropy (also ce, crossentropy)" in flat
    for name in ("CrossEntropyLoss", "nn.CrossEntropyLoss", "F.cross_entropy", "cross_entropy"):
        assert name in flat


def test_list_shows_the_torch_class(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "list", "--format", "json")
    assert code == 0
    torch_of = {entry["name"]: entry["torch"] for entry in json.loads(out)["losses"]}
    assert torch_of["cross-entropy"] == "torch.nn.CrossEntropyLoss"


# --- suggestions --------------------------------------------------------------------------

# what people type, and the loss they mean
MISSPELLINGS = [
    ("mse_los", "mse"),
    ("MSELos", "mse"),
    ("MSE_Loss", "mse"),
    ("msee", "mse"),
    ("nn.MSE", "mse"),
    ("focal-loss", "focal"),
    ("focal_loss", "focal"),
    ("sigmoid_focal", "focal"),
    ("crossentorpy", "cross-entropy"),
    ("CrossEntropyLos", "cross-entropy"),
    ("cross_entropy_loss", "cross-entropy"),
    ("F.cross_entopy", "cross-entropy"),
    ("softmax_cross_entropy", "cross-entropy"),
    ("BCEWithLogits", "bce-logits"),
    ("binary_cross_entropy_logits", "bce-logits"),
    ("BCELos", "bce"),
    ("binary_crossentropy", "bce"),
    ("NLLLos", "nll"),
    ("nll_los", "nll"),
    ("huberloss_", "huber"),
    ("smoothl1", "smooth-l1"),
    ("smoth_l1", "smooth-l1"),
    ("l1los", "l1"),
    ("KLDivergence", "kl-div"),
    ("kld", "kl-div"),
    ("poisson_loss", "poisson-nll"),
    ("gaussiannll", "gaussian-nll"),
    ("margin_rank", "margin-ranking"),
    ("hingeloss", "hinge-embedding"),
    ("cosine_embeding", "cosine-embedding"),
    ("mutli_margin", "multi-margin"),
    ("TripletMarginWithDistance", "triplet-margin-distance"),
    ("ctcloss_", "ctc"),
    ("dice-loss", "dice"),
]


@pytest.mark.parametrize(("typed", "meant"), MISSPELLINGS)
def test_a_misspelling_suggests_the_loss_meant(typed: str, meant: str) -> None:
    assert losses.get(typed) is None or losses.get(typed).name == meant  # type: ignore[union-attr]
    assert losses.suggest(typed) == meant


def test_mse_loss_is_a_name_and_nonsense_gets_no_suggestion() -> None:
    mse = losses.get("mse_loss")
    assert mse is not None and mse.name == "mse"
    assert losses.suggest("zzzz") is None
    assert losses.suggest("") is None


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["compute", "MSELos", "[1]", "[1]"],
            "losscli: error: unknown loss 'MSELos'; did you mean 'mse'? "
            "run 'losscli list' for the catalogue\n",
        ),
        (
            ["compare", "[1]", "[1]", "-l", "focal-loss"],
            "losscli: error: unknown loss 'focal-loss'; did you mean 'focal'? "
            "run 'losscli list' for the catalogue\n",
        ),
        (
            ["debug", "[1]", "[1]", "--loss", "mse_los"],
            "losscli: error: unknown loss 'mse_los'; did you mean 'mse'? "
            "run 'losscli list' for the catalogue\n",
        ),
        (
            ["explain", "crossentorpy"],
            "losscli: error: 'crossentorpy' is neither a loss nor a finding; did you mean "
            "'cross-entropy'? run 'losscli explain' for the list\n",
        ),
        (
            ["explain", "focal-loss"],
            "losscli: error: 'focal-loss' is neither a loss nor a finding; did you mean "
            "'focal'? run 'losscli explain' for the list\n",
        ),
    ],
)
def test_every_command_suggests_the_loss(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(capsys, *argv) == (2, "", line)


def test_explain_still_suggests_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, "explain", "probabilites-as-logits")
    assert (code, out) == (2, "")
    assert "did you mean 'probabilities-as-logits'?" in err


# --- debug [LOSS] INPUT... ----------------------------------------------------------------


def _value(out: str) -> float:
    return float(json.loads(out)["value"])


@pytest.mark.parametrize("loss", ["mse", "MSELoss", "F.mse_loss", "l2"])
def test_debug_takes_the_loss_first(loss: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = float(F.mse_loss(torch.from_numpy(np.load(PRED)), torch.from_numpy(np.load(TRUE))))
    code, out, err = _main(capsys, "debug", loss, PRED, TRUE, "-f", "json")
    assert (code, err) == (0, "")
    record = json.loads(out)
    assert record["loss"] == "mse" and "recommended" not in record
    assert _value(out) == pytest.approx(expected, rel=1e-6)
    same = _main(capsys, "debug", PRED, TRUE, "--loss", "mse", "-f", "json")
    assert json.loads(same[1]) == record


def test_debug_loss_first_and_the_same_loss_option_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _main(capsys, "debug", "mse", PRED, TRUE, "--loss", "MSELoss", "-f", "json")
    assert code == 0 and json.loads(out)["loss"] == "mse"


def test_debug_two_different_losses_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(capsys, "debug", "mse", PRED, TRUE, "--loss", "l1") == (
        2,
        "",
        "losscli: error: two losses given: 'mse' and --loss 'l1'; give one "
        "(losscli debug LOSS INPUT...)\n",
    )


def test_an_existing_file_named_like_a_loss_is_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "t.npy", np.array([1.0, 2.0, 4.0]))
    Path("mse").write_bytes((tmp_path / "t.npy").read_bytes())  # a file named like a loss
    assert os.path.exists("mse")
    # read as the first input (a file with no suffix losscli reads), not taken as the loss
    code, out, err = _main(capsys, "debug", "mse", "t.npy", "--loss", "l1")
    assert (code, out) == (2, "")
    assert err.startswith("losscli: error: mse has an unknown file type")
    # the same loss name with no such file is the loss
    Path("mse").unlink()
    code, out, err = _main(capsys, "debug", "mse", "t.npy", "t.npy", "-f", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["loss"] == "mse"


def test_debug_with_a_loss_and_no_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(capsys, "debug", "CrossEntropyLoss") == (
        2,
        "",
        "losscli: error: 'CrossEntropyLoss' is a loss; give the inputs after it: "
        "losscli debug CrossEntropyLoss INPUT...\n",
    )


def test_a_misspelled_loss_first_is_not_read_as_a_missing_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _main(capsys, "debug", "MSELos", PRED, TRUE)
    assert (code, out) == (2, "")
    assert err == (
        "losscli: error: unknown loss 'MSELos'; did you mean 'mse'? "
        "run 'losscli list' for the catalogue\n"
    )
    # a missing data file is still named as one, with a suffix or without
    for missing in ("pred.npy", "logits", "labels", "target"):
        code, out, err = _main(capsys, "debug", missing, TRUE)
        assert (code, out) == (2, "")
        assert err.startswith(f"losscli: error: {missing}"), err


def test_debug_help_shows_the_loss_first(capsys: pytest.CaptureFixture[str]) -> None:
    result = runner.invoke(app, ["debug", "-h"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "[LOSS] INPUT" in result.stdout
    assert "losscli debug mse pred.npy true.npy" in result.stdout


def test_the_findings_name_debug_with_the_loss_first() -> None:
    from losscli.findings import CATALOGUE
    from losscli.render import explain as render_explain

    texts = [doc.instead for doc in CATALOGUE.values()]
    texts += [render_explain.loss_markdown(spec) for spec in losses.LOSSES]
    assert not [t for t in texts if "debug --loss" in t]
    assert any("`losscli debug mse pred.npy true.npy`" in t for t in texts)


# --- compare without -l -------------------------------------------------------------------


def _softmax_log(logits: np.ndarray) -> np.ndarray:
    return np.asarray(F.log_softmax(torch.from_numpy(logits), dim=1))


RNG = np.random.default_rng(13)
_RATES = np.exp(RNG.normal(size=200))
TASK_CASES = {
    "regression": ([RNG.normal(size=50), RNG.normal(size=50)], ["mse", "l1", "huber", "smooth-l1"]),
    "count": (
        [np.log(_RATES), RNG.poisson(_RATES).astype(float)],
        ["poisson-nll", "l1", "mse", "huber", "smooth-l1"],
    ),
    "binary": (
        [RNG.normal(size=60) * 3, (RNG.uniform(size=60) > 0.5).astype(float)],
        ["bce-logits", "focal", "dice"],
    ),
    "multiclass": (
        [RNG.normal(size=(60, 4)) * 2, RNG.integers(0, 4, 60)],
        ["cross-entropy", "multi-margin"],
    ),
    "multiclass-segmentation": (
        [RNG.normal(size=(4, 3, 5, 5)), RNG.integers(0, 3, (4, 5, 5))],
        ["cross-entropy"],
    ),
    "multiclass-log-probabilities": (
        [_softmax_log(RNG.normal(size=(60, 4)) * 2), RNG.integers(0, 4, 60)],
        ["nll"],
    ),
    "multilabel": (
        [RNG.normal(size=(60, 5)) * 2, (RNG.uniform(size=(60, 5)) > 0.5).astype(float)],
        ["bce-logits", "multilabel-soft-margin", "focal"],
    ),
    "binary-signs": (
        [RNG.normal(size=60) * 2, np.where(RNG.uniform(size=60) > 0.5, 1.0, -1.0)],
        ["soft-margin"],
    ),
    "metric": (
        [RNG.normal(size=(20, 8)) for _ in range(3)],
        ["triplet-margin", "triplet-margin-distance"],
    ),
}


@pytest.mark.parametrize("case", TASK_CASES)
def test_the_losses_that_fit_each_task(case: str) -> None:
    arrays, expected = TASK_CASES[case]
    recommendation = inference.infer(arrays, [f"in{i}" for i in range(len(arrays))])
    assert recommendation is not None
    assert recommendation.task == case.split("-")[0] or case == "binary-signs"
    fitting = inference.fitting_losses(recommendation, arrays)
    assert fitting == expected
    for name in fitting:  # data, not names: each serves the task and takes these inputs
        spec = losses.get(name)
        assert spec is not None and recommendation.task in spec.tasks
        assert len(spec.arguments) == len(arrays)


def test_every_loss_serves_a_task_inference_names() -> None:
    tasks = {
        "regression",
        "count",
        "binary",
        "multiclass",
        "multilabel",
        "ranking",
        "similarity",
        "metric",
        "sequence",
    }
    for spec in losses.LOSSES:
        assert spec.tasks and set(spec.tasks) <= tasks, spec.name


def test_compare_without_l_compares_the_regression_losses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pred, true = torch.from_numpy(np.load(PRED)), torch.from_numpy(np.load(TRUE))
    expected = {
        "mse": float(F.mse_loss(pred, true)),
        "l1": float(F.l1_loss(pred, true)),
        "huber": float(F.huber_loss(pred, true)),
        "smooth-l1": float(F.smooth_l1_loss(pred, true)),
    }
    code, out, err = _main(capsys, "compare", PRED, TRUE, "-f", "json")
    assert (code, err) == (0, "")
    record = json.loads(out)
    assert record["task"] == "regression"
    assert [entry["loss"] for entry in record["losses"]] == list(expected)
    for entry in record["losses"]:
        assert entry["value"] == pytest.approx(expected[entry["loss"]], rel=1e-6)


def test_compare_with_l_has_no_task(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "compare", PRED, TRUE, "-l", "mse", "-f", "json")
    assert code == 0 and json.loads(out)["task"] is None
    code, out, _ = _main(capsys, "compare", PRED, TRUE, "-l", "mse", "-f", "ndjson")
    assert code == 0 and "task" not in json.loads(out)


def test_compare_without_l_says_the_task_in_every_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = "task: multiclass, inferred from the data; -l LOSS chooses other losses"
    code, out, err = _main(capsys, "compare", LOGITS, LABELS, "--no-color")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == line
    assert re.search(r"^ cross-entropy ", out, flags=re.M)
    assert re.search(r"^ multi-margin ", out, flags=re.M)
    code, out, err = _main(capsys, "compare", LOGITS, LABELS, "-f", "ndjson")
    assert (code, err) == (0, "")
    lines = [json.loads(text) for text in out.splitlines()]
    assert [(r["loss"], r["task"]) for r in lines] == [
        ("cross-entropy", "multiclass"),
        ("multi-margin", "multiclass"),
    ]
    for output_format in ("csv", "github"):
        code, out, err = _main(capsys, "compare", LOGITS, LABELS, "-f", output_format)
        assert code == 0 and out
        assert err == f"losscli: {line}\n"


@pytest.mark.parametrize(
    ("inputs", "line"),
    [
        (
            ["[[1,2],[3,4]]", "[[1,2,3]]"],
            "losscli: error: cannot tell the task from inline (2, 2) and inline (1, 3); pass "
            "the losses to compare: -l LOSS (repeat: -l mse -l l1) (losscli list shows the "
            "catalogue)\n",
        ),
        (
            [PRED],
            f"losscli: error: compare without -l needs the targets too ({PRED} alone reads "
            "as regression); give them, or pass -l LOSS (repeat: -l mse -l l1)\n",
        ),
    ],
)
def test_compare_without_a_task_is_one_line_exit_2(
    inputs: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(capsys, "compare", *inputs) == (2, "", line)


# --- flags, --format choices, messages ----------------------------------------------------


@pytest.mark.parametrize(
    "command", [[], ["compute"], ["debug"], ["compare"], ["list"], ["explain"]]
)
@pytest.mark.parametrize("columns", ["80", "120"])
def test_help_shows_flags_as_flags(command: list[str], columns: str) -> None:
    result = runner.invoke(app, [*command, "-h"], env={"COLUMNS": columns})
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    assert re.search(r"--help\s+-h\s+Show this message", result.stdout)


def test_report_commands_offer_every_renderer() -> None:
    for command in ("compute", "debug", "compare"):
        result = runner.invoke(app, [command, "-h"], env={"COLUMNS": "200"})
        assert f"<{'|'.join(FORMATS)}>" in result.stdout, command


@pytest.mark.parametrize(
    ("option", "line"),
    [
        (
            ["--format", "jsn"],
            "--format: 'jsn' is not one of table, json, ndjson, csv, github; did you mean 'json'?",
        ),
        (["--top", "-1"], "--top must be a whole number >= 0, got -1"),
        (["--top", "many"], "--top must be a whole number >= 0, got 'many'"),
        (
            ["--fail-on", "warn"],
            "--fail-on: 'warn' is not one of error, warning, info, never; did you mean 'warning'?",
        ),
        (["--ignore-index", "x"], "--ignore-index must be a whole number, got 'x'"),
        (["--max-loss", "abc"], "--max-loss must be a number, got 'abc'"),
        (["--max-loss", "nan"], "--max-loss: nan turns the gate off; give a finite number"),
        (["--delta", "big"], "--delta must be a number, got 'big'"),
        (
            ["--label-smoothing", "-0.1"],
            "--label-smoothing for cross-entropy must be between 0 and 1, got -0.1",
        ),
    ],
)
def test_a_refused_value_is_one_line_in_losscli_words(
    option: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _main(capsys, "compute", "ce", "[[1,2]]", "[0]", *option)
    assert (code, out) == (2, "")
    assert err == f"losscli: error: {line}\n"
    assert "Input should" not in err and "Value error" not in err


def test_other_parser_errors_keep_their_words(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _main(capsys, "compute", "ce")
    assert code == 2 and "Missing argument 'INPUT'" in err
    code, _, err = _main(capsys, "compute", "ce", "[1]", "[1]", "--top")
    assert code == 2 and "requires an argument" in err


def test_unknown_loss_still_raises_usage_error() -> None:
    with pytest.raises(UsageError, match="did you mean 'cross-entropy'"):
        _resolve_loss("CrossEntropyLos")
