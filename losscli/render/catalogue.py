"""Catalogue renderer: the ``list`` views of the loss catalogue (Rich table and JSON).

Imports neither torch nor numpy: ``losscli list`` must stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from losscli.losses import Argument, LossSpec, Option, Role
from losscli.render import json_text

SCHEMA_VERSION = 1

# The values each non-prediction role accepts, as losscli's checks understand them.
DOMAINS: dict[Role, str] = {
    Role.TARGET: "real values",
    Role.BINARY_TARGET: "values in [0, 1]",
    Role.CLASS_TARGET: "class indices in 0..C-1 (or ignore_index), or class probabilities",
    Role.CLASS_INDEX: "class indices in 0..C-1",
    Role.MULTILABEL_INDEX: "class indices in 0..C-1, padded with -1",
    Role.SIGN_TARGET: "-1 or 1",
    Role.COUNT_TARGET: "counts >= 0",
    Role.DISTRIBUTION_TARGET: "probabilities (log-probabilities with --log-target)",
    Role.VARIANCE: "variances > 0",
    Role.LOG_PROBS: "log-softmax output",
    Role.CTC_TARGETS: "labels in 0..C-1, never the blank",
    Role.LENGTHS: "integers >= 0",
}

_DTYPES = {"float": "float", "index": "int64", "class": "int64 or float"}


def _argument(argument: Argument) -> dict[str, Any]:
    return {
        "name": argument.name,
        "role": argument.role.value,
        "shape": argument.shape,
        "dtype": _DTYPES[argument.dtype.value],
        "gradient": argument.differentiable,
    }


def _option(option: Option) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": option.name,
        "flag": option.flag,
        "type": option.type.value,
        "default": option.default,
        "help": option.help,
    }
    if option.choices:
        record["choices"] = list(option.choices)
    return record


def target_domain(spec: LossSpec) -> dict[str, str]:
    """Argument name → the values it accepts, for every argument that is not a prediction."""
    return {a.name: DOMAINS[a.role] for a in spec.arguments if a.role in DOMAINS}


def entry(spec: LossSpec) -> dict[str, Any]:
    """One loss as a JSON-ready dict."""
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "torch": spec.torch_class,
        "summary": spec.summary,
        "inputs": [_argument(a) for a in spec.arguments],
        "target_domain": target_domain(spec),
        "options": [_option(o) for o in spec.options],
        "streamable": spec.streamable,
    }


def render_json(specs: Sequence[LossSpec]) -> str:
    """The catalogue as one JSON object: ``{"schema_version": 1, "losses": [...]}``."""
    return json_text({"schema_version": SCHEMA_VERSION, "losses": [entry(s) for s in specs]})


def _default(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def render_table(specs: Sequence[LossSpec]) -> Table:
    """The catalogue as a Rich table: one row per loss."""
    table = Table(
        title=f"{len(specs)} losses (losscli explain LOSS for one in full)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_lines=True,
    )
    table.add_column("loss, aliases, torch", overflow="fold", max_width=30)
    table.add_column("inputs: dtype, shape (∂: gets a gradient)", min_width=24, ratio=3)
    table.add_column("target domain", min_width=12, ratio=2)
    table.add_column("options (default)", no_wrap=True, min_width=20, overflow="ellipsis")
    for spec in specs:
        name = Text(spec.name, style="bold")
        for alias in spec.aliases:
            name.append("\n" + alias)
        name.append("\n" + spec.torch_class.removeprefix("torch.nn."), style="dim")
        inputs = Text()
        for index, argument in enumerate(spec.arguments):
            if index:
                inputs.append("\n")
            inputs.append(argument.name, style="bold")
            inputs.append(f" {_DTYPES[argument.dtype.value]}")
            if argument.differentiable:
                inputs.append(" ∂", style="cyan")
            inputs.append(f" {argument.shape}")
        domain = "\n".join(f"{name}: {text}" for name, text in target_domain(spec).items())
        options = "\n".join(f"{o.flag} {_default(o.default)}" for o in spec.options)
        table.add_row(name, inputs, domain, options)
    return table
