"""The checks' numpy primitives agree with torch's, also on scores that overflow exp()."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from losscli import stable

SCORES = arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.integers(1, 6)),
    elements=st.floats(-800, 800, allow_nan=False),
)


@given(SCORES, st.sampled_from([0, 1]))
def test_logsumexp_log_softmax_and_softmax_match_torch(scores: np.ndarray, axis: int) -> None:
    tensor = torch.from_numpy(scores)
    np.testing.assert_allclose(
        stable.logsumexp(scores, axis),
        torch.logsumexp(tensor, axis).numpy(),
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        stable.log_softmax(scores, axis),
        torch.log_softmax(tensor, axis).numpy(),
        rtol=1e-12,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        stable.softmax(scores, axis), torch.softmax(tensor, axis).numpy(), atol=1e-12
    )


@given(SCORES)
def test_sigmoid_matches_torch_without_overflow(scores: np.ndarray) -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        mine = stable.sigmoid(scores)
    np.testing.assert_allclose(mine, torch.sigmoid(torch.from_numpy(scores)).numpy(), atol=1e-15)
