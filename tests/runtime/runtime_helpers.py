"""Shared helpers for the runtime tests (a plain module: conftest names collide across folders)."""

from __future__ import annotations

import numpy as np
from hypothesis import settings

from verimesh.runtime import get_op

SETTINGS = settings(max_examples=30, deadline=None)


def ints(rng: np.random.Generator, shape, dtype: str, extreme: bool = False) -> np.ndarray:
    """Random integers of ``dtype``; with ``extreme`` only the dtype's min and max."""
    info = np.iinfo(dtype)
    if extreme:
        return rng.choice(np.array([info.min, info.max], dtype=dtype), size=shape)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)


def agree(name: str, inputs, **params) -> np.ndarray:
    """Run op ``name`` on both paths, assert identical bytes, return the output."""
    op = get_op(name)
    fast = op.fast(list(inputs), params)
    ref = op.reference(list(inputs), params)
    assert fast.dtype == ref.dtype, (fast.dtype, ref.dtype)
    assert fast.shape == ref.shape, (fast.shape, ref.shape)
    np.testing.assert_array_equal(fast, ref)
    return fast
