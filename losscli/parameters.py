"""Parameters: the command-line options the commands share, and the loss options made from the catalogue.

Every loss option of ``compute``, ``debug`` and ``compare`` is generated from the
:class:`~losscli.losses.Option` records of the catalogue (the Hugging Face hub CLI's shared
``Annotated`` aliases, made from data): one flag per torch keyword, its type, its help with
each loss's torch default, so a new option is one catalogue entry. :func:`with_options` adds
them to a command, which receives the ones given as one ``given`` dict (torch keyword →
value, None when not given), together with the options every evaluating command shares
(output, numbers, gates, memory) gathered in one :class:`RunOptions`, so that no command
lists them again.
"""

from __future__ import annotations

import enum
import functools
import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer

from losscli import losses, render
from losscli.formats import stdin_formats
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
    bfloat16 = "bfloat16"


# the metavar of an on/off flag: none, so that -h shows ``--strict`` and not ``--strict <bool>``
# as if it took a value
FLAG = ""

DEFAULT_BUDGET = "auto"  # chunks.DEFAULT_BUDGET, repeated so that --help imports no numpy

Inputs = Annotated[
    list[str],
    typer.Argument(
        help="The tensors, in torch's order (predictions, then targets): files, file:key, "
        "'-', or '[1,2,3]'.",
        show_default=False,
        metavar="INPUT",
    ),
]

_OUT_PANEL = "Output"

# what each format gives, for --format's help
_FORMAT_HELP = {
    "table": "table (default; or set LOSSCLI_FORMAT)",
    "json": "json",
    "ndjson": "ndjson",
    "csv": "csv (per-sample rows)",
    "github": "github (workflow annotations)",
}
# the formats of compute, debug and compare: every renderer of the registry (losscli.render)
REPORT_FORMATS: tuple[OutputFormat, ...] = tuple(OutputFormat(name) for name in render.FORMATS)
# list and explain lay out the catalogue, not a report: no per-sample rows, no annotations
CATALOGUE_FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.ndjson)


def format_parameter(supported: tuple[OutputFormat, ...]) -> Any:
    """``--format``/``-f`` offering exactly the formats ``supported`` (its choices in ``-h``
    and in the error for any other): a str enum of them, whose values are OutputFormat's."""
    choices = enum.Enum(  # type: ignore[misc]  # a functional enum made from data
        "Formats", [(f.name, f.value) for f in supported], type=str
    )
    return Annotated[
        choices | None,
        typer.Option(
            "--format",
            "-f",
            help=", ".join(_FORMAT_HELP[f.value] for f in supported) + ".",
            rich_help_panel=_OUT_PANEL,
        ),
    ]


if TYPE_CHECKING:  # to mypy, each is the OutputFormat it holds (a value of one of them)
    Format: TypeAlias = OutputFormat | None
    CatalogueFormat: TypeAlias = OutputFormat | None
else:
    Format = format_parameter(REPORT_FORMATS)
    CatalogueFormat = format_parameter(CATALOGUE_FORMATS)
AllValues = Annotated[
    bool,
    typer.Option(
        "--all-values",
        metavar=FLAG,
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
    typer.Option(
        "--no-color", help="No colour (also NO_COLOR=1).", rich_help_panel=_OUT_PANEL, metavar=FLAG
    ),
]

_NUM_PANEL = "Numbers"
DType = Annotated[
    FloatDType,
    typer.Option(
        "--dtype",
        help="The float dtype torch computes in (float16, bfloat16: a mixed-precision run's value).",
        rich_help_panel=_NUM_PANEL,
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        metavar=FLAG,
        help="Convert nothing: report what torch itself would reject.",
        rich_help_panel=_NUM_PANEL,
    ),
]
StdinFormat = Annotated[
    str,
    typer.Option(
        "--stdin-format",
        help=f"Format of '-' (standard input): {', '.join(stdin_formats())}; input that "
        "starts with the .npy magic is read as npy whatever this says.",
        rich_help_panel=_NUM_PANEL,
    ),
]

MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Replace an input before any check, in PyTorch syntax: --map 'target = target - 1', "
        "--map 'input = input.log()' (repeatable; every map reads the inputs as loaded).",
        rich_help_panel=_NUM_PANEL,
        metavar="'NAME = EXPR'",
        show_default=False,
    ),
]


_GATE_PANEL = "CI gates (exit 1 when one trips)"


def _finite(value: float | None) -> float | None:
    """A gate's threshold: NaN or Infinity would turn the gate off (no value is above it)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} turns the gate off; give a finite number")
    return value


FailOnOption = Annotated[
    FailOn,
    typer.Option(
        "--fail-on", help="Lowest finding severity that fails.", rich_help_panel=_GATE_PANEL
    ),
]
MaxLoss = Annotated[
    float | None,
    typer.Option(
        "--max-loss",
        help="Fail when the value is above this.",
        rich_help_panel=_GATE_PANEL,
        callback=_finite,
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
        callback=_finite,
    ),
]

_SCALE_PANEL = "Large inputs"
MemoryBudget = Annotated[
    str,
    typer.Option(
        "--memory-budget",
        help="Above this (e.g. 300MB, 2GB) .npy and CSV inputs are read and judged in chunks; "
        "ctc, which does not decompose over samples, stops with a message instead. "
        "auto: a quarter of the memory available (MemAvailable, or the container's limit), "
        "at least 512MB.",
        rich_help_panel=_SCALE_PANEL,
    ),
]
Dask = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="ADDRESS|local",
        help="Compute the shards of glob INPUTs ('preds/part-*.npy') on a Dask cluster: a "
        "scheduler's address (tcp://host:8786), or local for one worker process per core. "
        "Needs pip install 'losscli\\[dask]'.",
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

LOSS_PANEL = "Loss options (torch's defaults; each for the losses it names)"

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
    """The help of one loss option: what it does, the losses that take it, torch's defaults.

    E.g. ``margin-ranking, hinge-embedding, ...: the margin; torch default 0 for
    margin-ranking, cosine-embedding; 1 for hinge-embedding, ...``. Choices shared by every
    loss are listed once, extra ones with their loss (``batchmean: kl-div``).
    """
    takers = [(spec.name, o) for spec in losses.LOSSES if (o := spec.option(name)) is not None]
    texts = list(dict.fromkeys(option.help for _, option in takers))
    if len(texts) == 1:
        what = texts[0]
    else:
        what = "; ".join(
            f"{', '.join(loss for loss, o in takers if o.help == text)}: {text}" for text in texts
        )
    shared = set.intersection(*(set(o.choices) for _, o in takers))
    if shared:
        ordered = [c for c in takers[0][1].choices if c in shared]
        extras = [
            f"{choice}: {loss}"
            for loss, o in takers
            for choice in o.choices
            if choice not in shared
        ]
        what += f" ({' | '.join(ordered)}{'; ' + ', '.join(extras) if extras else ''})"
    if len(takers) < len(losses.LOSSES) and len(texts) == 1:
        what = f"{', '.join(loss for loss, _ in takers)}: {what}"
    defaults: dict[str, list[str]] = {}
    for loss, option in takers:
        defaults.setdefault(_default_text(option), []).append(loss)
    if len(defaults) == 1:
        default = f"torch default {next(iter(defaults))}"
    else:
        default = "torch default " + "; ".join(
            f"{value} for {', '.join(names)}" for value, names in defaults.items()
        )
    return f"{what}; {default}."


def _python_type(name: str) -> type:
    """One type for a flag several losses share: float when one takes an int and another a float."""
    kinds = {o.type for spec in losses.LOSSES if (o := spec.option(name)) is not None}
    if kinds == {OptionType.INT}:
        return int
    if OptionType.FLOAT in kinds or OptionType.INT in kinds:
        return float
    return _PYTHON_TYPES[kinds.pop()]


# what each kind of loss option takes, short: the loss options panel lays twenty options out
# beside their help, which must keep room for loss names at 80 columns
_METAVARS: dict[OptionType, str] = {
    OptionType.FLOAT: "X",
    OptionType.INT: "N",
    OptionType.BOOL: FLAG,
    OptionType.CHOICE: "NAME",
    OptionType.TENSOR: "ARRAY",
}


def _parameter(name: str, option: Option) -> inspect.Parameter:
    python_type = _python_type(name)
    flag = option.flag
    declarations = [f"{flag}/--no-{flag.removeprefix('--')}"] if python_type is bool else [flag]
    info = typer.Option(
        *declarations,
        help=option_help(name),
        rich_help_panel=LOSS_PANEL,
        show_default=False,
        metavar=_METAVARS[option.type],
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


@dataclass(frozen=True)
class RunOptions:
    """The options every evaluating command shares (output, numbers, gates, memory).

    Attributes:
        output_format: --format, or None for LOSSCLI_FORMAT / the table.
        all_values: --all-values.
        top: --top (compare shows no worst samples).
        no_color: --no-color.
        dtype: --dtype.
        strict: --strict.
        stdin_format: --stdin-format.
        fail_on: --fail-on.
        max_loss: --max-loss.
        baseline: --baseline.
        max_increase: --max-increase.
        memory_budget: --memory-budget.
        maps: --map, each as typed.
        dask: --dask (a Dask scheduler's address, or ``local``), or None.
    """

    output_format: OutputFormat | None = None
    all_values: bool = False
    top: int = 10
    no_color: bool = False
    dtype: FloatDType = FloatDType.float32
    strict: bool = False
    stdin_format: str = "csv"
    fail_on: FailOn = FailOn.error
    max_loss: float | None = None
    baseline: str | None = None
    max_increase: float | None = None
    memory_budget: str = DEFAULT_BUDGET
    maps: tuple[str, ...] = ()
    dask: str | None = None


# RunOptions field → its command-line parameter type (the Annotated aliases above)
_RUN_PARAMETERS: dict[str, Any] = {
    "output_format": Format,
    "all_values": AllValues,
    "top": Top,
    "no_color": NoColor,
    "dtype": DType,
    "strict": Strict,
    "stdin_format": StdinFormat,
    "fail_on": FailOnOption,
    "max_loss": MaxLoss,
    "baseline": Baseline,
    "max_increase": MaxIncrease,
    "memory_budget": MemoryBudget,
    "maps": MapOption,
    "dask": Dask,
}


def run_parameters(top: int | None) -> list[inspect.Parameter]:
    """The shared options as Typer parameters; ``top`` is --top's default (None: no --top)."""
    defaults = RunOptions(top=top if top is not None else 10)
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None if name == "maps" else getattr(defaults, name),
            annotation=annotation,
        )
        for name, annotation in _RUN_PARAMETERS.items()
        if not (name == "top" and top is None)
    ]


def with_options(top: int | None = 10) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the shared options and every loss option.

    The command declares ``given: dict[str, Any]`` (torch keyword → value as typed, None when
    not given) and ``run: RunOptions``; the command line sees neither, but the options they
    gather. Its other parameters are kept as they are, first.

    Args:
        top: the default of --top; None when the command shows no worst samples.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in inspect.signature(command).parameters.values()
            if parameter.name not in ("given", "run")
        ]
        shared = run_parameters(top)
        generated = loss_parameters()
        run_names = [parameter.name for parameter in shared]
        loss_names = [parameter.name for parameter in generated]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, None) for name in loss_names}
            shared_values = {name: kwargs.pop(name) for name in run_names}
            shared_values["maps"] = tuple(shared_values.get("maps") or ())
            run = RunOptions(**shared_values)
            return command(given=given, run=run, **kwargs)

        parameters = [
            *(p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in own),
            *shared,
            *generated,
        ]
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def bad_value_line(flags: list[str], annotation: Any, bounds: tuple[Any, Any], typed: Any) -> str:
    """losscli's one line for an option value the parser refused, in place of the
    validation library's wording ("Input should be greater than or equal to 0").

    It names the option, what it accepts and what was typed: ``--format: 'jsn' is not one
    of table, json, ndjson, csv, github; did you mean 'json'?``, ``--top must be a whole
    number >= 0, got -1``.

    Args:
        flags: the option's names (``['--format', '-f']``); the first long one is named.
        annotation: the option's Python type: an enum of choices, int or float.
        bounds: the smallest and largest value accepted (None: no bound).
        typed: the value as typed, or None when not known.
    """
    import difflib

    flag = next((f for f in flags if f.startswith("--")), flags[0] if flags else "option")
    got = "" if typed is None else str(typed)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = [str(member.value) for member in annotation]
        close = difflib.get_close_matches(got.lower(), choices, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{flag}: '{got}' is not one of {', '.join(choices)}{hint}"
    what = {int: "a whole number", float: "a number"}.get(annotation, "a value")
    low, high = bounds
    if low is not None and high is not None:
        what += f" between {low:g} and {high:g}"
    elif low is not None:
        what += f" >= {low:g}"
    elif high is not None:
        what += f" <= {high:g}"
    return f"{flag} must be {what}, got {got if _is_number(got) else repr(got)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
