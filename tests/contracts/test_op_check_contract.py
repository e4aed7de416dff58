"""OpCheck.vy: the EVM recomputes one op of the runtime from its input tensors, bit for bit
what verimesh.runtime computes (the canonical tensor hash of each input and of the output),
refuses what the runtime refuses, and stays in sync with verimesh.chain.op_check_spec."""

from __future__ import annotations

import boa
import numpy as np
import pytest
from contract_world import CONTRACTS, load
from op_programs import calls_of_size, i32, random_tensor

from verimesh.chain.op_check_spec import (
    MAX_DATA,
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
# The revert of every input the runtime refuses for its shape, axes, indices or positions.
SHAPES = "op_check: input shapes do not fit the op"


@pytest.fixture(scope="module")
def op_check():
    return load("OpCheck.vy")


def _recompute(
    op_check, op: str, params: dict, inputs: list[np.ndarray]
) -> tuple[list[bytes], bytes]:
    hashes, out = op_check.recompute(op, canonical_params(params), [tensor_arg(t) for t in inputs])
    return list(hashes), out


def _expect_runtime(op_check, op: str, params: dict, inputs: list[np.ndarray]) -> None:
    """The contract's hashes are the runtime's: inputs, and the reference op's output."""
    hashes, out = _recompute(op_check, op, params, inputs)
    assert hashes == [tensor_hash(t) for t in inputs]
    assert out == tensor_hash(get_op(op).reference(inputs, params))


def _hash_on_chain(op_check, dtype: str, dims: list[int], data: bytes) -> bytes:
    """The contract's canonical hash of one tensor: the input hash `recompute` returns
    (of a reshape into its own shape, which needs no decoding)."""
    hashes, _out = op_check.recompute(
        "reshape", canonical_params({"shape": dims}), [(dtype, dims, data)]
    )
    return hashes[0]


# --- the tensor hash ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 1, 3), (0, 3)])
def test_tensor_hash_equals_the_runtime(op_check, dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 7 + len(dtype))
    arr = random_tensor(rng, dtype, shape)
    assert _hash_on_chain(op_check, *tensor_arg(arr)) == tensor_hash(arr)


def test_the_largest_tensor_is_hashed_and_one_more_element_is_refused(op_check) -> None:
    for arr in (np.arange(MAX_ELEMENTS, dtype=np.int32), np.arange(MAX_DATA // 8, dtype=np.int64)):
        assert _hash_on_chain(op_check, *tensor_arg(arr)) == tensor_hash(arr)
    with boa.reverts("op_check: tensor too large to check on chain"):
        _hash_on_chain(op_check, "int8", [MAX_ELEMENTS + 1], b"\x00" * (MAX_ELEMENTS + 1))
    with boa.reverts("op_check: tensor too large to check on chain"):
        _hash_on_chain(op_check, "int8", [0, MAX_ELEMENTS + 1], b"")


def test_malformed_tensors_are_refused(op_check) -> None:
    arr = tensor_arg(np.arange(4, dtype=np.int32))
    with boa.reverts("op_check: data length does not match the shape"):
        _hash_on_chain(op_check, "int32", [5], arr[2])
    with boa.reverts("op_check: data length does not match the shape"):
        _hash_on_chain(op_check, "int32", [4], arr[2] + b"\x00")
    with boa.reverts("op_check: dtype must be int8, int16, int32, int64 or uint8"):
        _hash_on_chain(op_check, "f32", [4], arr[2])
    with boa.reverts("op_check: data length does not match the shape"):
        op_check.recompute("requantize", b"{}", [("int32", [5], arr[2])])
    with boa.reverts("op_check: dtype must be int8, int16, int32, int64 or uint8"):
        op_check.recompute("requantize", b"{}", [("int1", [2], arr[2][:4])])


# --- requantize -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_requantize_equals_the_runtime_reference(op_check, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = [(8,), (4, 16), (2, 3, 5), (MAX_ELEMENTS,), (1,), (16, 16), (), (3, 1), (0,), (2, 0)][
        seed
    ]
    acc_dtype = DTYPES[seed % len(DTYPES)]
    acc = random_tensor(rng, acc_dtype, shape, bound=2**47 - 1)
    channels = shape[-1] if shape else 1
    m_shape = (channels,) if seed % 3 == 0 else ()
    s_shape = (channels,) if seed % 2 == 0 else ()
    m = rng.integers(0, 2**31 - 1, size=m_shape, dtype=np.int32)
    s = rng.integers(17, 62, size=s_shape, endpoint=True, dtype=np.int32)
    params = [{}, {"out_dtype": DTYPES[seed % len(DTYPES)]}][seed % 2]
    _expect_runtime(op_check, "requantize", params, [acc, m, s])


@pytest.mark.parametrize("out_dtype", DTYPES)
def test_requantize_saturates_into_every_out_dtype(op_check, out_dtype: str) -> None:
    acc = np.array(
        [-(2**47) + 1, -70000, -129, -1, 0, 1, 127, 128, 255, 256, 70000, 2**47 - 1], dtype=np.int64
    )
    m, s = np.array(1 << 30, dtype=np.int32), np.array(30, dtype=np.int32)
    _expect_runtime(op_check, "requantize", {"out_dtype": out_dtype}, [acc, m, s])


def test_requantize_rounds_half_up(op_check) -> None:
    acc = np.array([-3, -2, -1, 1, 2, 3], dtype=np.int32)  # x / 2: -1.5 -> -1, 1.5 -> 2
    m, s = np.array(1 << 16, dtype=np.int32), np.array(17, dtype=np.int32)
    _hashes, out = _recompute(op_check, "requantize", {}, [acc, m, s])
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
    acc = random_tensor(rng, "int64", (4, 8), bound=2**40)
    m = rng.integers(2**30, 2**31 - 1, size=(8,), dtype=np.int32)
    ctx.call("requantize", acc, m, np.array(40, dtype=np.int32), out_dtype="int16")
    (record,) = ctx.trace.records()
    assert checkable(record)
    hashes, out = op_check.recompute(
        record.op, record.params_json, [tensor_arg(t) for t in record.inputs]
    )
    assert tuple(hashes) == record.input_hashes
    assert out == record.output_hash


def test_requantize_refuses_what_the_runtime_refuses(op_check) -> None:
    acc = np.arange(4, dtype=np.int32)
    m, s = np.array(1 << 30, dtype=np.int32), np.array(20, dtype=np.int32)

    def call(inputs: list[np.ndarray], params: bytes = b"{}") -> None:
        op_check.recompute("requantize", params, [tensor_arg(t) for t in inputs])

    with boa.reverts("op_check: wrong number of inputs for the op"):
        call([acc, m])
    with boa.reverts("op_check: wrong number of inputs for the op"):
        call([acc, m, s, s])
    with boa.reverts(SHAPES):
        call([acc, np.full((2,), 1, dtype=np.int32), s])
    with boa.reverts(SHAPES):
        call([acc, m, np.full((1, 4), 20, dtype=np.int32)])
    with boa.reverts("op_check: input dtype not accepted by the op"):
        call([acc, m.astype(np.int64), s])
    with boa.reverts("op_check: input dtype not accepted by the op"):
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
        b'{"out_dtype":"int8","x":1}',  # the runtime refuses unknown params
        b'{"shift":20}',
        b"",
        b"{" + b" " * (MAX_PARAMS - 2) + b"}",
    ):
        with boa.reverts("op_check: unsupported params"):
            call([acc, m, s], params)
    for params in (b'{"out_dtype":"float"}', b'{"out_dtype":"int4"}', b'{"out_dtype":"Int8"}'):
        with boa.reverts("op_check: dtype must be int8, int16, int32, int64 or uint8"):
            call([acc, m, s], params)
    # each refusal above is a refusal of the runtime as well
    for bad in ([acc, m.astype(np.int64), s], [acc, np.array(-1, dtype=np.int32), s]):
        with pytest.raises(ValueError):
            get_op("requantize").reference(bad, {})


# --- mul and add ----------------------------------------------------------------------------

# (a shape, b shape): equal, broadcast both ways, a scalar, a missing leading axis
BROADCASTS = [
    ((4, 8), (4, 8)),
    ((1, 8), (4, 1)),
    ((8,), (3, 8)),
    ((), (5,)),
    ((2, 3, 4), (4,)),
    ((1, 128), (1, 1)),
    ((0, 3), (1, 3)),
]


@pytest.mark.parametrize("seed", range(len(BROADCASTS) * 2))
def test_mul_equals_the_runtime_reference(op_check, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a_shape, b_shape = BROADCASTS[seed % len(BROADCASTS)]
    kinds = ["int16", "int8", "uint8"]
    a = random_tensor(rng, kinds[seed % 3], a_shape)
    b = random_tensor(rng, kinds[(seed // 3) % 3], b_shape)
    channels = (
        np.broadcast_shapes(a_shape, b_shape)[-1] if np.broadcast_shapes(a_shape, b_shape) else 1
    )
    m = rng.integers(0, 2**31 - 1, size=(channels,) if seed % 2 else (), dtype=np.int32)
    s = rng.integers(
        17, 40, size=(channels,) if seed % 4 < 2 else (), endpoint=True, dtype=np.int32
    )
    params = [{}, {"out_dtype": DTYPES[seed % len(DTYPES)]}][seed % 2]
    _expect_runtime(op_check, "mul", params, [a, b, m, s])


@pytest.mark.parametrize("seed", range(len(BROADCASTS) * 2))
def test_add_equals_the_runtime_reference(op_check, seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    a_shape, b_shape = BROADCASTS[seed % len(BROADCASTS)]
    kinds = ["int32", "int16", "int8", "uint8"]
    a = random_tensor(rng, kinds[seed % 4], a_shape)
    b = random_tensor(rng, kinds[(seed // 4) % 4], b_shape)
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    channels = out_shape[-1] if out_shape else 1
    ma = rng.integers(0, 2**31 - 1, size=(channels,) if seed % 2 else (), dtype=np.int32)
    mb = rng.integers(0, 2**31 - 1, size=(channels,) if seed % 3 == 0 else (), dtype=np.int32)
    s = rng.integers(
        17, 62, size=(channels,) if seed % 4 < 2 else (), endpoint=True, dtype=np.int32
    )
    params = [{}, {"out_dtype": DTYPES[seed % len(DTYPES)]}][seed % 2]
    _expect_runtime(op_check, "add", params, [a, b, ma, mb, s])


def test_mul_and_add_refuse_what_the_runtime_refuses(op_check) -> None:
    a = np.arange(8, dtype=np.int8).reshape(2, 4)
    m, s = np.array(1 << 30, dtype=np.int32), np.array(30, dtype=np.int32)
    cases = [
        ("mul", [a, a, m], "op_check: wrong number of inputs for the op"),
        ("mul", [a.astype(np.int32), a, m, s], "op_check: input dtype not accepted by the op"),
        ("mul", [a, a.astype(np.int64), m, s], "op_check: input dtype not accepted by the op"),
        ("mul", [a, np.zeros((3, 4), dtype=np.int8), m, s], SHAPES),
        (
            "mul",
            [a, a, np.zeros((2,), dtype=np.int32), s],
            SHAPES,
        ),
        ("mul", [a, a, m, s.astype(np.int64)], "op_check: input dtype not accepted by the op"),
        ("mul", [a, a, np.array(-1, dtype=np.int32), s], "op_check: multiplier must be >= 0"),
        ("mul", [a, a, m, np.array(63, dtype=np.int32)], "op_check: shift must be in [17, 62]"),
        ("add", [a, a, m, m], "op_check: wrong number of inputs for the op"),
        ("add", [a.astype(np.int64), a, m, m, s], "op_check: input dtype not accepted by the op"),
        ("add", [a, np.zeros((3,), dtype=np.int8), m, m, s], SHAPES),
        (
            "add",
            [a, a, m, np.zeros((4, 1), dtype=np.int32), s],
            SHAPES,
        ),
        ("add", [a, a, m.astype(np.int16), m, s], "op_check: input dtype not accepted by the op"),
        ("add", [a, a, m, np.array(-5, dtype=np.int32), s], "op_check: multiplier must be >= 0"),
        ("add", [a, a, m, m, np.array(16, dtype=np.int32)], "op_check: shift must be in [17, 62]"),
    ]
    for op, inputs, reason in cases:
        with pytest.raises(ValueError):
            get_op(op).reference(inputs, {})
        with boa.reverts(reason):
            op_check.recompute(op, b"{}", [tensor_arg(t) for t in inputs])
    for params in (b'{"out_dtype":"int8', b'{"shift":3}', b'{"out_dtype":"int8"} '):
        with boa.reverts("op_check: unsupported params"):
            op_check.recompute("add", params, [tensor_arg(t) for t in (a, a, m, m, s)])


# --- argmax ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape", [(1,), (7,), (3, 7), (2, 2, 4), (1, 85), (MAX_ELEMENTS, 1), (0, 5)]
)
def test_argmax_equals_the_runtime_reference(op_check, dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 11 + sum(shape))
    x = random_tensor(rng, dtype, shape, bound=3)  # few distinct values: ties, first index wins
    x = x[: MAX_DATA // x.itemsize]  # the largest int64 input is smaller
    _expect_runtime(op_check, "argmax", {}, [x])


def test_argmax_refuses_what_the_runtime_refuses(op_check) -> None:
    for x in (np.array(3, dtype=np.int8), np.zeros((2, 0), dtype=np.int8)):
        with pytest.raises(ValueError):
            get_op("argmax").reference([x], {})
        with boa.reverts(SHAPES):
            op_check.recompute("argmax", b"{}", [tensor_arg(x)])
    x = np.arange(4, dtype=np.int8)
    with boa.reverts("op_check: unsupported params"):
        op_check.recompute("argmax", b'{"axis":0}', [tensor_arg(x)])
    with boa.reverts("op_check: wrong number of inputs for the op"):
        op_check.recompute("argmax", b"{}", [tensor_arg(x), tensor_arg(x)])


# --- reshape and slice ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "target"),
    [
        ((3, 7), [7, -1]),
        ((3, 7), [21]),
        ((3, 7), [1, 3, 1, 7]),
        ((3, 7), [-1]),
        ((1,), []),
        ((), [1, 1]),
        ((2, 0), [0, 7]),
        ((2, 0), [-1, 3]),
        ((4, 128), [1, 4, 2, 64]),
        ((2, 3, 4), [4, -1, 2]),
    ],
)
def test_reshape_equals_the_runtime_reference(
    op_check, shape: tuple[int, ...], target: list[int]
) -> None:
    x = random_tensor(np.random.default_rng(len(target)), "int16", shape)
    _expect_runtime(op_check, "reshape", {"shape": target}, [x])


@pytest.mark.parametrize("target", [[5, -1], [-1, -1], [2, 10], [0, -1], [22]])
def test_reshape_refuses_what_numpy_refuses(op_check, target: list[int]) -> None:
    x = np.zeros((3, 7), dtype=np.int8)
    with pytest.raises(ValueError):
        get_op("reshape").reference([x], {"shape": target})
    with boa.reverts():
        op_check.recompute("reshape", canonical_params({"shape": target}), [tensor_arg(x)])


@pytest.mark.parametrize(
    ("shape", "axis", "start", "stop"),
    [
        ((3, 7), 1, 2, 5),
        ((3, 7), -2, 1, 3),
        ((3, 7), 0, 0, 0),
        ((3, 7), 1, 7, 7),
        ((2, 3, 4), 1, 1, 3),
        ((2, 3, 4), 2, 1, 3),
        ((2, 3, 4), -1, 0, 4),
        ((1, MAX_ELEMENTS), 1, 200, MAX_ELEMENTS),
        ((6, 64), 0, 5, 6),
        ((1, 3, 4), 1, 0, 2),
        ((2, 0, 3), 2, 1, 2),
        ((5,), 0, 1, 4),
    ],
)
def test_slice_equals_the_runtime_reference(
    op_check, shape: tuple[int, ...], axis: int, start: int, stop: int
) -> None:
    rng = np.random.default_rng(sum(shape) + start)
    for dtype in ("int8", "int64") if np.prod(shape) <= 256 else ("int8", "int16"):
        x = random_tensor(rng, dtype, shape)
        _expect_runtime(op_check, "slice", {"axis": axis, "start": start, "stop": stop}, [x])


def test_slice_refuses_what_the_runtime_refuses(op_check) -> None:
    x = np.zeros((3, 7), dtype=np.int8)
    for params, reason in [
        ({"axis": 2, "start": 0, "stop": 1}, SHAPES),
        ({"axis": -3, "start": 0, "stop": 1}, SHAPES),
        (
            {"axis": 1, "start": 3, "stop": 2},
            SHAPES,
        ),
        (
            {"axis": 1, "start": -1, "stop": 2},
            SHAPES,
        ),
        (
            {"axis": 1, "start": 0, "stop": 8},
            SHAPES,
        ),
        ({"axis": 1, "start": 0}, "op_check: unsupported params"),
        ({"axis": 1, "start": 0, "stop": 1, "step": 1}, "op_check: unsupported params"),
        ({"axis": True, "start": 0, "stop": 1}, "op_check: unsupported params"),
    ]:
        with pytest.raises(ValueError):
            get_op("slice").reference([x], params)
        with boa.reverts(reason):
            op_check.recompute("slice", canonical_params(params), [tensor_arg(x)])
    with boa.reverts(SHAPES):
        op_check.recompute(
            "slice",
            canonical_params({"axis": 0, "start": 0, "stop": 0}),
            [tensor_arg(np.array(1, dtype=np.int8))],
        )


@pytest.mark.parametrize(
    "params",
    [
        b'{"axis":01,"start":0,"stop":1}',
        b'{"axis":-0,"start":0,"stop":1}',
        b'{"axis":1,"start":0,"stop":1 }',
        b'{"axis": 1,"start":0,"stop":1}',
        b'{"start":0,"axis":1,"stop":1}',
        b'{"axis":1,"start":0,"stop":1',
        b'{"axis":1,"start":0,"stop":1}}',
        b'{"axis":1,"start":0,"stop":1000000000000000000000}',
        b'{"axis":-,"start":0,"stop":1}',
    ],
)
def test_params_other_than_the_canonical_json_are_refused(op_check, params: bytes) -> None:
    """A leaf commits to canonical params bytes; any other spelling of them is refused, so
    the contract never recomputes with params other than those the bytes say."""
    with boa.reverts("op_check: unsupported params"):
        op_check.recompute("slice", params, [tensor_arg(np.zeros((3, 7), dtype=np.int8))])
    for target in (
        b'{"shape":[21,]}',
        b'{"shape":[,21]}',
        b'{"shape":[021]}',
        b'{"shape":21}',
        b'{"shape":[21]',
    ):
        with boa.reverts("op_check: unsupported params"):
            op_check.recompute("reshape", target, [tensor_arg(np.zeros((3, 7), dtype=np.int8))])


# --- rmsnorm --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_rmsnorm_equals_the_runtime_reference(op_check, seed: int) -> None:
    """Random rows, including tiny ones (V < 2^17: the rsqrt's left-shift branch) and
    large ones (the variance near its 2^62 bound)."""
    rng = np.random.default_rng(300 + seed)
    shape = [(1, 128), (3, 16), (5,), (2, 2, 8), (1, 1), (4, 32)][seed % 6]
    dtype = ["int8", "int16", "int32"][seed % 3]
    width = shape[-1]
    bound = [3, 200, 2**13, 2**24][seed % 4]
    x = random_tensor(rng, dtype, shape, bound=bound)
    eps = int(rng.integers(1, [2, 1000, 2**40, 2**59][seed // 3 % 4]))
    if width * int(np.abs(x.astype(np.int64)).max()) ** 2 + eps >= 2**62:
        eps = 1
    gamma = rng.integers(-(2**31), 2**31 - 1, size=(width,), dtype=np.int32)
    params = {"eps": eps, "shift": int(rng.integers(1, 62, endpoint=True))}
    if seed % 2:
        params["out_dtype"] = DTYPES[seed % len(DTYPES)]
    _expect_runtime(op_check, "rmsnorm", params, [x, gamma])


def test_rmsnorm_refuses_what_the_runtime_refuses(op_check) -> None:
    x = np.arange(-8, 8, dtype=np.int16).reshape(2, 8)
    gamma = np.full((8,), 1 << 20, dtype=np.int32)
    ok = {"eps": 1, "shift": 20}
    cases = [
        (
            [x, gamma],
            {"eps": 0, "shift": 20},
            "op_check: unsupported params",
        ),
        (
            [x, gamma],
            {"eps": 2**60, "shift": 20},
            "op_check: unsupported params",
        ),
        (
            [x, gamma],
            {"eps": 1, "shift": 0},
            "op_check: unsupported params",
        ),
        (
            [x, gamma],
            {"eps": 1, "shift": 63},
            "op_check: unsupported params",
        ),
        ([x, gamma], {"eps": 1}, "op_check: unsupported params"),
        ([x, gamma], {"shift": 20}, "op_check: unsupported params"),
        ([x, gamma], {"eps": 1, "shift": 20, "x": 0}, "op_check: unsupported params"),
        ([x, gamma], {"eps": True, "shift": 20}, "op_check: unsupported params"),
        ([x.astype(np.int64), gamma], ok, "op_check: input dtype not accepted by the op"),
        ([x.astype(np.uint8), gamma], ok, "op_check: input dtype not accepted by the op"),
        ([x, gamma.astype(np.int16)], ok, SHAPES),
        ([x, gamma[:4]], ok, SHAPES),
        ([x[0, 0], gamma[:1]], ok, SHAPES),
        ([x[:, :0], gamma[:0]], ok, SHAPES),
        (
            [x, gamma],
            ok | {"out_dtype": "int4"},
            "op_check: dtype must be int8, int16, int32, int64 or uint8",
        ),
        ([x], ok, "op_check: wrong number of inputs for the op"),
        (
            [np.full((1, 16), 2**30, dtype=np.int32), np.zeros(16, dtype=np.int32)],
            ok,
            "op_check: rmsnorm variance is >= 2^62",
        ),
    ]
    for inputs, params, reason in cases:
        with pytest.raises((ValueError, TypeError)):
            get_op("rmsnorm").reference(inputs, params)
        with boa.reverts(reason):
            op_check.recompute("rmsnorm", canonical_params(params), [tensor_arg(t) for t in inputs])


# --- rope -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_rope_equals_the_runtime_reference(op_check, seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    shape = [(1, 2, 1, 32), (2, 3, 4, 8), (5, 6), (1, 4), (3, 1, 2), (2, 0, 4)][seed % 6]
    x = random_tensor(rng, ["int16", "int8"][seed % 2], shape)
    max_pos = int(rng.integers(1, 9))
    half = shape[-1] // 2
    frac = int(rng.integers(1, 30, endpoint=True))
    table = ["int32", "int16"][seed // 2 % 2]
    bound = min(1 << frac, int(np.iinfo(table).max))
    cos = random_tensor(rng, table, (max_pos, half), bound=bound)
    sin = random_tensor(
        rng, ["int16", "int32"][seed // 3 % 2], (max_pos, half), bound=min(bound, 2**15 - 1)
    )
    positions = rng.integers(0, max_pos, size=(shape[-2],)).astype(
        ["int32", "int64"][seed // 4 % 2]
    )
    params = [
        {},
        {"frac_bits": frac},
        {"style": "interleaved"},
        {"out_dtype": DTYPES[seed % 5], "style": "half"},
        {"frac_bits": frac, "out_dtype": "int8", "style": "interleaved"},
        {"frac_bits": frac, "style": "half"},
    ][seed % 6]
    _expect_runtime(op_check, "rope", params, [x, cos, sin, positions])


def test_rope_refuses_what_the_runtime_refuses(op_check) -> None:
    x = np.arange(16, dtype=np.int16).reshape(2, 8)
    cos = np.full((3, 4), 1 << 13, dtype=np.int32)
    sin = np.full((3, 4), 1 << 12, dtype=np.int32)
    positions = np.array([0, 2], dtype=np.int32)
    shapes = SHAPES
    dtype = "op_check: input dtype not accepted by the op"
    cases = [
        ([x, cos, sin], {}, "op_check: wrong number of inputs for the op"),
        ([x.astype(np.int32), cos, sin, positions], {}, dtype),
        ([x, cos.astype(np.int8), sin, positions], {}, dtype),
        ([x, cos, sin.astype(np.int64), positions], {}, dtype),
        ([x, cos, sin, positions.astype(np.int16)], {}, dtype),
        ([x[:, :7], cos, sin, positions], {}, shapes),
        ([x[0], cos, sin, positions[:1]], {}, shapes),
        ([x, cos[:, :3], sin[:, :3], positions], {}, shapes),
        ([x, cos, sin[:2], positions], {}, shapes),
        ([x, cos[0], sin[0], positions], {}, shapes),
        ([x, cos, sin, positions[:1]], {}, shapes),
        (
            [x, cos, sin, np.array([0, 3], dtype=np.int32)],
            {},
            SHAPES,
        ),
        (
            [x, cos, sin, np.array([-1, 0], dtype=np.int64)],
            {},
            SHAPES,
        ),
        ([x, cos, sin, positions], {"frac_bits": 0}, "op_check: unsupported params"),
        ([x, cos, sin, positions], {"frac_bits": 31}, "op_check: unsupported params"),
        ([x, cos, sin, positions], {"style": "full"}, "op_check: unsupported params"),
        (
            [x, cos, sin, positions],
            {"style": "half", "theta": 10000},
            "op_check: unsupported params",
        ),
        ([x, cos, sin, positions], {"frac_bits": True}, "op_check: unsupported params"),
    ]
    for inputs, params, reason in cases:
        with pytest.raises((ValueError, TypeError)):
            get_op("rope").reference(inputs, params)
        with boa.reverts(reason):
            op_check.recompute("rope", canonical_params(params), [tensor_arg(t) for t in inputs])
    for params in (
        b'{"style":"half","frac_bits":14}',
        b'{"frac_bits":14,}',
        b'{,"style":"half"}',
        b"{ }",
    ):
        with boa.reverts("op_check: unsupported params"):
            op_check.recompute("rope", params, [tensor_arg(t) for t in (x, cos, sin, positions)])


# --- real trace leaves ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_trace(tmp_path_factory):
    """Every op of a 4-token generation of the shipped tiny decoder, input tensors kept."""
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelStore
    from verimesh.verify.replay import JobRun

    store = ModelStore(tmp_path_factory.mktemp("op-check-home") / "models")
    model = load_model("tiny-shakespeare", store=store)
    ctx = ExecutionContext(keep_tensors=True)
    JobRun(model, "generate", "ROMEO:", {"max_tokens": 4}).run(ctx)
    return ctx.trace.records()


def test_the_tiny_decoder_has_checkable_leaves_of_every_supported_op(tiny_trace) -> None:
    ops = {r.op for r in tiny_trace if checkable(r)}
    assert ops == SUPPORTED_OPS - {"requantize"}  # the tiny decoder requantizes inside linear_rows
    assert not any(checkable(r) for r in tiny_trace if r.op not in SUPPORTED_OPS)


@pytest.mark.parametrize("op", sorted(SUPPORTED_OPS - {"requantize"}))
def test_real_leaves_are_recomputed_on_chain(op_check, tiny_trace, op: str) -> None:
    """A leaf's committed input hashes and output hash are what the contract computes, for
    the first, a middle and the last checkable leaf of each op."""
    leaves = [r for r in tiny_trace if r.op == op and checkable(r)]
    for record in sorted({0, len(leaves) // 2, len(leaves) - 1}):
        leaf = leaves[record]
        hashes, out = op_check.recompute(
            leaf.op, leaf.params_json, [tensor_arg(t) for t in leaf.inputs]
        )
        assert tuple(hashes) == leaf.input_hashes
        assert out == leaf.output_hash


def test_a_leaf_that_lies_about_its_output_is_caught(op_check, tiny_trace) -> None:
    """The last argmax of a generation with another token claimed: the recomputed hash differs."""
    leaf = [r for r in tiny_trace if r.op == "argmax"][-1]
    honest = get_op("argmax").reference(leaf.inputs, leaf.params)
    claimed = tensor_hash((honest + 1) % leaf.inputs[0].shape[-1])
    _hashes, out = op_check.recompute(
        leaf.op, leaf.params_json, [tensor_arg(t) for t in leaf.inputs]
    )
    assert out == leaf.output_hash != claimed


# --- the op set and the Python spec ---------------------------------------------------------


# A small valid call of each supported op.
EXAMPLES: dict[str, tuple[dict, list[np.ndarray]]] = {
    "add": (
        {"out_dtype": "int32"},
        [
            np.arange(8, dtype=np.int32),
            np.arange(8, dtype=np.int16),
            i32(1 << 30),
            i32(1 << 29),
            i32(30),
        ],
    ),
    "argmax": ({}, [np.array([[3, 9, 9], [1, 0, -4]], dtype=np.int16)]),
    "mul": (
        {},
        [np.arange(-4, 4, dtype=np.int8), np.arange(8, dtype=np.int16), i32(1 << 30), i32(20)],
    ),
    "requantize": (
        {"out_dtype": "int8"},
        [np.arange(-4, 4, dtype=np.int64), i32(1 << 30), i32(28)],
    ),
    "reshape": ({"shape": [2, -1]}, [np.arange(8, dtype=np.int8)]),
    "rmsnorm": (
        {"eps": 5629499534, "out_dtype": "int32", "shift": 26},
        [np.arange(-64, 64, dtype=np.int32).reshape(1, 128), i32(1 << 20, (128,))],
    ),
    "rope": (
        {"frac_bits": 14, "style": "interleaved"},
        [
            np.arange(64, dtype=np.int16).reshape(1, 2, 1, 32),
            i32(1 << 13, (1, 16)),
            i32(1 << 12, (1, 16)),
            i32(0, (1,)),
        ],
    ),
    "slice": ({"axis": 0, "start": 1, "stop": 3}, [np.arange(8, dtype=np.int8)]),
}


@pytest.mark.parametrize("op", sorted(SUPPORTED_OPS))
def test_every_op_of_the_spec_is_recomputed_by_the_contract(op_check, op: str) -> None:
    params, inputs = EXAMPLES[op]
    assert len(inputs) <= MAX_INPUTS
    _expect_runtime(op_check, op, params, inputs)
    record = OpRecord(
        0, 0, op, params, tuple(tensor_hash(t) for t in inputs), b"\x00" * 32, inputs=tuple(inputs)
    )
    assert checkable(record)


@pytest.mark.parametrize(
    "op", ["attention", "concat", "embedding", "layernorm", "linear", "no_such_op", "transpose"]
)
def test_an_op_outside_the_spec_is_refused(op_check, op: str) -> None:
    assert op not in SUPPORTED_OPS
    with boa.reverts("op_check: unsupported op"):
        op_check.recompute(op, b"{}", [tensor_arg(np.arange(4, dtype=np.int8))])
    record = OpRecord(
        0,
        0,
        op,
        {},
        (tensor_hash(np.arange(4, dtype=np.int8)),),
        b"\x00" * 32,
        inputs=(np.arange(4, dtype=np.int8),),
    )
    assert not checkable(record)


def _record(op: str, params: dict, inputs: list[np.ndarray], keep: bool = True) -> OpRecord:
    return OpRecord(
        0,
        0,
        op,
        params,
        tuple(tensor_hash(t) for t in inputs),
        b"\x00" * 32,
        inputs=tuple(inputs) if keep else None,
    )


def test_checkable_is_what_the_contract_accepts(op_check) -> None:
    params, inputs = EXAMPLES["requantize"]
    assert not checkable(_record("requantize", params, inputs, keep=False))  # no tensors kept
    too_many = np.zeros(MAX_ELEMENTS + 1, dtype=np.int8)
    too_long = np.zeros(MAX_DATA // 8 + 1, dtype=np.int64)
    largest = [np.zeros(MAX_ELEMENTS, dtype=np.int32), *inputs[1:]]
    assert checkable(_record("requantize", params, largest))
    op_check.recompute("requantize", canonical_params(params), [tensor_arg(t) for t in largest])
    for big in (too_many, too_long):
        record = _record("requantize", params, [big, *inputs[1:]])
        assert not checkable(record)
        with boa.reverts():
            op_check.recompute(
                "requantize", canonical_params(params), [tensor_arg(t) for t in record.inputs]
            )
    # an output above the bound (argmax's int64 output never is; a broadcast can be)
    wide = [
        np.zeros((MAX_ELEMENTS // 2, 1), dtype=np.int8),
        np.zeros((1, 4), dtype=np.int8),
        i32(1 << 30),
        i32(20),
    ]
    assert not checkable(_record("mul", {}, wide))
    with boa.reverts("op_check: tensor too large to check on chain"):
        op_check.recompute("mul", b"{}", [tensor_arg(t) for t in wide])
    # inputs the runtime refuses are not checkable (the contract reverts on them)
    assert not checkable(_record("requantize", params, [inputs[0], i32(-1), inputs[2]]))
    assert not checkable(_record("requantize", {"out_dtype": "int8", "x": 1}, inputs))
    # numpy takes any negative dim as the unknown one; the contract only -1, as the models write it
    x = np.zeros((3, 7), dtype=np.int8)
    assert get_op("reshape").reference([x], {"shape": [-2, 21]}).shape == (1, 21)
    assert not checkable(_record("reshape", {"shape": [-2, 21]}, [x]))
    with boa.reverts(SHAPES):
        op_check.recompute("reshape", b'{"shape":[-2,21]}', [tensor_arg(x)])
    # an output of 9 dimensions: numpy's reshape makes it, the runtime's context refuses it
    assert not checkable(_record("reshape", {"shape": [1] * 8 + [21]}, [x]))
    with boa.reverts("op_check: unsupported params"):
        op_check.recompute("reshape", canonical_params({"shape": [1] * 8 + [21]}), [tensor_arg(x)])
    empty = [np.zeros((0, MAX_ELEMENTS + 1), dtype=np.int64), *inputs[1:]]
    assert not checkable(_record("requantize", params, empty))


def test_tensor_arg_is_the_canonical_data() -> None:
    arr = np.arange(12, dtype=np.int16).reshape(3, 4).T  # not C-contiguous
    dtype, dims, data = tensor_arg(arr)
    assert (dtype, dims) == ("int16", [4, 3])
    assert data == np.ascontiguousarray(arr).astype("<i2").tobytes()


# --- gas ------------------------------------------------------------------------------------


@pytest.mark.ignore_isolation
def test_every_op_recomputes_below_2m_gas_at_the_element_bound() -> None:
    """A proof must fit a block with room to spare. The table by op and size is
    bench/bench_op_gas.py's (docs/bench-op-gas.md)."""
    from contract_world import tx_gas

    with boa.swap_env(boa.Env()):
        c = load("OpCheck.vy")
        gas = {}
        for op, (params, inputs) in calls_of_size(MAX_ELEMENTS).items():
            args = [tensor_arg(t) for t in inputs]
            gas[op] = tx_gas(c, lambda op=op, p=params, a=args: c.recompute(op, canonical_params(p), a))
    assert set(gas) == set(SUPPORTED_OPS)
    assert all(used < 2_000_000 for used in gas.values()), gas


@pytest.mark.ignore_isolation
def test_op_check_deploys_within_the_devnet_gas_limit() -> None:
    """The code is near the EIP-170 size limit and a deploy costs 200 gas per byte of it:
    deploying (intrinsic cost included) must fit the devnet's per-transaction gas limit,
    which deploy_network uses."""
    from verimesh.chain.devnet import DEVNET_GAS_LIMIT

    deployer = boa.load_partial(str(CONTRACTS / "OpCheck.vy"))
    initcode = deployer.compiler_data.bytecode
    assert len(deployer.compiler_data.bytecode_runtime) <= 24_576
    with boa.swap_env(boa.Env()):
        contract = deployer.deploy()
        calldata = sum(4 if b == 0 else 16 for b in initcode) + 2 * ((len(initcode) + 31) // 32)
        gas = 21_000 + 32_000 + calldata + contract._computation.get_gas_used()
    print("\nOpCheck deploy gas:", gas)
    assert gas < DEVNET_GAS_LIMIT, gas
