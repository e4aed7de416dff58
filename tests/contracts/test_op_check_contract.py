"""OpCheck.vy: the EVM recomputes one op of the runtime from its input tensors, bit for bit
what verimesh.runtime computes (the canonical tensor hash of each input and of the output),
refuses what the runtime refuses, and stays in sync with verimesh.chain.op_check_spec."""

from __future__ import annotations

import boa
import numpy as np
import pytest
from contract_world import load

from verimesh.chain.op_check_spec import (
    MAX_ELEMENTS,
    MAX_INPUTS,
    MAX_PARAMS,
    SUPPORTED_OPS,
    checkable,
    tensor_arg,
)
from verimesh.runtime.context import ExecutionContext
from verimesh.runtime.registry import get_op
from verimesh.runtime.tensor import tensor_hash
from verimesh.runtime.trace import OpRecord, canonical_params

DTYPES = ["int16", "int32", "int64", "int8", "uint8"]


@pytest.fixture(scope="module")
def op_check():
    return load("OpCheck.vy")


def _random(rng: np.random.Generator, dtype: str, shape: tuple[int, ...], bound: int | None = None) -> np.ndarray:
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if bound is not None:
        lo, hi = max(lo, -bound), min(hi, bound)
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)


def _recompute(op_check, op: str, params: dict, inputs: list[np.ndarray]) -> tuple[list[bytes], bytes]:
    hashes, out = op_check.recompute(op, canonical_params(params), [tensor_arg(t) for t in inputs])
    return list(hashes), out


def _expect_runtime(op_check, op: str, params: dict, inputs: list[np.ndarray]) -> None:
    """The contract's hashes are the runtime's: inputs, and the reference op's output."""
    hashes, out = _recompute(op_check, op, params, inputs)
    assert hashes == [tensor_hash(t) for t in inputs]
    assert out == tensor_hash(get_op(op).reference(inputs, params))


# --- the tensor hash ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 1, 3), (0, 3)])
def test_tensor_hash_equals_the_runtime(op_check, dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 7 + len(dtype))
    arr = _random(rng, dtype, shape)
    assert op_check.tensor_hash(*tensor_arg(arr)) == tensor_hash(arr)


def test_the_largest_tensor_is_hashed_and_one_more_element_is_refused(op_check) -> None:
    arr = np.arange(MAX_ELEMENTS, dtype=np.int64)
    assert op_check.tensor_hash(*tensor_arg(arr)) == tensor_hash(arr)
    with boa.reverts("op_check: tensor too large to check on chain"):
        op_check.tensor_hash("int8", [MAX_ELEMENTS + 1], b"\x00" * (MAX_ELEMENTS + 1))
    with boa.reverts("op_check: tensor too large to check on chain"):
        op_check.tensor_hash("int8", [0, MAX_ELEMENTS + 1], b"")


def test_malformed_tensors_are_refused(op_check) -> None:
    arr = tensor_arg(np.arange(4, dtype=np.int32))
    with boa.reverts("op_check: data length does not match the shape"):
        op_check.tensor_hash("int32", [5], arr[2])
    with boa.reverts("op_check: data length does not match the shape"):
        op_check.tensor_hash("int32", [4], arr[2] + b"\x00")
    with boa.reverts("op_check: dtype must be int8, int16, int32, int64 or uint8"):
        op_check.tensor_hash("f32", [4], arr[2])
    with boa.reverts("op_check: data length does not match the shape"):
        op_check.recompute("requantize", b"{}", [("int32", [5], arr[2])])
    with boa.reverts("op_check: dtype must be int8, int16, int32, int64 or uint8"):
        op_check.recompute("requantize", b"{}", [("int1", [2], arr[2][:4])])


# --- requantize -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_requantize_equals_the_runtime_reference(op_check, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = [(8,), (4, 16), (2, 3, 5), (MAX_ELEMENTS,), (1,), (16, 16), (), (3, 1), (0,), (2, 0)][seed]
    acc_dtype = DTYPES[seed % len(DTYPES)]
    acc = _random(rng, acc_dtype, shape, bound=2**47 - 1)
    channels = shape[-1] if shape else 1
    m_shape = (channels,) if seed % 3 == 0 else ()
    s_shape = (channels,) if seed % 2 == 0 else ()
    m = rng.integers(0, 2**31 - 1, size=m_shape, dtype=np.int32)
    s = rng.integers(17, 62, size=s_shape, endpoint=True, dtype=np.int32)
    params = [{}, {"out_dtype": DTYPES[seed % len(DTYPES)]}][seed % 2]
    _expect_runtime(op_check, "requantize", params, [acc, m, s])


@pytest.mark.parametrize("out_dtype", DTYPES)
def test_requantize_saturates_into_every_out_dtype(op_check, out_dtype: str) -> None:
    acc = np.array([-(2**47) + 1, -70000, -129, -1, 0, 1, 127, 128, 255, 256, 70000, 2**47 - 1], dtype=np.int64)
    m, s = np.array(1 << 30, dtype=np.int32), np.array(30, dtype=np.int32)
    _expect_runtime(op_check, "requantize", {"out_dtype": out_dtype}, [acc, m, s])


def test_requantize_rounds_half_up(op_check) -> None:
    acc = np.array([-3, -2, -1, 1, 2, 3], dtype=np.int32)  # x / 2: -1.5 -> -1, 1.5 -> 2
    m, s = np.array(1 << 16, dtype=np.int32), np.array(17, dtype=np.int32)
    hashes, out = _recompute(op_check, "requantize", {}, [acc, m, s])
    assert out == tensor_hash(np.array([-1, -1, 0, 1, 1, 2], dtype=np.int8))


def test_a_scalar_accumulator_broadcasts_like_numpy(op_check) -> None:
    acc = np.array(1 << 20, dtype=np.int32)
    for m_shape, s_shape in [((), ()), ((1,), ()), ((), (1,)), ((1,), (1,))]:
        m = np.full(m_shape, 1 << 30, dtype=np.int32)
        s = np.full(s_shape, 24, dtype=np.int32)
        _expect_runtime(op_check, "requantize", {}, [acc, m, s])


def test_a_requantize_leaf_of_a_trace_is_recomputed(op_check) -> None:
    rng = np.random.default_rng(11)
    ctx = ExecutionContext(keep_tensors=True)
    acc = _random(rng, "int64", (4, 8), bound=2**40)
    m = rng.integers(2**30, 2**31 - 1, size=(8,), dtype=np.int32)
    ctx.call("requantize", acc, m, np.array(40, dtype=np.int32), out_dtype="int16")
    (record,) = ctx.trace.records()
    assert checkable(record)
    hashes, out = op_check.recompute(record.op, record.params_json, [tensor_arg(t) for t in record.inputs])
    assert tuple(hashes) == record.input_hashes
    assert out == record.output_hash


def test_requantize_refuses_what_the_runtime_refuses(op_check) -> None:
    acc = np.arange(4, dtype=np.int32)
    m, s = np.array(1 << 30, dtype=np.int32), np.array(20, dtype=np.int32)

    def call(inputs: list[np.ndarray], params: bytes = b"{}") -> None:
        op_check.recompute("requantize", params, [tensor_arg(t) for t in inputs])

    with boa.reverts("op_check: requantize takes 3 inputs"):
        call([acc, m])
    with boa.reverts("op_check: requantize takes 3 inputs"):
        call([acc, m, s, s])
    with boa.reverts("op_check: multiplier and shift must have shape () or (channels,)"):
        call([acc, np.full((2,), 1, dtype=np.int32), s])
    with boa.reverts("op_check: multiplier and shift must have shape () or (channels,)"):
        call([acc, m, np.full((1, 4), 20, dtype=np.int32)])
    with boa.reverts("op_check: multiplier and shift must be int32"):
        call([acc, m.astype(np.int64), s])
    with boa.reverts("op_check: multiplier and shift must be int32"):
        call([acc, m, s.astype(np.int16)])
    with boa.reverts("op_check: multiplier must be >= 0"):
        call([acc, np.array(-1, dtype=np.int32), s])
    with boa.reverts("op_check: shift must be in [17, 62]"):
        call([acc, m, np.array(16, dtype=np.int32)])
    with boa.reverts("op_check: shift must be in [17, 62]"):
        call([acc, m, np.array(63, dtype=np.int32)])
    for big in (2**47, -(2**47)):
        with boa.reverts("op_check: accumulator magnitude is >= 2^47"):
            call([np.array([0, big], dtype=np.int64), m, s])
    for params in (
        b'{"out_dtype": "int8"}',  # not canonical (a space)
        b'{"out_dtype":"float"}',
        b'{"out_dtype":"int8","x":1}',  # the runtime refuses unknown params
        b'{"shift":20}',
        b"",
        b"{" + b" " * (MAX_PARAMS - 2) + b"}",
    ):
        with boa.reverts("op_check: unsupported params"):
            call([acc, m, s], params)
    # each refusal above is a refusal of the runtime as well
    for bad in ([acc, m.astype(np.int64), s], [acc, np.array(-1, dtype=np.int32), s]):
        with pytest.raises(ValueError):
            get_op("requantize").reference(bad, {})


# --- the op set and the Python spec ---------------------------------------------------------


def _example(op: str) -> tuple[dict, list[np.ndarray]]:
    """A small valid call of each supported op."""
    examples = {
        "requantize": ({"out_dtype": "int8"}, [np.arange(-4, 4, dtype=np.int64), np.array(1 << 30, dtype=np.int32),
                                               np.array(28, dtype=np.int32)]),
    }
    return examples[op]


@pytest.mark.parametrize("op", sorted(SUPPORTED_OPS))
def test_every_op_of_the_spec_is_recomputed_by_the_contract(op_check, op: str) -> None:
    params, inputs = _example(op)
    assert len(inputs) <= MAX_INPUTS
    _expect_runtime(op_check, op, params, inputs)
    record = OpRecord(0, 0, op, params, tuple(tensor_hash(t) for t in inputs), b"\x00" * 32, inputs=tuple(inputs))
    assert checkable(record)


@pytest.mark.parametrize("op", ["attention", "linear", "matmul", "no_such_op"])
def test_an_op_outside_the_spec_is_refused(op_check, op: str) -> None:
    assert op not in SUPPORTED_OPS
    with boa.reverts("op_check: unsupported op"):
        op_check.recompute(op, b"{}", [tensor_arg(np.arange(4, dtype=np.int8))])
    record = OpRecord(0, 0, op, {}, (tensor_hash(np.arange(4, dtype=np.int8)),), b"\x00" * 32,
                      inputs=(np.arange(4, dtype=np.int8),))
    assert not checkable(record)


def test_checkable_needs_the_inputs_and_small_tensors() -> None:
    params, inputs = _example("requantize")
    hashes = tuple(tensor_hash(t) for t in inputs)
    assert not checkable(OpRecord(0, 0, "requantize", params, hashes, b"\x00" * 32))  # no tensors kept
    big = [np.zeros(MAX_ELEMENTS + 1, dtype=np.int64), *inputs[1:]]
    assert not checkable(OpRecord(0, 0, "requantize", params, hashes, b"\x00" * 32, inputs=tuple(big)))
    largest = [np.zeros(MAX_ELEMENTS, dtype=np.int64), *inputs[1:]]
    assert checkable(OpRecord(0, 0, "requantize", params, hashes, b"\x00" * 32, inputs=tuple(largest)))
    empty = [np.zeros((0, MAX_ELEMENTS + 1), dtype=np.int64), *inputs[1:]]
    assert not checkable(OpRecord(0, 0, "requantize", params, hashes, b"\x00" * 32, inputs=tuple(empty)))


def test_tensor_arg_is_the_canonical_data() -> None:
    arr = np.arange(12, dtype=np.int16).reshape(3, 4).T  # not C-contiguous
    dtype, dims, data = tensor_arg(arr)
    assert (dtype, dims) == ("int16", [4, 3])
    assert data == np.ascontiguousarray(arr).astype("<i2").tobytes()


# --- gas ------------------------------------------------------------------------------------


@pytest.mark.ignore_isolation
def test_gas_of_an_on_chain_recompute() -> None:
    """Recorded in docs/verification.md: gas of `recompute` as a transaction, by op and size."""
    from contract_world import tx_gas

    with boa.swap_env(boa.Env()):
        c = load("OpCheck.vy")
        gas = {}
        for n in (16, 64, MAX_ELEMENTS):
            acc = np.arange(-n // 2, n // 2, dtype=np.int32) * 1000
            args = [tensor_arg(t) for t in (acc, np.array(1 << 20, dtype=np.int32), np.array(24, dtype=np.int32))]
            gas[n] = tx_gas(c, lambda args=args: c.recompute("requantize", b'{"out_dtype":"int8"}', args))
        print("\nrequantize gas by elements:", gas)
        assert gas[MAX_ELEMENTS] < 2_000_000, gas
