"""Numeric checks: non-finite or constant inputs, and a loss or gradient that came out wrong.

``non-finite-input`` and ``constant-input`` read the inputs. The others read the
:class:`~losscli.result.Computation` (``context.computation``; nothing when torch did not
compute): ``non-finite-loss`` (naming the samples responsible and what in them is extreme),
``non-finite-gradient``, ``vanishing-gradient`` and ``negative-loss``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from losscli import text
from losscli.checks import Check, CheckContext, Scope, Totals
from losscli.findings import Finding, Severity, finding
from losscli.losses import Activation, Argument, Domain, LossSpec, Role
from losscli.result import Computation, SampleRows, clearly_negative

# a gradient element this small is numerically zero (SPEC: vanishing-gradient)
VANISHING = 1e-12
# "almost everywhere": this fraction of the gradient elements
VANISHING_FRACTION = 0.99
# a per-sample loss this small is an exact fit (nothing left to learn, so no gradient is fine)
_NEGLIGIBLE_LOSS = 1e-6
# the samples a message describes
_LISTED = 3
# roles whose values are model outputs (a variance head may well be constant)
_OUTPUT_ROLES = (Role.PREDICTION, Role.LOG_PROBS)
# roles whose values a model computes, a variance head included (NaN there is the model's)
_MODEL_OUTPUTS = (Role.PREDICTION, Role.LOG_PROBS, Role.VARIANCE)


def check_non_finite_input(context: CheckContext) -> Iterator[Finding]:
    """NaN or Inf in any input: counts, the rows they are in, and the first positions."""
    for argument in context.spec.arguments:
        values = context.inputs[argument.name].values
        if values.dtype.kind != "f" or values.size == 0:
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(float(np.sum(values))):  # one pass: a finite sum, no NaN/Inf
                continue
        bad = ~np.isfinite(values)
        count = int(bad.sum())
        if not count:
            continue
        nans = int(np.isnan(values).sum())
        first = text.positions(context, argument.name, bad)
        if _is_log_space_mask(context, argument.name, values, bad):
            yield _masked_scores(context, argument.name, values, count, first)
            continue
        axis = argument.batch_dim if values.ndim > argument.batch_dim else 0
        rows = (
            int(np.moveaxis(bad, axis, 0).reshape(values.shape[axis], -1).any(axis=1).sum())
            if values.ndim
            else 1
        )
        total_rows = values.shape[axis] if values.ndim else 1
        yield finding(
            "non-finite-input",
            Severity.ERROR,
            f"{argument.name} ({context.source(argument.name)}) holds {nans} NaN and {count - nans} Inf "
            f"of {values.size} values, in {rows} of {total_rows} samples (first at {text.position(first[0])})",
            _non_finite_input_fix(context, argument, count - nans),
            argument=argument.name,
            nan=nans,
            inf=count - nans,
            samples=rows,
            first_positions=first,
        )


# the largest finite float16
_FLOAT16_MAX = 65504.0


def _non_finite_input_fix(context: CheckContext, argument: Argument, infs: int) -> str:
    """Where NaN/Inf in ``argument`` usually come from: the model's forward pass for what a
    model outputs, the data for targets; float16's overflow when the file is float16."""
    name = argument.name
    if argument.role not in _MODEL_OUTPUTS:
        return _non_finite_data_fix(context, name)
    loaded = context.inputs[name]
    stored = loaded.stored_dtype or str(loaded.values.dtype)
    general = (
        f"{name} is the model's output: find where the NaN/Inf first appears in its forward pass "
        "(torch.autograd.set_detect_anomaly(True)); the usual causes are a log of 0, a division "
        "by zero, or a learning rate so high the weights diverge; or drop those samples before "
        "the loss"
    )
    if stored != "float16" or not infs:
        return general
    return (
        f"{name} is float16, which overflows to Inf beyond ±{_FLOAT16_MAX:g} (and Inf - Inf gives "
        "NaN): run the model under torch.autocast with a GradScaler, or in bfloat16, which has "
        "float32's range; otherwise " + general
    )


def _non_finite_data_fix(context: CheckContext, name: str) -> str:
    """NaN/Inf in a target, labels or lengths: the data, not the model."""
    return (
        f"{name} is data, not model output: the NaN/Inf comes from the file "
        f"({context.source(name)}) or the pipeline that builds the labels (a missing value read "
        "as NaN, a division by zero while normalising): fix those values where the labels are "
        f"read, or drop the samples whose {name} is not finite before the loss"
    )


def _is_log_space_mask(
    context: CheckContext, name: str, values: np.ndarray, bad: np.ndarray
) -> bool:
    """-inf (and nothing else non-finite) in class scores cross-entropy or nll reads in log space.

    ``logits.masked_fill(~allowed, float('-inf'))`` is how classes are masked out (action
    masks, constrained decoding); log(0) = -inf is a log-probability of zero. cross-entropy
    and nll handle both, loss and gradient, as long as no target needs a masked entry, and the
    result checks catch it when one does. Not for ctc (its gradient at -inf is NaN), kl-div or
    probability targets (0 * -inf is NaN), nor sigmoid losses (-inf logits give NaN). A row
    with every entry -inf has no distribution.
    """
    spec = context.spec
    # class-index targets only: probability targets (soft cross-entropy, kl-div) multiply the
    # -inf by a 0 and give NaN
    scores = (
        name == spec.arguments[0].name
        and (spec.activation is Activation.SOFTMAX or spec.input_domain is Domain.LOG_PROBABILITIES)
        and spec.argument(Role.DISTRIBUTION_TARGET) is None
        and not context.soft_target
    )
    if not scores or values.ndim == 0 or not np.isneginf(values[bad]).all():
        return False
    # the class axis: 1 for [batch, classes, ...], the only one for an unbatched [classes]
    axis = 1 if values.ndim >= 2 else 0
    return not np.isneginf(values).all(axis=axis).any()


def _masked_arguments(context: CheckContext) -> list[str]:
    """The arguments whose only non-finite values are -inf masks in log space."""
    names = []
    for argument in context.spec.arguments:
        values = context.inputs[argument.name].values
        if values.dtype.kind != "f" or values.size == 0:
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(float(np.sum(values))):  # one pass: a finite sum, no NaN/Inf
                continue
        bad = ~np.isfinite(values)
        if bad.any() and _is_log_space_mask(context, argument.name, values, bad):
            names.append(argument.name)
    return names


def _masked_scores(
    context: CheckContext, name: str, values: np.ndarray, count: int, first: list[list[int]]
) -> Finding:
    return finding(
        "non-finite-input",
        Severity.INFO,
        f"{name} ({context.source(name)}) holds {count} -inf of {values.size} values (first at "
        f"{text.position(first[0])}) and no NaN: read as masked classes (log-probability 0); every row "
        "keeps at least one finite entry",
        "nothing to do if the masked classes are never a target (a target on a masked class "
        "makes the loss inf: non-finite-loss says so); with label smoothing or probability "
        "targets torch gives NaN, so use a large negative number (-1e4) instead of -inf there",
        argument=name,
        nan=0,
        inf=count,
        masked=True,
        first_positions=first,
    )


def _outputs(context: CheckContext) -> list[str]:
    """The float arguments a model produces (a variance head may well be constant)."""
    return [
        a.name
        for a in context.spec.arguments
        if a.role in _OUTPUT_ROLES and np.asarray(context.arrays[a.name]).dtype.kind == "f"
    ]


def extremes(context: CheckContext) -> Totals:
    """The smallest and largest finite value of each model output, and how many there are."""
    found: Totals = {}
    for name in _outputs(context):
        values = np.asarray(context.arrays[name])
        if values.size:  # finite ends mean every value is finite (a NaN would be either end)
            low, high = float(values.min()), float(values.max())
            if math.isfinite(low) and math.isfinite(high):
                found.update(
                    {f"count_{name}": values.size, f"min_{name}": low, f"max_{name}": high}
                )
                continue
        finite = values[np.isfinite(values)]
        found[f"count_{name}"] = int(finite.size)
        found[f"min_{name}"] = float(finite.min()) if finite.size else None
        found[f"max_{name}"] = float(finite.max()) if finite.size else None
    return found


def check_constant_input(context: CheckContext) -> Iterator[Finding]:
    """Every prediction the same value, over every sample: a dead or collapsed model.

    With several prediction arguments (x1 and x2, triplets) one constant argument next to
    varying ones is a fixed baseline (scores ranked against a threshold of 0), not a dead
    model: only all of them constant is reported.
    """
    totals = context.totals if context.totals is not None else extremes(context)
    outputs = _outputs(context)
    constant = [
        name
        for name in outputs
        if totals.get(f"count_{name}", 0) >= 2 and totals[f"min_{name}"] == totals[f"max_{name}"]
    ]
    if len(outputs) > 1 and len(constant) < len(outputs):
        constant = []
    for name in constant:
        value, count = totals[f"min_{name}"], totals[f"count_{name}"]
        yield finding(
            "constant-input",
            Severity.WARNING,
            f"every one of the {count} finite values of {name} ({context.source(name)}) is "
            f"{text.number(value)}: the model's output does not depend on its input",
            "check that the output layer is trained and not zero-initialised, that activations before it "
            "are not dead (all-zero ReLU), and that the right file or column was passed",
            argument=name,
            value=value,
            count=count,
        )


def _describe_rows(context: CheckContext, rows: SampleRows) -> tuple[str, list[str]]:
    """What one sample holds in each argument, and the arguments where it holds NaN/Inf."""
    parts: list[str] = []
    non_finite: list[str] = []
    for argument in context.spec.arguments:
        values = rows.arrays.get(argument.name)
        if values is None or values.size == 0:
            continue
        if values.dtype.kind == "f":
            bad = int((~np.isfinite(values)).sum())
            finite = values[np.isfinite(values)].astype(np.float64)
            if bad:
                non_finite.append(argument.name)
                parts.append(f"{argument.name} holds {bad} NaN/Inf")
            elif values.size == 1:
                parts.append(f"{argument.name} {text.number(float(finite[0]))}")
            else:
                parts.append(
                    f"{argument.name} from {text.number(float(finite.min()))} to {text.number(float(finite.max()))}"
                )
        elif values.size == 1:
            parts.append(f"{argument.name} {int(values.reshape(-1)[0])}")
    return ", ".join(parts), non_finite


def check_non_finite_loss(context: CheckContext) -> Iterator[Finding]:
    """The value or a per-sample loss is NaN/Inf: which samples, and what they hold."""
    computation = context.computation
    if computation is None:
        return
    totals = computation.totals
    value_bad = computation.value is not None and not math.isfinite(computation.value)
    if not totals.non_finite and not value_bad:
        return
    parts: list[str] = []
    if value_bad:
        parts.append(f"the value is {computation.value}")
    non_finite_inputs: list[str] = []
    if totals.non_finite:
        kinds = ", ".join(
            f"{count} {name}"
            for count, name in (
                (totals.nan, "NaN"),
                (totals.positive_inf, "+Inf"),
                (totals.negative_inf, "-Inf"),
            )
            if count
        )
        parts.append(
            f"{totals.non_finite} of {computation.summary['n']} per-sample losses are "
            f"non-finite ({kinds})"
        )
        described = []
        for rows in totals.described[:_LISTED]:
            text, non_finite = _describe_rows(context, rows)
            non_finite_inputs += [name for name in non_finite if name not in non_finite_inputs]
            described.append(f"sample {rows.index}: {text}" if text else f"sample {rows.index}")
        parts.append("; ".join(described))
    else:
        parts.append(
            f"every per-sample loss is finite, so the reduction produced it (denominator "
            f"{computation.denominator})"
        )
    samples = list(totals.bad_samples)
    fix = _non_finite_loss_fix(context, samples, non_finite_inputs)
    if set(non_finite_inputs) & set(_masked_arguments(context)):
        fix = (
            "a masked (-inf) score meets the target in these samples: a target class that is "
            "masked, or label smoothing / probability targets that give a masked class weight; "
            "keep target classes unmasked, or mask with a large negative number (-1e4) instead "
            "of -inf"
        )
    yield finding(
        "non-finite-loss",
        Severity.ERROR,
        "; ".join(parts),
        fix,
        samples=samples,
        count=totals.non_finite,
    )


def _non_finite_loss_fix(
    context: CheckContext, samples: list[int], non_finite_inputs: list[str]
) -> str:
    """The usual cause of a NaN/Inf loss in ``samples`` (none: the reduction made it).

    Args:
        non_finite_inputs: the arguments that hold NaN/Inf in those samples.
    """
    if non_finite_inputs:
        named = ", ".join(f"{name} ({context.source(name)})" for name in non_finite_inputs)
        return (
            f"the NaN/Inf comes from {named} in these samples: fix "
            f"{'it' if len(non_finite_inputs) == 1 else 'them'} first (see non-finite-input)"
        )
    if context.spec.option("zero_infinity") is not None and not context.options.get(
        "zero_infinity", False
    ):
        return (
            "an impossible alignment gives an infinite loss: see ctc-target-too-long, or pass "
            "--zero-infinity"
        )
    if not samples:
        return "check that some targets are counted (every target ignored divides by zero)"
    shown = samples[:_LISTED]
    return (
        f"look at these samples (`{context.spec.arguments[0].name}[{shown}]`): values at the edge of the loss's domain (log(0), "
        "a zero variance) or too large for the dtype; compare with --dtype float64"
    )


def check_non_finite_gradient(context: CheckContext) -> Iterator[Finding]:
    """NaN/Inf in a gradient."""
    computation = context.computation
    if computation is None:
        return
    totals = computation.totals
    for name, state in totals.gradients.items():
        if not state.count:
            continue
        shape = computation.gradient_summaries.get(name, {}).get("shape", [])
        size = math.prod(shape) if shape else 1
        first = [list(p) for p in state.first_positions]
        message = (
            f"the gradient for {name} holds {state.count} NaN/Inf of {size} values "
            f"(first at {text.position(first[0]) if first else '?'})"
        )
        fix = (
            "look for inputs at the edge of the loss's domain (log(0), division by a zero variance)"
        )
        if totals.non_finite and state.only_in_bad_samples and state.samples:
            # NaN/Inf only in samples whose loss is already NaN/Inf: a consequence, not a cause
            samples = list(state.samples)
            message += (
                f", all in samples whose loss is itself non-finite ({samples[:_LISTED]}): "
                "it follows from the non-finite loss"
            )
            inputs_bad = list(
                dict.fromkeys(
                    name
                    for rows in totals.described
                    if rows.index in samples[:_LISTED]
                    for name in _describe_rows(context, rows)[1]
                )
            )
            fix = _non_finite_loss_fix(context, samples, inputs_bad)
        yield finding(
            "non-finite-gradient",
            Severity.ERROR,
            message,
            fix,
            argument=name,
            count=state.count,
            first_positions=first,
        )


def _gradient_per_sample(context: CheckContext, computation: Computation) -> np.ndarray | None:
    """The largest |gradient| of each sample over every argument, or None without a batch dim."""
    batch = computation.per_sample.size
    largest = np.zeros(batch)
    for argument in context.spec.arguments:
        gradient = computation.gradients.get(argument.name)
        if gradient is None:
            continue
        if gradient.ndim <= argument.batch_dim or gradient.shape[argument.batch_dim] != batch:
            return None
        moved = np.abs(np.moveaxis(gradient, argument.batch_dim, 0)).reshape(batch, -1)
        largest = np.maximum(largest, moved.max(axis=1) if moved.shape[1] else 0.0)
    return largest


def check_vanishing_gradient(context: CheckContext) -> Iterator[Finding]:
    """The gradient is numerically zero almost everywhere while the loss is not.

    A zero gradient at a zero loss is an exact fit (or every margin met): nothing left to
    learn, so it is not reported. What is reported is a loss that the gradient cannot
    reduce: samples that carry most of the loss but get no gradient (saturated sigmoids,
    probabilities of exactly 0 or 1, a flat region of the loss).
    """
    computation = context.computation
    if computation is None:
        return
    gradients = {k: v for k, v in computation.gradients.items() if v.size}
    if not gradients:
        return
    elements = sum(g.size for g in gradients.values())
    tiny = sum(int((np.abs(g[np.isfinite(g)]) < VANISHING).sum()) for g in gradients.values())
    fraction = tiny / elements
    if fraction < VANISHING_FRACTION:
        return
    per_sample = np.abs(computation.per_sample)
    per_sample = np.where(np.isfinite(per_sample), per_sample, 0.0)
    loss_total = float(per_sample.sum())
    if loss_total <= _NEGLIGIBLE_LOSS * max(per_sample.size, 1):
        return  # an exact fit: zero loss, zero gradient
    largest = _gradient_per_sample(context, computation)
    if largest is not None:
        stuck = largest < VANISHING
        stuck_share = float(per_sample[stuck].sum()) / loss_total
        if stuck_share < 0.5:
            return  # the loss sits where the gradient reaches it (a few hard samples)
        share = f"; samples with no gradient carry {100 * stuck_share:.1f}% of the loss"
    else:
        share = ""
    names = ", ".join(gradients)
    value = (
        f"the loss is {computation.value:.6g}"
        if computation.value is not None
        else f"the summed loss is {loss_total:.6g}"
    )
    yield finding(
        "vanishing-gradient",
        Severity.WARNING,
        f"the gradient for {names} is below {VANISHING:g} in {tiny} of {elements} elements "
        f"({100 * fraction:.2f}%) while {value}{share}: training cannot reduce this loss",
        _vanishing_fix(context),
        fraction=fraction,
        elements=elements,
    )


def _vanishing_fix(context: CheckContext) -> str:
    spec = context.spec
    name = spec.arguments[0].name
    values = np.asarray(context.arrays[name], dtype=np.float64)
    finite = values[np.isfinite(values)]
    if spec.input_domain is Domain.PROBABILITIES:
        return (
            "probabilities of exactly 0 or 1 give bce no gradient: keep the logits and use "
            "bce-logits (drop the torch.sigmoid)"
        )
    if spec.activation is Activation.SIGMOID and finite.size and np.abs(finite).max() > 17:
        return (
            f"the logits reach |{name}| = {text.number(float(np.abs(finite).max()))}, where the sigmoid is "
            "saturated (in float32 it rounds to exactly 1 above 17, and its slope is below 1e-12 "
            "beyond 28): look for a missing normalisation or temperature before the loss"
        )
    return (
        "look for a saturated activation (sigmoid/tanh at exactly 0 or ±1), a clamp, or a detach() "
        "before the loss"
    )


def check_negative_loss(context: CheckContext) -> Iterator[Finding]:
    """A loss that cannot be negative came out negative: an input is outside its domain."""
    computation = context.computation
    if computation is None:
        return
    spec = context.spec
    totals = computation.totals
    value = computation.value
    value_negative = value is not None and clearly_negative(value, computation.dtype)
    if not value_negative and not totals.negative:
        return
    parts = []
    if value is not None:
        parts.append(f"{spec.name} came out {value:.6g}")
    if totals.negative:
        parts.append(
            f"{totals.negative} of {computation.summary['n']} per-sample losses are negative (min "
            f"{text.number(totals.minimum)} at sample {totals.argmin})"
        )
    name = spec.arguments[0].name
    values = np.asarray(context.arrays[name], dtype=np.float64)
    finite = values[np.isfinite(values)]
    if (
        spec.input_domain is Domain.LOG_PROBABILITIES
        and finite.size
        and finite.min() >= 0
        and finite.max() <= 1
    ):
        fix = f"{spec.name} wants log-probabilities: take the log of the probabilities, `{name}.log()`"
    elif spec.input_domain is Domain.LOG_PROBABILITIES:
        fix = (
            f"{spec.name} wants log-probabilities: `{name} = F.log_softmax(logits, dim=1)` "
            "(or give the raw logits to cross-entropy)"
        )
    else:
        fix = _negative_loss_fix(context)
    yield finding(
        "negative-loss",
        Severity.ERROR,
        "; ".join(parts) + f": {spec.name} cannot be negative for valid inputs",
        fix,
        count=totals.negative,
        value=value,
    )


def _negative_loss_fix(context: CheckContext) -> str:
    """The usual reason a nonnegative loss went negative, read from the argument roles."""
    spec = context.spec
    for argument in spec.arguments:
        values = np.asarray(context.arrays[argument.name], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if not finite.size:
            continue
        if argument.role is Role.BINARY_TARGET and (finite.min() < 0 or finite.max() > 1):
            return (
                f"{argument.name} lies outside [0, 1], where {spec.name} is not a loss: scale it into "
                "[0, 1] (see target-outside-unit-interval)"
            )
        if argument.role is Role.LOG_PROBS and finite.max() > 0:
            return f"{argument.name} must be log-probabilities: `{argument.name} = logits.log_softmax(2)`"
    return (
        f"an input lies outside {spec.name}'s domain: the other findings name it "
        f"(`losscli debug {spec.name} ...` lists every check)"
    )


def _nonnegative(spec: LossSpec) -> bool:
    return spec.nonnegative


CHECKS: tuple[Check, ...] = (
    Check(check_non_finite_input, ("non-finite-input",), Scope.CHUNK),
    # every value equal: one verdict on all of them
    Check(
        check_constant_input,
        ("constant-input",),
        Scope.TOTALS,
        collect=extremes,
        judges_model=True,
    ),
    Check(check_non_finite_loss, ("non-finite-loss",), Scope.RESULT),
    Check(check_non_finite_gradient, ("non-finite-gradient",), Scope.RESULT),
    # the share of the loss carried by samples with no gradient: the evidence's losses and gradients
    Check(check_vanishing_gradient, ("vanishing-gradient",), Scope.SAMPLE),
    Check(check_negative_loss, ("negative-loss",), Scope.RESULT, applies=_nonnegative),
)
