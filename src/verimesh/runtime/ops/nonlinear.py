"""Nonlinearities as committed tables: ``lut`` (GELU, SiLU, ...) and ``softmax``.

A table is a tensor INPUT of the op, part of the model's committed bytes, so two parties
can only disagree about it by disagreeing about the model root. Builders for the tables
(floats, once, at import time) are in ``verimesh.runtime.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..registry import Op, register
from ..tensor import dtype_name
from ._common import OpError, arity, dtype_in, no_extra_params, param

# index offset and table length per input dtype: table[x - min(dtype)]
LUT_LAYOUT = {"int8": (128, 256), "uint8": (0, 256), "int16": (32768, 65536)}
MAX_PROB_BITS = 30
MAX_EXP_TABLE = 1 << 20


# --- lut: table[x] ------------------------------------------------------------------------


def _lut_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> int:
    arity("lut", inputs, 2)
    no_extra_params("lut", params)
    x, table = inputs
    dtype_in("lut", "x", x, *LUT_LAYOUT)
    offset, length = LUT_LAYOUT[dtype_name(x)]
    if table.shape != (length,):
        raise OpError(f"lut: a table for {x.dtype} inputs has shape ({length},), got {table.shape}")
    return offset


def lut_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    offset = _lut_args(inputs, params)
    return np.take(inputs[1], inputs[0].astype(np.int64) + offset)


def lut_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    offset = _lut_args(inputs, params)
    x, table = inputs
    out = np.empty(x.shape, dtype=table.dtype)
    for idx in np.ndindex(*x.shape):
        out[idx] = table[int(x[idx]) + offset]
    return out


def lut_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _lut_args(inputs, params)
    return inputs[0].shape, dtype_name(inputs[1])


register(Op("lut", lut_fast, lut_ref, "table[x - dtype_min]: GELU, SiLU, any 1-D function", lut_shape))


# --- softmax: exp table + integer normalisation ----------------------------------------------


def check_exp_table(op: str, table: np.ndarray) -> None:
    dtype_in(op, "exp table", table, "int32")
    if table.ndim != 1 or not 1 <= table.shape[0] <= MAX_EXP_TABLE:
        raise OpError(f"{op}: exp table must be 1-D with 1..{MAX_EXP_TABLE} entries")
    if int(table[0]) < 1 or int(table.min()) < 0:
        raise OpError(f"{op}: exp table needs table[0] >= 1 and no negative entry")


def prob_bits(op: str, params: dict[str, Any]) -> int:
    q = param(op, params, "prob_bits", int, 15)
    if not 1 <= q <= MAX_PROB_BITS:
        raise OpError(f"{op}: prob_bits must be in [1, {MAX_PROB_BITS}], got {q}")
    return q


def masked_softmax(x: np.ndarray, allowed: np.ndarray | None, table: np.ndarray, q: int) -> np.ndarray:
    """Integer softmax over the last axis (vectorised); the spec, per row:

        d_j = max_{allowed} x - x_j           (>= 0 for allowed j)
        e_j = table[min(d_j, len-1)]          (0 where not allowed)
        p_j = round(e_j * 2^q / sum e)        (round half up; a row with nothing allowed is 0)

    Bounds: table entries < 2^31 and len(row) < 2^20 give sum e < 2^51; e * 2^q * 2 < 2^62.
    """
    if allowed is None:
        row_max = x.max(axis=-1, keepdims=True)
    else:
        lowest = np.iinfo(x.dtype).min
        row_max = np.where(allowed, x, lowest).max(axis=-1, keepdims=True)
    d = np.subtract(row_max, x, dtype=np.int64)  # >= 0 wherever allowed
    e = np.take(table, d, mode="clip").astype(np.int64)  # clip: d > len-1 reads the final 0
    if allowed is not None:
        e *= allowed  # also zeroes rows with nothing allowed, whatever their (meaningless) max
    total = e.sum(axis=-1, keepdims=True)
    e <<= q + 1
    e += total
    return e // np.maximum(2 * total, 1)


def masked_softmax_reference(
    x: np.ndarray, allowed: np.ndarray | None, table: np.ndarray, q: int
) -> np.ndarray:
    """``masked_softmax`` row by row in Python integers."""
    out = np.zeros(x.shape, dtype=np.int64)
    last = len(table) - 1
    for idx in np.ndindex(*x.shape[:-1]):
        row = [int(v) for v in x[idx]]
        ok = [True] * len(row) if allowed is None else [bool(a) for a in allowed[idx]]
        if not any(ok):
            continue
        top = max(v for v, a in zip(row, ok, strict=True) if a)
        e = [int(table[min(top - v, last)]) if a else 0 for v, a in zip(row, ok, strict=True)]
        total = sum(e)
        out[idx] = [(2 * (ej << q) + total) // (2 * total) for ej in e]
    return out


def _softmax_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> int:
    arity("softmax", inputs, 2)
    no_extra_params("softmax", params, "prob_bits")
    dtype_in("softmax", "x", inputs[0], "int8", "int16", "int32")
    if inputs[0].ndim < 1 or inputs[0].shape[-1] >= MAX_EXP_TABLE:
        raise OpError("softmax: x needs a last axis shorter than 2^20")
    check_exp_table("softmax", inputs[1])
    return prob_bits("softmax", params)


def softmax_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    q = _softmax_args(inputs, params)
    return masked_softmax(inputs[0], None, inputs[1], q).astype(np.int32)


def softmax_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    q = _softmax_args(inputs, params)
    return masked_softmax_reference(inputs[0], None, inputs[1], q).astype(np.int32)


def softmax_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _softmax_args(inputs, params)
    return inputs[0].shape, "int32"


register(
    Op(
        "softmax",
        softmax_fast,
        softmax_ref,
        "p = round(exp_table[max - x] * 2^prob_bits / sum) over the last axis -> int32",
        softmax_shape,
    )
)
