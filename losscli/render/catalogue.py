"""Catalogue renderer: the ``list`` views of the loss catalogue (Rich table and JSON).

Imports neither torch nor numpy: ``losscli list`` must stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def _argument_line(argument: Argument, domain: str | None) -> Text:
    """``float ∂ [batch, *]; real values``: dtype, gradient mark, shape, accepted values."""
    line = Text(_DTYPES[argument.dtype.value])
    if argument.differentiable:
        line.append(" ∂", style="cyan")
    line.append(f" {argument.shape}")
    if domain is not None:
        line.append(f"; {domain}", style="dim")
    return line


def render_table(specs: Sequence[LossSpec]) -> Table:
    """The catalogue as a Rich table: per loss, a heading row (name, aliases, torch class),
    a row per input, and a row per option with torch's default.

    Two columns, the first as wide as the longest name and never wrapped, so at 80 columns
    the second keeps room and wraps only between words: no name is ever cut.
    """
    table = Table(
        title=f"{len(specs)} losses (losscli explain LOSS for one in full; ∂: gets a gradient)",
        box=None,
        title_justify="left",
        show_header=False,
        pad_edge=False,
    )
    table.add_column("loss, input, option", no_wrap=True)
    table.add_column("aliases, torch; dtype, shape, values; default")
    for index, spec in enumerate(specs):
        if index:
            table.add_row()
        names = Text(", ".join(spec.aliases))
        names.append(("; " if spec.aliases else "") + spec.torch_class, style="dim")
        table.add_row(Text(spec.name, style="bold"), names)
        domains = target_domain(spec)
        for argument in spec.arguments:
            table.add_row(
                f"  {argument.name}", _argument_line(argument, domains.get(argument.name))
            )
        for option in spec.options:
            table.add_row(f"  {option.flag}", _default(option.default))
    return table
