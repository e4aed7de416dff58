"""Honest (and tampered) executions of one job, with full traces for disputes.

``JobRun`` names a job (model, task, text, params) the way ``models.api.run_job`` runs it,
but hands in the ``ExecutionContext``, so a dispute party can keep every op's input tensors
and a referee can replay the program up to one op and stop there.

A referee who must know the program's op at (step, index) pays the program up to there.
For a generation that is ``step`` sequential steps, unless the referee holds the tokens
those steps chose: ``claims`` are the parties' claimed outputs, and with one that the
program confirms (``LlamaModel.fast_forward``: one batched forward checks every claimed
token) the referee runs only the disputed step. A claim is never trusted: one that is not
the program's choice falls back to the full replay, so a lying party can only make the
referee's work what it was without claims.

Cheaper still, and first: resume at the disputed layer (the architecture's
``ResumePlan``: ``LlamaModel.resume``, ``BertModel.resume``). Every leaf before the first
differing one is in both parties' traces, so the leaf whose output enters the disputed
layer (a residual add, an embedding's mul, an encoder's norm) is agreed, and so are, in a
generation step after the first, the layer's two concats that read its cached keys and
values. ``agreed`` serves those leaves (with their input tensors, proven under a committed
trace root by the caller); the referee recomputes the entering leaf's op to get the
layer's input, checks it against the leaf's output hash, takes the cache from the
concats' inputs and runs the disputed layer alone, numbering its ops from the layer's
first index: one layer, in any step. A leaf nobody serves, or one that does not hold,
falls back to the fast-forward or the replay.

Cheapest, and tried first: one op. The same plan run in a ``runtime.program.ProgramWalk``
computes nothing and stops at the disputed position with the program's instruction there
(op, params, and which earlier op's output or which constant each input is). The output
hashes of those earlier ops are read off the agreed leaves, so the referee knows the
program's input hashes; a party's leaf that carries exactly those, with its tensors, gives
the inputs, and the op is recomputed on them alone. No such leaf: the resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..models.api import LoadedModel
from ..models.registry import ResumePlan
from ..runtime import ExecutionContext, get_op
from ..runtime.program import Instruction, ProgramWalk, Walked
from ..runtime.tensor import tensor_hash
from ..runtime.trace import OpRecord, Trace, TraceError, leaf_output, recompute

# leaf index (counted over all steps) -> that leaf with its input tensors, if it comes
# before the first difference and is proven under a committed trace root (checked by
# whoever serves it: node/evidence.py), else None
AgreedLeaves = Callable[[int], OpRecord | None]


@dataclass(frozen=True)
class JobRun:
    model: LoadedModel
    task: str
    text: str
    params: dict[str, Any] = field(default_factory=dict)
    claims: tuple[tuple[int, ...], ...] = ()  # generated token ids the parties claim (any, unchecked)
    agreed: AgreedLeaves | None = None  # leaves before the first difference, with their tensors
    agreed_hashes: AgreedLeaves | None = None  # the same without tensors (cheaper to serve); None: agreed

    def run(self, ctx: ExecutionContext) -> Any:
        """Run the job's program in ``ctx``; returns the architecture's TaskOutput."""
        return self.model.architecture.run(self.model.impl, self.task, self.text, dict(self.params), ctx)

    def trace(self, ctx: ExecutionContext | None = None) -> Trace:
        """The full trace, with input tensors kept (what a party needs to answer a dispute)."""
        ctx = ctx or ExecutionContext(keep_tensors=True)
        self.run(ctx)
        assert ctx.trace is not None
        return ctx.trace

    def answer(self, leaf: AgreedLeaves) -> Any:
        """The output tensor a trace commits to, read off its leaves (``leaf`` serves them
        proven under its root) by the architecture's ``answer``; None if it has none or a
        leaf is missing or does not hold."""
        answer = self.model.architecture.answer
        if answer is None:
            return None
        try:
            return answer(self.model.impl, self.task, self.text, dict(self.params), leaf)
        except ValueError:
            return None  # the job's own error: the re-execution reports it

    def program_op(self, step: int, index: int, leaves: Sequence[OpRecord | None] = ()) -> ProgramOp:
        """The op the honest program runs at (step, index) (None if it never gets there).
        Every leaf before it must be agreed by the parties (the first difference); ``leaves``
        are the parties' own leaves at that position, with their input tensors.

        Computes as little as it can: that one op, from the inputs of a party's leaf when
        the program's instruction there says those inputs are the right ones; else the ops
        from the disputed layer on when agreed leaves let it resume there; else that step
        alone when a claim lets it fast-forward there; else every op before it too."""
        found = (
            self._instructed(step, index, leaves) or self._resumed(step, index) or self._fast_forwarded(step, index)
        )
        if found is not None:
            return found
        ctx = _StopAt(step, index)
        try:
            self.run(ctx)
        except _Reached as reached:
            return ProgramOp(reached.record, "replay")
        return ProgramOp(None, "replay")

    def _resume_plan(self, step: int, index: int) -> tuple[ResumePlan, OpRecord | None, list[np.ndarray]] | None:
        """The architecture's ``ResumePlan`` of op ``index`` of step ``step``, with the
        agreed leaf whose output enters its layer (None for a plan from the step's first
        op) and the tensors the plan reads from earlier steps (the first inputs of agreed
        leaves, checked against their hashes); None when no plan serves (a family or an op
        with none, or an agreed leaf nobody serves)."""
        resume = self.model.architecture.resume
        if self.agreed is None or resume is None:
            return None
        try:
            plan = resume(self.model.impl, self.task, self.text, dict(self.params), step, index)
        except ValueError:
            return None  # the full run reports the job's own error
        if plan is None:
            return None
        anchor = None if plan.anchor is None else self.agreed(plan.before + plan.anchor)
        if plan.anchor is not None and (anchor is None or (anchor.step, anchor.index) != (step, plan.anchor)):
            return None
        reads = [(plan.before + i, (step, i)) for i in plan.cache]
        if plan.fed is not None:  # the leaf just before the step
            reads.append((plan.before - 1, plan.fed))
        cache = []
        for leaf_index, position in reads:
            leaf = self.agreed(leaf_index)
            if leaf is None or (leaf.step, leaf.index) != position or not leaf.inputs or (
                tensor_hash(leaf.inputs[0]) != leaf.input_hashes[0]
            ):
                return None
            cache.append(leaf.inputs[0])
        return plan, anchor, cache

    def _instructed(self, step: int, index: int, leaves: Sequence[OpRecord | None]) -> ProgramOp | None:
        """Op ``index`` of step ``step`` recomputed alone: the program's instruction there
        is walked without computing (``runtime.program``), its inputs' hashes are read off
        the agreed leaves that produce them, and the op runs on the input tensors of a
        party's leaf that carries exactly those hashes (or on the walk's own constants, when
        every input is one). A walk that ends its step first shows the program has no op
        there. None when that cannot serve (no agreed leaves, one nobody serves, no party
        leaf with the program's inputs, or a program the walk cannot follow): the resume
        decides."""
        at = [leaf for leaf in leaves if leaf is not None and (leaf.step, leaf.index) == (step, index)]
        leaves = [leaf for leaf in at if leaf.inputs]
        if self.agreed is None or (at and not leaves):
            return None  # the parties' leaves without tensors: the resume recomputes the layer instead
        walked = self._walk(step, index)
        if walked is None:
            return None
        if walked is _ENDED:
            return ProgramOp(None, "instruction")
        instruction, before, known = walked  # type: ignore[misc]
        hashes = []
        for source in instruction.inputs:
            if isinstance(source, bytes):  # a constant: weights, tables, the rope rows, token ids
                hashes.append(source)
                continue
            leaf = known.get(source) or (self.agreed_hashes or self.agreed)(before + source)
            if leaf is None or (leaf.step, leaf.index) != (step, source):
                return None
            hashes.append(leaf.output_hash)
        out = None
        for leaf in leaves:
            if list(leaf.input_hashes) != hashes:
                continue
            try:  # the leaf's tensors, if they are the ones its hashes name, are the program's inputs
                out = recompute(replace(leaf, op=instruction.op, params=instruction.params,
                                        params_json=instruction.params_json), path="fast")
                break
            except (TraceError, ValueError):
                continue
        if out is None:
            out = instruction.run()  # every input a constant: nothing to take from a leaf
        if out is None:
            return None
        return ProgramOp(OpRecord(step, index, instruction.op, instruction.params, tuple(hashes), tensor_hash(out)),
                         "instruction")  # fmt: skip

    def _walk(self, step: int, index: int) -> tuple[Instruction, int, dict[int, OpRecord]] | str | None:
        """The program's instruction at (step, index), the index over all steps of that
        step's first leaf, and the agreed leaves the walk already holds (by index in the
        step); ``_ENDED`` if a plan's run ends without reaching it (the program has no op
        there, as for ``_resumed``). Walked from the op's layer (the resume plan, after the
        agreed leaf entering it), or, in step 0 where no plan serves (the ops before the
        first layer, a batch's row gather), from the job's first op: nothing is computed."""
        planned = self._resume_plan(step, index)
        if planned is not None:
            plan, anchor, cache = planned
            walk = ProgramWalk(step, index, first=0 if anchor is None else plan.anchor + 1)
            if anchor is None:  # an op before the step's first layer: the step from its start
                x, known = None, {}
            else:
                entering = _output_shape(anchor)
                if entering is None or entering[0] != plan.shape:
                    return None
                x, known = walk.output_of(plan.anchor, *entering), {plan.anchor: anchor}
            start, before = (lambda: plan.run(walk, x, cache)), plan.before
        elif step == 0:
            walk = ProgramWalk(0, index, first=0)
            start, before, known = (lambda: self.run(walk)), 0, {}
        else:
            return None
        try:
            start()
        except Walked as walked:
            return walked.instruction, before, known
        except ValueError:
            return None  # agreed tensors of another shape than the program's, or a value read
        return _ENDED if planned is not None else None  # a job's own end says nothing of its steps

    def _resumed(self, step: int, index: int) -> ProgramOp | None:
        """Op ``index`` of step ``step`` from the layer it is in (the architecture's
        ``ResumePlan``), after the agreed residual entering that layer and the agreed cache
        it reads; None when that cannot serve (a family or an op with no plan, an agreed
        leaf nobody serves, or one that does not recompute to its hash)."""
        planned = self._resume_plan(step, index)
        if planned is None or planned[1] is None:
            return None  # a plan from the step's first op is only walked: running it is the replay
        plan, anchor, cache = planned
        x = leaf_output(anchor, (step, plan.anchor))
        if x is None or x.shape != plan.shape:
            return None
        ctx = _StopAt(step, index, first=plan.anchor + 1)
        try:
            plan.run(ctx, x, cache)
        except _Reached as reached:
            return ProgramOp(reached.record, "resume")
        except ValueError:
            return None  # agreed tensors of another shape than the program's
        return ProgramOp(None, "resume")  # the step ends before that index

    def _fast_forwarded(self, step: int, index: int) -> ProgramOp | None:
        """The op from step ``step`` run alone after a claim the program confirms; None
        when no claim serves (not a generation, step 0, a claim too short, one the program
        does not confirm, or one that stops before the step)."""
        from ..models.llama import LlamaModel
        from ..models.llama_task import generation_args

        impl = self.model.impl
        if step < 1 or self.task != "generate" or not isinstance(impl, LlamaModel) or not self.claims:
            return None
        try:
            max_tokens, seed, chat = generation_args(self.params)
            prompt = impl.prompt_ids(self.text, chat)
        except ValueError:
            return None  # the full run reports the job's own error
        if step >= max_tokens or len(prompt) + max_tokens - 1 > impl.cfg.context_length:
            return None
        stop = impl.stop_tokens()
        for claim in dict.fromkeys(self.claims):  # each distinct claim once
            tokens = list(claim[:step])
            if len(tokens) < step or any(t in stop for t in tokens):
                continue  # this generation never reaches the step
            ctx = _StopAt(step, index)
            try:
                if not impl.fast_forward(ctx, prompt, tokens, seed):
                    continue
            except _Reached as reached:
                return ProgramOp(reached.record, "forward")
            return ProgramOp(None, "forward")  # the step ends before that index
        return None


@dataclass(frozen=True)
class ProgramOp:
    """The honest program's op at a position (None: the program never runs one there), and
    how the referee got there: replaying every op before it, fast-forwarding to its step
    (a confirmed claim) or resuming at its layer (an agreed residual)."""

    record: OpRecord | None
    via: Literal["replay", "forward", "resume", "instruction"]


_ENDED = "ended"  # a walk whose plan ran out before the position: the program has no op there


def _output_shape(leaf: OpRecord) -> tuple[tuple[int, ...], str] | None:
    """The shape and dtype of a served leaf's output, from its op's ``shape`` on its input
    tensors (checked against the leaf's input hashes): what an op's output is to a walk,
    without computing it."""
    if leaf.inputs is None or len(leaf.inputs) != len(leaf.input_hashes):
        return None
    if any(tensor_hash(t) != h for t, h in zip(leaf.inputs, leaf.input_hashes, strict=True)):
        return None
    try:
        shape = get_op(leaf.op).shape
        return None if shape is None else shape(list(leaf.inputs), leaf.params)
    except (KeyError, ValueError):
        return None


class _Reached(Exception):
    def __init__(self, record: OpRecord) -> None:
        super().__init__("reached the disputed op")
        self.record = record


class _StopAt(ExecutionContext):
    """Runs ops honestly on the untraced fast path, numbering them as a trace would
    (``Trace.next_position``), and stops the program right after the op at (step, index)
    with that op's leaf: the referee needs one leaf, so only the disputed op's tensors are
    hashed (tracing the prefix cost a fifth more, bench-verify.md). ``first``: the index
    the first op gets, in step ``step`` (a run resumed in the middle of that step)."""

    def __init__(self, step: int, index: int, first: int | None = None) -> None:
        super().__init__(trace=False)
        self.target = (step, index)
        self._ops_per_step: list[int] = [] if first is None else [0] * step + [first]

    def begin_step(self) -> None:
        self._ops_per_step.append(0)

    def call(self, op_name: str, *inputs: Any, **params: Any) -> Any:
        if not self._ops_per_step:  # work with no explicit steps is step 0
            self._ops_per_step.append(0)
        position = (len(self._ops_per_step) - 1, self._ops_per_step[-1])
        out = super().call(op_name, *inputs, **params)
        self._ops_per_step[-1] += 1
        if position == self.target:
            raise _Reached(OpRecord(
                step=position[0], index=position[1], op=op_name, params=dict(params),
                input_hashes=tuple(tensor_hash(t) for t in inputs), output_hash=tensor_hash(out), inputs=tuple(inputs),
            ))  # fmt: skip
        return out
