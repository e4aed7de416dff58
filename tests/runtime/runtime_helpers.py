"""Shared helpers for the runtime tests (a plain module: conftest names collide across folders)."""

from __future__ import annotations

import numpy as np
from hypothesis import settings

from verimesh.runtime import get_op
from verimesh.runtime.tensor import dtype_name, stand_in

SETTINGS = settings(max_examples=30, deadline=None)


def ints(rng: np.random.Generator, shape, dtype: str, extreme: bool = False) -> np.ndarray:
    """Random integers of ``dtype``; with ``extreme`` only the dtype's min and max."""
    info = np.iinfo(dtype)
    if extreme:
        return rng.choice(np.array([info.min, info.max], dtype=dtype), size=shape)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)


_ACTIVATIONS = {"embedding": 0, "add": 2, "mul": 2, "matmul": 2, "attention": 3}


def agree(name: str, inputs, **params) -> np.ndarray:
    """Run op ``name`` on both paths, assert identical bytes, and that the op's ``shape``
    says what they return, from the real inputs and from data-less stand-ins of them
    (what a referee's walk of the program passes: runtime/program.py); return the output."""
    op = get_op(name)
    fast = op.fast(list(inputs), params)
    ref = op.reference(list(inputs), params)
    assert fast.dtype == ref.dtype, (fast.dtype, ref.dtype)
    assert fast.shape == ref.shape, (fast.shape, ref.shape)
    np.testing.assert_array_equal(fast, ref)
    said = (fast.shape, dtype_name(fast))
    assert op.shape(list(inputs), params) == said
    # in a walk the activations (leading inputs) are other ops' outputs, so stand-ins; the
    # rest (weights, tables, ids, masks: values the checks may read) are real constants
    leading = len(inputs) if name == "concat" else _ACTIVATIONS.get(name, 1)
    walked = [stand_in(t.shape, dtype_name(t)) if i < leading else t for i, t in enumerate(inputs)]
    assert op.shape(walked, params) == said
    return fast
