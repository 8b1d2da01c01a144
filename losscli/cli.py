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
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from losscli import __version__, losses
from losscli.errors import LossCliError, UsageError

if TYPE_CHECKING:  # numpy-heavy: imported where used, so --help stays fast
    from losscli.report import Gates, Report

app = typer.Typer(
    name="losscli",
    help="A loss calculator and debugger for PyTorch: torch's exact value, per-sample losses, "
    "gradients, and what is wrong with your inputs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Examples:\n\n"
    "  losscli compute mse samples/regression/pred.npy samples/regression/true.npy\n\n"
    "  losscli debug samples/classification/logits.csv samples/classification/labels.csv:label\n\n"
    "  losscli compare samples/regression/pred.npy samples/regression/true.npy -l mse -l l1 -l huber\n\n"
    "  losscli list\n\n"
    "  losscli COMMAND -h shows every option of a command, with examples",
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
        # without standalone mode, click returns typer.Exit's code instead of exiting
        returned = app(args=argv, standalone_mode=False, prog_name="losscli")
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except typer.Abort:
        _fatal("aborted")
    except (BrokenPipeError, KeyboardInterrupt):
        raise SystemExit(2) from None
    except Exception as error:
        # bare `losscli`: the help (Rich prints it while formatting; plain click returns it)
        if type(error).__name__ == "NoArgsIsHelpError":
            text = str(error.format_message())  # type: ignore[attr-defined]
            if text.strip():
                sys.stdout.write(text.rstrip("\n") + "\n")
            raise SystemExit(0) from None
        if hasattr(error, "format_message"):  # click's (or Typer's vendored click's) usage errors
            _fatal(_click_line(error))
        raise
    if isinstance(returned, int) and not isinstance(returned, bool):
        raise SystemExit(returned)


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

_SCALE_PANEL = "Large inputs"
MemoryBudget = Annotated[
    str,
    typer.Option(
        "--memory-budget",
        help="Above this (e.g. 300MB, 2GB) .npy and CSV inputs are streamed in chunks; "
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


def _no_color(no_color: bool) -> bool:
    """--no-color, or NO_COLOR set to anything but the empty string (no-color.org)."""
    return no_color or bool(os.environ.get("NO_COLOR"))


def _stdout_console(no_color: bool) -> Any:
    """The console for results on stdout.

    No colour or style codes at all with --no-color or NO_COLOR; Rich itself writes none
    when stdout is not a terminal (unless FORCE_COLOR is set).
    """
    from rich.console import Console

    if _no_color(no_color):
        return Console(color_system=None, no_color=True, soft_wrap=False)
    return Console(soft_wrap=False)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None)


def _complete_loss(incomplete: str) -> list[str]:
    """Shell completion of loss names (and aliases)."""
    return [name for name in losses.names() if name.startswith(incomplete.lower())]


def _resolve_loss(name: str) -> losses.LossSpec:
    spec = losses.get(name)
    if spec is None:
        guess = losses.suggest(name)
        hint = f"did you mean '{guess}'? " if guess else ""
        raise UsageError(f"unknown loss '{name}'; {hint}run 'losscli list' for the catalogue")
    return spec


def _default_format(
    output_format: OutputFormat | None,
    supported: tuple[OutputFormat, ...] = tuple(OutputFormat),
) -> OutputFormat:
    """--format if given, else LOSSCLI_FORMAT (when this command supports it), else table."""
    if output_format is not None:
        if output_format not in supported:
            names = ", ".join(f.value for f in supported)
            raise UsageError(f"--format {output_format.value} does not apply here (use {names})")
        return output_format
    default = os.environ.get("LOSSCLI_FORMAT", "").strip().lower()
    if default:
        if default not in OutputFormat.__members__:
            names = ", ".join(f.value for f in OutputFormat)
            raise UsageError(f"LOSSCLI_FORMAT={default!r} is not a format (use {names})")
        if OutputFormat(default) in supported:
            return OutputFormat(default)
    return OutputFormat.table


def _gates(
    loss: str,
    fail_on: FailOn,
    max_loss: float | None,
    baseline: str | None,
    max_increase: float | None,
    baselines: dict[str, float] | None = None,
) -> Gates:
    """The gates of one loss; --baseline is read here unless already read into ``baselines``."""
    if max_increase is not None and baseline is None:
        raise UsageError(
            "--max-increase needs --baseline REPORT.json (the saved report to compare with)"
        )
    value = None
    if baseline is not None:
        from losscli.report import load_baselines

        saved = baselines if baselines is not None else load_baselines(baseline)
        if loss in saved:
            value = saved[loss]
        elif "" in saved:
            value = saved[""]
        else:
            raise UsageError(
                f"{baseline}: no report for {loss} in the baseline (it has {', '.join(sorted(saved))})"
            )
    from losscli.report import Gates

    return Gates(
        fail_on=fail_on.value, max_loss=max_loss, baseline=value, max_increase=max_increase
    )


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
        str,
        typer.Argument(
            help="The loss: mse, cross-entropy, bce-logits, ... (losscli list).",
            autocompletion=_complete_loss,
            metavar="LOSS",
        ),
    ],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="The tensors in torch's order: files, file:key, '-', or '[1,2,3]'.",
            show_default=False,
            metavar="INPUT",
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
    memory_budget: MemoryBudget = "512MB",
    per_sample_out: PerSampleOut = None,
) -> None:
    """Compute a loss exactly as torch.nn.functional does: value, per-sample losses, gradient, findings."""
    given = _loss_options_given(locals())  # first: only the parameters are local yet
    _start_torch_import()
    from losscli import options as loss_options

    spec = _resolve_loss(loss)
    resolved = loss_options.resolve(spec, given)
    gates = _gates(spec.name, fail_on, max_loss, baseline, max_increase)
    report = _computed(
        spec,
        inputs,
        resolved,
        dtype.value,
        strict,
        stdin_format,
        memory_budget,
        per_sample_out,
        top,
    )
    chosen = _default_format(output_format)
    _emit(report, chosen, all_values=all_values, top=top, no_color=no_color, gates=gates)
    _finish(report, gates)


def _computed(
    spec: losses.LossSpec,
    inputs: list[str],
    resolved: dict[str, Any],
    float_dtype: str,
    strict: bool,
    stdin_format: str,
    memory_budget: str,
    per_sample_out: str | None,
    top: int,
) -> Report:
    """The report of ``compute``: on whole tensors, or streamed when over the memory budget."""
    from losscli import pipeline, streaming
    from losscli.sources import parse_source

    budget = streaming.parse_size(memory_budget)
    sources = {name: parse_source(text) for name, text in pipeline.bind(spec, inputs).items()}
    if streaming.plan(spec, sources, budget, resolved).stream:
        with _progress_bar(enabled=sys.stderr.isatty()) as progress:
            return streaming.evaluate(
                spec,
                sources,
                resolved,
                float_dtype,
                strict,
                budget,
                per_sample_out=per_sample_out,
                top=top,
                progress=progress,
            )
    if per_sample_out is not None:
        streaming.PerSampleWriter.check_path(per_sample_out)
    loaded = pipeline.load_inputs(spec, inputs, stdin_format)
    report = pipeline.evaluate(spec, loaded, resolved, float_dtype, strict)
    if per_sample_out is not None and report.computation is not None:
        streaming.write_per_sample(per_sample_out, report.computation.per_sample)
    return report


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int | None], Callable[[int], None]] | None]:
    """A Rich progress bar on stderr for streamed work, only on a terminal.

    Yields what :func:`losscli.streaming.evaluate` takes as ``progress``: called with the
    total samples (None when unknown), it returns the per-chunk callback.
    """
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "streaming",
        BarColumn(),
        MofNCompleteColumn(),
        "samples",
        TimeElapsedColumn(),
        console=_stderr_console(),
        transient=True,
    )

    def start(total: int | None) -> Callable[[int], None]:
        task = bar.add_task("streaming", total=total)
        bar.start()
        return lambda samples: bar.advance(task, samples)

    try:
        yield start
    finally:
        bar.stop()


def _emit(
    report: Report,
    output_format: OutputFormat,
    *,
    all_values: bool,
    top: int,
    no_color: bool,
    record: dict[str, Any] | None = None,
    view: Any = None,
    gates: Gates | None = None,
) -> None:
    """Write one report to stdout in ``output_format`` (data only: messages go to stderr).

    Args:
        report: what to write.
        output_format: the chosen format.
        all_values: every per-sample and gradient value in JSON.
        top: how many of the worst samples the table shows.
        no_color: no colour or style codes.
        record: the JSON object to write instead of compute's (debug adds ``recommended``).
        view: the Rich renderable to print instead of compute's table.
        gates: the CI gates; with ``github``, each one tripped is also an ``::error``.
    """
    if output_format in (OutputFormat.json, OutputFormat.ndjson):
        import json

        from losscli.render import json as render_json

        data = record if record is not None else render_json.report_dict(report, all_values)
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")  # one line: NDJSON too
    elif output_format is OutputFormat.csv:
        from losscli.render import csv as render_csv

        try:
            text = render_csv.render(report)
        except render_csv.IncompletePerSample as error:
            raise UsageError(
                f"--format csv needs every per-sample loss, but {error}",
                tip="write them with --per-sample-out FILE.csv, or use --format json",
            ) from None
        sys.stdout.write(text)
        _findings_to_stderr(report)  # the per-sample rows have no place for them
    elif output_format is OutputFormat.github:
        from losscli.render import github
        from losscli.report import tripped_gates

        tripped = tripped_gates(report, gates) if gates is not None else []
        sys.stdout.write(github.render(report, tripped=tripped))
    else:
        from losscli.render import table

        _stdout_console(no_color).print(view if view is not None else table.render(report, top))


def _findings_to_stderr(report: Report) -> None:
    """One plain line per warning or error finding, for formats whose data cannot hold them."""
    for item in sorted(report.findings, key=lambda f: -f.severity.rank):
        if item.severity.rank > 0:
            fix = f" (fix: {item.fix})" if item.fix else ""
            sys.stderr.write(f"losscli: {item.severity.value} {item.name}: {item.message}{fix}\n")


def _finish(report: Report, gates: Gates) -> NoReturn:
    """Name each gate the report trips on stderr, then exit 0 or 1."""
    from losscli.report import exit_code, tripped_gates

    for reason in tripped_gates(report, gates):
        _gate_tripped(reason)
    raise typer.Exit(exit_code(report, gates))


def _gate_tripped(reason: str, loss: str | None = None) -> None:
    """One unwrapped line on stderr per tripped gate: CI logs and grep read these."""
    where = f"{loss}: " if loss else ""
    sys.stderr.write(f"losscli: exit 1: {where}{reason}\n")


@app.command(
    "list",
    epilog="Examples:\n\n"
    "  losscli list\n\n"
    "  losscli list --format json | jq -r '.losses[].name'\n\n"
    "  losscli explain cross-entropy",
)
@one_error_path
def list_losses(
    output_format: Format = None,
    no_color: NoColor = False,
) -> None:
    """The loss catalogue: inputs with shapes and dtypes, target domains, options with torch's defaults."""
    from losscli.render import catalogue

    chosen = _default_format(
        output_format, (OutputFormat.table, OutputFormat.json, OutputFormat.ndjson)
    )
    if chosen is OutputFormat.json:
        sys.stdout.write(catalogue.render_json(losses.LOSSES) + "\n")
    elif chosen is OutputFormat.ndjson:
        from losscli.render import ndjson

        sys.stdout.write(ndjson.render(catalogue.entry(spec) for spec in losses.LOSSES))
    else:
        _stdout_console(no_color).print(catalogue.render_table(losses.LOSSES))


@app.command(
    epilog="Examples:\n\n"
    "  losscli compare samples/regression/pred.npy samples/regression/true.npy -l mse -l l1 -l huber\n\n"
    "  losscli compare pred.npy true.npy -l mse -l huber --delta 0.5 --format ndjson | jq -c '{loss, value}'\n\n"
    "  losscli compare pred.npy true.npy -l mse -l l1 --baseline base.json --max-increase 0.05",
)
@one_error_path
def compare(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="The tensors in torch's order, shared by every loss: files, file:key, '-', or '[1,2,3]'.",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    loss: Annotated[
        list[str] | None,
        typer.Option(
            "--loss",
            "-l",
            help="A loss to compare (repeat: -l mse -l l1 -l huber).",
            autocompletion=_complete_loss,
            metavar="LOSS",
            show_default=False,
        ),
    ] = None,
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
    no_color: NoColor = False,
    dtype: DType = FloatDType.float32,
    strict: Strict = False,
    stdin_format: StdinFormat = "csv",
    fail_on: FailOnOpt = FailOn.error,
    max_loss: MaxLoss = None,
    baseline: Baseline = None,
    max_increase: MaxIncrease = None,
) -> None:
    """Several losses on the same inputs, side by side: value, per-sample summary, gradient norm, findings.

    Each loss gets the options it takes; a loss whose inputs do not fit is reported, not fatal.
    Exit 1 when any loss trips a gate.
    """
    given = _loss_options_given(locals())  # first: only the parameters are local yet
    _start_torch_import()
    from losscli import compare as comparison
    from losscli.report import load_baselines

    if not loss:
        raise UsageError("compare needs at least one loss: -l mse -l l1 ...")
    specs = list({spec.name: spec for spec in (_resolve_loss(name) for name in loss)}.values())
    chosen = _default_format(output_format)
    comparison.check_options_apply(specs, given)
    saved = load_baselines(baseline) if baseline is not None else None
    gates = {
        spec.name: _gates(spec.name, fail_on, max_loss, baseline, max_increase, saved)
        for spec in specs
    }
    loaded = comparison.load_once(inputs, stdin_format)
    entries = comparison.evaluate_all(specs, loaded, inputs, given, dtype.value, strict)
    tripped = {
        entry.spec.name: comparison.tripped(entry, gates[entry.spec.name]) for entry in entries
    }
    _emit_comparison(entries, chosen, all_values=all_values, no_color=no_color, tripped=tripped)
    for entry in entries:
        for reason in tripped[entry.spec.name]:
            _gate_tripped(reason, entry.spec.name)
    raise typer.Exit(1 if any(tripped.values()) else 0)


def _emit_comparison(
    entries: list[Any],
    output_format: OutputFormat,
    *,
    all_values: bool,
    no_color: bool,
    tripped: dict[str, list[str]] | None = None,
) -> None:
    """Write a comparison to stdout in ``output_format`` (``tripped``: loss → gates, for github)."""
    from losscli.render import compare as render_compare

    if output_format is OutputFormat.json:
        sys.stdout.write(render_compare.render_json(entries, all_values) + "\n")
    elif output_format is OutputFormat.ndjson:
        from losscli.render import ndjson

        sys.stdout.write(ndjson.render(render_compare.records(entries, all_values)))
    elif output_format is OutputFormat.csv:
        sys.stdout.write(render_compare.render_csv(entries))
    elif output_format is OutputFormat.github:
        sys.stdout.write(render_compare.render_github(entries, tripped))
    else:
        _stdout_console(no_color).print(render_compare.render_table(entries))


def _loss_options_given(values: dict[str, Any]) -> dict[str, Any]:
    """The loss options among a command's parameters: torch keyword → value (None: not given)."""
    known = losses.all_options()
    return {name: value for name, value in values.items() if name in known}


@app.command(
    epilog="Examples:\n\n"
    "  losscli debug samples/mistakes/softmax_probs.csv samples/classification/labels.csv:label\n\n"
    "  losscli debug pred.npy true.npy --loss mse\n\n"
    "  losscli debug logits.npy labels.npy --format json | jq .recommended",
)
@one_error_path
def debug(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Predictions and targets (or every input of --loss, in torch's order): "
            "files, file:key, '-', or '[1,2,3]'.",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    loss: Annotated[
        str | None,
        typer.Option(
            "--loss",
            "-l",
            help="The loss to check the inputs against; without it, the task is inferred "
            "from the data and a loss recommended.",
            autocompletion=_complete_loss,
        ),
    ] = None,
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
    top: Top = 5,
    no_color: NoColor = False,
    dtype: DType = FloatDType.float32,
    strict: Strict = False,
    stdin_format: StdinFormat = "csv",
    fail_on: FailOnOpt = FailOn.error,
    max_loss: MaxLoss = None,
    baseline: Baseline = None,
    max_increase: MaxIncrease = None,
) -> None:
    """Run every check and explain each finding (why it matters, the fix), then the value.

    Without --loss, infers the task from the data and recommends a loss with the command to run.
    """
    given = _loss_options_given(locals())  # first: only the parameters are local yet
    _start_torch_import()
    import json

    from losscli import options as loss_options
    from losscli import pipeline
    from losscli.render import debug as render_debug
    from losscli.report import InputInfo

    chosen = _default_format(output_format)
    recommendation = None
    if loss is not None:
        spec = _resolve_loss(loss)
        resolved = loss_options.resolve(spec, given)
        gates = _gates(spec.name, fail_on, max_loss, baseline, max_increase)
        loaded = pipeline.load_inputs(spec, inputs, stdin_format)
    else:
        arrays, recommendation = _infer_task(inputs, stdin_format)
        if not recommendation.complete:
            info = {
                "input": InputInfo(
                    arrays[0].source, tuple(arrays[0].values.shape), str(arrays[0].values.dtype)
                )
            }
            if chosen in (OutputFormat.json, OutputFormat.ndjson):
                record = render_debug.recommendation_record(recommendation, info)
                sys.stdout.write(json.dumps(record) + "\n")
            else:  # no report, so no rows or annotations: the advice goes to the reader
                console = _stdout_console(no_color) if chosen is OutputFormat.table else None
                (console or _stderr_console()).print(
                    render_debug.render_recommendation_only(recommendation, info)
                )
            raise typer.Exit(0)
        spec = _resolve_loss(recommendation.loss)
        typed = {k: v for k, v in given.items() if v is not None}
        wanted = {**dict(recommendation.options), **typed}
        try:
            resolved = loss_options.resolve(spec, wanted)
        except UsageError as error:
            raise UsageError(
                f"{error.message} (the inferred loss; pass --loss to choose one)"
            ) from None
        gates = _gates(spec.name, fail_on, max_loss, baseline, max_increase)
        loaded = dict(zip((a.name for a in spec.arguments), arrays, strict=True))
    report = pipeline.evaluate(spec, loaded, resolved, dtype.value, strict)
    as_json = chosen in (OutputFormat.json, OutputFormat.ndjson)
    _emit(
        report,
        chosen,
        all_values=all_values,
        top=top,
        no_color=no_color,
        record=render_debug.report_record(report, recommendation, all_values) if as_json else None,
        view=render_debug.render(report, recommendation, top)
        if chosen is OutputFormat.table
        else None,
        gates=gates,
    )
    _finish(report, gates)


def _infer_task(inputs: list[str], stdin_format: str) -> tuple[list[Any], Any]:
    """Load 1 to 4 INPUTs without a loss and infer the task (UsageError when it cannot)."""
    from losscli import inference
    from losscli.loaders import load
    from losscli.sources import check_one_stdin, parse_source

    if not 1 <= len(inputs) <= 4:
        raise UsageError(
            f"debug without --loss takes 1 to 4 inputs (predictions, targets), got {len(inputs)}; "
            "pass --loss LOSS (losscli list shows the catalogue)"
        )
    check_one_stdin(inputs)
    arrays = [load(parse_source(text), stdin_format) for text in inputs]
    recommendation = inference.infer([a.values for a in arrays], inputs)
    if recommendation is None:
        shapes = " and ".join(f"{a.source} {tuple(a.values.shape)}" for a in arrays)
        raise UsageError(
            f"cannot tell the task from {shapes}; pass --loss LOSS (losscli list shows the catalogue)"
        )
    return arrays, recommendation


@app.command(
    epilog="Examples:\n\n"
    "  losscli explain cross-entropy\n\n"
    "  losscli explain probabilities-as-logits\n\n"
    "  losscli explain\n\n"
    "  losscli explain ce --format json | jq .per_sample_rule",
)
@one_error_path
def explain(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A loss (or alias) or a finding name; without it, every loss and finding.",
            show_default=False,
            metavar="NAME",
        ),
    ] = None,
    output_format: Format = None,
    no_color: NoColor = False,
) -> None:
    """Explain a loss (formula, inputs, options, per-sample rule, pitfalls) or a finding."""
    import json

    from losscli import findings
    from losscli.render import explain as render_explain

    chosen = _default_format(output_format, (OutputFormat.table, OutputFormat.json))
    record: dict[str, Any]
    if name is None:
        record, view = render_explain.index_record(), render_explain.render_index()
    elif (spec := losses.get(name)) is not None:
        record, view = render_explain.loss_record(spec), render_explain.render_loss(spec)
    elif (doc := findings.CATALOGUE.get(name.strip().lower().replace("_", "-"))) is not None:
        record, view = render_explain.finding_record(doc), render_explain.render_finding(doc)
    else:
        import difflib

        known = [*losses.names(), *findings.CATALOGUE]
        close = difflib.get_close_matches(name.strip().lower(), known, n=1, cutoff=0.6)
        if not close:  # a word of a finding name: 'broadcast' → silent-broadcast
            close = [k for k in findings.CATALOGUE if name.strip().lower() in k][:1]
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(
            f"'{name}' is neither a loss nor a finding; {hint}run 'losscli explain' for the list"
        )
    if chosen is OutputFormat.json:
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        _stdout_console(no_color).print(view)
