"""Merkle-committed traces of executed ops, and the one-op recompute a referee runs.

Scheme (also in docs/runtime.md):

- Each executed op is a leaf. Its bytes are

      b"verimesh-op-v1" || step (u32 BE) || index in step (u32 BE)
      || len(name) (u16 BE) || name (utf8) || len(params) (u32 BE) || params
      || n_inputs (u16 BE) || sha256 tensor hash of each input || tensor hash of the output

  where params is canonical JSON (sorted keys, no spaces, ASCII) and tensor hashes are
  ``verimesh.runtime.tensor.tensor_hash``. The leaf hash is ``crypto.merkle.leaf_hash``.
- A step's root is the Merkle root over its ops' leaves, in execution order.
- The trace root is the Merkle root over the step roots (each step root is the leaf data).
  Work with no explicit steps is one step (step 0), so every trace has the same two levels
  and bisection always goes steps first, then ops inside the disputed step.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..crypto.merkle import MerkleProof, MerkleTree, leaf_hash, merkle_root, root_from_proof
from .registry import get_op
from .tensor import canonical_bytes, from_canonical_bytes, settle, tensor_hash

LEAF_TAG = b"verimesh-op-v1"


class TraceError(ValueError):
    """A trace query or a recompute request that cannot be answered as asked."""


def canonical_params(params: dict[str, Any]) -> bytes:
    """Canonical JSON of op params; refuses floats (numbers in params must be exact)."""

    def check(value: Any, where: str) -> None:
        kind = type(value)
        if kind is int or kind is str or kind is bool or value is None:
            return
        if kind is float:
            raise TraceError(f"param {where} is a float ({value}); pass exact ints instead")
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise TraceError(f"param {where} has a non-string key {k!r}")
                check(v, f"{where}.{k}")
        elif isinstance(value, list | tuple):
            if all(type(v) is int for v in value):  # shapes, axes: the common case
                return
            for i, v in enumerate(value):
                check(v, f"{where}[{i}]")
        elif not isinstance(value, bool | int | str):
            raise TraceError(
                f"param {where} has type {type(value).__name__}; params are ints, strings, "
                "bools, lists and dicts of those"
            )

    check(params, "params")
    key = repr(params)  # the same params recur for every layer and token: serialise once
    cached = _json_cache.get(key)
    if cached is None:
        cached = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        if len(_json_cache) > 50_000:
            _json_cache.clear()
        _json_cache[key] = cached
    return cached


_json_cache: dict[str, bytes] = {}


@dataclass(slots=True)
class OpRecord:
    """One executed op: what the leaf commits to, plus (optionally) the input tensors.

    Treat it as immutable (it is not frozen only because frozen dataclasses cost a few
    microseconds per op, and generation records tens of thousands of ops)."""

    step: int
    index: int
    op: str
    params: dict[str, Any]
    input_hashes: tuple[bytes, ...]
    output_hash: bytes
    inputs: tuple[np.ndarray, ...] | None = field(default=None, compare=False, repr=False)
    params_json: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.params_json:  # canonical form, computed once (validates the params too)
            self.params_json = canonical_params(self.params)

    def leaf_bytes(self) -> bytes:
        name = self.op.encode()
        params = self.params_json
        return b"".join(
            [
                LEAF_TAG,
                struct.pack(">IIH", self.step, self.index, len(name)),
                name,
                struct.pack(">I", len(params)),
                params,
                struct.pack(">H", len(self.input_hashes)),
                *self.input_hashes,
                self.output_hash,
            ]
        )

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf_bytes())

    def to_json(self) -> dict[str, Any]:
        """JSON form for the wire; input tensors (if kept) as base64 canonical bytes."""
        obj: dict[str, Any] = {
            "step": self.step,
            "index": self.index,
            "op": self.op,
            "params": self.params,
            "input_hashes": ["0x" + h.hex() for h in self.input_hashes],
            "output_hash": "0x" + self.output_hash.hex(),
        }
        if self.inputs is not None:
            obj["inputs"] = [base64.b64encode(canonical_bytes(t)).decode() for t in self.inputs]
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> OpRecord:
        try:
            inputs = obj.get("inputs")
            return cls(
                step=int(obj["step"]),
                index=int(obj["index"]),
                op=str(obj["op"]),
                params=dict(obj["params"]),
                input_hashes=tuple(bytes.fromhex(h.removeprefix("0x")) for h in obj["input_hashes"]),
                output_hash=bytes.fromhex(obj["output_hash"].removeprefix("0x")),
                inputs=None
                if inputs is None
                else tuple(from_canonical_bytes(base64.b64decode(t)) for t in inputs),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TraceError(f"malformed op record: {exc}") from exc


@dataclass(frozen=True)
class TraceProof:
    """Inclusion of one op leaf: leaf -> step root (op_proof), step root -> trace root."""

    op_proof: MerkleProof
    step_root: bytes
    step_proof: MerkleProof

    def to_json(self) -> dict[str, Any]:
        return {
            "op_proof": self.op_proof.to_json(),
            "step_root": "0x" + self.step_root.hex(),
            "step_proof": self.step_proof.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TraceProof:
        try:
            return cls(
                MerkleProof.from_json(obj["op_proof"]),
                bytes.fromhex(str(obj["step_root"]).removeprefix("0x")),
                MerkleProof.from_json(obj["step_proof"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TraceError(f"malformed trace proof: {exc}") from exc


def verify_trace_proof(trace_root: bytes, record: OpRecord, proof: TraceProof) -> bool:
    """True iff ``record`` is op ``record.index`` of step ``record.step`` under ``trace_root``."""
    if proof.op_proof.index != record.index or proof.step_proof.index != record.step:
        return False
    try:
        step_root = root_from_proof(record.leaf_hash(), proof.op_proof)
        if step_root != proof.step_root:
            return False
        return root_from_proof(leaf_hash(step_root), proof.step_proof) == trace_root
    except ValueError:
        return False


class Trace:
    """The ops of one job, grouped in steps; roots and proofs are computed on demand."""

    def __init__(self) -> None:
        self._steps: list[list[OpRecord]] = []
        self._trees: dict[int, MerkleTree] = {}
        self._unsettled: list[OpRecord] = []

    @property
    def steps(self) -> list[list[OpRecord]]:
        """Records by step (hashes settled)."""
        self._settle()
        return self._steps

    def begin_step(self) -> int:
        self._steps.append([])
        return len(self._steps) - 1

    def append(self, record: OpRecord) -> None:
        """Add a record; its hashes may still be Futures (see ``tensor_hash_deferred``)."""
        if not self._steps:
            self.begin_step()
        self._steps[-1].append(record)
        self._unsettled.append(record)
        self._trees.pop(len(self._steps) - 1, None)

    def _settle(self) -> None:
        """Wait for hashes computed in the background and store their bytes."""
        for record in self._unsettled:
            record.input_hashes = tuple([settle(h) for h in record.input_hashes])
            record.output_hash = settle(record.output_hash)
        self._unsettled.clear()

    def next_position(self) -> tuple[int, int]:
        """(step, index) the next appended op will get."""
        if not self._steps:
            return 0, 0
        return len(self._steps) - 1, len(self._steps[-1])

    @property
    def op_count(self) -> int:
        return sum(len(s) for s in self._steps)

    def _tree(self, step: int) -> MerkleTree:
        self._settle()
        tree = self._trees.get(step)
        if tree is None:
            tree = MerkleTree([r.leaf_hash() for r in self._steps[step]])
            self._trees[step] = tree
        return tree

    @property
    def step_roots(self) -> list[bytes]:
        return [self._tree(i).root for i in range(len(self._steps))]

    @property
    def root(self) -> bytes:
        steps = self.step_roots or [MerkleTree([]).root]  # no op at all: one empty step
        return merkle_root(steps)

    def leaf(self, step: int, index: int) -> OpRecord:
        self._settle()
        if not 0 <= step < len(self._steps):
            raise TraceError(f"step {step} is outside a trace of {len(self._steps)} steps")
        if not 0 <= index < len(self._steps[step]):
            raise TraceError(f"op {index} is outside step {step} of {len(self._steps[step])} ops")
        return self._steps[step][index]

    def position(self, leaf_index: int) -> tuple[int, int]:
        """(step, index in step) of the ``leaf_index``-th op counted over the whole trace."""
        remaining = leaf_index
        for step, ops in enumerate(self._steps):
            if 0 <= remaining < len(ops):
                return step, remaining
            remaining -= len(ops)
        raise TraceError(f"op {leaf_index} is outside a trace of {self.op_count} ops")

    def proof(self, step: int, index: int) -> TraceProof:
        self.leaf(step, index)
        step_tree = MerkleTree([leaf_hash(r) for r in self.step_roots])
        return TraceProof(self._tree(step).proof(index), self._tree(step).root, step_tree.proof(step))

    def records(self) -> list[OpRecord]:
        self._settle()
        return [r for s in self._steps for r in s]


def recompute(record: OpRecord, path: str = "reference") -> np.ndarray:
    """Re-run the single op of ``record`` from its input tensors alone: the referee's job.

    The inputs must hash to the committed input hashes (else the record is inconsistent
    and nothing is proven). Returns the output; compare its hash with ``record.output_hash``
    (``verify_record`` does both).
    """
    if record.inputs is None:
        raise TraceError(
            f"op record {record.step}/{record.index} carries no input tensors; run the job "
            "with ExecutionContext(keep_tensors=True) to answer a dispute"
        )
    if len(record.inputs) != len(record.input_hashes):
        raise TraceError("op record has a different number of inputs and input hashes")
    for i, (t, h) in enumerate(zip(record.inputs, record.input_hashes, strict=True)):
        if tensor_hash(t) != h:
            raise TraceError(f"input {i} of op {record.op!r} does not match its committed hash")
    op = get_op(record.op)
    fn = op.reference if path == "reference" else op.fast
    return fn(record.inputs, record.params)


def leaf_output(record: OpRecord | None, position: tuple[int, int], ops: tuple[str, ...] = ()) -> np.ndarray | None:
    """The output of a served leaf, recomputed from its input tensors: None unless the leaf
    is at ``position`` (step, index), runs one of ``ops`` (any, if empty) and recomputes to
    its own output hash. A referee takes a tensor from a leaf only so (verify/replay.py)."""
    if record is None or (record.step, record.index) != position or (ops and record.op not in ops):
        return None
    try:
        out = recompute(record, path="fast")
    except (TraceError, ValueError, KeyError):
        return None  # tensors that do not match the leaf, or not an op this runtime knows
    return out if tensor_hash(out) == record.output_hash else None


def verify_record(record: OpRecord, path: str = "reference") -> bool:
    """True iff recomputing the op gives exactly the committed output hash."""
    return tensor_hash(recompute(record, path)) == record.output_hash
