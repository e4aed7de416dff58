"""`linear_rows`: a linear layer whose input is quantised per row (per token) on the fly.

Why the decoder needs it: Llama-family models carry "massive activations" — a few tokens
whose residual / SiLU-gated values reach thousands while ordinary tokens stay near 1
(SmolLM2-135M: max 3045 vs a 99.9th percentile of 1.3 in one FFN). One static scale per
tensor then rounds every ordinary token to zero. Scaling each row by its own power of two
keeps 15 significant bits for every token, and costs only an integer bit length per row.

Spec, for x [..., K] (int16 or int32), w [N, K] int8, m / shift int32 [N] or ():

    e_r   = max(0, bit_length(max_k |x_rk|) - 15)                 row exponent, 0..16
    xq_r  = clip(round_shift(x_r, e_r), -32767, 32767)            int16 values
    acc   = xq @ w^T                                               exact int64 (matmul_exact)
    out   = clip(round(acc * m * 2^e_r / 2^shift), out_dtype)      = requantize(acc, m, shift - e_r)

When shift - e_r < 17 (the floor of `fixed.requantize`), the fast path multiplies acc by
2^k first, k = 17 - (shift - e_r): the same number, still checked against |acc| < 2^47.
Rows are independent, so a KV-cached step gives the same bytes as a full recompute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from verimesh.runtime import fixed
from verimesh.runtime.matmul import matmul_exact, matmul_reference
from verimesh.runtime.ops._common import OpError, arity, dtype_in, no_extra_params, param
from verimesh.runtime.registry import OPS, Op, register

ROW_BITS = 15  # int16 mantissas: int16 x int8 products are exact in float64 BLAS chunks


def _args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> str:
    arity("linear_rows", inputs, 4)
    no_extra_params("linear_rows", params, "out_dtype")
    x, w, m, s = inputs
    dtype_in("linear_rows", "x", x, "int16", "int32")
    dtype_in("linear_rows", "weight", w, "int8")
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise OpError(f"linear_rows: x {x.shape} and weight {w.shape} do not fit (weight is [out, in])")
    for what, t in (("multiplier", m), ("shift", s)):
        if t.shape not in ((), (w.shape[0],)):
            raise OpError(f"linear_rows: {what} must have shape () or ({w.shape[0]},), got {t.shape}")
    fixed.check_multiplier(m, s)
    dtype = param("linear_rows", params, "out_dtype", str, "int32")
    fixed.out_dtype(dtype)
    return dtype


def row_exponents(x: np.ndarray) -> np.ndarray:
    """e_r of the spec, shape x.shape[:-1] + (1,), int64."""
    peak = np.max(np.abs(x.astype(np.int64)), axis=-1, keepdims=True)
    return np.maximum(fixed.bit_length_array(peak) - ROW_BITS, 0)


def _int16_matmul_via_bytes(xq: np.ndarray, w: np.ndarray) -> np.ndarray:
    """xq [R, K] (|x| <= 32767) @ w^T as int64, through FLOAT32 BLAS.

    int16 x int8 products need float64 (2^22 per product), which doubles the memory read
    of every weight per token. Split x = 256 * hi + lo with lo in [-128, 127] and
    hi in [-128, 128]: both halves times int8 weights fit float32's exact range in chunks
    of 1032, and stacking [hi; lo] as 2R rows reads the float32 weights once.
    """
    lo = ((xq + 128) & 255) - 128
    hi = (xq - lo) >> 8
    if xq.shape[0] == 1:  # one token: two matrix-vector products beat one 2-row GEMM in BLAS
        return (matmul_exact(hi.astype(np.int16), w, True) << 8) + matmul_exact(lo.astype(np.int16), w, True)
    both = np.concatenate([hi, lo]).astype(np.int16)
    acc = matmul_exact(both, w, transpose_b=True)
    rows = xq.shape[0]
    return (acc[:rows] << 8) + acc[rows:]


def linear_rows_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _args(inputs, params)
    x, w, m, s = inputs
    e = row_exponents(x)
    xq = np.clip(fixed.round_shift(x.astype(np.int64), e), -32767, 32767)
    acc = _int16_matmul_via_bytes(xq.reshape(-1, x.shape[-1]), w).reshape((*x.shape[:-1], w.shape[0]))
    shift = s.astype(np.int64) - e  # broadcasts to [..., N]
    # requantize needs shift >= 17: scale acc up by 2^k instead (exact: k only moves bits)
    k = np.maximum(fixed.MIN_SHIFT - shift, 0)
    return fixed.requantize(acc << k, m, (shift + k).astype(np.int32), dtype)


def linear_rows_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _args(inputs, params)
    x, w, m, s = inputs
    rows = x.reshape(-1, x.shape[-1])
    n = w.shape[0]
    m_list = [int(v) for v in np.broadcast_to(m, (n,))]
    s_list = [int(v) for v in np.broadcast_to(s, (n,))]
    lo, hi = fixed.dtype_range(dtype)
    out = np.empty((rows.shape[0], n), dtype=dtype)
    w64 = w.astype(np.int64)
    for r in range(rows.shape[0]):
        row = [int(v) for v in rows[r]]
        e = max(0, max(abs(v) for v in row).bit_length() - ROW_BITS)
        half = (1 << (e - 1)) if e else 0
        xq = np.array([min(max((v + half) >> e, -32767), 32767) for v in row], dtype=np.int64)
        acc = matmul_reference(xq[None, :], w64, transpose_b=True)[0]
        for j in range(n):
            sh = s_list[j] - e
            out[r, j] = min(max((int(acc[j]) * m_list[j] + (1 << (sh - 1))) >> sh, lo), hi)
    return out.reshape((*x.shape[:-1], n))


if "linear_rows" not in OPS:  # the runtime may adopt this op; never register it twice
    register(
        Op(
            "linear_rows",
            linear_rows_fast,
            linear_rows_ref,
            "requantize(rowquant16(x) @ w^T) with a power-of-two scale per row (per token)",
            lambda inputs, params: ((*inputs[0].shape[:-1], inputs[1].shape[0]), _args(inputs, params)),
        )
    )
