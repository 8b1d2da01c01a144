"""JSON renderer: the stable, documented report object (SPEC.md's keys plus schema_version)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from losscli.render import Rendered, View, json_text
from losscli.report import SCHEMA_VERSION, Entry, Report

# per-sample lists and gradient values are included up to this many numbers (or --all-values)
SMALL = 1000
# the worst samples listed
WORST = 10


def finite_or_none(values: Any) -> Any:
    """Nested lists with NaN/Inf written as None (JSON null)."""
    if isinstance(values, list):
        return [finite_or_none(v) for v in values]
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _values(array: np.ndarray) -> Any:
    return finite_or_none(np.asarray(array, dtype=np.float64).tolist())


def report_dict(report: Report, all_values: bool = False) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    computation = report.computation
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "loss": report.spec.name,
        "torch": report.spec.torch_class,
        "options": report.options,
        "value": None,
        "dtype": computation.dtype if computation is not None else None,
        "inputs": {name: info.to_dict() for name, info in report.inputs.items()},
        "per_sample": None,
        "per_sample_summary": None,
        "gradient": {},
        "findings": [f.to_dict() for f in report.findings],
        "maps": list(report.maps),
        "streamed": "streaming" in report.extra,
    }
    for key in ("checks", "streaming"):  # what the checks saw; chunk size and count
        if report.extra.get(key) is not None:
            record[key] = report.extra[key]
    record.update(report.extra.get("engine") or {})  # sharded: where the shards were computed
    if report.classes is not None:
        record["classes"] = report.classes.to_dict()
    if computation is None:
        return record
    value = computation.value
    record["value"] = value if value is not None and math.isfinite(value) else None
    per_sample = computation.per_sample
    summary = computation.summary
    # a streamed computation keeps every per-sample value only when there are few of them
    if computation.complete and (all_values or per_sample.size <= SMALL):
        record["per_sample"] = _values(per_sample)
    record["per_sample_summary"] = summary
    record["worst"] = [
        {"sample": index, "loss": _float(loss)} for index, loss in computation.worst[:WORST]
    ]
    record["per_sample_rule"] = {
        "reduction": report.options.get("reduction", "mean"),
        "denominator": computation.denominator,
        "recover": "value = sum(per_sample) / denominator",
    }
    if computation.complete and computation.ignored is not None and computation.ignored.any():
        record["ignored"] = [int(i) for i in np.flatnonzero(computation.ignored)]
    for name, summary_record in computation.gradient_summaries.items():
        gradient_record = dict(summary_record)
        gradient = computation.gradients.get(name)
        if gradient is not None and (all_values or gradient.size <= SMALL):
            gradient_record = {
                "shape": gradient_record.pop("shape"),
                "values": _values(gradient),
                **gradient_record,
            }
        record["gradient"][name] = gradient_record
    return record


def render(report: Report, all_values: bool = False) -> str:
    """One JSON object, no trailing text."""
    return json_text(report_dict(report, all_values))


def record(report: Report, view: View) -> dict[str, Any]:
    """The report's JSON object; debug adds ``recommended`` when it inferred the loss."""
    data = report_dict(report, view.all_values)
    if view.debug and view.recommendation is not None:
        data["recommended"] = view.recommendation.to_dict()
    return data


def report(report: Report, view: View) -> Rendered:
    """One JSON object on one line."""
    return Rendered(text=json_text(record(report, view)) + "\n")


def comparison(entries: Sequence[Entry], view: View) -> Rendered:
    """One JSON object: ``{"schema_version": 1, "losses": [compute object, ...]}``."""
    from losscli.render import compare

    return Rendered(text=compare.render_json(list(entries), view.all_values, view.task) + "\n")
