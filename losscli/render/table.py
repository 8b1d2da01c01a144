"""Table renderer: the Rich view for a person (value, worst samples, gradient, findings)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from losscli.findings import Finding, Severity
from losscli.render import Rendered, View, charts
from losscli.report import Entry, Report
from losscli.text import shape_text

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
# gradients with at most this many elements are shown value by value
_SHOW_GRADIENT_VALUES = 12
# a per-sample histogram needs at least this many samples to say more than the table
_HISTOGRAM_MIN_SAMPLES = 5


def number(value: float | None) -> str:
    """A float for people: 6 significant digits, NaN/Inf spelled out."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def value_panel(report: Report) -> Panel:
    spec = report.spec
    computation = report.computation
    if computation is None:
        headline = Text.assemble(
            (f"{spec.name}", "bold"), " could not be computed: see the findings below"
        )
    elif computation.value is None:
        headline = Text.assemble(
            (f"{spec.name}", "bold"), " with reduction none: per-sample losses below"
        )
    else:
        headline = Text.assemble(
            (f"{spec.name} = ", "bold"), (number(computation.value), "bold green")
        )
    lines: list[RenderableType] = [headline]
    options = ", ".join(f"{k}={v}" for k, v in report.options.items() if v is not None)
    dtype = f" in {computation.dtype}" if computation is not None else ""
    lines.append(Text(f"{spec.torch_class}({options}){dtype}", style="dim"))
    for name, info in report.inputs.items():
        shards = f"  {info.shards.count} shards" if info.shards is not None else ""
        lines.append(
            Text(
                f"{name:<14} {info.source}  {shape_text(info.shape)} {info.dtype}{shards}",
                style="dim",
            )
        )
    if computation is not None and computation.streamed:
        lines.append(Text(f"streamed: {_accumulated(report)} in float64", style="dim"))
    return Panel(Group(*lines), box=box.ROUNDED, expand=False)


def _accumulated(report: Report) -> str:
    """How the value was accumulated: chunk by chunk, or shard by shard (and where)."""
    engine = report.extra.get("engine")
    if engine is None:
        return "accumulated chunk by chunk"
    if engine["engine"] == "dask":
        workers = engine["workers"]
        return f"shards computed on Dask ({workers} worker{'s' if workers != 1 else ''}), merged"
    return "accumulated shard by shard, chunk by chunk"


def per_sample_table(report: Report, top: int) -> RenderableType | None:
    computation = report.computation
    if computation is None:
        return None
    summary = computation.summary
    worst = list(computation.worst[:top])
    title = f"per-sample loss: worst {len(worst)} of {summary['n']}"
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        min_width=len(title) + 2,  # the title on one line, however narrow the columns
    )
    table.add_column("rank", justify="right")
    table.add_column("sample", justify="right")
    table.add_column("loss", justify="right")
    ignored = computation.ignored if computation.complete else None
    for rank, (index, loss) in enumerate(worst, start=1):
        marked = ignored is not None and index < ignored.size and bool(ignored[index])
        note = " (ignored)" if marked else ""
        table.add_row(str(rank), str(index), number(loss) + note)
    stats = [f"{key} {number(summary[key])}" for key in ("mean", "p50", "p90", "p99", "max")]
    if computation.denominator is not None and computation.value is not None:
        stats.append(f"value = sum / {number(computation.denominator)}")
    return Group(table, UnbrokenLine(stats))


class UnbrokenLine:
    """Parts two spaces apart on one indented line, or on as many lines as the width needs:
    a narrow terminal breaks the line between parts, never inside one (``value =`` /
    ``sum / 12``).

    Args:
        parts: the pieces of text that must each stay on one line.
        style: the Rich style of the whole line.
        indent: spaces before each line.
    """

    def __init__(self, parts: Sequence[str], style: str = "dim", indent: int = 2) -> None:
        self.parts = list(parts)
        self.style = style
        self.indent = indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines: list[str] = []
        for part in self.parts:
            joined = f"{lines[-1]}  {part}" if lines else ""
            if lines and self.indent + len(joined) <= options.max_width:
                lines[-1] = joined
            else:
                lines.append(part)
        for line in lines:
            yield Text(" " * self.indent + line, style=self.style, overflow="fold")


def gradient_table(report: Report) -> RenderableType | None:
    computation = report.computation
    if computation is None or not computation.gradient_summaries:
        return None
    table = Table(title="gradient d(loss)/d(input)", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("tensor", "shape", "norm", "max |g|", "zero", "non-finite"):
        table.add_column(column, justify="left" if column == "tensor" else "right")
    extra: list[RenderableType] = []
    for name, summary in computation.gradient_summaries.items():
        gradient = computation.gradients.get(name, np.empty(0))
        table.add_row(
            name,
            shape_text(summary["shape"]),
            number(summary["norm"]),
            number(summary["max_abs"]),
            f"{summary['zero_fraction']:.1%}",
            str(summary["non_finite"]),
        )
        if 0 < gradient.size <= _SHOW_GRADIENT_VALUES:
            values = ", ".join(number(float(v)) for v in np.asarray(gradient).reshape(-1))
            extra.append(Text(f"  {name}: [{values}]", style="dim"))
    return Group(table, *extra)


def loss_histogram(report: Report) -> RenderableType | None:
    """Histogram of the per-sample losses (ignored samples left out).

    Every per-sample loss when they were kept; otherwise the accumulated uniform sample of
    them (every finite one up to 2^20 samples), and the title says so.
    """
    computation = report.computation
    if computation is None or computation.summary.get("n", 0) < _HISTOGRAM_MIN_SAMPLES:
        return None
    if computation.complete:
        per_sample = computation.per_sample
        title = f"per-sample loss histogram ({per_sample.size} samples)"
        if computation.ignored is not None and computation.ignored.any():
            per_sample = per_sample[~computation.ignored]
            title = f"per-sample loss histogram ({per_sample.size} samples, ignored left out)"
        return charts.histogram_view(per_sample, title)
    sampled = computation.losses_sampled
    if computation.quantiles_exact:
        title = f"per-sample loss histogram ({sampled.size} finite samples)"
    else:
        title = f"per-sample loss histogram (a uniform sample of {sampled.size} samples)"
    return charts.histogram_view(sampled, title)


def gradient_histograms(report: Report) -> RenderableType | None:
    """Log-binned histograms of |gradient| for gradients too large to list value by value."""
    computation = report.computation
    if computation is None:
        return None
    views = [
        charts.histogram_view(gradient, f"|gradient| of {name} (log-spaced bins)", log=True)
        for name, gradient in computation.gradients.items()
        if gradient.size > _SHOW_GRADIENT_VALUES
    ]
    shown = [v for v in views if v is not None]
    return Group(*shown) if shown else None


def classes_view(report: Report) -> RenderableType | None:
    """Predicted (argmax) versus true class counts, for losses on class-index targets."""
    return None if report.classes is None else charts.class_counts_view(report.classes)


def shown_order(findings: Sequence[Finding]) -> list[Finding]:
    """The order the views show findings in: errors, then warnings, then info."""
    return sorted(findings, key=lambda f: -f.severity.rank)


def command_numbers(findings: Sequence[Finding]) -> dict[str, int]:
    """Each fix command a view shows → its footnote number, in the order shown (a command
    that fixes two findings keeps one number)."""
    numbers: dict[str, int] = {}
    for item in shown_order(findings):
        for fix in item.fixes:
            if fix.command is not None and fix.command not in numbers:
                numbers[fix.command] = len(numbers) + 1
    return numbers


def commands_text(numbers: dict[str, int], recommended: str | None = None) -> str:
    """The fixes' commands after the view, one unwrapped line each, ready to paste.

    A panel wraps long lines, and a wrapped command does not paste; plain lines after the
    view are wrapped by the terminal alone.
    """
    lines = [f"recommended: {recommended}"] if recommended else []
    lines += [f"[{number}] {command}" for command, number in numbers.items()]
    if not lines:
        return ""
    return "\n".join(["", "commands, one a line:", *lines]) + "\n"


def fix_lines(item: Finding, numbers: dict[str, int]) -> list[Text]:
    """Each fix of a finding: what was applied and what it gives; its command's number."""
    lines: list[Text] = []
    for fix in item.fixes:
        style = "green" if fix.verified is not None else "dim"
        line = Text.assemble("  ", (fix.outcome(), style))
        if fix.note:
            line.append(f" ({fix.note})", style="dim")
        if fix.command is not None:
            line.append(f" [{numbers[fix.command]}]", style="bold cyan")
        lines.append(line)
    return lines


def finding_panel(item: Finding, numbers: dict[str, int] | None = None) -> Panel:
    style = _STYLE[item.severity]
    body: list[RenderableType] = [Text(item.message)]
    if item.fix:
        body.append(Text.assemble(("fix: ", "bold"), item.fix))
    body.extend(fix_lines(item, numbers or command_numbers([item])))
    title = Text.assemble((f"{item.severity.value}", style), " ", (item.name, "bold"))
    return Panel(Group(*body), title=title, title_align="left", border_style=style, box=box.ROUNDED)


def findings_view(
    findings: tuple[Finding, ...] | list[Finding], show_info: bool = True
) -> RenderableType | None:
    shown = [f for f in findings if show_info or f.severity is not Severity.INFO]
    if not shown:
        return None
    numbers = command_numbers(findings)
    return Group(*[finding_panel(f, numbers) for f in shown_order(shown)])


def render(report: Report, top: int = 10) -> RenderableType:
    """The whole Rich view of one report."""
    parts = [
        value_panel(report),
        per_sample_table(report, top),
        loss_histogram(report),
        gradient_table(report),
        gradient_histograms(report),
        classes_view(report),
        findings_view(report.findings),
    ]
    return Group(*[p for p in parts if p is not None])


def report(report: Report, view: View) -> Rendered:
    """The compute view, or the debug view (each finding explained, then the value)."""
    numbers = command_numbers(report.findings)
    if view.debug:
        from losscli.render import debug

        recommendation = view.recommendation
        return Rendered(
            renderable=debug.render(report, recommendation, view.top),
            text=commands_text(numbers, recommendation.command if recommendation else None),
        )
    return Rendered(renderable=render(report, view.top), text=commands_text(numbers))


def comparison(entries: Sequence[Entry], view: View) -> Rendered:
    """One row per loss, then each loss's errors and warnings."""
    from losscli.render import compare

    return Rendered(renderable=compare.render_table(list(entries), view.task))
