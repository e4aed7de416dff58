"""What OpCheck.vy can recompute on chain, and the call arguments it takes.

OpCheck.vy recomputes one op of the runtime from its input tensors, bit for bit
``verimesh.runtime.ops`` (reference path), within fixed bounds. This module is the Python
side of that contract: its limits, the ``Tensor`` struct as a call argument, and
``checkable``, which tells whether a trace leaf can be recomputed by the contract (a
dispute then ends on chain with a fraud proof instead of a committee vote).

Keep it in sync with the contract: tests/contracts/test_op_check_contract.py checks that
every op here is accepted by the contract and that the limits are the contract's.
"""

from __future__ import annotations

import math

import numpy as np

from ..runtime.registry import get_op
from ..runtime.tensor import ALLOWED_DTYPES, MAX_NDIM, canonical_bytes, dtype_name
from ..runtime.trace import OpRecord

# The ops OpCheck.recompute implements (its `op` argument, the trace leaf's op name).
SUPPORTED_OPS: frozenset[str] = frozenset(
    {"add", "argmax", "mul", "requantize", "reshape", "rmsnorm", "rope", "slice"}
)
# OpCheck.vy `_MAX_ELEMENTS`: most elements of any input or output tensor.
MAX_ELEMENTS = 512
# OpCheck.vy `_MAX_DATA`: most data bytes of an input tensor (so int64 inputs hold at most
# 256 elements).
MAX_DATA = 2048
# OpCheck.vy `_MAX_PARAMS`: most bytes of the canonical params JSON.
MAX_PARAMS = 128
# OpCheck.vy `_MAX_INPUTS`: most input tensors of one op (add takes 5).
MAX_INPUTS = 5


def tensor_arg(t: np.ndarray) -> tuple[str, list[int], bytes]:
    """The contract's ``Tensor`` struct for ``t``: (dtype name, shape, C-order little-endian data)."""
    arr = np.asarray(t)
    name = dtype_name(arr)
    if name not in ALLOWED_DTYPES:
        raise ValueError(f"tensor dtype {arr.dtype} is not one of {', '.join(ALLOWED_DTYPES)}")
    header = canonical_bytes(arr)
    return name, [int(d) for d in arr.shape], header[len(header) - arr.nbytes :]


def _within(shape: tuple[int, ...]) -> bool:
    return (
        len(shape) <= MAX_NDIM
        and math.prod(shape) <= MAX_ELEMENTS
        and all(d <= MAX_ELEMENTS for d in shape)
    )


def checkable(record: OpRecord) -> bool:
    """True iff OpCheck.recompute can recompute ``record``'s op within its bounds.

    Needs the record's input tensors (``ExecutionContext(keep_tensors=True)``), a supported
    op, at most MAX_INPUTS inputs of allowed dtypes, each of at most MAX_ELEMENTS elements
    (every dim too) and MAX_DATA bytes, params JSON of at most MAX_PARAMS bytes, and an
    output of at most MAX_ELEMENTS elements. The op itself is run (cheap at these sizes) for
    the output's shape: inputs or params the runtime refuses make the contract revert too,
    so they are not checkable.
    """
    inputs = record.inputs
    if inputs is None or record.op not in SUPPORTED_OPS:
        return False
    if len(inputs) > MAX_INPUTS or len(record.params_json) > MAX_PARAMS:
        return False
    for t in inputs:
        if not isinstance(t, np.ndarray) or dtype_name(t) not in ALLOWED_DTYPES:
            return False
        if not _within(t.shape) or t.nbytes > MAX_DATA:
            return False
    if record.op == "reshape" and any(
        isinstance(d, int) and d < -1 for d in record.params.get("shape", ())
    ):
        return False  # numpy takes any negative dim as the unknown one; OpCheck only -1
    try:
        out = get_op(record.op).fast(inputs, record.params)
    except (ValueError, TypeError, IndexError):  # OpError, TensorError, FixedPointError
        return False
    return _within(out.shape)
