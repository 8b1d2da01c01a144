"""The command line: parse options, call the core, pick a renderer, exit. No numerics here.

Torch is imported only by the commands that compute, and then in a background thread
while the inputs load, so ``--help``, ``--version``, ``list`` and ``explain`` stay fast.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from losscli import __version__, losses
from losscli.errors import LossCliError, UsageError
from losscli.report import Gates, Report, exit_code, tripped_gates

app = typer.Typer(
    name="losscli",
    help="A loss calculator and debugger for PyTorch: torch's exact value, per-sample losses, "
    "gradients, and what is wrong with your inputs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


def _fatal(message: str) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.write(f"losscli: error: {message}\n")
    raise SystemExit(2)


def one_error_path(command: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command so a LossCliError (or a bug) ends as one line on stderr and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except LossCliError as error:
            _fatal(error.line())
        except (typer.Exit, typer.Abort, SystemExit, BrokenPipeError, KeyboardInterrupt):
            raise
        except Exception as error:
            if os.environ.get("LOSSCLI_DEBUG"):
                raise
            _fatal(
                f"internal error: {type(error).__name__}: {error} (rerun with LOSSCLI_DEBUG=1 for the traceback)"
            )

    return wrapper


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: parse errors, too, end as one line and exit 2."""
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except typer.Abort:
        _fatal("aborted")
    except (BrokenPipeError, KeyboardInterrupt):
        raise SystemExit(2) from None
    except Exception as error:
        if hasattr(error, "format_message"):  # click's (or Typer's vendored click's) usage errors
            _fatal(_click_line(error))
        raise


def _click_line(error: Any) -> str:
    message = " ".join(str(error.format_message()).split())
    command = getattr(getattr(error, "ctx", None), "command_path", "losscli")
    return f"{message} (see '{command} --help')"


def _start_torch_import() -> None:
    """Import torch in the background while inputs load and checks run."""

    def _import() -> None:
        # the foreground import reports any real error
        with contextlib.suppress(Exception):
            import torch  # noqa: F401  (warm the import; compute.py uses it)

    if "torch" not in sys.modules:
        threading.Thread(target=_import, name="import-torch", daemon=True).start()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"losscli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """losscli: torch's exact loss, per-sample losses and gradients, and what is wrong with your inputs."""


# Loss options shared by compute, debug and compare: torch keyword → Typer parameter.
_LOSS_PANEL = "Loss options (torch's defaults; each applies only to the losses that take it)"
Reduction = Annotated[
    str | None,
    typer.Option(
        "--reduction",
        help="mean | sum | none (kl-div: also batchmean).",
        rich_help_panel=_LOSS_PANEL,
    ),
]
Weight = Annotated[
    str | None,
    typer.Option(
        "--weight",
        help="Per-class weight: inline array '[1,2,3]' or a file.",
        rich_help_panel=_LOSS_PANEL,
    ),
]
PosWeight = Annotated[
    str | None,
    typer.Option(
        "--pos-weight",
        help="bce-logits: weight of positives per class (array or file).",
        rich_help_panel=_LOSS_PANEL,
    ),
]
IgnoreIndex = Annotated[
    int | None,
    typer.Option(
        "--ignore-index", help="Target value to ignore (default -100).", rich_help_panel=_LOSS_PANEL
    ),
]
LabelSmoothing = Annotated[
    float | None,
    typer.Option(
        "--label-smoothing", help="cross-entropy label smoothing.", rich_help_panel=_LOSS_PANEL
    ),
]
Delta = Annotated[
    float | None,
    typer.Option("--delta", help="huber: delta (default 1.0).", rich_help_panel=_LOSS_PANEL),
]
Beta = Annotated[
    float | None,
    typer.Option("--beta", help="smooth-l1: beta (default 1.0).", rich_help_panel=_LOSS_PANEL),
]
Margin = Annotated[
    float | None,
    typer.Option("--margin", help="Margin of the margin losses.", rich_help_panel=_LOSS_PANEL),
]
PNorm = Annotated[
    float | None,
    typer.Option(
        "-p", help="multi-margin: 1 or 2; triplet-margin: norm degree.", rich_help_panel=_LOSS_PANEL
    ),
]
Eps = Annotated[
    float | None,
    typer.Option(
        "--eps", help="poisson-nll, gaussian-nll, triplet-margin: eps.", rich_help_panel=_LOSS_PANEL
    ),
]
Swap = Annotated[
    bool | None,
    typer.Option(
        "--swap/--no-swap",
        help="triplet losses: distance swap.",
        rich_help_panel=_LOSS_PANEL,
        show_default=False,
    ),
]
LogInput = Annotated[
    bool | None,
    typer.Option(
        "--log-input/--no-log-input",
        help="poisson-nll: input is log(rate) (default on).",
        rich_help_panel=_LOSS_PANEL,
        show_default=False,
    ),
]
Full = Annotated[
    bool | None,
    typer.Option(
        "--full/--no-full",
        help="poisson-nll, gaussian-nll: add the constant terms.",
        rich_help_panel=_LOSS_PANEL,
        show_default=False,
    ),
]
LogTarget = Annotated[
    bool | None,
    typer.Option(
        "--log-target/--no-log-target",
        help="kl-div: target is log-probabilities.",
        rich_help_panel=_LOSS_PANEL,
        show_default=False,
    ),
]
Blank = Annotated[
    int | None,
    typer.Option("--blank", help="ctc: the blank label (default 0).", rich_help_panel=_LOSS_PANEL),
]
ZeroInfinity = Annotated[
    bool | None,
    typer.Option(
        "--zero-infinity/--no-zero-infinity",
        help="ctc: replace infinite losses by 0.",
        rich_help_panel=_LOSS_PANEL,
        show_default=False,
    ),
]
Alpha = Annotated[
    float | None,
    typer.Option(
        "--alpha", help="focal: positive-class weight (default 0.25).", rich_help_panel=_LOSS_PANEL
    ),
]
Gamma = Annotated[
    float | None,
    typer.Option(
        "--gamma", help="focal: focusing exponent (default 2).", rich_help_panel=_LOSS_PANEL
    ),
]
Smooth = Annotated[
    float | None,
    typer.Option(
        "--smooth", help="dice: smoothing term (default 1e-6).", rich_help_panel=_LOSS_PANEL
    ),
]
DistanceFunction = Annotated[
    str | None,
    typer.Option(
        "--distance-function",
        help="triplet-margin-distance: pairwise | cosine.",
        rich_help_panel=_LOSS_PANEL,
    ),
]

_OUT_PANEL = "Output"
Format = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="table (default on a terminal), json, ndjson, csv, github.",
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
        "--top", help="How many of the worst samples the table shows.", rich_help_panel=_OUT_PANEL
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
FailOnOpt = Annotated[
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


def _stdout_console(no_color: bool) -> Any:
    from rich.console import Console

    return Console(no_color=no_color or bool(os.environ.get("NO_COLOR")) or None, soft_wrap=False)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None)


def _resolve_loss(name: str) -> losses.LossSpec:
    spec = losses.get(name)
    if spec is None:
        guess = losses.suggest(name)
        hint = f"did you mean '{guess}'? " if guess else ""
        raise UsageError(f"unknown loss '{name}'; {hint}run 'losscli list' for the catalogue")
    return spec


def _default_format(output_format: OutputFormat | None) -> OutputFormat:
    if output_format is not None:
        return output_format
    return OutputFormat.table


def _load_baseline(path: str | None) -> float | None:
    if path is None:
        return None
    import json
    from pathlib import Path

    try:
        saved = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such file (--baseline wants a report saved with --format json)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: not a JSON report ({error})") from None
    value = saved.get("value") if isinstance(saved, dict) else None
    if not isinstance(value, (int, float)):
        raise UsageError(f"{path}: the saved report has no numeric 'value'")
    return float(value)


@app.command(
    epilog="Examples:\n\n"
    "  losscli compute mse pred.npy true.npy\n\n"
    "  losscli compute l1 '[1,2.5,4,0.5]' '[2,2.5,2,1]'\n\n"
    "  losscli compute cross-entropy logits.csv labels.csv --label-smoothing 0.1\n\n"
    "  cat preds.csv | losscli compute bce-logits - labels.npy --format json | jq .value",
)
@one_error_path
def compute(
    loss: Annotated[
        str, typer.Argument(help="The loss: mse, cross-entropy, bce-logits, ... (losscli list).")
    ],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="The tensors in torch's order: files, file:key, '-', or '[1,2,3]'.",
            show_default=False,
        ),
    ],
    reduction: Reduction = None,
    weight: Weight = None,
    pos_weight: PosWeight = None,
    ignore_index: IgnoreIndex = None,
    label_smoothing: LabelSmoothing = None,
    delta: Delta = None,
    beta: Beta = None,
    margin: Margin = None,
    p: PNorm = None,
    eps: Eps = None,
    swap: Swap = None,
    log_input: LogInput = None,
    full: Full = None,
    log_target: LogTarget = None,
    blank: Blank = None,
    zero_infinity: ZeroInfinity = None,
    alpha: Alpha = None,
    gamma: Gamma = None,
    smooth: Smooth = None,
    distance_function: DistanceFunction = None,
    output_format: Format = None,
    all_values: AllValues = False,
    top: Top = 10,
    no_color: NoColor = False,
    dtype: DType = FloatDType.float32,
    strict: Strict = False,
    stdin_format: StdinFormat = "csv",
    fail_on: FailOnOpt = FailOn.error,
    max_loss: MaxLoss = None,
    baseline: Baseline = None,
    max_increase: MaxIncrease = None,
) -> None:
    """Compute a loss exactly as torch.nn.functional does: value, per-sample losses, gradient, findings."""
    _start_torch_import()
    from losscli import options as loss_options
    from losscli import pipeline

    spec = _resolve_loss(loss)
    given = {
        "reduction": reduction,
        "weight": weight,
        "pos_weight": pos_weight,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "delta": delta,
        "beta": beta,
        "margin": margin,
        "p": p,
        "eps": eps,
        "swap": swap,
        "log_input": log_input,
        "full": full,
        "log_target": log_target,
        "blank": blank,
        "zero_infinity": zero_infinity,
        "alpha": alpha,
        "gamma": gamma,
        "smooth": smooth,
        "distance_function": distance_function,
    }
    resolved = loss_options.resolve(spec, given)
    gates = Gates(
        fail_on=fail_on.value,
        max_loss=max_loss,
        baseline=_load_baseline(baseline),
        max_increase=max_increase,
    )
    loaded = pipeline.load_inputs(spec, inputs, stdin_format)
    report = pipeline.evaluate(spec, loaded, resolved, dtype.value, strict)
    _emit(report, _default_format(output_format), all_values=all_values, top=top, no_color=no_color)
    _finish(report, gates)


def _emit(
    report: Report, output_format: OutputFormat, *, all_values: bool, top: int, no_color: bool
) -> None:
    if output_format is OutputFormat.json:
        from losscli.render import json as render_json

        sys.stdout.write(render_json.render(report, all_values) + "\n")
        return
    if output_format is OutputFormat.table:
        from losscli.render import table

        _stdout_console(no_color).print(table.render(report, top))
        return
    raise UsageError(f"--format {output_format.value} is not available for this command yet")


def _finish(report: Report, gates: Gates) -> NoReturn:
    tripped = tripped_gates(report, gates)
    if tripped:
        err = _stderr_console()
        for reason in tripped:
            err.print(f"losscli: exit 1: {reason}", highlight=False, markup=False)
    raise typer.Exit(exit_code(report, gates))
