"""ExecutionContext: the only way model code runs ops, so that every op is traced.

    ctx = ExecutionContext()                      # trace on, fast path
    h = ctx.call("linear", x, w, m, s, bias, out_dtype="int8")
    ctx.begin_step()                              # generation: one step per token
    ctx.trace_root                                # 32 bytes

``path="reference"`` runs every op's slow reference implementation instead: it must give
the same bytes and the same trace root (tests/runtime/test_determinism.py).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .registry import get_op
from .tensor import check_tensor, tensor_hash, tensor_hash_deferred
from .trace import OpRecord, Trace, canonical_params

Path = Literal["fast", "reference"]


class ExecutionContext:
    def __init__(
        self,
        trace: bool = True,
        path: Path = "fast",
        keep_tensors: bool = False,
        background_hashing: bool = False,
    ):
        """``keep_tensors`` keeps every op's input tensors in the trace (memory!) so that a
        dispute can be answered with ``trace.leaf(...).inputs`` without re-running.
        ``background_hashing`` hashes large outputs on a worker thread: same hashes, same
        root, but the hashing overlaps the next ops. It pays only when a core is idle (e.g.
        BLAS on fewer threads than cores), so it is off by default."""
        if path not in ("fast", "reference"):
            raise ValueError(f"path must be 'fast' or 'reference', got {path!r}")
        if keep_tensors and not trace:
            raise ValueError("keep_tensors=True needs trace=True")
        self.path: Path = path
        self.keep_tensors = keep_tensors
        self.trace: Trace | None = Trace() if trace else None
        self.op_count = 0
        self._hash = tensor_hash_deferred if background_hashing else tensor_hash

    def begin_step(self) -> None:
        """Start a new step (e.g. one generated token); later ops go into it."""
        if self.trace is not None:
            self.trace.begin_step()

    def call(self, op_name: str, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        """Run one op on integer tensors; returns its (read-only) output tensor."""
        op = get_op(op_name)
        for i, t in enumerate(inputs):
            check_tensor(t, f"input {i} of {op_name}")
        params_json = canonical_params(params) if self.trace is not None else b""  # before the work
        fn = op.fast if self.path == "fast" else op.reference
        out = fn(inputs, params)
        check_tensor(out, f"output of {op_name}")
        if any(out is t for t in inputs):
            out = out.view()  # never change the flags of the caller's own array below
        if out.flags.writeable and out.flags.owndata:
            out.flags.writeable = False  # outputs are values; freezing lets their hash be cached
        self.op_count += 1
        if self.trace is not None:
            step, index = self.trace.next_position()
            self.trace.append(
                OpRecord(
                    step=step,
                    index=index,
                    op=op_name,
                    params=dict(params),
                    input_hashes=tuple([self._hash(t) for t in inputs]),
                    output_hash=self._hash(out),
                    inputs=tuple(inputs) if self.keep_tensors else None,
                    params_json=params_json,
                )
            )
        return out

    @property
    def trace_root(self) -> bytes:
        if self.trace is None:
            raise ValueError("this context runs without a trace; create it with trace=True")
        return self.trace.root
