"""Table renderer: the Rich view for a person (value, worst samples, gradient, findings)."""

from __future__ import annotations

import math

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from losscli.findings import Finding, Severity
from losscli.report import Report, gradient_summary, per_sample_summary

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
# gradients with at most this many elements are shown value by value
_SHOW_GRADIENT_VALUES = 12


def number(value: float | None) -> str:
    """A float for people: 6 significant digits, NaN/Inf spelled out."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def _shape(shape: tuple[int, ...] | list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


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
        lines.append(
            Text(f"{name:<14} {info.source}  {_shape(info.shape)} {info.dtype}", style="dim")
        )
    if computation is not None and computation.streamed:
        lines.append(Text("streamed: accumulated chunk by chunk in float64", style="dim"))
    return Panel(Group(*lines), box=box.ROUNDED, expand=False)


def per_sample_table(report: Report, top: int) -> RenderableType | None:
    computation = report.computation
    if computation is None:
        return None
    per_sample = computation.per_sample
    summary = per_sample_summary(per_sample)
    order = np.argsort(np.where(np.isnan(per_sample), np.inf, per_sample), kind="stable")[::-1][
        :top
    ]
    table = Table(
        title=f"per-sample loss: worst {len(order)} of {summary['n']}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("rank", justify="right")
    table.add_column("sample", justify="right")
    table.add_column("loss", justify="right")
    ignored = computation.ignored
    for rank, index in enumerate(order, start=1):
        note = " (ignored)" if ignored is not None and ignored[index] else ""
        table.add_row(str(rank), str(int(index)), number(float(per_sample[index])) + note)
    stats = "  ".join(
        f"{key} {number(summary[key])}" for key in ("mean", "p50", "p90", "p99", "max")
    )
    rule = ""
    if computation.denominator is not None and computation.value is not None:
        rule = f"  value = sum / {number(computation.denominator)}"
    return Group(table, Text(f"  {stats}{rule}", style="dim"))


def gradient_table(report: Report) -> RenderableType | None:
    computation = report.computation
    if computation is None or not computation.gradients:
        return None
    table = Table(title="gradient d(loss)/d(input)", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("tensor", "shape", "norm", "max |g|", "zero", "non-finite"):
        table.add_column(column, justify="left" if column == "tensor" else "right")
    extra: list[RenderableType] = []
    for name, gradient in computation.gradients.items():
        summary = gradient_summary(gradient)
        table.add_row(
            name,
            _shape(summary["shape"]),
            number(summary["norm"]),
            number(summary["max_abs"]),
            f"{summary['zero_fraction']:.1%}",
            str(summary["non_finite"]),
        )
        if gradient.size <= _SHOW_GRADIENT_VALUES:
            values = ", ".join(number(float(v)) for v in np.asarray(gradient).reshape(-1))
            extra.append(Text(f"  {name}: [{values}]", style="dim"))
    return Group(table, *extra)


def finding_panel(item: Finding) -> Panel:
    style = _STYLE[item.severity]
    body: list[RenderableType] = [Text(item.message)]
    if item.fix:
        body.append(Text.assemble(("fix: ", "bold"), item.fix))
    title = Text.assemble((f"{item.severity.value}", style), " ", (item.name, "bold"))
    return Panel(Group(*body), title=title, title_align="left", border_style=style, box=box.ROUNDED)


def findings_view(
    findings: tuple[Finding, ...] | list[Finding], show_info: bool = True
) -> RenderableType | None:
    shown = [f for f in findings if show_info or f.severity is not Severity.INFO]
    if not shown:
        return None
    ordered = sorted(shown, key=lambda f: -f.severity.rank)
    return Group(*[finding_panel(f) for f in ordered])


def render(report: Report, top: int = 10) -> RenderableType:
    """The whole Rich view of one report."""
    parts = [
        value_panel(report),
        per_sample_table(report, top),
        gradient_table(report),
        findings_view(report.findings),
    ]
    return Group(*[p for p in parts if p is not None])
