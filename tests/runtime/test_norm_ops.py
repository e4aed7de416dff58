"""layernorm, rmsnorm, mean_pool, l2_normalize, and the integer square roots under them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_helpers import SETTINGS, agree, ints

from verimesh.runtime import get_op
from verimesh.runtime.fixed import (
    bit_length_array,
    isqrt_array,
    scaled_rsqrt_mul,
    scaled_rsqrt_mul_reference,
)
from verimesh.runtime.ops._common import OpError
from verimesh.runtime.tables import build_norm_constants


@SETTINGS
@given(st.lists(st.integers(0, 2**62 - 1), min_size=1, max_size=40))
def test_isqrt_and_bit_length_are_exact(values):
    n = np.array([*values, 0, 1, 2 ** 62 - 1, 2 ** 52 + 1, (2 ** 31 - 1) ** 2], dtype=np.int64)
    assert isqrt_array(n).tolist() == [math.isqrt(int(v)) for v in n]
    assert bit_length_array(n).tolist() == [int(v).bit_length() for v in n]


@SETTINGS
@given(st.integers(1, 2**62 - 1), st.integers(0, 2**31), st.integers(1, 30))
def test_scaled_rsqrt_matches_python_ints(v, x, frac):
    x = min(x, math.isqrt(v))  # the norms' precondition |x| <= sqrt(V)
    for xv in (x, -x):
        got = int(scaled_rsqrt_mul(np.array([xv]), np.array([v]), frac)[0])
        assert got == scaled_rsqrt_mul_reference(xv, v, frac)
    # and it is close to the real value
    assert abs(scaled_rsqrt_mul_reference(x, v, frac) - x * 2**frac / math.sqrt(v)) <= 1 + 2**frac * 2**-14


def _norm_inputs(rng, kind, d, dtype, extreme):
    x = ints(rng, (3, d), dtype, extreme)
    if dtype == "int32":
        x = (x // 2**12).astype(np.int32)  # keep D * x^2 under 2^62
    consts = build_norm_constants(rng.uniform(-2, 2, d), rng.uniform(-1, 1, d) if kind == "layernorm" else None,
                                  in_scale=0.01, out_scale=0.05, eps=1e-5)
    inputs = [x, consts["gamma"]] + ([consts["beta"]] if kind == "layernorm" else [])
    return x, consts, inputs


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 70), kind=st.sampled_from(["layernorm", "rmsnorm"]),
       dtype=st.sampled_from(["int8", "int16", "int32"]), extreme=st.booleans(),
       out=st.sampled_from(["int8", "int16"]))
def test_norms_fast_equal_reference(seed, d, kind, dtype, extreme, out):
    rng = np.random.default_rng(seed)
    _, consts, inputs = _norm_inputs(rng, kind, d, dtype, extreme)
    agree(kind, inputs, eps=consts["eps"], shift=consts["shift"], out_dtype=out)


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_norms_track_the_float_formula(kind):
    rng = np.random.default_rng(1)
    d, s_in, s_out, eps = 384, 0.02, 0.01, 1e-12
    gamma, beta = rng.uniform(0.5, 1.5, d), rng.uniform(-0.2, 0.2, d)
    x = rng.normal(0, 40, (8, d)).round().astype(np.int16)
    consts = build_norm_constants(gamma, beta if kind == "layernorm" else None, s_in, s_out, eps)
    inputs = [x, consts["gamma"]] + ([consts["beta"]] if kind == "layernorm" else [])
    out = get_op(kind).fast(inputs, {"eps": consts["eps"], "shift": consts["shift"], "out_dtype": "int16"})
    xf = x * s_in
    if kind == "layernorm":
        xf = xf - xf.mean(-1, keepdims=True)
        ref = xf / np.sqrt((xf**2).mean(-1, keepdims=True) + eps) * gamma + beta
    else:
        ref = xf / np.sqrt((xf**2).mean(-1, keepdims=True) + eps) * gamma
    assert np.max(np.abs(out * s_out - ref)) <= 1.01 * s_out  # two half-step roundings (product, beta)


def test_norm_refuses_inputs_beyond_the_int64_bound():
    x = np.full((1, 4), 2**31 - 1, dtype=np.int32)
    x[0, 0] = -(2**31)
    with pytest.raises(OpError, match="too large"):
        get_op("rmsnorm").fast([x, np.ones(4, np.int32)], {"eps": 1, "shift": 30})


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(1, 9), dtype=st.sampled_from(["int8", "int16"]),
       extreme=st.booleans())
def test_mean_pool_and_l2_fast_equal_reference(seed, t, dtype, extreme):
    rng = np.random.default_rng(seed)
    x = ints(rng, (3, t, 16), dtype, extreme)
    mask = rng.integers(0, 2, (3, t)).astype(np.int8)
    mask[0] = 0  # a fully padded item pools to zeros
    pooled = agree("mean_pool", [x, mask])
    assert not pooled[0].any()
    agree("l2_normalize", [pooled], frac_bits=15)
    agree("l2_normalize", [x.astype(np.int32)], frac_bits=20)


def test_pool_and_l2_track_floats():
    rng = np.random.default_rng(3)
    x = rng.integers(-100, 100, (2, 5, 384)).astype(np.int16)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=np.int8)
    pooled = get_op("mean_pool").fast([x, mask], {})
    ref = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    assert np.max(np.abs(pooled - ref)) <= 0.5
    unit = get_op("l2_normalize").fast([pooled], {"frac_bits": 15}) / 2**15
    ref_unit = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
    assert np.max(np.abs(unit - ref_unit)) < 1e-4
