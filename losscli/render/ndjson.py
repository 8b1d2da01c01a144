"""NDJSON renderer: one JSON object per line (a report per loss), for pipelines and batch use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from losscli.render import Rendered, View, json_text
from losscli.report import Entry, Report


def render(records: Iterable[dict[str, Any]]) -> str:
    """Each record as one line of JSON, newline-terminated; NaN/Inf are refused, never written."""
    return "".join(json_text(record) + "\n" for record in records)


def report(report: Report, view: View) -> Rendered:
    """One report is one line: the JSON object."""
    from losscli.render import json as render_json

    return Rendered(text=render([render_json.record(report, view)]))


def comparison(entries: Sequence[Entry], view: View) -> Rendered:
    """One line per loss."""
    from losscli.render import compare

    return Rendered(text=render(compare.records(list(entries), view.all_values, view.task)))
