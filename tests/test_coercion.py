"""Option values coerced without pydantic (losscli.coercion) agree with Typer's own coercion.

Every parameter of every command is tried with values typed the way users type them and
with fuzzed text: wherever the plain coercion answers, Typer's answers the same value of
the same type; wherever Typer refuses, the plain coercion declines, so the refusal and its
message stay Typer's.
"""

from __future__ import annotations

import enum
import json
import math
import subprocess
import sys
from typing import Any

import pytest
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli.cli import app
from losscli.coercion import DECLINED, PlainFirst, plain_value

typer_coercion = pytest.importorskip(
    "typer._coercion", reason="Typer without per-parameter coercion"
)


def _parameters() -> list[tuple[str, Any, Any]]:
    """(command/parameter, parameter, context) for every parameter of every command."""
    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        context = command.make_context(name, [], resilient_parsing=True)
        for parameter in command.get_params(context):
            if hasattr(parameter, "type_descriptor"):
                found.append((f"{name}/{parameter.name}", parameter, context))
    return found


PARAMETERS = _parameters()
IDS = [name for name, _, _ in PARAMETERS]

# values as users type them, and the near misses of each kind
TYPED = [
    "0", "3", "-1", "+2", "007", "10", "1.5", "-0.25", ".5", "5.", "1e3", "1E-2", "-1e+2",
    "nan", "inf", "-inf", "1_000", " 3", "3 ", "", "0x10", "٣", "1.5.2", "e3", "--",
    "json", "JSON", "table", "float64", "Float64", "warning", "never", "auto", "300MB",
    "mean", "sum", "none", "csv", "true", "yes", "9" * 5000, "1" + "0" * 400,
]  # fmt: skip


def _typer(parameter: Any, context: Any, value: Any) -> tuple[str, Any]:
    """Typer's own coercion of ``value``: ("ok", value) or ("refused", message)."""
    own = typer_coercion.build_runtime_param(parameter.type_descriptor)
    try:
        return "ok", own.coerce(value, param=parameter, ctx=context)
    except Exception as error:  # a BadParameter of Typer's vendored click
        return "refused", str(error)


def _same(plain: Any, theirs: Any) -> bool:
    if isinstance(plain, list):
        return (
            isinstance(theirs, list)
            and all(map(_same, plain, theirs))
            and len(plain) == len(theirs)
        )
    if isinstance(plain, float) and math.isnan(plain):
        return isinstance(theirs, float) and math.isnan(theirs)
    return type(plain) is type(theirs) and plain == theirs


def _bounds(parameter: Any) -> tuple[Any, Any]:
    return getattr(parameter, "min", None), getattr(parameter, "max", None)


def _candidates(parameter: Any) -> list[Any]:
    """The typed values, each alone and, for a list parameter, as a tuple; and the default."""
    annotation = parameter.type_descriptor.annotation
    values: list[Any] = list(TYPED)
    inner = typing_args[0] if (typing_args := getattr(annotation, "__args__", None)) else annotation
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        values += [member.value for member in inner] + list(inner)
    if parameter.multiple or parameter.nargs == -1:
        values = [(value,) for value in values if isinstance(value, str)] + [tuple(TYPED[:3])]
    return [*values, parameter.default]


@pytest.mark.parametrize(("name", "parameter", "context"), PARAMETERS, ids=IDS)
def test_plain_coercion_answers_only_what_typer_answers_alike(
    name: str, parameter: Any, context: Any
) -> None:
    annotation = parameter.type_descriptor.annotation
    for value in _candidates(parameter):
        if value is None:
            continue
        plain = plain_value(annotation, value, _bounds(parameter))
        if plain is DECLINED:
            continue
        verdict, theirs = _typer(parameter, context, value)
        assert verdict == "ok", f"{name}: {value!r} coerced to {plain!r}, Typer refuses: {theirs}"
        assert _same(plain, theirs), f"{name}: {value!r} -> {plain!r}, Typer: {theirs!r}"


@pytest.mark.parametrize(("name", "parameter", "context"), PARAMETERS, ids=IDS)
def test_installed_coercion_gives_typers_answer_or_typers_refusal(
    name: str, parameter: Any, context: Any
) -> None:
    assert isinstance(parameter._runtime_param, PlainFirst), "the command line skips the plain path"
    for value in [*_candidates(parameter), None]:
        theirs = _typer(parameter, context, value)
        try:
            ours: tuple[str, Any] = "ok", parameter._runtime_param.coerce(value, parameter, context)
        except Exception as error:
            ours = "refused", str(error)
        assert ours[0] == theirs[0], f"{name}: {value!r}: {ours} against Typer's {theirs}"
        if ours[0] == "ok":
            assert _same(ours[1], theirs[1]), f"{name}: {value!r}: {ours[1]!r} vs {theirs[1]!r}"
        else:
            assert ours[1] == theirs[1]


NUMBERS = [
    (name, p, c) for name, p, c in PARAMETERS if p.type_descriptor.annotation in (int, float)
]


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="0123456789+-.eE_ xin", max_size=8), which=st.integers(0, 10_000))
def test_fuzzed_numbers_agree_with_typer(text: str, which: int) -> None:
    name, parameter, context = NUMBERS[which % len(NUMBERS)]
    plain = plain_value(parameter.type_descriptor.annotation, text, _bounds(parameter))
    if plain is not DECLINED:
        verdict, theirs = _typer(parameter, context, text)
        assert verdict == "ok" and _same(plain, theirs), (
            f"{name}: {text!r}: {plain!r} vs {theirs!r}"
        )


def test_typical_values_take_the_plain_path() -> None:
    # near miss of the agreement tests: a plain coercion that always declined would pass them
    assert plain_value(int, "3", (0, None)) == 3
    assert plain_value(int, "-1", (0, None)) is DECLINED  # --top's bound: Typer's refusal
    assert plain_value(float, "1e-3") == 0.001
    assert plain_value(float, "nan") is DECLINED
    assert plain_value(list[str], ("a.npy", "b.npy")) == ["a.npy", "b.npy"]

    class Color(str, enum.Enum):
        red = "red"

    assert plain_value(Color, "red") is Color.red
    assert plain_value(Color, "RED") is DECLINED


def test_a_compute_run_never_imports_pydantic() -> None:
    probe = (
        "import json, sys\n"
        "from losscli.cli import main\n"
        "try:\n"
        "    main(['compute', 'l1', '--top', '3', '--reduction', 'sum', '-f', 'json',\n"
        "          '--max-loss', '9', '--map', 'target = target * 1', '[1,2]', '[2,2]'])\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "print('\\n@@' + json.dumps([code, 'pydantic' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    printed, _, found = done.stdout.rpartition("\n@@")
    assert json.loads(printed)["value"] == 1.0
    assert json.loads(found) == [0, False]
