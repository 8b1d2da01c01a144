"""Renderers: one registry from output format to renderer (pip-audit's formats).

Every renderer lays out what a :class:`~losscli.report.Report` (or a comparison of several)
already holds, and computes nothing: it returns text or a Rich renderable, and ``cli.py``
owns the consoles. A format is one module in this package with two functions,
``report(report, view)`` and ``comparison(entries, view)``, each returning
:class:`Rendered`, and one line in :data:`FORMATS`; :func:`renderer` imports it when used,
so ``--help`` never loads Rich's tables.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from json import dumps  # not `import json`: the json submodule would shadow it here
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from losscli.inference import Recommendation
    from losscli.report import Entry, Report


@dataclass(frozen=True)
class View:
    """How to lay a report out.

    Attributes:
        all_values: every per-sample and gradient value in JSON.
        top: how many of the worst samples the table shows.
        tripped: loss name → the CI gates it trips, as sentences (annotated by ``github``).
        debug: the debug layout: each finding explained, then the value.
        recommendation: the loss ``debug`` inferred, when it did.
        task: the task ``compare`` without ``-l`` inferred, whose losses it compares
            (``""`` when the losses were named).
    """

    all_values: bool = False
    top: int = 10
    tripped: dict[str, list[str]] = field(default_factory=dict)
    debug: bool = False
    recommendation: Recommendation | None = None
    task: str = ""


@dataclass(frozen=True)
class Rendered:
    """What a renderer made.

    Attributes:
        text: written to standard output as it is.
        renderable: a Rich renderable for the standard-output console (table format).
        notes: lines for standard error: findings a format has no place for.
    """

    text: str = ""
    renderable: Any = None
    notes: tuple[str, ...] = ()


class Renderer(Protocol):
    """One output format."""

    def report(self, report: Report, view: View) -> Rendered: ...

    def comparison(self, entries: Sequence[Entry], view: View) -> Rendered: ...


# format name → the module under losscli.render that renders it
FORMATS: dict[str, str] = {
    "table": "table",
    "json": "json",
    "ndjson": "ndjson",
    "csv": "csv",
    "github": "github",
}


def renderer(name: str) -> Renderer:
    """The renderer of format ``name`` (one of :data:`FORMATS`)."""
    return cast(Renderer, importlib.import_module(f"losscli.render.{FORMATS[name]}"))


def json_text(record: Any) -> str:
    """``record`` as JSON text, whatever numbers it holds: the one JSON writer.

    NaN and ±Infinity become ``null`` (the findings say why a value is not finite), NumPy
    scalars and arrays become Python numbers and lists; anything else JSON cannot hold is
    written as its ``str``. Strict JSON (``allow_nan=False``) is then guaranteed, so no
    output fails on a number found deep inside a finding's evidence.
    """
    return dumps(_jsonable(record), allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays, torch tensors
    if callable(tolist):
        return _jsonable(tolist())
    return str(value)
