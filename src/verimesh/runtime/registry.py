"""The table of ops: every computation the exact runtime can trace and a referee can redo.

An op is two functions with the same contract, ``(inputs, params) -> output``:
``fast`` (what providers run) and ``reference`` (slow, written to be obviously correct).
Inputs and the output are integer tensors (``verimesh.runtime.tensor``); params are
JSON values made of ints, strings, bools and lists (no floats: they would be a second,
inexact channel for numbers). Tests assert ``fast == reference`` bit for bit for every op.

Adding an op: write both functions and its ``shape`` in a module of ``verimesh.runtime.ops``, call
``register(Op(...))`` at import time; see docs/runtime.md. Tests assert that ``shape`` gives
the shape and dtype ``fast`` returns, for every op test case (tests/runtime/runtime_helpers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OpFunction = Callable[[Sequence[np.ndarray], dict[str, Any]], np.ndarray]
# (inputs, params) -> (output shape, output dtype name), checking the inputs as the op does
# but reading only their shapes and dtypes (and the values of small constants: ids, masks,
# tables), so it also takes shape-only stand-ins (``tensor.stand_in``)
ShapeFunction = Callable[[Sequence[np.ndarray], dict[str, Any]], tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class Op:
    """``shape`` says what ``fast`` would return without computing it: a referee walks the
    program's instructions with it (``runtime.program``) to learn which op, params and
    inputs a position holds, and then recomputes that one op."""

    name: str
    fast: OpFunction
    reference: OpFunction
    doc: str = ""
    shape: ShapeFunction | None = None


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add ``op`` to ``OPS``; a second op with the same name is a programming error."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is already registered")
    OPS[op.name] = op
    return op


def get_op(name: str) -> Op:
    """The registered op ``name`` (``import verimesh.runtime`` registers them all)."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
