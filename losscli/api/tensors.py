"""Tensors in memory as the pipeline reads them: the Python API's loader.

A torch tensor (any device, any autograd state) or a NumPy array becomes a
:class:`~losscli.loaders.LoadedArray`, as a file would: a detached CPU copy, or a read-only
view of memory that already is on the CPU, so nothing losscli does can write into the
user's tensor, touch its graph, or be seen by autograd. bfloat16 (and the float8 types),
which NumPy lacks, arrive widened to float32 with the stored dtype kept, as a bfloat16
tensor read from a file does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from losscli.loaders import LoadedArray
from losscli.losses import LossSpec

# how reports and messages name an input that came from memory (SPEC: Python API)
TENSOR_SOURCE = "<tensor>"
ARRAY_SOURCE = "<array>"
# the compute dtypes losscli has (--dtype); the tensors' own dtype when it is one of them
COMPUTE_DTYPES = ("float32", "float64", "float16", "bfloat16")
_REAL_KINDS = "biuf"


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (torch is not imported to find out)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def loaded(value: Any, name: str) -> LoadedArray:
    """The argument ``name`` of a loss, given as a tensor, an array or a nested list.

    Raises:
        TypeError: not a real-valued dense array (complex, object, sparse, a meta tensor).
    """
    if is_tensor(value):
        return _from_tensor(value, name)
    array = np.asarray(value)
    if array.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name}: an array of {array.dtype} values; losses take real numbers")
    view = array.view()
    view.flags.writeable = False
    return LoadedArray(view, ARRAY_SOURCE)


def option_value(value: Any) -> Any:
    """A loss option as :func:`losscli.options.resolve` takes it: tensors as arrays."""
    if is_tensor(value):
        return _from_tensor(value, "option").values
    return value


def _from_tensor(tensor: Any, name: str) -> LoadedArray:
    import torch

    if tensor.layout != torch.strided:
        raise TypeError(f"{name}: a {tensor.layout} tensor; pass tensor.to_dense()")
    if tensor.is_meta:
        raise TypeError(f"{name}: a meta tensor holds no values")
    if tensor.is_complex():
        raise TypeError(f"{name}: a {tensor.dtype} tensor; losses take real numbers")
    detached = tensor.detach().resolve_conj().resolve_neg()
    stored: str | None = None
    if detached.is_floating_point() and detached.dtype not in (
        torch.float16,
        torch.float32,
        torch.float64,
    ):  # bfloat16, float8: NumPy has no such dtype; float32 holds every value exactly
        stored = str(detached.dtype).removeprefix("torch.")
        detached = detached.to(dtype=torch.float32)
    array = detached.cpu().numpy()
    view = array.view()
    view.flags.writeable = False  # torch gets a copy (compute.to_tensor), never this memory
    return LoadedArray(view, TENSOR_SOURCE, stored_dtype=stored)


def own_dtype(spec: LossSpec, arrays: dict[str, LoadedArray]) -> str:
    """The dtype a training computes ``spec`` in: the first float argument's (the
    prediction's), float32 when it is none of losscli's compute dtypes or no argument is
    float."""
    for argument in spec.arguments:
        array = arrays[argument.name]
        dtype = array.stored_dtype or str(array.values.dtype)
        if array.values.dtype.kind == "f":
            return dtype if dtype in COMPUTE_DTYPES else "float32"
    return "float32"


@dataclass(frozen=True)
class Rows:
    """What a bounded check reads of a large batch: evenly spaced samples, and of each, when
    one sample alone is too large (a segmentation map, a long sequence), every ``stride``-th
    position along the trailing dimensions the inputs share.

    Attributes:
        positions: the sample indices read, ascending.
        total: the samples in the batch.
        stride: the step along each strided dimension (1: none).
        strided: how many trailing dimensions are strided.
    """

    positions: np.ndarray
    total: int
    stride: int = 1
    strided: int = 0

    def text(self) -> str:
        read = f"checked on {self.positions.size} of {self.total} samples"
        if self.stride > 1:
            last = (
                "their last dimension"
                if self.strided == 1
                else f"each of their last {self.strided} dimensions"
            )
            read += f", one position in {self.stride} along {last}"
        return read + ", evenly spaced"


def bounded_rows(tensors: Sequence[Any], limit: int) -> Rows | None:
    """What to check when the tensors hold more than ``limit`` numbers, else None.

    Rows are taken along dimension 0, the same rows from every tensor, so only when every
    tensor is batched with the same first dimension (a CTC loss's concatenated targets are
    not: they are checked whole). At least one row; when one row holds more than ``limit``
    numbers, the trailing dimensions past the prediction's class dimension that every input
    ends with (H and W of ``(N, C, H, W)`` logits against ``(N, H, W)`` targets; T of
    ``(B, V, T)``) are strided too. No random number is drawn.
    """
    shapes = [tuple(getattr(t, "shape", np.shape(t))) for t in tensors]
    if any(not shape for shape in shapes) or len({shape[0] for shape in shapes}) != 1:
        return None
    total = shapes[0][0]
    elements = sum(math.prod(shape) for shape in shapes)
    if elements <= limit:
        return None
    per_row = max(1, elements // total)
    count = max(1, min(total, limit // per_row))
    positions = np.unique(np.linspace(0, total - 1, count).round().astype(np.int64))
    shared = _shared_trailing(shapes)
    if per_row <= limit or not shared:
        return None if count == total else Rows(positions, total)
    stride = math.ceil((per_row / limit) ** (1 / len(shared)))
    return Rows(positions, total, stride, len(shared))


def _shared_trailing(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The prediction's dimensions after its class dimension that end every input's shape."""
    spatial = shapes[0][2:]
    for length in range(len(spatial), 0, -1):
        suffix = spatial[-length:]
        if all(len(shape) > length and shape[-length:] == suffix for shape in shapes):
            return suffix
    return ()


def take_rows(value: Any, rows: Rows) -> Any:
    """The rows (and strided positions) of one tensor or array, copied on its own device: a
    GPU copies only them."""
    step = (Ellipsis, *([slice(None, None, rows.stride)] * rows.strided))
    if is_tensor(value):
        import torch

        index = torch.from_numpy(rows.positions).to(value.device)
        return value.detach().index_select(0, index)[step]
    return np.asarray(value)[rows.positions][step]
