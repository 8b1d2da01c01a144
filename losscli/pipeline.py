"""Pipeline: one loss on one set of inputs, chunk by chunk: convert → check → compute → accumulate → report.

Whole tensors are one chunk; an input over the memory budget is many (:mod:`losscli.chunks`).
Both go through these same steps, so a streamed input cannot be read or judged differently
from the same input whole:

1. ``SHAPES`` checks, once, on the full shapes (before any value is judged);
2. for each chunk: conversion and the ``CHUNK`` checks (a blocking finding keeps torch from
   computing), then torch (:func:`losscli.compute.compute_chunk`), the accumulator
   (:mod:`losscli.accumulator`) and the evidence (:mod:`losscli.evidence`);
3. once: the ``SAMPLE`` checks on the evidence, the ``RESULT`` checks on the accumulated
   computation.

A ``CHUNK`` check's findings on all the data are its findings on the evidence when the
evidence holds every sample, else its findings on each chunk merged (:class:`_Merged`).
Findings are reported in the order of the registry, conversion first. torch is imported
only when there is something to compute.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from losscli import conversion
from losscli.accumulator import Accumulator, ClassSetup
from losscli.checks import (
    Check,
    CheckContext,
    Combine,
    Scope,
    Totals,
    add_totals,
    checks_for,
    registry,
    run,
)
from losscli.chunks import Chunk, Feed, Unaligned, WholeFeed, stand_ins, zeros_like
from losscli.errors import UnsupportedDtype, UsageError
from losscli.evidence import Evidence, capacity
from losscli.findings import RAISED_BY_THE_PIPELINE, Finding, Severity, finding
from losscli.loaders import LoadedArray, load
from losscli.losses import Layout, LossSpec, Role
from losscli.options import json_ready
from losscli.report import InputInfo, Report
from losscli.result import ChunkResult
from losscli.shards import ShardFeed
from losscli.sources import check_one_stdin, parse_source

# the worst samples kept for JSON, whatever --top shows in the table
WORST_SAMPLES = 10
# the findings the pipeline itself raises (the checks and conversion raise the others)
FINDINGS = RAISED_BY_THE_PIPELINE
# shape findings at error severity make the value null on every path (SPEC)
_VALUE_NULL = ("shape-mismatch", "silent-broadcast", "batch-size-mismatch", "target-has-extra-dim")
# stored dtypes whose rounding is large enough to move a loss
_LOW_PRECISION = ("float16", "bfloat16")
_CLASS_ROLES = (Role.CLASS_TARGET, Role.CLASS_INDEX)


def bind(spec: LossSpec, arguments: Sequence[str]) -> dict[str, str]:
    """Pair INPUT arguments with the loss's tensor arguments, in torch's order."""
    names = [a.name for a in spec.arguments]
    if len(arguments) != len(names):
        raise UsageError(
            f"{spec.name} takes {len(names)} inputs ({' '.join(names)}), got {len(arguments)}"
            + (f": {' '.join(arguments)}" if arguments else "")
        )
    check_one_stdin(arguments)
    return dict(zip(names, arguments, strict=True))


def load_inputs(
    spec: LossSpec, arguments: Sequence[str], stdin_format: str = "csv"
) -> dict[str, LoadedArray]:
    """Load every INPUT of ``spec`` whole; unreadable input raises LoadError."""
    return {
        name: load(parse_source(text), stdin_format) for name, text in bind(spec, arguments).items()
    }


@dataclass(frozen=True)
class Settings:
    """How to evaluate, beyond the loss and its options.

    Attributes:
        float_dtype: the float dtype torch computes in.
        strict: convert nothing.
        want_gradient: compute gradients.
        top: how many of the worst samples to keep.
        per_sample: called with each chunk's per-sample losses, in order (``--per-sample-out``).
        progress: called once with the total samples (None when unknown) when the input
            streams; returns a callback that receives each chunk's sample count.
    """

    float_dtype: str = "float32"
    strict: bool = False
    want_gradient: bool = True
    top: int = 10
    per_sample: Callable[[Any], None] | None = None
    progress: Callable[[int | None], Callable[[int], None]] | None = None


def evaluate(
    spec: LossSpec,
    inputs: dict[str, LoadedArray] | Feed,
    options: dict[str, Any],
    float_dtype: str = "float32",
    strict: bool = False,
    want_gradient: bool = True,
    *,
    settings: Settings | None = None,
) -> Report:
    """Check and compute ``spec`` on ``inputs`` (tensors in memory, or a feed of chunks)."""
    feed = WholeFeed(inputs) if isinstance(inputs, dict) else inputs
    chosen = settings or Settings(float_dtype, strict, want_gradient)
    return _Evaluation(spec, feed, options, chosen).report()


# a finding's source: a registered check, or conversion (which comes first)
_CONVERSION = "conversion"
Raised = tuple[Check | str, Finding]


class _Evaluation:
    """The state of one evaluation: see the module docstring for the steps."""

    def __init__(
        self, spec: LossSpec, feed: Feed, options: dict[str, Any], settings: Settings
    ) -> None:
        self.spec = spec
        self.feed = feed
        self.options = options
        self.settings = settings

    def report(self) -> Report:
        feed, spec, settings = self.feed, self.spec, self.settings
        iterator = feed.chunks()
        try:
            first = next(iterator, None)
        except Unaligned:  # the inputs end at different samples within the first chunk
            first = None
        info = feed.info()
        self.layout = _sample_layout(spec, {name: i.shape for name, i in info.items()})
        soft_target = (
            conversion.soft_target_of(spec, first.loaded, settings.strict)
            if first is not None
            else False
        )
        self.steps = ChunkSteps(
            spec, self.options, settings, soft_target, self.layout, whole=feed.whole
        )
        if first is None:  # no chunk of aligned samples: only the shapes can be judged
            stand_in = Chunk(0, stand_ins(info, feed.templates()))
            self.layout = dataclasses.replace(self.layout, aligned=False)
            self.partial = Partial(Accumulator(spec, self.options, keep_all=True), Evidence(None))
            return self._finish(info, stand_in, self._shapes(stand_in))
        shape_found = self._shapes(first)
        self.steps.prepare(
            feed,
            blocked=_blocks(f for _, f in shape_found) or not self.layout.aligned,
            classes=self._class_setup(first.loaded),
            precision=_precision_request(spec, first.loaded),
        )
        streamed = not feed.whole
        advance = (
            settings.progress(feed.total) if settings.progress is not None and streamed else None
        )
        chunks = itertools.chain([first], iterator)
        if isinstance(feed, ShardFeed):  # each shard folded on its own, then merged
            self.partial = feed.evaluate(self.steps, chunks, advance)
        else:
            self.partial = self.steps.partial(0, feed.total)
            try:
                self.steps.fold(chunks, self.partial, advance)
            except Unaligned:  # found at the end of the shorter input
                self.layout = dataclasses.replace(self.layout, aligned=False)
        info = feed.info()
        if not feed.whole:  # lengths of text are known at its end: judge the final shapes
            shape_found = self._shapes(first, info)
        return self._finish(info, first, shape_found)

    # ------------------------------------------------------------------ steps

    def _shape_context(self, info: dict[str, InputInfo], first: Chunk) -> CheckContext:
        """What the SHAPES checks judge: the inputs, and the arrays torch would be given.

        Streamed, the inputs are zero-strided stand-ins of the full shapes and the converted
        arrays are stand-ins too, with the dtypes the first chunk converts to: converting
        a full-shaped stand-in would allocate the whole input the budget keeps out.
        """
        converted = self.steps.converted(first)
        if self.feed.whole:
            return self.steps.context(first.loaded, converted.arrays, total=self.feed.total)
        inputs = stand_ins(info, first.loaded)
        shapes = {name: inputs[name].values.shape for name in converted.arrays}
        return self.steps.context(
            inputs, zeros_like(converted.arrays, shapes), total=self.feed.total
        )

    def _shapes(self, first: Chunk, info: dict[str, InputInfo] | None = None) -> list[Raised]:
        context = self._shape_context(info or self.feed.info(), first)
        return _raised(run(checks_for(self.spec, Scope.SHAPES), context))

    def _finish(
        self, info: dict[str, InputInfo], first: Chunk, shape_found: list[Raised]
    ) -> Report:
        spec, steps, partial = self.spec, self.steps, self.partial
        accumulator, evidence = partial.accumulator, partial.evidence
        aligned = self.layout.aligned
        computed = (
            accumulator.finish()
            if aligned
            and accumulator.chunks == partial.chunks
            and not partial.blocked
            and partial.rejected is None
            else None
        )
        inputs, arrays, rows = evidence.inputs()
        if isinstance(self.feed, ShardFeed):  # the evidence spans shards: named by the glob
            inputs = {name: replace(a, source=info[name].source) for name, a in inputs.items()}
        complete = evidence.complete
        total = next(iter(info.values())).shape[0] if info and evidence.limit else None
        view = steps.context(inputs, arrays, rows=rows, complete=complete, total=total)
        if not aligned:
            chunk_found = []
        elif partial.chunks == 1:
            chunk_found = partial.merged.single()
        elif complete:  # every sample is in the evidence: judge it as one
            converted = steps.converted(Chunk(0, inputs))
            chunk_found = [(_CONVERSION, f) for f in converted.findings]
            chunk_found += _raised(run(steps.chunk_checks, view))
        else:
            chunk_found = partial.merged.merged(partial.chunks)
        scale = accumulator.gradient_scale if computed is not None else 1.0
        sample_view = steps.context(
            inputs,
            arrays,
            rows=rows,
            complete=complete,
            total=total,
            computation=evidence.computation(computed, scale),
        )
        totals_found: list[Raised] = []
        if aligned:
            for check in steps.totals_checks:
                counted = dataclasses.replace(view, totals=partial.totals.get(check, {}))
                totals_found += _raised(run([check], counted))
        sample_found = (
            _sampled(_raised(run(checks_for(spec, Scope.SAMPLE), sample_view)), complete, view)
            if aligned
            else []
        )
        result_found: list[Raised] = []
        if computed is not None:
            result_view = steps.context(
                inputs, arrays, rows=rows, complete=complete, total=total, computation=computed
            )
            result_found = _raised(run(checks_for(spec, Scope.RESULT), result_view))
        ordered = _in_registry_order(
            [*shape_found, *chunk_found, *totals_found, *sample_found, *result_found]
        )
        if partial.rejected is not None:
            ordered.append(
                finding(
                    "torch-rejected",
                    Severity.ERROR,
                    f"torch raised: {partial.rejected}",
                    f"run losscli debug {spec.name} on the same inputs for an explanation",
                )
            )
        if _blocks(ordered):
            computed = None
        seen: dict[str, Any] = {
            "samples": total,
            "evidence_samples": evidence.kept,
            "complete": complete,
        }
        if not complete:  # which findings were judged on the sample
            seen["sampled"] = sorted(  # (TOTALS checks count every sample)
                {name for check in checks_for(spec, Scope.SAMPLE) for name in check.findings}
            )
        extra: dict[str, Any] = {"checks": seen}
        streaming = self.feed.describe()
        if streaming is not None:
            extra["streaming"] = streaming
        if isinstance(self.feed, ShardFeed):
            extra["engine"] = self.feed.engine()
        return Report(
            spec=spec,
            options=json_ready(self.options),
            inputs=self._described(info, first),
            computation=computed,
            findings=tuple(ordered),
            extra=extra,
            loaded=dict(first.loaded) if self.feed.whole else (inputs if complete else {}),
            classes=accumulator.class_totals(),
        )

    def _described(self, info: dict[str, InputInfo], first: Chunk) -> dict[str, InputInfo]:
        """Each input's stored dtype (a bfloat16 tensor arrives widened to float32) and the
        dtype torch was given."""
        described = {}
        for name, item in info.items():
            loaded = first.loaded.get(name)
            stored = loaded.stored_dtype if loaded is not None else None
            described[name] = replace(
                item, dtype=stored or item.dtype, torch_dtype=self.partial.torch_dtypes.get(name)
            )
        return described

    def _class_setup(self, loaded: dict[str, LoadedArray]) -> ClassSetup | None:
        """Count predicted versus true classes when the loss takes class indices that line up."""
        spec = self.spec
        if (
            spec.layout not in (Layout.CLASS_SCORES, Layout.CLASS_SCORES_FLAT)
            or self.steps.soft_target
        ):
            return None
        target = next((a for a in spec.arguments if a.role in _CLASS_ROLES), None)
        if target is None:
            return None
        prediction = spec.arguments[0].name
        info = self.feed.info()
        scores, labels = info[prediction].shape, info[target.name].shape
        if len(scores) < 2 or not scores[1] or labels != (scores[0], *scores[2:]):
            return None
        columns = loaded[prediction].columns
        ignore = self.options.get("ignore_index") if spec.option("ignore_index") else None
        return ClassSetup(
            prediction=prediction,
            target=target.name,
            classes=int(scores[1]),
            ignore_index=None if ignore is None else int(ignore),
            names=_class_names(columns, int(scores[1])),
        )


@dataclass
class Partial:
    """What the chunks of one run of samples (a shard, or the whole input) add up to.

    A partial result merges with the one of the samples that follow it
    (:meth:`merge`), so shards are folded apart, here or on other machines, and merged in
    shard order; the merge is associative, and what it gives equals folding every chunk
    into one partial (to the rounding of float64 sums, and for the quantile sample, to its
    randomness: each shard's is seeded by the shard's index).

    Attributes:
        accumulator: what torch computed (:class:`~losscli.accumulator.Accumulator`).
        evidence: the rows the SAMPLE checks judge (:class:`~losscli.evidence.Evidence`).
        merged: each chunk's findings (:class:`_Merged`).
        totals: what each TOTALS check counted.
        chunks: how many chunks were folded in.
        samples: how many samples they held.
        blocked: a blocking finding keeps torch from computing.
        rejected: what torch raised, first (it then computes nothing more).
        torch_dtypes: the dtype torch was given for each argument.
    """

    accumulator: Accumulator
    evidence: Evidence
    merged: _Merged = field(default_factory=lambda: _Merged())
    totals: dict[Check, Totals] = field(default_factory=dict)
    chunks: int = 0
    samples: int = 0
    blocked: bool = False
    rejected: str | None = None
    torch_dtypes: dict[str, str] = field(default_factory=dict)

    def merge(self, later: Partial) -> None:
        """Fold in the partial result of the samples that follow these; ``later`` is taken
        over (parts of it are kept or changed here), so it is not used again."""
        self.accumulator.merge(later.accumulator)
        self.evidence.merge(later.evidence)
        self.merged.merge(later.merged)
        for check, counted in later.totals.items():
            self.totals[check] = add_totals(self.totals.get(check), counted)
        self.chunks += later.chunks
        self.samples += later.samples
        self.blocked = self.blocked or later.blocked
        self.rejected = self.rejected if self.rejected is not None else later.rejected
        self.torch_dtypes = later.torch_dtypes or self.torch_dtypes


class _TorchThreads:
    """torch's threads during one fold: streamed, one core fewer from the first torch call
    on, since the next chunk is read in a thread meanwhile (restored when the fold ends)."""

    def __init__(self, stack: contextlib.ExitStack, *, streamed: bool) -> None:
        self.stack = stack
        self.pending = streamed

    def before_compute(self) -> None:
        if self.pending:
            from losscli.compute import beside_a_reader

            self.stack.enter_context(beside_a_reader())
            self.pending = False


class ChunkSteps:
    """The steps each chunk goes through (convert, check, compute, accumulate), set up once
    from the first chunk; picklable once :meth:`portable`, so a Dask worker runs the same
    steps on its shards.

    Args:
        spec: the loss.
        options: the resolved options.
        settings: how to evaluate.
        soft_target: the target holds class probabilities (judged on the first chunk).
        layout: how the inputs are indexed by sample.
        whole: the inputs are tensors in memory, one chunk computed with the user's
            reduction.
    """

    def __init__(
        self,
        spec: LossSpec,
        options: dict[str, Any],
        settings: Settings,
        soft_target: bool,
        layout: _SampleLayout,
        *,
        whole: bool,
    ) -> None:
        self.spec = spec
        self.options = options
        self.settings = settings
        self.soft_target = soft_target
        self.layout = layout
        self.whole = whole
        self.chunk_checks = checks_for(spec, Scope.CHUNK)
        self.totals_checks = checks_for(spec, Scope.TOTALS)
        self.blocked = False
        self.classes: ClassSetup | None = None
        self.precision: Any = None
        self.budget: int | None = None
        self.total: int | None = None
        self.evidence_limit: int | None = None
        self.sample_shapes: dict[str, tuple[int, ...]] = {}

    def prepare(
        self, feed: Feed, *, blocked: bool, classes: ClassSetup | None, precision: Any
    ) -> None:
        """What the first chunk and the full shapes decide for every chunk."""
        self.blocked = blocked
        self.classes = classes
        self.precision = precision
        self.budget = feed.budget
        self.total = feed.total
        self.sample_shapes = feed.sample_shapes()
        self.evidence_limit = capacity(self.sample_shapes.values()) if self.layout.batched else None

    def portable(self) -> ChunkSteps:
        """These steps without what only this process can call (the per-sample sink and the
        progress bar): what a Dask worker is sent."""
        copied = copy.copy(self)
        copied.settings = replace(self.settings, per_sample=None, progress=None)
        return copied

    def partial(self, index: int, expected: int | None) -> Partial:
        """An empty partial result for a run of ``expected`` samples (None: not known);
        ``index`` seeds its quantile sample (shard ``index``; 0 for the whole input)."""
        accumulator = Accumulator(
            self.spec,
            self.options,
            keep_all=self.whole,
            top=max(self.settings.top, WORST_SAMPLES),
            expected=expected,
            budget=self.budget,
            classes=self.classes,
            seed=index,
        )
        evidence = Evidence(self.evidence_limit, expected, self.layout.per_sample)
        return Partial(accumulator, evidence, blocked=self.blocked)

    def fold(
        self,
        chunks: Iterable[Chunk],
        partial: Partial,
        advance: Callable[[int], None] | None = None,
    ) -> None:
        """Convert, check, compute and accumulate every chunk into ``partial``, in order."""
        with contextlib.ExitStack() as stack:
            threads = _TorchThreads(stack, streamed=not self.whole)
            for chunk in chunks:
                self._chunk(chunk, partial, threads)
                if advance is not None:
                    advance(chunk.rows)

    def converted(self, chunk: Chunk) -> conversion.Converted:
        """The chunk's arrays in the dtypes torch is given (conversion findings alongside)."""
        return conversion.convert(
            self.spec,
            chunk.loaded,
            self.settings.float_dtype,
            self.settings.strict,
            soft_target=self.soft_target,
            offset=chunk.offset,
        )

    def context(
        self,
        inputs: dict[str, LoadedArray],
        arrays: dict[str, Any],
        **view: Any,
    ) -> CheckContext:
        return CheckContext(
            spec=self.spec,
            inputs=inputs,
            arrays=arrays,
            options=self.options,
            soft_target=self.soft_target,
            strict=self.settings.strict,
            **view,
        )

    def _chunk(self, chunk: Chunk, partial: Partial, threads: _TorchThreads) -> None:
        """Convert, check, compute and accumulate one chunk."""
        partial.chunks += 1
        partial.samples += chunk.rows
        if not self.layout.aligned:  # samples cannot be paired: the shape findings say why
            return
        converted = self.converted(chunk)
        partial.torch_dtypes = {
            name: self._torch_dtype(array) for name, array in converted.arrays.items()
        }
        context = self.context(
            chunk.loaded,
            converted.arrays,
            offset=chunk.offset,
            complete=self.whole,
            total=self.total,
        )
        found: list[Raised] = [(_CONVERSION, f) for f in converted.findings]
        found += _raised(run(self.chunk_checks, context))
        for check in self.totals_checks:
            assert check.collect is not None
            partial.totals[check] = add_totals(partial.totals.get(check), check.collect(context))
        partial.merged.add(found, chunk)
        if converted.blocked or _blocks(f for _, f in found):
            partial.blocked = True
        result = None
        if not partial.blocked and partial.rejected is None:
            result = self._compute(converted.arrays, chunk.offset, partial, threads)
        if not converted.blocked:
            partial.accumulator.count_classes(converted.arrays, result)
        partial.evidence.add(
            chunk.offset, chunk.loaded, converted.arrays, result, stable=self.whole
        )

    def _compute(
        self,
        arrays: dict[str, Any],
        offset: int,
        partial: Partial,
        threads: _TorchThreads,
    ) -> ChunkResult | None:
        # the first torch call: until here a chunk is converted and checked without torch,
        # which the command line is still importing in a thread
        from losscli.compute import NoKernel, TorchRejected, compute_chunk

        settings = self.settings
        threads.before_compute()
        try:
            result = compute_chunk(
                self.spec,
                arrays,
                self.options,
                self.soft_target,
                reduced=self.whole,
                want_gradient=settings.want_gradient,
                precision=self.precision,
                float_dtype=None if settings.strict else settings.float_dtype,
            )
        except NoKernel as error:
            if settings.strict or settings.float_dtype not in _LOW_PRECISION:
                partial.rejected = str(error)
                return None
            raise UnsupportedDtype(
                f"--dtype {settings.float_dtype}: torch has no {settings.float_dtype} kernel for "
                f"{self.spec.name} on the CPU ({error}); use --dtype float32 or float64",
                settings.float_dtype,
            ) from None
        except TorchRejected as error:
            partial.rejected = str(error)
            return None
        partial.accumulator.add(result, offset, arrays)
        if settings.per_sample is not None:
            settings.per_sample(result.per_sample)
        return result

    def _torch_dtype(self, array: Any) -> str:
        """The dtype torch is given for a converted array (bfloat16 is held in float32)."""
        dtype = str(array.dtype)
        settings = self.settings
        if dtype == "float32" and settings.float_dtype == "bfloat16" and not settings.strict:
            return "bfloat16"
        return dtype


def _class_names(columns: tuple[str, ...] | None, classes: int) -> tuple[str, ...] | None:
    """The prediction table's column names as class names: one per class, and real names
    (a file without a header numbers its columns 0..C-1, which the class index says already)."""
    if not columns or len(columns) != classes:
        return None
    if columns == tuple(str(index) for index in range(classes)):
        return None
    return columns


@dataclass(frozen=True)
class _SampleLayout:
    """How the inputs are indexed by sample.

    Attributes:
        batched: every argument is indexed by sample along dimension 0 and the prediction has
            a batch dimension (``LossSpec.batched_ndim``); otherwise the input is one sample
            (or ctc's), never cut or sampled.
        per_sample: the arguments that hold one entry per sample; the others (a scalar
            variance, one row) are broadcast against every sample.
        aligned: every argument holds one entry per sample or is broadcast, so samples can
            be paired across arguments; when they cannot, only the shapes are judged.
    """

    batched: bool
    per_sample: frozenset[str]
    aligned: bool = True


def _sample_layout(spec: LossSpec, shapes: dict[str, tuple[int, ...]]) -> _SampleLayout:
    prediction = shapes[spec.arguments[0].name]
    batched = all(a.batch_dim == 0 for a in spec.arguments) and len(prediction) >= max(
        spec.batched_ndim, 1
    )
    if not batched:
        return _SampleLayout(False, frozenset(shapes))
    samples = prediction[0]
    per_sample = frozenset(name for name, shape in shapes.items() if shape and shape[0] == samples)
    broadcast = {name for name, shape in shapes.items() if not shape or shape[0] == 1}
    return _SampleLayout(True, per_sample, aligned=set(shapes) <= per_sample | broadcast)


def _precision_request(spec: LossSpec, loaded: dict[str, LoadedArray]) -> Any:
    """Ask torch for the loss in float64 and float16/bfloat16 when an input was stored so."""
    stored = {
        a.name: loaded[a.name].stored_dtype or str(loaded[a.name].values.dtype)
        for a in spec.arguments
        if loaded[a.name].values.dtype.kind == "f"
    }
    low = {name: dtype for name, dtype in stored.items() if dtype in _LOW_PRECISION}
    if not low:
        return None
    from losscli.compute import PrecisionRequest

    precision = "bfloat16" if "bfloat16" in low.values() else "float16"
    return PrecisionRequest(precision, frozenset(low), mixed=set(low) != set(stored))


def _raised(found: Iterable[tuple[Check, Finding]]) -> list[Raised]:
    """Check findings, typed as the pipeline's list of raised findings."""
    return [(check, item) for check, item in found]


def _blocks(found: Iterable[Finding]) -> bool:
    """A finding that keeps the value from being shown (torch cannot or must not compute)."""
    return any(
        f.blocking or (f.name in _VALUE_NULL and f.severity is Severity.ERROR) for f in found
    )


def _in_registry_order(found: list[Raised]) -> list[Finding]:
    """Conversion's findings first, then each check's in registry order (stable within a check)."""
    position = {check: index for index, check in enumerate(registry())}

    def key(item: Raised) -> int:
        source = item[0]
        return -1 if isinstance(source, str) else position[source]

    return [f for _, f in sorted(found, key=key)]


def _sampled(found: list[Raised], complete: bool, view: CheckContext) -> list[Raised]:
    """SAMPLE findings on part of the data say so in the message."""
    if complete or view.rows is None:
        return found
    note = (
        f" (judged on a random sample of {len(view.rows)} of {view.total} samples)"
        if view.total
        else f" (judged on a random sample of {len(view.rows)} samples)"
    )
    return [
        (check, replace(f, message=f.message + note, evidence={**f.evidence, "sampled": True}))
        for check, f in found
    ]


@dataclass
class _Merged:
    """Findings of every chunk, merged into findings on all the data.

    A finding raised by one check about one argument is kept once: the first one at the
    highest severity, blocking when any was. Its message keeps the numbers of the chunk it
    came from and says so (which samples, in how many chunks the check fired); its
    evidence's ``count``, where it has one, is the sum over every chunk. A ``Combine.ALL``
    check's finding is kept only when it fired on every chunk.
    """

    first: list[Raised] = field(default_factory=list)
    seen: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    order: list[tuple[Any, ...]] = field(default_factory=list)
    chunk_count: int = 0

    def add(self, found: list[Raised], chunk: Chunk) -> None:
        if self.chunk_count == 0:
            self.first = list(found)
        self.chunk_count += 1
        for source, item in found:
            key = (source, item.name, str(item.evidence.get("argument", "")))
            entry = self.seen.get(key)
            span = (chunk.offset, chunk.offset + chunk.rows - 1)
            count = item.evidence.get("count")
            count = count if isinstance(count, int) else 0
            if entry is None:
                self.seen[key] = [source, item, span, 1, item.blocking, count]
                self.order.append(key)
                continue
            entry[3] += 1
            entry[4] = entry[4] or item.blocking
            entry[5] += count
            if item.severity.rank > entry[1].severity.rank:
                entry[1], entry[2] = item, span

    def merge(self, later: _Merged) -> None:
        """Fold in the findings of the chunks that follow these (a later shard's)."""
        if self.chunk_count == 0:
            self.first = list(later.first)
        self.chunk_count += later.chunk_count
        for key in later.order:
            source, item, span, fired, blocking, count = later.seen[key]
            entry = self.seen.get(key)
            if entry is None:
                self.seen[key] = [source, item, span, fired, blocking, count]
                self.order.append(key)
                continue
            entry[3] += fired
            entry[4] = entry[4] or blocking
            entry[5] += count
            if item.severity.rank > entry[1].severity.rank:
                entry[1], entry[2] = item, span

    def single(self) -> list[Raised]:
        """The findings of the only chunk: those on all the data."""
        return self.first

    def merged(self, chunks: int) -> list[Raised]:
        found: list[Raised] = []
        for key in self.order:
            source, item, (low, high), fired, blocking, count = self.seen[key]
            if isinstance(source, Check) and source.combine is Combine.ALL and fired < chunks:
                continue
            note = (
                f" [these numbers are those of samples {low}-{high}, one of the {fired} chunks "
                f"of {chunks} where this was found]"
            )
            evidence = {**item.evidence, "chunks": fired, "of_chunks": chunks}
            if "count" in item.evidence:
                evidence["count"] = count
            found.append(
                (
                    source,
                    replace(
                        item, message=item.message + note, blocking=blocking, evidence=evidence
                    ),
                )
            )
        return found
