"""Verified fixes for the prediction, shape, layout, numeric and dtype findings.

Each case is modelled on how the mistake happens in training code; the expected fix must be
kept with the findings it announces, and its value must be torch's value on the corrected
tensors, computed here directly. The near misses check that a wrong remedy is not offered.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import Outcome, assert_fixes_hold, debug, run_json

RNG = np.random.default_rng(11)


def _fix(outcome: Outcome, name: str, code: str) -> dict[str, Any]:
    """The fix of ``name`` whose code is ``code`` (it must be there)."""
    fixes = outcome.named(name)["fixes"]
    found = [f for f in fixes if str(f.get("code")).split("; ")[0] == code]
    assert found, (code, fixes)
    return found[0]


def _codes(outcome: Outcome, name: str) -> list[str]:
    return [str(f.get("code")).split("; ")[0] for f in outcome.named(name)["fixes"]]


def _commands(outcome: Outcome, name: str) -> list[str]:
    return [str(f.get("command")) for f in outcome.named(name)["fixes"]]


def _close(value: float, expected: torch.Tensor | float) -> bool:
    return math.isclose(value, float(expected), rel_tol=1e-5, abs_tol=1e-6)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array)


# ---------------------------------------------------------------- debug without --loss (issue 11)


def _debug_inferred(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *arrays: np.ndarray
) -> Outcome:
    paths = []
    for index, array in enumerate(arrays):
        path = tmp_path / f"arg{index}.npy"
        np.save(path, array)
        paths.append(str(path))
    outcome = run_json(capsys, ["debug", *paths])
    assert_fixes_hold(capsys, outcome)
    return outcome


def _run_recommended(capsys: pytest.CaptureFixture[str], outcome: Outcome) -> Outcome:
    words = shlex.split(outcome.report["recommended"]["command"])
    assert words[:2] == ["losscli", "compute"]
    return run_json(capsys, words[1:])


def test_inferred_softmax_probabilities_recommend_nll_on_their_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(64, 5)).astype(np.float32)
    probs = torch.softmax(_t(logits), dim=1).numpy()
    labels = RNG.integers(0, 5, size=64)
    outcome = _debug_inferred(tmp_path, capsys, probs, labels)
    recommended = outcome.report["recommended"]
    assert recommended["loss"] == "nll"
    assert "--map 'input = input.log()'" in recommended["command"]
    assert recommended["verified"]["findings"] == []
    expected = F.nll_loss(torch.log(_t(probs)), _t(labels))
    assert _close(recommended["verified"]["value"], expected)
    rerun = _run_recommended(capsys, outcome)
    assert rerun.report["value"] == recommended["verified"]["value"]
    assert rerun.alarms() == set()


def test_inferred_regression_column_recommends_the_squeeze(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y = (RNG.normal(size=64) * 3).astype(np.float32)
    pred = (y + RNG.normal(size=64).astype(np.float32) * 0.19)[:, None]  # nn.Linear(hidden, 1)
    outcome = _debug_inferred(tmp_path, capsys, pred, y)
    recommended = outcome.report["recommended"]
    assert recommended["loss"] == "mse"
    assert "--map 'input = input.squeeze(1)'" in recommended["command"]
    assert recommended["verified"]["findings"] == []
    expected = F.mse_loss(_t(pred).squeeze(1), _t(y))
    broadcast = float(((_t(pred) - _t(y)) ** 2).mean())
    assert _close(recommended["verified"]["value"], expected)
    assert not _close(recommended["verified"]["value"], broadcast)
    assert _run_recommended(capsys, outcome).report["value"] == recommended["verified"]["value"]


# ---------------------------------------------------------------- shapes


def test_silent_broadcast_of_a_column_target_squeezes_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = RNG.normal(size=32).astype(np.float32)
    target = (pred + RNG.normal(size=32).astype(np.float32) * 0.1)[:, None]  # df[["y"]].values
    outcome = debug(tmp_path, capsys, "mse", pred, target)
    fix = _fix(outcome, "silent-broadcast", "target = target.squeeze(1)")
    assert fix["verified"]["findings"] == []
    assert _close(fix["verified"]["value"], F.mse_loss(_t(pred), _t(target).squeeze(1)))


def test_two_channel_output_against_a_one_channel_mask_is_a_model_change_not_a_tiled_mask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(2, 2, 8, 8)).astype(np.float32)  # nn.Conv2d(64, 2, 1)
    mask = (RNG.random(size=(2, 1, 8, 8)) > 0.5).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", logits, mask)
    fixes = outcome.named("shape-mismatch")["fixes"]
    outside = [f for f in fixes if f["verified"] is None]
    assert len(outside) == 1 and "one output channel" in outside[0]["code"]
    assert "command" not in outside[0]
    for fix in fixes:  # nothing repeats the mask over the channels
        assert "repeat" not in str(fix.get("code")) and "expand" not in str(fix.get("code"))
        assert "tile" not in str(fix.get("code"))
    classes = _fix(outcome, "shape-mismatch", "target = target.squeeze(1).long()")
    assert "cross-entropy" in classes["command"]
    assert _close(
        classes["verified"]["value"], F.cross_entropy(_t(logits), _t(mask).squeeze(1).long())
    )


def test_batch_size_mismatch_offers_only_the_outside_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = RNG.normal(size=(8, 3)).astype(np.float32)
    target = RNG.normal(size=(6, 3)).astype(np.float32)  # a dropped last batch on one side
    outcome = debug(tmp_path, capsys, "mse", pred, target)
    fixes = outcome.named("batch-size-mismatch")["fixes"]
    assert fixes and all(f["verified"] is None and "command" not in f for f in fixes)


def test_target_with_an_extra_column_is_squeezed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(16, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=(16, 1))  # torch.tensor(df[["label"]].values)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    fix = _fix(outcome, "target-has-extra-dim", "target = target.squeeze(1)")
    assert fix["verified"]["findings"] == []
    assert _close(fix["verified"]["value"], F.cross_entropy(_t(logits), _t(labels).squeeze(1)))


def test_channels_last_logits_are_permuted_with_concrete_dims(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)  # a Keras port: NHWC
    mask = RNG.integers(0, 3, size=(2, 6, 6))
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, mask)
    name = "class-dim-last" if "class-dim-last" in outcome.alarms() else "shape-mismatch"
    fix = _fix(outcome, name, "input = input.permute(0, 3, 1, 2)")
    assert fix["verified"]["findings"] == []
    expected = F.cross_entropy(_t(logits).permute(0, 3, 1, 2), _t(mask))
    assert _close(fix["verified"]["value"], expected)


def test_single_logit_cross_entropy_becomes_bce_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(20, 1)).astype(np.float32)  # nn.Linear(hidden, 1)
    labels = RNG.integers(0, 2, size=20)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    fixes = [f for f in outcome.named("single-logit-cross-entropy")["fixes"] if f["verified"]]
    assert len(fixes) == 1
    fix = fixes[0]
    assert "losscli compute bce-logits" in fix["command"]
    assert "--map 'input = input.squeeze(1)'" in fix["command"]
    assert "--map 'target = target.float()'" in fix["command"]
    assert fix["verified"]["findings"] == []
    expected = F.binary_cross_entropy_with_logits(_t(logits).squeeze(1), _t(labels).float())
    assert _close(fix["verified"]["value"], expected)


def test_unbatched_binary_scores_become_bce_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = RNG.normal(size=12).astype(np.float32)  # model(x).squeeze()
    labels = RNG.integers(0, 2, size=12)
    outcome = debug(tmp_path, capsys, "cross-entropy", scores, labels)
    fix = next(f for f in outcome.named("unbatched-input")["fixes"] if f["verified"])
    assert "losscli compute bce-logits" in fix["command"]
    assert fix["verified"]["findings"] == []
    expected = F.binary_cross_entropy_with_logits(_t(scores), _t(labels).float())
    assert _close(fix["verified"]["value"], expected)


# ---------------------------------------------------------------- logits or probabilities


def test_softmax_output_to_cross_entropy_takes_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probs = torch.softmax(torch.from_numpy(RNG.normal(size=(32, 4)).astype(np.float32)), 1)
    labels = RNG.integers(0, 4, size=32)
    outcome = debug(tmp_path, capsys, "cross-entropy", probs.numpy(), labels)
    fix = _fix(outcome, "probabilities-as-logits", "input = input.log()")
    assert fix["verified"]["findings"] == []
    # log-softmax of log-probabilities is themselves: cross-entropy equals nll on them
    assert _close(fix["verified"]["value"], F.nll_loss(torch.log(probs), _t(labels)))
    assert _close(fix["verified"]["value"], F.cross_entropy(torch.log(probs), _t(labels)))


def test_sigmoid_output_to_bce_logits_offers_the_inverse_and_bce(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a trained multi-label head: its sigmoid outputs are calibrated, so the labels are drawn
    # from them (labels unrelated to the outputs would fit neither reading)
    logits = (RNG.normal(size=(64, 3)) * 3).astype(np.float32)
    probs = torch.sigmoid(_t(logits)).numpy()
    labels = (RNG.random(size=(64, 3)) < probs).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce-logits", probs, labels)
    inverse = _fix(outcome, "probabilities-as-logits", "input = input.logit()")
    assert inverse["verified"]["findings"] == []
    expected = F.binary_cross_entropy_with_logits(_t(probs).logit(), _t(labels))
    assert _close(inverse["verified"]["value"], expected)
    bce = next(
        f
        for f in outcome.named("probabilities-as-logits")["fixes"]
        if "compute bce " in f["command"]
    )
    assert _close(bce["verified"]["value"], F.binary_cross_entropy(_t(probs), _t(labels)))


def test_sigmoid_then_dice_recovers_the_logits_not_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = (RNG.normal(size=(2, 1, 16, 16)) * 3).astype(np.float32)
    probs = torch.sigmoid(_t(logits)).numpy()  # dice_loss(torch.sigmoid(out), mask)
    mask = (RNG.random(size=(2, 1, 16, 16)) < probs).astype(np.float32)  # a trained model's
    outcome = debug(tmp_path, capsys, "dice", probs, mask)
    codes = _codes(outcome, "probabilities-as-logits")
    assert "input = input.logit()" in codes
    assert not any("log()" in c or "log_softmax" in c for c in codes)
    assert not any(" bce" in c for c in _commands(outcome, "probabilities-as-logits"))
    fix = _fix(outcome, "probabilities-as-logits", "input = input.logit()")
    assert fix["verified"]["findings"] == []
    on_logits = debug(tmp_path, capsys, "dice", _t(probs).logit().numpy(), mask)
    assert fix["verified"]["value"] == on_logits.report["value"]


def test_logits_to_nll_take_log_softmax_or_cross_entropy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = (RNG.normal(size=(24, 5)) * 3).astype(np.float32)  # the model ends in nn.Linear
    labels = RNG.integers(0, 5, size=24)
    outcome = debug(tmp_path, capsys, "nll", logits, labels)
    fix = _fix(outcome, "logits-to-nll", "input = input.log_softmax(1)")
    assert fix["verified"]["findings"] == []
    expected = F.cross_entropy(_t(logits), _t(labels))
    assert _close(fix["verified"]["value"], expected)
    cross = next(
        f for f in outcome.named("logits-to-nll")["fixes"] if "cross-entropy" in f["command"]
    )
    assert _close(cross["verified"]["value"], expected)


def test_probabilities_to_nll_take_the_log_not_log_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probs = torch.softmax(torch.from_numpy(RNG.normal(size=(16, 3)).astype(np.float32)), 1)
    labels = RNG.integers(0, 3, size=16)
    outcome = debug(tmp_path, capsys, "nll", probs.numpy(), labels)
    fix = _fix(outcome, "probabilities-to-nll", "input = input.log()")
    assert fix["verified"]["findings"] == []
    assert _close(fix["verified"]["value"], F.nll_loss(torch.log(probs), _t(labels)))
    assert not any("log_softmax" in c for c in _codes(outcome, "probabilities-to-nll"))


def test_tanh_outputs_to_bce_offer_the_rescale_and_bce_logits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = np.tanh(RNG.normal(size=(16, 2))).astype(np.float32)  # a generator ending in tanh
    labels = (RNG.random(size=(16, 2)) > 0.5).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce", out, labels)
    rescale = _fix(outcome, "input-outside-unit-interval", "input = (input + 1) / 2")
    assert "tanh" in rescale["note"]
    expected = F.binary_cross_entropy((_t(out) + 1) / 2, _t(labels))
    assert _close(rescale["verified"]["value"], expected)
    logits = next(
        f
        for f in outcome.named("input-outside-unit-interval")["fixes"]
        if "bce-logits" in f["command"]
    )
    assert "logits" in logits["note"]
    assert _close(
        logits["verified"]["value"], F.binary_cross_entropy_with_logits(_t(out), _t(labels))
    )


def test_logits_to_bce_are_not_rescaled_as_tanh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = (RNG.normal(size=(16, 2)) * 4).astype(np.float32)  # beyond [-1, 1]
    labels = (RNG.random(size=(16, 2)) > 0.5).astype(np.float32)
    outcome = debug(tmp_path, capsys, "bce", logits, labels)
    commands = _commands(outcome, "input-outside-unit-interval")
    assert len(commands) == 1 and "compute bce-logits" in commands[0]
    fix = outcome.named("input-outside-unit-interval")["fixes"][0]
    assert fix["verified"]["findings"] == []
    expected = F.binary_cross_entropy_with_logits(_t(logits), _t(labels))
    assert _close(fix["verified"]["value"], expected)


# ---------------------------------------------------------------- log-probabilities, options


def test_kl_div_on_probabilities_takes_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    student = torch.softmax(torch.from_numpy(RNG.normal(size=(8, 5)).astype(np.float32)), 1)
    teacher = torch.softmax(torch.from_numpy(RNG.normal(size=(8, 5)).astype(np.float32)), 1)
    outcome = debug(
        tmp_path,
        capsys,
        "kl-div",
        student.numpy(),
        teacher.numpy(),
        options=("--reduction", "batchmean"),
    )
    fix = _fix(outcome, "kl-input-not-log", "input = input.log()")
    assert fix["verified"]["findings"] == []
    expected = F.kl_div(torch.log(student), teacher, reduction="batchmean")
    assert _close(fix["verified"]["value"], expected)


def test_kl_mean_reduction_sets_batchmean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_p = torch.log_softmax(torch.from_numpy(RNG.normal(size=(8, 5)).astype(np.float32)), 1)
    q = torch.softmax(torch.from_numpy(RNG.normal(size=(8, 5)).astype(np.float32)), 1)
    outcome = debug(
        tmp_path, capsys, "kl-div", log_p.numpy(), q.numpy(), options=("--reduction", "mean")
    )
    fix = outcome.named("kl-mean-reduction")["fixes"][0]
    assert "--reduction batchmean" in fix["command"]
    assert fix["verified"]["findings"] == []
    assert _close(fix["verified"]["value"], F.kl_div(log_p, q, reduction="batchmean"))


def test_poisson_rates_with_log_input_switch_it_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = (RNG.random(size=64) * 20 + 5).astype(np.float32)  # a softplus head
    counts = RNG.poisson(rates).astype(np.float32)
    outcome = debug(tmp_path, capsys, "poisson-nll", rates, counts)
    fix = outcome.named("poisson-log-input-mismatch")["fixes"][0]
    assert "--no-log-input" in fix["command"]
    assert fix["verified"]["findings"] == []
    expected = F.poisson_nll_loss(_t(rates), _t(counts), log_input=False)
    assert _close(fix["verified"]["value"], expected)


def test_poisson_log_rates_without_log_input_switch_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_rates = RNG.normal(size=64).astype(np.float32)  # a Linear head
    counts = RNG.poisson(np.exp(log_rates)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "poisson-nll", log_rates, counts, options=("--no-log-input",))
    fix = outcome.named("poisson-log-input-mismatch")["fixes"][0]
    assert "log-input" not in fix["command"]
    expected = F.poisson_nll_loss(_t(log_rates), _t(counts), log_input=True)
    assert _close(fix["verified"]["value"], expected)


def test_ctc_logits_take_log_softmax_over_the_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    time, batch, classes = 12, 2, 5
    logits = RNG.normal(size=(time, batch, classes)).astype(np.float32)  # a Linear head
    targets = RNG.integers(1, classes, size=(batch, 4))
    input_lengths = np.full(batch, time)
    target_lengths = np.array([4, 3])
    outcome = debug(tmp_path, capsys, "ctc", logits, targets, input_lengths, target_lengths)
    fix = _fix(outcome, "ctc-input-not-log-probs", "log_probs = log_probs.log_softmax(2)")
    assert fix["verified"]["findings"] == []
    expected = F.ctc_loss(
        _t(logits).log_softmax(2), _t(targets), _t(input_lengths), _t(target_lengths)
    )
    assert _close(fix["verified"]["value"], expected)


def test_ctc_softmax_output_takes_the_log_not_log_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    time, batch, classes = 12, 2, 5
    probs = torch.softmax(
        torch.from_numpy(RNG.normal(size=(time, batch, classes)).astype(np.float32)), 2
    )
    targets = RNG.integers(1, classes, size=(batch, 4))
    input_lengths = np.full(batch, time)
    target_lengths = np.array([4, 3])
    outcome = debug(tmp_path, capsys, "ctc", probs.numpy(), targets, input_lengths, target_lengths)
    fix = _fix(outcome, "ctc-input-not-log-probs", "log_probs = log_probs.log()")
    expected = F.ctc_loss(torch.log(probs), _t(targets), _t(input_lengths), _t(target_lengths))
    assert _close(fix["verified"]["value"], expected)
    assert "log_probs = log_probs.log_softmax(2)" not in _codes(outcome, "ctc-input-not-log-probs")
