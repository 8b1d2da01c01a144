"""Invocation: one ``losscli compute`` command as data, so that a fix is a change to it.

A fix that losscli shows is a :class:`~losscli.findings.Remedy` applied to the command the
user ran: :meth:`Invocation.applying` makes the new command, :mod:`losscli.fixes` runs it on
the same inputs in memory, and :meth:`Invocation.command` writes it for the shell. The same
record is both what is verified and what is printed, so the value a fix announces is the
value its command prints.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from losscli import losses
from losscli.findings import Remedy
from losscli.losses import LossSpec, OptionType, flag_for

# the defaults of the shared options that change a value (parameters.RunOptions repeats them)
DEFAULT_DTYPE = "float32"
DEFAULT_STDIN_FORMAT = "csv"


@dataclass(frozen=True)
class Invocation:
    """``losscli compute LOSS INPUT... [options]``: everything that decides the value.

    Attributes:
        loss: the loss's catalogue name.
        arguments: the INPUTs as typed, in the loss's argument order.
        options: torch keyword → value as typed, for the loss options given (tensor
            options as their text: an inline array or a file).
        maps: the ``--map`` lines, as losscli writes them (``target = target - 1``).
        dtype: ``--dtype``.
        strict: ``--strict``.
        stdin_format: ``--stdin-format``.
        memory_budget: ``--memory-budget`` when given (it decides whether an input streams).
    """

    loss: str
    arguments: tuple[str, ...]
    options: tuple[tuple[str, Any], ...] = ()
    maps: tuple[str, ...] = ()
    dtype: str = DEFAULT_DTYPE
    strict: bool = False
    stdin_format: str = DEFAULT_STDIN_FORMAT
    memory_budget: str | None = None

    @classmethod
    def typed(
        cls,
        spec: LossSpec,
        arguments: Sequence[str],
        given: Mapping[str, Any],
        maps: Sequence[str] = (),
        *,
        dtype: str = DEFAULT_DTYPE,
        strict: bool = False,
        stdin_format: str = DEFAULT_STDIN_FORMAT,
        memory_budget: str | None = None,
    ) -> Invocation:
        """The command as the user typed it: the loss options given (None: not given) and
        the ``--map`` lines, parsed for this loss and written the one way losscli writes them.

        Raises:
            UsageError: a map does not parse, or names no input of the loss.
        """
        from losscli.transforms import parse_maps

        parsed = parse_maps(maps, [a.name for a in spec.arguments], loss=spec.name)
        return cls(
            loss=spec.name,
            arguments=tuple(arguments),
            options=tuple((name, value) for name, value in given.items() if value is not None),
            maps=tuple(m.text for m in parsed),
            dtype=dtype,
            strict=strict,
            stdin_format=stdin_format,
            memory_budget=memory_budget,
        )

    @property
    def spec(self) -> LossSpec:
        spec = losses.get(self.loss)
        assert spec is not None, self.loss
        return spec

    def given(self) -> dict[str, Any]:
        """torch keyword → value as typed, what :func:`losscli.options.resolve` takes."""
        return dict(self.options)

    def command(self) -> str:
        """The command line, quoted for a POSIX shell, ready to paste."""
        words = ["losscli", "compute", self.loss, *(shlex.quote(a) for a in self.arguments)]
        spec = self.spec
        for name, value in self.options:
            words += option_words(spec, name, value)
        if self.dtype != DEFAULT_DTYPE:
            words += ["--dtype", self.dtype]
        if self.strict:
            words.append("--strict")
        if self.stdin_format != DEFAULT_STDIN_FORMAT and "-" in self.arguments:
            words += ["--stdin-format", self.stdin_format]
        if self.memory_budget is not None:
            words += ["--memory-budget", shlex.quote(self.memory_budget)]
        for line in self.maps:
            words += ["--map", shlex.quote(line)]
        return " ".join(words)

    def applying(self, remedy: Remedy) -> Invocation:
        """This command with ``remedy`` applied: the inputs reordered, then the loss and its
        options changed, then the remedy's maps composed with the maps already given.

        Raises:
            UsageError: the remedy's maps do not parse for the loss.
        """
        changed = self
        if remedy.order is not None:
            changed = changed._reordered(remedy.order)
        if remedy.loss is not None and remedy.loss != changed.loss:
            changed = changed._with_loss(remedy.loss)
        if remedy.options:
            changed = changed._with_options(dict(remedy.options))
        if remedy.maps:
            changed = changed._with_maps(remedy.maps)
        return changed

    def _reordered(self, order: Sequence[str]) -> Invocation:
        """The INPUTs given in ``order`` (argument names); each map follows its input."""
        from losscli.transforms import parse_maps, renamed

        names = [a.name for a in self.spec.arguments]
        by_name = dict(zip(names, self.arguments, strict=True))
        arguments = tuple(by_name[name] for name in order)
        # the input first given as ``name`` is now at position order.index(name)
        moved = {name: names[order.index(name)] for name in names}
        maps = tuple(renamed(m, moved).text for m in parse_maps(self.maps, names))
        return replace(self, arguments=arguments, maps=maps)

    def _with_loss(self, loss: str) -> Invocation:
        """Another loss on the same inputs, with the options given that it takes."""
        spec = losses.get(loss)
        assert spec is not None, loss
        kept = tuple((name, value) for name, value in self.options if spec.option(name))
        return replace(self, loss=spec.name, options=kept)

    def _with_options(self, changes: Mapping[str, Any]) -> Invocation:
        kept = [(name, value) for name, value in self.options if name not in changes]
        kept += [(name, value) for name, value in changes.items() if value is not None]
        return replace(self, options=tuple(kept))

    def _with_maps(self, lines: Sequence[str]) -> Invocation:
        """The remedy's maps read the inputs as the user's maps leave them (composed)."""
        from losscli.transforms import parse_maps, substitute

        names = [a.name for a in self.spec.arguments]
        given = {m.name: m for m in parse_maps(self.maps, names)}
        composed = {
            m.name: substitute(m, {name: g.expression for name, g in given.items()})
            for m in parse_maps(lines, names)
        }
        merged = {**given, **composed}
        return replace(self, maps=tuple(m.text for m in merged.values()))


def option_words(spec: LossSpec, name: str, value: Any) -> list[str]:
    """One loss option as command-line words: ``--label-smoothing 0.1``, ``--no-log-input``."""
    option = spec.option(name)
    flag = flag_for(name)
    if option is not None and option.type is OptionType.BOOL:
        return [flag if value else f"--no-{flag.removeprefix('--')}"]
    return [flag, shlex.quote(str(value))]
