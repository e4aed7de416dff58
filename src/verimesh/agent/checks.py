"""What the agent checks on a result beyond the SDK's root check.

The SDK already refuses bytes that do not hash to the revealed ``output_root``, and the
verification mode decides how much the root itself can be trusted. These checks catch a
result that is authentic but useless to this agent (a batch of the wrong size, vectors that
are not unit length, text where a vector was expected): the agent records the job as
failed instead of building on it.
"""

from __future__ import annotations

import math
from typing import Any

from verimesh.agent.work import WorkItem

# Embeddings are unit vectors at 2^-15 resolution: the norm is 1 within rounding.
NORM_TOLERANCE = 1e-2


class OutputRejected(ValueError):
    """A verified output that is not what this work item asked for."""


def check_output(item: WorkItem, output: Any) -> None:
    if item.task == "embed":
        texts = item.input if isinstance(item.input, list) else [item.input]
        vectors = output if isinstance(item.input, list) else [output]
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise OutputRejected(f"asked to embed {len(texts)} texts, got {len(vectors) if isinstance(vectors, list) else 'no'} vectors")
        for i, vector in enumerate(vectors):
            if not isinstance(vector, list) or not vector or not all(isinstance(x, float) for x in vector):
                raise OutputRejected(f"embedding {i} is not a list of numbers")
            norm = math.sqrt(sum(x * x for x in vector))
            if abs(norm - 1.0) > NORM_TOLERANCE:
                raise OutputRejected(f"embedding {i} has norm {norm:.4f}, not a unit vector")
    elif item.task == "generate" and not isinstance(output, str):
        raise OutputRejected(f"generation returned {type(output).__name__}, not text")
