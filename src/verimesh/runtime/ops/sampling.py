"""Choosing the next token: ``argmax`` and seeded ``sample``, both exact.

The sampler is part of the exact computation: its randomness is a counter-based PRNG,
r = sha256("verimesh-sample-v1" || seed || step || row), read as a 128-bit integer, so the
same (seed, step) picks the same token on every machine, in any order of evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import fixed
from ..registry import Op, register
from ._common import OpError, arity, dtype_in, no_extra_params, param
from .nonlinear import check_exp_table

SAMPLE_TAG = b"verimesh-sample-v1"


def random_u128(seed: int, step: int, row: int) -> int:
    """The sampler's random number for (seed, step, row): 128 bits of sha256."""
    data = SAMPLE_TAG + seed.to_bytes(8, "big") + step.to_bytes(8, "big") + row.to_bytes(8, "big")
    return int.from_bytes(hashlib.sha256(data).digest()[:16], "big")


# --- argmax ---------------------------------------------------------------------------------


def _argmax_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> None:
    arity("argmax", inputs, 1)
    no_extra_params("argmax", params)
    if inputs[0].ndim < 1 or inputs[0].shape[-1] < 1:
        raise OpError(f"argmax: x needs a non-empty last axis, got shape {inputs[0].shape}")


def argmax_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """Index of the largest value on the last axis; ties go to the lowest index."""
    _argmax_args(inputs, params)
    return np.argmax(inputs[0], axis=-1).astype(np.int64)


def argmax_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    _argmax_args(inputs, params)
    x = inputs[0]
    out = np.empty(x.shape[:-1], dtype=np.int64)
    for idx in np.ndindex(*x.shape[:-1]):
        row = [int(v) for v in x[idx]]
        out[idx] = row.index(max(row))
    return out


def argmax_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _argmax_args(inputs, params)
    return inputs[0].shape[:-1], "int64"


register(Op("argmax", argmax_fast, argmax_ref, "greedy choice: first index of the max -> int64", argmax_shape))


# --- sample ---------------------------------------------------------------------------------
# inputs: logits [..., V] (int8/16/32), exp_table (for the logits' scale at temperature 1)
# params: seed (0..2^64-1), step (0..2^64-1), temperature_milli (>= 1), top_k (0 = all)
# spec per row r:
#   keep = the top_k largest logits (ties: lower index first), or all
#   d_j  = div_round((max - x_j) * 1000, temperature_milli)
#   w_j  = exp_table[min(d_j, len-1)] if j kept else 0          (w of the max is table[0] >= 1)
#   t    = random_u128(seed, step, r) mod sum(w)
#   token = smallest j with w_0 + ... + w_j > t


def _sample_args(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[int, int, int, int]:
    arity("sample", inputs, 2)
    no_extra_params("sample", params, "seed", "step", "temperature_milli", "top_k")
    x, table = inputs
    dtype_in("sample", "logits", x, "int8", "int16", "int32")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise OpError(f"sample: logits need a non-empty last axis, got shape {x.shape}")
    check_exp_table("sample", table)
    seed = param("sample", params, "seed", int)
    step = param("sample", params, "step", int)
    temp = param("sample", params, "temperature_milli", int, 1000)
    top_k = param("sample", params, "top_k", int, 0)
    if not (0 <= seed < 2**64 and 0 <= step < 2**64):
        raise OpError("sample: seed and step must be in [0, 2^64)")
    if not 1 <= temp <= 1_000_000:
        raise OpError("sample: temperature_milli must be in [1, 10^6]; use argmax for temperature 0")
    if top_k < 0:
        raise OpError("sample: top_k must be >= 0 (0 keeps every token)")
    return seed, step, temp, top_k


def sample_fast(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    seed, step, temp, top_k = _sample_args(inputs, params)
    x, table = inputs
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    n = rows.shape[1]
    out = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(rows):
        keep = np.ones(n, dtype=bool)
        if 0 < top_k < n:  # the k largest, ties to the lower index, in O(n): no full sort
            kth = np.partition(row, n - top_k)[n - top_k]  # the k-th largest value
            keep = row > kth
            ties = np.flatnonzero(row == kth)[: top_k - int(keep.sum())]
            keep[ties] = True
        d = fixed.div_round((row.max() - row) * 1000, temp)
        w = np.where(keep, np.take(table, d, mode="clip").astype(np.int64), 0)
        cumulative = np.cumsum(w)
        t = random_u128(seed, step, r) % int(cumulative[-1])
        out[r] = int(np.searchsorted(cumulative, t, side="right"))
    return out.reshape(x.shape[:-1])


def sample_ref(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    seed, step, temp, top_k = _sample_args(inputs, params)
    x, table = inputs
    rows = x.reshape(-1, x.shape[-1])
    out = []
    for r in range(rows.shape[0]):
        row = [int(v) for v in rows[r]]
        ranked = sorted(range(len(row)), key=lambda j: (-row[j], j))
        kept = set(ranked[:top_k]) if 0 < top_k < len(row) else set(range(len(row)))
        top = max(row)
        w = [
            int(table[min((2 * (top - v) * 1000 + temp) // (2 * temp), len(table) - 1)])
            if j in kept
            else 0
            for j, v in enumerate(row)
        ]
        t = random_u128(seed, step, r) % sum(w)
        running = 0
        for j, wj in enumerate(w):
            running += wj
            if running > t:
                out.append(j)
                break
    return np.array(out, dtype=np.int64).reshape(x.shape[:-1])


def sample_shape(inputs: Sequence[np.ndarray], params: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    _sample_args(inputs, params)
    return inputs[0].shape[:-1], "int64"


register(
    Op(
        "sample",
        sample_fast,
        sample_ref,
        "seeded temperature/top-k sampling from integer logits (sha256 counter PRNG) -> int64",
        sample_shape,
    )
)
