"""rope and attention: fast == reference, float accuracy, and KV-cache == full sequence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_helpers import SETTINGS, agree, ints

from verimesh.runtime import ExecutionContext, get_op
from verimesh.runtime.fixed import multiplier_tensors
from verimesh.runtime.ops._common import OpError
from verimesh.runtime.tables import build_exp_table, build_rope_tables

TABLE_SCALE = 1 / 16  # one unit of attention score = 1/16 in the exp


def _attention_consts(dh: int, s_q: float, s_k: float, s_v: float, s_out: float, q_bits: int = 15):
    score_m, score_s = multiplier_tensors(s_q * s_k / math.sqrt(dh) / TABLE_SCALE)
    out_m, out_s = multiplier_tensors(s_v * 2.0**-q_bits / s_out)
    return score_m, score_s, build_exp_table(TABLE_SCALE), out_m, out_s


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(1, 6), style=st.sampled_from(["half", "interleaved"]),
       dtype=st.sampled_from(["int8", "int16"]), extreme=st.booleans())
def test_rope_fast_equals_reference(seed, t, style, dtype, extreme):
    rng = np.random.default_rng(seed)
    cos, sin = build_rope_tables(8, 64)
    x = ints(rng, (2, t, 8), dtype, extreme)
    pos = rng.integers(0, 64, t).astype(np.int64)
    agree("rope", [x, cos, sin, pos], style=style, out_dtype="int32")


def test_rope_matches_float_rotation():
    rng = np.random.default_rng(0)
    cos, sin = build_rope_tables(64, 512, theta=10000.0, frac_bits=14)
    x = rng.integers(-127, 128, (4, 10, 64)).astype(np.int8)
    pos = np.arange(100, 110, dtype=np.int64)
    out = get_op("rope").fast([x, cos, sin, pos], {"style": "half"})
    inv = 10000.0 ** (-np.arange(0, 64, 2) / 64)
    ang = pos[:, None] * inv[None, :]
    x1, x2 = x[..., :32].astype(float), x[..., 32:].astype(float)
    ref = np.concatenate([x1 * np.cos(ang) - x2 * np.sin(ang), x2 * np.cos(ang) + x1 * np.sin(ang)], -1)
    assert np.max(np.abs(out - ref)) < 0.5 + 2 * 128 * 2**-14 + 1e-9


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), tq=st.integers(1, 5), extra=st.integers(0, 4), gqa=st.booleans(),
       causal=st.booleans(), masked=st.booleans(), dtype=st.sampled_from(["int8", "int16"]),
       extreme=st.booleans())
def test_attention_fast_equals_reference(seed, tq, extra, gqa, causal, masked, dtype, extreme):
    rng = np.random.default_rng(seed)
    b, h, dh = 2, 4, 8
    hkv = 2 if gqa else h
    tk = tq + extra
    q = ints(rng, (b, h, tq, dh), dtype, extreme)
    k = ints(rng, (b, hkv, tk, dh), dtype, extreme)
    v = ints(rng, (b, hkv, tk, dh), dtype, extreme)
    s = 0.001 if dtype == "int16" else 0.05
    inputs = [q, k, v, *_attention_consts(dh, s, s, s, s)]
    if masked:
        inputs.append(rng.integers(0, 2, (b, tk)).astype(np.int8))
    agree("attention", inputs, causal=causal, out_dtype=dtype)


def test_attention_matches_float_attention():
    rng = np.random.default_rng(5)
    b, h, t, dh, s = 1, 2, 12, 32, 0.05
    q, k, v = (rng.integers(-100, 100, (b, h, t, dh)).astype(np.int8) for _ in range(3))
    out = get_op("attention").fast([q, k, v, *_attention_consts(dh, s, s, s, s)], {"causal": True})
    qf, kf, vf = q * s, k * s, v * s
    scores = qf @ np.swapaxes(kf, -1, -2) / math.sqrt(dh)
    scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ref = p @ vf
    # score quantisation at 1/16 dominates: |error| of a few output steps
    assert np.max(np.abs(out * s - ref)) < 4 * s


def _decoder_like_run(ctx: ExecutionContext, q, k, v, consts, token_by_token: bool):
    """Causal self-attention over T tokens: all at once, or one token per step with a cache."""
    t = q.shape[2]
    if not token_by_token:
        return ctx.call("attention", q, k, v, *consts, causal=True)
    k_cache = np.zeros((1, k.shape[1], 0, k.shape[3]), dtype=k.dtype)
    v_cache = k_cache.copy()
    rows = []
    for i in range(t):
        ctx.begin_step()
        k_cache = ctx.call("concat", k_cache, ctx.call("slice", k, axis=2, start=i, stop=i + 1), axis=2)
        v_cache = ctx.call("concat", v_cache, ctx.call("slice", v, axis=2, start=i, stop=i + 1), axis=2)
        q_i = ctx.call("slice", q, axis=2, start=i, stop=i + 1)
        rows.append(ctx.call("attention", q_i, k_cache, v_cache, *consts, causal=True))
    return ctx.call("concat", *rows, axis=2)


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_kv_cache_generation_equals_full_sequence(path):
    rng = np.random.default_rng(11)
    t, dh = 9, 16
    q = rng.integers(-128, 128, (1, 4, t, dh)).astype(np.int8)
    k = rng.integers(-128, 128, (1, 2, t, dh)).astype(np.int8)
    v = rng.integers(-128, 128, (1, 2, t, dh)).astype(np.int8)
    consts = _attention_consts(dh, 0.05, 0.05, 0.05, 0.05)
    full = _decoder_like_run(ExecutionContext(path=path), q, k, v, consts, token_by_token=False)
    stepped = _decoder_like_run(ExecutionContext(path=path), q, k, v, consts, token_by_token=True)
    np.testing.assert_array_equal(full, stepped)


def test_attention_errors_say_what_to_fix():
    q = np.zeros((1, 3, 2, 4), np.int8)
    kv = np.zeros((1, 2, 2, 4), np.int8)
    consts = _attention_consts(4, 0.1, 0.1, 0.1, 0.1)
    with pytest.raises(OpError, match="not a multiple"):
        get_op("attention").fast([q, kv, kv, *consts], {})
    q = np.zeros((1, 2, 3, 4), np.int8)
    with pytest.raises(OpError, match="q_offset"):
        get_op("attention").fast([q, kv, kv, *consts], {"causal": True})
