"""Exact integer matrix products at BLAS speed.

Why floats give exact integer results here: take integer-valued float32 arrays A (M x K)
and B (K x N) with |a| <= amax and |b| <= bmax, and a chunk of the inner dimension of
length k with k * amax * bmax <= 2^24. Whatever order, blocking, vectorisation or FMA the
BLAS uses, every intermediate value it forms is a sum of a subset of the products
a_ik * b_kj of that chunk, so it is an integer of magnitude <= k * amax * bmax <= 2^24.
float32 represents every integer up to 2^24 exactly, and an IEEE operation whose exact
result is representable returns exactly that result. So each chunk's float32 product is
the exact integer product, whatever the machine, thread count or SIMD width. The same
holds for float64 with 2^53. Chunk results are then added in int64, where addition is
exact and associative.

The chunk length is computed from the ACTUAL max |a| and max |b| of the call: for int8 x
int8 (amax = bmax = 128) that is k <= 1024 for float32; int16 activations x int8 weights
(2^15 * 2^7 = 2^22) would need k <= 4, so those go through float64 (k <= 2^31). Because
every chunking gives the exact result, the chunk choice affects only speed, never bytes.

``matmul_reference`` is the obviously-correct path: numpy's int64 matmul (no floats at
all), with a check that the result cannot overflow int64.
"""

from __future__ import annotations

import numpy as np

from .fixed import FixedPointError
from .tensor import cached_fact, check_tensor

F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
INT64_LIMIT = 1 << 63
# Below this chunk length float32 BLAS loses to one float64 call (measured: bench_matmul.py).
MIN_F32_CHUNK = 256

def max_abs(arr: np.ndarray) -> int:
    """max |x| as a Python int (remembered for immutable arrays such as weights)."""
    return cached_fact(arr, "max_abs", lambda a: max(-int(a.min()), int(a.max())) if a.size else 0)


def as_float(arr: np.ndarray, dtype: str) -> np.ndarray:
    """``arr`` as integer-valued float32/float64 (remembered for immutable arrays)."""

    def convert(a: np.ndarray) -> np.ndarray:
        out = a.astype(dtype)
        out.flags.writeable = False
        return out

    return cached_fact(arr, dtype, convert)


def plan_chunks(k: int, amax: int, bmax: int) -> tuple[str, int]:
    """(float dtype, chunk length) for an exact product; ("int64", k) when no float is exact."""
    bound = amax * bmax
    if bound == 0:
        return "float32", max(k, 1)
    if k * bound >= INT64_LIMIT:
        raise FixedPointError(
            f"matmul result may overflow int64 (K={k}, max|a|={amax}, max|b|={bmax})"
        )
    chunk32 = F32_EXACT // bound
    if chunk32 >= k or chunk32 >= MIN_F32_CHUNK:
        return "float32", min(chunk32, k)
    chunk64 = F64_EXACT // bound
    if chunk64 >= 1:
        return "float64", min(chunk64, k)
    return "int64", k


def check_operands(a: np.ndarray, b: np.ndarray, transpose_b: bool) -> int:
    check_tensor(a, "matmul left operand")
    check_tensor(b, "matmul right operand")
    if a.ndim < 1 or b.ndim < 2:
        raise FixedPointError(f"matmul needs a.ndim >= 1 and b.ndim >= 2, got {a.ndim}, {b.ndim}")
    k = a.shape[-1]
    kb = b.shape[-1] if transpose_b else b.shape[-2]
    if k != kb:
        raise FixedPointError(
            f"matmul inner dimensions differ: a {a.shape} and b {b.shape}"
            + (" (b is used transposed)" if transpose_b else "")
        )
    return k


def matmul_exact(a: np.ndarray, b: np.ndarray, transpose_b: bool = False) -> np.ndarray:
    """a @ b (or a @ b^T) as int64, exactly, through float BLAS in proven-safe chunks."""
    k = check_operands(a, b, transpose_b)
    if b.ndim == 2 and a.ndim > 2:  # [B, T, K] @ W: one big BLAS call, not B small ones
        out = matmul_exact(a.reshape(-1, k), b, transpose_b)
        return out.reshape((*a.shape[:-1], out.shape[-1]))
    kind, chunk = plan_chunks(k, max_abs(a), max_abs(b))
    if kind == "int64":
        return matmul_reference(a, b, transpose_b)
    af = a.astype(kind)
    bf = as_float(b, kind)
    if transpose_b:
        bf = np.swapaxes(bf, -1, -2)
    out = np.matmul(af[..., :chunk], bf[..., :chunk, :]).astype(np.int64)
    for start in range(chunk, k, chunk):
        out += np.matmul(af[..., start : start + chunk], bf[..., start : start + chunk, :]).astype(np.int64)
    return out


def matmul_reference(a: np.ndarray, b: np.ndarray, transpose_b: bool = False) -> np.ndarray:
    """a @ b (or a @ b^T) in pure int64: slow and obviously exact."""
    k = check_operands(a, b, transpose_b)
    amax = int(np.max(np.abs(a.astype(np.int64)))) if a.size else 0
    bmax = int(np.max(np.abs(b.astype(np.int64)))) if b.size else 0
    if k * amax * bmax >= INT64_LIMIT:
        raise FixedPointError(
            f"matmul result may overflow int64 (K={k}, max|a|={amax}, max|b|={bmax})"
        )
    b64 = b.astype(np.int64)
    if transpose_b:
        b64 = np.swapaxes(b64, -1, -2)
    return np.matmul(a.astype(np.int64), b64)
