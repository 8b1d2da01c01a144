"""Evidence: the samples that the checks judging the data as a whole look at.

Every sample while there are at most :func:`capacity` of them; beyond that a seeded uniform
sample of that many: the samples whose hashed global index is smallest (bottom-k
sampling). The hash depends on nothing but the index, so the same samples are chosen however
the input is cut into chunks: an input streamed and the same input whole are judged on the
same rows, by construction. Kept for each of them: the inputs as loaded and as converted,
and once computed, the per-sample loss and the gradient rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from losscli.loaders import LoadedArray
from losscli.result import ChunkResult, Computation

# the evidence holds at most this many samples ...
MAX_SAMPLES = 1 << 16
# ... and at most this many elements of the widest input
MAX_ELEMENTS = 1 << 20

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def capacity(sample_shapes: Iterable[tuple[int, ...]]) -> int:
    """How many samples the evidence keeps, from the shape of one sample of each input."""
    widest = max((math.prod(shape) for shape in sample_shapes), default=1)
    return max(1, min(MAX_SAMPLES, MAX_ELEMENTS // max(widest, 1)))


def priority(indices: np.ndarray) -> np.ndarray:
    """splitmix64 of each global sample index: a bijection, so no two samples tie."""
    z = indices.astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@dataclass
class _Piece:
    """The kept rows of one chunk."""

    priority: np.ndarray
    index: np.ndarray
    loaded: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]
    per_sample: np.ndarray | None = None
    ignored: np.ndarray | None = None
    gradients: dict[str, np.ndarray] = field(default_factory=dict)


class Evidence:
    """Collects the evidence rows chunk by chunk (see the module docstring).

    Args:
        limit: how many samples to keep; None keeps the one chunk of an input that cannot be
            cut into samples (ctc, an unbatched input) whole.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.total = 0
        self._pieces: list[_Piece] = []
        self._count = 0
        self._threshold: np.uint64 | None = None
        self._template: dict[str, LoadedArray] = {}

    @property
    def complete(self) -> bool:
        """Every sample seen so far is kept."""
        return self.limit is None or self.total <= self.limit

    def add(
        self,
        offset: int,
        loaded: dict[str, LoadedArray],
        arrays: dict[str, np.ndarray],
        result: ChunkResult | None,
        *,
        stable: bool,
    ) -> None:
        """Offer one chunk whose first sample is ``offset``.

        Args:
            offset: the global index of the chunk's first sample.
            loaded: the chunk as loaded, by argument name.
            arrays: the chunk as converted.
            result: what torch computed on it, if it did.
            stable: the arrays stay valid after this call (whole tensors); a streamed chunk's
                buffers are reused, so its kept rows are copied.
        """
        if not self._template:
            self._template = dict(loaded)
        rows = len(next(iter(arrays.values()))) if self.limit is not None and arrays else 0
        if self.limit is None:
            self.total += 1
            self._pieces.append(
                _Piece(
                    np.zeros(1, np.uint64),
                    np.zeros(1, np.int64),
                    {n: a.values for n, a in loaded.items()},
                    dict(arrays),
                    None if result is None else result.per_sample,
                    None if result is None else result.ignored,
                    {} if result is None else dict(result.gradients),
                )
            )
            return
        index = np.arange(offset, offset + rows, dtype=np.int64)
        chosen = priority(index)
        # once the evidence is full, only rows below its threshold can enter: a few
        positions = None if self._threshold is None else np.flatnonzero(chosen <= self._threshold)
        copies: dict[int, np.ndarray] = {}

        def take(values: np.ndarray) -> np.ndarray:
            values = np.asarray(values)
            if positions is not None:
                return values[positions]
            if stable:
                return values
            # a converted array may be the loaded one itself: copy it once
            return copies.setdefault(id(values), np.array(values))

        piece = _Piece(
            priority=take(chosen),
            index=take(index),
            loaded={name: take(a.values) for name, a in loaded.items()},
            arrays={name: take(a) for name, a in arrays.items()},
        )
        if result is not None:
            piece.per_sample = take(result.per_sample)
            piece.ignored = None if result.ignored is None else take(result.ignored)
            piece.gradients = {name: take(g) for name, g in result.gradients.items()}
        self.total += rows
        self._pieces.append(piece)
        self._count += piece.index.size
        if self._count > 2 * self.limit:
            self._trim(self.limit)

    def _trim(self, keep: int) -> None:
        """Keep the ``keep`` samples of smallest priority, in sample order."""
        merged = self._merged()
        if merged.index.size > keep:
            best = np.argpartition(merged.priority, keep - 1)[:keep]
            best.sort()  # pieces are in sample order, so positions are too
            merged = _select(merged, best)
            self._threshold = np.uint64(merged.priority.max())
        self._pieces = [merged]
        self._count = merged.index.size

    def _merged(self) -> _Piece:
        pieces = self._pieces
        if len(pieces) == 1:
            return pieces[0]

        def joined(parts: list[np.ndarray | None]) -> np.ndarray | None:
            return None if any(p is None for p in parts) else np.concatenate(parts)  # type: ignore[arg-type]

        first = pieces[0]
        return _Piece(
            priority=np.concatenate([p.priority for p in pieces]),
            index=np.concatenate([p.index for p in pieces]),
            loaded={n: np.concatenate([p.loaded[n] for p in pieces]) for n in first.loaded},
            arrays={n: np.concatenate([p.arrays[n] for p in pieces]) for n in first.arrays},
            per_sample=joined([p.per_sample for p in pieces]),
            ignored=joined([p.ignored for p in pieces]),
            gradients={
                n: np.concatenate([p.gradients[n] for p in pieces])
                for n in first.gradients
                if all(n in p.gradients for p in pieces)
            },
        )

    def _final(self) -> _Piece | None:
        if not self._pieces:
            return None
        if self.limit is not None:
            self._trim(self.limit)
        return self._pieces[0] if len(self._pieces) == 1 else self._merged()

    @property
    def kept(self) -> int | None:
        """How many samples the evidence holds (None: the input is not cut into samples)."""
        if self.limit is None:
            return None
        return min(self.total, self.limit)

    def inputs(self) -> tuple[dict[str, LoadedArray], dict[str, np.ndarray], np.ndarray | None]:
        """The evidence as loaded and as converted, and the global index of each row (None: all)."""
        piece = self._final()
        if piece is None:
            return {}, {}, None
        loaded = {
            name: dataclasses.replace(self._template[name], values=values)
            for name, values in piece.loaded.items()
        }
        rows = None if self.complete or self.limit is None else piece.index
        return loaded, piece.arrays, rows

    def computation(self, computed: Computation | None, scale: float) -> Computation | None:
        """``computed`` with the per-sample losses and gradients of the evidence rows.

        Args:
            computed: what the accumulator made of every chunk.
            scale: what chunk gradients are multiplied by to become the value's (1 for a
                whole input, which torch already computed with the user's reduction).
        """
        piece = self._final()
        if computed is None or piece is None or piece.per_sample is None:
            return computed
        gradients = piece.gradients
        if scale != 1.0:
            gradients = {n: g.astype(np.float64) * scale for n, g in gradients.items()}
        rows = None if self.complete or self.limit is None else piece.index
        return dataclasses.replace(
            computed,
            per_sample=np.asarray(piece.per_sample, dtype=np.float64),
            ignored=piece.ignored,
            gradients=gradients,
            rows=rows,
        )


def _select(piece: _Piece, positions: np.ndarray) -> _Piece:
    return _Piece(
        priority=piece.priority[positions],
        index=piece.index[positions],
        loaded={n: v[positions] for n, v in piece.loaded.items()},
        arrays={n: v[positions] for n, v in piece.arrays.items()},
        per_sample=None if piece.per_sample is None else piece.per_sample[positions],
        ignored=None if piece.ignored is None else piece.ignored[positions],
        gradients={n: g[positions] for n, g in piece.gradients.items()},
    )
