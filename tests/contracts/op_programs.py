"""Small real programs of the runtime for the on-chain op proof tests: ops OpCheck recomputes,
run honestly or through a cheating ``ExecutionContext``."""

from __future__ import annotations

import numpy as np

from verimesh.runtime import ExecutionContext
from verimesh.runtime.trace import Trace


def requantize_program(ctx: ExecutionContext, sizes: list[list[int]], seed: int = 5) -> Trace:
    """Steps of requantize ops (int32 accumulator, per-channel multiplier and shift)."""
    rng = np.random.default_rng(seed)
    for step in sizes:
        ctx.begin_step()
        for n in step:
            acc = rng.integers(-(2**30), 2**30, size=(n,), dtype=np.int32)
            m = rng.integers(1 << 19, 1 << 21, size=(n,), dtype=np.int32)
            s = rng.integers(20, 28, size=(n,), dtype=np.int32)
            ctx.call("requantize", acc, m, s)
    assert ctx.trace is not None
    return ctx.trace
