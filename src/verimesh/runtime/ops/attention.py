"""Rotary position embedding and (causal, cached) attention in integers.

Generation with a KV cache must give exactly the bytes of a full-sequence run: every
query row here is computed from its own scores only (requantize per element, softmax per
row over the keys it may see, an exact integer P @ V), so a row does not care whether its
neighbours were computed in the same call. tests/runtime/test_attention.py checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import fixed
from ..matmul import matmul_exact, matmul_reference
from ..registry import Op, register
from ._common import OpError, arity, dtype_in, no_extra_params, param
from .nonlinear import check_exp_table, masked_softmax, masked_softmax_reference, prob_bits

# --- rope ----------------------------------------------------------------------------------


def _rope_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[str, int, str]:
    arity("rope", inputs, 4)
    no_extra_params("rope", params, "style", "frac_bits", "out_dtype")
    x, cos, sin, pos = inputs
    dtype_in("rope", "x", x, "int8", "int16")
    dtype_in("rope", "positions", pos, "int32", "int64")
    for what, t in (("cos", cos), ("sin", sin)):
        dtype_in("rope", what, t, "int16", "int32")
    if x.ndim < 2 or x.shape[-1] % 2:
        raise OpError(f"rope: x must be [..., T, head_dim] with an even head_dim, got {x.shape}")
    half = x.shape[-1] // 2
    if cos.shape != sin.shape or cos.ndim != 2 or cos.shape[1] != half:
        raise OpError(f"rope: cos/sin tables must both be [max_pos, {half}], got {cos.shape}, {sin.shape}")
    if pos.shape != (x.shape[-2],):
        raise OpError(f"rope: positions must be [{x.shape[-2]}] (one per row of x), got {pos.shape}")
    if pos.size and (int(pos.min()) < 0 or int(pos.max()) >= cos.shape[0]):
        raise OpError(f"rope: positions must be in [0, {cos.shape[0]}) (the table length)")
    style = param("rope", params, "style", str, "half")
    if style not in ("half", "interleaved"):
        raise OpError(f"rope: style must be 'half' (HF/NeoX) or 'interleaved' (GPT-J), got {style!r}")
    frac = param("rope", params, "frac_bits", int, 14)
    if not 1 <= frac <= 30:
        raise OpError(f"rope: frac_bits must be in [1, 30], got {frac}")
    dtype = param("rope", params, "out_dtype", str, "int16")
    fixed.out_dtype(dtype)
    return style, frac, dtype


def _pairs(x: np.ndarray, style: str) -> tuple[np.ndarray, np.ndarray]:
    half = x.shape[-1] // 2
    if style == "half":
        return x[..., :half], x[..., half:]
    return x[..., 0::2], x[..., 1::2]


def rope_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """(x1, x2) -> (round((x1 c - x2 s) / 2^f), round((x2 c + x1 s) / 2^f)); |.| < 2^47."""
    style, frac, dtype = _rope_args(inputs, params)
    x, cos, sin, pos = inputs
    c = cos[pos].astype(np.int64)  # [T, half], broadcasts over leading dims of x
    s = sin[pos].astype(np.int64)
    x1, x2 = (t.astype(np.int64) for t in _pairs(x, style))
    r1 = fixed.round_shift(x1 * c - x2 * s, frac)
    r2 = fixed.round_shift(x2 * c + x1 * s, frac)
    out = np.empty(x.shape, dtype=np.int64)
    o1, o2 = _pairs(out, style)
    o1[...] = r1
    o2[...] = r2
    return fixed.clip_to(out, dtype)


def rope_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    style, frac, dtype = _rope_args(inputs, params)
    x, cos, sin, pos = inputs
    half = x.shape[-1] // 2
    lo, hi = fixed.dtype_range(dtype)
    out = np.empty(x.shape, dtype=dtype)
    half_unit = 1 << (frac - 1)
    for idx in np.ndindex(*x.shape[:-1]):
        p = int(pos[idx[-1]])
        row = [int(v) for v in x[idx]]
        res = [0] * len(row)
        for i in range(half):
            a, b = (i, i + half) if style == "half" else (2 * i, 2 * i + 1)
            c, s = int(cos[p, i]), int(sin[p, i])
            res[a] = min(max((row[a] * c - row[b] * s + half_unit) >> frac, lo), hi)
            res[b] = min(max((row[b] * c + row[a] * s + half_unit) >> frac, lo), hi)
        out[idx] = res
    return out


register(
    Op(
        "rope",
        rope_fast,
        rope_ref,
        "rotary embedding of x [..., T, Dh] at positions [T] with cos/sin tables (style half|interleaved)",
        lambda inputs, params: (inputs[0].shape, _rope_args(inputs, params)[2]),
    )
)


# --- attention -----------------------------------------------------------------------------
# inputs: q [B, H, Tq, Dh], k [B, Hkv, Tk, Dh], v [B, Hkv, Tk, Dh] (int8/int16),
#         score_m, score_shift (scores -> exp-table units), exp_table,
#         out_m, out_shift (P @ V at 2^-prob_bits -> output units), [key_mask [B, Tk] 0/1]
# params: causal (bool), q_offset (absolute position of query row 0; default Tk - Tq),
#         prob_bits (default 15), out_dtype (default int8)


def _attention_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> dict[str, Any]:
    arity("attention", inputs, 8, 9)
    no_extra_params("attention", params, "causal", "q_offset", "prob_bits", "out_dtype")
    q, k, v, sm, ss, table, om, os_ = inputs[:8]
    for what, t in (("q", q), ("k", k), ("v", v)):
        dtype_in("attention", what, t, "int8", "int16")
        if t.ndim != 4:
            raise OpError(f"attention: {what} must be [B, heads, T, head_dim], got {t.shape}")
    b, h, tq, dh = q.shape
    if k.shape != v.shape or k.shape[0] != b or k.shape[3] != dh:
        raise OpError(f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit")
    hkv, tk = k.shape[1], k.shape[2]
    if hkv < 1 or h % hkv:
        raise OpError(f"attention: {h} query heads are not a multiple of {hkv} key/value heads")
    for what, t in (("score_m", sm), ("score_shift", ss), ("out_m", om), ("out_shift", os_)):
        if t.shape != ():
            raise OpError(f"attention: {what} must be a 0-d int32 tensor, got shape {t.shape}")
    fixed.check_multiplier(sm, ss)
    fixed.check_multiplier(om, os_)
    check_exp_table("attention", table)
    mask = None
    if len(inputs) == 9:
        mask = inputs[8]
        dtype_in("attention", "key_mask", mask, "int8", "uint8")
        if mask.shape != (b, tk):
            raise OpError(f"attention: key_mask must be [{b}, {tk}], got {mask.shape}")
        if mask.size and (int(mask.min()) < 0 or int(mask.max()) > 1):
            raise OpError("attention: key_mask entries must be 0 or 1")
    causal = param("attention", params, "causal", bool, False)
    q_offset = param("attention", params, "q_offset", int, tk - tq)
    if causal and not 0 <= q_offset <= tk - tq:
        raise OpError(
            f"attention: q_offset {q_offset} needs 0 <= q_offset <= Tk - Tq = {tk - tq} "
            "(every causal query must see its own key)"
        )
    dtype = param("attention", params, "out_dtype", str, "int8")
    fixed.out_dtype(dtype)
    return {
        "group": h // hkv,
        "mask": mask,
        "causal": causal,
        "q_offset": q_offset,
        "q": prob_bits("attention", params),
        "dtype": dtype,
    }


def _allowed(args: dict[str, Any], b: int, tq: int, tk: int) -> np.ndarray | None:
    """[B, 1, Tq, Tk] bool: key j visible to query i, or None when everything is visible."""
    allowed = None
    if args["causal"]:
        rows = np.arange(tq)[:, None] + args["q_offset"]
        allowed = np.broadcast_to(np.arange(tk)[None, :] <= rows, (b, 1, tq, tk))
    if args["mask"] is not None:
        keys = np.broadcast_to(args["mask"].astype(bool)[:, None, None, :], (b, 1, tq, tk))
        allowed = keys if allowed is None else allowed & keys
    return allowed


def attention_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    args = _attention_args(inputs, params)
    q, k, v, sm, ss, table, om, os_ = inputs[:8]
    if args["group"] > 1:  # grouped-query attention: each k/v head serves `group` q heads
        k = np.repeat(k, args["group"], axis=1)
        v = np.repeat(v, args["group"], axis=1)
    scores = fixed.requantize(matmul_exact(q, k, transpose_b=True), sm, ss, "int32")
    allowed = _allowed(args, q.shape[0], q.shape[2], k.shape[2])
    probs = masked_softmax(scores, allowed, table, args["q"])
    out = matmul_exact(probs.astype(np.int32), v)  # exact: float64 chunks when needed
    return fixed.requantize(out, om, os_, args["dtype"])


def attention_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    args = _attention_args(inputs, params)
    q, k, v, sm, ss, table, om, os_ = inputs[:8]
    b, h, tq, _ = q.shape
    tk = k.shape[2]
    out = np.empty(q.shape, dtype=args["dtype"])
    for bi in range(b):
        for hi in range(h):
            kv = hi // args["group"]
            acc = matmul_reference(q[bi, hi], k[bi, kv], transpose_b=True)  # [Tq, Tk]
            scores = fixed.requantize_reference(acc, sm, ss, "int32")
            allowed = np.ones((tq, tk), dtype=bool)
            for i in range(tq):
                for j in range(tk):
                    if args["causal"] and j > args["q_offset"] + i:
                        allowed[i, j] = False
                    if args["mask"] is not None and not args["mask"][bi, j]:
                        allowed[i, j] = False
            probs = masked_softmax_reference(scores, allowed, table, args["q"])
            pv = matmul_reference(probs, v[bi, kv])
            out[bi, hi] = fixed.requantize_reference(pv, om, os_, args["dtype"])
    return out


register(
    Op(
        "attention",
        attention_fast,
        attention_ref,
        "softmax(requant(q k^T)) v with exp table; causal/q_offset for KV caches; GQA",
        lambda inputs, params: (inputs[0].shape, _attention_args(inputs, params)["dtype"]),
    )
)
