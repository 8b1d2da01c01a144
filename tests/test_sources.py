"""The INPUT syntax: files, file:selector, '-', inline JSON; an existing path always wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from losscli.errors import UsageError
from losscli.sources import Source, SourceKind, check_one_stdin, parse_source


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dash_is_stdin() -> None:
    source = parse_source("-")
    assert source == Source(SourceKind.STDIN, "-")
    assert source.display == "<stdin>"


def test_dash_with_selector_is_stdin_with_selector() -> None:
    source = parse_source("-:label")
    assert (source.kind, source.selector, source.display) == (
        SourceKind.STDIN,
        "label",
        "<stdin>:label",
    )


@pytest.mark.parametrize("text", ["[1, 2.5, 4]", " [[1,2],[3,4]]", "[", "[nan]"])
def test_bracket_is_inline(text: str, in_tmp: Path) -> None:
    assert parse_source(text).kind is SourceKind.INLINE


def test_plain_file_has_no_selector(in_tmp: Path) -> None:
    source = parse_source("pred.npy")
    assert (source.kind, source.path, source.selector) == (SourceKind.FILE, Path("pred.npy"), None)


@pytest.mark.parametrize(
    ("text", "path", "selector"),
    [
        ("z.npz:logits", "z.npz", "logits"),
        ("t.csv:label", "t.csv", "label"),
        ("t.csv:0,2", "t.csv", "0,2"),
        ("runs/x.pt:3", "runs/x.pt", "3"),
        ("a/b.tar.csv.gz:col", "a/b.tar.csv.gz", "col"),
        ("x.parquet: scores ", "x.parquet", "scores"),
    ],
)
def test_selector_after_the_last_colon(text: str, path: str, selector: str, in_tmp: Path) -> None:
    source = parse_source(text)
    assert (source.kind, source.path, source.selector) == (SourceKind.FILE, Path(path), selector)
    assert source.display == text
    assert source.file_name == path


def test_existing_path_with_colon_wins(in_tmp: Path) -> None:
    (in_tmp / "a:b.csv").write_text("1\n2\n")
    source = parse_source("a:b.csv")
    assert (source.path, source.selector) == (Path("a:b.csv"), None)


def test_existing_file_named_like_a_selector_wins(in_tmp: Path) -> None:
    # both "x.csv" and "x.csv:label" exist: the literal name is what the user typed
    (in_tmp / "x.csv").write_text("label\n1\n")
    (in_tmp / "x.csv:label").write_text("2\n")
    assert parse_source("x.csv:label").selector is None
    (in_tmp / "x.csv:label").unlink()
    assert parse_source("x.csv:label").selector == "label"


def test_colon_without_a_file_suffix_is_not_split(in_tmp: Path) -> None:
    # "a" names no file and has no suffix: the whole argument is the (missing) path
    source = parse_source("a:b.csv")
    assert (source.path, source.selector) == (Path("a:b.csv"), None)


def test_selector_containing_a_slash_is_part_of_the_path(in_tmp: Path) -> None:
    source = parse_source("odd.name:dir/file.csv")
    assert (source.path, source.selector) == (Path("odd.name:dir/file.csv"), None)


def test_existing_directory_head_splits(in_tmp: Path) -> None:
    (in_tmp / "data").mkdir()
    assert parse_source("data:key").selector == "key"


def test_inline_loses_to_an_existing_file(in_tmp: Path) -> None:
    (in_tmp / "[1].csv").write_text("1\n")
    assert parse_source("[1].csv").kind is SourceKind.FILE


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_argument_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="empty"):
        parse_source(text)


@pytest.mark.parametrize("text", ["z.npz:", "z.npz:  ", "-:"])
def test_empty_selector_is_a_usage_error(text: str, in_tmp: Path) -> None:
    with pytest.raises(UsageError, match="nothing after ':'"):
        parse_source(text)


def test_nul_in_a_name_is_not_an_existing_path(in_tmp: Path) -> None:
    source = parse_source("a\x00b.npy")
    assert source.kind is SourceKind.FILE and source.selector is None


@pytest.mark.parametrize(
    "arguments", [["-", "-"], ["-:a", "-:b"], [" - ", "-:label"], ["p.npy", "-", "-:y"]]
)
def test_two_stdin_inputs_are_a_usage_error(arguments: list[str]) -> None:
    # standard input can be read once: the second reader would find it empty
    with pytest.raises(UsageError, match="only one input can come from standard input"):
        check_one_stdin(arguments)


@pytest.mark.parametrize("arguments", [["-", "t.csv"], ["-:a", "[1, 2]"], ["p.npy", "t.npy"]])
def test_one_stdin_input_is_fine(arguments: list[str]) -> None:
    check_one_stdin(arguments)
