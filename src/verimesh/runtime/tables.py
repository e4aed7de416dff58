"""Builders for the committed tables and constants that importers store with a model.

These run ONCE, at import time, with floats; their integer outputs become part of the
model's canonical bytes, so every party then computes with exactly the same numbers. No op
calls anything here. Rounding of table entries is half up (floor(v + 0.5)), like the ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .fixed import FixedPointError, dtype_range
from .ops.nonlinear import LUT_LAYOUT, MAX_EXP_TABLE


def _round_clip(values: np.ndarray, dtype: str) -> np.ndarray:
    lo, hi = dtype_range(dtype)
    return np.clip(np.floor(values + 0.5), lo, hi).astype(dtype)


def build_lut(
    fn: Callable[[np.ndarray], np.ndarray],
    in_scale: float,
    out_scale: float,
    in_dtype: str = "int8",
    out_dtype: str = "int8",
) -> np.ndarray:
    """Table for the ``lut`` op: table[x - min] = round(fn(x * in_scale) / out_scale)."""
    if in_dtype not in LUT_LAYOUT:
        raise FixedPointError(f"lut inputs must be one of {list(LUT_LAYOUT)}, got {in_dtype}")
    lo, hi = dtype_range(in_dtype)
    x = np.arange(lo, hi + 1, dtype=np.float64) * in_scale
    return _round_clip(fn(x) / out_scale, out_dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU with the exact erf (BERT/MiniLM's "gelu")."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def build_gelu_table(in_scale: float, out_scale: float, in_dtype: str = "int8",
                     out_dtype: str = "int8", approximate: bool = False) -> np.ndarray:
    return build_lut(gelu_tanh if approximate else gelu, in_scale, out_scale, in_dtype, out_dtype)


def build_silu_table(in_scale: float, out_scale: float, in_dtype: str = "int8",
                     out_dtype: str = "int8") -> np.ndarray:
    return build_lut(silu, in_scale, out_scale, in_dtype, out_dtype)


def build_exp_table(in_scale: float, frac_bits: int = 16) -> np.ndarray:
    """int32 table[d] = round(2^frac_bits * exp(-d * in_scale)), d = 0, 1, ... until it is 0.

    ``in_scale`` is the real value of one unit of the softmax input (after temperature and
    1/sqrt(head_dim) are folded in). The last entry is 0, so every larger d maps to 0.
    """
    if not in_scale > 0 or not 1 <= frac_bits <= 30:
        raise FixedPointError("exp table needs in_scale > 0 and frac_bits in [1, 30]")
    length = math.ceil((frac_bits + 1) * math.log(2) / in_scale) + 2
    if length > MAX_EXP_TABLE:
        raise FixedPointError(
            f"exp table for in_scale {in_scale} would have {length} entries (max "
            f"{MAX_EXP_TABLE}); requantize the softmax input to a coarser scale"
        )
    d = np.arange(length, dtype=np.float64)
    table = _round_clip(np.exp(-d * in_scale) * 2.0**frac_bits, "int32")
    last_nonzero = int(np.nonzero(table)[0][-1])
    return table[: last_nonzero + 2].copy()


def build_rope_tables(
    head_dim: int,
    max_positions: int,
    theta: float = 10000.0,
    frac_bits: int = 14,
    inv_freq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) int32 tables [max_positions, head_dim // 2] scaled by 2^frac_bits.

    Entry [p, i] is for position p and frequency inv_freq[i] = theta^(-2i / head_dim)
    (pass ``inv_freq`` for scaled variants). Used with either rotation style of ``rope``.
    """
    if head_dim % 2 or not 1 <= frac_bits <= 30:
        raise FixedPointError("rope needs an even head_dim and frac_bits in [1, 30]")
    if inv_freq is None:
        inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.outer(np.arange(max_positions, dtype=np.float64), inv_freq)
    scale = 2.0**frac_bits
    return _round_clip(np.cos(angles) * scale, "int32"), _round_clip(np.sin(angles) * scale, "int32")


def build_norm_constants(
    gamma: np.ndarray,
    beta: np.ndarray | None,
    in_scale: float,
    out_scale: float,
    eps: float,
) -> dict[str, np.ndarray | int]:
    """Integer constants for ``layernorm`` (beta given) or ``rmsnorm`` (beta None).

    The op computes u = round(xc * 2^24 / sqrt(V)) with V = sum(xc^2) + eps_int, i.e.
    u = y * 2^24 / sqrt(D) for the normalised y, then out = round(u * G / 2^shift) + B.
    So G / 2^shift = gamma * sqrt(D) / (2^24 * out_scale), B = round(beta / out_scale) and
    eps_int = round(eps * D / in_scale^2) for rmsnorm, round(eps * D^3 / in_scale^2) for
    layernorm (whose xc is D times the deviation), at least 1.
    Returns {"gamma": G int32, "beta": B int32 (layernorm only), "shift": int, "eps": int}.
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    d = gamma.shape[-1]
    ratio = gamma * math.sqrt(d) / out_scale  # G / 2^(shift - 24)
    peak = float(np.max(np.abs(ratio))) or 1.0
    shift = 24 + 30 - math.ceil(math.log2(peak))  # largest |G| just below 2^30
    if not 1 <= shift <= 62:
        raise FixedPointError(f"norm scale ratio {peak} is out of range; check in/out scales")
    eps_int = max(1, round(eps * d ** (1 if beta is None else 3) / in_scale**2))
    if eps_int >= 1 << 60:
        raise FixedPointError(f"eps {eps} at input scale {in_scale} is too large in integers")
    out: dict[str, np.ndarray | int] = {
        "gamma": _round_clip(ratio * 2.0 ** (shift - 24), "int32"),
        "shift": shift,
        "eps": eps_int,
    }
    if beta is not None:
        out["beta"] = _round_clip(np.asarray(beta, dtype=np.float64) / out_scale, "int32")
    return out
