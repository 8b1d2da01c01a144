"""Findings on sequence models and heteroscedastic heads, from tiny models trained here.

- ``padding-not-ignored``: a next-token model on load_digits images read as token sequences
  (the non-zero pixels in raster order, quantised), padded with id 0 to the longest sequence
  of the batch, evaluated with ``F.cross_entropy(logits, labels)`` and ignore_index left at
  -100.
- ``variance-miscalibrated``: an MLP on load_diabetes with a mean and a sigma head trained
  through ``Normal(mu, sigma).log_prob`` (so sigma is a standard deviation), whose sigma is
  then passed to ``F.gaussian_nll_loss`` as var; and a log-variance head passed as var.

Each fires with a verified fix whose value is torch's on the correctly prepared tensors, and
near misses (the corrected call, trained and untrained heads, data without the mistake's
structure) stay quiet.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from debug_runner import Outcome, debug
from sklearn.datasets import load_diabetes, load_digits

PAD, BOS, EOS = 0, 1, 2
# pixel values 1..16 quantised to 8 tokens 3..10
VOCAB = 11


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def clean_fixes(outcome: Outcome, name: str) -> list[dict[str, object]]:
    """The verified fixes of finding ``name`` that leave no warning or error."""
    return [
        fix
        for fix in outcome.named(name).get("fixes", [])
        if fix.get("verified") is not None and fix["verified"]["findings"] == []
    ]


# --- token sequences ----------------------------------------------------------------------


def digit_sequences(count: int, seed: int) -> list[list[int]]:
    """load_digits images as token sequences: non-zero pixels in raster order, then EOS."""
    images = load_digits().images.astype(np.int64)
    rows = np.random.default_rng(seed).choice(len(images), size=count, replace=False)
    sequences = []
    for image in images[rows]:
        pixels = image.reshape(-1)
        tokens = (pixels[pixels > 0] + 1) // 2 + 2
        sequences.append([*tokens.tolist(), EOS])
    return sequences


def pad_batch(sequences: list[list[int]], pad: int = PAD) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) [N, T] padded to the longest sequence: inputs start with BOS."""
    steps = max(len(s) for s in sequences)
    labels = np.full((len(sequences), steps), pad, dtype=np.int64)
    inputs = np.full((len(sequences), steps), PAD, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        labels[row, : len(sequence)] = sequence
        inputs[row, : len(sequence)] = [BOS, *sequence[:-1]]
    return inputs, labels


class TokenModel(torch.nn.Module):
    """Next token from the previous token and the position: embeddings and a linear head."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.token = torch.nn.Embedding(VOCAB, 16)
        self.position = torch.nn.Embedding(steps, 16)
        self.head = torch.nn.Linear(16, VOCAB)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(inputs.shape[1])
        hidden = torch.tanh(self.token(inputs) + self.position(positions))
        return self.head(hidden)  # [N, T, V]


@cache
def token_model(steps: int = 80, train: bool = True, ignore_pads: bool = True) -> TokenModel:
    """A next-token model trained on 256 digit sequences (padding ignored unless told)."""
    torch.manual_seed(0)
    model = TokenModel(steps)
    if not train:
        return model
    inputs, labels = pad_batch(digit_sequences(256, seed=1))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    ignore = PAD if ignore_pads else -100
    for _ in range(150):
        logits = model(t(inputs)).permute(0, 2, 1)
        loss = F.cross_entropy(logits, t(labels), ignore_index=ignore)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def lm_batch(
    count: int = 16, seed: int = 2, train: bool = True, pad: int = PAD, ignore_pads: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the model's logits [N, V, T] and its labels [N, T] padded with ``pad``."""
    inputs, labels = pad_batch(digit_sequences(count, seed), pad=pad)
    model = token_model(train=train, ignore_pads=ignore_pads)
    with torch.no_grad():
        logits = model(t(inputs)).permute(0, 2, 1)
    return logits.numpy(), labels


@pytest.mark.parametrize("train", [True, False], ids=["trained", "untrained"])
def test_lm_padding_counts_in_the_loss(
    train: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits, labels = lm_batch(train=train)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    found = outcome.named("padding-not-ignored")
    assert found["severity"] == "warning"
    assert "ignore_index=0" in found["fix"]
    padded = int((labels == PAD).sum())
    assert f"{padded} of {labels.size} targets" in found["message"]
    fixes = clean_fixes(outcome, "padding-not-ignored")
    assert [fix["command"].split()[-2:] for fix in fixes] == [["--ignore-index", "0"]]
    assert fixes[0]["verified"]["value"] == (
        F.cross_entropy(t(logits), t(labels), ignore_index=PAD).item()
    )


def test_lm_trained_on_its_pads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # trained without ignore_index too: the easy pads pull the printed loss far below the
    # loss on the real tokens
    logits, labels = lm_batch(ignore_pads=False)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    real = F.cross_entropy(t(logits), t(labels), ignore_index=PAD).item()
    assert outcome.report["value"] == F.cross_entropy(t(logits), t(labels)).item()
    assert outcome.report["value"] < real
    fixes = clean_fixes(outcome, "padding-not-ignored")
    assert fixes and fixes[0]["verified"]["value"] == real


def test_nll_on_log_softmax_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = lm_batch()
    log_probs = t(logits).log_softmax(1).numpy()
    outcome = debug(tmp_path, capsys, "nll", log_probs, labels)
    assert outcome.alarms() == {"padding-not-ignored"}
    fixes = clean_fixes(outcome, "padding-not-ignored")
    assert fixes and fixes[0]["verified"]["value"] == (
        F.nll_loss(t(log_probs), t(labels), ignore_index=PAD).item()
    )


def test_gpt2_style_pad_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GPT-2 has no pad token: collators pad with eos (50256), the last id of the vocabulary
    rng = np.random.default_rng(3)
    vocab, rows, steps = 50257, 6, 20
    lengths = np.array([20, 14, 9, 17, 11, 6])
    labels = rng.zipf(1.3, size=(rows, steps)).clip(max=vocab - 2).astype(np.int64)
    for row, length in enumerate(lengths):
        labels[row, length:] = vocab - 1
    logits = rng.normal(size=(rows, vocab, steps)).astype(np.float32)
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    found = outcome.named("padding-not-ignored")
    assert "ignore_index=50256" in found["fix"]
    assert clean_fixes(outcome, "padding-not-ignored")


# --- near misses ------------------------------------------------------------------------


def assert_quiet(outcome: Outcome) -> None:
    assert "padding-not-ignored" not in {f["name"] for f in outcome.findings}, outcome.summary()
    assert not outcome.alarms(), outcome.alarm_lines()


def test_padding_already_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = lm_batch()
    outcome = debug(
        tmp_path, capsys, "cross-entropy", logits, labels, options=("--ignore-index", "0")
    )
    assert_quiet(outcome)


def test_labels_padded_with_minus_100(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Hugging Face collators set the padded label positions to -100, the default ignore_index
    logits, labels = lm_batch(pad=-100)
    assert_quiet(debug(tmp_path, capsys, "cross-entropy", logits, labels))


def test_equal_length_sequences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # every sequence cut to the shortest: no padding at all
    logits, labels = lm_batch()
    shortest = int((labels != PAD).sum(axis=1).min())
    outcome = debug(tmp_path, capsys, "cross-entropy", logits[..., :shortest], labels[:, :shortest])
    assert_quiet(outcome)


def test_eos_ends_every_row_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # fixed-length windows that each end in EOS: the same last token on every row, once
    logits, labels = lm_batch()
    shortest = int((labels != PAD).sum(axis=1).min())
    window = labels[:, :shortest].copy()
    window[:, -1] = EOS
    outcome = debug(tmp_path, capsys, "cross-entropy", logits[..., :shortest], window)
    assert_quiet(outcome)


def test_frequent_token_zero_spread_through_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # id 0 is "the": Zipfian text where the most frequent token is 0 (22% of tokens), no padding
    rng = np.random.default_rng(4)
    vocab, rows, steps = 50, 32, 24
    frequencies = 1.0 / np.arange(1, vocab + 1)
    labels = rng.choice(vocab, size=(rows, steps), p=frequencies / frequencies.sum())
    logits = rng.normal(size=(rows, vocab, steps)).astype(np.float32)
    logits[np.arange(rows)[:, None], labels, np.arange(steps)] += 2.0
    assert_quiet(debug(tmp_path, capsys, "cross-entropy", logits, labels.astype(np.int64)))


def test_classification_targets_are_not_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one digit label per image, many of them 0: no rows to pad
    digits = load_digits()
    labels = digits.target[:64].astype(np.int64)
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(64, 10)).astype(np.float32)
    logits[np.arange(64), labels] += 3.0
    assert_quiet(debug(tmp_path, capsys, "cross-entropy", logits, labels))


def test_flattened_tokens_show_no_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # logits.view(-1, V) and labels.view(-1): the rows are gone, so nothing can be said
    logits, labels = lm_batch()
    flat_logits = t(logits).permute(0, 2, 1).reshape(-1, VOCAB).numpy()
    outcome = debug(tmp_path, capsys, "cross-entropy", flat_logits, labels.reshape(-1))
    assert "padding-not-ignored" not in {f["name"] for f in outcome.findings}


# --- gaussian-nll: a standard deviation or a log-variance passed as var ---------------------


def diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    features, target = load_diabetes(return_X_y=True)
    features = (features - features.mean(0)) / features.std(0)
    return torch.tensor(features, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)


def heteroscedastic_mlp(
    features: torch.Tensor, target: torch.Tensor, head: str, steps: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """An MLP with a mean and a spread head, trained ``steps`` Adam steps; (mean, spread).

    ``head``: ``"variance"`` (softplus, trained with F.gaussian_nll_loss), ``"sigma"``
    (softplus, trained with Normal(mu, sigma).log_prob) or ``"log-variance"`` (linear, trained
    with Normal(mu, exp(log_var / 2)).log_prob).
    """
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(features.shape[1], 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)

    def spread(raw: torch.Tensor) -> torch.Tensor:
        return raw if head == "log-variance" else F.softplus(raw) + 1e-4

    for _ in range(steps):
        mean, raw = model(features).unbind(1)
        if head == "variance":
            loss = F.gaussian_nll_loss(mean, target, spread(raw))
        else:
            scale = (0.5 * raw).exp() if head == "log-variance" else spread(raw)
            loss = -torch.distributions.Normal(mean, scale).log_prob(target).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        mean, raw = model(features).unbind(1)
        return mean.numpy(), spread(raw).numpy()


@cache
def standardised_diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    features, target = diabetes()
    return features, (target - target.mean()) / target.std()


@pytest.mark.parametrize("steps", [300, 2000])
def test_sigma_head_passed_as_var(
    steps: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features, target = standardised_diabetes()
    mean, sigma = heteroscedastic_mlp(features, target, "sigma", steps)
    outcome = debug(tmp_path, capsys, "gaussian-nll", mean, target.numpy(), sigma)
    found = outcome.named("variance-miscalibrated")
    assert found["severity"] == "warning"
    assert "a standard deviation" in found["message"]
    fixes = clean_fixes(outcome, "variance-miscalibrated")
    assert [fix["code"] for fix in fixes] == ["var = var ** 2"]
    assert fixes[0]["verified"]["value"] == (
        F.gaussian_nll_loss(t(mean), target, t(sigma) ** 2).item()
    )


def test_log_variance_head_passed_as_var(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # disease progression in its own units (25 to 346): log-variances of 6 to 9, all positive,
    # so nonpositive-variance cannot see the mistake
    features, target = diabetes()
    mean, log_var = heteroscedastic_mlp(features, target, "log-variance", 3000)
    assert log_var.min() > 0
    outcome = debug(tmp_path, capsys, "gaussian-nll", mean, target.numpy(), log_var)
    assert "nonpositive-variance" not in {f["name"] for f in outcome.findings}
    found = outcome.named("variance-miscalibrated")
    assert "a log-variance" in found["message"]
    fixes = clean_fixes(outcome, "variance-miscalibrated")
    assert [fix["code"] for fix in fixes] == ["var = var.exp()"]
    assert fixes[0]["verified"]["value"] == (
        F.gaussian_nll_loss(t(mean), target, t(log_var).exp()).item()
    )


def variance_quiet(outcome: Outcome) -> None:
    assert "variance-miscalibrated" not in {f["name"] for f in outcome.findings}, outcome.summary()
    assert not outcome.alarms(), outcome.alarm_lines()


@pytest.mark.parametrize("steps", [0, 300, 2000])
def test_variance_head_trained_with_gaussian_nll(
    steps: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features, target = standardised_diabetes()
    mean, var = heteroscedastic_mlp(features, target, "variance", steps)
    variance_quiet(debug(tmp_path, capsys, "gaussian-nll", mean, target.numpy(), var))


@pytest.mark.parametrize("steps", [300, 2000])
def test_variance_head_still_growing_to_raw_targets(
    steps: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # raw targets: errors in the thousands, a softplus head still far below them; errors grow
    # steeply with it, but no reading of it matches their size
    features, target = diabetes()
    mean, var = heteroscedastic_mlp(features, target, "variance", steps)
    outcome = debug(tmp_path, capsys, "gaussian-nll", mean, target.numpy(), var)
    assert "variance-miscalibrated" not in {f["name"] for f in outcome.findings}


def test_known_heteroscedastic_variance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(6)
    inputs = rng.uniform(-3, 3, size=500)
    variance = (0.2 + 0.8 * np.abs(inputs)) ** 2
    target = 2 * np.sin(inputs) + np.sqrt(variance) * rng.normal(size=500)
    mean = 2 * np.sin(inputs)
    arrays = (a.astype(np.float32) for a in (mean, target, variance))
    variance_quiet(debug(tmp_path, capsys, "gaussian-nll", *arrays))


@pytest.mark.parametrize("factor", [0.01, 0.1, 0.25, 4.0, 10.0, 100.0])
def test_variance_off_by_a_constant_factor(
    factor: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a variance head over- or under-confident by a constant factor is still a variance: its
    # errors grow like it (slope 1), whatever their size; the size alone fires nothing
    rng = np.random.default_rng(7)
    inputs = rng.uniform(-3, 3, size=300)
    variance = 400 * (0.2 + 0.8 * np.abs(inputs)) ** 2  # in the targets' own units
    mean = 150 + 60 * np.sin(inputs)
    target = mean + np.sqrt(variance) * rng.normal(size=300)
    arrays = (a.astype(np.float32) for a in (mean, target, variance * factor))
    outcome = debug(tmp_path, capsys, "gaussian-nll", *arrays)
    assert "variance-miscalibrated" not in {f["name"] for f in outcome.findings}, outcome.summary()


def test_constant_variance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features, target = standardised_diabetes()
    mean, sigma = heteroscedastic_mlp(features, target, "sigma", 300)
    constant = np.full_like(sigma, float(sigma.mean()))
    variance_quiet(debug(tmp_path, capsys, "gaussian-nll", mean, target.numpy(), constant))


def test_few_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features, target = standardised_diabetes()
    mean, sigma = heteroscedastic_mlp(features, target, "sigma", 2000)
    outcome = debug(tmp_path, capsys, "gaussian-nll", mean[:20], target.numpy()[:20], sigma[:20])
    variance_quiet(outcome)


# --- (N, T, C) logits with T == C: the layout only the fit can tell -------------------------

ROWS_AS_STEPS = 8  # a digit image read as 8 time steps (its pixel rows) of 8 features
ROW_CLASSES = 8  # each step tagged with the octile of its row's ink: T == C == 8


def digit_rows(count: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """load_digits images as (N, T=8, 8) step features and (N, T) tags: the ink octile per row."""
    images = load_digits().images
    chosen = np.random.default_rng(seed).choice(len(images), size=count, replace=False)
    steps = images[chosen] / 16.0
    ink = steps.sum(axis=2)
    edges = np.quantile(images.sum(axis=2) / 16.0, np.linspace(0, 1, ROW_CLASSES + 1)[1:-1])
    return torch.tensor(steps, dtype=torch.float32), np.digitize(ink, edges).astype(np.int64)


@cache
def row_tagger(train: bool = True) -> torch.nn.Module:
    """A per-step tagger: Linear(8 -> 16) -> tanh -> Linear(16 -> C), trained on (N, C, T)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, ROW_CLASSES)
    )
    if train:
        features, tags = digit_rows(512, seed=7)
        optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
        for _ in range(300):
            loss = F.cross_entropy(model(features).permute(0, 2, 1), t(tags))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model


def tagger_batch(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The tagger's (N, T, C) logits on 64 other images, and their (N, T) tags."""
    model = row_tagger(train)
    features, tags = digit_rows(64, seed=8)
    with torch.no_grad():
        return model(features).numpy(), tags


def test_steps_and_classes_mixed_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, tags = tagger_batch()  # (64, 8, 8) straight from the Linear: classes last
    outcome = debug(tmp_path, capsys, "cross-entropy", logits, tags)
    found = outcome.named("class-dim-last")
    assert found["severity"] == "warning"
    assert "transpose(1, 2)" in found["fix"]
    fixes = clean_fixes(outcome, "class-dim-last")
    assert [fix["code"] for fix in fixes] == ["input = input.transpose(1, 2)"]
    assert fixes[0]["verified"]["value"] == (
        F.cross_entropy(t(logits).transpose(1, 2), t(tags)).item()
    )


def test_steps_and_classes_in_torch_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits, tags = tagger_batch()
    ordered = np.ascontiguousarray(logits.transpose(0, 2, 1))  # (N, C, T), as trained
    outcome = debug(tmp_path, capsys, "cross-entropy", ordered, tags)
    assert "class-dim-last" not in {f["name"] for f in outcome.findings}, outcome.summary()
    assert not outcome.alarms(), outcome.alarm_lines()


@pytest.mark.parametrize("layout", ["classes-last", "classes-first"])
def test_untrained_tagger_says_nothing_about_layout(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits, tags = tagger_batch(train=False)
    given = logits if layout == "classes-last" else np.ascontiguousarray(logits.transpose(0, 2, 1))
    outcome = debug(tmp_path, capsys, "cross-entropy", given, tags)
    assert "class-dim-last" not in {f["name"] for f in outcome.findings}, outcome.summary()


# --- (N, C, T) log-probabilities flattened without moving the classes last -----------------


@pytest.mark.parametrize("train", [True, False], ids=["trained", "untrained"])
def test_log_probs_flattened_with_classes_in_place(
    train: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits, labels = lm_batch(train=train)
    log_probs = t(logits).log_softmax(1)  # (N, C, T)
    wrong = log_probs.reshape(-1, VOCAB).numpy()  # should be permute(0, 2, 1) first
    flat_labels = labels.reshape(-1)
    outcome = debug(tmp_path, capsys, "nll", wrong, flat_labels, options=("--ignore-index", "0"))
    found = outcome.named("logits-to-nll")
    assert "permute(0, 2, 1)" in found["fix"]
    assert f"({len(labels)}, {VOCAB}, {labels.shape[1]})" in found["message"]
    fixes = clean_fixes(outcome, "logits-to-nll")
    assert len(fixes) == 1
    right = log_probs.permute(0, 2, 1).reshape(-1, VOCAB)
    assert fixes[0]["verified"]["value"] == (
        F.nll_loss(right, t(flat_labels), ignore_index=PAD).item()
    )


def test_log_probs_flattened_then_sampled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # every other row kept: the (N, C, T) order cannot be rebuilt, the fix is shown, unverified
    logits, labels = lm_batch()
    wrong = t(logits).log_softmax(1).reshape(-1, VOCAB).numpy()[::2]
    outcome = debug(
        tmp_path, capsys, "nll", wrong, labels.reshape(-1)[::2], options=("--ignore-index", "0")
    )
    found = outcome.named("logits-to-nll")
    assert "permute(0, 2, 1)" in found["fix"]
    assert [fix["verified"] for fix in found["fixes"]] == [None]


def test_log_probs_flattened_correctly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logits, labels = lm_batch()
    right = t(logits).log_softmax(1).permute(0, 2, 1).reshape(-1, VOCAB).numpy()
    outcome = debug(
        tmp_path, capsys, "nll", right, labels.reshape(-1), options=("--ignore-index", "0")
    )
    assert not outcome.alarms(), outcome.alarm_lines()


def test_label_smoothed_log_probs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a tagger trained with label smoothing: flatter, still normalised log-probabilities
    features, tags = digit_rows(512, seed=7)
    torch.manual_seed(1)
    model = torch.nn.Linear(8, ROW_CLASSES)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(200):
        loss = F.cross_entropy(model(features).permute(0, 2, 1), t(tags), label_smoothing=0.2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        log_probs = model(features).log_softmax(2).reshape(-1, ROW_CLASSES).numpy()
    outcome = debug(tmp_path, capsys, "nll", log_probs, tags.reshape(-1))
    assert not outcome.alarms(), outcome.alarm_lines()


def test_large_vocabulary_float32_rounding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # confident float32 log-probabilities over 5000 classes: rows round to within 1e-6 of 0
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 5000, size=64)
    logits = rng.normal(scale=3.0, size=(64, 5000)).astype(np.float32)
    logits[np.arange(64), labels] += 25.0
    log_probs = t(logits).log_softmax(1).numpy()
    outcome = debug(tmp_path, capsys, "nll", log_probs, labels)
    assert not outcome.alarms(), outcome.alarm_lines()


def test_padding_found_the_same_when_streamed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the counts per class are added over chunks of rows: streamed, the same finding and pad
    logits, labels = lm_batch(count=64, seed=10)
    whole = debug(tmp_path, capsys, "cross-entropy", logits, labels)
    streamed = debug(
        tmp_path, capsys, "cross-entropy", logits, labels, options=("--memory-budget", "64KB")
    )
    assert streamed.report.get("streamed") is True
    assert (
        whole.named("padding-not-ignored")["message"]
        == (streamed.named("padding-not-ignored")["message"])
    )


def test_negative_log_variances_are_left_to_nonpositive_variance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # standardised targets: log-variances around 0, many negative; torch rejects them
    features, target = standardised_diabetes()
    mean, log_var = heteroscedastic_mlp(features, target, "log-variance", 300)
    assert log_var.min() < 0
    outcome = debug(tmp_path, capsys, "gaussian-nll", mean, target.numpy(), log_var)
    assert "nonpositive-variance" in outcome.errors()
    assert "variance-miscalibrated" not in {f["name"] for f in outcome.findings}
