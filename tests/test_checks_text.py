"""The checks' text toolkit: numbers, shapes, positions that name global samples, and
commands that run as pasted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from losscli import losses, text
from losscli.checks import CheckContext
from losscli.checks.targets import check_class_index_range, check_ctc_blank_in_targets
from losscli.inference import command_line as inference_command_line
from losscli.invocation import option_words
from losscli.loaders import LoadedArray
from losscli.options import resolve


def _context(loss: str, arrays: list[Any], sources: list[str] | None = None, **view: Any) -> Any:
    spec = losses.get(loss)
    assert spec is not None
    names = [a.name for a in spec.arguments]
    files = sources or [f"{name}.npy" for name in names]
    inputs = {
        name: LoadedArray(np.asarray(values), source)
        for name, values, source in zip(names, arrays, files, strict=True)
    }
    return CheckContext(
        spec=spec,
        inputs=inputs,
        arrays={name: loaded.values for name, loaded in inputs.items()},
        options=resolve(spec, {}),
        **view,
    )


def test_numbers_counts_percentages_and_spans() -> None:
    assert text.number(3.14159265) == "3.142"
    assert text.number(524288.0) == "5.243e+05"
    assert text.count(524288.0) == "524288"  # whole counts in full
    assert text.count(2.5) == "2.5"
    assert text.percent(1, 3) == "33.3%"
    assert text.percent(0, 0) == "0%"
    assert text.span(np.array([np.nan, -2.5, 3.0, np.inf])) == "-2.5 to 3"
    assert text.array_flag(np.array([0.5, 2.0, 1.0 / 3])) == "[0.5,2,0.3333]"


def test_shapes_read_like_python_tuples() -> None:
    assert text.shape_text((4,)) == "(4,)"
    assert text.shape_text((4, 3)) == "(4, 3)"
    assert text.shape_text(()) == "()"
    context = _context("mse", [np.zeros((4, 3)), np.zeros((4, 3))], ["pred.npy", "true.csv"])
    assert text.described(context, "target") == "target (4, 3) from true.csv"


def test_position_and_where() -> None:
    assert text.position((5,)) == "index 5"
    assert text.position((5, 2)) == "position [5, 2]"
    assert text.where([[5], [9]]) == "5, 9"
    assert text.where([[5, 2], [9, 0]]) == "[5, 2], [9, 0]"


def test_positions_are_global_through_a_chunk_offset() -> None:
    # a chunk that starts at sample 1000: row 2 of the chunk is sample 1002
    mask = np.zeros((4, 3), dtype=bool)
    mask[2, 1] = mask[3, 0] = True
    chunk = _context("mse", [np.zeros((4, 3)), np.zeros((4, 3))], offset=1000)
    assert text.positions(chunk, "input", mask) == [[1002, 1], [1003, 0]]
    assert text.first(chunk, "input", mask) == (1002, 1)
    whole = _context("mse", [np.zeros((4, 3)), np.zeros((4, 3))])
    assert text.positions(whole, "input", mask) == [[2, 1], [3, 0]]  # near miss: no offset


def test_positions_are_global_through_the_evidence_rows() -> None:
    # the evidence holds samples 5, 17 and 42 of the data
    mask = np.array([False, True, True])
    evidence = _context("mse", [np.zeros(3), np.zeros(3)], rows=np.array([5, 17, 42]))
    assert text.positions(evidence, "target", mask) == [[17], [42]]
    assert text.positions(evidence, "target", mask, limit=1) == [[17]]


def test_positions_map_the_batch_dimension_of_ctc_log_probs() -> None:
    # log_probs are [time, batch, classes]: dimension 1 is the sample
    log_probs = np.zeros((5, 2, 4))
    mask = np.zeros_like(log_probs, dtype=bool)
    mask[3, 1, 2] = True
    context = _context(
        "ctc",
        [log_probs, np.ones((2, 2), dtype=np.int64), np.array([5, 5]), np.array([2, 2])],
        offset=10,
    )
    assert text.positions(context, "log_probs", mask) == [[3, 11, 2]]


def test_a_check_on_a_chunk_quotes_global_sample_indices() -> None:
    # class index 7 of 3 classes at row 3 of a chunk that starts at sample 1000
    logits = np.zeros((4, 3), dtype=np.float32)
    labels = np.array([0, 1, 2, 7])
    (found,) = check_class_index_range(_context("cross-entropy", [logits, labels], offset=1000))
    assert "first at 1003" in found.message
    assert found.evidence["first_positions"] == [[1003]]
    (whole,) = check_class_index_range(_context("cross-entropy", [logits, labels]))
    assert "first at 3" in whole.message


def test_a_check_on_the_evidence_quotes_its_samples() -> None:
    # ctc targets of the evidence's samples 40 and 90: the second holds the blank 0
    log_probs = np.log(np.full((6, 2, 4), 0.25, dtype=np.float32))
    targets = np.array([[1, 2], [0, 3]])
    context = _context(
        "ctc", [log_probs, targets, np.array([6, 6]), np.array([2, 2])], rows=np.array([40, 90])
    )
    (found,) = check_ctc_blank_in_targets(context)
    assert "first: sample 90, position 0" in found.message
    assert found.evidence["samples"] == [90]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((("p", "2"),), "losscli compute multi-margin a.npy b.npy -p 2"),
        ((("margin", "0.5"),), "losscli compute multi-margin a.npy b.npy --margin 0.5"),
    ],
)
def test_inference_builds_its_commands_with_the_same_flags(
    options: tuple[tuple[str, str], ...], expected: str
) -> None:
    assert inference_command_line("multi-margin", ["a.npy", "b.npy"], options) == expected


def test_every_option_flag_comes_from_the_catalogue() -> None:
    for option in losses.all_options().values():
        spec = next(s for s in losses.LOSSES if s.option(option.name) is not None)
        assert option_words(spec, option.name, 1)[0] == option.flag
    assert losses.flag_for("p") == "-p"
    assert losses.flag_for("pos_weight") == "--pos-weight"
