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

from ..runtime.tensor import ALLOWED_DTYPES, MAX_NDIM, canonical_bytes, dtype_name
from ..runtime.trace import OpRecord

# The ops OpCheck.recompute implements (its `op` argument, the trace leaf's op name).
SUPPORTED_OPS: frozenset[str] = frozenset({"requantize"})
# OpCheck.vy `_MAX_ELEMENTS`: most elements of any input or output tensor.
MAX_ELEMENTS = 256
# OpCheck.vy `_MAX_DATA`: most data bytes of a tensor (int64 x MAX_ELEMENTS).
MAX_DATA = 8 * MAX_ELEMENTS
# OpCheck.vy `_MAX_PARAMS`: most bytes of the canonical params JSON.
MAX_PARAMS = 128
# OpCheck.vy `_MAX_INPUTS`: most input tensors of one op.
MAX_INPUTS = 4


def tensor_arg(t: np.ndarray) -> tuple[str, list[int], bytes]:
    """The contract's ``Tensor`` struct for ``t``: (dtype name, shape, C-order little-endian data)."""
    arr = np.asarray(t)
    name = dtype_name(arr)
    if name not in ALLOWED_DTYPES:
        raise ValueError(f"tensor dtype {arr.dtype} is not one of {', '.join(ALLOWED_DTYPES)}")
    header = canonical_bytes(arr)
    return name, [int(d) for d in arr.shape], header[len(header) - arr.nbytes :]


def _output_elements(record: OpRecord) -> int:
    """Elements of the op's output (an upper bound where the exact count needs the op)."""
    inputs = record.inputs or ()
    if record.op == "requantize" and len(inputs) == 3:
        try:
            return math.prod(np.broadcast_shapes(*(t.shape for t in inputs)))
        except ValueError:
            return 0  # the runtime refuses it; the contract reverts
    return max((t.size for t in inputs), default=0)


def checkable(record: OpRecord) -> bool:
    """True iff OpCheck.recompute can recompute ``record``'s op within its bounds.

    Needs the record's input tensors (``ExecutionContext(keep_tensors=True)``), a supported
    op, at most MAX_INPUTS inputs of allowed dtypes, each tensor (inputs and output) of at
    most MAX_ELEMENTS elements and MAX_NDIM dimensions, and params JSON of at most
    MAX_PARAMS bytes. It does not run the op: inputs the runtime itself refuses still make
    the contract revert.
    """
    if record.inputs is None or record.op not in SUPPORTED_OPS:
        return False
    if len(record.inputs) > MAX_INPUTS or len(record.params_json) > MAX_PARAMS:
        return False
    for t in record.inputs:
        if not isinstance(t, np.ndarray) or dtype_name(t) not in ALLOWED_DTYPES:
            return False
        if t.ndim > MAX_NDIM or t.size > MAX_ELEMENTS or any(d > MAX_ELEMENTS for d in t.shape):
            return False
    return _output_elements(record) <= MAX_ELEMENTS
