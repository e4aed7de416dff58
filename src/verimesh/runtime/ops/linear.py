"""Linear algebra ops: matmul, linear (+bias, requantize), requantize, add, mul, embedding.

Number format (docs/runtime.md): weights int8, symmetric, one scale per output channel;
activations int8/int16 with one scale per tensor, zero point 0; biases int32 at scale
s_x * s_w; accumulators int64; ``multiplier``/``shift`` int32 tensors, shape () or the
last-axis size, so that out = round(acc * s_x * s_w / s_out) = requantize(acc, m, shift).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import fixed
from ..matmul import check_operands, matmul_exact, matmul_reference, max_abs
from ..registry import Op, register
from ..tensor import dtype_name
from ._common import OpError, arity, dtype_in, no_extra_params, param

ACTIVATION_DTYPES = ("int8", "int16", "uint8")


def _out_dtype(op: str, params: dict[str, Any], default: str) -> str:
    name = param(op, params, "out_dtype", str, default)
    fixed.out_dtype(name)
    return name


def _check_channelwise(op: str, what: str, t: np.ndarray, channels: int) -> None:
    if t.shape not in ((), (channels,)):
        raise OpError(f"{op}: {what} must have shape () or ({channels},), got {t.shape}")


# --- matmul: a @ b (or a @ b^T) -> int64 ---------------------------------------------------


def _matmul_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> bool:
    arity("matmul", inputs, 2)
    no_extra_params("matmul", params, "transpose_b")
    return param("matmul", params, "transpose_b", bool, False)


def matmul_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return matmul_exact(inputs[0], inputs[1], _matmul_args(inputs, params))


def matmul_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return matmul_reference(inputs[0], inputs[1], _matmul_args(inputs, params))


def matmul_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    transpose_b = _matmul_args(inputs, params)
    a, b = inputs
    check_operands(a, b, transpose_b)
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise OpError(f"matmul: batch shapes of a {a.shape} and b {b.shape} do not broadcast") from None
    rows = a.shape[-2:-1]  # none when a is a vector
    return (*batch, *rows, b.shape[-2] if transpose_b else b.shape[-1]), "int64"


register(Op("matmul", matmul_fast, matmul_ref, "a @ b (transpose_b: a @ b^T) as int64", matmul_shape))


# --- linear: requantize(x @ w^T + bias) ------------------------------------------------------


def _linear_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> str:
    arity("linear", inputs, 4, 5)
    no_extra_params("linear", params, "out_dtype")
    x, w, m, s = inputs[:4]
    dtype_in("linear", "x", x, *ACTIVATION_DTYPES)
    dtype_in("linear", "weight", w, "int8")
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise OpError(f"linear: x {x.shape} and weight {w.shape} do not fit (weight is [out, in])")
    _check_channelwise("linear", "multiplier", m, w.shape[0])
    _check_channelwise("linear", "shift", s, w.shape[0])
    if len(inputs) == 5:
        dtype_in("linear", "bias", inputs[4], "int32")
        if inputs[4].shape != (w.shape[0],):
            raise OpError(f"linear: bias must have shape ({w.shape[0]},), got {inputs[4].shape}")
    return _out_dtype("linear", params, "int8")


def linear_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _linear_args(inputs, params)
    x, w = inputs[0], inputs[1]
    acc = matmul_exact(x, w, transpose_b=True)
    bound = x.shape[-1] * max_abs(x) * max_abs(w)  # |acc| <= K max|x| max|w| (+ max|bias|)
    if len(inputs) == 5:
        acc += inputs[4]
        bound += max_abs(inputs[4])
    return fixed.requantize(acc, inputs[2], inputs[3], dtype, bound=bound)


def linear_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _linear_args(inputs, params)
    acc = matmul_reference(inputs[0], inputs[1], transpose_b=True)
    if len(inputs) == 5:
        acc = acc + inputs[4].astype(np.int64)
    return fixed.requantize_reference(acc, inputs[2], inputs[3], dtype)


register(
    Op(
        "linear",
        linear_fast,
        linear_ref,
        "requantize(x @ w^T [+ bias], multiplier, shift); inputs x, w[out,in], m, shift[, bias]",
        lambda inputs, params: ((*inputs[0].shape[:-1], inputs[1].shape[0]), _linear_args(inputs, params)),
    )
)


# --- requantize: round(acc * m / 2^shift) -----------------------------------------------------


def _requantize_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> str:
    arity("requantize", inputs, 3)
    no_extra_params("requantize", params, "out_dtype")
    acc, m, s = inputs
    channels = acc.shape[-1] if acc.ndim else 1
    _check_channelwise("requantize", "multiplier", m, channels)
    _check_channelwise("requantize", "shift", s, channels)
    return _out_dtype("requantize", params, "int8")


def requantize_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _requantize_args(inputs, params)
    return fixed.requantize(inputs[0], inputs[1], inputs[2], dtype)


def requantize_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _requantize_args(inputs, params)
    return fixed.requantize_reference(inputs[0], inputs[1], inputs[2], dtype)


register(Op("requantize", requantize_fast, requantize_ref, "round(acc * m / 2^shift), saturated",
            lambda inputs, params: (inputs[0].shape, _requantize_args(inputs, params))))


# --- add: round((a * m_a + b * m_b) / 2^shift) -- residual connections with rescale ----------


def _add_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> str:
    arity("add", inputs, 5)
    no_extra_params("add", params, "out_dtype")
    a, b, ma, mb, s = inputs
    for what, t in (("a", a), ("b", b)):
        dtype_in("add", what, t, "int8", "int16", "int32", "uint8")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise OpError(f"add: shapes {a.shape} and {b.shape} do not broadcast") from None
    channels = shape[-1] if shape else 1
    for what, t in (("m_a", ma), ("m_b", mb), ("shift", s)):
        _check_channelwise("add", what, t, channels)
    fixed.check_multiplier(ma, s)
    fixed.check_multiplier(mb, s)
    return _out_dtype("add", params, "int16")


def add_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """Same 16-bit split of the multipliers as ``fixed.requantize`` (|a|, |b| < 2^31 here):
    a*m_a + b*m_b = 2^16 (a*mh_a + b*mh_b) + (a*ml_a + b*ml_b), each part < 2^48."""
    dtype = _add_args(inputs, params)
    a, b = inputs[0].astype(np.int64), inputs[1].astype(np.int64)
    ma, mb, s = (t.astype(np.int64) for t in inputs[2:])
    high = a * (ma >> 16) + b * (mb >> 16) + (np.int64(1) << (s - 17))
    low = a * (ma & 0xFFFF) + b * (mb & 0xFFFF)
    return fixed.clip_to((high + (low >> 16)) >> (s - 16), dtype)


def add_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _add_args(inputs, params)
    a, b, ma, mb, s = (t.astype(object) for t in inputs)
    return fixed.clip_to_reference((a * ma + b * mb + (1 << (s - 1))) >> s, dtype)


register(Op("add", add_fast, add_ref, "round((a*m_a + b*m_b) / 2^shift): residual add, rescaled",
            lambda inputs, params: _broadcast(inputs, _add_args(inputs, params))))


# --- mul: requantize(a * b) -- gating (SwiGLU) ---------------------------------------------


def _mul_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> str:
    arity("mul", inputs, 4)
    no_extra_params("mul", params, "out_dtype")
    a, b, m, s = inputs
    for what, t in (("a", a), ("b", b)):
        dtype_in("mul", what, t, "int8", "int16", "uint8")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise OpError(f"mul: shapes {a.shape} and {b.shape} do not broadcast") from None
    channels = shape[-1] if shape else 1
    _check_channelwise("mul", "multiplier", m, channels)
    _check_channelwise("mul", "shift", s, channels)
    return _out_dtype("mul", params, "int8")


def mul_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _mul_args(inputs, params)
    prod = inputs[0].astype(np.int64) * inputs[1].astype(np.int64)
    return fixed.requantize(prod, inputs[2], inputs[3], dtype)


def mul_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    dtype = _mul_args(inputs, params)
    prod = inputs[0].astype(object) * inputs[1].astype(object)
    return fixed.requantize_reference(prod, inputs[2], inputs[3], dtype)


register(Op("mul", mul_fast, mul_ref, "requantize(a * b, m, shift), elementwise",
            lambda inputs, params: _broadcast(inputs, _mul_args(inputs, params))))


def _broadcast(inputs: Sequence[np.ndarray], dtype: str) -> tuple[tuple[int, ...], str]:
    """The shape of an elementwise op on its first two inputs (checked to broadcast)."""
    return np.broadcast_shapes(inputs[0].shape, inputs[1].shape), dtype


# --- embedding: table[ids] ---------------------------------------------------------------------


def _embedding_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> None:
    arity("embedding", inputs, 2)
    no_extra_params("embedding", params)
    ids, table = inputs
    dtype_in("embedding", "ids", ids, "int32", "int64")
    if table.ndim != 2:
        raise OpError(f"embedding: table must be [vocab, dim], got shape {table.shape}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= table.shape[0]):
        raise OpError(
            f"embedding: token ids must be in [0, {table.shape[0]}), got "
            f"[{int(ids.min())}, {int(ids.max())}]"
        )


def embedding_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    _embedding_args(inputs, params)
    return np.take(inputs[1], inputs[0], axis=0)


def embedding_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    _embedding_args(inputs, params)
    ids, table = inputs
    rows = [table[int(i)] for i in ids.reshape(-1)]
    out = np.stack(rows) if rows else np.empty((0, table.shape[1]), dtype=table.dtype)
    return out.reshape((*ids.shape, table.shape[1]))


def embedding_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _embedding_args(inputs, params)
    ids, table = inputs
    return (*ids.shape, table.shape[1]), dtype_name(table)


register(Op("embedding", embedding_fast, embedding_ref, "table[ids]: token embedding lookup", embedding_shape))
