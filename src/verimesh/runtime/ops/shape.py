"""Data-movement ops: reshape, transpose, concat, slice.

They change no value, but they must still be ops: a dispute links each op's input hashes
to earlier outputs, so model code may not reshape tensors behind the trace's back. The
reference versions build the result element by element from index arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..registry import Op, register
from ..tensor import dtype_name
from ._common import OpError, arity, no_extra_params, param


def _int_list(op: str, params: dict[str, Any], name: str) -> list[int]:
    value = param(op, params, name, list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise OpError(f"{op}: param {name!r} must be a list of ints, got {value!r}")
    return value


def _axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise OpError(f"{op}: axis {axis} is out of range for {ndim} dimensions")
    return axis % ndim


# --- reshape ------------------------------------------------------------------------------


def _reshape_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[int, ...]:
    arity("reshape", inputs, 1)
    no_extra_params("reshape", params, "shape")
    shape = _int_list("reshape", params, "shape")
    try:
        return inputs[0].reshape(shape).shape  # a view: checks the shape without copying
    except ValueError:
        raise OpError(f"reshape: cannot reshape {inputs[0].shape} into {shape}") from None


def reshape_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return inputs[0].reshape(_reshape_args(inputs, params))


def reshape_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    shape = _reshape_args(inputs, params)
    return np.array(inputs[0].ravel(order="C").tolist(), dtype=inputs[0].dtype).reshape(shape)


register(Op("reshape", reshape_fast, reshape_ref, "x.reshape(shape) in C order",
            lambda inputs, params: (_reshape_args(inputs, params), dtype_name(inputs[0]))))


# --- transpose ------------------------------------------------------------------------------


def _transpose_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> list[int]:
    arity("transpose", inputs, 1)
    no_extra_params("transpose", params, "axes")
    axes = _int_list("transpose", params, "axes")
    if sorted(axes) != list(range(inputs[0].ndim)):
        raise OpError(f"transpose: axes {axes} are not a permutation of 0..{inputs[0].ndim - 1}")
    return axes


def transpose_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(inputs[0], _transpose_args(inputs, params)))


def transpose_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    axes = _transpose_args(inputs, params)
    x = inputs[0]
    out = np.empty([x.shape[a] for a in axes], dtype=x.dtype)
    for idx in np.ndindex(*out.shape):
        src = [0] * x.ndim
        for pos, a in enumerate(axes):
            src[a] = idx[pos]
        out[idx] = x[tuple(src)]
    return out


def transpose_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    axes = _transpose_args(inputs, params)
    return tuple(inputs[0].shape[a] for a in axes), dtype_name(inputs[0])


register(Op("transpose", transpose_fast, transpose_ref, "np.transpose(x, axes)", transpose_shape))


# --- concat ---------------------------------------------------------------------------------


def _concat_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> int:
    if len(inputs) < 1:
        raise OpError("concat needs at least one input tensor")
    no_extra_params("concat", params, "axis")
    axis = _axis("concat", param("concat", params, "axis", int), inputs[0].ndim)
    for t in inputs[1:]:
        if t.dtype != inputs[0].dtype or t.ndim != inputs[0].ndim:
            raise OpError(f"concat: all inputs need dtype {inputs[0].dtype} and {inputs[0].ndim} dims")
        other = [d for i, d in enumerate(t.shape) if i != axis]
        first = [d for i, d in enumerate(inputs[0].shape) if i != axis]
        if other != first:
            raise OpError(f"concat: shapes {inputs[0].shape} and {t.shape} differ off axis {axis}")
    return axis


def concat_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return np.concatenate(list(inputs), axis=_concat_args(inputs, params))


def concat_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    axis = _concat_args(inputs, params)
    parts = [np.moveaxis(t, axis, 0) for t in inputs]
    rows = [row for p in parts for row in p]
    shape = list(np.moveaxis(inputs[0], axis, 0).shape)
    shape[0] = len(rows)
    out = np.empty(shape, dtype=inputs[0].dtype)
    for i, row in enumerate(rows):
        out[i] = row
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


def concat_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    axis = _concat_args(inputs, params)
    shape = list(inputs[0].shape)
    shape[axis] = sum(t.shape[axis] for t in inputs)
    return tuple(shape), dtype_name(inputs[0])


register(Op("concat", concat_fast, concat_ref, "np.concatenate(inputs, axis): KV caches", concat_shape))


# --- slice ----------------------------------------------------------------------------------


def _slice_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[int, int, int]:
    arity("slice", inputs, 1)
    no_extra_params("slice", params, "axis", "start", "stop")
    x = inputs[0]
    axis = _axis("slice", param("slice", params, "axis", int), x.ndim)
    start = param("slice", params, "start", int)
    stop = param("slice", params, "stop", int)
    if not 0 <= start <= stop <= x.shape[axis]:
        raise OpError(f"slice: need 0 <= start <= stop <= {x.shape[axis]}, got {start}, {stop}")
    return axis, start, stop


def slice_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    axis, start, stop = _slice_args(inputs, params)
    index = [slice(None)] * inputs[0].ndim
    index[axis] = slice(start, stop)
    return np.ascontiguousarray(inputs[0][tuple(index)])


def slice_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    axis, start, stop = _slice_args(inputs, params)
    return np.take(inputs[0], np.arange(start, stop), axis=axis)


def slice_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    axis, start, stop = _slice_args(inputs, params)
    shape = list(inputs[0].shape)
    shape[axis] = stop - start
    return tuple(shape), dtype_name(inputs[0])


register(Op("slice", slice_fast, slice_ref, "x[..., start:stop, ...] along axis", slice_shape))
