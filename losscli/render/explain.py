"""Explain renderer: one loss or one finding documented from its catalogue record.

The same :class:`~losscli.losses.LossSpec` and :class:`~losscli.findings.FindingDoc`
records that drive the checks produce this text, and which losses a finding applies to
comes from the check registry (each check's predicate on the ``LossSpec``), so the docs
cannot drift from the behaviour. Pure: records in, Markdown text / dicts / Rich renderables
out. Imports neither torch nor pyarrow (``losscli explain`` must stay fast).
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.text import Text

from losscli import checks, conversion, findings, losses
from losscli.findings import FindingDoc
from losscli.losses import Activation, Domain, DType, LossSpec, Option, OptionType, PerSampleRule

_DTYPES = {
    DType.FLOAT: "float (float32 unless --dtype)",
    DType.INDEX: "int64",
    DType.CLASS: "int64 class indices, or float class probabilities shaped like the input",
}

# how the value is recovered from per_sample under reduction mean, per rule (SPEC: Numbers)
_MEAN_RULES = {
    PerSampleRule.MEAN: "`per_sample[i]` is the mean of sample i's element losses, and "
    "`value = mean(per_sample)`.",
    PerSampleRule.WEIGHTED: "with class indices, `per_sample[i]` is sample i's weighted loss "
    "`w[y_i] · l_i` (averaged over its positions for [batch, classes, d1, ...] inputs); an "
    "ignored target (`--ignore-index`) has loss 0 and is marked `ignored`. torch divides the "
    "sum by the summed weight of the non-ignored targets, so "
    "`value = sum(per_sample) / denominator` with that weight sum as the denominator "
    "(without `--weight` and ignored targets: `mean(per_sample)`). With class-probability "
    "targets (cross-entropy) it is a plain mean: `value = mean(per_sample)`.",
    PerSampleRule.BATCHMEAN: "`per_sample[i]` is the mean of sample i's element losses, and "
    "`value = mean(per_sample)`.",
    PerSampleRule.CTC: "torch divides each sample's loss by its target length before "
    "averaging: `per_sample[i] = loss_i / max(target_length_i, 1)` and "
    "`value = mean(per_sample)`.",
}

_COMMON_RULE = (
    "With `--reduction sum`, `per_sample[i]` sums sample i's element losses and "
    "`value = sum(per_sample)`; with `--reduction none` there is no value and `per_sample` "
    "is as for sum. JSON states the rule as `per_sample_rule.denominator`: "
    "`value = sum(per_sample) / denominator`."
)


_ACTIVATIONS = {
    Activation.NONE: "",
    Activation.SOFTMAX: "The loss applies log_softmax over the class dimension itself: give raw "
    "logits, not softmax output (see `probabilities-as-logits`).",
    Activation.SIGMOID: "The loss applies a sigmoid itself: give raw logits, not sigmoid output.",
}
_DOMAINS = {
    Domain.REAL: "",
    Domain.PROBABILITIES: "The prediction must hold probabilities in [0, 1] (sigmoid output); "
    "with logits, use `bce-logits`.",
    Domain.LOG_PROBABILITIES: "The prediction must hold log-probabilities (log_softmax output, "
    "every entry <= 0); raw scores or probabilities give a wrong, possibly negative, loss.",
}


def prediction_note(spec: LossSpec) -> str:
    """What the prediction must hold, from the spec's activation and input domain."""
    return " ".join(t for t in (_ACTIVATIONS[spec.activation], _DOMAINS[spec.input_domain]) if t)


_BATCHMEAN_RULE = (
    "With `--reduction batchmean`, `per_sample[i]` sums sample i's element losses and "
    "`value = sum(per_sample) / N`: the sum over the batch divided by the batch size, which is "
    "the KL divergence's definition (mean divides by every element: see `kl-mean-reduction`)."
)


def per_sample_rule(spec: LossSpec) -> str:
    """How ``value`` is recovered from ``per_sample`` for ``spec`` (Markdown)."""
    paragraphs = [f"Reduction mean (the default): {_MEAN_RULES[spec.per_sample_rule]}"]
    reduction = spec.option("reduction")
    if reduction is not None and "batchmean" in reduction.choices:
        paragraphs.append(_BATCHMEAN_RULE)
    paragraphs.append(_COMMON_RULE)
    return "\n\n".join(paragraphs)


def option_default(option: Option) -> str:
    """torch's default as a person reads it."""
    if option.default is None:
        return "none"
    if option.type is OptionType.BOOL:
        return "on" if option.default else "off"
    return str(option.default)


def option_flag(option: Option) -> str:
    """The command-line spelling, ``--log-input/--no-log-input`` for switches."""
    if option.type is OptionType.BOOL:
        return f"{option.flag}/--no-{option.flag.removeprefix('--')}"
    return option.flag


def _flag_cell(option: Option) -> str:
    """The option's spellings as a Markdown cell, a space between the two of a switch so a
    narrow terminal wraps between them rather than cutting one."""
    return " ".join(f"`{flag}`" for flag in option_flag(option).split("/"))


def applies_to(name: str) -> tuple[str, ...]:
    """The losses that can raise finding ``name``, in catalogue order.

    Those its checks apply to (the registry's predicates), those whose arguments conversion
    can raise it for, and every loss for the pipeline's own findings.
    """
    raising = set(checks.losses_raising(name, losses.LOSSES))
    if name in conversion.FINDINGS:
        raising |= {spec.name for spec in losses.LOSSES if conversion.can_raise(name, spec)}
    if name in findings.RAISED_BY_THE_PIPELINE:
        raising |= {spec.name for spec in losses.LOSSES}
    return tuple(spec.name for spec in losses.LOSSES if spec.name in raising)


def applies_to_every_loss(name: str) -> bool:
    return len(applies_to(name)) == len(losses.LOSSES)


def specific_findings(spec: LossSpec) -> tuple[FindingDoc, ...]:
    """The findings that only some losses raise and ``spec`` is one of them."""
    return tuple(
        doc
        for doc in findings.CATALOGUE.values()
        if not applies_to_every_loss(doc.name) and spec.name in applies_to(doc.name)
    )


def general_findings() -> tuple[FindingDoc, ...]:
    """The findings every loss can raise."""
    return tuple(doc for doc in findings.CATALOGUE.values() if applies_to_every_loss(doc.name))


def example_command(spec: LossSpec) -> str:
    """A ``losscli compute`` line with one placeholder file per argument."""
    return " ".join(["losscli", "compute", spec.name, *(f"{a.name}.npy" for a in spec.arguments)])


def loss_record(spec: LossSpec) -> dict[str, Any]:
    """``explain --format json`` for a loss."""
    return {
        "kind": "loss",
        "name": spec.name,
        "aliases": list(spec.aliases),
        "torch_names": list(losses.torch_names(spec)),
        "torch": spec.torch_class,
        "function": f"torch.nn.functional.{spec.function}" if spec.function else None,
        "summary": spec.summary,
        "formula": spec.formula,
        "inputs": [
            {
                "name": a.name,
                "role": a.role.value,
                "shape": a.shape,
                "dtype": _DTYPES[a.dtype],
                "gradient": a.differentiable,
            }
            for a in spec.arguments
        ],
        "options": [
            {
                "name": o.name,
                "flag": option_flag(o),
                "type": o.type.value,
                "default": o.default,
                "choices": list(o.choices),
                "help": o.help,
            }
            for o in spec.options
        ],
        "activation": spec.activation.value,
        "input_domain": spec.input_domain.value,
        "prediction": prediction_note(spec),
        "per_sample_rule": {
            "rule": spec.per_sample_rule.value,
            "text": per_sample_rule(spec),
        },
        "pitfalls": list(spec.pitfalls),
        "findings": [doc.name for doc in specific_findings(spec)],
        "general_findings": [doc.name for doc in general_findings()],
        "streamable": spec.streamable,
        "nonnegative": spec.nonnegative,
        "example": example_command(spec),
    }


def finding_record(doc: FindingDoc) -> dict[str, Any]:
    """``explain --format json`` for a finding."""
    return {
        "kind": "finding",
        "name": doc.name,
        "severity": doc.severity,
        "summary": doc.summary,
        "what": doc.what,
        "why": doc.why,
        "example": doc.example,
        "instead": doc.instead,
        "remedies": list(doc.remedies),
        "losses": list(applies_to(doc.name)),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _names_line(spec: LossSpec) -> str:
    """Every name the loss answers to on the command line: its own, aliases, torch's."""
    names = (spec.name, *spec.aliases, *losses.torch_names(spec))
    return "Names: " + ", ".join(f"`{name}`" for name in names) + "."


def _dtype_cell(dtype: DType) -> str:
    """The dtype in the inputs table: ``float`` alone (a note under the table says which),
    so the shape column keeps room for its longest shape at 80 columns."""
    return "float" if dtype is DType.FLOAT else _DTYPES[dtype]


def loss_markdown(spec: LossSpec) -> str:
    """The loss's documentation as Markdown (the body under the title)."""
    function = f" · `torch.nn.functional.{spec.function}`" if spec.function else ""
    lines = [
        f"{spec.summary}. Mirrors `{spec.torch_class}`{function}.",
        "",
        _names_line(spec),
        "",
        "## Formula",
        "",
        "```",
        spec.formula,
        "```",
        "",
        "## Inputs (in this order)",
        "",
        "| input | holds | shape | dtype | gradient |",
        "|---|---|---|---|---|",
    ]
    for argument in spec.arguments:
        lines.append(
            f"| `{argument.name}` | {argument.role.value} | {_cell(argument.shape)} | "
            f"{_dtype_cell(argument.dtype)} | {'yes' if argument.differentiable else 'no'} |"
        )
    if any(argument.dtype is DType.FLOAT for argument in spec.arguments):
        lines += ["", "A float input is computed in float32 unless `--dtype` says otherwise."]
    note = prediction_note(spec)
    if note:
        lines += ["", note]
    lines += ["", "## Options", "", "| option | default | meaning |", "|---|---|---|"]
    for option in spec.options:
        choices = f" ({' / '.join(option.choices)})" if option.choices else ""
        lines.append(
            f"| {_flag_cell(option)} | {option_default(option)} | {_cell(option.help)}{choices} |"
        )
    lines += ["", "## Per-sample losses", "", per_sample_rule(spec), ""]
    if not spec.nonnegative:
        lines += ["This loss can be negative: a negative value is not a finding.", ""]
    if spec.pitfalls:
        lines += ["## Pitfalls", ""]
        lines += [f"- {pitfall}" for pitfall in spec.pitfalls]
        lines.append("")
    specific = specific_findings(spec)
    lines += ["## Findings", ""]
    if specific:
        lines += [f"- `{doc.name}` ({doc.severity}): {doc.summary}" for doc in specific]
        lines.append("")
    general = ", ".join(f"`{doc.name}`" for doc in general_findings())
    lines += [
        f"Every loss also gets: {general}.",
        "",
        "`losscli explain FINDING` explains one.",
        "",
        "## Example",
        "",
        "```",
        example_command(spec),
        f"losscli debug {spec.name} {' '.join(a.name + '.npy' for a in spec.arguments)}",
        "```",
    ]
    return "\n".join(lines)


def finding_markdown(doc: FindingDoc) -> str:
    """The finding's documentation as Markdown: the four sections of a ruff rule page."""
    names = applies_to(doc.name)
    applies = (
        "every loss"
        if applies_to_every_loss(doc.name)
        else ", ".join(f"`{name}`" for name in names)
    )
    return "\n".join(
        [
            f"Fires when: {doc.summary}. Severity: {doc.severity}. Applies to: {applies}.",
            "",
            "## What it checks",
            "",
            doc.what,
            "",
            "## Why it matters",
            "",
            doc.why,
            "",
            "## Example",
            "",
            doc.example,
            "",
            "## Instead",
            "",
            doc.instead,
            *_remedies_markdown(doc),
        ]
    )


def _remedies_markdown(doc: FindingDoc) -> list[str]:
    """The kinds of remedy losscli tries, each applied and re-checked before it is shown."""
    if not doc.remedies:
        return []
    return [
        "",
        "## Fixes losscli tries",
        "",
        "Each is applied to the same inputs and kept only when the finding is gone and no "
        "new error appears; `debug` shows the value it gives and the command that runs it.",
        "",
        *(f"- {remedy}" for remedy in doc.remedies),
    ]


def index_markdown() -> str:
    """Every loss and every finding, one line each (``losscli explain`` with no name)."""
    lines = ["## Losses", ""]
    for spec in losses.LOSSES:
        aliases = f" ({', '.join(spec.aliases)})" if spec.aliases else ""
        lines.append(f"- `{spec.name}`{aliases}: {spec.summary}")
    lines += ["", "## Findings", ""]
    for doc in findings.CATALOGUE.values():
        lines.append(f"- `{doc.name}` ({doc.severity}): {doc.summary}")
    lines += ["", "`losscli explain NAME` shows one of them."]
    return "\n".join(lines)


def index_record() -> dict[str, Any]:
    """``explain --format json`` with no name."""
    return {
        "losses": [
            {"name": spec.name, "aliases": list(spec.aliases), "summary": spec.summary}
            for spec in losses.LOSSES
        ],
        "findings": [
            {"name": doc.name, "severity": doc.severity, "summary": doc.summary}
            for doc in findings.CATALOGUE.values()
        ],
    }


def record_lines(record: dict[str, Any]) -> list[dict[str, Any]]:
    """``explain --format ndjson``: the record of one loss or finding is one line; the
    index (no name) is one line per loss and per finding, each with its ``kind``."""
    if set(record) != {"losses", "findings"}:
        return [record]
    return [
        *({"kind": "loss", **entry} for entry in record["losses"]),
        *({"kind": "finding", **entry} for entry in record["findings"]),
    ]


def _titled(title: Text, body: str) -> RenderableType:
    return Group(title, Text(""), Markdown(body))


def render_loss(spec: LossSpec) -> RenderableType:
    """The Rich view of one loss."""
    aliases = f" (also {', '.join(spec.aliases)})" if spec.aliases else ""
    title = Text.assemble((spec.name, "bold"), aliases)
    return _titled(title, loss_markdown(spec))


def render_finding(doc: FindingDoc) -> RenderableType:
    """The Rich view of one finding."""
    title = Text.assemble((doc.name, "bold"), f" ({doc.severity})")
    return _titled(title, finding_markdown(doc))


def render_index() -> RenderableType:
    """The Rich view of the whole catalogue."""
    return _titled(Text("losscli explain", style="bold"), index_markdown())
