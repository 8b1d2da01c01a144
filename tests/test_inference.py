"""Task inference on realistic arrays: the task, the loss, and a command that runs."""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import run_json

from losscli.cli import main
from losscli.inference import TARGETS, command_line, infer

N, C = 64, 5


def _trained_logits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a half-trained classifier: the true class scores ~2 higher, float32."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=N)
    logits = rng.normal(0.0, 1.5, size=(N, C)).astype(np.float32)
    logits[np.arange(N), labels] += 2.0
    return logits, labels


def _multiclass_logits() -> list[np.ndarray]:
    logits, labels = _trained_logits()
    return [logits, labels]


def _small_logits() -> list[np.ndarray]:
    # an untrained head: logits of magnitude ~0.01
    logits, labels = _trained_logits(1)
    return [logits * 0.01, labels]


def _softmax_probabilities() -> list[np.ndarray]:
    logits, labels = _trained_logits(2)
    return [F.softmax(torch.from_numpy(logits), dim=1).numpy(), labels]


def _log_softmax() -> list[np.ndarray]:
    logits, labels = _trained_logits(3)
    return [F.log_softmax(torch.from_numpy(logits), dim=1).numpy(), labels]


def _segmentation() -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [
        rng.normal(size=(2, C, 8, 8)).astype(np.float32),
        rng.integers(0, C, size=(2, 8, 8)),
    ]


def _sigmoid_outputs() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    targets = rng.integers(0, 2, size=N).astype(np.float32)
    logits = torch.from_numpy(rng.normal(size=N).astype(np.float32) + 2.0 * (targets - 0.5))
    return [torch.sigmoid(logits).numpy(), targets]


def _binary_logits_column() -> list[np.ndarray]:
    # nn.Linear(hidden, 1) output against (N, 1) int labels
    rng = np.random.default_rng(6)
    targets = rng.integers(0, 2, size=(N, 1))
    return [rng.normal(size=(N, 1)).astype(np.float32) + 2.0 * (targets - 0.5), targets]


def _multi_hot() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        rng.normal(size=(N, C)).astype(np.float32),
        (rng.random((N, C)) < 0.3).astype(np.float32),
    ]


def _multi_hot_probabilities() -> list[np.ndarray]:
    rng = np.random.default_rng(8)
    logits = torch.from_numpy(rng.normal(size=(N, C)).astype(np.float32))
    return [torch.sigmoid(logits).numpy(), (rng.random((N, C)) < 0.3).astype(np.float32)]


def _one_hot() -> list[np.ndarray]:
    logits, labels = _trained_logits(9)
    return [logits, np.eye(C, dtype=np.float32)[labels]]


def _soft_labels_log_probs() -> list[np.ndarray]:
    # distillation: student log_softmax against teacher softmax
    student, _ = _trained_logits(10)
    teacher, _ = _trained_logits(11)
    return [
        F.log_softmax(torch.from_numpy(student), dim=1).numpy(),
        F.softmax(torch.from_numpy(teacher / 2.0), dim=1).numpy(),
    ]


def _regression() -> list[np.ndarray]:
    rng = np.random.default_rng(12)
    true = rng.normal(3.0, 1.0, size=N).astype(np.float32)
    return [true + rng.normal(0.0, 0.3, size=N).astype(np.float32), true]


def _regression_unit_interval() -> list[np.ndarray]:
    # e.g. a normalised score in [0, 1]: continuous, so regression, not binary
    rng = np.random.default_rng(13)
    true = rng.random(N).astype(np.float32)
    return [np.clip(true + rng.normal(0, 0.05, N), 0, 1).astype(np.float32), true]


def _sign_targets() -> list[np.ndarray]:
    rng = np.random.default_rng(14)
    signs = rng.choice([-1.0, 1.0], size=N).astype(np.float32)
    return [rng.normal(size=N).astype(np.float32) + signs, signs]


def _distances_with_signs() -> list[np.ndarray]:
    rng = np.random.default_rng(15)
    signs = rng.choice([-1.0, 1.0], size=N).astype(np.float32)
    distances = np.abs(rng.normal(1.0, 0.5, size=N)).astype(np.float32)
    return [distances, signs]


def _ranking() -> list[np.ndarray]:
    rng = np.random.default_rng(16)
    return [
        rng.normal(size=N).astype(np.float32),
        rng.normal(size=N).astype(np.float32),
        rng.choice([-1.0, 1.0], size=N).astype(np.float32),
    ]


def _triplets() -> list[np.ndarray]:
    rng = np.random.default_rng(17)
    return [rng.normal(size=(N, 16)).astype(np.float32) for _ in range(3)]


def _gaussian() -> list[np.ndarray]:
    # a regression head with a softplus variance head
    rng = np.random.default_rng(18)
    true = rng.normal(size=N).astype(np.float32)
    mean = true + rng.normal(0, 0.3, size=N).astype(np.float32)
    variance = F.softplus(torch.from_numpy(rng.normal(size=N).astype(np.float32))).numpy()
    return [mean, true, variance]


def _ctc() -> list[np.ndarray]:
    # a small speech model: 30 frames, batch 3, 6 symbols (0 = blank), padded targets
    rng = np.random.default_rng(19)
    frames = torch.from_numpy(rng.normal(size=(30, 3, 6)).astype(np.float32))
    return [
        F.log_softmax(frames, dim=2).numpy(),
        rng.integers(1, 6, size=(3, 8)),
        np.array([30, 28, 25]),
        np.array([8, 5, 6]),
    ]


def _diabetes_features() -> torch.Tensor:
    from sklearn.datasets import load_diabetes

    features, _ = load_diabetes(return_X_y=True)
    return torch.tensor((features - features.mean(0)) / features.std(0), dtype=torch.float32)


def _poisson_glm_log_rates() -> list[np.ndarray]:
    # counts = np.random.poisson(exp(X @ w)) on diabetes features, and the log-rates a
    # Poisson GLM (nn.Linear trained with F.poisson_nll_loss) outputs for them
    x = _diabetes_features()
    rng = np.random.default_rng(26)
    weights = rng.normal(0.0, 0.3, size=x.shape[1])
    counts = rng.poisson(np.exp(x.numpy() @ weights + 1.0)).astype(np.float32)
    torch.manual_seed(0)
    glm = torch.nn.Linear(x.shape[1], 1)
    optimiser = torch.optim.Adam(glm.parameters(), lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        F.poisson_nll_loss(glm(x).squeeze(1), torch.from_numpy(counts)).backward()
        optimiser.step()
    with torch.no_grad():
        log_rates = glm(x).squeeze(1).numpy()
    return [log_rates, counts]


def _counts_regressed_with_mse() -> list[np.ndarray]:
    # near miss: the same counts predicted directly by an mse model (no log link)
    log_rates, counts = _poisson_glm_log_rates()
    return [np.exp(log_rates).astype(np.float32), counts]


def _prior_initialised_binary_logits() -> list[np.ndarray]:
    # breast_cancer at a positive rate of 0.6; nn.Linear with weights N(0, 0.01) and bias
    # log(0.6 / 0.4) = 0.405: every logit lies in a narrow band inside [0, 1]
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rows = np.concatenate([positives[: round(len(negatives) * 0.6 / 0.4)], negatives])
    features = (features[rows] - features[rows].mean(0)) / features[rows].std(0)
    torch.manual_seed(0)
    head = torch.nn.Linear(features.shape[1], 1)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01)
        head.bias.fill_(float(np.log(0.6 / 0.4)))
        logits = head(torch.tensor(features, dtype=torch.float32)).squeeze(1).numpy()
    assert logits.min() >= 0 and logits.max() <= 1
    return [logits, labels[rows].astype(np.float32)]


# (maker, task, loss, the recommended command runs clean: exit 0)
CASES: list[tuple[Callable[[], list[np.ndarray]], str, str, bool]] = [
    (_multiclass_logits, "multiclass", "cross-entropy", True),
    (_small_logits, "multiclass", "cross-entropy", True),
    (_softmax_probabilities, "multiclass", "nll", False),  # policy: log first, then nll
    (_log_softmax, "multiclass", "nll", True),
    (_segmentation, "multiclass", "cross-entropy", True),
    (_sigmoid_outputs, "binary", "bce", True),
    (_binary_logits_column, "binary", "bce-logits", True),
    (_multi_hot, "multilabel", "bce-logits", True),
    (_multi_hot_probabilities, "multilabel", "bce", True),
    (_one_hot, "multiclass", "cross-entropy", True),
    (_soft_labels_log_probs, "multiclass", "kl-div", True),
    (_regression, "regression", "mse", True),
    (_regression_unit_interval, "regression", "mse", True),
    (_sign_targets, "binary", "soft-margin", True),
    (_distances_with_signs, "similarity", "hinge-embedding", True),
    (_ranking, "ranking", "margin-ranking", True),
    (_triplets, "metric", "triplet-margin", True),
    (_gaussian, "regression", "gaussian-nll", True),
    (_ctc, "sequence", "ctc", True),
    (_poisson_glm_log_rates, "count", "poisson-nll", True),
    (_counts_regressed_with_mse, "regression", "mse", True),
    (_prior_initialised_binary_logits, "binary", "bce-logits", True),
]
IDS = [maker.__name__.strip("_") for maker, *_ in CASES]


@pytest.mark.parametrize(("maker", "task", "loss", "clean"), CASES, ids=IDS)
def test_infers_task_and_loss(
    maker: Callable[[], list[np.ndarray]], task: str, loss: str, clean: bool
) -> None:
    arrays = maker()
    names = [f"input{i}.npy" for i in range(len(arrays))]
    found = infer(arrays, names)
    assert found is not None
    assert (found.task, found.loss) == (task, loss), found.reason
    assert found.command.startswith(f"losscli compute {loss} {' '.join(names)}")
    assert found.complete


@pytest.mark.parametrize(("maker", "task", "loss", "clean"), CASES, ids=IDS)
def test_recommended_command_runs(
    maker: Callable[[], list[np.ndarray]],
    task: str,
    loss: str,
    clean: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arrays = maker()
    monkeypatch.chdir(tmp_path)
    names = []
    for i, array in enumerate(arrays):
        np.save(tmp_path / f"input{i}.npy", array)
        names.append(f"input{i}.npy")
    found = infer(arrays, names)
    assert found is not None
    words = shlex.split(found.command)
    assert words[:2] == ["losscli", "compute"]
    with pytest.raises(SystemExit) as done:
        main([*words[1:], "--format", "json"])
    err = capsys.readouterr().err
    # clean data: the recommended loss computes with no error finding; the softmax case
    # exits 1 by policy: its command is the one to run after torch.log, which debug names
    assert done.value.code == (0 if clean else 1), err


def test_softmax_probabilities_reason_names_the_fix() -> None:
    arrays = _softmax_probabilities()
    found = infer(arrays, ["probs.npy", "labels.npy"])
    assert found is not None
    assert "torch.log" in found.reason
    assert "cross-entropy" in found.reason  # or pass the logits to cross-entropy


def test_kl_div_recommendation_uses_batchmean() -> None:
    found = infer(_soft_labels_log_probs(), ["student.npy", "teacher.npy"])
    assert found is not None
    assert found.command == ("losscli compute kl-div student.npy teacher.npy --reduction batchmean")
    assert found.options == (("reduction", "batchmean"),)


def test_one_based_labels_are_named_in_the_reason() -> None:
    logits, labels = _trained_logits(20)
    found = infer([logits, labels + 1], ["logits.npy", "labels.npy"])
    assert found is not None
    assert found.loss == "cross-entropy"
    assert "labels - 1" in found.reason
    near_miss = infer([logits, labels], ["logits.npy", "labels.npy"])
    assert near_miss is not None and "labels - 1" not in near_miss.reason


def test_mask_255_is_binary_with_the_fix() -> None:
    rng = np.random.default_rng(21)
    logits = rng.normal(size=(2, 1, 8, 8)).astype(np.float32)
    mask = (rng.random((2, 1, 8, 8)) < 0.4).astype(np.uint8) * 255
    found = infer([logits, mask], ["logits.npy", "mask.npy"])
    assert found is not None
    assert (found.task, found.loss) == ("binary", "bce-logits")
    assert "mask / 255" in found.reason


def test_predictions_alone_leave_a_targets_placeholder() -> None:
    logits, _ = _trained_logits(22)
    found = infer([logits], ["logits.npy"])
    assert found is not None
    assert found.command == f"losscli compute cross-entropy logits.npy {TARGETS}"
    assert not found.complete
    probabilities = infer([np.full((N, 1), 0.3, dtype=np.float32)], ["p.npy"])
    assert probabilities is not None and probabilities.task == "binary"


def test_inline_arguments_are_shell_quoted() -> None:
    found = infer(
        [np.array([1.0, 2.5, 4.0, 0.5]), np.array([2.0, 2.5, 2.0, 1.0])],
        ["[1,2.5,4,0.5]", "[2,2.5,2,1]"],
    )
    assert found is not None
    assert found.command == "losscli compute mse '[1,2.5,4,0.5]' '[2,2.5,2,1]'"
    assert shlex.split(found.command)[3:] == ["[1,2.5,4,0.5]", "[2,2.5,2,1]"]


def test_shapes_that_fit_no_task_give_none() -> None:
    rng = np.random.default_rng(23)
    # [batch, classes] scores against continuous targets of another shape
    assert infer([rng.normal(size=(8, 3)), rng.normal(size=(5, 2))], ["a.npy", "b.npy"]) is None
    assert infer([np.zeros((0, 3))], ["empty.npy"]) is None
    assert infer([np.zeros(3)] * 4, ["a", "b", "c", "d"]) is None


def test_recommendation_is_frozen_and_serialises_the_contract_keys() -> None:
    found = infer(_regression(), ["p.npy", "t.npy"])
    assert found is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.loss = "l1"  # type: ignore[misc]
    assert found.to_dict() == {
        "task": "regression",
        "loss": "mse",
        "command": "losscli compute mse p.npy t.npy",
        "reason": found.reason,
        "verified": None,  # debug fills it in once it has run the command
    }


def test_command_line_spells_options_as_flags() -> None:
    assert (
        command_line("cross-entropy", ["a.npy", "b.npy"], [("label_smoothing", "0.1")])
        == "losscli compute cross-entropy a.npy b.npy --label-smoothing 0.1"
    )


def test_two_class_logits_with_zero_one_labels_are_multiclass() -> None:
    # near miss of binary: [batch, 2] scores with 0/1 class indices are a 2-class softmax
    rng = np.random.default_rng(24)
    labels = rng.integers(0, 2, size=N)
    logits = rng.normal(size=(N, 2)).astype(np.float32)
    found = infer([logits, labels], ["logits.npy", "labels.npy"])
    assert found is not None
    assert (found.task, found.loss) == ("multiclass", "cross-entropy")


def test_one_column_targets_for_class_scores_are_still_multiclass() -> None:
    # labels read from a one-column CSV: (N, 1); the checks then say target-has-extra-dim
    logits, labels = _trained_logits(25)
    found = infer([logits, labels.reshape(-1, 1)], ["logits.npy", "labels.csv"])
    assert found is not None
    assert found.loss == "cross-entropy"


def test_log_probabilities_with_one_hot_targets_use_cross_entropy() -> None:
    # nll cannot take one-hot targets; cross-entropy on log-probabilities is exact
    logits, labels = _trained_logits(26)
    log_probabilities = F.log_softmax(torch.from_numpy(logits), dim=1).numpy()
    one_hot = np.eye(C, dtype=np.float32)[labels]
    found = infer([log_probabilities, one_hot], ["logp.npy", "onehot.npy"])
    assert found is not None
    assert found.loss == "cross-entropy"
    with_indices = infer([log_probabilities, labels], ["logp.npy", "labels.npy"])
    assert with_indices is not None and with_indices.loss == "nll"


# every case but softmax probabilities, the mistake its recommendation explains
CLEAN = [case for case in CASES if case[3]]


@pytest.mark.parametrize(
    ("maker", "task", "loss", "clean"), CLEAN, ids=[c[0].__name__.strip("_") for c in CLEAN]
)
def test_debug_raises_no_false_alarm_on_clean_data(
    maker: Callable[[], list[np.ndarray]],
    task: str,
    loss: str,
    clean: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a debugger that cries wolf is useless in CI: realistic clean inputs debug to no warning
    names = []
    for i, array in enumerate(maker()):
        np.save(tmp_path / f"input{i}.npy", array)
        names.append(str(tmp_path / f"input{i}.npy"))
    with pytest.raises(SystemExit) as done:
        main(["debug", *names, "--format", "json"])
    record = json.loads(capsys.readouterr().out)
    alarms = [f for f in record["findings"] if f["severity"] != "info"]
    assert alarms == []
    assert done.value.code == 0
    assert record["recommended"]["loss"] == loss


@pytest.mark.parametrize(
    ("maker", "loss", "value"),
    [
        (
            _prior_initialised_binary_logits,
            "bce-logits",
            lambda p, t: F.binary_cross_entropy_with_logits(p, t),
        ),
        (_poisson_glm_log_rates, "poisson-nll", lambda p, t: F.poisson_nll_loss(p, t)),
    ],
    ids=["prior-logits", "poisson-glm"],
)
def test_debug_without_a_loss_recommends_and_verifies_it(
    maker: Callable[[], list[np.ndarray]],
    loss: str,
    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    predictions, targets = maker()
    paths = []
    for name, array in (("predictions", predictions), ("targets", targets)):
        np.save(tmp_path / f"{name}.npy", array)
        paths.append(str(tmp_path / f"{name}.npy"))
    outcome = run_json(capsys, ["debug", *paths])
    recommended = outcome.report["recommended"]
    assert recommended["loss"] == loss, recommended["reason"]
    assert recommended["verified"]["findings"] == []
    expected = value(torch.from_numpy(predictions), torch.from_numpy(targets)).item()
    assert recommended["verified"]["value"] == pytest.approx(expected, rel=1e-6)
