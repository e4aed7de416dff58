"""Exact (bit-reproducible) execution engine: integer tensors, ops, traces.

Read in this order: tensor.py (formats, hashes), fixed.py (rounding), matmul.py (exact BLAS),
registry.py + ops/ (the ops), tables.py (tables importers commit), context.py, trace.py.
"""

from . import ops  # registers every op in OPS as soon as the runtime is imported
from .context import ExecutionContext
from .registry import OPS, Op, get_op, register
from .tensor import canonical_bytes, freeze, from_canonical_bytes, tensor_hash
from .trace import OpRecord, Trace, TraceProof, recompute, verify_record, verify_trace_proof

__all__ = [
    "OPS",
    "ExecutionContext",
    "Op",
    "OpRecord",
    "Trace",
    "TraceProof",
    "canonical_bytes",
    "freeze",
    "from_canonical_bytes",
    "get_op",
    "ops",
    "recompute",
    "register",
    "tensor_hash",
    "verify_record",
    "verify_trace_proof",
]
