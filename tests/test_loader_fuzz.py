"""Hypothesis over every loader: random bytes, and valid files with mutated bytes.

Whatever the bytes, loading ends in a real-numbered array or a LoadError, never anything
else (no other exception, no pickle execution, no hang on a claimed size).
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from losscli.errors import LoadError
from losscli.loaders import load
from losscli.sources import parse_source

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(12, dtype=np.float32).reshape(3, 4))
    return buffer.getvalue()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, logits=np.linspace(-1, 1, 12).reshape(3, 4))
    return buffer.getvalue()


def _csv() -> bytes:
    return b"pred,label\n0.5,1\n-1.25,0\n3,1\nnan,0\n"


def _parquet() -> bytes:
    buffer = io.BytesIO()
    table = pa.table({"a": [1.0, 2.0, 3.0], "v": [[1, 2], [3, 4], [5, 6]]})
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _feather() -> bytes:
    buffer = io.BytesIO()
    feather.write_feather(pa.table({"a": [1.0, 2.0, 3.0], "b": [1, 0, 1]}), buffer)
    return buffer.getvalue()


def _pt() -> bytes:
    buffer = io.BytesIO()
    torch.save({"logits": torch.randn(3, 4), "labels": torch.tensor([0, 2, 1])}, buffer)
    return buffer.getvalue()


# file name → a valid file of that format, the seed the mutation tests start from
SEEDS: dict[str, bytes] = {
    "f.npy": _npy(),
    "f.npz": _npz(),
    "f.csv": _csv(),
    "f.tsv": _csv().replace(b",", b"\t"),
    "f.csv.gz": gzip.compress(_csv()),
    "f.txt": b"1 2 3\n4 5 6\n",
    "f.parquet": _parquet(),
    "f.feather": _feather(),
    "f.pt": _pt(),
    "f.json": b"[[1, 2.5], [3, 4]]",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _load_is_clean(path: Path, selector: str | None = None) -> None:
    text = str(path) if selector is None else f"{path}:{selector}"
    try:
        loaded = load(parse_source(text))
    except LoadError as error:
        assert error.line().count("\n") == 0
        assert str(path) in error.line()
        return
    assert isinstance(loaded.values, np.ndarray)
    assert loaded.values.dtype.kind in "biuf"


def _mutate(seed: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    return bytes(data)


_EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seeds_load(name: str, workdir: Path) -> None:
    # the mutation tests start from files that really load (with a selector where needed)
    path = workdir / f"seed-{name}"
    path.write_bytes(SEEDS[name])
    selector = {"f.pt": "logits", "f.parquet": "v"}.get(name)
    text = str(path) if selector is None else f"{path}:{selector}"
    assert load(parse_source(text)).values.size > 0


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(name: str, data: bytes, workdir: Path) -> None:
    path = workdir / f"random-{name}"
    path.write_bytes(data)
    _load_is_clean(path)


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(edits=_EDITS, cut=st.none() | st.integers(0, 1 << 20))
def test_mutated_valid_file(
    name: str, edits: list[tuple[int, int]], cut: int | None, workdir: Path
) -> None:
    path = workdir / f"mutated-{name}"
    path.write_bytes(_mutate(SEEDS[name], edits, cut))
    selector = {"f.pt": "logits", "f.npz": "logits"}.get(name)
    _load_is_clean(path, selector)


@FUZZ
@given(text=st.text(max_size=200))
def test_inline_text(text: str) -> None:
    if not text.strip() or text.strip() == "-" or text.strip().startswith("-:"):
        return
    try:
        loaded = load(parse_source("[" + text))
    except LoadError:
        return
    assert loaded.values.dtype.kind in "biuf"


@FUZZ
@given(shape=st.lists(st.integers(0, 1 << 40), max_size=4), extra=st.binary(max_size=64))
def test_npz_member_headers_never_allocate_from_a_claim(
    shape: list[int], extra: bytes, workdir: Path
) -> None:
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(buffer, header)
    path = workdir / "claims.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", buffer.getvalue() + extra)
    _load_is_clean(path)
