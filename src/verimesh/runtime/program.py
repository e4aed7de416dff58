"""Walk a program's instructions without computing them: which op, with which params and
which inputs, the program runs at a position of its trace.

Which op runs where depends on a job's shapes (its prompt length, the step, the batch), not
on the values its ops compute. So a referee who must know the honest program's op at a
position (the parties' leaves differ there in op, params or inputs: a skipped layer, a
swapped model, another shift) need not compute the ops before it. ``ProgramWalk`` is an
``ExecutionContext`` whose ``call`` computes nothing: each op's ``shape`` (runtime/registry.py)
checks its inputs as the op would and gives a data-less stand-in (``tensor.stand_in``) for
its output, remembered as "the output of op j of this step". At the target position the
walk stops with the ``Instruction``: the op, its params and where each input's value comes
from, the output of an earlier op of the step (by its index) or a constant (by its hash).

The referee resolves those indices to the output hashes of the agreed leaves (proven under
the committed roots), takes the input tensors from a party's leaf whose input hashes are the
instruction's, and recomputes that one op (verify/replay.py). Model code may not compute on
an op's output outside ``ctx.call`` (the trace would not see it either): a walk that meets
such a tensor stops with a ``WalkError`` instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .context import ExecutionContext
from .registry import get_op
from .tensor import check_tensor, is_stand_in, stand_in, tensor_hash
from .trace import canonical_params


class WalkError(ValueError):
    """A program the walk cannot follow without computing (it read an op's values, or left
    the step it walks)."""


@dataclass(frozen=True)
class Instruction:
    """The program's op at (step, index): ``inputs`` holds, per input, the index in the step
    of the op whose output it is (an int) or the tensor hash of a constant (bytes);
    ``constants`` the constants themselves (None for an op's output)."""

    step: int
    index: int
    op: str
    params: dict[str, Any]
    inputs: tuple[int | bytes, ...]
    constants: tuple[np.ndarray | None, ...] = field(default=(), compare=False, repr=False)

    def run(self) -> np.ndarray | None:
        """The op's output when every input is a constant (nothing to take from a leaf)."""
        if not self.constants or any(t is None for t in self.constants):
            return None
        return get_op(self.op).fast(list(self.constants), self.params)  # type: ignore[arg-type]

    @property
    def params_json(self) -> bytes:
        return canonical_params(self.params)


class Walked(Exception):
    """The walk reached its target (raised out of the model code, which it stops)."""

    def __init__(self, instruction: Instruction) -> None:
        super().__init__(f"reached op {instruction.step}/{instruction.index}")
        self.instruction = instruction


class ProgramWalk(ExecutionContext):
    """Runs model code over one step from op ``first`` on, computing nothing, and raises
    ``Walked`` at op ``index`` of step ``step``. Inputs that come from before the walk are
    either real tensors (constants) or ``output_of`` stand-ins. A walk from op 0 may run a
    whole job's code from its start: it stops at the first step's end, where a generation
    reads the token it chose (a stand-in has no values)."""

    def __init__(self, step: int, index: int, first: int) -> None:
        super().__init__(trace=False)
        if not 0 <= first <= index:
            raise ValueError(f"a walk to op {index} cannot start at op {first}")
        self.target = (step, index)
        self._first = self._next = first
        self._opened = False
        self._outputs: dict[int, tuple[np.ndarray, int]] = {}  # id(stand-in) -> (it, op index)

    def output_of(self, index: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        """A stand-in for the output of op ``index`` of the step, one the walk does not run
        (e.g. the agreed leaf whose output enters the layer it starts in)."""
        if index >= self._next:
            raise ValueError(f"op {index} is not before the walk's first op {self._next}")
        out = stand_in(shape, dtype)
        self._outputs[id(out)] = (out, index)
        return out

    def begin_step(self) -> None:
        """A walk from a step's first op sees that step open (a generation opens each of
        its steps); any later step is past the one it follows."""
        if self._opened or self._next != self._first or self._first != 0:
            raise WalkError("the program left the step the walk follows")
        self._opened = True

    def call(self, op_name: str, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        op = get_op(op_name)
        if op.shape is None:
            raise WalkError(f"op {op_name!r} has no shape function: a walk cannot pass it")
        outputs = [self._source(t) for t in inputs]
        for i, (t, source) in enumerate(zip(inputs, outputs, strict=True)):
            check_tensor(t, f"input {i} of {op_name}")
            if source is None and is_stand_in(t):
                raise WalkError(f"input {i} of {op_name} was computed from an op's output outside the ops")
        shape, dtype = op.shape(list(inputs), params)
        index = self._next
        self._next += 1
        if index == self.target[1]:
            sources = tuple(tensor_hash(t) if s is None else s for t, s in zip(inputs, outputs, strict=True))
            constants = tuple(t if s is None else None for t, s in zip(inputs, outputs, strict=True))
            raise Walked(Instruction(self.target[0], index, op_name, dict(params), sources, constants))
        out = stand_in(shape, dtype)
        self._outputs[id(out)] = (out, index)
        self.op_count += 1
        return out

    def _source(self, t: np.ndarray) -> int | None:
        known = self._outputs.get(id(t))
        return known[1] if known is not None and known[0] is t else None
