"""lut and softmax: fast == reference, and close to the float functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_helpers import SETTINGS, agree, ints

from verimesh.runtime import get_op
from verimesh.runtime.ops._common import OpError
from verimesh.runtime.tables import build_exp_table, build_gelu_table, build_silu_table, gelu, silu


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(["int8", "int16", "uint8"]),
       extreme=st.booleans())
def test_lut_fast_equals_reference(seed, dtype, extreme):
    rng = np.random.default_rng(seed)
    length = 65536 if dtype == "int16" else 256
    table = ints(rng, (length,), "int16")
    agree("lut", [ints(rng, (3, 7), dtype, extreme), table])


def test_gelu_and_silu_tables_track_the_float_functions():
    x = np.arange(-128, 128, dtype=np.int8)
    for build, fn in ((build_gelu_table, gelu), (build_silu_table, silu)):
        table = build(in_scale=0.05, out_scale=0.02, in_dtype="int8", out_dtype="int16")
        out = get_op("lut").fast([x, table], {}).astype(np.float64) * 0.02
        assert np.max(np.abs(out - fn(x * 0.05))) <= 0.01 + 1e-12  # half an output step
    int16_table = build_gelu_table(in_scale=1e-3, out_scale=1e-3, in_dtype="int16", out_dtype="int16")
    assert int16_table.shape == (65536,)


def test_lut_rejects_a_table_of_the_wrong_length():
    with pytest.raises(OpError, match="shape \\(256,\\)"):
        get_op("lut").fast([np.zeros(3, np.int8), np.zeros(255, np.int8)], {})


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 70), dtype=st.sampled_from(["int8", "int16", "int32"]),
       extreme=st.booleans(), q=st.integers(1, 30), scale=st.floats(0.01, 2.0))
def test_softmax_fast_equals_reference(seed, n, dtype, extreme, q, scale):
    rng = np.random.default_rng(seed)
    agree("softmax", [ints(rng, (4, n), dtype, extreme), build_exp_table(scale)], prob_bits=q)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200))
def test_softmax_is_within_1e_2_of_float_softmax(seed, n):
    rng = np.random.default_rng(seed)
    scale = 1 / 16
    x = rng.integers(-200, 200, size=(3, n)).astype(np.int16)
    p = get_op("softmax").fast([x, build_exp_table(scale)], {"prob_bits": 15}) / 2**15
    z = x * scale
    ref = np.exp(z - z.max(axis=-1, keepdims=True))
    ref /= ref.sum(axis=-1, keepdims=True)
    assert np.max(np.abs(p - ref)) < 1e-2
    assert np.all(np.abs(p.sum(axis=-1) - 1) < n * 2**-15 + 1e-2)


def test_exp_table_ends_in_zero_and_starts_at_one():
    table = build_exp_table(0.1, frac_bits=16)
    assert table[0] == 2**16 and table[-1] == 0 and table[-2] > 0
