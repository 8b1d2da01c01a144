"""`losscli.guard`: the checks inside a training loop, without changing the training.

Each task is a small model trained for 30 steps of SGD on a fixed dataset, batches drawn
with torch's global generator and a dropout layer drawing from it too, so that a guard
that touched the generator, a value or a gradient would change the parameters. With correct
usage the guard says nothing and the parameters are bit for bit those of the unguarded
loop; with a planted mistake, as it is written in real training code, it says so once, on
the first step, naming the finding; ``strict=True`` raises there instead.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losscli
from losscli.api import guarding

STEPS = 30
BATCH = 64
FEATURES = 12
CLASSES = 10


def _dataset(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten Gaussian blobs: features (512, 12) and class labels."""
    generator = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(CLASSES, FEATURES, generator=generator)
    labels = torch.arange(512) % CLASSES
    features = centres[labels] + torch.randn(512, FEATURES, generator=generator)
    return features, labels


def _model(outputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(FEATURES, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, outputs)
    )


@dataclass(frozen=True)
class Task:
    """A training step's loss, as written in training code.

    Attributes:
        name: the test id.
        outputs: the model's output width.
        criterion: the loss module or function (what ``guard`` wraps).
        step: (criterion, model output, labels, the batch's features) → the loss tensor.
        mistake: the finding the step's mistake raises, or "" when the usage is correct.
    """

    name: str
    outputs: int
    criterion: Callable[[], Any]
    step: Callable[[Any, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    mistake: str = ""


def _pairs(out: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances between each embedding and the next one's, and whether their classes agree."""
    distance = (out - out.roll(1, 0)).norm(dim=1)
    return distance, (labels == labels.roll(1, 0)).long()


TASKS = (
    Task("cross-entropy", CLASSES, nn.CrossEntropyLoss, lambda c, out, y, x: c(out, y)),
    Task(
        "softmax-before-cross-entropy",
        CLASSES,
        nn.CrossEntropyLoss,
        lambda c, out, y, x: c(F.softmax(out, dim=1), y),
        "probabilities-as-logits",
    ),
    Task("nll", CLASSES, lambda: F.nll_loss, lambda c, out, y, x: c(F.log_softmax(out, 1), y)),
    Task(
        "raw-logits-to-nll",
        CLASSES,
        lambda: F.nll_loss,
        lambda c, out, y, x: c(out, y),
        "logits-to-nll",
    ),
    Task("mse", 1, nn.MSELoss, lambda c, out, y, x: c(out.squeeze(1), x[:, 0])),
    Task(
        "mse-n1-against-n",
        1,
        nn.MSELoss,
        lambda c, out, y, x: c(out, x[:, 0]),
        "silent-broadcast",
    ),
    Task(
        "hinge-embedding",
        4,
        nn.HingeEmbeddingLoss,
        lambda c, out, y, x: c(*(lambda d, same: (d, 2 * same - 1))(*_pairs(out, y))),
    ),
    Task(
        "hinge-embedding-zero-one",
        4,
        nn.HingeEmbeddingLoss,
        lambda c, out, y, x: c(*_pairs(out, y)),
        "sign-target-expected",
    ),
    Task(
        "bce-logits",
        1,
        nn.BCEWithLogitsLoss,
        lambda c, out, y, x: c(out.squeeze(1), (y % 2).to(out.dtype)),
    ),
)
CORRECT = [task for task in TASKS if not task.mistake]
MISTAKES = [task for task in TASKS if task.mistake]


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The report of every check a guard runs, in order (a silent guard must have looked)."""
    reports: list[Any] = []
    original = guarding._checked

    def recording(found: Any, tensors: Any, given: Any) -> Any:
        report, rows = original(found, tensors, given)
        reports.append(report)
        return report, rows

    monkeypatch.setattr(guarding, "_checked", recording)
    return reports


@dataclass
class Run:
    parameters: list[torch.Tensor]
    losses: list[float]
    alarms: list[warnings.WarningMessage]


def _train(
    task: Task,
    wrap: Callable[[Any], Any] = lambda c: c,
    dtype: torch.dtype = torch.float32,
    compile_model: bool = False,
) -> Run:
    """30 steps of SGD on ``task``, the criterion wrapped by ``wrap``."""
    features, labels = _dataset()
    features = features.to(dtype)
    torch.manual_seed(0)
    model = _model(task.outputs).to(dtype)
    forward = torch.compile(model, backend="aot_eager") if compile_model else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    criterion = wrap(task.criterion())
    losses: list[float] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(STEPS):
            batch = torch.randperm(features.shape[0])[:BATCH]  # the global generator
            optimizer.zero_grad()
            loss = task.step(criterion, forward(features[batch]), labels[batch], features[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    alarms = [w for w in caught if issubclass(w.category, (losscli.LossWarning, RuntimeWarning))]
    return Run([p.detach().clone() for p in model.parameters()], losses, alarms)


def _same_training(guarded: Run, bare: Run) -> None:
    assert guarded.losses == bare.losses
    for a, b in zip(guarded.parameters, bare.parameters, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("check_every", [1, 100])
@pytest.mark.parametrize("task", CORRECT, ids=lambda t: t.name)
def test_correct_training_is_silent_and_unchanged(
    task: Task, check_every: int, checked: list[Any]
) -> None:
    bare = _train(task)
    guarded = _train(task, lambda c: losscli.guard(c, check_every=check_every))
    assert [str(w.message) for w in guarded.alarms] == []
    assert len(checked) == (STEPS if check_every == 1 else 1)  # it looked, and found nothing
    assert all(report.value is not None for report in checked)
    _same_training(guarded, bare)


@pytest.mark.parametrize("task", MISTAKES, ids=lambda t: t.name)
def test_a_planted_mistake_is_one_warning_on_the_first_step(task: Task) -> None:
    bare = _train(task)
    guarded = _train(task, lambda c: losscli.guard(c, check_every=10))
    assert len(guarded.alarms) == 1, [str(w.message) for w in guarded.alarms]
    alarm = guarded.alarms[0]
    assert alarm.category is losscli.LossWarning
    assert issubclass(alarm.category, UserWarning)
    assert task.mistake in [f.name for f in alarm.message.findings]
    assert str(alarm.message).startswith(f"{alarm.message.report.spec.name}: {task.mistake}")
    assert "fix: " in str(alarm.message)
    assert alarm.filename == __file__  # the training script's line, not losscli's
    _same_training(guarded, bare)


@pytest.mark.parametrize("task", MISTAKES, ids=lambda t: t.name)
def test_strict_raises_on_the_first_call(task: Task) -> None:
    features, labels = _dataset()
    torch.manual_seed(0)
    model = _model(task.outputs)
    criterion = losscli.guard(task.criterion(), strict=True)
    with pytest.raises(losscli.LossMisuseError) as raised:
        task.step(criterion, model(features[:BATCH]), labels[:BATCH], features[:BATCH])
    assert task.mistake in [f.name for f in raised.value.findings]
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("task", [TASKS[0], TASKS[1], TASKS[4], TASKS[5]], ids=lambda t: t.name)
def test_other_dtypes(task: Task, dtype: torch.dtype) -> None:
    bare = _train(task, dtype=dtype)
    guarded = _train(task, lambda c: losscli.guard(c, check_every=10), dtype=dtype)
    _same_training(guarded, bare)
    # a loss computed in bfloat16 is a finding of its own (the training sees its rounding),
    # where a value is computed: a shape error leaves none
    expected = {task.mistake} - {""}
    if dtype == torch.bfloat16 and task.mistake != "silent-broadcast":
        expected.add("low-precision")
    assert len(guarded.alarms) == (1 if expected else 0)
    found = {f.name for w in guarded.alarms for f in w.message.findings}
    assert found == expected


@pytest.mark.parametrize("task", [TASKS[0], TASKS[1]], ids=lambda t: t.name)
def test_a_compiled_model_trains_as_without_the_guard(task: Task) -> None:
    bare = _train(task, compile_model=True)
    guarded = _train(task, lambda c: losscli.guard(c, check_every=10), compile_model=True)
    _same_training(guarded, bare)
    assert len(guarded.alarms) == (1 if task.mistake else 0)


def test_a_guard_inside_a_compiled_step_checks_at_a_graph_break(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, labels = _dataset()
    criterion = losscli.guard(nn.CrossEntropyLoss(), check_every=2)
    checked: list[int] = []
    original = guarding._checked
    monkeypatch.setattr(
        guarding, "_checked", lambda *a: checked.append(a[1][0].shape[0]) or original(*a)
    )

    @torch.compile(backend="aot_eager")
    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return criterion(torch.softmax(x, dim=1), y)

    logits = torch.randn(BATCH, CLASSES, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = [step(logits, labels[:BATCH]).item() for _ in range(5)]
    alarms = [w for w in caught if w.category is losscli.LossWarning]
    assert len(alarms) == 1
    assert values == [F.cross_entropy(torch.softmax(logits, 1), labels[:BATCH]).item()] * 5
    assert checked == [BATCH] * 3  # 5 calls, checked eagerly at the 1st, 3rd and 5th


# ---------------------------------------------------------------------------------------
# what a check reads, and when


def test_options_come_from_the_module_as_it_is_at_the_check() -> None:
    weight = torch.tensor([1.0, 3.0])
    criterion = losscli.guard(
        nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1), check_every=1
    )
    logits, labels = torch.randn(8, 2), torch.tensor([0, 1] * 4)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        criterion(logits, labels)
    criterion.label_smoothing = 0.2  # forwarded to the module
    assert criterion.__wrapped__.label_smoothing == 0.2
    seen: list[dict[str, Any]] = []
    original = guarding._checked

    def spy(found: Any, tensors: Any, given: Any) -> Any:
        seen.append(given)
        return original(found, tensors, given)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(guarding, "_checked", spy)
        criterion(logits, labels)
    assert seen[0]["label_smoothing"] == 0.2 and torch.equal(seen[0]["weight"], weight)


def test_a_functions_options_bind_as_torch_binds_them() -> None:
    found = losscli.api.calls.torch_loss(F.huber_loss)
    tensors, given = found.bind((torch.zeros(3), torch.ones(3), "sum", 0.5), {})
    assert len(tensors) == 2 and given == {"reduction": "sum", "delta": 0.5}
    found = losscli.api.calls.torch_loss(F.cross_entropy)
    _, given = found.bind((torch.zeros(3, 2), torch.zeros(3).long()), {"size_average": False})
    assert given["reduction"] == "sum"  # torch's legacy switches, folded as torch folds them


def test_a_mistake_that_appears_later_is_reported_when_it_appears() -> None:
    criterion = losscli.guard(nn.CrossEntropyLoss(), check_every=1)
    logits = torch.randn(BATCH, CLASSES, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(BATCH) % CLASSES
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(6):
            criterion(logits.softmax(1) if step >= 3 else logits, labels)
    alarms = [w for w in caught if w.category is losscli.LossWarning]
    assert len(alarms) == 1 and "probabilities-as-logits" in str(alarms[0].message)


def test_a_large_batch_is_checked_on_evenly_spaced_rows() -> None:
    rows = guarding.CHECKED_ELEMENTS // 10 * 4
    logits = torch.randn(rows, CLASSES, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(rows) % CLASSES
    criterion = losscli.guard(nn.CrossEntropyLoss())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = criterion(logits.softmax(1), labels)
    assert value.item() == F.cross_entropy(logits.softmax(1), labels).item()
    (alarm,) = [w for w in caught if w.category is losscli.LossWarning]
    report = alarm.message.report
    checked = report.inputs["input"].shape[0]
    assert checked * (CLASSES + 1) <= guarding.CHECKED_ELEMENTS < (checked + 2) * (CLASSES + 1)
    assert f"checked on {checked} of {rows} samples, evenly spaced" in str(alarm.message)


def test_a_check_that_cannot_run_says_so_once_and_training_goes_on() -> None:
    criterion = losscli.guard(
        nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: (a - b).abs().sum(1)),
        check_every=1,
    )
    anchor, positive, negative = (torch.randn(8, 4) for _ in range(3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = [criterion(anchor, positive, negative) for _ in range(3)]
    assert [w.category for w in caught] == [RuntimeWarning]
    assert "cannot check triplet-margin-distance" in str(caught[0].message)
    assert values[0].item() == criterion.__wrapped__(anchor, positive, negative).item()


def test_a_guard_never_touches_the_generators() -> None:
    criterion = losscli.guard(nn.CrossEntropyLoss(), check_every=1)
    logits = torch.randn(BATCH, CLASSES).softmax(1)
    labels = torch.arange(BATCH) % CLASSES
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        criterion(logits, labels)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert random.getstate() == states[2]


# ---------------------------------------------------------------------------------------
# the proxy


def test_the_guard_is_a_proxy_of_the_loss() -> None:
    module = nn.CrossEntropyLoss(weight=torch.ones(3))
    criterion = losscli.guard(module)
    assert not isinstance(criterion, nn.Module)
    assert criterion.weight is module.weight
    assert criterion.to(torch.float64) is criterion  # criterion = criterion.to(device) keeps it
    assert module.weight.dtype == torch.float64
    assert criterion.eval() is criterion and not module.training
    assert criterion.__wrapped__ is module
    assert "CrossEntropyLoss" in repr(criterion)
    assert "state_dict" in dir(criterion)
    function = losscli.guard(F.cross_entropy)
    assert function.__name__ == "cross_entropy"


@pytest.mark.parametrize(
    ("loss", "check_every", "error"),
    [
        (nn.Linear(2, 2), 100, TypeError),
        (lambda a, b: (a - b).mean(), 100, TypeError),
        (nn.MSELoss(), 0, ValueError),
        (nn.MSELoss(), 2.5, ValueError),
    ],
    ids=["a-layer", "a-lambda", "zero", "a-float"],
)
def test_a_guard_refuses_what_it_cannot_guard(loss: Any, check_every: Any, error: type) -> None:
    with pytest.raises(error):
        losscli.guard(loss, check_every=check_every)


def _half_ctc() -> tuple[torch.Tensor, ...]:
    """A CTC batch in float16, as a mixed-precision speech model on a GPU hands it over."""
    generator = torch.Generator().manual_seed(4)
    steps, batch, classes, length = 20, 4, 6, 5
    log_probs = torch.randn(steps, batch, classes, generator=generator).log_softmax(2).half()
    targets = torch.randint(1, classes, (batch, length), generator=generator)
    return log_probs, targets, torch.full((batch,), steps), torch.full((batch,), length)


def test_a_dtype_without_a_cpu_kernel_is_checked_in_float32() -> None:
    # torch has no float16 CTC on the CPU: the guard checks in float32 and says so, check()
    # asks for a dtype it can compute in
    criterion = losscli.guard(F.ctc_loss)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(NotImplementedError):  # torch's own error, on this CPU
            criterion(*_half_ctc())
    (alarm,) = caught
    assert alarm.category is losscli.LossWarning
    assert [f.name for f in alarm.message.findings] == ["low-precision"]
    assert "compare losscli's float32 value" in str(alarm.message)
    with pytest.raises(ValueError, match=r"no float16 kernel for ctc .* dtype=torch.float32"):
        losscli.check("ctc", *_half_ctc())
    assert losscli.check("ctc", *_half_ctc(), dtype=torch.float32).value is not None


def test_a_model_in_training_is_not_judged_on_its_fit(checked: list[Any]) -> None:
    # an untrained box regressor's outputs spread like its targets and miss them: what
    # misaligned-samples reads in a trained model's outputs is every model's first step
    torch.manual_seed(1)
    features = torch.randn(256, 16)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    boxes = torch.randn(256, 4) * 0.5
    criterion = nn.SmoothL1Loss(beta=1 / 9)
    outputs = model(features)
    found = [f.name for f in losscli.check(criterion, outputs, boxes).findings]
    assert found == ["misaligned-samples"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losscli.guard(criterion)(outputs, boxes)
    assert caught == []
    (report,) = checked  # the guard's own check saw the finding, and left it to check()
    assert [f.name for f in report.findings] == ["misaligned-samples"]
    assert {
        "constant-input",
        "collapsed-predictions",
        "scale-mismatch",
        "fit-too-good",
        "misaligned-samples",
    } == guarding._MODEL_FINDINGS


# ---------------------------------------------------------------------------------------
# what a training script does with its criterion besides calling it


class _NetWithItsCriterion(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.criterion = losscli.guard(nn.CrossEntropyLoss(label_smoothing=0.1))


def test_a_guard_copies_pickles_and_deep_copies_with_its_model(tmp_path: Any) -> None:
    import copy
    import pickle

    from torch.optim.swa_utils import AveragedModel

    net = _NetWithItsCriterion()
    AveragedModel(net)  # deep-copies the model, criterion included (EMA, SWA)
    for copied in (copy.copy(net.criterion), copy.deepcopy(net.criterion)):
        assert isinstance(copied, losscli.GuardedLoss)
        assert copied.label_smoothing == 0.1
    restored = pickle.loads(pickle.dumps(net))
    assert restored.criterion.label_smoothing == 0.1
    torch.save(net, tmp_path / "net.pt")
    logits, labels = torch.randn(8, 3), torch.arange(8) % 3
    assert restored.criterion(logits, labels).item() == net.criterion(logits, labels).item()


def test_mixed_precision_is_checked_as_autocast_computes_it() -> None:
    # under autocast the model's logits are bfloat16 and torch computes the loss in float32:
    # no low-precision finding, and a real mistake is still found
    model = nn.Linear(20, CLASSES)
    features, labels = torch.randn(BATCH, 20), torch.arange(BATCH) % CLASSES
    criterion = losscli.guard(nn.CrossEntropyLoss(), check_every=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(features)
            assert logits.dtype == torch.bfloat16
            assert criterion(logits, labels).dtype == torch.float32
        assert caught == []
        with torch.autocast("cpu", dtype=torch.bfloat16):
            criterion(model(features).softmax(1), labels)
    assert [f.name for w in caught for f in w.message.findings] == ["probabilities-as-logits"]


def test_a_subclass_with_its_own_forward_is_refused() -> None:
    class ProbabilityNLL(nn.NLLLoss):  # takes probabilities and logs them itself
        def forward(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return super().forward(p.clamp_min(1e-8).log(), t)

    with pytest.raises(TypeError, match=r"overrides NLLLoss\.forward"):
        losscli.guard(ProbabilityNLL())

    class Named(nn.CrossEntropyLoss):  # a subclass that only renames: still cross-entropy
        pass

    assert (
        losscli.check(Named(), torch.randn(4, 3), torch.arange(4) % 3).spec.name == "cross-entropy"
    )


def test_a_partial_of_a_loss_function_is_that_function() -> None:
    import functools

    criterion = losscli.guard(functools.partial(F.cross_entropy, ignore_index=0))
    found = guarding.torch_loss(criterion.__wrapped__)
    _, given = found.bind((torch.randn(4, 3), torch.arange(4) % 3), {})
    assert given == {"ignore_index": 0}
    labels = torch.arange(BATCH) % CLASSES
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        criterion(torch.randn(BATCH, CLASSES).softmax(1), labels)
    assert [f.name for w in caught for f in w.message.findings] == ["probabilities-as-logits"]


def test_distillation_from_a_bfloat16_teacher_is_no_mistake(checked: list[Any]) -> None:
    # the teacher runs in bfloat16; its probabilities, cast with .float(), sum to 1 only
    # within bfloat16's rounding (0.9985 to 1.001 here)
    torch.manual_seed(0)
    teacher, student = nn.Linear(20, CLASSES).bfloat16(), nn.Linear(20, CLASSES)
    features = torch.randn(BATCH, 20)
    target = teacher(features.bfloat16()).softmax(-1).float()
    assert (target.sum(1) - 1).abs().max() > 1e-3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losscli.guard(nn.KLDivLoss(reduction="batchmean"))(
            student(features).log_softmax(-1), target
        )
        losscli.guard(nn.CrossEntropyLoss())(student(features), target)
    assert caught == []
    assert [r.spec.name for r in checked] == ["kl-div", "cross-entropy"]
    assert all(r.ok for r in checked)


def test_a_segmentation_batch_is_checked_on_strided_positions() -> None:
    # two samples of 21 classes at 256 x 256: one sample alone is over the bound, so the
    # check reads one sample at every other pixel, and still finds softmax before the loss
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 21, 256, 256, generator=generator)
    labels = torch.randint(0, 21, (2, 256, 256), generator=generator)
    seen: list[tuple[int, ...]] = []
    original = guarding._checked

    def spy(found: Any, tensors: Any, given: Any) -> Any:
        report, rows = original(found, tensors, given)
        seen.append(report.inputs["input"].shape)
        return report, rows

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        patch.setattr(guarding, "_checked", spy)
        warnings.simplefilter("always")
        value = losscli.guard(nn.CrossEntropyLoss())(logits.softmax(1), labels)
    assert value.item() == F.cross_entropy(logits.softmax(1), labels).item()
    assert seen == [(1, 21, 128, 128)]
    (alarm,) = caught
    assert "probabilities-as-logits" in str(alarm.message)
    assert "checked on 1 of 2 samples, one position in 2 along each of their last 2" in str(
        alarm.message
    )


def test_a_bounded_sample_keeps_what_pairs_the_inputs() -> None:
    from losscli.api.tensors import bounded_rows

    # (B, V, T) logits against (B, T) labels: T is strided in both, V never
    rows = bounded_rows([np.empty((2, 1000, 4096)), np.empty((2, 4096))], 1 << 20)
    assert rows is not None and (rows.positions.size, rows.stride, rows.strided) == (1, 4, 1)
    # (N, C) against (N, C): a class dimension is never strided, rows only
    rows = bounded_rows([np.empty((4096, 1000)), np.empty((4096, 1000))], 1 << 20)
    assert rows is not None and rows.stride == 1 and rows.positions.size == 524
    # CTC: (T, N, C) log-probs and (N, S) targets share no first dimension: checked whole
    assert bounded_rows([np.empty((500, 32, 5000)), np.empty((32, 40))], 1 << 20) is None
    # under the bound: everything
    assert bounded_rows([np.empty((64, 10)), np.empty(64)], 1 << 20) is None
