"""Findings: what losscli says about the inputs, and the catalogue of finding names."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from losscli.printable import printable


class Severity(str, enum.Enum):
    """How bad a finding is; ordered ``info < warning < error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Remedy:
    """A concrete change that should clear a finding, as data losscli can apply (ruff's ``Fix``).

    A check proposes remedies; :mod:`losscli.fixes` applies each one to the same inputs,
    re-runs the pipeline and keeps it only when it clears the finding without adding an
    error. A remedy changes the inputs (``maps``), the command (``loss``, ``options``,
    ``order``) or lies outside the inputs (``outside``: a change to the model, which cannot
    be tried here).

    Attributes:
        maps: ``--map`` lines (``"target = target - 1"``), in PyTorch syntax.
        loss: another loss to run, or None to keep the loss.
        options: torch keyword → value to set; None sets it back to torch's default.
        order: the loss's argument names in the order the INPUTs should be given (the
            inputs were given in the wrong order), or None.
        code: the line for the training script when it is not the map (for an ``outside``
            remedy, or a loss given its torch spelling: ``F.binary_cross_entropy_with_logits``).
        outside: the change lies outside the inputs; it is shown, never verified.
        note: how to tell this remedy from the others offered (which cause it assumes).
    """

    maps: tuple[str, ...] = ()
    loss: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    order: tuple[str, ...] | None = None
    code: str | None = None
    outside: bool = False
    note: str = ""


@dataclass(frozen=True)
class Verified:
    """What running a remedy's command gives: losscli applied it and re-ran every check.

    Attributes:
        value: the loss the command prints (None when it cannot compute one).
        findings: the names of the findings at warning or above that remain.
        loss: the loss the command runs (for the text; the command names it in JSON).
    """

    value: float | None
    findings: tuple[str, ...] = ()
    loss: str = field(default="", compare=False)

    def text(self) -> str:
        """``cross-entropy = 0.386697, no findings`` (or the findings that remain)."""
        value = "no value" if self.value is None else f"{self.value:.6g}"
        remaining = f"still {', '.join(self.findings)}" if self.findings else "no findings"
        return f"{self.loss} = {value}, {remaining}"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "findings": list(self.findings)}


@dataclass(frozen=True)
class Fix:
    """A remedy as shown: the code line, the command that runs it here, and its outcome.

    Attributes:
        code: the one-line change to the user's PyTorch code (the ``--map`` line when there
            is one), or None.
        command: the exact losscli command to run instead, or None (a change outside the
            inputs).
        verified: the outcome of the command, or None when it could not be tried (a change
            outside the inputs, or inputs that were streamed).
        note: which cause this remedy assumes, when several are offered.
        invocation: the command as data (:class:`losscli.invocation.Invocation`), for a
            recommendation that applies fixes one after another; not shown.
    """

    code: str | None
    command: str | None
    verified: Verified | None
    note: str = ""
    invocation: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("code", "command", "note"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, printable(value))

    def outcome(self) -> str:
        """One line: ``after `target = target - 1`: cross-entropy = 0.627479, no findings``."""
        what = f"`{self.code}`" if self.code else f"`{self.command}`"
        if self.verified is None:
            reason = "a change to the model" if self.command is None else "the inputs streamed"
            return f"{what} (not tried here: {reason})"
        return f"after {what}: {self.verified.text()}"

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if self.code is not None:
            record["code"] = self.code
        if self.command is not None:
            record["command"] = self.command
        record["verified"] = None if self.verified is None else self.verified.to_dict()
        if self.note:
            record["note"] = self.note
        return record


@dataclass(frozen=True)
class Finding:
    """One observation about the inputs or the result.

    Attributes:
        name: kebab-case name from :data:`CATALOGUE` (states the problem).
        severity: info, warning or error.
        message: what was seen, with the numbers that triggered it.
        fix: the human sentence: what to change in the user's PyTorch code, and why.
        evidence: machine-readable numbers behind the message (counts, positions, shapes).
        blocking: the inputs cannot work for the loss, so torch is not called (value null).
        remedies: the concrete changes the check proposes (not yet tried).
        fixes: the remedies losscli tried and kept, with their outcome (:mod:`losscli.fixes`).
    """

    name: str
    severity: Severity
    message: str
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    blocking: bool = False
    remedies: tuple[Remedy, ...] = field(default=(), compare=False)
    fixes: tuple[Fix, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        # a file name in a message may hold a newline or an escape sequence
        object.__setattr__(self, "message", printable(self.message))
        object.__setattr__(self, "fix", printable(self.fix))

    def fix_text(self) -> str:
        """The fix sentence and each fix's outcome with its command, on one line (logs, CSV)."""
        parts = [self.fix] if self.fix else []
        for fix in self.fixes:
            command = f" — run {fix.command}" if fix.command else ""
            parts.append(fix.outcome() + command)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
            "fixes": [f.to_dict() for f in self.fixes],
        }
        if self.evidence:
            record["evidence"] = self.evidence
        return record


@dataclass(frozen=True)
class FindingDoc:
    """The documentation record of one finding name, rendered by ``losscli explain``.

    Attributes:
        name: the finding's name.
        severity: its usual severity (some findings are raised at two levels).
        summary: one line: fires when ...
        what: *What it checks*.
        why: *Why it matters*.
        example: *Example*: how the mistake happens in training code, with a code line.
        instead: *Instead*: the fix, and the losscli command to run.
        remedies: the kinds of remedy losscli tries for it, each verified before it is
            shown (``--map 'target = target - 1'`` for 1-based labels, another loss, an
            option, a change to the model).

    Which losses can raise it is not kept here: ``losscli explain`` derives it from the
    checks that raise it (``checks.losses_raising``), and from conversion and the pipeline.
    """

    name: str
    severity: str
    summary: str
    what: str = ""
    why: str = ""
    example: str = ""
    instead: str = ""
    remedies: tuple[str, ...] = ()


def _doc(
    name: str,
    severity: str,
    summary: str,
    *,
    what: str,
    why: str,
    example: str,
    instead: str,
    remedies: tuple[str, ...] = (),
) -> FindingDoc:
    return FindingDoc(
        name=name,
        severity=severity,
        summary=summary,
        what=what,
        why=why,
        example=example,
        instead=instead,
        remedies=remedies,
    )


# The catalogue: every finding losscli can raise. The names are a contract (SPEC.md).
CATALOGUE: dict[str, FindingDoc] = {
    doc.name: doc
    for doc in (
        _doc(
            "shape-mismatch",
            "error",
            "shapes cannot work for this loss",
            what="The shapes of the inputs against the shapes the loss documents "
            "(`losscli explain LOSS` lists them): same shape for element-wise losses, "
            "[batch, classes] against [batch] for class-index losses, [time, batch, classes] for ctc.",
            why="torch either raises (`The size of tensor a (4) must match the size of tensor b (5) "
            "at non-singleton dimension 0`) or, worse, finds a way to broadcast. Either way the "
            "predictions and targets are not paired sample by sample.",
            example="Predictions from one batch compared with targets from another, or a tail "
            "batch dropped on one side: `loss = F.mse_loss(model(x[:4]), y[:5])`.",
            instead="Make both sides cover the same samples in the same order; print "
            "`pred.shape, target.shape` right before the loss. Check with "
            "`losscli debug mse pred.npy true.npy`.",
            remedies=(
                "`--map` that squeezes a dimension of size 1, restores a flattened side's shape "
                "(`target = target.reshape(-1)`) or moves the classes to dimension 1 (`input = "
                "input.permute(0, 3, 1, 2)`)",
                "`--map 'target = target.argmax(1)'` for one-hot targets of a class-index loss",
                "C output channels against a one-channel mask: one output channel in the model "
                "(shown, not verified), or cross-entropy on `target.squeeze(1).long()` when the "
                "channels are class scores",
                "bce-logits for a 1-D cross-entropy input with one 0/1 label per score",
                "logits at another resolution than the mask: `F.interpolate` in the model code "
                "(shown, not verified)",
            ),
        ),
        _doc(
            "silent-broadcast",
            "error",
            "shapes differ but broadcast: torch computes the wrong value",
            what="Element-wise losses whose prediction and target shapes differ but broadcast, "
            "typically (N, 1) against (N,), which broadcasts to an (N, N) grid.",
            why="torch only warns (`Using a target size (torch.Size([N])) that is different to the "
            "input size (torch.Size([N, 1]))`) and returns the mean over all N×N pairs: a "
            "plausible number that is wrong, and a gradient that pulls every prediction towards "
            "the mean of all targets.",
            example="A regression head `nn.Linear(hidden, 1)` outputs (N, 1) while the labels are "
            "(N,): `loss = F.mse_loss(model(x), y)`.",
            instead="Squeeze the extra dimension: `F.mse_loss(model(x).squeeze(1), y)` (or "
            "`y.unsqueeze(1)`). Check it with "
            "`losscli compute mse pred.npy true.npy --map 'input = input.squeeze(1)'`.",
            remedies=(
                "`--map 'input = input.squeeze(1)'` for (N, 1) predictions against (N,) targets, "
                "`--map 'target = target.squeeze(1)'` for the reverse",
                "C output channels against a one-channel target: one output channel in the model "
                "(shown, not verified)",
                "one row standing for the whole batch: saved again with one row per sample "
                "(shown, not verified)",
            ),
        ),
        _doc(
            "batch-size-mismatch",
            "error",
            "first (batch) dimensions differ",
            what="The batch dimension (N) of every input: cross-entropy on (8, 3) and (6,) has "
            "N=8 in the input but N=6 in the target.",
            why="torch raises `Expected input batch_size (8) to match target batch_size (6)`, or "
            "for element-wise losses a size mismatch; the samples cannot be paired.",
            example="Flattening spatial dimensions on one side only, or a collate function that "
            "drops samples: `F.cross_entropy(logits.view(-1, C), labels)` with labels still "
            "shaped (N, H, W) in another order.",
            instead="Give every input the same samples in the same order; for segmentation pass "
            "logits (N, C, H, W) with targets (N, H, W) unflattened. "
            "`losscli debug cross-entropy logits.npy labels.npy` names N in each file.",
            remedies=(
                "every input saved from the same batch (shown, not verified: the samples differ)",
                "`--map 'target = target.reshape(-1)'` when the input is flattened to (N*..., C)",
                "`--map 'log_probs = log_probs.transpose(0, 1)'` for batch-first ctc log_probs",
            ),
        ),
        _doc(
            "target-has-extra-dim",
            "error",
            "class-index target of shape (N, 1)",
            what="Class-index targets with a trailing dimension of size 1: (N, 1) where "
            "cross-entropy and nll want (N,).",
            why="torch raises `0D or 1D target tensor expected, multi-target not supported`: it "
            "reads a 2-D integer target as several targets per sample.",
            example="Labels read from a one-column CSV or DataFrame: "
            "`labels = torch.tensor(df[['label']].values)` has shape (N, 1).",
            instead="Squeeze the column: `F.cross_entropy(logits, target.squeeze(1).long())`. "
            "losscli reads one column with `labels.csv:label`.",
            remedies=("`--map 'target = target.squeeze(1)'`",),
        ),
        _doc(
            "class-dim-last",
            "warning",
            "cross-entropy input (N, H, W, C) where torch wants (N, C, H, W)",
            what="Cross-entropy input with spatial dimensions whose last dimension, not the "
            "second, matches the class count implied by the targets (channels-last logits). "
            "Where the shape reads both ways ((N, T, C) sequence logits with T == C), it fires "
            "only when the targets fit the classes-last reading far better (cross-entropy "
            "under log_softmax over each candidate dimension).",
            why="torch always reads dimension 1 as the classes. Channels-last logits either fail "
            "with a shape error against (N, H, W) targets or, when sizes happen to agree, "
            "softmax over the wrong axis and compute a meaningless loss.",
            example="Logits from a channels-last model or a Keras port, or after "
            "`logits.permute(0, 2, 3, 1)` for plotting: `F.cross_entropy(logits_nhwc, mask)`.",
            instead="Move the classes to dimension 1: "
            "`F.cross_entropy(logits.permute(0, 3, 1, 2), mask)`; save the permuted array and run "
            "`losscli compute cross-entropy logits.npy mask.npy`.",
            remedies=(
                "`--map 'input = input.permute(0, 3, 1, 2)'`: the classes moved to dimension 1",
                "`--map 'input = input.transpose(1, 2)'` for (N, T, C) sequence logits",
            ),
        ),
        _doc(
            "empty-input",
            "error",
            "an input has zero elements",
            what="Every input that was read but holds zero elements (shape (0,), (0, C), ...).",
            why="A mean over zero elements is 0/0: torch returns NaN (`F.mse_loss` on empty "
            "tensors gives nan), and NaN then spreads into the weights.",
            example="A filter that removes every sample of a batch: "
            "`loss = F.mse_loss(pred[mask], target[mask])` where `mask` is all False.",
            instead="Skip the batch when it is empty (`if mask.any(): ...`) or use "
            "`reduction='sum'`; check the file or the column selection (`file.csv:col`).",
        ),
        _doc(
            "float-class-target",
            "warning / error",
            "float class indices: integral ones are cast (torch would raise), fractional ones are an error",
            what="Class-index targets (or ctc lengths) stored as floats in a binary file (npy, npz, "
            "Parquet, .pt). Whole numbers are cast to int64 and the value computed, with a warning "
            "that quotes the error torch itself raises on them (info where torch accepts floats: ctc "
            "label sequences); any fractional value is an error, because casting would change the "
            "label. Text (CSV, inline arrays) has no dtype: whole numbers read from it are class "
            "indices, no finding.",
            why="torch 2.13 raises `expected target dtype to be Long or Byte, but got Float` "
            "(cross_entropy, nll_loss) or `expected scalar type Long but found Float` (the margin "
            "losses) for float class indices, so the training script crashes where losscli computes. "
            "Fractional values are not labels at all: usually probabilities or regression targets "
            "given to a classification loss.",
            example="Labels loaded through numpy or pandas as float64: "
            "`target = torch.from_numpy(np.loadtxt('labels.csv'))`.",
            instead="Cast in the data pipeline: `target.long()`. If the values are soft labels, "
            "give one column per class shaped like the logits (cross-entropy accepts class "
            "probabilities since PyTorch 1.10).",
            remedies=(
                "`target = target.long()` when every value is a whole number",
                "`target = (target * 255).round().long()` for a label mask divided by 255 (values k/255)",
            ),
        ),
        _doc(
            "int-target-for-float-loss",
            "info",
            "integer targets for a loss that needs float targets: cast to float",
            what="Integer targets given to a loss that computes on float targets (bce, "
            "bce-logits, mse, hinge losses...). losscli casts them and says so.",
            why="Several torch losses refuse integer targets: bce raises `Found dtype Long but "
            "expected Float`, bce-logits `result type Float can't be cast to the desired output "
            "type Long`; others (mse) silently promote. The cast is exact, so the value is "
            "unaffected.",
            example="Binary labels kept as int64: "
            "`F.binary_cross_entropy_with_logits(logits, labels)` where `labels = torch.tensor([0, 1, 1])`.",
            instead="Cast once in the data pipeline: `labels.float()`. Nothing to change for losscli.",
            remedies=("`target = target.float()` (`.double()` with `--dtype float64`)",),
        ),
        _doc(
            "mixed-float-dtypes",
            "info",
            "inputs of different float dtypes",
            what="Float inputs stored in different dtypes (float64 predictions against float32 "
            "targets, say). losscli converts both to the compute dtype (`--dtype`).",
            why="Depending on the loss, torch either promotes to the wider dtype or raises "
            "`Found dtype Double but expected Float`; in training code it often means a tensor "
            "built from numpy (float64 by default) met the model's float32 output.",
            example="`target = torch.from_numpy(y)` with `y` a float64 numpy array, against "
            "float32 model output.",
            instead="Convert at the source: `torch.from_numpy(y).float()` or "
            "`torch.as_tensor(y, dtype=torch.float32)`. Use `--dtype float64` to compute in double.",
        ),
        _doc(
            "low-precision",
            "warning",
            "float16/bfloat16 inputs: the loss in that precision against float64",
            what="Inputs stored as float16 or bfloat16; losscli computes the loss in that "
            "precision and in float64 and reports the difference.",
            why="float16 keeps about 3 significant digits and overflows above 65504; bfloat16 "
            "keeps about 2 to 3. log, exp and sums of many terms lose accuracy, so the loss and "
            "its gradient can be visibly off or overflow to Inf.",
            example="Loss computed on half-precision outputs outside autocast: "
            "`loss = F.cross_entropy(model.half()(x), y)`.",
            instead="Compute the loss in float32: `F.cross_entropy(logits.float(), y)`, or let "
            "`torch.autocast` run the loss (it does so in float32). "
            "`losscli compute LOSS ... --dtype float32` shows the float32 value.",
            remedies=(
                "the loss computed in float32 in the training code (shown, not verified: losscli "
                "computes in --dtype already)",
            ),
        ),
        _doc(
            "class-index-out-of-range",
            "error",
            "a class index is >= C or negative (and not ignore_index)",
            what="Class indices outside [0, C), where C is the size of the input's class "
            "dimension; values equal to `--ignore-index` are allowed.",
            why="On CPU torch raises `IndexError: Target <value> is out of bounds.`, naming the "
            "first offending index it meets (the finding quotes torch's error for your targets); "
            "on CUDA it is a device-side assert (`t >= 0 && t < n_classes`) that kills the "
            "process and reports somewhere else.",
            example="1-based labels (1..C) from a CSV, a void label 255 in segmentation masks, "
            "or -1 padding: `F.cross_entropy(logits, labels)` with `labels.max() == C`.",
            instead="1-based labels: `labels - 1`. Void or padding labels: "
            "`F.cross_entropy(logits, labels, ignore_index=255)` "
            "(`losscli compute cross-entropy logits.npy labels.npy --ignore-index 255`). "
            "Otherwise the model head has too few classes.",
            remedies=(
                "`target = target - 1` for 1-based labels 1..C",
                "`--ignore-index V` for a single void or padding value V (dropped when V stands for a class holding more than a small share of the samples)",
                "`target = target + 1` for labels -1..C-2 (a signed scale)",
                "`target = (target > 0).long()` for -1/+1 labels of a 2-class model",
                "`target = target // 255` for a 0/255 mask, `target = (target > 127).long()` for a black/white mask saved as pixel values",
                "ctc: `target_lengths = (targets >= 0).sum(1)` when padding is counted as labels",
                "a model with more output classes (shown, not verified)",
            ),
        ),
        _doc(
            "all-targets-ignored",
            "error",
            "every target equals ignore_index: the mean is NaN",
            what="Whether any target is left after removing those equal to `ignore_index`.",
            why="The mean divides by the number (or total weight) of non-ignored targets; with "
            "none left torch returns 0/0 = NaN, and one NaN loss corrupts the model on the next "
            "optimizer step.",
            example="A segmentation crop made only of void pixels (255), or a padded sequence "
            "batch made only of padding: `F.cross_entropy(logits, mask, ignore_index=255)`.",
            instead="Skip batches with nothing to learn (`if (target != ignore_index).any(): ...`) "
            "or use `reduction='sum'` and divide by a count you control.",
            remedies=(
                "skip the batch when no target is labelled (a change to the training loop: shown, not verified)",
            ),
        ),
        _doc(
            "target-outside-unit-interval",
            "error",
            "bce/bce-logits/focal/dice target outside [0, 1]",
            what="Targets of the binary losses (bce, bce-logits, focal, dice, "
            "multilabel-soft-margin) outside [0, 1].",
            why="These losses read the target as the probability of the positive class. bce "
            "raises `all elements of target should be between 0 and 1` (a device-side assert on "
            "CUDA); bce-logits, focal and multilabel-soft-margin do not check: with a target of "
            "255 the loss goes negative (about -1524 for logits 3 and 9) and decreases without "
            "bound as the logits grow, so the model learns nonsense.",
            example="Segmentation masks saved as 0/255 PNGs, or labels {1, 2}: "
            "`F.binary_cross_entropy_with_logits(logits, mask)` with `mask.max() == 255`.",
            instead="0/255 masks: `mask / 255`. Labels {1, 2}: `labels - 1`. Labels {-1, 1}: "
            "`(labels + 1) / 2`, or use soft-margin, which takes signs.",
            remedies=(
                "`target = target / 255` for 0/255 masks and 0-255 pixel values",
                "`target = (target + 1) / 2` for -1/+1 labels, or soft-margin on the logits",
                "`target = (target == b).float()` for two labels a < b (the values seen, written in)",
                "cross-entropy when bce-logits has one logit per class and the targets are class indices",
            ),
        ),
        _doc(
            "input-outside-unit-interval",
            "error",
            "bce input outside [0, 1]: logits given to bce",
            what="The input of bce (binary cross-entropy on probabilities) outside [0, 1].",
            why="`F.binary_cross_entropy` takes probabilities. On CPU torch raises `all elements "
            "of input should be between 0 and 1`; on CUDA it is a device-side assert. The values "
            "are almost always raw logits.",
            example="The model returns logits but the loss is BCELoss: "
            "`nn.BCELoss()(model(x), y)` with no sigmoid in the model.",
            instead="Keep the logits and use the loss that applies the sigmoid itself, stably: "
            "`nn.BCEWithLogitsLoss()(logits, y)`; "
            "`losscli compute bce-logits logits.npy targets.npy`.",
            remedies=(
                "bce-logits on the same inputs, if they are logits",
                "`--map 'input = (input + 1) / 2'`, if they are tanh outputs (all within [-1, 1])",
                "`--map 'input = input.clamp(0, 1)'` for probabilities a rounding error outside "
                "[0, 1]",
            ),
        ),
        _doc(
            "sign-target-expected",
            "error",
            "a {-1, 1} target is needed but another was given",
            what="The target of hinge-embedding, margin-ranking, cosine-embedding and "
            "soft-margin: it must hold only -1 and 1.",
            why="torch does not check, and 0 is silently wrong: hinge-embedding counts a 0 as "
            "both classes (x + max(0, margin - x)), cosine-embedding gives it loss 0, and "
            "margin-ranking and soft-margin give it a constant loss (margin, log 2) with no "
            "gradient. A random-normal target means the pairs were never labelled.",
            example="Reusing the {0, 1} 'same class' labels of a classifier as pair labels: "
            "`nn.HingeEmbeddingLoss()(distances, same_class.float())`.",
            instead="Map {0, 1} to {-1, 1}: `2 * labels - 1` (or `labels * 2 - 1` in numpy) before "
            "the loss; then `losscli compute hinge-embedding distances.npy signs.npy`.",
            remedies=(
                "`target = target * 2 - 1` for 0/1 labels",
                "`target = torch.where(target == b, 1.0, -1.0)` for two other labels a < b (the values seen, written in)",
            ),
        ),
        _doc(
            "negative-poisson-target",
            "error",
            "poisson-nll target < 0",
            what="poisson-nll targets below 0 (the counts the Poisson rate is fitted to).",
            why="Poisson targets are counts. With a negative target the term -target·input makes "
            "the loss unbounded below: the model is rewarded for sending the predicted log-rate "
            "to -inf.",
            example="Standardised (z-scored) count targets: "
            "`F.poisson_nll_loss(log_rate, (counts - mean) / std)`.",
            instead="Pass the raw, non-negative counts as the target; scale the input side "
            "instead. For real-valued targets use a regression loss: "
            "`losscli compute mse pred.npy true.npy`.",
        ),
        _doc(
            "nonpositive-variance",
            "error",
            "gaussian-nll variance <= 0",
            what="gaussian-nll variances (the third input, `var`) that are zero or negative.",
            why="torch raises `ValueError: var has negative entry/entries` for negative variances, "
            "and clamps zeros to eps (1e-6), which makes the loss huge and the gradient explode.",
            example="A raw linear layer used as the variance head: "
            "`F.gaussian_nll_loss(mean, y, var_head(h))`.",
            instead="Make the variance positive by construction: "
            "`var = F.softplus(var_head(h)) + 1e-6` or predict a log-variance and pass "
            "`log_var.exp()`.",
            remedies=("a positive variance head, `F.softplus(raw) + 1e-6` (shown, not verified)",),
        ),
        _doc(
            "kl-target-not-distribution",
            "error",
            "kl-div target is not a probability distribution",
            what="The kl-div target: no negative entries, and rows that sum to 1 (with "
            "`--log-target`, rows whose exp sums to 1).",
            why="KL(target || exp(input)) is only a divergence between distributions. A negative "
            "target gives log of a negative number (NaN); rows that do not sum to 1 scale the "
            "loss and let it go negative.",
            example="Passing teacher logits instead of teacher probabilities: "
            "`F.kl_div(F.log_softmax(student, 1), teacher_logits, reduction='batchmean')`.",
            instead="Normalise the target: `F.softmax(teacher_logits / T, dim=1)`, or pass "
            "`F.log_softmax(teacher_logits / T, dim=1)` with `log_target=True` "
            "(`--log-target`).",
            remedies=(
                "`--log-target` for log-probabilities, or back to its default for probabilities given with it",
                "`target = target.softmax(1)` (`log_softmax` with `--log-target`) for a teacher's logits",
                "`target = target / target.sum(dim, keepdim=True)` for rows that do not sum to 1 (`log_softmax` with `--log-target`)",
            ),
        ),
        _doc(
            "kl-input-not-log",
            "error",
            "kl-div input with positive entries: probabilities, not log-probabilities",
            what="The kl-div input (the first argument): it must be log-probabilities (all "
            "entries <= 0).",
            why="Unlike most losses, KLDivLoss wants its input in log space and computes "
            "target·(log target - input). Probabilities as input give a wrong value that can be "
            "negative; swapped arguments (target first) are the same mistake.",
            example="`F.kl_div(F.softmax(student, 1), F.softmax(teacher, 1))`: softmax where "
            "log_softmax belongs.",
            instead="`F.kl_div(F.log_softmax(student_logits, dim=1), F.softmax(teacher_logits, "
            "dim=1), reduction='batchmean')`, and keep that argument order.",
            remedies=(
                "`--map 'input = input.log()'` for probabilities",
                "`--map 'input = input.log_softmax(1)'` for logits",
                "the INPUTs swapped when the target holds the log-probabilities",
            ),
        ),
        _doc(
            "probabilities-as-logits",
            "warning",
            "cross-entropy/bce-logits input already in [0, 1]: softmax/sigmoid applied twice",
            what="cross-entropy input entirely in [0, 1] with rows summing to about 1 (median row "
            "sum within 0.25 of 1), or bce-logits (any sigmoid loss) input entirely in [0, 1] "
            "(at least 8 values) that, against targets in [0, 1], fits them clearly better read "
            "as probabilities than as logits: a lower binary cross-entropy, half the calibration "
            "error, and a logit reading whose calibration is beyond chance. Logits of a "
            "classifier initialised with the prior (bias log(p / (1 - p)), all in a narrow band "
            "inside [0, 1] when p is 0.5-0.73) are calibrated as logits and stay quiet.",
            why="CrossEntropyLoss applies log_softmax itself and BCEWithLogitsLoss applies "
            "sigmoid itself. Feeding them probabilities applies the squashing twice: the loss "
            "cannot go below a floor well above 0, gradients shrink, and training stalls or "
            "crawls while the loss looks plausible.",
            example="A model that ends in `nn.Softmax(dim=1)` trained with "
            "`nn.CrossEntropyLoss()`, or `torch.sigmoid(logits)` passed to BCEWithLogitsLoss.",
            instead="Remove the final softmax/sigmoid from the model and pass raw logits: "
            "`F.cross_entropy(logits, labels)`. Keep the softmax for inference only. If only "
            "probabilities are available, use `F.nll_loss(torch.log(probabilities), labels)` or "
            "bce.",
            remedies=(
                "`--map 'input = input.log()'` on softmax output (cross-entropy on "
                "log-probabilities equals nll)",
                "`--map 'input = input.logit()'` on sigmoid output (logit is the inverse of "
                "sigmoid)",
                "bce on the probabilities given to bce-logits",
                "the logits saved before a softmax over the batch (shown, not verified)",
            ),
        ),
        _doc(
            "logits-to-nll",
            "error",
            "nll input that is not log-probabilities",
            what="nll input with positive entries, or rows whose logsumexp is far from 0: raw "
            "scores where log-probabilities are needed. Every row is judged: log-probabilities "
            "whose median row looks right but whose rows mostly do not have logsumexp 0 were "
            "flattened across positions (`log_probs.reshape(-1, C)` of an (N, C, T) output).",
            why="NLLLoss does no softmax and no log: it returns -input[i, target_i]. On raw "
            "scores the loss goes negative and decreases without bound as the model inflates "
            "the target score.",
            example="`F.nll_loss(model(x), y)` where the model ends in a Linear layer, not "
            "`log_softmax`.",
            instead="`F.nll_loss(F.log_softmax(logits, dim=1), y)`, or equivalently "
            "`F.cross_entropy(logits, y)`: "
            "`losscli compute cross-entropy logits.npy labels.npy`.",
            remedies=(
                "`--map 'input = input.log_softmax(1)'`",
                "cross-entropy on the same logits",
                "`--map 'input = input.reshape(N, C, T).permute(0, 2, 1).reshape(N * T, C)'` "
                "when the rows read back as (N, C, T) log-probabilities (otherwise "
                "`log_probs.permute(0, 2, 1).reshape(-1, C)` in the training code, shown)",
            ),
        ),
        _doc(
            "probabilities-to-nll",
            "error",
            "nll input in [0, 1] with rows summing to 1: log was never taken",
            what="nll input in [0, 1] whose rows sum to 1: softmax output.",
            why="NLLLoss returns -input[i, target_i], so on probabilities the loss is -p, always "
            "in [-1, 0]: it is not the negative log-likelihood, its gradient is wrong, and it "
            "cannot be compared with any cross-entropy value.",
            example="A model that ends in softmax, trained with NLLLoss: "
            "`F.nll_loss(F.softmax(logits, dim=1), y)`, softmax where log_softmax belongs.",
            instead="Take the log: `F.nll_loss(F.log_softmax(logits, dim=1), y)` (or "
            "`torch.log(probabilities)` if that is all you have). With logits, "
            "`losscli compute cross-entropy logits.npy labels.npy`.",
            remedies=("`--map 'input = input.log()'` (clamped first when a probability is 0)",),
        ),
        _doc(
            "saturated-probabilities",
            "warning",
            "bce input exactly 0 or 1: clamped log, vanishing gradient",
            what="bce inputs that are exactly 0 or 1.",
            why="BCELoss clamps its log at -100, so a confident wrong answer costs 100 instead "
            "of infinity, and the sigmoid that produced a 0 or 1 has a zero gradient: the model "
            "cannot learn from those samples. In float32, sigmoid(x) rounds to exactly 1 for x "
            "above about 17.",
            example="A confident model trained with BCELoss after a sigmoid: "
            "`nn.BCELoss()(torch.sigmoid(logits), y)` with logits of ±20 and more.",
            instead="Skip the sigmoid and use the stable loss on logits: "
            "`nn.BCEWithLogitsLoss()(logits, y)`; "
            "`losscli compute bce-logits logits.npy targets.npy`.",
            remedies=(
                "the logits saved before the sigmoid, with bce-logits (shown, not verified)",
            ),
        ),
        _doc(
            "one-hot-target",
            "info / warning",
            "cross-entropy target given as one-hot (N, C)",
            what="A cross-entropy target shaped like the input with exactly one 1 per row: info "
            "when it holds floats; a warning when a binary file holds it as integers "
            "(`F.one_hot` returns int64), which torch refuses.",
            why="Since PyTorch 1.10 CrossEntropyLoss reads a float target shaped like the input "
            "as class probabilities, so one-hot rows give the same value as class indices. But "
            "`ignore_index` does not apply to probability targets, and with `weight` the mean "
            "divides by N rather than by the sum of the targets' weights. An integer one-hot "
            "target makes torch raise `Expected floating point type for target with class "
            "probabilities, got Long`; losscli reads it as probabilities to compute the value.",
            example="Labels one-hot encoded for a Keras-style pipeline: "
            "`F.cross_entropy(logits, F.one_hot(y, C).float())`.",
            instead="Pass class indices: `F.cross_entropy(logits, onehot.argmax(dim=1))`; save "
            "`onehot.argmax(1)` and run `losscli compute cross-entropy logits.npy labels.npy`.",
            remedies=("`target = target.argmax(1)`",),
        ),
        _doc(
            "multilabel-target",
            "warning",
            "(N, C) 0/1 target with several ones per row used with cross-entropy",
            what="A 0/1 cross-entropy target shaped like the input where some rows have several "
            "ones (or none).",
            why="Cross-entropy puts the classes in competition through a softmax: raising one "
            "label's probability lowers the others. With several true labels per sample this is "
            "multi-label classification, which needs one independent sigmoid per class.",
            example="Tagging data (an image with both 'cat' and 'outdoor') trained with "
            "`F.cross_entropy(logits, multi_hot)`.",
            instead="Use one sigmoid per class: "
            "`F.binary_cross_entropy_with_logits(logits, multi_hot.float())`; "
            "`losscli compute bce-logits logits.npy targets.npy`. multilabel-margin wants "
            "the other encoding: the true class indices, padded with -1 (not a multi-hot row).",
            remedies=(
                "bce-logits or multilabel-soft-margin on the same logits, with `target = target.float()` for integer targets",
            ),
        ),
        _doc(
            "class-imbalance",
            "info",
            "class frequencies differ by 10x or more",
            what="The counts of the classes present in the targets (absent classes are named); "
            "fires when the most frequent is at least 10 times the least frequent.",
            why="With an unweighted mean the frequent classes dominate the loss: a model that "
            "always predicts the majority class can already look good, and rare classes learn "
            "slowly.",
            example="Fraud or defect detection with 1 % positives, trained with plain "
            "`F.cross_entropy(logits, y)`.",
            instead="Weight the classes inversely to their counts, N / (C · count_c): "
            "`F.cross_entropy(logits, y, weight=w)` (`--weight '[...]'`, printed ready in the "
            "message), or `pos_weight = negatives / positives` for bce-logits (`--pos-weight`).",
            remedies=(
                "`--weight [...]` by inverse frequency (mean 1), every digit written in",
                "`--pos-weight [...]` = negatives / positives per column; `--alpha` = the share of negatives for focal",
                "bce: bce-logits with `input = input.logit()` and `--pos-weight [...]`",
                "with the classes weighted (`--weight`, `--pos-weight`, a non-default `--alpha`) the finding is silent",
            ),
        ),
        _doc(
            "non-finite-input",
            "error",
            "NaN or Inf in an input",
            what="Every input for NaN and Inf values, with counts and the first positions.",
            why="One NaN anywhere makes the mean NaN, and the gradient of every parameter NaN "
            "after backward: one bad sample ruins the model in one step.",
            example="Missing values read from a CSV as NaN, or a model that already diverged: "
            "`loss = F.mse_loss(pred, target)` with `target.isnan().any()`.",
            instead="Find where it first appears (`torch.autograd.set_detect_anomaly(True)`, "
            "`torch.isfinite(x).all()` after each stage); drop or impute missing targets before "
            "the loss.",
        ),
        _doc(
            "non-finite-loss",
            "error",
            "the value or a per-sample loss is NaN/Inf",
            what="The value and every per-sample loss, after torch computed them, with the "
            "samples responsible.",
            why="A NaN or Inf loss poisons the gradient and then the weights. Common causes: "
            "log(0), exp overflow, a zero variance, an impossible ctc alignment.",
            example="`F.poisson_nll_loss(rates, counts)` with rates in the hundreds and "
            "`log_input=True` (the default): exp(rate) overflows.",
            instead="Look at the named samples; fix the input or option that drives them "
            "(`losscli debug LOSS ...` explains most causes). For ctc, `--zero-infinity`.",
        ),
        _doc(
            "non-finite-gradient",
            "error",
            "NaN/Inf in the gradient",
            what="The gradient of the value with respect to every prediction tensor.",
            why="The optimizer applies the gradient to the weights: one NaN there turns the "
            "parameters NaN, even when the loss itself looks finite.",
            example="A log or a division at the edge of the domain: "
            "`F.gaussian_nll_loss(mean, y, var)` with var near 0, or a sqrt of a zero distance.",
            instead="Keep inputs inside the loss's domain (positive variances, probabilities "
            "away from 0 and 1, logits instead of probabilities); "
            "`torch.autograd.set_detect_anomaly(True)` finds the operation.",
        ),
        _doc(
            "vanishing-gradient",
            "warning",
            "the gradient is zero or below 1e-12 almost everywhere",
            what="The fraction of gradient entries that are zero or below 1e-12 in magnitude.",
            why="If the gradient is zero the model gets no signal: saturated probabilities "
            "(sigmoid at exactly 0 or 1), margins already met by every sample, a loss that does "
            "not depend on the predictions (a target of 0 for a sign loss).",
            example="Probabilities saturated by a sigmoid before BCELoss: "
            "`nn.BCELoss()(torch.sigmoid(logits), y)` with |logits| > 20 everywhere.",
            instead="Use the logits versions of the losses (`nn.BCEWithLogitsLoss`, "
            "`nn.CrossEntropyLoss`; `losscli compute bce-logits logits.npy targets.npy`) and check "
            "the targets' encoding ({-1, 1} for sign losses); margins all met is harmless late in "
            "training.",
        ),
        _doc(
            "constant-input",
            "warning",
            "every prediction is the same value",
            what="Prediction tensors in which every value is equal.",
            why="A model whose every output is the same has collapsed (dead ReLUs, a saturated "
            "output, a learning rate too high) or the wrong column was saved; the loss then says "
            "nothing about the model.",
            example="Outputs saved after the model collapsed: `np.save('pred.npy', "
            "model(x).detach().numpy())` with every value 0.0.",
            instead="Check the model's last layers and the learning rate; check that the file "
            "or column (`file.csv:col`) holds the predictions.",
        ),
        _doc(
            "soft-target-not-distribution",
            "warning",
            "cross-entropy probability targets whose rows do not sum to 1",
            what="Cross-entropy targets given as class probabilities (float, shaped like the "
            "input) whose rows do not sum to 1.",
            why="With probability targets torch computes -Σ_c t_c log softmax(x)_c and does not "
            "check the rows: a row summing to 2 doubles that sample's loss, one summing to 0.5 "
            "halves it. It is no longer a cross-entropy.",
            example="Mixup or label smoothing done by hand with a bug: "
            "`target = lam * onehot_a + onehot_b`.",
            instead="Normalise the rows (`target / target.sum(dim=1, keepdim=True)`) or use "
            "`label_smoothing=` (`--label-smoothing 0.1`) on class indices.",
            remedies=(
                "`target = target / target.sum(1, keepdim=True)` for rows of non-negative weights",
                "`target = target.softmax(1)` for rows with negative entries (scores)",
                "K labels per position: one logit per label value (a change to the model: shown, not verified)",
            ),
        ),
        _doc(
            "ctc-input-not-log-probs",
            "error",
            "ctc log_probs that are not log-softmax output",
            what="ctc log_probs [time, batch, classes]: entries <= 0 and rows whose logsumexp "
            "over the classes is 0.",
            why="CTCLoss sums probabilities over alignments assuming each frame is a "
            "log-distribution. Raw logits or probabilities give a wrong, possibly negative, "
            "loss.",
            example="`F.ctc_loss(model(x), targets, in_lens, tgt_lens)` with the model ending in "
            "a Linear layer.",
            instead="`F.ctc_loss(logits.log_softmax(2), ...)`; if the output is batch-first "
            "(batch, time, classes), also `.transpose(0, 1)`.",
            remedies=(
                "`--map 'log_probs = log_probs.log_softmax(2)'` for logits",
                "`--map 'log_probs = log_probs.log()'` for softmax output",
            ),
        ),
        _doc(
            "ctc-blank-in-targets",
            "error",
            "ctc targets contain the blank index",
            what="ctc targets (within each target length) equal to the blank index (`--blank`, "
            "default 0).",
            why="The blank is the 'no label' symbol that separates repeated characters. torch "
            "does not check: a target containing it asks for a transcription CTC cannot produce "
            "as meant, and the loss comes out finite and silently wrong (or inf).",
            example="Characters encoded 0..C-1 while blank=0: "
            "`targets = [vocab.index(c) for c in text]`.",
            instead="Reserve the blank: encode characters 1..C (`targets + 1`) with `blank=0`, or "
            "pass `blank=C` (`--blank C`) with a C+1-class output.",
            remedies=(
                "`targets = targets + 1` when the labels start at 0 and the shifted labels fit the classes",
                "`--blank K` for a class K no label uses (the last class first)",
                "a model with one more class for the blank (shown, not verified)",
            ),
        ),
        _doc(
            "ctc-target-too-long",
            "error",
            "a ctc target longer than its input length allows",
            what="Each sample's target length (plus one frame for every repeated consecutive "
            "label) against its input length.",
            why="There is no alignment: the loss is inf (and its gradient NaN), unless "
            "`zero_infinity=True` turns it into 0.",
            example="A model that downsamples time by 4 (`input_lengths = lengths // 4`) on "
            "short audio with long transcripts.",
            instead="Downsample less or drop those samples; `--zero-infinity` "
            "(`zero_infinity=True`) ignores them in the loss.",
            remedies=(
                "`--zero-infinity` when at most a fifth of the samples are impossible (with it, the finding stays silent for such a few)",
            ),
        ),
        _doc(
            "single-logit-cross-entropy",
            "error",
            "cross-entropy input with one class column: the loss is always 0",
            what="Cross-entropy input with a class dimension of size 1.",
            why="log_softmax over a single class is always 0, so the loss is 0 and the gradient "
            "is 0 whatever the model does: nothing is learned.",
            example="A binary classifier with `nn.Linear(hidden, 1)` trained with "
            "`nn.CrossEntropyLoss()`.",
            instead="Use the binary loss on the single logit: "
            "`F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())`; "
            "`losscli compute bce-logits logits.npy targets.npy --map 'input = input.squeeze(1)'`. "
            "Or give the head 2 outputs.",
            remedies=(
                "bce-logits with `--map 'input = input.squeeze(1)'` and `--map 'target = "
                "target.float()'` as needed",
                "2 outputs in the model, to keep cross-entropy (shown, not verified)",
            ),
        ),
        _doc(
            "unbatched-input",
            "warning",
            "1-D cross-entropy input: one sample with N classes",
            what="Cross-entropy input with a single dimension, shape (N,), and no batch dimension.",
            why="torch reads a 1-D input of length N as one unbatched sample with N classes "
            "(and wants a scalar target). Binary logits of N samples are silently treated as "
            "N classes of one sample.",
            example="Binary scores `model(x).squeeze()` of shape (N,) given to `F.cross_entropy`.",
            instead="For binary logits use `F.binary_cross_entropy_with_logits(scores, y.float())` "
            "(`losscli compute bce-logits scores.npy labels.npy`); for one sample, "
            "`logits.unsqueeze(0)`.",
            remedies=(
                "bce-logits (with `--map 'target = target.float()'`) for one score and one 0/1 "
                "label per sample",
                "`--map 'input = input.unsqueeze(0)'` for one sample of class scores",
            ),
        ),
        _doc(
            "weight-length-mismatch",
            "error",
            "--weight or --pos-weight does not fit the class count",
            what="`--weight` against the class count C, and `--pos-weight` against the class "
            "dimension of the target.",
            why="torch raises `weight tensor should be defined either for all 4 classes or no "
            "classes but got weight tensor of shape: [2]`, or a size mismatch for pos_weight: "
            "one weight per class is needed.",
            example="Weights computed from the classes present in one batch: "
            "`weight = 1 / torch.bincount(y)` misses the classes after the largest one seen.",
            instead="One weight per class: `torch.bincount(y, minlength=C)`; `pos_weight` of "
            "shape (C,) for (N, C) targets.",
        ),
        _doc(
            "kl-mean-reduction",
            "warning",
            "kl-div with reduction mean: divides by every element",
            what="kl-div run with `reduction='mean'`, which is torch's default for KLDivLoss.",
            why="'mean' divides the summed divergence by batch × classes, not by the batch: the "
            "value is not the KL divergence and shrinks as C grows. torch warns that 'mean' is "
            "deprecated in favour of 'batchmean', which matches the math.",
            example="A distillation script that keeps the default reduction: "
            "`nn.KLDivLoss()(F.log_softmax(student, 1), F.softmax(teacher, 1))`.",
            instead="`F.kl_div(log_p, q, reduction='batchmean')`; "
            "`losscli compute kl-div log_p.npy q.npy --reduction batchmean`.",
            remedies=("`--reduction batchmean`",),
        ),
        _doc(
            "poisson-log-input-mismatch",
            "warning / error",
            "poisson-nll log_input does not fit the inputs",
            what="poisson-nll inputs against `--log-input`: with log_input (the default) inputs "
            "that look like rates (all positive and large); without it, negative inputs.",
            why="With log_input torch computes exp(input) - target·input: rates in the hundreds "
            "overflow exp. Without it, input - target·log(input + eps): a negative rate gives "
            "log of a negative number, NaN.",
            example="A model ending in softplus (rates) trained with `nn.PoissonNLLLoss()`, whose "
            "log_input defaults to True.",
            instead="Rates: `F.poisson_nll_loss(rate, y, log_input=False)` (`--no-log-input`). "
            "Log-rates from a linear layer: keep the default.",
            remedies=(
                "`--no-log-input` for rates",
                "`--log-input` (the default) for log-rates",
            ),
        ),
        _doc(
            "padding-not-ignored",
            "warning",
            "a pad id fills the ends of token sequences and counts in the loss",
            what="A (N, T) class-index target of token sequences for cross-entropy or nll whose "
            "rows end in runs of one value (of varying lengths, on most rows, and that value "
            "almost never inside a sequence), while `ignore_index` is some other value "
            "(usually its default, -100).",
            why="Sequences of different lengths are padded to one length with the tokenizer's pad "
            "id. Unless the loss ignores it, every pad position is a target like any token: the "
            "model is rewarded for predicting padding, the mean is taken over pads too, and the "
            "easy pad positions dilute the loss of the real tokens (or dominate it).",
            example="A language model's `F.cross_entropy(logits, labels)` with logits "
            "(N, vocab, T) and labels padded with `tokenizer.pad_token_id` (0) to the longest "
            "sequence of the batch.",
            instead="`F.cross_entropy(logits, labels, ignore_index=PAD)` (`--ignore-index PAD`), "
            "or set the padded positions of the labels to -100 in the collator.",
            remedies=("`--ignore-index PAD` with the pad id found at the ends of the rows",),
        ),
        _doc(
            "variance-miscalibrated",
            "warning",
            "gaussian-nll var behaves like a standard deviation or a log-variance",
            what="gaussian-nll's `var` judged by how the squared errors (input - target)² grow "
            "with it: a variance grows them in proportion (slope 1 of log error² on log var); "
            "a standard deviation passed as var grows them with its square (slope 2); a "
            "log-variance grows them with its exp. The readings var, var², exp(var) are "
            "compared by their gaussian-nll.",
            why="A heteroscedastic head trained on the wrong reading learns the wrong "
            "uncertainty: a standard deviation read as a variance is too small wherever it is "
            "below 1 and too large above it, so the loss punishes errors in the wrong places "
            "and the predicted intervals are wrong.",
            example="`sigma = F.softplus(head(h))` passed as `F.gaussian_nll_loss(mu, y, sigma)`, "
            "or a log-variance head `F.gaussian_nll_loss(mu, y, log_var)`.",
            instead="Pass a variance: `F.gaussian_nll_loss(mu, y, sigma ** 2)` or "
            "`F.gaussian_nll_loss(mu, y, log_var.exp())`.",
            remedies=(
                "`var = var ** 2` for a standard deviation",
                "`var = var.exp()` for a log-variance",
            ),
        ),
        _doc(
            "swapped-inputs",
            "error",
            "the inputs fit the loss once their order is changed",
            what="When the inputs raise an error as given, losscli runs the loss again with the "
            "inputs in the other orders (closest first: the two of an input/target loss "
            "swapped, ctc's input and target lengths exchanged) and keeps the first order that "
            "computes without any error.",
            why="torch takes its arguments by position. Targets given as the prediction either "
            "raise (`Expected floating point type for target with class probabilities`) or, for "
            "the element-wise losses, give a number for the wrong question: the gradient flows "
            "into the labels, not into the model.",
            example="The scikit-learn order `metric(y_true, y_pred)` carried over to torch: "
            "`F.cross_entropy(labels, logits)`, `F.binary_cross_entropy_with_logits(y, scores)`.",
            instead="Pass the model output first, as torch orders them: "
            "`F.cross_entropy(logits, labels)`; run the reordered command the fix shows.",
            remedies=("the INPUTs in the order that computes without an error (verified)",),
        ),
        _doc(
            "collapsed-predictions",
            "warning",
            "predictions almost constant next to the targets' spread; collapsed embeddings",
            what="Regression predictions whose standard deviation is below 2% of the targets' "
            "while their mean sits within one standard deviation of the targets' mean (a model stuck at the mean); and triplet "
            "embeddings, paired embeddings or ranking scores so close together that at least 95% of the per-sample losses "
            "are what identical embeddings give (the margin, for a triplet loss). The exactly "
            "constant case is `constant-input`.",
            why="A model that predicts the mean for every sample has learned nothing about the "
            "features: the loss equals the variance of the targets and stops falling. Collapsed "
            "embeddings put every triplet at the margin, where the gradient pulls all points "
            "together as much as apart, so training cannot separate them.",
            example="An MLP on raw, unnormalised features with a learning rate or weight decay "
            "too high: `model(x)` is 152.1 ± 0.3 against targets 152 ± 77; or a triplet network "
            "whose embeddings all end at one point: `F.triplet_margin_loss(a, p, n)` is 1.0 "
            "(the margin) for every sample.",
            instead="Lower the learning rate and weight decay, standardize the features, check "
            "that the output layer is not zero-initialised; for embeddings, normalise them "
            "(`F.normalize(e, dim=1)`) and mine easier negatives first.",
            remedies=("a change to the training code (shown, not verified)",),
        ),
        _doc(
            "scale-mismatch",
            "warning",
            "regression predictions and targets on different scales",
            what="Regression predictions and targets whose means and spreads differ, so that the "
            "loss is at least 2 times that of predicting the target mean, while a linear rescale "
            "read from the data (the targets' mean and standard deviation) brings it below 0.75 "
            "times that: the predictions carry the signal, on the wrong scale.",
            why="A model trained on standardized targets predicts in standard units; compared "
            "with raw targets its loss is dominated by the offset and says nothing about the fit "
            "(and the reverse: raw-scale predictions against standardized targets).",
            example="`y_std = (y - y.mean()) / y.std()` used for training, then "
            "`F.mse_loss(model(x), y_raw)` at evaluation: predictions around 0 ± 0.7 against "
            "targets around 152 ± 77.",
            instead="Undo the standardization on the predictions with the training targets' "
            "statistics: `pred = pred * y_std + y_mean` "
            "(`losscli compute mse pred.npy y.npy --map 'input = input * 77.09 + 152.1'`).",
            remedies=(
                "`--map 'input = input * STD + MEAN'` with the targets' standard deviation and mean "
                "(verified)",
                "`--map 'input = (input - MEAN) / STD'` with the predictions' own statistics, for "
                "raw predictions against standardized targets (verified)",
            ),
        ),
        _doc(
            "fit-too-good",
            "warning",
            "the loss is a tiny fraction of the trivial predictor's: a leaked target",
            what="Regression: the loss below 0.001 times that of predicting the target mean "
            "(R² above 0.999 for mse) over at least 16 samples, or predictions equal to the "
            "targets element for element; not for whole-number predictions of a target with at "
            "most 20 whole-number values (rounded predictions of ratings can match them all). "
            "Classification (cross-entropy, nll, bce, bce-logits): the loss below 0.01 times that "
            "of the class prior while every sample of a class gets the same prediction row, short "
            "of saturation (the prediction is a function of the target). The baselines are "
            "torch's loss on the mean / prior tensors.",
            why="Real data is noisy: a model that reaches R² ≈ 1 almost always saw the target, "
            "through a feature computed from it or because the target itself was passed as the "
            "prediction. The loss then measures nothing, and the model fails on new data. "
            "A classifier on its own training set can legitimately reach a tiny cross-entropy, "
            "so for classification only a prediction that is a function of the target counts.",
            example="`F.mse_loss(y, y)` after a copy-paste, a column of y left in X "
            "(`X = df.drop(columns=['id'])` instead of dropping the target too), or "
            "`F.cross_entropy(F.one_hot(y).float() * 10, y)`.",
            instead="Pass the model's output to the loss and drop every feature computed from "
            "the target: `X = df.drop(columns=['target'])`.",
            remedies=("a change to the training code (shown, not verified)",),
        ),
        _doc(
            "misaligned-samples",
            "warning",
            "confident predictions at chance level: predictions and targets in different orders",
            what="Classification: a mean largest probability of 0.8 or more, an accuracy within "
            "3 standard errors of chance (Σ_k p_k q_k, the accuracy of predictions independent of "
            "the targets) and a loss above the class prior's, over at least 48 samples. "
            "Regression, over at least 64 samples: predictions spreading at least 0.5 times the "
            "targets, centred within 3 standard errors of their mean, correlating with them "
            "within 2.5/√n of 0, with a loss above the mean predictor's; not for targets of a "
            "few whole-number levels (0/1, ratings), where chance scores spread like the targets.",
            why="A trained model that is confident yet right only by chance is almost always "
            "being compared with the wrong labels: predictions collected from a shuffled "
            "DataLoader against labels in dataset order. The loss and every metric are then "
            "meaningless. An over-confident model with real skill stays well above chance and "
            "does not fire; nor does an untrained one (not confident).",
            example="`preds = torch.cat([model(x) for x, _ in DataLoader(ds, shuffle=True)])` "
            "then `F.cross_entropy(preds, torch.tensor(ds.targets))`.",
            instead="Collect predictions and labels in the same pass: "
            "`for x, y in loader: preds.append(model(x)); labels.append(y)`, or evaluate with "
            "`shuffle=False`.",
            remedies=("a change to the evaluation loop (shown, not verified)",),
        ),
        _doc(
            "dtype-conversion",
            "info / warning / error",
            "an input was converted to the dtype the loss needs",
            what="Every cast losscli makes before calling torch: float inputs to the compute "
            "dtype (float32 unless `--dtype`), integer class indices to int64. Class indices in "
            "an integer dtype torch itself refuses for the loss (int32, int16, int8 or bool for "
            "cross-entropy and nll; anything but int64 for the margin losses) are a warning that "
            "quotes torch's error; values the cast cannot keep are an error.",
            why="torch's losses want matching float dtypes and int64 (or uint8) class indices; a "
            "cast that keeps every value does not change the loss, but your training code may "
            "need the same cast: where torch refuses the dtype, the training script crashes on "
            "these inputs. `--strict` converts nothing and shows what torch rejects.",
            example="float64 arrays saved from numpy, int32 labels from pandas: "
            "`F.cross_entropy(logits, torch.from_numpy(labels_int32))` raises `expected target "
            "dtype to be Long or Byte, but got Int`.",
            instead="Cast once in the data pipeline (`.float()`, `.long()`); "
            "`--dtype float64` computes in double.",
            remedies=(
                "`target = target.long()` for integer class indices stored in another integer dtype",
            ),
        ),
        _doc(
            "torch-rejected",
            "error",
            "torch raised an error for these inputs",
            what="An error raised by torch itself that no losscli check predicted; the message "
            "is torch's first line.",
            why="The inputs cannot work for this loss as given; in a training script the same "
            "call raises the same error.",
            example="An unusual shape combination: `F.multilabel_margin_loss(x, y)` with a 3-D "
            "target.",
            instead="Read torch's message, compare the shapes with `losscli explain LOSS`, and run "
            "`losscli debug LOSS ...` on the same inputs.",
        ),
        _doc(
            "negative-loss",
            "error",
            "a loss that cannot be negative came out negative",
            what="The value and per-sample losses of the losses that are non-negative by "
            "definition (everything but poisson-nll, gaussian-nll and kl-div).",
            why="A negative value proves the inputs are not what the loss assumes: raw scores to "
            "nll, targets outside [0, 1] for bce, probabilities where log-probabilities belong. "
            "Minimising it pushes the model the wrong way without limit.",
            example="A classifier whose last layer is Linear, trained with NLLLoss: "
            "`F.nll_loss(logits, y)` gives -logits[i, y_i].",
            instead="Follow the input findings listed with it; for nll, "
            "`F.nll_loss(F.log_softmax(logits, dim=1), y)` "
            "(`losscli compute cross-entropy logits.npy labels.npy`).",
        ),
    )
}


RAISED_BY_THE_PIPELINE = ("torch-rejected", "swapped-inputs")
"""Findings the pipeline raises itself (the checks and conversion raise the others); the
inputs given in another order are tried by :mod:`losscli.fixes`."""


def finding(
    name: str,
    severity: Severity,
    message: str,
    fix: str = "",
    *,
    blocking: bool = False,
    remedies: tuple[Remedy, ...] = (),
    **evidence: Any,
) -> Finding:
    """Build a :class:`Finding`, checking that ``name`` is in the catalogue."""
    if name not in CATALOGUE:
        raise KeyError(f"unknown finding name {name!r}")
    return Finding(
        name=name,
        severity=severity,
        message=message,
        fix=fix,
        evidence=evidence,
        blocking=blocking,
        remedies=remedies,
    )
