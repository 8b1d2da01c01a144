"""Parameters: the command-line options the commands share, and the loss options made from the catalogue.

Every loss option of ``compute``, ``debug`` and ``compare`` is generated from the
:class:`~losscli.losses.Option` records of the catalogue (the Hugging Face hub CLI's shared
``Annotated`` aliases, made from data): one flag per torch keyword, its type, its help with
each loss's torch default, so a new option is one catalogue entry. :func:`with_loss_options`
adds them to a command and hands it the ones given as one ``given`` dict (torch keyword →
value, None when not given).
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from losscli import losses
from losscli.losses import Option, OptionType


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"
    github = "github"


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


class FloatDType(str, enum.Enum):
    float32 = "float32"
    float64 = "float64"
    float16 = "float16"


DEFAULT_BUDGET = "512MB"  # chunks.DEFAULT_BUDGET, repeated so that --help imports no numpy

_OUT_PANEL = "Output"
Format = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="table (default; or set LOSSCLI_FORMAT), json, ndjson, csv (per-sample rows), "
        "github (workflow annotations).",
        rich_help_panel=_OUT_PANEL,
    ),
]
AllValues = Annotated[
    bool,
    typer.Option(
        "--all-values",
        help="Put every per-sample and gradient value into JSON.",
        rich_help_panel=_OUT_PANEL,
    ),
]
Top = Annotated[
    int,
    typer.Option(
        "--top",
        min=0,
        help="How many of the worst samples the table shows.",
        rich_help_panel=_OUT_PANEL,
    ),
]
NoColor = Annotated[
    bool,
    typer.Option("--no-color", help="No colour (also NO_COLOR=1).", rich_help_panel=_OUT_PANEL),
]

_NUM_PANEL = "Numbers"
DType = Annotated[
    FloatDType,
    typer.Option("--dtype", help="The float dtype torch computes in.", rich_help_panel=_NUM_PANEL),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Convert nothing: report what torch itself would reject.",
        rich_help_panel=_NUM_PANEL,
    ),
]
StdinFormat = Annotated[
    str,
    typer.Option(
        "--stdin-format",
        help="Format of '-' (standard input): csv or npy.",
        rich_help_panel=_NUM_PANEL,
    ),
]

_GATE_PANEL = "CI gates (exit 1 when one trips)"
FailOnOption = Annotated[
    FailOn,
    typer.Option(
        "--fail-on", help="Lowest finding severity that fails.", rich_help_panel=_GATE_PANEL
    ),
]
MaxLoss = Annotated[
    float | None,
    typer.Option(
        "--max-loss", help="Fail when the value is above this.", rich_help_panel=_GATE_PANEL
    ),
]
Baseline = Annotated[
    str | None,
    typer.Option(
        "--baseline",
        help="A saved JSON report to compare the value with.",
        rich_help_panel=_GATE_PANEL,
    ),
]
MaxIncrease = Annotated[
    float | None,
    typer.Option(
        "--max-increase",
        help="Allowed relative increase over --baseline (0.05 = 5%).",
        rich_help_panel=_GATE_PANEL,
    ),
]

_SCALE_PANEL = "Large inputs"
MemoryBudget = Annotated[
    str,
    typer.Option(
        "--memory-budget",
        help="Above this (e.g. 300MB, 2GB) .npy and CSV inputs are read and judged in chunks; "
        "ctc, which does not decompose over samples, stops with a message instead.",
        rich_help_panel=_SCALE_PANEL,
    ),
]
PerSampleOut = Annotated[
    str | None,
    typer.Option(
        "--per-sample-out",
        help="Write every per-sample loss to FILE.npy or FILE.csv (streamed for large inputs).",
        rich_help_panel=_SCALE_PANEL,
        metavar="FILE",
    ),
]

LOSS_PANEL = "Loss options (torch's defaults; each applies only to the losses that take it)"

_PYTHON_TYPES: dict[OptionType, type] = {
    OptionType.FLOAT: float,
    OptionType.INT: int,
    OptionType.BOOL: bool,
    OptionType.CHOICE: str,
    OptionType.TENSOR: str,
}


def _default_text(option: Option) -> str:
    if option.type is OptionType.TENSOR:
        return "none"
    if isinstance(option.default, bool):
        return "on" if option.default else "off"
    if isinstance(option.default, float):
        return f"{option.default:g}"
    return str(option.default)


def option_help(name: str) -> str:
    """The help of one loss option: what it does and torch's default, loss by loss.

    Losses that share the option's meaning and default are listed together, e.g.
    ``--margin: the margin: margin-ranking, cosine-embedding 0; hinge-embedding, ... 1``.
    """
    takers = [(spec.name, spec.option(name)) for spec in losses.LOSSES if spec.option(name)]
    groups: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for loss, option in takers:
        assert option is not None
        key = (option.help, _default_text(option), option.choices)
        groups.setdefault(key, []).append(loss)
    parts = []
    everyone = len(takers) == len(losses.LOSSES)
    for (text, default, choices), names in groups.items():
        who = "every loss" if everyone and len(groups) == 1 else ", ".join(names)
        allowed = f" ({' | '.join(choices)})" if choices else ""
        parts.append(f"{who}: {text}{allowed}; torch default {default}")
    return ". ".join(parts) + "."


def _python_type(name: str) -> type:
    """One type for a flag several losses share: float when one takes an int and another a float."""
    kinds = {o.type for spec in losses.LOSSES if (o := spec.option(name)) is not None}
    if kinds == {OptionType.INT}:
        return int
    if OptionType.FLOAT in kinds or OptionType.INT in kinds:
        return float
    return _PYTHON_TYPES[kinds.pop()]


def _parameter(name: str, option: Option) -> inspect.Parameter:
    python_type = _python_type(name)
    flag = option.flag
    declarations = [f"{flag}/--no-{flag.removeprefix('--')}"] if python_type is bool else [flag]
    info = typer.Option(
        *declarations,
        help=option_help(name),
        rich_help_panel=LOSS_PANEL,
        show_default=False,
        metavar=None if python_type is bool else name.upper().replace("_", "-"),
    )
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[python_type | None, info],
    )


def loss_parameters() -> list[inspect.Parameter]:
    """One Typer parameter per torch keyword of the catalogue, in the catalogue's order."""
    return [_parameter(name, option) for name, option in losses.all_options().items()]


def with_loss_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` every loss option; it receives them as ``given`` (torch keyword → value).

    ``command`` declares a ``given: dict[str, Any]`` parameter, which the command line never
    sees; its other parameters are kept as they are.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
        for parameter in inspect.signature(command).parameters.values()
        if parameter.name != "given"
    ]
    generated = loss_parameters()
    names = [parameter.name for parameter in generated]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name in names}
        return command(given=given, **kwargs)

    positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keywords = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
    parameters = [
        *(p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in positional),
        *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in [*generated, *keywords]),
    ]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper
