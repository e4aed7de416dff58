"""Honest (and tampered) executions of one job, with full traces for disputes.

``JobRun`` names a job (model, task, text, params) the way ``models.api.run_job`` runs it,
but hands in the ``ExecutionContext``, so a dispute party can keep every op's input tensors
and a referee can replay the program up to one op and stop there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models.api import LoadedModel
from ..runtime import ExecutionContext
from ..runtime.trace import OpRecord, Trace


@dataclass(frozen=True)
class JobRun:
    model: LoadedModel
    task: str
    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def run(self, ctx: ExecutionContext) -> Any:
        """Run the job's program in ``ctx``; returns the architecture's TaskOutput."""
        return self.model.architecture.run(self.model.impl, self.task, self.text, dict(self.params), ctx)

    def trace(self, ctx: ExecutionContext | None = None) -> Trace:
        """The full trace, with input tensors kept (what a party needs to answer a dispute)."""
        ctx = ctx or ExecutionContext(keep_tensors=True)
        self.run(ctx)
        assert ctx.trace is not None
        return ctx.trace

    def expected_leaf(self, step: int, index: int) -> OpRecord | None:
        """The op the honest program runs at (step, index), or None if it never gets there.

        Runs the program only up to that op (the referee's cost: a prefix of the job)."""
        ctx = _StopAt(step, index)
        try:
            self.run(ctx)
        except _Reached as reached:
            return reached.record
        return None


class _Reached(Exception):
    def __init__(self, record: OpRecord) -> None:
        super().__init__("reached the disputed op")
        self.record = record


class _StopAt(ExecutionContext):
    """Runs ops honestly and stops the program right after the op at (step, index)."""

    def __init__(self, step: int, index: int) -> None:
        super().__init__(keep_tensors=True)
        self.target = (step, index)

    def call(self, op_name: str, *inputs: Any, **params: Any) -> Any:
        assert self.trace is not None
        position = self.trace.next_position()
        out = super().call(op_name, *inputs, **params)
        if position == self.target:
            raise _Reached(self.trace.leaf(*position))
        return out
