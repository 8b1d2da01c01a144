"""Comparison renderers: several losses on the same inputs, side by side (table, JSON, CSV, GitHub)."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from losscli.findings import Severity
from losscli.render import github, json_text
from losscli.render.json import report_dict
from losscli.render.table import UnbrokenLine, number
from losscli.report import SCHEMA_VERSION, Entry

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def entry_dict(entry: Entry, all_values: bool = False) -> dict[str, Any]:
    """One loss as the compute JSON object; a loss that could not run has ``error`` and ``value: null``."""
    if entry.report is not None:
        return report_dict(entry.report, all_values)
    return {
        "schema_version": SCHEMA_VERSION,
        "loss": entry.spec.name,
        "torch": entry.spec.torch_class,
        "options": {},
        "value": None,
        "dtype": None,
        "inputs": {},
        "per_sample": None,
        "per_sample_summary": None,
        "gradient": {},
        "findings": [],
        "error": entry.error,
    }


def records(entries: list[Entry], all_values: bool = False, task: str = "") -> list[dict[str, Any]]:
    """One JSON-ready dict per loss, in the order compared (the NDJSON lines); each has
    ``task`` when the losses are those of an inferred task."""
    found = [entry_dict(entry, all_values) for entry in entries]
    return [{**record, "task": task} for record in found] if task else found


def render_json(entries: list[Entry], all_values: bool = False, task: str = "") -> str:
    """One JSON object: ``{"schema_version": 1, "task": ..., "losses": [compute object, ...]}``;
    ``task`` is the inferred task whose losses are compared, or null when they were named."""
    return json_text(
        {
            "schema_version": SCHEMA_VERSION,
            "task": task or None,
            "losses": records(entries, all_values),
        }
    )


def task_line(task: str) -> str:
    """What the table, CSV and GitHub outputs say when the losses are those of a task."""
    return f"task: {task}, inferred from the data; -l LOSS chooses other losses"


def _gradient_norm(entry: Entry) -> float | None:
    """The norm over every gradient tensor together (sqrt of the sum of squared norms)."""
    computation = entry.report.computation if entry.report is not None else None
    summaries = computation.gradient_summaries if computation is not None else {}
    if not summaries:
        return None
    norms = [summary["norm"] for summary in summaries.values()]
    if any(n is None for n in norms):
        return float("nan")
    return float(sum(n * n for n in norms) ** 0.5)


def _short(value: float | None) -> str:
    """4 significant digits: the summary columns are for comparing, JSON has every digit."""
    if value is None:
        return "-"
    return f"{value:.4g}"


def _summary(entry: Entry) -> dict[str, Any]:
    computation = entry.report.computation if entry.report is not None else None
    if computation is None:
        return {}
    return computation.summary


def _findings_cell(entry: Entry) -> Text:
    if entry.report is None:
        return Text("-", style="dim")
    counts = {s: sum(1 for f in entry.report.findings if f.severity is s) for s in Severity}
    parts = [
        (f"{counts[s]} {s.value}", _STYLE[s])
        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        if counts[s]
    ]
    if not parts:
        return Text("none", style="green")
    text = Text()
    for index, (label, style) in enumerate(parts):
        if index:
            text.append(", ")
        text.append(label, style=style)
    return text


def _value_cell(entry: Entry) -> Text:
    if entry.report is None:
        return Text("no fit", style="bold red")
    computation = entry.report.computation
    if computation is None:
        return Text("blocked", style="bold red")
    if computation.value is None:
        return Text("(none)", style="dim")
    return Text(number(computation.value), style="bold")


# a width no terminal has: a layout measured in it shows its natural width
_UNBOUNDED = 10_000


class FirstThatFits:
    """The first layout that fits the width unwrapped, else the last one.

    Args:
        layouts: Rich renderables, the preferred first; the last should fit any width.
    """

    def __init__(self, *layouts: RenderableType) -> None:
        self.layouts = layouts

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for layout in self.layouts[:-1]:
            natural = Measurement.get(console, options.update_width(_UNBOUNDED), layout)
            if natural.maximum <= options.max_width:
                yield layout
                return
        yield self.layouts[-1]


def _stacked(entries: list[Entry]) -> RenderableType:
    """The comparison one loss a line, for terminals too narrow for the table: each
    ``name value`` and ``column value`` pair stays whole, the line breaks between pairs."""
    lines: list[RenderableType] = [
        Text("losses on the same inputs (mean, p50, max: per-sample)", style="italic")
    ]
    for entry in entries:
        summary = _summary(entry)
        lines.append(Text.assemble((entry.spec.name, "bold"), " ", _value_cell(entry)))
        pairs = [f"{key} {_short(summary.get(key))}" for key in ("mean", "p50", "max")]
        pairs.append(f"‖grad‖ {_short(_gradient_norm(entry))}")
        pairs.append(f"findings: {_findings_cell(entry).plain}")
        lines.append(UnbrokenLine(pairs, style="", indent=2))
    return Group(*lines)


def render_table(entries: list[Entry], task: str = "") -> RenderableType:
    """The Rich view: one row per loss, then each loss's errors and warnings in one line each;
    first the inferred task, when the losses are those that fit it."""
    table = Table(
        title="losses on the same inputs (mean, p50, max: per-sample)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("loss", no_wrap=True, overflow="ellipsis", max_width=24)
    for column in ("value", "mean", "p50", "max", "‖grad‖"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("findings", min_width=9)
    for entry in entries:
        summary = _summary(entry)
        table.add_row(
            Text(entry.spec.name, style="bold"),
            _value_cell(entry),
            _short(summary.get("mean")),
            _short(summary.get("p50")),
            _short(summary.get("max")),
            _short(_gradient_norm(entry)),
            _findings_cell(entry),
        )
    parts: list[RenderableType] = [FirstThatFits(table, _stacked(entries))]
    inputs = next((e.report.inputs for e in entries if e.report is not None), None)
    if inputs:
        sources = "  ".join(f"{name}={info.source}" for name, info in inputs.items())
        parts.insert(0, Text(f"inputs: {sources}", style="dim"))
    if task:
        parts.insert(0, Text(task_line(task), style="bold"))
    for entry in entries:
        if entry.report is None:
            parts.append(
                Text.assemble((f"{entry.spec.name}: ", "bold"), (entry.error or "", "red"))
            )
            continue
        for item in sorted(entry.report.findings, key=lambda f: -f.severity.rank):
            if item.severity is Severity.INFO:
                continue
            line = Text.assemble(
                (f"{entry.spec.name}: ", "bold"),
                (f"{item.severity.value} {item.name}", _STYLE[item.severity]),
                f" {item.message}",
            )
            if item.fix_text():
                line.append(f" (fix: {item.fix_text()})", style="dim")
            parts.append(line)
    if any(e.report is not None and e.report.findings for e in entries):
        parts.append(Text("losscli compute LOSS INPUT... shows one loss in full", style="dim"))
    return Group(*parts)


CSV_HEADER = [
    "loss",
    "value",
    "n",
    "mean",
    "p50",
    "max",
    "gradient_norm",
    "errors",
    "warnings",
    "infos",
    "error",
]


def render_csv(entries: list[Entry]) -> str:
    """One row per loss: value, per-sample summary, gradient norm, finding counts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for entry in entries:
        summary = _summary(entry)
        findings = entry.report.findings if entry.report is not None else ()
        value = entry.report.value if entry.report is not None else None
        norm = _gradient_norm(entry)
        writer.writerow(
            [
                entry.spec.name,
                "" if value is None else repr(value),
                summary.get("n", ""),
                *(
                    "" if summary.get(k) is None else repr(summary[k])
                    for k in ("mean", "p50", "max")
                ),
                "" if norm is None else repr(norm),
                *(
                    sum(1 for f in findings if f.severity is s)
                    for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
                ),
                entry.error or "",
            ]
        )
    return out.getvalue()


def render_github(entries: list[Entry], tripped: dict[str, list[str]] | None = None) -> str:
    """Each loss's findings and tripped gates as annotations titled with the loss, then its value.

    Args:
        entries: the compared losses.
        tripped: loss name → the gates it trips, as sentences.
    """
    lines: list[str] = []
    for entry in entries:
        if entry.report is None:
            message = f"could not run: {entry.error}"
            lines.append(github.annotation("error", f"losscli {entry.spec.name}", message))
            continue
        gates = (tripped or {}).get(entry.spec.name, [])
        lines.append(github.render(entry.report, loss_in_title=True, tripped=gates).rstrip("\n"))
    return "".join(line + "\n" for line in lines)
