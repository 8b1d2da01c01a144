"""The finding catalogue is the contract: every SPEC name documented, in four sections."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from losscli import losses
from losscli.findings import CATALOGUE, FindingDoc, Severity, finding
from losscli.render.explain import applies_to

# SPEC.md "Findings" table, copied verbatim: name → severity. This is the contract; a name
# missing from the catalogue, or documented at another severity, fails here.
SPEC_FINDINGS: dict[str, str] = {
    "shape-mismatch": "error",
    "silent-broadcast": "error",
    "batch-size-mismatch": "error",
    "target-has-extra-dim": "error",
    "class-dim-last": "warning",
    "empty-input": "error",
    "float-class-target": "warning / error",
    "int-target-for-float-loss": "info",
    "mixed-float-dtypes": "info",
    "low-precision": "warning",
    "class-index-out-of-range": "error",
    "all-targets-ignored": "error",
    "target-outside-unit-interval": "error",
    "input-outside-unit-interval": "error",
    "sign-target-expected": "error",
    "negative-poisson-target": "error",
    "nonpositive-variance": "error",
    "kl-target-not-distribution": "error",
    "kl-input-not-log": "error",
    "probabilities-as-logits": "warning",
    "logits-to-nll": "error",
    "probabilities-to-nll": "error",
    "saturated-probabilities": "warning",
    "one-hot-target": "info / warning",
    "multilabel-target": "warning",
    "class-imbalance": "info",
    "non-finite-input": "error",
    "non-finite-loss": "error",
    "non-finite-gradient": "error",
    "vanishing-gradient": "warning",
    "constant-input": "warning",
    "soft-target-not-distribution": "warning",
    "ctc-input-not-log-probs": "error",
    "ctc-blank-in-targets": "error",
    "ctc-target-too-long": "error",
    "single-logit-cross-entropy": "error",
    "unbatched-input": "warning",
    "weight-length-mismatch": "error",
    "kl-mean-reduction": "warning",
    "poisson-log-input-mismatch": "warning / error",
    "swapped-inputs": "error",
    "padding-not-ignored": "warning",
    "variance-miscalibrated": "warning",
    "collapsed-predictions": "warning",
    "scale-mismatch": "warning",
    "fit-too-good": "warning",
    "misaligned-samples": "warning",
}

# losscli's own findings, beyond the SPEC table
EXTENSIONS = ("dtype-conversion", "torch-rejected", "negative-loss")

SECTIONS = ("what", "why", "example", "instead")


def test_the_spec_table_names_are_listed() -> None:
    # SPEC.md's Findings table has 47 rows: 40 from the first build, swapped-inputs from
    # verified fixes, and the six findings on real data (collapsed-predictions, scale-mismatch,
    # fit-too-good, misaligned-samples, padding-not-ignored, variance-miscalibrated)
    assert len(SPEC_FINDINGS) == 47


@pytest.mark.parametrize("name", sorted(SPEC_FINDINGS))
def test_every_spec_finding_is_catalogued_at_its_severity(name: str) -> None:
    assert name in CATALOGUE, f"{name} is in SPEC.md but not in findings.CATALOGUE"
    assert CATALOGUE[name].severity == SPEC_FINDINGS[name]


@pytest.mark.parametrize("name", EXTENSIONS)
def test_losscli_extensions_are_catalogued(name: str) -> None:
    assert name in CATALOGUE


@pytest.mark.parametrize("doc", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_every_doc_has_four_nonempty_sections(doc: FindingDoc) -> None:
    for section in SECTIONS:
        text = getattr(doc, section)
        # a real sentence, not a placeholder
        assert len(text.split()) >= 8, f"{doc.name}.{section} is too short: {text!r}"
        assert text.rstrip().endswith((".", ")", "`")), f"{doc.name}.{section}: {text!r}"
    assert doc.summary


@pytest.mark.parametrize("doc", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_example_shows_code_and_instead_gives_a_fix(doc: FindingDoc) -> None:
    # Example: how it happens in training code, with a code line; Instead: code or a command
    assert "`" in doc.example, doc.name
    assert "`" in doc.instead, doc.name


@pytest.mark.parametrize("doc", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_names_and_severities_are_well_formed(doc: FindingDoc) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", doc.name)
    levels = [level.strip() for level in doc.severity.split("/")]
    assert all(level in {s.value for s in Severity} for level in levels), doc.severity


@pytest.mark.parametrize("doc", list(CATALOGUE.values()), ids=list(CATALOGUE))
def test_applies_to_names_real_losses(doc: FindingDoc) -> None:
    for name in applies_to(doc.name):
        spec = losses.get(name)
        assert spec is not None and spec.name == name, f"{doc.name}: unknown loss {name!r}"


def test_loss_specific_findings_apply_to_their_losses() -> None:
    # spot checks of the applies-to data against the SPEC table's wording
    assert applies_to("input-outside-unit-interval") == ("bce",)
    assert set(applies_to("sign-target-expected")) == {
        "hinge-embedding",
        "margin-ranking",
        "cosine-embedding",
        "soft-margin",
    }
    # every loss that applies softmax or sigmoid to its input itself
    assert set(applies_to("probabilities-as-logits")) == {
        spec.name for spec in losses.LOSSES if spec.activation is not losses.Activation.NONE
    }
    assert "mse" not in applies_to("class-index-out-of-range")
    assert applies_to("non-finite-input") == tuple(spec.name for spec in losses.LOSSES)


def test_pytorch_facts_quoted_in_the_docs() -> None:
    # the facts a reader relies on (checked against torch 2.x behaviour and docs)
    assert "-input[i, target_i]" in CATALOGUE["logits-to-nll"].why
    assert "-100" in CATALOGUE["saturated-probabilities"].why
    assert "1.10" in CATALOGUE["one-hot-target"].why
    assert "batchmean" in CATALOGUE["kl-mean-reduction"].why
    # the value torch names is the offending target's: the finding quotes it, the docs cannot
    assert "Target <value> is out of bounds" in CATALOGUE["class-index-out-of-range"].why
    assert "multi-target not supported" in CATALOGUE["target-has-extra-dim"].why


def test_finding_refuses_an_unknown_name() -> None:
    with pytest.raises(KeyError):
        finding("no-such-finding", Severity.ERROR, "message")
    made = finding("constant-input", Severity.WARNING, "every value is 0.5", "check the model")
    assert made.to_dict()["name"] == "constant-input"


def test_findings_module_imports_neither_torch_nor_numpy() -> None:
    code = (
        "import sys; import losscli.findings; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_silent_broadcast_applies_exactly_to_the_losses_torch_broadcasts() -> None:
    # the doc's applies-to list, checked against torch: (N, 1) input with an (N,) target, or
    # for soft-margin, which broadcasts only into the input's shape, (N, 3) with a (3,) target
    import warnings

    import torch

    from losscli.compute import loss_function
    from losscli.options import resolve

    def broadcasts(spec: losses.LossSpec, columns: int, length: int) -> bool:
        prediction = torch.rand(4, columns) * 0.8 + 0.1
        target = (
            torch.tensor([1.0, -1.0, 1.0, -1.0][:length])
            if spec.argument(losses.Role.SIGN_TARGET)
            else torch.tensor([1.0, 0.0, 1.0, 0.0][:length])
        )
        extra = [torch.ones(4, columns)] if len(spec.arguments) == 3 else []
        function = loss_function(spec, resolve(spec, {}))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                function(prediction, target, *extra, reduction="mean")
        except (RuntimeError, ValueError, IndexError):
            return False
        return True

    # the element-wise losses: input and target shaped alike
    elementwise = [
        spec
        for spec in losses.LOSSES
        if [a.name for a in spec.arguments][:2] == ["input", "target"]
        and spec.arguments[1].shape.startswith("[batch, *]")
    ]
    assert len(elementwise) >= 10
    documented = set(applies_to("silent-broadcast"))
    for spec in elementwise:
        torch_broadcasts = broadcasts(spec, 1, 4) or broadcasts(spec, 3, 3)
        assert torch_broadcasts == (spec.name in documented), spec.name
