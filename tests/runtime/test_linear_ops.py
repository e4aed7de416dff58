"""fast == reference for the linear-algebra ops, at random and extreme values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_helpers import SETTINGS, agree, ints

from verimesh.runtime import get_op
from verimesh.runtime.fixed import FixedPointError, multiplier_tensors, requantize
from verimesh.runtime.matmul import matmul_exact, matmul_reference, plan_chunks
from verimesh.runtime.ops._common import OpError
from verimesh.runtime.tensor import TensorError


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 9),
    k=st.integers(1, 2100),
    n=st.integers(1, 9),
    a_dtype=st.sampled_from(["int8", "int16", "uint8"]),
    extreme=st.booleans(),
)
def test_matmul_exact_equals_int64(seed, m, k, n, a_dtype, extreme):
    rng = np.random.default_rng(seed)
    a = ints(rng, (m, k), a_dtype, extreme)
    b = ints(rng, (k, n), "int8", extreme)
    np.testing.assert_array_equal(matmul_exact(a, b), matmul_reference(a, b))
    bt = np.ascontiguousarray(b.T)
    np.testing.assert_array_equal(matmul_exact(a, bt, transpose_b=True), matmul_reference(a, b))
    agree("matmul", [a, bt], transpose_b=True)  # the op, and its shape, over the same operands
    agree("matmul", [a[None], b])  # a batch of one against a plain matrix


def test_matmul_chunks_across_the_float32_bound():
    # K = 3000 int8 x int8 at -128: sums reach 3000 * 2^14 > 2^24, so float32 needs 3 chunks.
    a = np.full((2, 3000), -128, dtype=np.int8)
    b = np.full((3000, 2), -128, dtype=np.int8)
    assert plan_chunks(3000, 128, 128) == ("float32", 1024)
    assert int(matmul_exact(a, b)[0, 0]) == 3000 * 128 * 128
    # int16 x int8 does not fit float32 usefully: one float64 product.
    assert plan_chunks(1536, 2**15, 128) == ("float64", 1536)


def test_matmul_int32_inputs_fall_back_to_int64_or_refuse():
    a = np.full((1, 4), 2**30, dtype=np.int32)
    b = np.full((4, 1), -(2**30), dtype=np.int32)
    assert plan_chunks(4, 2**30, 2**30) == ("int64", 4)
    assert int(matmul_exact(a, b)[0, 0]) == -4 * 2**60
    with pytest.raises(FixedPointError, match="overflow int64"):
        matmul_exact(np.full((1, 4), 2**31 - 1, dtype=np.int64), np.full((4, 1), 2**40, dtype=np.int64))


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 6),
    k=st.integers(1, 300),
    n=st.integers(1, 12),
    x_dtype=st.sampled_from(["int8", "int16"]),
    out=st.sampled_from(["int8", "int16", "int32"]),
    bias=st.booleans(),
    extreme=st.booleans(),
    per_channel=st.booleans(),
)
def test_linear_fast_equals_reference(seed, rows, k, n, x_dtype, out, bias, extreme, per_channel):
    rng = np.random.default_rng(seed)
    x = ints(rng, (rows, k), x_dtype, extreme)
    w = ints(rng, (n, k), "int8", extreme)
    scales = rng.uniform(1e-6, 0.1, size=n if per_channel else ())
    m, s = multiplier_tensors(scales)
    inputs = [x, w, m, s]
    if bias:
        inputs.append(ints(rng, (n,), "int32", extreme) // 1024)
    agree("linear", inputs, out_dtype=out)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    acc_bits=st.integers(1, 46),
    ratio_exp=st.floats(-31, 13.9),
    extreme=st.booleans(),
)
def test_requantize_fast_equals_pythonints(seed, acc_bits, ratio_exp, extreme):
    rng = np.random.default_rng(seed)
    lim = 2**acc_bits - 1
    acc = rng.choice(np.array([-lim, lim]), 17) if extreme else rng.integers(-lim, lim + 1, 17)
    m, s = multiplier_tensors(2.0**ratio_exp)
    out = agree("requantize", [acc.astype(np.int64), m, s], out_dtype="int32")
    # and the definition, once more, in plain Python
    expect = [min(max((int(a) * int(m) + (1 << (int(s) - 1))) >> int(s), -(2**31)), 2**31 - 1) for a in acc]
    assert out.tolist() == expect


def test_requantize_rounds_half_up_and_saturates():
    m, s = np.array(2**30, dtype=np.int32), np.array(31, dtype=np.int32)  # x 1/2
    acc = np.array([-3, -1, 1, 3, 1000], dtype=np.int64)
    assert requantize(acc, m, s, "int8").tolist() == [-1, 0, 1, 2, 127]
    with pytest.raises(FixedPointError, match="2\\^47"):
        requantize(np.array([2**47]), m, s, "int8")


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["int8", "int16", "int32"]),
    extreme=st.booleans(),
    ra=st.floats(1e-4, 4.0),
    rb=st.floats(1e-4, 4.0),
)
def test_add_and_mul_fast_equal_reference(seed, dtype, extreme, ra, rb):
    rng = np.random.default_rng(seed)
    a = ints(rng, (3, 8), dtype, extreme)
    b = ints(rng, (3, 8), dtype, extreme)
    from verimesh.runtime.fixed import add_multipliers

    ma, mb, s = add_multipliers(ra, rb)
    agree("add", [a, b, ma, mb, s], out_dtype="int16")
    if dtype != "int32":
        m, s1 = multiplier_tensors(ra * 1e-3)
        agree("mul", [a, b, m, s1], out_dtype="int8")


def test_add_broadcasts_like_numpy():
    from verimesh.runtime.fixed import add_multipliers

    rng = np.random.default_rng(2)
    tokens = ints(rng, (2, 5, 8), "int16")
    positions = ints(rng, (5, 8), "int16")  # one row per position, shared by the batch
    out = agree("add", [tokens, positions, *add_multipliers(0.5, 0.25)], out_dtype="int16")
    assert out.shape == (2, 5, 8)


def test_add_matches_float_formula():
    from verimesh.runtime.fixed import add_multipliers

    a = np.arange(-50, 50, dtype=np.int16)
    b = np.arange(50, -50, -1, dtype=np.int16)
    out = get_op("add").fast([a, b, *add_multipliers(0.75, 0.3)], {"out_dtype": "int16"})
    assert np.max(np.abs(out - (0.75 * a + 0.3 * b))) <= 0.5 + 1e-6


def test_embedding_lookup_and_errors():
    table = np.arange(20, dtype=np.int8).reshape(5, 4)
    ids = np.array([[4, 0], [2, 2]], dtype=np.int64)
    out = agree("embedding", [ids, table])
    assert out.shape == (2, 2, 4) and out[0, 0].tolist() == [16, 17, 18, 19]
    with pytest.raises(OpError, match="token ids must be in"):
        get_op("embedding").fast([np.array([5]), table], {})
    with pytest.raises(TensorError, match="ids must be"):
        get_op("embedding").fast([np.array([1.0]), table], {})


def test_linear_rejects_bad_shapes_and_dtypes():
    m, s = multiplier_tensors(0.01)
    w = np.zeros((3, 4), dtype=np.int8)
    with pytest.raises(OpError, match="do not fit"):
        get_op("linear").fast([np.zeros((2, 5), np.int8), w, m, s], {})
    with pytest.raises(TensorError, match="weight must be int8"):
        get_op("linear").fast([np.zeros((2, 4), np.int8), w.astype(np.int16), m, s], {})
    with pytest.raises(OpError, match="unknown params"):
        get_op("linear").fast([np.zeros((2, 4), np.int8), w, m, s], {"outdtype": "int8"})
