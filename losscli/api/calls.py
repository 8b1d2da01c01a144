"""Calls: which catalogue loss a torch loss module or function is, and what one call passes.

``nn.CrossEntropyLoss(label_smoothing=0.1)`` is cross-entropy with its options read from the
module's attributes (torch keeps each constructor option under its keyword: ``weight``,
``ignore_index``, ``pos_weight``, ...); ``F.cross_entropy`` is cross-entropy with its options
taken from the call, bound to the function's own signature, so positional options
(``F.huber_loss(x, y, 'sum', 0.5)``) read as torch reads them; a ``functools.partial`` of
one is that function with the partial's arguments first. The loss is found by torch's names
(:func:`losscli.losses.torch_names`): a subclass of a torch loss is that loss, unless it
overrides ``forward`` (its arguments may then mean anything: refused).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from losscli import losses
from losscli.losses import LossSpec

# torch's deprecated reduction switches, folded into ``reduction`` as torch folds them
_LEGACY = ("size_average", "reduce")
# where the loss functions losscli knows live: F.cross_entropy, torchvision's focal loss
_FUNCTION_HOMES = ("torch.nn.functional", "torchvision.ops")


class CannotCheck(TypeError):
    """The loss holds or is given something losscli cannot reproduce (a distance function of
    the user's own), so its calls cannot be checked."""


@dataclass(frozen=True)
class TorchLoss:
    """A torch loss module or function, as a catalogue loss.

    Attributes:
        spec: the catalogue loss it computes.
        held: the options the module holds (torch keyword → value; empty for a function).
        signature: how a call binds: the module's ``forward`` or the function itself.
        partial_args: the arguments a ``functools.partial`` gives before each call's own.
        partial_keywords: the keywords a ``functools.partial`` gives, under each call's own.
    """

    spec: LossSpec
    held: dict[str, Any]
    signature: inspect.Signature
    partial_args: tuple[Any, ...] = ()
    partial_keywords: dict[str, Any] = field(default_factory=dict)

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """One call's tensors, in the loss's argument order, and its options: the module's,
        then the call's keywords over them.

        Raises:
            TypeError: the call does not fit the signature (torch would raise the same).
            CannotCheck: the call passes a distance function of the user's own.
        """
        bound = self.signature.bind(
            *self.partial_args, *args, **{**self.partial_keywords, **kwargs}
        )
        values = list(bound.arguments.items())
        count = len(self.spec.arguments)
        tensors = [value for _, value in values[:count]]
        given = dict(self.held)
        extra = {name: value for name, value in values[count:]}
        for name, value in extra.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                given.update(value)
            elif name not in _LEGACY:
                given[name] = value
        function = given.get("distance_function")
        if function is not None and not isinstance(function, str):
            given["distance_function"] = _distance_name(function)
        legacy = {name: extra.get(name) for name in _LEGACY}
        if any(value is not None for value in legacy.values()):
            from torch.nn import _reduction

            given["reduction"] = _reduction.legacy_get_string(
                legacy["size_average"], legacy["reduce"], emit_warning=False
            )
        return tensors, {name: value for name, value in given.items() if value is not None}


def loss_spec(loss: object) -> LossSpec:
    """The catalogue loss that the torch module or function ``loss`` computes.

    Raises:
        TypeError: ``loss`` is no torch loss losscli knows, or a subclass of one whose own
            ``forward`` gives its arguments a meaning losscli cannot know.
    """
    if isinstance(loss, functools.partial):
        return loss_spec(loss.func)
    module_class = _torch_class(loss)
    if module_class is not None and getattr(type(loss), "forward", None) is not getattr(
        module_class, "forward", None
    ):
        raise TypeError(
            f"{_name(loss)} overrides {module_class.__name__}.forward, so what its arguments "
            "mean is its own; guard the torch loss its forward calls"
        )
    spec = losses.get(module_class.__name__) if module_class else _function_spec(loss)
    if spec is None:
        known = "a torch.nn loss module or a torch.nn.functional loss function"
        raise TypeError(f"{_name(loss)} is not a torch loss losscli knows; pass {known}")
    return spec


def torch_loss(loss: object) -> TorchLoss:
    """``loss`` as a catalogue loss, with the options a module holds now.

    Raises:
        TypeError: ``loss`` is no torch loss losscli knows.
        CannotCheck: it holds an option losscli cannot reproduce (a distance function of
            the user's own).
    """
    spec = loss_spec(loss)
    if isinstance(loss, functools.partial):
        inner = torch_loss(loss.func)
        return dataclasses.replace(
            inner, partial_args=loss.args, partial_keywords=dict(loss.keywords)
        )
    if _torch_class(loss) is None:  # a function: its options come with each call
        return TorchLoss(spec, {}, inspect.signature(loss))  # type: ignore[arg-type]
    held = {o.name: _held(loss, o.name) for o in spec.options if hasattr(loss, o.name)}
    return TorchLoss(spec, held, inspect.signature(loss.forward))  # type: ignore[attr-defined]


def _torch_class(loss: object) -> type | None:
    """The torch loss class ``loss`` is an instance of (its own class or a base)."""
    for cls in type(loss).__mro__:
        if cls.__module__.startswith("torch.nn") and losses.get(cls.__name__) is not None:
            spec = losses.get(cls.__name__)
            if spec is not None and spec.torch_class == f"torch.nn.{cls.__name__}":
                return cls
    return None


def _function_spec(loss: object) -> LossSpec | None:
    if not callable(loss):
        return None
    name = getattr(loss, "__name__", "")
    module = getattr(loss, "__module__", "") or ""
    if not name or not module.startswith(_FUNCTION_HOMES):
        return None  # a function of the user's own that happens to be called mse_loss
    return losses.get(name)


def _held(module: object, name: str) -> Any:
    value = getattr(module, name)
    if name == "distance_function":  # TripletMarginWithDistanceLoss
        return _distance_name(value)
    return value


def _distance_name(function: Callable[..., Any] | None) -> str:
    """The catalogue's name of a TripletMarginWithDistanceLoss distance function.

    Raises:
        CannotCheck: a distance function of the user's own, which losscli cannot reproduce.
    """
    from torch import nn

    if function is None or isinstance(function, nn.PairwiseDistance):
        return "pairwise"
    raise CannotCheck(
        f"distance_function={_name(function)}: losscli computes the pairwise distance only "
        "(torch's default); a distance of your own cannot be checked"
    )


def _name(value: object) -> str:
    return getattr(value, "__qualname__", None) or type(value).__qualname__
