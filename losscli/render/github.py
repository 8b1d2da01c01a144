"""GitHub renderer: findings as workflow annotations (``::error title=...::message``).

The format is GitHub Actions' workflow command syntax: data is escaped ``%`` → ``%25``,
CR → ``%0D``, LF → ``%0A``; property values (the title) also ``:`` → ``%3A`` and ``,`` → ``%2C``.
"""

from __future__ import annotations

from collections.abc import Sequence

from losscli.findings import Finding, Severity
from losscli.printable import printable
from losscli.render import Rendered, View
from losscli.report import Entry, Report

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (other control characters as visible escapes)."""
    encoded = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return printable(encoded)


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (``title=...``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(command: str, title: str, message: str) -> str:
    """One workflow command line: ``::command title=...::message``."""
    return f"::{command} title={escape_property(title)}::{escape_data(message)}"


def finding_line(item: Finding, loss: str | None = None) -> str:
    """A finding as an ``::error``, ``::warning`` or ``::notice`` annotation.

    Args:
        item: the finding.
        loss: the loss name, put in the title when several losses share one log (compare).
    """
    title = f"losscli {loss} {item.name}" if loss else f"losscli {item.name}"
    fix = item.fix_text()
    message = f"{item.message} — fix: {fix}" if fix else item.message
    return annotation(_COMMAND[item.severity], title, message)


def value_line(report: Report) -> str:
    """The final ``::notice`` with the loss value (or why there is none)."""
    spec = report.spec
    computation = report.computation
    if computation is None:
        errors = sum(1 for f in report.findings if f.severity is Severity.ERROR)
        message = f"{spec.name} could not be computed: {errors} error finding(s)"
    elif computation.value is None:
        message = f"{spec.name} with reduction none: {computation.summary['n']} per-sample losses"
    else:
        message = f"{spec.name} = {computation.value!r} ({spec.torch_class}, {computation.dtype})"
    return annotation("notice", f"losscli {spec.name}", message)


def gate_line(reason: str, loss: str | None = None) -> str:
    """A CI gate that tripped (exit 1), as an ``::error`` annotation."""
    return annotation("error", f"losscli {loss} gate" if loss else "losscli gate", reason)


def render(report: Report, loss_in_title: bool = False, tripped: Sequence[str] = ()) -> str:
    """Every finding (errors first), each tripped gate, then the value notice, one per line.

    Args:
        report: what to annotate.
        loss_in_title: name the loss in every title (several losses share one log).
        tripped: the gates the report trips, as sentences.
    """
    name = report.spec.name if loss_in_title else None
    ordered = sorted(report.findings, key=lambda f: -f.severity.rank)
    lines = [finding_line(item, name) for item in ordered]
    lines.extend(gate_line(reason, name) for reason in tripped)
    lines.append(value_line(report))
    return "".join(line + "\n" for line in lines)


def report(report: Report, view: View) -> Rendered:
    """Every finding and tripped gate as an annotation, then the value notice."""
    return Rendered(text=render(report, tripped=view.tripped.get(report.spec.name, [])))


def comparison(entries: Sequence[Entry], view: View) -> Rendered:
    """Each loss's annotations, titled with the loss."""
    from losscli.render import compare

    notes = (compare.task_line(view.task),) if view.task else ()
    return Rendered(text=compare.render_github(list(entries), view.tripped), notes=notes)
