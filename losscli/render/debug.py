"""Debug renderer: every finding as a panel (what, evidence, why it matters, fix), then the value.

Pure: a Report (and the inferred :class:`~losscli.inference.Recommendation`, if any) in,
a Rich renderable or a JSON-ready dict out. The *why* comes from the finding's catalogue
record, the same text ``losscli explain NAME`` shows.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from losscli.findings import CATALOGUE, Finding, Severity
from losscli.inference import Recommendation
from losscli.render import table
from losscli.report import SCHEMA_VERSION, InputInfo, Report
from losscli.text import shape_text

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
# evidence values longer than this are cut (positions lists, weights)
_EVIDENCE_WIDTH = 100


def prose(text: str, style: str = "") -> Text:
    """Catalogue text with its `code` spans shown as code (backticks dropped)."""
    rendered = Text(style=style)
    for index, part in enumerate(text.split("`")):
        rendered.append(part, style="bold cyan" if index % 2 else "")
    return rendered


def _rounded(value: Any) -> Any:
    """Floats to 6 significant digits (float32 values read back as 3.0999999046325684)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _evidence_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_rounded(value), default=str)
    return text if len(text) <= _EVIDENCE_WIDTH else text[: _EVIDENCE_WIDTH - 1] + "…"


def finding_panel(item: Finding, numbers: dict[str, int] | None = None) -> Panel:
    """One finding: what was seen, the evidence, why it matters, and the fix.

    Warnings and errors carry the catalogue's *Why it matters*; info findings (casts,
    counts) stay short.
    """
    style = _STYLE[item.severity]
    doc = CATALOGUE.get(item.name)
    body: list[RenderableType] = [Text(item.message)]
    if item.evidence:
        evidence = Text("evidence: ", style="bold")
        evidence.append(
            "  ".join(f"{key}={_evidence_value(value)}" for key, value in item.evidence.items()),
            style="dim",
        )
        body.append(evidence)
    # info findings are notes (a cast, a count): the why is one `losscli explain` away
    if doc is not None and doc.why and item.severity is not Severity.INFO:
        body.append(Text.assemble(("why it matters: ", "bold"), prose(doc.why)))
    fix = item.fix or (doc.instead if doc is not None else "")
    if fix:
        body.append(Text.assemble(("fix: ", "bold green"), prose(fix)))
    body.extend(table.fix_lines(item, numbers or table.command_numbers([item])))
    if item.blocking:
        body.append(Text("torch was not called: the inputs cannot work as given", style="dim"))
    title = Text.assemble((item.severity.value, style), " ", (item.name, "bold"))
    return Panel(
        Group(*body),
        title=title,
        title_align="left",
        subtitle=Text(f"losscli explain {item.name}", style="dim"),
        subtitle_align="right",
        border_style=style,
        box=box.ROUNDED,
    )


def recommendation_panel(recommendation: Recommendation) -> Panel:
    """What the data looks like and the loss to run."""
    body: list[RenderableType] = [
        Text.assemble(
            ("task: ", "bold"),
            recommendation.task,
            "   ",
            ("loss: ", "bold"),
            (recommendation.loss, "bold green"),
        ),
        Text(recommendation.reason),
        Text.assemble(("run: ", "bold"), (recommendation.command, "bold")),
    ]
    if recommendation.verified is not None:
        body.append(Text.assemble(("gives: ", "bold"), recommendation.verified.text()))
    if recommendation.complete:
        body.append(
            Text(
                f"checked below as {recommendation.loss}; name a loss first to choose another (losscli debug LOSS INPUT...)",
                style="dim",
            )
        )
    else:
        body.append(Text("give the targets to check the inputs and compute the loss", style="dim"))
    return Panel(
        Group(*body),
        title=Text("inferred task", style="bold"),
        title_align="left",
        box=box.ROUNDED,
    )


def _summary_line(report: Report) -> Text:
    counts = {severity: 0 for severity in Severity}
    for item in report.findings:
        counts[item.severity] += 1
    if not report.findings:
        return Text(f"no findings: the inputs look right for {report.spec.name}", style="green")
    parts = [
        f"{counts[s]} {s.value}{'s' if counts[s] != 1 else ''}"
        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        if counts[s]
    ]
    return Text(f"{report.spec.name}: " + ", ".join(parts), style="bold")


def _value_panel(report: Report) -> Panel:
    """The value (table's panel), or why there is none: the findings are above, in debug."""
    if report.computation is not None:
        return table.value_panel(report)
    lines: list[RenderableType] = [
        Text.assemble(
            (report.spec.name, "bold"),
            " could not be computed: fix the blocking findings above",
        )
    ]
    for name, info in report.inputs.items():
        lines.append(
            Text(f"{name:<14} {info.source}  {shape_text(info.shape)} {info.dtype}", style="dim")
        )
    return Panel(Group(*lines), box=box.ROUNDED, expand=False)


def render(
    report: Report, recommendation: Recommendation | None = None, top: int = 5
) -> RenderableType:
    """The debug view: inferred task, findings (errors first), then the value."""
    parts: list[RenderableType] = []
    if recommendation is not None:
        parts.append(recommendation_panel(recommendation))
    parts.append(_summary_line(report))
    numbers = table.command_numbers(report.findings)
    parts.extend(finding_panel(item, numbers) for item in table.shown_order(report.findings))
    parts.append(_value_panel(report))
    per_sample = table.per_sample_table(report, top)
    if per_sample is not None:
        parts.append(per_sample)
    return Group(*parts)


def render_recommendation_only(
    recommendation: Recommendation, inputs: dict[str, InputInfo]
) -> RenderableType:
    """Predictions alone: what they look like and the command to run with the targets."""
    lines = [
        Text(f"{name:<14} {info.source}  {shape_text(info.shape)} {info.dtype}", style="dim")
        for name, info in inputs.items()
    ]
    return Group(recommendation_panel(recommendation), *lines)


def recommendation_record(
    recommendation: Recommendation, inputs: dict[str, InputInfo]
) -> dict[str, Any]:
    """JSON when there is no report (predictions alone): the recommendation and the inputs."""
    return {
        "schema_version": SCHEMA_VERSION,
        "loss": None,
        "value": None,
        "inputs": {name: info.to_dict() for name, info in inputs.items()},
        "findings": [],
        "recommended": recommendation.to_dict(),
    }
