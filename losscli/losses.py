"""The loss catalogue: one :class:`LossSpec` per loss, read by the checks, compute and the CLI.

Behaviour that varies by loss lives here as data; nothing else branches on a loss name.
This module imports neither torch nor numpy, so ``list`` and ``explain`` stay fast.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    """What an argument holds, as the checks understand it."""

    PREDICTION = "prediction"  # model output: logits, probabilities, values, embeddings
    TARGET = "target"  # a float target shaped like the prediction
    BINARY_TARGET = "binary-target"  # float target in [0, 1] (bce, focal, dice, multi-label)
    CLASS_TARGET = "class-target"  # cross-entropy: class indices, or class probabilities
    CLASS_INDEX = "class-index"  # nll, multi-margin: int64 class indices
    MULTILABEL_INDEX = "multilabel-index"  # multilabel-margin: class indices padded with -1
    SIGN_TARGET = "sign-target"  # {-1, 1}
    COUNT_TARGET = "count-target"  # poisson-nll: counts >= 0
    DISTRIBUTION_TARGET = "distribution-target"  # kl-div: probabilities (or log with log_target)
    VARIANCE = "variance"  # gaussian-nll: > 0
    LOG_PROBS = "log-probs"  # ctc: log-softmax output, [time, batch, classes]
    CTC_TARGETS = "ctc-targets"  # ctc: label sequences
    LENGTHS = "lengths"  # ctc: int64 lengths


class DType(str, enum.Enum):
    """The dtype an argument is converted to."""

    FLOAT = "float"  # the compute float dtype (float32 unless --dtype)
    INDEX = "index"  # int64
    CLASS = "class"  # int64 class indices, or float probabilities shaped like the input


@dataclass(frozen=True)
class Argument:
    """One tensor argument of a loss, in torch's order.

    Attributes:
        name: the name users and JSON see (torch's argument name, or the docs' x1/x2/y).
        role: what it holds.
        dtype: what it is converted to.
        shape: its expected shape in the project's notation, e.g. ``[batch, classes]``.
        differentiable: the gradient is reported for it.
        batch_dim: which dimension indexes samples (ctc log_probs use 1).
        dtype_error: torch's own error when this argument holds a dtype it refuses: floats
            where it wants integers, or an integer dtype not in ``integer_dtypes``
            (``{dtype}`` stands for torch's name of the dtype: ``Float``, ``Int``), or ``""``
            when torch accepts every float and integer dtype there (ctc targets).
        integer_dtypes: the integer dtypes torch accepts here without that error (numpy
            names); empty when it accepts every one.
        integer_probabilities_error: torch's own error when this argument, read as class
            probabilities, holds integers (cross-entropy's one-hot ``Long`` target), or ``""``.
        range_error: torch's own error (CPU) when a class index here lies outside the
            input's classes, ``{value}`` standing for the first offending index torch meets
            (in memory order, ignore_index skipped), or ``""``.
    """

    name: str
    role: Role
    dtype: DType
    shape: str
    differentiable: bool = False
    batch_dim: int = 0
    dtype_error: str = ""
    integer_dtypes: tuple[str, ...] = ()
    integer_probabilities_error: str = ""
    range_error: str = ""


# torch's names of dtypes in its error messages, by numpy's name
_TORCH_DTYPE_NAMES = {
    "float16": "Half",
    "bfloat16": "BFloat16",
    "float32": "Float",
    "float64": "Double",
    "bool": "Bool",
    "uint8": "Byte",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "uint16": "UInt16",
    "uint32": "UInt32",
    "uint64": "UInt64",
}
# torch 2.13's errors for class indices of another dtype (test_conversion runs torch on each case)
_LONG_OR_BYTE = (
    "expected target dtype to be Long or Byte, but got {dtype}"  # cross_entropy, nll_loss
)
_SCALAR_LONG = "expected scalar type Long but found {dtype}"  # multi_margin, multilabel_margin
# the integer dtypes each of those errors lets through
_LONG_OR_BYTE_DTYPES = ("int64", "uint8")
_SCALAR_LONG_DTYPES = ("int64",)
# torch 2.13's errors (CPU) for a class index outside the input's classes (test_class_range
# runs torch on each case)
_TARGET_OUT_OF_BOUNDS = "IndexError: Target {value} is out of bounds."  # cross_entropy, nll_loss
_TARGET_OUT_OF_RANGE = "RuntimeError: target out of range"  # multi_margin_loss
_MULTILABEL_OUT_OF_RANGE = "RuntimeError: argument #2 'target' is out of range"
_PROBABILITIES_FLOAT = (
    "Expected floating point type for target with class probabilities, got {dtype}"
)


def torch_error(template: str, dtype: str) -> str:
    """torch's error ``template`` for an array of numpy dtype ``dtype`` (``Float`` for float32)."""
    return template.format(dtype=_TORCH_DTYPE_NAMES.get(dtype, dtype))


class OptionType(str, enum.Enum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"
    TENSOR = "tensor"


@dataclass(frozen=True)
class Option:
    """One constructor option of a loss.

    Attributes:
        name: the torch keyword (``pos_weight``); the CLI flag is ``--pos-weight``.
        type: how its value is parsed.
        default: torch's default.
        help: one line for ``--help``, ``list`` and ``explain``.
        choices: the allowed values of a CHOICE option.
        minimum: the smallest value torch accepts or documents (a FLOAT option), or None.
        maximum: the largest value torch accepts, or None.
        exclusive_minimum: the minimum itself is refused too (huber's delta > 0).
    """

    name: str
    type: OptionType
    default: object
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    @property
    def flag(self) -> str:
        return flag_for(self.name)


def flag_for(name: str) -> str:
    """The command-line flag of the option whose torch keyword is ``name``: ``--pos-weight``, ``-p``."""
    return "-p" if name == "p" else "--" + name.replace("_", "-")


class Domain(str, enum.Enum):
    """The values a loss's prediction must hold, as the domain checks read them."""

    REAL = "real"  # any real number: logits, scores, regression values, embeddings
    PROBABILITIES = "probabilities"  # [0, 1]; torch rejects input or target outside (bce)
    LOG_PROBABILITIES = "log-probabilities"  # <= 0, log-softmax output (nll, kl-div)


class Layout(str, enum.Enum):
    """How a loss's arguments are shaped against each other, as the shape checks read them."""

    ELEMENTWISE = "elementwise"  # target (and weight) shaped like the input: [batch, *]
    CLASS_SCORES = "class-scores"  # [batch, classes, d1, ...] with [batch, d1, ...] indices
    CLASS_SCORES_FLAT = "class-scores-flat"  # [batch, classes] with [batch] indices (multi-margin)
    MULTILABEL_INDICES = "multilabel-indices"  # [batch, classes] with [batch, classes] indices
    PAIRED_SCORES = "paired-scores"  # x1 [batch], x2 [batch], y [batch] (margin-ranking)
    PAIRED_EMBEDDINGS = "paired-embeddings"  # x1, x2 [batch, features], y [batch] (cosine)
    TRIPLET = "triplet"  # anchor, positive, negative [batch, features]
    GAUSSIAN = "gaussian"  # input, target [batch, *]; var [batch, *], one dim fewer, or 1 there
    CTC = "ctc"  # log_probs [time, batch, classes], targets, input_lengths, target_lengths


class Broadcasting(str, enum.Enum):
    """What torch does when an element-wise target's shape differs from the input's."""

    BROADCASTS = "broadcasts"  # broadcasts silently (at most a warning): the value is wrong
    INTO_INPUT = "into-input"  # broadcasts only when the result keeps the input's shape
    NONE = "none"  # raises unless the shapes are equal (bce, bce-logits)


class Activation(str, enum.Enum):
    """What the loss applies to its prediction before comparing it with the target."""

    NONE = "none"  # used as given
    SOFTMAX = "softmax"  # log_softmax over the class dimension (cross-entropy)
    SIGMOID = "sigmoid"  # sigmoid per element (bce-logits, focal, dice, multilabel-soft-margin)


class PerSampleRule(str, enum.Enum):
    """How ``value`` is recovered from ``per_sample`` under reduction ``mean``."""

    MEAN = "mean"  # per_sample[i] = mean over sample i's elements; value = mean(per_sample)
    WEIGHTED = "weighted"  # per_sample[i] = sum of the weighted losses; value = sum / sum(weights)
    BATCHMEAN = "batchmean"  # kl-div: per_sample[i] = sum over sample i; value = sum / N
    CTC = "ctc"  # per_sample[i] = loss_i / max(target_length_i, 1); value = mean(per_sample)


_REDUCTIONS = ("mean", "sum", "none")


def _reduction(default: str = "mean", choices: tuple[str, ...] = _REDUCTIONS) -> Option:
    return Option(
        "reduction", OptionType.CHOICE, default, "how per-element losses are reduced", choices
    )


def _weight(
    help_text: str = "a manual rescaling weight per class (inline array or file)",
) -> Option:
    return Option("weight", OptionType.TENSOR, None, help_text)


def _triplet_arguments() -> tuple[Argument, ...]:
    """anchor, positive and negative embeddings ``[batch, features]``, each with a gradient."""
    return tuple(
        Argument(name, Role.PREDICTION, DType.FLOAT, "[batch, features]", differentiable=True)
        for name in ("anchor", "positive", "negative")
    )


def _margin(default: float) -> Option:
    return Option("margin", OptionType.FLOAT, default, "the margin")


IGNORE_INDEX = Option(
    "ignore_index", OptionType.INT, -100, "a target value that is ignored (no loss, no gradient)"
)


@dataclass(frozen=True)
class LossSpec:
    """One loss of the catalogue.

    Attributes:
        name: the kebab-case name (``cross-entropy``).
        aliases: other accepted names (``ce``).
        torch_class: the ``torch.nn`` class it mirrors (or the reference formula's home).
        function: the ``torch.nn.functional`` function that computes it (``""`` when the
            formula is composed from torch operations: focal, dice).
        arguments: the tensor arguments in torch's order.
        options: every constructor option, with torch's defaults.
        summary: one line for ``list``.
        formula: the loss, written out, for ``explain``.
        per_sample_rule: how the value is recovered from per_sample under ``mean``.
        pitfalls: common mistakes, for ``explain``.
        streamable: decomposes over samples, so it can be computed chunk by chunk.
        batched_ndim: the fewest dimensions of the prediction that hold a batch dimension;
            with fewer, the input is one unbatched sample (a 1-D cross-entropy input is one
            sample's class scores, a 1-D kl-div input one distribution), which is never cut
            into chunks or sampled.
        nonnegative: the loss can never be negative (a negative value is a finding).
        input_domain: what the prediction (the first argument) must hold.
        layout: how the arguments' shapes relate (read by the shape checks).
        broadcasting: what torch does with an element-wise target of another shape.
        activation: what the loss applies to the prediction (logits in, probabilities inside).
        class_weight: ``--weight`` holds one weight per class, so its length must be C.
        composed: for a loss without a ``torch.nn.functional`` function, the name of the
            formula ``compute`` builds from torch operations (``sigmoid_focal_loss``).
        python_call: how PyTorch code calls it, for fixes (default ``F.<function>``).
        on_probabilities: the loss that computes the same value from probabilities, a fix
            when the predictions turn out to be probabilities (bce for bce-logits).
        on_signs: the loss that computes the same value from -1/+1 targets, a fix when
            the targets are signs (soft-margin for bce-logits).
        on_class_indices: the loss for the same logits when the targets turn out to be
            class indices with one logit per class (cross-entropy for bce-logits).
        tasks: the tasks it serves, as :mod:`losscli.inference` names them (regression,
            count, binary, multiclass, multilabel, ranking, similarity, metric, sequence):
            ``compare`` without ``-l`` compares the losses of the inferred task.
    """

    name: str
    aliases: tuple[str, ...]
    torch_class: str
    function: str
    arguments: tuple[Argument, ...]
    options: tuple[Option, ...]
    summary: str
    formula: str
    per_sample_rule: PerSampleRule = PerSampleRule.MEAN
    pitfalls: tuple[str, ...] = ()
    streamable: bool = False
    batched_ndim: int = 1
    nonnegative: bool = True
    input_domain: Domain = Domain.REAL
    layout: Layout = Layout.ELEMENTWISE
    broadcasting: Broadcasting = Broadcasting.BROADCASTS
    activation: Activation = Activation.NONE
    class_weight: bool = False
    composed: str = ""
    python_call: str = ""
    on_probabilities: str = ""
    on_signs: str = ""
    on_class_indices: str = ""
    tasks: tuple[str, ...] = ()

    @property
    def call(self) -> str:
        """How PyTorch code calls this loss (``F.cross_entropy``)."""
        return self.python_call or f"F.{self.function}"

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    @property
    def differentiable(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if a.differentiable)

    def argument(self, role: Role) -> Argument | None:
        return next((a for a in self.arguments if a.role is role), None)


def _pair(
    target_role: Role = Role.TARGET, target_dtype: DType = DType.FLOAT
) -> tuple[Argument, ...]:
    return (
        Argument("input", Role.PREDICTION, DType.FLOAT, "[batch, *]", differentiable=True),
        Argument("target", target_role, target_dtype, "[batch, *] (same shape as input)"),
    )


_CLASS_INPUT = Argument(
    "input",
    Role.PREDICTION,
    DType.FLOAT,
    "[batch, classes] or [batch, classes, d1, ...]",
    differentiable=True,
)

LOSSES: tuple[LossSpec, ...] = (
    LossSpec(
        "l1",
        ("mae",),
        "torch.nn.L1Loss",
        "l1_loss",
        _pair(),
        (_reduction(),),
        "mean absolute error",
        "l_i = |input_i - target_i|",
        streamable=True,
        pitfalls=("(N, 1) predictions against (N,) targets broadcast to (N, N).",),
        tasks=("regression", "count"),
    ),
    LossSpec(
        "mse",
        ("l2",),
        "torch.nn.MSELoss",
        "mse_loss",
        _pair(),
        (_reduction(),),
        "mean squared error",
        "l_i = (input_i - target_i)^2",
        streamable=True,
        pitfalls=(
            "(N, 1) predictions against (N,) targets broadcast to (N, N): the value is wrong, torch only warns.",
        ),
        tasks=("regression", "count"),
    ),
    LossSpec(
        "huber",
        (),
        "torch.nn.HuberLoss",
        "huber_loss",
        _pair(),
        (
            _reduction(),
            Option(
                "delta",
                OptionType.FLOAT,
                1.0,
                "where the loss switches from quadratic to linear",
                minimum=0.0,
                exclusive_minimum=True,
            ),
        ),
        "Huber loss",
        "l_i = 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta), d = input_i - target_i",
        streamable=True,
        tasks=("regression", "count"),
    ),
    LossSpec(
        "smooth-l1",
        (),
        "torch.nn.SmoothL1Loss",
        "smooth_l1_loss",
        _pair(),
        (
            _reduction(),
            Option(
                "beta",
                OptionType.FLOAT,
                1.0,
                "where the loss switches from quadratic to linear",
                minimum=0.0,
            ),
        ),
        "smooth L1 loss",
        "l_i = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta, d = input_i - target_i",
        streamable=True,
        tasks=("regression", "count"),
    ),
    LossSpec(
        "bce",
        ("binary-cross-entropy",),
        "torch.nn.BCELoss",
        "binary_cross_entropy",
        _pair(Role.BINARY_TARGET),
        (_weight("a rescaling weight broadcast over the input"), _reduction()),
        "binary cross-entropy on probabilities",
        "l_i = -w_i [t_i log p_i + (1 - t_i) log(1 - p_i)], log clamped at -100",
        streamable=True,
        input_domain=Domain.PROBABILITIES,
        broadcasting=Broadcasting.NONE,
        pitfalls=(
            "Logits given to bce (use bce-logits).",
            "Probabilities of exactly 0 or 1 saturate: the gradient vanishes.",
        ),
        tasks=("binary", "multilabel"),
    ),
    LossSpec(
        "bce-logits",
        ("bce-with-logits", "binary-cross-entropy-with-logits"),
        "torch.nn.BCEWithLogitsLoss",
        "binary_cross_entropy_with_logits",
        _pair(Role.BINARY_TARGET),
        (
            _weight("a rescaling weight broadcast over the input"),
            _reduction(),
            Option(
                "pos_weight",
                OptionType.TENSOR,
                None,
                "a weight of positive examples, per class (inline array or file)",
            ),
        ),
        "binary cross-entropy on logits (sigmoid inside)",
        "l_i = -w_i [pw t_i log s(x_i) + (1 - t_i) log(1 - s(x_i))], s = sigmoid",
        streamable=True,
        pitfalls=("Sigmoid applied before the loss: the input is already in [0, 1].",),
        broadcasting=Broadcasting.NONE,
        activation=Activation.SIGMOID,
        on_probabilities="bce",
        on_signs="soft-margin",
        on_class_indices="cross-entropy",
        tasks=("binary", "multilabel"),
    ),
    LossSpec(
        "cross-entropy",
        ("ce", "crossentropy"),
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        (
            _CLASS_INPUT,
            Argument(
                "target",
                Role.CLASS_TARGET,
                DType.CLASS,
                "[batch] class indices, or [batch, classes] probabilities",
                dtype_error=_LONG_OR_BYTE,
                integer_dtypes=_LONG_OR_BYTE_DTYPES,
                integer_probabilities_error=_PROBABILITIES_FLOAT,
                range_error=_TARGET_OUT_OF_BOUNDS,
            ),
        ),
        (
            _weight(),
            IGNORE_INDEX,
            _reduction(),
            Option(
                "label_smoothing",
                OptionType.FLOAT,
                0.0,
                "mix this much of the uniform distribution into the target",
                minimum=0.0,
                maximum=1.0,
            ),
        ),
        "cross-entropy on logits (log_softmax inside)",
        "l_i = -w_{y_i} log softmax(x_i)[y_i]; with probability targets l_i = -sum_c w_c t_ic log softmax(x_i)_c",
        per_sample_rule=PerSampleRule.WEIGHTED,
        streamable=True,
        batched_ndim=2,
        pitfalls=(
            "Softmax applied before the loss (probabilities as logits): it still trains, slowly.",
            "Targets of shape (N, 1): squeeze them to (N,).",
            "1-based labels: the largest equals C and is out of range.",
        ),
        layout=Layout.CLASS_SCORES,
        activation=Activation.SOFTMAX,
        class_weight=True,
        tasks=("multiclass",),
    ),
    LossSpec(
        "nll",
        ("nll-loss",),
        "torch.nn.NLLLoss",
        "nll_loss",
        (
            Argument(
                "input",
                Role.PREDICTION,
                DType.FLOAT,
                "[batch, classes] log-probabilities",
                differentiable=True,
            ),
            Argument(
                "target",
                Role.CLASS_INDEX,
                DType.INDEX,
                "[batch] class indices",
                dtype_error=_LONG_OR_BYTE,
                integer_dtypes=_LONG_OR_BYTE_DTYPES,
                range_error=_TARGET_OUT_OF_BOUNDS,
            ),
        ),
        (_weight(), IGNORE_INDEX, _reduction()),
        "negative log-likelihood on log-probabilities",
        "l_i = -w_{y_i} input[i, y_i]",
        per_sample_rule=PerSampleRule.WEIGHTED,
        streamable=True,
        batched_ndim=2,
        input_domain=Domain.LOG_PROBABILITIES,
        pitfalls=(
            "Raw scores given to nll: the loss goes negative.",
            "Probabilities given to nll: log was never taken.",
        ),
        layout=Layout.CLASS_SCORES,
        class_weight=True,
        tasks=("multiclass",),
    ),
    LossSpec(
        "poisson-nll",
        ("poisson",),
        "torch.nn.PoissonNLLLoss",
        "poisson_nll_loss",
        _pair(Role.COUNT_TARGET),
        (
            Option(
                "log_input",
                OptionType.BOOL,
                True,
                "the input is log(rate); otherwise the rate itself",
            ),
            Option("full", OptionType.BOOL, False, "add the Stirling term log(target!)"),
            Option(
                "eps", OptionType.FLOAT, 1e-8, "added to the rate before log when not log_input"
            ),
            _reduction(),
        ),
        "Poisson negative log-likelihood",
        "l_i = exp(x_i) - t_i x_i (log_input) or x_i - t_i log(x_i + eps)",
        streamable=True,
        nonnegative=False,
        tasks=("count",),
    ),
    LossSpec(
        "gaussian-nll",
        ("gaussian",),
        "torch.nn.GaussianNLLLoss",
        "gaussian_nll_loss",
        (
            Argument(
                "input",
                Role.PREDICTION,
                DType.FLOAT,
                "[batch, *] predicted means",
                differentiable=True,
            ),
            Argument("target", Role.TARGET, DType.FLOAT, "[batch, *]"),
            Argument(
                "var",
                Role.VARIANCE,
                DType.FLOAT,
                "[batch, *] or [batch, 1] predicted variances",
                differentiable=True,
            ),
        ),
        (
            Option("full", OptionType.BOOL, False, "add the constant 0.5 log(2 pi)"),
            Option("eps", OptionType.FLOAT, 1e-6, "variances are clamped to at least eps"),
            _reduction(),
        ),
        "Gaussian negative log-likelihood",
        "l_i = 0.5 (log max(var_i, eps) + (input_i - target_i)^2 / max(var_i, eps))",
        layout=Layout.GAUSSIAN,
        streamable=True,
        nonnegative=False,
        tasks=("regression",),
    ),
    LossSpec(
        "kl-div",
        ("kl", "kldiv"),
        "torch.nn.KLDivLoss",
        "kl_div",
        (
            Argument(
                "input",
                Role.PREDICTION,
                DType.FLOAT,
                "[batch, *] log-probabilities",
                differentiable=True,
            ),
            Argument(
                "target",
                Role.DISTRIBUTION_TARGET,
                DType.FLOAT,
                "[batch, *] probabilities (log with --log-target)",
            ),
        ),
        (
            _reduction("mean", ("mean", "batchmean", "sum", "none")),
            Option(
                "log_target", OptionType.BOOL, False, "the target is given as log-probabilities"
            ),
        ),
        "Kullback-Leibler divergence KL(target || exp(input))",
        "l_i = t_i (log t_i - x_i)",
        streamable=True,
        batched_ndim=2,
        nonnegative=False,
        input_domain=Domain.LOG_PROBABILITIES,
        pitfalls=(
            "Probabilities given as input: take log first.",
            "reduction mean divides by every element: use batchmean.",
        ),
        tasks=("multiclass",),
    ),
    LossSpec(
        "margin-ranking",
        ("ranking",),
        "torch.nn.MarginRankingLoss",
        "margin_ranking_loss",
        (
            Argument("x1", Role.PREDICTION, DType.FLOAT, "[batch] scores", differentiable=True),
            Argument("x2", Role.PREDICTION, DType.FLOAT, "[batch] scores", differentiable=True),
            Argument(
                "y",
                Role.SIGN_TARGET,
                DType.FLOAT,
                "[batch] 1 if x1 should rank higher, -1 otherwise",
            ),
        ),
        (_margin(0.0), _reduction()),
        "pairwise ranking loss",
        "l_i = max(0, -y_i (x1_i - x2_i) + margin)",
        layout=Layout.PAIRED_SCORES,
        streamable=True,
        tasks=("ranking",),
    ),
    LossSpec(
        "hinge-embedding",
        ("hinge",),
        "torch.nn.HingeEmbeddingLoss",
        "hinge_embedding_loss",
        _pair(Role.SIGN_TARGET),
        (_margin(1.0), _reduction()),
        "hinge embedding loss on distances",
        "l_i = x_i if y_i = 1; max(0, margin - x_i) if y_i = -1",
        streamable=True,
        # for y = 1 the loss is the input itself, unclamped: torch returns a negative loss for a
        # negative input (a score or a log-distance), which is no mistake of the loss
        nonnegative=False,
        pitfalls=(
            "{0, 1} targets: 0 is not a class here; torch adds both the x and the max(0, margin - x) term for it.",
        ),
        tasks=("similarity",),
    ),
    LossSpec(
        "multilabel-margin",
        (),
        "torch.nn.MultiLabelMarginLoss",
        "multilabel_margin_loss",
        (
            Argument(
                "input", Role.PREDICTION, DType.FLOAT, "[batch, classes]", differentiable=True
            ),
            Argument(
                "target",
                Role.MULTILABEL_INDEX,
                DType.INDEX,
                "[batch, classes] class indices, padded with -1",
                dtype_error=_SCALAR_LONG,
                integer_dtypes=_SCALAR_LONG_DTYPES,
                range_error=_MULTILABEL_OUT_OF_RANGE,
            ),
        ),
        (_reduction(),),
        "multi-label hinge loss on class indices",
        "l_i = sum_{j in y_i, k not in y_i} max(0, 1 - (x_ij - x_ik)) / C",
        layout=Layout.MULTILABEL_INDICES,
        streamable=True,
        batched_ndim=2,
        tasks=("multilabel",),
    ),
    LossSpec(
        "soft-margin",
        (),
        "torch.nn.SoftMarginLoss",
        "soft_margin_loss",
        _pair(Role.SIGN_TARGET),
        (_reduction(),),
        "two-class logistic loss on {-1, 1} targets",
        "l_i = log(1 + exp(-y_i x_i))",
        broadcasting=Broadcasting.INTO_INPUT,
        streamable=True,
        tasks=("binary",),
    ),
    LossSpec(
        "multilabel-soft-margin",
        ("multilabel",),
        "torch.nn.MultiLabelSoftMarginLoss",
        "multilabel_soft_margin_loss",
        (
            Argument(
                "input",
                Role.PREDICTION,
                DType.FLOAT,
                "[batch, classes] logits",
                differentiable=True,
            ),
            Argument("target", Role.BINARY_TARGET, DType.FLOAT, "[batch, classes] 0/1"),
        ),
        (_weight(), _reduction()),
        "multi-label one-versus-all logistic loss",
        "l_i = -mean_c w_c [t_ic log s(x_ic) + (1 - t_ic) log(1 - s(x_ic))]",
        activation=Activation.SIGMOID,
        class_weight=True,
        streamable=True,
        batched_ndim=2,
        tasks=("multilabel",),
    ),
    LossSpec(
        "cosine-embedding",
        ("cosine",),
        "torch.nn.CosineEmbeddingLoss",
        "cosine_embedding_loss",
        (
            Argument("x1", Role.PREDICTION, DType.FLOAT, "[batch, features]", differentiable=True),
            Argument("x2", Role.PREDICTION, DType.FLOAT, "[batch, features]", differentiable=True),
            Argument("y", Role.SIGN_TARGET, DType.FLOAT, "[batch] 1 (similar) or -1 (dissimilar)"),
        ),
        (_margin(0.0), _reduction()),
        "cosine similarity embedding loss",
        "l_i = 1 - cos(x1_i, x2_i) if y_i = 1; max(0, cos(x1_i, x2_i) - margin) if y_i = -1",
        layout=Layout.PAIRED_EMBEDDINGS,
        streamable=True,
        batched_ndim=2,
        tasks=("similarity",),
    ),
    LossSpec(
        "multi-margin",
        (),
        "torch.nn.MultiMarginLoss",
        "multi_margin_loss",
        (
            Argument(
                "input", Role.PREDICTION, DType.FLOAT, "[batch, classes]", differentiable=True
            ),
            Argument(
                "target",
                Role.CLASS_INDEX,
                DType.INDEX,
                "[batch] class indices",
                dtype_error=_SCALAR_LONG,
                integer_dtypes=_SCALAR_LONG_DTYPES,
                range_error=_TARGET_OUT_OF_RANGE,
            ),
        ),
        (
            Option("p", OptionType.INT, 1, "1 or 2: the power of the hinge", ("1", "2")),
            _margin(1.0),
            _weight(),
            _reduction(),
        ),
        "multi-class hinge loss",
        "l_i = sum_{j != y_i} w_{y_i} max(0, margin - x_{i,y_i} + x_ij)^p / C",
        layout=Layout.CLASS_SCORES_FLAT,
        class_weight=True,
        streamable=True,
        batched_ndim=2,
        tasks=("multiclass",),
    ),
    LossSpec(
        "triplet-margin",
        ("triplet",),
        "torch.nn.TripletMarginLoss",
        "triplet_margin_loss",
        _triplet_arguments(),
        (
            _margin(1.0),
            Option("p", OptionType.FLOAT, 2.0, "the norm degree of the pairwise distance"),
            Option("eps", OptionType.FLOAT, 1e-6, "added inside the pairwise distance"),
            Option("swap", OptionType.BOOL, False, "use the distance swap (Balntas et al.)"),
            _reduction(),
        ),
        "triplet margin loss",
        "l_i = max(0, d(a_i, p_i) - d(a_i, n_i) + margin), d = p-norm distance",
        layout=Layout.TRIPLET,
        streamable=True,
        batched_ndim=2,
        tasks=("metric",),
    ),
    LossSpec(
        "triplet-margin-distance",
        ("triplet-distance", "triplet-margin-with-distance"),
        "torch.nn.TripletMarginWithDistanceLoss",
        "triplet_margin_with_distance_loss",
        _triplet_arguments(),
        (
            Option(
                "distance_function",
                OptionType.CHOICE,
                "pairwise",
                "the distance: pairwise (torch's default, PairwiseDistance) or cosine (1 - cosine similarity)",
                ("pairwise", "cosine"),
            ),
            _margin(1.0),
            Option("swap", OptionType.BOOL, False, "use the distance swap (Balntas et al.)"),
            _reduction(),
        ),
        "triplet margin loss with a chosen distance",
        "l_i = max(0, d(a_i, p_i) - d(a_i, n_i) + margin)",
        layout=Layout.TRIPLET,
        streamable=True,
        batched_ndim=2,
        tasks=("metric",),
    ),
    LossSpec(
        "ctc",
        (),
        "torch.nn.CTCLoss",
        "ctc_loss",
        (
            Argument(
                "log_probs",
                Role.LOG_PROBS,
                DType.FLOAT,
                "[time, batch, classes] log-softmax output",
                differentiable=True,
                batch_dim=1,
            ),
            Argument(
                "targets",
                Role.CTC_TARGETS,
                DType.INDEX,
                "[batch, max_target_length] or concatenated [sum(target_lengths)]",
            ),
            Argument(
                "input_lengths",
                Role.LENGTHS,
                DType.INDEX,
                "[batch]",
                dtype_error="input_lengths must be integral",
            ),
            Argument(
                "target_lengths",
                Role.LENGTHS,
                DType.INDEX,
                "[batch]",
                dtype_error="target_lengths must be integral",
            ),
        ),
        (
            Option("blank", OptionType.INT, 0, "the blank label"),
            _reduction(),
            Option(
                "zero_infinity",
                OptionType.BOOL,
                False,
                "replace infinite losses (impossible alignments) by 0",
            ),
        ),
        "connectionist temporal classification",
        "l_i = -log sum over alignments of target_i of prod_t p(t, a_t)",
        per_sample_rule=PerSampleRule.CTC,
        layout=Layout.CTC,
        batched_ndim=3,
        tasks=("sequence",),
    ),
    LossSpec(
        "focal",
        ("sigmoid-focal",),
        "torchvision.ops.sigmoid_focal_loss",
        "",
        _pair(Role.BINARY_TARGET),
        (
            Option(
                "alpha",
                OptionType.FLOAT,
                0.25,
                "weight of the positive class in (0, 1); negative disables it",
            ),
            Option("gamma", OptionType.FLOAT, 2.0, "focusing exponent"),
            _reduction(),
        ),
        "sigmoid focal loss (torchvision's formula)",
        "l_i = alpha_t (1 - p_t)^gamma bce_with_logits(x_i, t_i), p_t = p t + (1 - p)(1 - t), p = sigmoid(x)",
        composed="sigmoid_focal_loss",
        python_call="torchvision.ops.sigmoid_focal_loss",
        broadcasting=Broadcasting.NONE,
        activation=Activation.SIGMOID,
        streamable=True,
        tasks=("binary", "multilabel"),
    ),
    LossSpec(
        "dice",
        ("soft-dice",),
        "soft Dice on sigmoid probabilities",
        "",
        _pair(Role.BINARY_TARGET),
        (
            Option("smooth", OptionType.FLOAT, 1e-6, "added to numerator and denominator"),
            _reduction(),
        ),
        "soft Dice loss, per sample over its non-batch dimensions",
        "l_i = 1 - (2 sum p t + s) / (sum p + sum t + s), p = sigmoid(input)",
        composed="soft_dice",
        python_call="dice_loss",
        broadcasting=Broadcasting.NONE,
        activation=Activation.SIGMOID,
        streamable=True,
        tasks=("binary",),
    ),
)

# where torch keeps its loss classes and functions, and the short forms PyTorch code uses
# (``nn.CrossEntropyLoss``, ``F.cross_entropy``)
_CLASS_HOMES = ("nn.", "torch.nn.")
_FUNCTION_HOMES = ("F.", "torch.nn.functional.")


def torch_names(spec: LossSpec) -> tuple[str, ...]:
    """The names a PyTorch user already knows for ``spec``, as torch writes them.

    Derived from the catalogue's ``torch_class`` and ``function`` (or, for a loss composed
    from torch operations, ``python_call``): the class (``CrossEntropyLoss``,
    ``nn.CrossEntropyLoss``, ``torch.nn.CrossEntropyLoss``) and the functional
    (``cross_entropy``, ``F.cross_entropy``, ``torch.nn.functional.cross_entropy``);
    ``sigmoid_focal_loss`` and ``torchvision.ops.sigmoid_focal_loss`` for focal.
    """
    found: list[str] = []
    if spec.torch_class.startswith("torch.nn."):
        short = spec.torch_class.removeprefix("torch.nn.")
        found += [short, *(home + short for home in _CLASS_HOMES)]
    if spec.function:
        found += [spec.function, *(home + spec.function for home in _FUNCTION_HOMES)]
    elif "." in spec.python_call:  # a library's function (torchvision's), not user code
        found += [spec.python_call.rsplit(".", 1)[-1], spec.python_call]
    return tuple(dict.fromkeys(found))


def _key(name: str) -> str:
    """The lookup form of a name: case, surrounding blanks and ``_`` against ``-`` forgiven."""
    return name.strip().lower().replace("_", "-")


def names_of(spec: LossSpec) -> tuple[str, ...]:
    """Every name ``spec`` answers to, as written: its name, aliases and torch's names."""
    return tuple(dict.fromkeys((spec.name, *spec.aliases, *torch_names(spec))))


def _by_key() -> dict[str, LossSpec]:
    """Lookup form → loss; two losses answering to one name is a catalogue error."""
    found: dict[str, LossSpec] = {}
    for spec in LOSSES:
        for name in names_of(spec):
            other = found.setdefault(_key(name), spec)
            if other is not spec:
                raise ValueError(f"{name!r} names both {other.name} and {spec.name}")
    return found


_BY_NAME: dict[str, LossSpec] = _by_key()


def all_options() -> dict[str, Option]:
    """Every option of every loss, by torch keyword (the CLI offers the union)."""
    found: dict[str, Option] = {}
    for spec in LOSSES:
        for option in spec.options:
            found.setdefault(option.name, option)
    return found


def get(name: str) -> LossSpec | None:
    """The loss called ``name``: its name, an alias, or one of torch's names for it
    (:func:`torch_names`); case, and ``_`` against ``-``, are forgiven."""
    return _BY_NAME.get(_key(name))


def names() -> list[str]:
    """Every accepted name, alias and torch name, as written (``CrossEntropyLoss``)."""
    return sorted({name for spec in LOSSES for name in names_of(spec)}, key=str.lower)


# prefixes and suffixes that say "a loss" or "torch" and tell no loss from another
_PREFIXES = ("torch.nn.functional.", "torch.nn.", "torchvision.ops.", "nn.", "f.", "functional.")
_SUFFIXES = ("loss",)
# how alike a misspelling and a name must be (difflib's ratio) to be suggested
_CUTOFF = 0.6


def _bare(name: str) -> str:
    """A name stripped to what tells the losses apart: lower case, no torch prefix, no
    ``Loss`` / ``_loss`` suffix, no ``_`` or ``-`` (``F.mse_loss`` → ``mse``)."""
    bare = name.strip().lower()
    for prefix in _PREFIXES:
        bare = bare.removeprefix(prefix)
    bare = bare.replace("_", "").replace("-", "")
    for suffix in _SUFFIXES:
        if bare != suffix:
            bare = bare.removesuffix(suffix)
    return bare


def _forms() -> dict[str, str]:
    """Every accepted name in its lookup and its bare form → the loss's name."""
    found: dict[str, str] = {}
    for spec in LOSSES:
        for name in names_of(spec):
            found.setdefault(_key(name), spec.name)
            found.setdefault(_bare(name), spec.name)
    return found


def closest(name: str) -> tuple[str, float] | None:
    """The loss a misspelled or unknown name most likely means, and how alike they are
    (difflib's ratio, 1.0 for the same bare name), or None below 0.6.

    The name is compared, as typed and stripped bare (:func:`_bare`), with every name,
    alias and torch name in both forms: ``mse_los`` and ``MSELos`` find mse,
    ``focal-loss`` finds focal, ``CrossEntropy`` cross-entropy; failing that, a name the
    typed one starts with (``KLDivergence`` → kl-div).
    """
    import difflib

    forms = _forms()
    best: tuple[str, float] | None = None
    for typed in dict.fromkeys((_key(name), _bare(name))):
        if not typed:
            continue
        for close in difflib.get_close_matches(typed, forms, n=1, cutoff=_CUTOFF):
            ratio = difflib.SequenceMatcher(None, typed, close).ratio()
            if best is None or ratio > best[1]:
                best = (forms[close], ratio)
    return best or _extended(_bare(name), forms)


def _extended(typed: str, forms: dict[str, str]) -> tuple[str, float] | None:
    """A name the typed one starts with, spelled out further (``KLDivergence`` → kl-div):
    the longest such form of at least 3 letters, at the cutoff's closeness."""
    starts = [form for form in forms if len(form) >= 3 and typed.startswith(form)]
    if not starts:
        return None
    return forms[max(starts, key=len)], _CUTOFF


def suggest(name: str) -> str | None:
    """The loss a misspelled or unknown name most likely means (:func:`closest`), or None."""
    found = closest(name)
    return found[0] if found else None
