"""Traces: leaf encoding, two-level roots, inclusion proofs, one-op recompute, tracing off."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verimesh.crypto.merkle import merkle_root
from verimesh.runtime import (
    ExecutionContext,
    OpRecord,
    TraceProof,
    freeze,
    recompute,
    tensor_hash,
    verify_record,
    verify_trace_proof,
)
from verimesh.runtime.fixed import multiplier_tensors
from verimesh.runtime.tensor import TensorError, canonical_bytes, from_canonical_bytes
from verimesh.runtime.trace import TraceError, canonical_params


def _tiny_job(ctx: ExecutionContext, steps: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    w = freeze(rng.integers(-127, 128, (8, 8)).astype(np.int8))
    m, s = multiplier_tensors(0.02)
    x = rng.integers(-128, 128, (2, 8)).astype(np.int8)
    for _ in range(steps):
        ctx.begin_step()
        x = ctx.call("linear", x, w, m, s, out_dtype="int8")
        x = ctx.call("transpose", x, axes=[1, 0])
        x = ctx.call("transpose", x, axes=[1, 0])
    return x


def test_tensor_hash_is_sha256_of_the_documented_encoding():
    import hashlib

    x = np.array([[1, -2, 3]], dtype=np.int16)
    expected = b"int16\x00\x02" + (1).to_bytes(8, "big") + (3).to_bytes(8, "big") + b"\x01\x00\xfe\xff\x03\x00"
    assert canonical_bytes(x) == expected
    assert tensor_hash(x) == hashlib.sha256(expected).digest()
    assert tensor_hash(x.T) != tensor_hash(x)  # shape is part of the hash
    np.testing.assert_array_equal(from_canonical_bytes(expected), x)
    with pytest.raises(TensorError, match=r"truncated|data bytes"):
        from_canonical_bytes(expected[:-1])
    with pytest.raises(TensorError, match="float32"):
        tensor_hash(np.zeros(2, np.float32))


def test_frozen_hash_cache_is_never_stale():
    x = np.arange(6, dtype=np.int8)
    h1 = tensor_hash(x)
    x[0] = 9  # writeable arrays are hashed afresh every time
    assert tensor_hash(x) != h1
    frozen = freeze(np.arange(6, dtype=np.int8))
    assert tensor_hash(frozen) == h1 and tensor_hash(frozen) == h1
    # a dead array's cached hash must not leak to a new array that reuses its id
    for i in range(50):
        arr = freeze(np.full(6, i, dtype=np.int8))
        assert tensor_hash(arr) == tensor_hash(np.full(6, i, dtype=np.int8))
        del arr


def test_trace_root_is_two_level_over_documented_leaves():
    ctx = ExecutionContext()
    _tiny_job(ctx)
    trace = ctx.trace
    assert [len(s) for s in trace.steps] == [3, 3]
    leaf = trace.leaf(1, 0)
    assert leaf.leaf_bytes().startswith(b"verimesh-op-v1" + (1).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    step_roots = [merkle_root([r.leaf_bytes() for r in step]) for step in trace.steps]
    assert trace.step_roots == step_roots
    assert ctx.trace_root == merkle_root(step_roots)
    assert [trace.position(i) for i in range(6)] == [(s, i) for s in range(2) for i in range(3)]
    with pytest.raises(TraceError, match="outside a trace of 6 ops"):
        trace.position(6)


def test_every_leaf_proves_and_recomputes():
    ctx = ExecutionContext(keep_tensors=True)
    _tiny_job(ctx)
    root = ctx.trace_root
    for step in range(2):
        for index in range(3):
            record = ctx.trace.leaf(step, index)
            proof = ctx.trace.proof(step, index)
            assert verify_trace_proof(root, record, proof)
            assert verify_record(record)
            assert tensor_hash(recompute(record, path="fast")) == record.output_hash
            # the record survives the wire
            again = OpRecord.from_json(json.loads(json.dumps(record.to_json())))
            assert again == record and verify_record(again)
            assert verify_trace_proof(root, again, TraceProof.from_json(json.loads(json.dumps(proof.to_json()))))
    # a lying leaf: wrong output hash fails both the proof and the recompute
    record = ctx.trace.leaf(1, 0)
    forged = OpRecord(record.step, record.index, record.op, record.params, record.input_hashes,
                      bytes(32), record.inputs)
    assert not verify_trace_proof(root, forged, ctx.trace.proof(1, 0))
    assert not verify_record(forged)
    assert not verify_trace_proof(root, record, ctx.trace.proof(1, 1))


def test_malformed_wire_objects_are_refused():
    with pytest.raises(TraceError, match="malformed op record"):
        OpRecord.from_json({"step": 0})
    with pytest.raises(TraceError, match="malformed trace proof"):
        TraceProof.from_json({"op_proof": {}})


def test_recompute_refuses_inputs_that_do_not_match_the_commitment():
    ctx = ExecutionContext(keep_tensors=True)
    _tiny_job(ctx, steps=1)
    record = ctx.trace.leaf(0, 0)
    swapped = OpRecord(record.step, record.index, record.op, record.params, record.input_hashes,
                       record.output_hash, (record.inputs[0] + 1, *record.inputs[1:]))
    with pytest.raises(TraceError, match="does not match"):
        recompute(swapped)
    plain = ExecutionContext()
    _tiny_job(plain, steps=1)
    with pytest.raises(TraceError, match="keep_tensors"):
        recompute(plain.trace.leaf(0, 0))


def test_tracing_off_gives_the_same_output_and_no_trace():
    traced, untraced = ExecutionContext(), ExecutionContext(trace=False)
    np.testing.assert_array_equal(_tiny_job(traced), _tiny_job(untraced))
    assert untraced.trace is None and untraced.op_count == 6
    with pytest.raises(ValueError, match="trace=True"):
        _ = untraced.trace_root


def test_background_hashing_gives_the_same_trace():
    rng = np.random.default_rng(4)
    w = freeze(rng.integers(-127, 128, (512, 256)).astype(np.int8))
    m, s = multiplier_tensors(0.001)
    x = rng.integers(-128, 128, (300, 256)).astype(np.int8)  # outputs of 150 KiB: hashed by the worker

    def job(ctx: ExecutionContext) -> bytes:
        y = ctx.call("linear", x, w, m, s, out_dtype="int32")
        for _ in range(3):
            ctx.begin_step()
            y = ctx.call("reshape", y, shape=[-1])
            y = ctx.call("reshape", y, shape=[300, 512])
        return ctx.trace_root

    assert job(ExecutionContext(background_hashing=True)) == job(ExecutionContext(background_hashing=False))
    ctx = ExecutionContext(keep_tensors=True)
    job(ctx)
    assert all(isinstance(r.output_hash, bytes) for r in ctx.trace.records())
    assert verify_record(ctx.trace.leaf(0, 0))


def test_params_must_be_exact_and_known():
    assert canonical_params({"b": [1, 2], "a": "x"}) == b'{"a":"x","b":[1,2]}'
    ctx = ExecutionContext()
    with pytest.raises(TraceError, match="float"):
        ctx.call("reshape", np.zeros(4, np.int8), shape=[2.0, 2])
    with pytest.raises(KeyError, match="unknown op 'conv'"):
        ctx.call("conv", np.zeros(4, np.int8))
    with pytest.raises(TensorError, match="input 0 of reshape"):
        ctx.call("reshape", np.zeros(4, np.float64), shape=[2, 2])


def test_outputs_are_read_only():
    ctx = ExecutionContext()
    out = ctx.call("reshape", np.arange(4, dtype=np.int8), shape=[2, 2])
    copy = ctx.call("concat", out, out, axis=0)
    with pytest.raises(ValueError, match="read-only"):
        copy[0, 0] = 1
