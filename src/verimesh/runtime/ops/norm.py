"""Normalisation ops in integers: layernorm, rmsnorm, mean_pool, l2_normalize.

layernorm / rmsnorm spec, per row of D values (no rounding until the last line but one):

    xc  = D*x - sum(x)   (layernorm: exact centring, D times the deviation)  |  x  (rmsnorm)
    V   = sum(xc^2) + eps                                  (bound: D * max|xc|^2 + eps < 2^62)
    u   = scaled_rsqrt_mul(xc, V, 24) = round(xc * 2^24 / sqrt(V)) = y * 2^24 / sqrt(D)
    out = clip(round(u * gamma / 2^shift) + beta)

All of them reduce to ``fixed.scaled_rsqrt_mul``: round(x * 2^frac / sqrt(V)) with an exact
integer square root, so no float touches an activation. Constants come from
``verimesh.runtime.tables.build_norm_constants``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import fixed
from ..registry import Op, register
from ..tensor import dtype_name
from ._common import OpError, arity, dtype_in, no_extra_params, param

NORM_FRAC = 24  # u = round(xc * 2^24 / sqrt(V)): |u| <= 2^24, so u * gamma (< 2^31) < 2^55
V_LIMIT = 1 << 62


def _norm_args(op: str, inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[int, int, str]:
    arity(op, inputs, 3 if op == "layernorm" else 2)
    no_extra_params(op, params, "eps", "shift", "out_dtype")
    x = inputs[0]
    dtype_in(op, "x", x, "int8", "int16", "int32")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise OpError(f"{op}: x needs a non-empty last axis, got shape {x.shape}")
    for what, t in zip(("gamma", "beta"), inputs[1:], strict=False):
        dtype_in(op, what, t, "int32")
        if t.shape != (x.shape[-1],):
            raise OpError(f"{op}: {what} must have shape ({x.shape[-1]},), got {t.shape}")
    eps = param(op, params, "eps", int)
    shift = param(op, params, "shift", int)
    if not 1 <= eps < 1 << 60 or not 1 <= shift <= 62:
        raise OpError(f"{op}: need 1 <= eps < 2^60 and 1 <= shift <= 62 (got {eps}, {shift})")
    dtype = param(op, params, "out_dtype", str, "int8")
    fixed.out_dtype(dtype)
    return eps, shift, dtype


def _check_variance_bound(op: str, xc: np.ndarray, eps: int) -> None:
    peak = int(np.max(np.abs(xc))) if xc.size else 0
    if xc.shape[-1] * peak * peak + eps >= V_LIMIT:
        raise OpError(
            f"{op}: inputs too large for exact int64 variance (D={xc.shape[-1]}, max |xc| "
            f"= {peak}); requantize the input to a smaller scale first"
        )


def _norm_fast(op: str, inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    eps, shift, dtype = _norm_args(op, inputs, params)
    x = inputs[0].astype(np.int64)
    if op == "layernorm":  # exact centring, scaled by D: xc = D*x - sum(x) = D*(x - mean)
        x = x.shape[-1] * x - x.sum(axis=-1, keepdims=True)
    _check_variance_bound(op, x, eps)
    v = (x * x).sum(axis=-1, keepdims=True) + eps
    u = fixed.scaled_rsqrt_mul(x, v, NORM_FRAC)
    out = fixed.round_shift(u * inputs[1].astype(np.int64), shift)
    if op == "layernorm":
        out = out + inputs[2].astype(np.int64)
    return fixed.clip_to(out, dtype)


def _norm_ref(op: str, inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    eps, shift, dtype = _norm_args(op, inputs, params)
    x = inputs[0]
    d = x.shape[-1]
    gamma = [int(g) for g in inputs[1]]
    beta = [int(b) for b in inputs[2]] if op == "layernorm" else [0] * d
    lo, hi = fixed.dtype_range(dtype)
    out = np.empty(x.shape, dtype=dtype)
    for idx in np.ndindex(*x.shape[:-1]):
        row = [int(v) for v in x[idx]]
        if op == "layernorm":
            total = sum(row)
            row = [d * v - total for v in row]
        if d * max(abs(v) for v in row) ** 2 + eps >= V_LIMIT:
            raise OpError(f"{op}: inputs too large for exact int64 variance")
        v_total = sum(v * v for v in row) + eps
        u = [fixed.scaled_rsqrt_mul_reference(v, v_total, NORM_FRAC) for v in row]
        out[idx] = [
            min(max(((ui * g + (1 << (shift - 1))) >> shift) + b, lo), hi)
            for ui, g, b in zip(u, gamma, beta, strict=True)
        ]
    return out


def layernorm_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return _norm_fast("layernorm", inputs, params)


def layernorm_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return _norm_ref("layernorm", inputs, params)


def rmsnorm_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return _norm_fast("rmsnorm", inputs, params)


def rmsnorm_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return _norm_ref("rmsnorm", inputs, params)


register(
    Op(
        "layernorm",
        layernorm_fast,
        layernorm_ref,
        "inputs x, gamma, beta; params eps, shift, out_dtype; constants from build_norm_constants",
        lambda inputs, params: (inputs[0].shape, _norm_args("layernorm", inputs, params)[2]),
    )
)
register(
    Op(
        "rmsnorm",
        rmsnorm_fast,
        rmsnorm_ref,
        "inputs x, gamma; params eps, shift, out_dtype; constants from build_norm_constants",
        lambda inputs, params: (inputs[0].shape, _norm_args("rmsnorm", inputs, params)[2]),
    )
)


# --- mean_pool: masked mean over the sequence axis ------------------------------------------


def _pool_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> None:
    arity("mean_pool", inputs, 2)
    no_extra_params("mean_pool", params)
    x, mask = inputs
    dtype_in("mean_pool", "x", x, "int8", "int16", "int32")
    dtype_in("mean_pool", "mask", mask, "int8", "uint8")
    if x.ndim != 3 or mask.shape != x.shape[:2]:
        raise OpError(f"mean_pool: need x [B, T, D] and mask [B, T]; got {x.shape}, {mask.shape}")
    if mask.size and (int(mask.min()) < 0 or int(mask.max()) > 1):
        raise OpError("mean_pool: mask entries must be 0 or 1")


def mean_pool_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """round(sum of unmasked rows / their count), half up; a fully masked item gives 0."""
    _pool_args(inputs, params)
    x, mask = inputs[0].astype(np.int64), inputs[1].astype(np.int64)
    total = (x * mask[:, :, None]).sum(axis=1)
    count = mask.sum(axis=1, keepdims=True)
    mean = np.where(count > 0, fixed.div_round(total, np.maximum(count, 1)), 0)
    return mean.astype(inputs[0].dtype)


def mean_pool_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    _pool_args(inputs, params)
    x, mask = inputs
    out = np.zeros((x.shape[0], x.shape[2]), dtype=x.dtype)
    for b in range(x.shape[0]):
        rows = [x[b, t] for t in range(x.shape[1]) if mask[b, t]]
        for j in range(x.shape[2]):
            if rows:
                s = sum(int(r[j]) for r in rows)
                out[b, j] = (2 * s + len(rows)) // (2 * len(rows))
    return out


def mean_pool_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _pool_args(inputs, params)
    x = inputs[0]
    return (x.shape[0], x.shape[2]), dtype_name(x)


register(Op("mean_pool", mean_pool_fast, mean_pool_ref, "masked mean over T of x [B, T, D]", mean_pool_shape))


# --- l2_normalize: x / ||x|| at 2^frac_bits ------------------------------------------------


def _l2_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> int:
    arity("l2_normalize", inputs, 1)
    no_extra_params("l2_normalize", params, "frac_bits")
    dtype_in("l2_normalize", "x", inputs[0], "int8", "int16", "int32")
    frac = param("l2_normalize", params, "frac_bits", int, 15)
    if not 1 <= frac <= 30:
        raise OpError(f"l2_normalize: frac_bits must be in [1, 30], got {frac}")
    if inputs[0].ndim < 1:
        raise OpError("l2_normalize: x needs a last axis")
    return frac


def _l2_bound(x: np.ndarray) -> None:
    """The exactness bound, on the values (so not part of the op's ``shape``)."""
    peak = int(np.max(np.abs(x.astype(np.int64)))) if x.size else 0
    if x.shape[-1] * peak * peak >= V_LIMIT:
        raise OpError("l2_normalize: x needs D * max|x|^2 < 2^62")


def l2_normalize_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """round(x * 2^frac / ||x||) -> int32; the zero vector stays zero."""
    frac = _l2_args(inputs, params)
    _l2_bound(inputs[0])
    x = inputs[0].astype(np.int64)
    v = np.maximum((x * x).sum(axis=-1, keepdims=True), 1)
    return fixed.scaled_rsqrt_mul(x, v, frac).astype(np.int32)


def l2_normalize_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    frac = _l2_args(inputs, params)
    _l2_bound(inputs[0])
    x = inputs[0]
    out = np.empty(x.shape, dtype=np.int32)
    for idx in np.ndindex(*x.shape[:-1]):
        row = [int(v) for v in x[idx]]
        v = max(sum(r * r for r in row), 1)
        out[idx] = [fixed.scaled_rsqrt_mul_reference(r, v, frac) for r in row]
    return out


def l2_normalize_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _l2_args(inputs, params)
    return inputs[0].shape, "int32"


register(
    Op("l2_normalize", l2_normalize_fast, l2_normalize_ref, "round(x * 2^frac_bits / ||x||) -> int32",
       l2_normalize_shape)
)
