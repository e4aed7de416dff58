"""argmax and seeded sampling: exact, reproducible, and distributed like softmax."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_helpers import SETTINGS, agree, ints

from verimesh.runtime import get_op
from verimesh.runtime.ops._common import OpError
from verimesh.runtime.tables import build_exp_table


@SETTINGS
@given(seed=st.integers(0, 2**64 - 1), step=st.integers(0, 2**64 - 1), v=st.integers(1, 60),
       dtype=st.sampled_from(["int8", "int16", "int32"]), extreme=st.booleans(),
       temp=st.integers(1, 3000), top_k=st.integers(0, 8))
def test_sample_and_argmax_fast_equal_reference(seed, step, v, dtype, extreme, temp, top_k):
    rng = np.random.default_rng(seed % 2**32)
    logits = ints(rng, (3, v), dtype, extreme)
    table = build_exp_table(0.25)
    agree("argmax", [logits])
    tok = agree("sample", [logits, table], seed=seed, step=step, temperature_milli=temp, top_k=top_k)
    assert tok.shape == (3,) and np.all((tok >= 0) & (tok < v))


def test_top_k_keeps_the_lowest_indices_among_ties():
    logits = np.array([5, 9, 5, 9, 5, 1, 5], dtype=np.int32)
    table = build_exp_table(0.01)
    # top 3 = both 9s + the first 5 (index 0); token 2, 4, 6 must never be drawn
    drawn = {int(agree("sample", [logits, table], seed=3, step=s, top_k=3)) for s in range(300)}
    assert drawn == {0, 1, 3}


def test_argmax_breaks_ties_to_the_lowest_index():
    assert get_op("argmax").fast([np.array([1, 5, 5, 2], np.int32)], {}).tolist() == 1


def test_sampling_is_reproducible_and_follows_softmax():
    scale = 0.25
    table = build_exp_table(scale, frac_bits=20)
    logits = np.array([8, 4, 0, -4, -40], dtype=np.int32)
    draws = [
        int(get_op("sample").fast([logits, table], {"seed": 7, "step": s}))
        for s in range(4000)
    ]
    again = [int(get_op("sample").fast([logits, table], {"seed": 7, "step": s})) for s in range(50)]
    assert draws[:50] == again
    p = np.exp(logits * scale)
    p /= p.sum()
    freq = np.bincount(draws, minlength=5) / len(draws)
    assert np.max(np.abs(freq - p)) < 0.03
    # top_k=1 is greedy; a low temperature concentrates on the max
    k1 = [int(get_op("sample").fast([logits, table], {"seed": 1, "step": s, "top_k": 1})) for s in range(30)]
    assert set(k1) == {0}
    cold = [int(get_op("sample").fast([logits, table], {"seed": 1, "step": s, "temperature_milli": 100}))
            for s in range(200)]
    assert cold.count(0) > 190


def test_sample_refuses_temperature_zero():
    with pytest.raises(OpError, match="use argmax"):
        get_op("sample").fast([np.zeros(4, np.int32), build_exp_table(0.5)],
                              {"seed": 0, "step": 0, "temperature_milli": 0})
