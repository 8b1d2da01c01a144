"""Verified fixes: the command as data, the keep/drop rules, and swapped inputs.

Each swapped-inputs case is a mistake as it happens in training code (the scikit-learn order
``metric(y_true, y_pred)`` carried over to torch), run through ``losscli debug``;
:func:`debug_runner.debug` runs every fix's command and checks it prints what it announced.
The near misses are inputs whose other order also computes, but which the data does not
point to: symmetric losses, a single value, a variance head.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import Outcome, debug, run_json
from evaluation import in_memory

from losscli import fixes, losses, options, pipeline
from losscli.findings import Finding, Remedy, Severity
from losscli.invocation import Invocation

RNG = np.random.default_rng(20261130)


def _logits(samples: int, classes: int, labels: np.ndarray) -> np.ndarray:
    logits = RNG.normal(size=(samples, classes)).astype(np.float32)
    logits[np.arange(samples), labels] += 2.0
    return logits


# --- the command as data --------------------------------------------------------------------


def test_command_writes_every_value_changing_option_and_quotes_for_the_shell() -> None:
    invocation = Invocation(
        loss="poisson-nll",
        arguments=("my preds.npy", "-"),
        options=(("log_input", False), ("eps", 1e-08), ("reduction", "sum")),
        maps=("target = target.float()",),
        dtype="float64",
        strict=True,
        stdin_format="npy",
        memory_budget="64MB",
    )
    words = shlex.split(invocation.command())
    assert words == [
        "losscli",
        "compute",
        "poisson-nll",
        "my preds.npy",
        "-",
        "--no-log-input",
        "--eps",
        "1e-08",
        "--reduction",
        "sum",
        "--dtype",
        "float64",
        "--strict",
        "--stdin-format",
        "npy",
        "--memory-budget",
        "64MB",
        "--map",
        "target = target.float()",
    ]


def test_defaults_are_not_written() -> None:
    plain = Invocation("mse", ("p.npy", "t.npy"), stdin_format="npy")  # no '-': not needed
    assert plain.command() == "losscli compute mse p.npy t.npy"


def test_reordering_moves_each_map_with_its_input() -> None:
    invocation = Invocation(
        "cross-entropy", ("labels.npy", "logits.npy"), maps=("input = input - 1",)
    )
    swapped = invocation.applying(Remedy(order=("target", "input")))
    assert swapped.arguments == ("logits.npy", "labels.npy")
    assert swapped.maps == ("target = target - 1",)  # the labels' map follows the labels


def test_a_remedy_map_reads_the_input_as_the_users_map_leaves_it() -> None:
    invocation = Invocation("nll", ("p.npy", "y.npy"), maps=("input = input.softmax(1)",))
    fixed = invocation.applying(Remedy(maps=("input = input.log()",)))
    assert fixed.maps == ("input = input.softmax(1).log()",)


def test_another_loss_keeps_only_the_options_it_takes() -> None:
    invocation = Invocation(
        "bce", ("p.npy", "y.npy"), options=(("reduction", "sum"), ("weight", "[1,2]"))
    )
    changed = invocation.applying(
        Remedy(loss="bce-logits", options=(("pos_weight", "[3.0]"), ("weight", None)))
    )
    assert changed.loss == "bce-logits"
    assert changed.options == (("reduction", "sum"), ("pos_weight", "[3.0]"))


# --- keep / drop ----------------------------------------------------------------------------


def _verified_with(
    loss: str, arrays: list[np.ndarray], remedies: tuple[Remedy, ...]
) -> tuple[Finding, ...]:
    """Evaluate, give the first error finding ``remedies`` (and drop the others), verify."""
    spec = losses.get(loss)
    assert spec is not None
    loaded = in_memory(loss, arrays)
    report = pipeline.evaluate(spec, loaded, options.resolve(spec, {}))
    first = next(f for f in report.findings if f.severity is Severity.ERROR)
    report = replace(report, findings=(replace(first, remedies=remedies),))
    invocation = Invocation(loss, tuple(f"{a.name}.npy" for a in spec.arguments))
    by_text = {f"{name}.npy": array for name, array in loaded.items()}
    return fixes.verify(report, invocation, by_text, 1 << 30).findings


def test_an_ignore_index_standing_for_a_class_is_dropped() -> None:
    # -1/+1 labels to a 2-class head: ignoring -1 drops every negative sample
    labels = np.where(RNG.random(64) < 0.5, -1, 1)
    logits = _logits(64, 2, (labels > 0).astype(int))
    found = _verified_with(
        "cross-entropy",
        [logits, labels],
        (Remedy(options=(("ignore_index", -1),)), Remedy(maps=("target = (target > 0).long()",))),
    )
    kept = [fix.code for item in found for fix in item.fixes]
    assert kept == ["target = (target > 0).long()"]


def test_an_ignore_index_for_unlabelled_samples_is_kept() -> None:
    # near miss: every class 0..2 is present; -1 marks samples without a label
    labels = RNG.integers(0, 3, 48)
    logits = _logits(48, 3, labels)
    labels[::3] = -1  # a third unlabelled
    found = _verified_with(
        "cross-entropy", [logits, labels], (Remedy(options=(("ignore_index", -1),)),)
    )
    (fix,) = found[0].fixes
    assert fix.verified is not None and fix.verified.findings == ()
    kept = labels != -1
    expected = F.cross_entropy(torch.from_numpy(logits[kept]), torch.from_numpy(labels[kept]))
    assert fix.verified.value == pytest.approx(float(expected), rel=1e-6)


def test_a_remedy_that_leaves_its_finding_is_dropped() -> None:
    labels = RNG.integers(1, 4, 32)  # 1-based labels for 3 classes
    logits = _logits(32, 3, labels - 1)
    found = _verified_with(
        "cross-entropy", [logits, labels], (Remedy(maps=("target = target + 1",)),)
    )
    assert found[0].fixes == ()


def test_a_remedy_that_adds_an_error_is_dropped() -> None:
    labels = RNG.integers(1, 4, 32)
    logits = _logits(32, 3, labels - 1)
    # clears the range error by making the labels fractional: a new error
    found = _verified_with(
        "cross-entropy", [logits, labels], (Remedy(maps=("target = target / 4",)),)
    )
    assert found[0].fixes == ()


def test_an_outside_remedy_is_shown_unverified() -> None:
    labels = RNG.integers(0, 5, 32)
    logits = _logits(32, 3, labels % 3)
    found = _verified_with(
        "cross-entropy",
        [logits, labels],
        (Remedy(outside=True, code="nn.Linear(hidden, 5)"),),
    )
    (fix,) = found[0].fixes
    assert fix.command is None and fix.verified is None and fix.code == "nn.Linear(hidden, 5)"


# --- swapped-inputs: fires, with the reordered command verified -----------------------------


def _swapped(outcome: Outcome) -> dict[str, Any]:
    found = outcome.named("swapped-inputs")
    assert found["severity"] == "error"
    (fix,) = found["fixes"]
    assert fix["verified"]["findings"] == []
    return fix


def test_cross_entropy_labels_then_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = RNG.integers(0, 10, 32)
    logits = _logits(32, 10, labels)
    outcome = debug(tmp_path, capsys, "cross-entropy", labels, logits)
    fix = _swapped(outcome)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    assert fix["verified"]["value"] == float(expected)
    assert fix["command"].endswith("arg1.npy " + str(tmp_path / "arg0.npy"))
    assert fix["code"] == "F.cross_entropy(arg1, arg0)"


def test_bce_logits_targets_then_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = (RNG.random(64) < 0.3).astype(np.float32)
    scores = (RNG.normal(size=64) + 2 * targets - 1).astype(np.float32)
    fix = _swapped(debug(tmp_path, capsys, "bce-logits", targets, scores))
    expected = F.binary_cross_entropy_with_logits(
        torch.from_numpy(scores), torch.from_numpy(targets)
    )
    assert fix["verified"]["value"] == float(expected)


def test_nll_labels_then_log_probabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = RNG.integers(0, 4, 40)
    log_probs = F.log_softmax(torch.from_numpy(_logits(40, 4, labels)), 1).numpy()
    fix = _swapped(debug(tmp_path, capsys, "nll", labels, log_probs))
    assert fix["verified"]["value"] == float(
        F.nll_loss(torch.from_numpy(log_probs), torch.from_numpy(labels))
    )


def test_kl_div_teacher_then_student(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    teacher = F.softmax(torch.from_numpy(RNG.normal(size=(16, 5)).astype(np.float32)), 1)
    student = F.log_softmax(torch.from_numpy(RNG.normal(size=(16, 5)).astype(np.float32)), 1)
    outcome = debug(
        tmp_path,
        capsys,
        "kl-div",
        teacher.numpy(),
        student.numpy(),
        options=("--reduction", "batchmean"),
    )
    fix = _swapped(outcome)
    assert fix["verified"]["value"] == float(F.kl_div(student, teacher, reduction="batchmean"))
    assert "--reduction batchmean" in fix["command"]  # the user's options are kept


def test_hinge_embedding_labels_then_distances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.where(RNG.random(32) < 0.5, -1.0, 1.0).astype(np.float32)
    distances = np.abs(RNG.normal(size=32)).astype(np.float32) + (labels < 0)
    fix = _swapped(debug(tmp_path, capsys, "hinge-embedding", labels, distances))
    expected = F.hinge_embedding_loss(torch.from_numpy(distances), torch.from_numpy(labels))
    assert fix["verified"]["value"] == float(expected)


def test_margin_ranking_labels_first_keeps_the_pair_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = np.where(RNG.random(32) < 0.5, -1.0, 1.0).astype(np.float32)
    x1 = RNG.normal(size=32).astype(np.float32)
    x2 = (x1 - labels * RNG.random(32)).astype(np.float32)
    fix = _swapped(debug(tmp_path, capsys, "margin-ranking", labels, x1, x2))
    # the closest order: x1, x2 as given, the labels last (not x2, x1)
    expected = F.margin_ranking_loss(
        torch.from_numpy(x1), torch.from_numpy(x2), torch.from_numpy(labels)
    )
    assert fix["verified"]["value"] == float(expected)


def test_ctc_lengths_exchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_probs = F.log_softmax(torch.from_numpy(RNG.normal(size=(12, 2, 5)).astype(np.float32)), 2)
    targets = np.array([[1, 2, 3], [2, 4, 1]])
    input_lengths, target_lengths = np.array([12, 10]), np.array([3, 2])
    outcome = debug(
        tmp_path, capsys, "ctc", log_probs.numpy(), targets, target_lengths, input_lengths
    )
    fix = _swapped(outcome)
    expected = F.ctc_loss(
        log_probs,
        torch.from_numpy(targets),
        torch.from_numpy(input_lengths),
        torch.from_numpy(target_lengths),
    )
    assert fix["verified"]["value"] == pytest.approx(float(expected), rel=1e-6)


# --- swapped-inputs: near misses ------------------------------------------------------------


def test_symmetric_losses_never_fire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = RNG.normal(size=64).astype(np.float32)
    prediction = (truth + RNG.normal(scale=0.1, size=64)).astype(np.float32)
    for loss in ("mse", "l1", "huber", "smooth-l1"):
        outcome = debug(tmp_path, capsys, loss, truth, prediction)
        assert "swapped-inputs" not in outcome.alarms(), outcome.summary()


def test_one_value_fits_either_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a target of 2 is a label error; with one value, nothing says the order is wrong
    outcome = debug(
        tmp_path, capsys, "bce-logits", np.array([0.5], np.float32), np.array([2.0], np.float32)
    )
    assert "swapped-inputs" not in outcome.alarms()


def test_a_variance_never_trades_places_with_a_prediction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    depth = RNG.uniform(0.5, 8.0, size=256).astype(np.float32)
    predicted = (depth + RNG.normal(scale=0.3, size=256)).astype(np.float32)
    variance = RNG.normal(loc=0.05, scale=0.1, size=256).astype(np.float32)  # a raw linear head
    outcome = debug(tmp_path, capsys, "gaussian-nll", predicted, depth, variance)
    assert "nonpositive-variance" in outcome.errors()
    assert "swapped-inputs" not in outcome.alarms()


def test_wrong_labels_in_the_right_order_are_not_swapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = RNG.integers(1, 4, 32)  # 1-based: the swap does not help either
    outcome = debug(tmp_path, capsys, "cross-entropy", _logits(32, 3, labels - 1), labels)
    assert "class-index-out-of-range" in outcome.errors()
    assert "swapped-inputs" not in outcome.alarms()


def test_probabilities_with_a_mislabelled_target_are_not_swapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # model probabilities, one target written as 2 by mistake: the probabilities are no labels
    probabilities = RNG.uniform(0.05, 0.95, size=64).astype(np.float32)
    targets = (RNG.random(64) < 0.5).astype(np.float32)
    targets[7] = 2.0
    outcome = debug(tmp_path, capsys, "bce", probabilities, targets)
    assert "target-outside-unit-interval" in outcome.errors()
    assert "swapped-inputs" not in outcome.alarms()


# --- debug without --loss: the swapped order is recognised and the command verified ---------


def test_debug_recommends_the_reordered_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = (RNG.random(64) < 0.4).astype(np.float32)
    scores = (RNG.normal(size=64) + 2 * (targets - 0.5)).astype(np.float32)
    np.save(tmp_path / "bin_targets.npy", targets)
    np.save(tmp_path / "bin_logits.npy", scores)
    outcome = run_json(
        capsys, ["debug", str(tmp_path / "bin_targets.npy"), str(tmp_path / "bin_logits.npy")]
    )
    recommended = outcome.report["recommended"]
    assert recommended["loss"] == "bce-logits"
    assert shlex.split(recommended["command"])[3:] == [
        str(tmp_path / "bin_logits.npy"),
        str(tmp_path / "bin_targets.npy"),
    ]
    expected = F.binary_cross_entropy_with_logits(
        torch.from_numpy(scores), torch.from_numpy(targets)
    )
    assert recommended["verified"] == {"value": float(expected), "findings": []}
    assert "swapped-inputs" in outcome.errors()
    rerun = run_json(capsys, shlex.split(recommended["command"])[1:])
    assert rerun.report["value"] == float(expected) and rerun.code == 0


def test_scores_against_targets_in_percent_are_not_swapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # annotator agreement saved in percent (0..100) as soft targets for sigmoid outputs: the
    # other order computes too, but the outputs are no labels, so nothing says it is swapped
    scores = RNG.uniform(0.02, 0.98, size=64).astype(np.float32)
    percent = (RNG.uniform(0, 100, size=64)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", scores, percent)
    assert "target-outside-unit-interval" in outcome.errors()
    assert "swapped-inputs" not in outcome.alarms()


def test_a_remedy_that_loses_the_value_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # targets given as the prediction: bce-logits still computes (a wrong number); bce on the
    # same order clears probabilities-as-logits but cannot compute at all: not a fix
    targets = (RNG.random(64) < 0.4).astype(np.float32)
    scores = (RNG.normal(size=64) + 2 * (targets - 0.5)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", targets, scores)
    assert outcome.report["value"] is not None
    for item in outcome.findings:
        for fix in item["fixes"]:
            assert fix["verified"] is None or fix["verified"]["value"] is not None, item["name"]
    assert [f["command"] for f in outcome.named("probabilities-as-logits")["fixes"]] == []


def test_the_table_lists_each_command_on_one_line_however_narrow(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    labels = RNG.integers(1, 4, 32)
    np.save(tmp_path / "logits_of_a_long_named_model_run.npy", _logits(32, 3, labels - 1))
    np.save(tmp_path / "labels_one_based.npy", labels)
    done = subprocess.run(
        [
            sys.executable, "-m", "losscli", "debug", "--loss", "ce",
            str(tmp_path / "logits_of_a_long_named_model_run.npy"),
            str(tmp_path / "labels_one_based.npy"),
        ],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "60"}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    command = next(line for line in lines if line.startswith("[1] losscli compute"))
    words = shlex.split(command.removeprefix("[1] "))
    assert words[-2:] == ["--map", "target = target - 1"]
    assert "[1]" in done.stdout.split("commands, one a line:")[0]  # the panel points to it


def test_bce_labels_then_probabilities_is_silent_in_torch_but_not_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # F.binary_cross_entropy(y, p) computes: the labels are read as saturated probabilities
    targets = (RNG.random(64) < 0.3).astype(np.float32)
    probabilities = np.clip(targets * 0.6 + RNG.uniform(0.05, 0.35, 64), 0.01, 0.99).astype(
        np.float32
    )
    outcome = debug(tmp_path, capsys, "bce", targets, probabilities)
    fix = _swapped(outcome)
    expected = F.binary_cross_entropy(torch.from_numpy(probabilities), torch.from_numpy(targets))
    assert fix["verified"]["value"] == float(expected)


def test_poisson_counts_then_log_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_rates = RNG.normal(1.0, 0.5, size=64).astype(np.float32)
    counts = RNG.poisson(np.exp(log_rates)).astype(np.float32)
    fix = _swapped(debug(tmp_path, capsys, "poisson-nll", counts, log_rates))
    expected = F.poisson_nll_loss(torch.from_numpy(log_rates), torch.from_numpy(counts))
    assert fix["verified"]["value"] == float(expected)


def test_cosine_embedding_labels_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x1 = RNG.normal(size=(32, 8)).astype(np.float32)
    x2 = (x1 + RNG.normal(scale=0.5, size=(32, 8))).astype(np.float32)
    labels = np.where(RNG.random(32) < 0.5, -1.0, 1.0).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cosine-embedding", labels, x1, x2)
    assert outcome.alarms(), outcome.summary()
    fix = _swapped(outcome)
    expected = F.cosine_embedding_loss(
        torch.from_numpy(x1), torch.from_numpy(x2), torch.from_numpy(labels)
    )
    assert fix["verified"]["value"] == float(expected)


def test_probabilities_against_soft_targets_are_not_swapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # softmax output to cross-entropy with soft labels: a warning, and the other order is no
    # better (the soft labels are probabilities too)
    probabilities = F.softmax(torch.from_numpy(RNG.normal(size=(32, 5)).astype(np.float32)), 1)
    soft = F.softmax(torch.from_numpy(RNG.normal(size=(32, 5)).astype(np.float32) * 3), 1)
    outcome = debug(tmp_path, capsys, "cross-entropy", probabilities.numpy(), soft.numpy())
    assert "probabilities-as-logits" in outcome.alarms()
    assert "swapped-inputs" not in outcome.alarms()


@pytest.mark.parametrize("spec", [s for s in losses.LOSSES if s.on_probabilities or s.on_signs])
def test_the_catalogues_counterpart_losses_compute_the_same_value(spec: losses.LossSpec) -> None:
    # the fixes that switch loss rely on these records: each must compute the same number
    from losscli.compute import compute

    logits = RNG.normal(size=(64, 3)).astype(np.float64)
    targets = (RNG.random((64, 3)) < 0.4).astype(np.float64)
    resolve = options.resolve
    base = compute(spec, {"input": logits, "target": targets}, resolve(spec, {})).value
    if spec.on_probabilities:
        other = losses.get(spec.on_probabilities)
        assert other is not None
        probabilities = 1 / (1 + np.exp(-logits))
        value = compute(other, {"input": probabilities, "target": targets}, resolve(other, {}))
        assert value.value == pytest.approx(base, rel=1e-9)
    if spec.on_signs:
        other = losses.get(spec.on_signs)
        assert other is not None
        signs = targets * 2 - 1
        value = compute(other, {"input": logits, "target": signs}, resolve(other, {}))
        # soft-margin averages over every element, bce-logits too: the same mean
        assert value.value == pytest.approx(base, rel=1e-9)
