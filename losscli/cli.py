"""The command line: parse options, call the core, pick a renderer, exit. No numerics here.

Torch is imported only by the commands that compute, and then in a background thread
while the inputs load, so ``--help``, ``--version``, ``list`` and ``explain`` stay fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import io
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from losscli import __version__, losses
from losscli.coercion import plain_first
from losscli.errors import LoadError, LossCliError, UsageError
from losscli.parameters import (
    CATALOGUE_FORMATS,
    FLAG,
    CatalogueFormat,
    Inputs,
    NoColor,
    OutputFormat,
    PerSampleOut,
    RunOptions,
    with_options,
)
from losscli.printable import printable

if TYPE_CHECKING:  # numpy-heavy: imported where used, so --help stays fast
    from losscli.render import Rendered, View
    from losscli.report import Gates, Report


class _FlagHelpCommand(TyperCommand):
    """A command whose own flags (``-h/--help``) show as flags: Typer 0.29 gives them a
    ``<bool>`` as if they took a value; its help panels laid out to fit 80 columns."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _narrow_option_columns()
        super().format_help(ctx, formatter)


class _FlagHelpGroup(TyperGroup):
    """The group (``losscli -h``): its help and completion flags shown as flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _narrow_option_columns()
        super().format_help(ctx, formatter)


def _narrow_option_columns() -> None:
    """One space between the columns of Typer's option tables, not two: the loss options
    panel has six columns (names, short names, --no- forms, value, help), and at 80 columns
    the two spaces each cost the help column the room of a loss name
    (``multilabel-soft-margin``). Imported here, on the help path only."""
    from typer import rich_utils

    # Rich's padding (top, right, bottom, left); Typer annotates only the (vertical, horizontal) form
    rich_utils.STYLE_OPTIONS_TABLE_PADDING = (0, 1, 0, 0)  # type: ignore[assignment]


def _as_flags(params: list[Any]) -> list[Any]:
    """Every on/off flag with no value placeholder (:data:`losscli.parameters.FLAG`), and
    each value coerced without the validation library where that is plain
    (:mod:`losscli.coercion`)."""
    plain_first(params)
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = FLAG
    return params


app = typer.Typer(
    name="losscli",
    cls=_FlagHelpGroup,
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


def _say(line: str) -> None:
    """One line on stderr, ``losscli: `` first, control characters escaped.

    A stderr that cannot be written to (closed mid-run, a broken pipe) loses the line, not
    the exit code.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(f"losscli: {printable(line)}\n")
        sys.stderr.flush()


def _fatal(message: str) -> NoReturn:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
    _say(f"error: {message}")
    raise SystemExit(2)


def _closed(stream: Any) -> bool:
    """Whether a standard stream was closed when losscli started (``>&-``, ``2>&-``).

    Python sets the stream to None when its descriptor is closed; a descriptor may also be
    closed behind a stream object. A stream without a descriptor (a test's capture) is open.
    """
    if stream is None:
        return True
    try:
        os.fstat(stream.fileno())
    except (AttributeError, ValueError, OSError) as error:
        return isinstance(error, OSError) and not isinstance(error, io.UnsupportedOperation)
    return False


def _stdout_lost(error: OSError) -> NoReturn:
    """Standard output failed mid-write (closed, a broken pipe, a full disk): exit 2.

    Later writes, including the interpreter's own flush at exit, go to /dev/null, so the
    one line on stderr is all that is said.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    _fatal(f"cannot write to standard output ({error.strerror or type(error).__name__})")


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


def _interrupted(signum: int, frame: Any) -> None:
    """Ctrl-C or SIGTERM: drop the output files being written, exit 130, at once.

    Exiting from the handler (rather than raising KeyboardInterrupt into whatever the main
    thread is running, an import that may swallow it) makes the outcome the same wherever
    the signal lands.
    """
    from losscli import outputs

    outputs.discard_all()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
    # Straight to descriptor 2: a live progress bar has replaced sys.stderr with a proxy
    # that would swallow the escape codes. On a terminal, clear the bar's line and show
    # the cursor it hid.
    line = "losscli: interrupted\n"
    with contextlib.suppress(OSError):
        if os.isatty(2):
            line = f"\r\x1b[2K{_SHOW_CURSOR}{line}"
        os.write(2, line.encode())
    os._exit(130)


_SHOW_CURSOR = "\x1b[?25h"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: parse errors, too, end as one line and exit 2.

    An interrupt (Ctrl-C, SIGTERM) exits 130 and leaves no output file behind; the handlers
    are those of this run only (a program that calls ``main`` gets its own back).
    """
    import signal

    if _closed(sys.stderr):
        raise SystemExit(2)  # nowhere to say what went wrong: the exit code says it
    if _closed(sys.stdout):
        _fatal("standard output is closed; nothing can be written (remove '>&-')")
    _sane_columns()
    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread (an embedding program)
        for number in (signal.SIGTERM, signal.SIGINT):
            previous[number] = signal.signal(number, _interrupted)
    try:
        _main(argv)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def entry() -> NoReturn:
    """The ``losscli`` program (its console script and ``python -m losscli``): :func:`main`,
    then the process ends at once with its exit code.

    Python's own shutdown after torch's import takes ~0.1 s more (its modules and torch's
    C++ objects torn down one by one), and nothing of losscli's is left by then: every output
    file is renamed into place or discarded before :func:`main` returns, and every write to
    stdout was flushed as it was made (a failed one is exit 2 there). Standard streams are
    flushed once more here; a program that calls :func:`main` itself keeps the usual exit,
    its collector and its pyarrow memory pool (:func:`_lean_process`).
    """
    _lean_process()
    try:
        main()
        code = 0
    except SystemExit as done:
        code = _exit_code(done.code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    """SystemExit's code as the process's: None is 0, a message is said and is 1."""
    if code is None or isinstance(code, int):
        return int(code or 0)
    _say(str(code))
    return 1


def _main(argv: list[str] | None) -> None:
    try:
        # without standalone mode, click returns typer.Exit's code instead of exiting
        returned = app(args=argv, standalone_mode=False, prog_name="losscli")
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except typer.Abort:
        _fatal("aborted")
    except KeyboardInterrupt:
        _say("interrupted")
        raise SystemExit(130) from None
    except BrokenPipeError as error:
        _stdout_lost(error)
    except Exception as error:
        # bare `losscli`: the help (Rich prints it while formatting; plain click returns it)
        if type(error).__name__ == "NoArgsIsHelpError":
            text = str(error.format_message())  # type: ignore[attr-defined]
            if text.strip():
                _out(text.rstrip("\n") + "\n")
            raise SystemExit(0) from None
        if hasattr(error, "format_message"):  # click's (or Typer's vendored click's) usage errors
            _fatal(_stdin_selection_line(error, argv) or _click_line(error))
        raise
    if isinstance(returned, int) and not isinstance(returned, bool):
        raise SystemExit(returned)


def _stdin_selection_line(error: Any, argv: list[str] | None) -> str | None:
    """The usage line for ``-:label`` (standard input's column), which click takes for an
    option wherever it stands: say to put the inputs after ``--``. None for other errors."""
    if not str(getattr(error, "option_name", "")).startswith("-:"):
        return None
    words = sys.argv[1:] if argv is None else argv
    at = next((i for i, word in enumerate(words) if word.startswith("-:")), None)
    if at is None:
        return None
    typed = words[at]
    after = words[at + 1 :]
    if any(word.startswith("-") for word in after):  # options after it: say it in general
        example = "the options first, then --, then the inputs in their order"
    else:
        example = "losscli " + " ".join(
            shlex.quote(word) for word in [*words[:at], "--", *words[at:]]
        )
    return (
        f"{typed} reads as an option (it starts with '-'); put the inputs after '--' so that "
        f"it reads as an input: {example}"
    )


def _click_line(error: Any) -> str:
    """One line for a usage error of the parser: a refused option value in losscli's own
    words (:func:`losscli.parameters.bad_value_line`), anything else as the parser says it."""
    param = getattr(error, "param", None)
    if type(error).__name__ == "BadParameter" and isinstance(param, TyperOption):
        return _bad_value(error, param)
    message = " ".join(str(error.format_message()).split())
    command = getattr(getattr(error, "ctx", None), "command_path", "losscli")
    return f"{message} (see '{command} --help')"


def _bad_value(error: Any, param: Any) -> str:
    """The refused value of an option, as losscli says it.

    The parser's validation error (its cause) holds the value as typed; a message of our
    own (a callback's, such as a gate's "turns the gate off") is kept, after the option.
    """
    from losscli.parameters import bad_value_line

    flags = [*param.opts, *param.secondary_opts]
    causes = getattr(error.__cause__, "errors", None)
    if not callable(causes):
        flag = next((f for f in flags if f.startswith("--")), flags[0])
        return f"{flag}: {' '.join(str(error.message).split())}"
    details = causes()
    typed = details[0].get("input") if details else None
    annotation = param.type_descriptor.annotation
    return bad_value_line(flags, annotation, (param.min, param.max), typed)


def _start_torch_import() -> None:
    """Import torch in the background while inputs load and checks run."""

    def _import() -> None:
        # the foreground import reports any real error
        with contextlib.suppress(Exception):
            import torch  # noqa: F401  (warm the import; compute.py uses it)
        if _PROCESS.lean:
            # torch's million objects live as long as the process: out of the collector's
            # sight, a full collection costs ~1 ms where it cost ~80 ms (several in a run)
            gc.freeze()

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
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
            metavar=FLAG,
        ),
    ] = False,
) -> None:
    """losscli: torch's exact loss, per-sample losses and gradients, and what is wrong with your inputs."""


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
        return _wide_enough(Console(color_system=None, no_color=True, soft_wrap=False))
    return _wide_enough(Console(soft_wrap=False))


def _stderr_console() -> Any:
    from rich.console import Console

    return _wide_enough(Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None))


# the narrowest layout the tables are drawn for; a narrower terminal (or COLUMNS=1) wraps
MIN_WIDTH = 40


@dataclasses.dataclass
class _Process:
    """What the ``losscli`` program may do to its own process (and a caller of main() not)."""

    lean: bool = False


_PROCESS = _Process()


def _lean_process() -> None:
    """The ``losscli`` program's own process: torch's objects frozen out of the collector
    once imported (:func:`_start_torch_import`), and pyarrow allocating from the C library's
    malloc unless the user chose (``ARROW_DEFAULT_MEMORY_POOL``): its default, mimalloc,
    holds ~12 MB of arenas from the first parsed block on, which a stream at a small
    ``--memory-budget`` cannot spare; parsing is as fast either way (0.67 s for 4e6 rows)."""
    _PROCESS.lean = True
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def _sane_columns() -> None:
    """COLUMNS below :data:`MIN_WIDTH` (or not a number) becomes MIN_WIDTH, for every
    console of this run, Typer's help included: a 1-column table cannot be drawn."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.isdigit() and int(columns) >= MIN_WIDTH):
        os.environ["COLUMNS"] = str(MIN_WIDTH)


def _wide_enough(console: Any) -> Any:
    if console.width < MIN_WIDTH:
        console.width = MIN_WIDTH
    return console


def _complete_loss(incomplete: str) -> list[str]:
    """Shell completion of loss names, aliases and torch's names (``CrossEntropyLoss``)."""
    typed = incomplete.lower()
    return [name for name in losses.names() if name.lower().startswith(typed)]


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
    """--format if given, else LOSSCLI_FORMAT (when this command supports it), else table.

    ``output_format`` may be a value of a command's own choices (:func:`losscli.parameters.
    format_parameter`): it is read back as the OutputFormat of the same name.
    """
    if output_format is not None:
        output_format = OutputFormat(output_format.value)
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


def _baselines(run: RunOptions) -> dict[str, float] | None:
    """The saved values of --baseline, read (and refused when unusable) before any input."""
    if run.max_increase is not None and run.baseline is None:
        raise UsageError(
            "--max-increase needs --baseline REPORT.json (the saved report to compare with)"
        )
    if run.baseline is None:
        return None
    from losscli.report import load_baselines

    return load_baselines(run.baseline)


def _gates(loss: str, run: RunOptions, saved: dict[str, float] | None) -> Gates:
    """The gates of one loss; ``saved`` is what :func:`_baselines` read."""
    value = None
    if saved is not None:
        if loss in saved:
            value = saved[loss]
        elif "" in saved:
            value = saved[""]
        else:
            raise UsageError(
                f"{printable(str(run.baseline))}: no report for {loss} in the baseline "
                f"(it has {', '.join(sorted(saved))})"
            )
    from losscli.report import Gates

    return Gates(
        fail_on=run.fail_on.value,
        max_loss=run.max_loss,
        baseline=value,
        max_increase=run.max_increase,
    )


def _checked_run(run: RunOptions) -> tuple[OutputFormat, int, dict[str, float] | None]:
    """Every shared option checked before any input is read or any file written.

    Returns:
        The output format, the memory budget in bytes, and the --baseline values (if any).
    """
    from losscli import chunks

    chosen = _default_format(run.output_format)
    budget = chunks.parse_size(run.memory_budget)
    return chosen, budget, _baselines(run)


@app.command(
    cls=_FlagHelpCommand,
    epilog="Examples:\n\n"
    "  losscli compute mse pred.npy true.npy\n\n"
    "  losscli compute l1 '[1,2.5,4,0.5]' '[2,2.5,2,1]'\n\n"
    "  losscli compute cross-entropy logits.csv labels.csv --label-smoothing 0.1\n\n"
    "  cat preds.csv | losscli compute bce-logits - labels.npy --format json | jq .value",
)
@one_error_path
@with_options(top=10)
def compute(
    loss: Annotated[
        str,
        typer.Argument(
            help="The loss: mse, cross-entropy, bce-logits, ... (losscli list).",
            autocompletion=_complete_loss,
            metavar="LOSS",
        ),
    ],
    inputs: Inputs,
    given: dict[str, Any],
    run: RunOptions,
    per_sample_out: PerSampleOut = None,
) -> None:
    """Compute a loss exactly as torch.nn.functional does: value, per-sample losses, gradient, findings."""
    _start_torch_import()
    from losscli import options as loss_options
    from losscli.render import View
    from losscli.report import exit_code

    spec = _resolve_loss(loss)
    resolved = loss_options.resolve(spec, given)
    invocation = _invocation(spec, inputs, given, run)
    chosen, budget, saved = _checked_run(run)
    gates = _gates(spec.name, run, saved)
    if per_sample_out is not None and run.dask is not None:
        raise UsageError(
            "--per-sample-out with --dask: the per-sample losses stay on the Dask workers",
            tip="leave out --dask to write them, shard after shard, on this machine",
        )
    writer = _per_sample_writer(spec, inputs, given, per_sample_out)
    try:
        report = _evaluated(invocation, resolved, run, budget, writer.write if writer else None)
        view = View(run.all_values, run.top, _tripped(report, gates))
        rendered = _rendered(report, chosen, view)  # a format that cannot hold it: exit 2 here
        succeeded = report.computation is not None and exit_code(report, gates) == 0
        if writer is not None and succeeded:
            writer.finish()  # a full disk shows here, before anything reaches stdout
        _write(rendered, run.no_color)  # stdout closed or full: exit 2, the losses dropped
        if writer is not None:
            _settle(writer, succeeded)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    _finish(report, gates)


def _settle(writer: Any, succeeded: bool) -> None:
    """Rename the per-sample losses onto their file when the run succeeded; else drop them.

    A run that fails (exit 1: a gate tripped, or the inputs could not work) leaves the file
    as it was, and says so: a CI job never finds losses it cannot trust where it looks.
    """
    if succeeded:
        writer.commit()
        return
    writer.discard()
    _say(
        f"note: --per-sample-out {writer.name} was not written: the run failed "
        "(a failed or interrupted run leaves the file as it was)"
    )


def _per_sample_writer(
    spec: losses.LossSpec, inputs: list[str], given: dict[str, Any], per_sample_out: str | None
) -> Any:
    """The ``--per-sample-out`` writer, refused before any work when the file is an input.

    Tensor options read from files (``--weight w.npy``) count as inputs too.
    """
    if per_sample_out is None:
        return None
    from losscli import outputs, pipeline
    from losscli.losses import OptionType
    from losscli.sources import parse_source

    texts = list(pipeline.bind(spec, inputs).values())
    texts += [
        str(value)
        for name, value in given.items()
        if value is not None
        and (option := spec.option(name)) is not None
        and option.type is OptionType.TENSOR
    ]
    paths = [
        shard.path
        for source in map(parse_source, texts)
        for shard in _files_of(source)
        if shard.path is not None
    ]
    return outputs.PerSampleWriter(outputs.check_target(per_sample_out, paths), per_sample_out)


def _files_of(source: Any) -> list[Any]:
    """The sources a source reads: its shards when it is a glob (none when it matches
    nothing: the evaluation says so), else itself."""
    from losscli import shards

    if not shards.is_pattern(source):
        return [source]
    try:
        return shards.expand(source)
    except LoadError:
        return []


def _invocation(
    spec: losses.LossSpec, inputs: list[str], given: dict[str, Any], run: RunOptions
) -> Any:
    """The command as data (:class:`losscli.invocation.Invocation`), its maps checked.

    A map that does not parse, or names no input of the loss, is a usage error here, before
    any input is read.
    """
    from losscli.invocation import Invocation

    return Invocation.typed(
        spec,
        inputs,
        given,
        run.maps,
        dtype=run.dtype.value,
        strict=run.strict,
        stdin_format=run.stdin_format,
        memory_budget=_typed_budget(run),
    )


def _typed_budget(run: RunOptions) -> str | None:
    """``--memory-budget`` when the user gave one (a fix's command repeats it)."""
    from losscli.parameters import DEFAULT_BUDGET

    return None if run.memory_budget == DEFAULT_BUDGET else run.memory_budget


def _maps_fit_one_of(specs: list[losses.LossSpec], maps: tuple[str, ...]) -> None:
    """Each --map must parse for some compared loss (a typo is a usage error, before any input)."""
    from losscli import transforms

    if not maps:
        return
    errors: list[UsageError] = []
    for spec in specs:
        try:
            transforms.parse_maps(maps, [a.name for a in spec.arguments], loss=spec.name)
            return
        except UsageError as error:
            errors.append(error)
    raise errors[0]


def _evaluated(
    invocation: Any,
    resolved: dict[str, Any],
    run: RunOptions,
    budget: int,
    per_sample: Callable[[Any], None] | None = None,
    cache: dict[str, Any] | None = None,
) -> Report:
    """The command's report with its verified fixes (:func:`losscli.runner.run`), with a
    progress bar on a terminal while an input streams."""
    from losscli import pipeline, runner

    with (
        _dask_session(run, list(invocation.arguments)),
        _progress_bar(enabled=sys.stderr.isatty()) as progress,
    ):
        settings = pipeline.Settings(
            run.dtype.value, run.strict, top=run.top, per_sample=per_sample, progress=progress
        )
        return runner.run(invocation, resolved, budget, settings, cache, run.dask)


@contextlib.contextmanager
def _dask_session(run: RunOptions, inputs: list[str]) -> Iterator[None]:
    """With ``--dask``, one cluster for the whole command, reached (or refused) before any
    work: Dask missing, no scheduler at the address, or no INPUT a glob of shards is one
    line, exit 2."""
    if run.dask is None:
        yield
        return
    from losscli import dask_engine, shards
    from losscli.sources import parse_source

    if not any(shards.is_pattern(parse_source(text)) for text in inputs):
        raise shards.dask_without_shards()
    with dask_engine.session(run.dask):
        yield


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int | None], Callable[[int], None]] | None]:
    """A Rich progress bar on stderr for streamed work, only on a terminal.

    Yields what :class:`losscli.pipeline.Settings` takes as ``progress``: called with the
    total samples (None when unknown) when an input streams, it shows the bar and returns
    the per-chunk callback.
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


def _write(rendered: Rendered, no_color: bool) -> None:
    """Data to stdout (text as it is, or the Rich view), notes to stderr."""
    if rendered.renderable is not None:
        _print(rendered.renderable, no_color)
    _out(rendered.text)
    for note in rendered.notes:
        _say(note)


def _out(text: str) -> None:
    """Text to stdout, flushed: a failed write is exit 2 now, not a lost line at exit."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as error:
        _stdout_lost(error)


def _print(renderable: Any, no_color: bool) -> None:
    """A Rich view on stdout, flushed, with the same failure rule as :func:`_out`."""
    try:
        _stdout_console(no_color).print(renderable)
        sys.stdout.flush()
    except OSError as error:
        _stdout_lost(error)


def _rendered(report: Report, output_format: OutputFormat, view: View) -> Rendered:
    """One report in ``output_format``, with a note when --all-values could not be honoured."""

    from losscli.render import renderer

    rendered = renderer(output_format.value).report(report, view)
    computation = report.computation
    if view.all_values and computation is not None and not computation.complete:
        note = (
            f"note: --all-values: a streamed input keeps per-sample losses only up to 1000 "
            f"samples, not {computation.summary['n']}; write them with --per-sample-out FILE"
        )
        rendered = dataclasses.replace(rendered, notes=(*rendered.notes, note))
    return rendered


def _tripped(report: Report, gates: Gates) -> dict[str, list[str]]:
    from losscli.report import tripped_gates

    return {report.spec.name: tripped_gates(report, gates)}


def _finish(report: Report, gates: Gates) -> NoReturn:
    """Name each gate the report trips on stderr, then exit 0 or 1."""
    from losscli.report import exit_code, tripped_gates

    for reason in tripped_gates(report, gates):
        _gate_tripped(reason)
    raise typer.Exit(exit_code(report, gates))


def _gate_tripped(reason: str, loss: str | None = None) -> None:
    """One unwrapped line on stderr per tripped gate: CI logs and grep read these."""
    where = f"{loss}: " if loss else ""
    _say(f"exit 1: {where}{reason}")


@app.command(
    "list",
    cls=_FlagHelpCommand,
    epilog="Examples:\n\n"
    "  losscli list\n\n"
    "  losscli list --format json | jq -r '.losses[].name'\n\n"
    "  losscli explain cross-entropy",
)
@one_error_path
def list_losses(
    output_format: CatalogueFormat = None,
    no_color: NoColor = False,
) -> None:
    """The loss catalogue: inputs with shapes and dtypes, target domains, options with torch's defaults."""
    from losscli.render import catalogue

    chosen = _default_format(output_format, CATALOGUE_FORMATS)
    if chosen is OutputFormat.json:
        _out(catalogue.render_json(losses.LOSSES) + "\n")
    elif chosen is OutputFormat.ndjson:
        from losscli.render import ndjson

        _out(ndjson.render(catalogue.entry(spec) for spec in losses.LOSSES))
    else:
        _print(catalogue.render_table(losses.LOSSES), no_color)


@app.command(
    cls=_FlagHelpCommand,
    epilog="Examples:\n\n"
    "  losscli compare samples/regression/pred.npy samples/regression/true.npy -l mse -l l1 -l huber\n\n"
    "  losscli compare pred.npy true.npy -l mse -l huber --delta 0.5 --format ndjson | jq -c '{loss, value}'\n\n"
    "  losscli compare pred.npy true.npy -l mse -l l1 --baseline base.json --max-increase 0.05",
)
@one_error_path
@with_options(top=None)
def compare(
    inputs: Inputs,
    given: dict[str, Any],
    run: RunOptions,
    loss: Annotated[
        list[str] | None,
        typer.Option(
            "--loss",
            "-l",
            help="A loss to compare (repeat: -l mse -l l1 -l huber); without -l, the losses "
            "that fit the task inferred from the data.",
            autocompletion=_complete_loss,
            metavar="LOSS",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Several losses on the same inputs, side by side: value, per-sample summary, gradient norm, findings.

    Without -l, the losses that fit the task inferred from the data (as debug infers it).
    Each loss gets the options it takes; a loss whose inputs do not fit is reported, not fatal.
    Exit 1 when any loss trips a gate.
    """
    _start_torch_import()
    from losscli import compare as comparison
    from losscli import pipeline
    from losscli.render import View, renderer

    chosen, budget, saved = _checked_run(run)
    cache: dict[str, Any] = {}
    task = None
    if not loss:
        task = _task_to_compare(inputs, run.stdin_format, budget, cache)
        loss = list(task.losses)
        given = {**dict(task.recommendation.options), **_typed(given)}
    specs = list({spec.name: spec for spec in (_resolve_loss(name) for name in loss)}.values())
    comparison.check_options_apply(specs, given)
    gates = {spec.name: _gates(spec.name, run, saved) for spec in specs}
    _maps_fit_one_of(specs, run.maps)
    settings = pipeline.Settings(run.dtype.value, run.strict)
    with _dask_session(run, inputs):
        entries = comparison.evaluate_all(
            specs,
            inputs,
            given,
            settings,
            budget,
            run.stdin_format,
            cache=cache,
            maps=run.maps,
            memory_budget=_typed_budget(run),
            dask=run.dask,
        )
    tripped = {
        entry.spec.name: comparison.tripped(entry, gates[entry.spec.name]) for entry in entries
    }
    view = View(run.all_values, tripped=tripped, task=task.recommendation.task if task else "")
    _write(renderer(chosen.value).comparison(entries, view), run.no_color)
    for entry in entries:
        for reason in tripped[entry.spec.name]:
            _gate_tripped(reason, entry.spec.name)
    raise typer.Exit(1 if any(tripped.values()) else 0)


def _complete_debug_input(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of debug's arguments: the first may be a loss (its names); for the
    others, and a first one no loss name starts, nothing, so the shell completes files."""
    if ctx.params.get("inputs"):
        return []
    return _complete_loss(incomplete)


DebugInputs = Annotated[
    list[str],
    typer.Argument(
        help="Optionally the loss first (mse, cross-entropy, CrossEntropyLoss, F.mse_loss, "
        "...; an existing file of that name is an input), then the tensors in torch's order "
        "(predictions, then targets): files, file:key, '-', or '[1,2,3]'.",
        show_default=False,
        metavar="[LOSS] INPUT",
        autocompletion=_complete_debug_input,
    ),
]


@app.command(
    cls=_FlagHelpCommand,
    epilog="Examples:\n\n"
    "  losscli debug samples/mistakes/softmax_probs.csv samples/classification/labels.csv:label\n\n"
    "  losscli debug mse pred.npy true.npy\n\n"
    "  losscli debug logits.npy labels.npy --format json | jq .recommended",
)
@one_error_path
@with_options(top=5)
def debug(
    inputs: DebugInputs,
    given: dict[str, Any],
    run: RunOptions,
    loss: Annotated[
        str | None,
        typer.Option(
            "--loss",
            "-l",
            help="The loss to check the inputs against (or give it first: debug mse p.npy "
            "t.npy); without one, the task is inferred from the data and a loss recommended.",
            autocompletion=_complete_loss,
        ),
    ] = None,
) -> None:
    """Run every check and explain each finding (why it matters, the fix), then the value.

    Without a loss, infers the task from the data and recommends a loss with the command to run.
    """
    _start_torch_import()
    from losscli import options as loss_options
    from losscli.render import View

    loss, inputs = _loss_first(inputs, loss)
    chosen, budget, saved = _checked_run(run)
    recommendation = None
    cache: dict[str, Any] = {}
    if loss is not None:
        spec = _resolve_loss(loss)
        resolved = loss_options.resolve(spec, given)
        invocation = _invocation(spec, inputs, given, run)
    else:
        recommendation = _infer_task(inputs, run.stdin_format, budget, cache, chosen, run.no_color)
        spec = _resolve_loss(recommendation.loss)
        typed = {k: v for k, v in given.items() if v is not None}
        chosen_options = {**dict(recommendation.options), **typed}
        try:
            resolved = loss_options.resolve(spec, chosen_options)
        except UsageError as error:
            raise UsageError(
                f"{error.message} (the inferred loss; give the loss first to choose one: "
                "losscli debug LOSS INPUT...)"
            ) from None
        invocation = _invocation(spec, inputs, chosen_options, run)
    gates = _gates(spec.name, run, saved)
    report = _evaluated(invocation, resolved, run, budget, cache=cache)
    if recommendation is not None:
        recommendation = _verified_recommendation(recommendation, report, invocation, cache, budget)
    view = View(
        run.all_values, run.top, _tripped(report, gates), debug=True, recommendation=recommendation
    )
    _write(_rendered(report, chosen, view), run.no_color)
    _finish(report, gates)


def _loss_first(arguments: list[str], option: str | None) -> tuple[str | None, list[str]]:
    """``debug [LOSS] INPUT...``: the loss (positional or ``--loss``) and the INPUTs.

    A first argument that names a loss (any name, alias or torch name) and is no existing
    file is the loss; one that looks like a misspelled loss name (a bare word, no file of
    that name, a suggestion found) is refused with the suggestion rather than read as a
    missing file.

    Raises:
        UsageError: the loss is given both ways and they differ, or the first argument is
            a misspelled loss name.
    """
    first, rest = (arguments[0], arguments[1:]) if arguments else ("", [])
    if not arguments or os.path.lexists(first):
        return option, arguments
    named = losses.get(first)
    if named is not None and not rest:
        raise UsageError(
            f"'{first}' is a loss; give the inputs after it: losscli debug {first} INPUT..."
        )
    if named is None:
        if _misspelled_loss(first):
            _resolve_loss(first)  # raises, with the suggestion
        return option, arguments
    if option is not None and _resolve_loss(option) is not named:
        raise UsageError(
            f"two losses given: '{first}' and --loss '{option}'; give one "
            f"(losscli debug LOSS INPUT...)"
        )
    return first, rest


def _misspelled_loss(word: str) -> bool:
    """A bare word (no path, selector, suffix of a format losscli reads) very close to a
    loss name."""
    import re

    from losscli.loaders import supported_suffixes

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", word):
        return False
    if os.path.splitext(word)[1].lower() in supported_suffixes():
        return False
    found = losses.closest(word)
    return found is not None and found[1] >= _MISSPELLED


# how close (losses.closest) a first argument of debug must be to a loss name to be read as
# its misspelling: 'MSELos' (0.92) and 'msee' (0.86) are; 'logits' (0.8 to bce-logits) and
# 'labels' are missing files
_MISSPELLED = 0.85


@dataclasses.dataclass(frozen=True)
class _Task:
    """The task ``compare`` without ``-l`` inferred, and the losses that fit it.

    Attributes:
        recommendation: what :func:`losscli.inference.infer` made of the inputs.
        losses: the losses to compare, the recommended one first.
    """

    recommendation: Any
    losses: tuple[str, ...]


def _task_to_compare(
    inputs: list[str], stdin_format: str, budget: int, cache: dict[str, Any]
) -> _Task:
    """The inferred task and its losses (:func:`losscli.inference.fitting_losses`).

    Raises:
        UsageError: no task can be told from the inputs, or the targets are missing.
    """
    from losscli import inference

    recommendation, heads = _recommendation(
        inputs,
        stdin_format,
        budget,
        cache,
        "compare without -l",
        "pass the losses to compare: -l LOSS (repeat: -l mse -l l1)",
    )
    if not recommendation.complete:
        raise UsageError(
            f"compare without -l needs the targets too ({inputs[0]} alone reads as "
            f"{recommendation.task}); give them, or pass -l LOSS (repeat: -l mse -l l1)"
        )
    losses_that_fit = inference.fitting_losses(recommendation, [a.values for a in heads])
    return _Task(recommendation, tuple(losses_that_fit))


def _typed(given: dict[str, Any]) -> dict[str, Any]:
    """The loss options the user typed (None means not given)."""
    return {name: value for name, value in given.items() if value is not None}


def _verified_recommendation(
    recommendation: Any, report: Report, invocation: Any, cache: dict[str, Any], budget: int
) -> Any:
    """The inferred loss's command, with the verified fixes of its findings applied.

    The recommended command never repeats a mistake the checks found when a fix clears it
    (:func:`losscli.fixes.recommended`); it is what running it prints.
    """

    from losscli import fixes

    streamed = "streaming" in report.extra
    best, outcome = fixes.recommended(report, invocation, None if streamed else cache, budget)
    return dataclasses.replace(
        recommendation, loss=best.loss, command=best.command(), verified=outcome
    )


def _recommendation(
    inputs: list[str],
    stdin_format: str,
    budget: int,
    cache: dict[str, Any],
    command: str,
    instead: str,
) -> tuple[Any, list[Any]]:
    """The task inferred from the first samples of 1 to 4 INPUTs, and those samples.

    Inputs loaded whole go into ``cache`` for the evaluation.

    Args:
        inputs: the INPUT arguments.
        stdin_format: the format of ``-``.
        budget: the memory budget in bytes.
        cache: INPUT text → array loaded whole.
        command: what is inferring, for the messages (``debug without a loss``).
        instead: how to name the loss instead, for the messages.

    Raises:
        UsageError: not 1 to 4 inputs, or no task fits their shapes and values.
    """
    from losscli import chunks, inference

    if not 1 <= len(inputs) <= 4:
        raise UsageError(
            f"{command} takes 1 to 4 inputs (predictions, targets), got {len(inputs)}; "
            f"{instead} (losscli list shows the catalogue)"
        )
    heads = chunks.heads(inputs, budget, stdin_format, cache)
    recommendation = inference.infer([a.values for a in heads], inputs)
    if recommendation is None:
        shapes = " and ".join(f"{a.source} {tuple(a.values.shape)}" for a in heads)
        raise UsageError(
            f"cannot tell the task from {shapes}; {instead} (losscli list shows the catalogue)"
        )
    return recommendation, heads


def _infer_task(
    inputs: list[str],
    stdin_format: str,
    budget: int,
    cache: dict[str, Any],
    chosen: OutputFormat,
    no_color: bool,
) -> Any:
    """Infer the task from the first samples of 1 to 4 INPUTs (UsageError when it cannot).

    Inputs loaded whole go into ``cache`` for the evaluation. With predictions alone the
    recommendation is the whole answer: it is written here and the command exits 0.
    """
    from losscli.render import debug as render_debug
    from losscli.render import json_text

    recommendation, heads = _recommendation(
        inputs,
        stdin_format,
        budget,
        cache,
        "debug without a loss",
        "give the loss first: losscli debug LOSS INPUT...",
    )
    if recommendation.complete:
        return recommendation
    from losscli.report import InputInfo

    first = cache.get(inputs[0], heads[0])
    info = {"input": InputInfo(first.source, tuple(first.values.shape), str(first.values.dtype))}
    if chosen in (OutputFormat.json, OutputFormat.ndjson):
        record = render_debug.recommendation_record(recommendation, info)
        _out(json_text(record) + "\n")
    elif chosen is OutputFormat.table:  # no report, so no rows or annotations
        _print(render_debug.render_recommendation_only(recommendation, info), no_color)
    else:  # csv and github carry no advice: it goes to the reader
        with contextlib.suppress(OSError, ValueError, AttributeError):
            _stderr_console().print(render_debug.render_recommendation_only(recommendation, info))
    raise typer.Exit(0)


@app.command(
    cls=_FlagHelpCommand,
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
    output_format: CatalogueFormat = None,
    no_color: NoColor = False,
) -> None:
    """Explain a loss (formula, inputs, options, per-sample rule, pitfalls) or a finding."""
    from losscli import findings
    from losscli.render import explain as render_explain
    from losscli.render import json_text

    chosen = _default_format(output_format, CATALOGUE_FORMATS)
    record: dict[str, Any]
    if name is None:
        record, view = render_explain.index_record(), render_explain.render_index()
    elif (spec := losses.get(name)) is not None:
        record, view = render_explain.loss_record(spec), render_explain.render_loss(spec)
    elif (doc := findings.CATALOGUE.get(name.strip().lower().replace("_", "-"))) is not None:
        record, view = render_explain.finding_record(doc), render_explain.render_finding(doc)
    else:
        guess = _closest_topic(name, list(findings.CATALOGUE))
        hint = f"did you mean '{guess}'? " if guess else ""
        raise UsageError(
            f"'{name}' is neither a loss nor a finding; {hint}run 'losscli explain' for the list"
        )
    if chosen is OutputFormat.json:
        _out(json_text(record) + "\n")
    elif chosen is OutputFormat.ndjson:
        from losscli.render import ndjson

        _out(ndjson.render(render_explain.record_lines(record)))
    else:
        _print(view, no_color)


def _closest_topic(name: str, finding_names: list[str]) -> str | None:
    """What a name ``explain`` does not know most likely means: a finding it is close to, a
    loss (by any of its names, :func:`losscli.losses.suggest`), or a finding it is a word of
    ('broadcast' → silent-broadcast); the closer of a finding and a loss wins."""
    import difflib

    typed = name.strip().lower().replace("_", "-")
    close = difflib.get_close_matches(typed, finding_names, n=1, cutoff=0.6)
    finding = (close[0], difflib.SequenceMatcher(None, typed, close[0]).ratio()) if close else None
    loss = losses.closest(name)
    best = max((c for c in (finding, loss) if c is not None), key=lambda c: c[1], default=None)
    if best is not None:
        return best[0]
    return next((finding for finding in finding_names if typed and typed in finding), None)
