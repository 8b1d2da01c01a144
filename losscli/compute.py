"""Compute: the loss value, per-sample losses and gradients, by torch itself.

The only module that imports torch at top level. The value is what
``torch.nn.functional`` returns for the user's tensors and options, bit for bit; the
per-sample breakdown comes from a second call with ``reduction='none'``; gradients come
from autograd on the value (on the sum when the reduction is ``none``).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from losscli.losses import LossSpec, OptionType, PerSampleRule, Role
from losscli.result import ChunkResult, PrecisionProbe


class TorchRejected(Exception):
    """torch raised for these inputs; the message is torch's first line."""


class NoKernel(TorchRejected):
    """torch has no kernel for this loss in the dtype asked for, on this device."""


_TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def to_tensor(values: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing memory with ``values`` where numpy allows it."""
    array = np.asarray(values)
    if array.dtype.kind == "u" and array.dtype != np.uint8:
        array = array.astype(np.int64)
    if not array.flags.writeable:
        array = np.array(array)
    # np.ascontiguousarray would turn a 0-d array (an unbatched class index) into shape (1,)
    return torch.from_numpy(np.require(array, requirements="C"))


def loss_function(
    spec: LossSpec, options: dict[str, Any], soft_target: bool = False
) -> Callable[..., torch.Tensor]:
    """A callable ``f(*tensors, reduction=...)`` computing ``spec`` with ``options``.

    Args:
        spec: the loss.
        options: torch keyword → value; tensor options as numpy arrays.
        soft_target: unused by torch (cross-entropy infers it from the target's dtype);
            kept so callers need not know.
    """
    del soft_target
    kwargs = {name: value for name, value in options.items() if name != "reduction"}
    if spec.composed:
        return _COMPOSED[spec.composed](**kwargs)
    function = getattr(F, spec.function)
    if "distance_function" in kwargs:
        kwargs["distance_function"] = _DISTANCES[kwargs["distance_function"]]
    for option in spec.options:
        # multi-margin's p must reach torch as an int (the CLI's -p is a float)
        if option.type is OptionType.INT and kwargs.get(option.name) is not None:
            kwargs[option.name] = int(kwargs[option.name])

    def call(*tensors: torch.Tensor, reduction: str) -> torch.Tensor:
        resolved = {k: _tensor_option(v, tensors[0]) for k, v in kwargs.items()}
        return function(*tensors, reduction=reduction, **resolved)

    return call


def _tensor_option(value: Any, like: torch.Tensor) -> Any:
    if isinstance(value, np.ndarray):
        dtype = like.dtype if like.is_floating_point() else torch.float32
        return to_tensor(value).to(dtype)
    return value


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(a, b)


_DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None] = {
    "pairwise": None,  # torch's default: nn.PairwiseDistance()
    "cosine": _cosine_distance,
}


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _focal(alpha: float, gamma: float) -> Callable[..., torch.Tensor]:
    """torchvision.ops.sigmoid_focal_loss, line for line, reduced like the other losses."""

    def call(inputs: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
        p = torch.sigmoid(inputs)
        ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = ce_loss * ((1 - p_t) ** gamma)
        if alpha >= 0:
            alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
            loss = alpha_t * loss
        return _reduce(loss, reduction)

    return call


def _dice(smooth: float) -> Callable[..., torch.Tensor]:
    """Soft Dice on sigmoid probabilities, per sample over its non-batch dimensions."""

    def call(logits: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
        probabilities = torch.sigmoid(logits)
        if probabilities.dim() <= 1:
            probabilities, targets = probabilities.reshape(-1, 1), targets.reshape(-1, 1)
        else:
            probabilities = probabilities.flatten(1)
            targets = targets.flatten(1)
        intersection = (probabilities * targets).sum(dim=1)
        total = probabilities.sum(dim=1) + targets.sum(dim=1)
        loss = 1 - (2 * intersection + smooth) / (total + smooth)
        return _reduce(loss, reduction)

    return call


# the losses torch.nn.functional lacks, composed from torch operations (LossSpec.composed)
_COMPOSED: dict[str, Callable[..., Callable[..., torch.Tensor]]] = {
    "sigmoid_focal_loss": lambda alpha, gamma: _focal(float(alpha), float(gamma)),
    "soft_dice": lambda smooth: _dice(float(smooth)),
}


@dataclass(frozen=True)
class PrecisionRequest:
    """Recompute the loss in float64 and in the low precision some inputs were stored in.

    Attributes:
        precision: ``float16`` or ``bfloat16``.
        low: the arguments stored in that precision.
        mixed: other float arguments were stored in another precision (torch may promote).
    """

    precision: str
    low: frozenset[str]
    mixed: bool


@contextlib.contextmanager
def beside_a_reader() -> Iterator[None]:
    """torch on one core fewer while another thread reads the next chunk.

    Two OpenMP threads on two cores, one of them taken by the reader (or by anything else on
    the machine), wait on each other at every operation: measured 3.0 s against 1.2 s for
    1e8 elements on two cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1) - 1))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def compute(
    spec: LossSpec,
    arrays: dict[str, np.ndarray],
    options: dict[str, Any],
    soft_target: bool = False,
    want_gradient: bool = True,
) -> ChunkResult:
    """Compute ``spec`` on whole tensors ``arrays`` (argument name → array) with ``options``.

    Raises:
        TorchRejected: torch raised for these tensors (its message, first line).
    """
    return compute_chunk(
        spec, arrays, options, soft_target, reduced=True, want_gradient=want_gradient
    )


def compute_chunk(
    spec: LossSpec,
    arrays: dict[str, np.ndarray],
    options: dict[str, Any],
    soft_target: bool = False,
    *,
    reduced: bool,
    want_gradient: bool = True,
    precision: PrecisionRequest | None = None,
    float_dtype: str | None = None,
) -> ChunkResult:
    """Compute ``spec`` on one chunk of samples.

    Args:
        spec: the loss.
        arrays: argument name → the chunk's array, converted.
        options: torch keyword → value.
        soft_target: cross-entropy's target holds probabilities.
        reduced: the chunk is the whole input: compute torch's value with the user's
            reduction (bit for bit) and its gradient; otherwise only ``reduction='none'`` and
            the gradient of the chunk's summed losses.
        want_gradient: compute gradients at all.
        precision: also recompute the loss in float64 and in a low precision.
        float_dtype: ``bfloat16``: the float arrays hold bfloat16 values in float32 (numpy
            has no bfloat16), and torch computes on them as bfloat16 tensors.

    Raises:
        NoKernel: torch has no kernel for this loss in the tensors' dtype here.
        TorchRejected: torch raised for these tensors (its message, first line).
    """
    reduction = str(options.get("reduction", "mean"))
    function = loss_function(spec, options, soft_target)
    try:
        tensors = [to_tensor(arrays[a.name]) for a in spec.arguments]
    except TypeError as error:  # a dtype torch has no tensor for (--strict on float128, ...)
        raise TorchRejected(str(error).split(". ")[0]) from None
    if float_dtype == "bfloat16":  # exact: the values are bfloat16's already
        tensors = [t.to(torch.bfloat16) if t.is_floating_point() else t for t in tensors]
    grad_names = [
        a.name
        for a, t in zip(spec.arguments, tensors, strict=True)
        if a.differentiable and t.is_floating_point() and want_gradient
    ]
    for argument, tensor in zip(spec.arguments, tensors, strict=True):
        if argument.name in grad_names:
            tensor.requires_grad_(True)
    value: float | None = None
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            if reduced:
                out = function(*tensors, reduction=reduction)
                value = None if reduction == "none" else float(out.item())
                total = out if reduction != "none" else out.sum()
                with torch.no_grad():
                    unreduced = function(*[t.detach() for t in tensors], reduction="none")
            else:
                unreduced = function(*tensors, reduction="none")
                # backward of a scalar: a non-scalar grad_tensors makes autograd import
                # torch.fx's symbolic shapes (sympy), 0.3 s, where the sum costs one pass
                total = unreduced.sum()
            if grad_names and total.requires_grad:
                total.backward()
            caught = [str(r.message) for r in records]
    except NotImplementedError as error:  # "... not implemented for 'BFloat16'"
        raise NoKernel(str(error).strip().splitlines()[0]) from None
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        raise TorchRejected(
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        ) from None
    gradients = {}
    for argument, tensor in zip(spec.arguments, tensors, strict=True):
        if argument.name in grad_names:
            grad = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
            gradients[argument.name] = _numpy(grad.detach())
    unreduced = unreduced.detach()
    per_sample, denominator, ignored = per_sample_losses(
        spec, unreduced, arrays, options, reduction, soft_target, in_place=not reduced
    )
    elements = int(unreduced[0].numel()) if unreduced.dim() > 0 and unreduced.numel() else 1
    return ChunkResult(
        value=value,
        reduced=reduced,
        dtype=str(unreduced.dtype).removeprefix("torch."),
        per_sample=per_sample,
        denominator=denominator,
        ignored=ignored,
        gradients=gradients,
        elements=max(elements, 1),
        unreduced=_numpy(unreduced),
        warnings=tuple(dict.fromkeys(caught)),
        precision=_precision(
            spec, arrays, options, soft_target, reduced, precision, value, unreduced
        )
        if precision is not None
        else None,
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as numpy; bfloat16, which numpy lacks, as float32 (exactly)."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.to(torch.float32)
    return tensor.numpy()


def _precision(
    spec: LossSpec,
    arrays: dict[str, np.ndarray],
    options: dict[str, Any],
    soft_target: bool,
    reduced: bool,
    request: PrecisionRequest,
    value: float | None,
    unreduced: torch.Tensor,
) -> PrecisionProbe | None:
    """The loss in float64 and in ``request.precision``, as torch computes each.

    With other float arguments stored in another precision, only the low-precision ones are
    cast first and torch promotes the rest (as it would for the user's tensors); when torch
    refuses that mix, everything is cast; when torch has no kernel at all in that precision
    on this device, the low value is losscli's own.
    """
    exact = value_in(spec, arrays, options, soft_target, "float64", reduced=reduced)
    if exact is None:
        return None
    low = (
        value_in(spec, arrays, options, soft_target, request.precision, request.low, reduced)
        if request.mixed
        else None
    )
    promoted = low is not None
    if low is None:
        low = value_in(spec, arrays, options, soft_target, request.precision, reduced=reduced)
    no_kernel = low is None
    if low is None:
        own = value if value is not None else float(unreduced.to(torch.float64).sum())
        low = (own, str(unreduced.dtype).removeprefix("torch."))
    return PrecisionProbe(
        request.precision, exact[0], low[0], low[1], promoted=promoted, no_kernel=no_kernel
    )


def value_in(
    spec: LossSpec,
    arrays: dict[str, np.ndarray],
    options: dict[str, Any],
    soft_target: bool,
    precision: str,
    only: frozenset[str] | None = None,
    reduced: bool = True,
) -> tuple[float, str] | None:
    """The loss with float arguments cast to ``precision``.

    Args:
        spec: the loss.
        arrays: the converted arrays, by argument name.
        options: the resolved options.
        soft_target: cross-entropy targets are probabilities.
        precision: a torch float dtype name ("float16", "bfloat16", "float64").
        only: cast just these arguments and leave the others as losscli computes them (torch
            promotes, as it would for the user's tensors); None casts every float argument.
        reduced: with the user's reduction (the summed loss for 'none'); otherwise the sum
            of the unreduced losses.

    Returns:
        (value as a Python float, the dtype torch computed it in), or None when torch has no
        kernel for this loss with those dtypes on this device.
    """
    dtype = getattr(torch, precision)
    function = loss_function(spec, options, soft_target)
    tensors = []
    for argument in spec.arguments:
        tensor = to_tensor(arrays[argument.name])
        cast = tensor.is_floating_point() and (only is None or argument.name in only)
        tensors.append(tensor.to(dtype) if cast else tensor)
    reduction = str(options.get("reduction", "mean")) if reduced else "none"
    try:
        with torch.no_grad():
            loss = function(*tensors, reduction=reduction)
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
        return None
    computed_in = str(loss.dtype).removeprefix("torch.")
    return float(loss.to(torch.float64).sum().item()), computed_in


def per_sample_losses(
    spec: LossSpec,
    unreduced: torch.Tensor,
    arrays: dict[str, np.ndarray],
    options: dict[str, Any],
    reduction: str,
    soft_target: bool = False,
    in_place: bool = False,
) -> tuple[np.ndarray, float | None, np.ndarray | None]:
    """Reduce torch's ``reduction='none'`` output to one loss per sample, in float64.

    With ``in_place``, losses that are already one per sample and need no division (one
    element per sample, not cross-entropy's weighted mean) come back as torch computed them,
    without a float64 copy (a streamed chunk: the accumulator sums them in float64).

    Returns ``(per_sample, denominator, ignored)`` such that under the chosen reduction
    ``value == per_sample.sum() / denominator``:

    - ``sum``: per_sample[i] sums sample i's elements; denominator 1.
    - ``none``: as ``sum``; denominator None (there is no value).
    - ``mean``: per_sample[i] is the mean of sample i's elements; denominator N, so the value
      is the mean of per_sample. For cross-entropy/nll with class indices, the mean divides by
      the summed weight of the non-ignored targets: per_sample[i] is sample i's weighted sum
      divided by its element count m, and the denominator is that weight sum divided by m
      (with one element per sample: the sum of the weights). Ignored targets contribute 0.
    - kl-div ``batchmean``: per_sample[i] sums sample i; denominator N.
    - ctc ``mean``: per_sample[i] = loss_i / max(target_length_i, 1); denominator N.
    """
    losses = unreduced.detach()
    if losses.dim() == 0:
        losses = losses.reshape(1)
    batch = losses.shape[0]
    elements = losses[0].numel() if batch else 1
    weighted_mean = (
        spec.per_sample_rule is PerSampleRule.WEIGHTED and not soft_target and reduction == "mean"
    )
    divides = weighted_mean or (spec.per_sample_rule is PerSampleRule.CTC and reduction == "mean")
    if in_place and elements == 1 and not divides:
        share = {"none": None, "sum": 1.0}.get(reduction, float(batch))
        return _numpy(losses.reshape(batch)), share, None
    losses = losses.to(torch.float64)
    flat = losses.reshape(batch, -1)
    # one element per sample: the losses are the sums (a reduction over a dimension of 1 is
    # a slow strided pass in torch)
    sums = losses.reshape(batch) if elements == 1 else flat.sum(dim=1)
    ignored: np.ndarray | None = None
    denominator: float | None
    if reduction == "none":
        return sums.numpy(), None, None
    if reduction == "sum":
        return sums.numpy(), 1.0, None
    rule = spec.per_sample_rule
    if rule is PerSampleRule.WEIGHTED and not soft_target:
        target_name = spec.arguments[1].name
        targets = to_tensor(np.asarray(arrays[target_name], dtype=np.int64))
        ignore_index = int(options.get("ignore_index", -100))
        keep = targets != ignore_index
        weight = options.get("weight")
        if weight is not None:
            weights = to_tensor(np.asarray(weight, dtype=np.float64))
            safe = torch.where(keep, targets, torch.zeros_like(targets)).clamp(
                0, weights.numel() - 1
            )
            target_weights = torch.where(keep, weights[safe], torch.zeros((), dtype=torch.float64))
        else:
            target_weights = keep.to(torch.float64)
        total_weight = float(target_weights.sum())
        keep_flat = keep.reshape(batch, -1) if keep.dim() > 0 else keep.reshape(1, 1)
        ignored = (~keep_flat).all(dim=1).numpy()
        return (sums / elements).numpy(), total_weight / elements, ignored
    if rule is PerSampleRule.BATCHMEAN and reduction == "batchmean":
        return sums.numpy(), float(batch), None
    if rule is PerSampleRule.CTC:
        # the LENGTHS arguments are (input_lengths, target_lengths), in torch's order
        target_lengths = [a.name for a in spec.arguments if a.role is Role.LENGTHS][-1]
        lengths = to_tensor(np.asarray(arrays[target_lengths], dtype=np.int64)).reshape(-1)
        return (sums / lengths.clamp_min(1).to(torch.float64)).numpy(), float(batch), None
    if reduction == "batchmean":  # batchmean of a loss without the rule: sum / N
        return sums.numpy(), float(batch), None
    denominator = float(batch)
    return (sums / elements).numpy(), denominator, None
