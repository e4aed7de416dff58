"""linear_rows: the per-token (row) quantised linear layer of the decoder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_helpers import agree

from verimesh.runtime import ExecutionContext, fixed
from verimesh.runtime.ops._common import OpError
from verimesh.runtime.ops.rows import linear_rows_fast, row_exponents


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 4),
    k=st.integers(1, 40),
    n=st.integers(1, 6),
    magnitude=st.integers(0, 30),
    dtype=st.sampled_from(["int16", "int32"]),
)
def test_fast_equals_reference(seed: int, rows: int, k: int, n: int, magnitude: int, dtype: str) -> None:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    bound = min(2**magnitude, int(info.max))
    x = rng.integers(-bound, bound + 1, (rows, k)).astype(dtype)
    x[0, 0] = info.min if magnitude >= 30 else x[0, 0]  # the most negative value too
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    m, s = fixed.multiplier_tensors(rng.uniform(1e-6, 2.0, n))  # ratios up to 2: shift < 33
    out_dtype = str(rng.choice(["int16", "int32"]))
    fast = agree("linear_rows", [x, w, m, s], out_dtype=out_dtype)
    assert fast.dtype == out_dtype


def test_rows_keep_their_own_precision() -> None:
    """A huge row next to a small one: the small row is as exact as if it were alone."""
    rng = np.random.default_rng(1)
    small = rng.integers(-3000, 3000, (1, 64)).astype(np.int32)
    huge = (small * 100_000).astype(np.int32)
    w = rng.integers(-127, 128, (8, 64)).astype(np.int8)
    m, s = fixed.multiplier_tensors(np.full(8, 2**-10))
    both = linear_rows_fast([np.concatenate([huge, small]), w, m, s], {})
    alone = linear_rows_fast([small, w, m, s], {})
    assert np.array_equal(both[1:], alone)
    assert row_exponents(np.concatenate([huge, small])).ravel().tolist()[1] == 0
    expected = small.astype(np.int64) @ w.T.astype(np.int64) / 2**10
    assert np.abs(alone - expected).max() <= 0.5


def test_bad_inputs_are_refused_with_a_reason() -> None:
    ctx = ExecutionContext(trace=False)
    w = np.ones((2, 3), np.int8)
    m, s = fixed.multiplier_tensors(np.full(2, 0.01))
    with pytest.raises(OpError, match="do not fit"):
        ctx.call("linear_rows", np.ones((1, 4), np.int16), w, m, s)
    with pytest.raises(ValueError, match="int16 or int32"):
        ctx.call("linear_rows", np.ones((1, 3), np.int8), w, m, s)
    with pytest.raises(ValueError, match="int32"):
        ctx.call("linear_rows", np.ones((1, 3), np.int16), w, m.astype(np.int64), s)
