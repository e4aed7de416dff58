"""Small real programs of the runtime for the on-chain op proof tests: ops OpCheck recomputes,
run honestly or through a cheating ``ExecutionContext``, and random op calls of a given size
(shared with bench/bench_op_gas.py)."""

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


def random_tensor(
    rng: np.random.Generator, dtype: str, shape: tuple[int, ...], bound: int | None = None
) -> np.ndarray:
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if bound is not None:
        lo, hi = max(lo, -bound), min(hi, bound)
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)


def i32(value: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.full(shape, value, dtype=np.int32)


def calls_of_size(n: int) -> dict[str, tuple[dict, list[np.ndarray]]]:
    """One call of each op whose largest tensor has n elements (n <= MAX_ELEMENTS)."""
    rng = np.random.default_rng(n)
    x16 = random_tensor(rng, "int16", (1, n))
    x32 = random_tensor(rng, "int32", (1, n))
    half = max(n // 2, 1)
    return {
        "add": (
            {"out_dtype": "int32"},
            [x32, x32[:, ::-1].copy(), i32(1 << 30), i32(1 << 29), i32(31)],
        ),
        "argmax": ({}, [x16]),
        "mul": ({"out_dtype": "int16"}, [x16, x16[:, ::-1].copy(), i32(1 << 30), i32(40)]),
        "requantize": ({}, [x32, i32(1 << 30), i32(40)]),
        "reshape": ({"shape": [n, -1]}, [x16]),
        "rmsnorm": (
            {"eps": 5629499534, "out_dtype": "int32", "shift": 26},
            [random_tensor(rng, "int32", (1, n), bound=2**20), i32(1 << 20, (n,))],
        ),
        "slice": ({"axis": 1, "start": 0, "stop": half}, [x16.reshape(2, -1) if n > 1 else x16]),
        "rope": (
            {"frac_bits": 14, "style": "interleaved"},
            [
                x16.reshape(1, 1, n),
                i32(1 << 13, (1, n // 2)),
                i32(1 << 12, (1, n // 2)),
                i32(0, (1,)),
            ],
        ),
    }
