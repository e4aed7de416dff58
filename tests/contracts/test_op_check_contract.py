"""OpCheck.vy: the EVM recomputes the runtime's canonical tensor hash and the requantize op
of small tensors, bit for bit what verimesh.runtime computes; and what it costs."""

from __future__ import annotations

import boa
import numpy as np
import pytest
from contract_world import load

from verimesh.runtime.registry import get_op
from verimesh.runtime.tensor import canonical_bytes, tensor_hash


@pytest.fixture(scope="module")
def op_check():
    return load("OpCheck.vy")


def _data(arr: np.ndarray) -> bytes:
    header_len = len(canonical_bytes(arr)) - arr.nbytes
    return canonical_bytes(arr)[header_len:]


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 1, 3)])
def test_tensor_hash_equals_the_runtime(op_check, dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 7 + len(dtype))
    info = np.iinfo(dtype)
    arr = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    assert op_check.tensor_hash(dtype, list(shape), _data(arr)) == tensor_hash(arr)


@pytest.mark.parametrize("seed", range(6))
def test_requantize_equals_the_runtime_reference(op_check, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = [(8,), (4, 16), (2, 3, 5), (256,), (1,), (16, 16)][seed]
    acc_dtype = "int64" if seed % 2 else "int32"
    bound = 2**46 if acc_dtype == "int64" else 2**31 - 1
    acc = rng.integers(-bound, bound, size=shape, dtype=acc_dtype)
    channels = shape[-1]
    per_channel = seed % 3 == 0
    m = rng.integers(0, 2**31 - 1, size=(channels,) if per_channel else (), dtype=np.int32)
    s = rng.integers(17, 62, size=(channels,) if per_channel else (), dtype=np.int32)
    expected = get_op("requantize").reference([acc, m, s], {})
    assert expected.dtype == np.int8
    got = op_check.requantize_hash(acc_dtype, list(shape), _data(acc), [int(x) for x in np.atleast_1d(m)],
                                   [int(x) for x in np.atleast_1d(s)])
    assert got == tensor_hash(expected)


def test_bad_inputs_are_refused(op_check) -> None:
    acc = np.arange(4, dtype=np.int32)
    with boa.reverts("op_check: data length does not match the shape"):
        op_check.tensor_hash("int32", [5], _data(acc))
    with boa.reverts("op_check: dtype must be int8, int16, int32, int64 or uint8"):
        op_check.tensor_hash("f32", [4], _data(acc))
    with boa.reverts("op_check: tensor too large to check on chain"):
        op_check.tensor_hash("int8", [16, 17], b"\x00" * 272)
    with boa.reverts("op_check: requantize takes an int32 or int64 accumulator"):
        op_check.requantize_hash("int8", [4], b"\x00" * 4, [1], [20])
    with boa.reverts("op_check: data length does not match the shape"):
        op_check.requantize_hash("int32", [5], _data(acc), [1], [20])
    with boa.reverts("op_check: multiplier must have one value or one per channel"):
        op_check.requantize_hash("int32", [4], _data(acc), [1, 2], [20])
    with boa.reverts("op_check: shift must have one value or one per channel"):
        op_check.requantize_hash("int32", [4], _data(acc), [1], [20, 20])
    with boa.reverts("op_check: multiplier out of range"):
        op_check.requantize_hash("int32", [4], _data(acc), [-1], [20])
    with boa.reverts("op_check: shift must be in [17, 62]"):
        op_check.requantize_hash("int32", [4], _data(acc), [1], [16])
    big = np.array([2**47], dtype=np.int64)
    with boa.reverts("op_check: accumulator magnitude is >= 2^47"):
        op_check.requantize_hash("int64", [1], _data(big), [1], [20])


@pytest.mark.ignore_isolation
def test_gas_of_an_on_chain_requantize() -> None:
    """Recorded in docs/verification.md: gas of requantize + hash, by tensor size."""
    from contract_world import tx_gas

    with boa.swap_env(boa.Env()):
        c = load("OpCheck.vy")
        gas = {}
        for n in (16, 64, 256):
            acc = np.arange(-n // 2, n // 2, dtype=np.int32) * 1000
            gas[n] = tx_gas(c, lambda acc=acc, n=n: c.requantize_hash("int32", [n], _data(acc), [1 << 20], [24]))
        print("\nrequantize gas by elements:", gas)
        assert gas[256] < 3_000_000, gas
