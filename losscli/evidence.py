"""Evidence: the samples that the checks judging the data as a whole look at.

Every sample while there are at most :func:`capacity` of them; beyond that a stratified
random sample: the samples are cut into blocks of 2^level consecutive ones, with the
smallest level that leaves at most ``capacity`` blocks, and each block is represented by one
of its samples, chosen by hashing the block's index. A block of level L+1 is two blocks of
level L, and it is represented by the representative of one of them (again chosen by a
hash), so going up a level keeps a subset of what was kept: the sample can be collected
chunk by chunk, even before the number of samples is known (text), and choosing costs
nothing for the samples not chosen.

Which samples are chosen depends on nothing but their indices and how many there are: an
input streamed and the same input whole are judged on the same rows, by construction. Kept
for each of them: the inputs as loaded and as converted, and once computed, the per-sample
loss and the gradient rows.
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


def _bit(level: int, blocks: np.ndarray) -> np.ndarray:
    """0 or 1 per block of ``level``: which half represents it (splitmix64 of level and block)."""
    z = (blocks.astype(np.uint64) << np.uint64(6)) + np.uint64(level) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return ((z ^ (z >> np.uint64(31))) >> np.uint64(63)).astype(np.int64)


def representatives(level: int, blocks: np.ndarray) -> np.ndarray:
    """The sample that represents each block of ``level`` (blocks of 2^level samples)."""
    chosen = np.asarray(blocks, dtype=np.int64)
    for below in range(level, 0, -1):
        chosen = 2 * chosen + _bit(below, chosen)
    return chosen


@dataclass
class _Piece:
    """The kept rows of one chunk, with their global sample indices."""

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
        total: how many samples will come, when known: the level then starts where it must
            end at least, so that a large input is never copied whole.
        per_sample: the arguments indexed by sample; the others (broadcast against every
            sample: a scalar variance) are kept once, as they are, and their gradients left out.
    """

    def __init__(
        self,
        limit: int | None,
        total: int | None = None,
        per_sample: frozenset[str] | None = None,
    ) -> None:
        self.limit = limit
        self.per_sample = per_sample
        self._broadcast: dict[str, np.ndarray] = {}
        self._broadcast_arrays: dict[str, np.ndarray] = {}
        self.total = 0
        self.level = 0
        if limit is not None and total is not None:
            while total >> (self.level) > limit:  # floor(total / 2^level) whole blocks
                self.level += 1
        self._pieces: list[_Piece] = []
        self._count = 0
        self._template: dict[str, LoadedArray] = {}

    @property
    def complete(self) -> bool:
        """Every sample seen so far is kept."""
        return self.limit is None or self.total <= self.limit

    @property
    def kept(self) -> int | None:
        """How many samples the evidence holds (None: the input is not cut into samples)."""
        if self.limit is None:
            return None
        return self._count

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
        if self.limit is not None and self.per_sample is not None:
            for name in set(loaded) - self.per_sample:
                self._broadcast.setdefault(name, np.asarray(loaded[name].values))
                self._broadcast_arrays.setdefault(name, np.asarray(arrays[name]))
            loaded = {n: a for n, a in loaded.items() if n in self.per_sample}
            arrays = {n: a for n, a in arrays.items() if n in self.per_sample}
            if result is not None:
                result = dataclasses.replace(
                    result,
                    gradients={n: g for n, g in result.gradients.items() if n in self.per_sample},
                )
        if self.limit is None:
            self._pieces.append(
                _Piece(
                    np.zeros(0, np.int64),
                    {n: a.values for n, a in loaded.items()},
                    dict(arrays),
                    None if result is None else result.per_sample,
                    None if result is None else result.ignored,
                    {} if result is None else dict(result.gradients),
                )
            )
            return
        rows = len(next(iter(arrays.values())))  # the per-sample arguments share their rows
        end = offset + rows
        blocks = np.arange(offset >> self.level, ((end - 1) >> self.level) + 1, dtype=np.int64)
        index = representatives(self.level, blocks)
        index = index[(index >= offset) & (index < end)]
        positions = index - offset
        everything = self.level == 0 and positions.size == rows
        copies: dict[int, np.ndarray] = {}

        def take(values: np.ndarray) -> np.ndarray:
            values = np.asarray(values)
            if not everything:
                return values[positions]
            if stable:
                return values
            # a converted array may be the loaded one itself: copy it once
            return copies.setdefault(id(values), np.array(values))

        piece = _Piece(
            index=index,
            loaded={name: take(a.values) for name, a in loaded.items()},
            arrays={name: take(a) for name, a in arrays.items()},
        )
        if result is not None:
            piece.per_sample = take(result.per_sample)
            piece.ignored = None if result.ignored is None else take(result.ignored)
            piece.gradients = {name: take(g) for name, g in result.gradients.items()}
        self.total += rows
        self._pieces.append(piece)
        self._count += index.size
        while self._count > self.limit:
            self._raise_level()

    def merge(self, later: Evidence) -> None:
        """Fold in the evidence of the samples that follow these (a later shard's, collected
        with the same global sample indices): both brought to the higher level, joined, and
        raised while they hold too many. Which samples are kept depends only on their
        indices, so this keeps what one evidence fed every chunk would. ``later`` is taken
        over (its level may be raised), so it is not used again."""
        self._template = self._template or later._template
        for name, values in later._broadcast.items():
            self._broadcast.setdefault(name, values)
        for name, values in later._broadcast_arrays.items():
            self._broadcast_arrays.setdefault(name, values)
        if self.limit is None:  # an input that is not cut into samples: one chunk in all
            self._pieces += later._pieces
            return
        while self.level < later.level:
            self._raise_level()
        while later.level < self.level:
            later._raise_level()
        self._pieces += later._pieces
        self._count += later._count
        self.total += later.total
        assert self.limit is not None
        while self._count > self.limit:
            self._raise_level()

    def _raise_level(self) -> None:
        """Blocks twice as large: keep the representative of each (one of the two kept)."""
        self.level += 1
        if not self._pieces:
            return
        merged = self._merged()
        keep = np.flatnonzero(
            representatives(self.level, merged.index >> self.level) == merged.index
        )
        self._pieces = [_select(merged, keep)]
        self._count = keep.size

    def _merged(self) -> _Piece:
        pieces = self._pieces
        if len(pieces) == 1:
            return pieces[0]

        def joined(parts: list[np.ndarray | None]) -> np.ndarray | None:
            present = [p for p in parts if p is not None]
            return np.concatenate(present) if len(present) == len(parts) else None

        first = pieces[0]
        return _Piece(
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
        self._pieces = [self._merged()]
        return self._pieces[0]

    def inputs(self) -> tuple[dict[str, LoadedArray], dict[str, np.ndarray], np.ndarray | None]:
        """The evidence as loaded and as converted, and the global index of each row (None: all)."""
        piece = self._final()
        if piece is None:
            return {}, {}, None
        values = {**piece.loaded, **self._broadcast}
        arrays = {**piece.arrays, **self._broadcast_arrays}
        order = list(self._template)
        loaded = {
            name: dataclasses.replace(self._template[name], values=values[name]) for name in order
        }
        return loaded, {name: arrays[name] for name in order}, self._rows(piece)

    def _rows(self, piece: _Piece) -> np.ndarray | None:
        return None if self.complete or self.limit is None else piece.index

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
        return dataclasses.replace(
            computed,
            per_sample=np.asarray(piece.per_sample, dtype=np.float64),
            ignored=piece.ignored,
            gradients=gradients,
            rows=self._rows(piece),
        )


def _select(piece: _Piece, positions: np.ndarray) -> _Piece:
    return _Piece(
        index=piece.index[positions],
        loaded={n: v[positions] for n, v in piece.loaded.items()},
        arrays={n: v[positions] for n, v in piece.arrays.items()},
        per_sample=None if piece.per_sample is None else piece.per_sample[positions],
        ignored=None if piece.ignored is None else piece.ignored[positions],
        gradients={n: g[positions] for n, g in piece.gradients.items()},
    )
