"""NDJSON renderer: one JSON object per line (a report per loss), for pipelines and batch use."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def render(records: Iterable[dict[str, Any]]) -> str:
    """Each record as one line of JSON, newline-terminated; NaN/Inf are refused, never written."""
    return "".join(json.dumps(record, allow_nan=False) + "\n" for record in records)
