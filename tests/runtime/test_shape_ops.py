"""Data-movement ops: fast == reference, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_helpers import SETTINGS, agree, ints

from verimesh.runtime import get_op
from verimesh.runtime.ops._common import OpError


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(["int8", "int16", "int32", "int64", "uint8"]))
def test_shape_ops_fast_equal_reference(seed, dtype):
    rng = np.random.default_rng(seed)
    x = ints(rng, (2, 3, 4), dtype)
    assert agree("reshape", [x], shape=[6, -1]).shape == (6, 4)
    assert agree("transpose", [x], axes=[2, 0, 1]).shape == (4, 2, 3)
    assert agree("concat", [x, x[:, :1]], axis=1).shape == (2, 4, 4)
    assert agree("slice", [x], axis=-1, start=1, stop=3).shape == (2, 3, 2)
    assert agree("concat", [np.zeros((2, 0, 4), dtype), x], axis=1).shape == x.shape


def test_shape_op_errors():
    x = np.zeros((2, 3), np.int8)
    with pytest.raises(OpError, match="cannot reshape"):
        get_op("reshape").fast([x], {"shape": [4, 2]})
    with pytest.raises(OpError, match="permutation"):
        get_op("transpose").fast([x], {"axes": [0, 0]})
    with pytest.raises(OpError, match="differ off axis"):
        get_op("concat").fast([x, np.zeros((3, 3), np.int8)], {"axis": 1})
    with pytest.raises(OpError, match="start <= stop"):
        get_op("slice").fast([x], {"axis": 0, "start": 1, "stop": 5})
