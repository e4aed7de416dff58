"""Run a job spec in the exact runtime and hand back what the node commits to.

``Executor.run(spec, input_bytes) -> Execution``: the output blob (canonical bytes of the
output tensor), its root, the trace root and the step roots under it (one per generation
step; the node publishes them so a validator can re-run single steps), the decoded output
(JSON) and the seconds.
Two implementations behind that one signature:
- ``WorkerExecutor``: the device engineer's ``node.worker.Worker`` (a child process pinned to
  the owner's cores, memory-capped, lowest priority, frozen by the idle policy), calling
  ``execute_entry`` below in the child — what ``verimesh node run`` uses;
- ``InProcessExecutor``: the same ``execute`` in the node process (``--in-process``, tests).

Both run ``execute``: load the model from the local store, call its architecture's ``run``
with a traced ``ExecutionContext`` — exactly what ``models.api.run_job`` (and so ``verimesh
run``) does — and keep the output TENSOR, whose canonical bytes are the output blob the
requester downloads and checks against ``output_root``. (``run_job`` returns the roots but
not those bytes; when it does, this module calls it instead.)

Inputs: a string is the job's text; a list of strings (embedding a batch) is passed as the
``texts`` param, which is how the encoder embeds several texts in one job.

``trace(spec, input_bytes)`` answers a dispute: it re-runs the job keeping op inputs (exact
execution makes the re-run identical), the trace the node plays the bisection game from and
serves leaves of (``leaf_evidence``: one op's record with its input tensors and Merkle
proof). Re-running on demand keeps nothing big on disk for the overwhelming majority of
jobs that are never disputed.

Adversaries (``verify.adversary.Behaviour``, ``verimesh node run --adversary``): both
executors take a behaviour and ``execute`` computes the job the way that cheat would, with
the tampered model or context, so the output, the trace and every later re-run for dispute
evidence are the cheat's own, consistent lie. Honest is the default and costs nothing extra.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from verimesh.crypto.merkle import blob_root, merkle_root
from verimesh.node.jobs import JobSpec, decode_input, hex_root
from verimesh.verify.adversary import Behaviour

if TYPE_CHECKING:
    from verimesh.runtime.trace import Trace


@dataclass(frozen=True)
class Execution:
    output_bytes: bytes
    output_root: bytes
    trace_root: bytes
    step_roots: tuple[bytes, ...]  # in step order; merkle_root(step_roots) == trace_root
    output: Any  # the decoded output (embedding floats, generated text) for the requester
    seconds: float


class ExecutionError(RuntimeError):
    """The job cannot run here (unknown model, bad params): the message says why."""


class Executor(Protocol):
    def run(self, spec: JobSpec, input_bytes: bytes) -> Execution: ...

    def trace(self, spec: JobSpec, input_bytes: bytes) -> Trace: ...


def _root_bytes(root: bytes | str) -> bytes:
    return root if isinstance(root, bytes) else bytes.fromhex(root.removeprefix("0x"))


def _execution(output_bytes: bytes, trace: Trace, output: Any, seconds: float) -> Execution:
    """What the node commits to for one run: the output blob's root and ``trace``'s roots."""
    roots = tuple(trace.step_roots)
    return Execution(output_bytes, blob_root(output_bytes), trace.root, roots, output, seconds)


def job_arguments(spec: JobSpec, value: str | list[str]) -> tuple[str, dict[str, Any]]:
    """(text, params) for the architecture's ``run`` from the spec and the decoded input."""
    params = dict(spec.params)
    if isinstance(value, list):
        if spec.task != "embed":
            raise ExecutionError(f"a list of texts is an embedding batch; task {spec.task!r} takes one string")
        if "texts" in params:
            raise ExecutionError("pass the texts as the job input, not as a 'texts' param")
        params["texts"] = list(value)
        return value[0], params
    return value, params


def _load(root: str) -> Any:
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelNotFoundError

    try:
        return load_model(root, auto_import=False)
    except ModelNotFoundError as exc:
        raise ExecutionError(f"model {root} is not in this node's model store: {exc}") from exc


def load_job_model(spec: JobSpec) -> Any:
    """The job's model from the local store (a ``LoadedModel``), refused unless it is the
    model the spec names and it does the spec's task."""
    model = _load(spec.model_root)
    if model.root_hex != spec.model_root:
        raise ExecutionError(f"loaded model {model.root_hex} is not the job's {spec.model_root}")
    if spec.task not in model.architecture.tasks:
        raise ExecutionError(
            f"model {spec.model_root[:10]}... ({model.architecture.name}) does "
            f"{', '.join(model.architecture.tasks)}, not {spec.task!r}"
        )
    return model


def execute(
    spec: JobSpec, value: str | list[str], keep_tensors: bool = False, behaviour: Behaviour = Behaviour.HONEST
) -> tuple[Execution, Any]:
    """Run the job; returns the execution and the ``ExecutionContext`` (its ``.trace``).
    A cheating ``behaviour`` computes it the way that cheat would (module docstring)."""
    from verimesh.runtime import ExecutionContext, canonical_bytes
    from verimesh.verify import adversary

    model = load_job_model(spec)
    text, params = job_arguments(spec, value)
    started = time.perf_counter()
    if behaviour is Behaviour.RANDOM_OUTPUT:
        tensor, output, fabricated = adversary.random_output(model, spec.task, params, spec.hash())
        ctx = ExecutionContext(keep_tensors=keep_tensors)
        ctx.trace = fabricated
        seconds = time.perf_counter() - started
        return _execution(canonical_bytes(tensor), fabricated, output, seconds), ctx
    cheat = adversary.plan(behaviour, model)
    per_step = None
    if cheat.needs_count:  # a first, untraced pass: where the cheat's target ops are
        counter = adversary.OpCounter()
        cheat.model.architecture.run(cheat.model.impl, spec.task, text, dict(params), counter)
        per_step = counter.per_step
    ctx = cheat.context(per_step, keep_tensors)
    out = cheat.model.architecture.run(cheat.model.impl, spec.task, text, params, ctx)
    seconds = time.perf_counter() - started
    return _execution(canonical_bytes(out.tensor), ctx.trace, out.output, seconds), ctx


def execute_entry(payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Worker-child entry (``Worker.call("verimesh.node.execute:execute_entry", ...)``)."""
    spec = JobSpec.model_validate(payload["spec"])
    behaviour = Behaviour(payload.get("behaviour", Behaviour.HONEST.value))
    execution, _ = execute(spec, payload["input"], behaviour=behaviour)
    fields = {
        "output_root": hex_root(execution.output_root),
        "trace_root": hex_root(execution.trace_root),
        "step_roots": [hex_root(root) for root in execution.step_roots],
        "output": execution.output,
        "seconds": execution.seconds,
    }
    return fields, execution.output_bytes


def job_trace(spec: JobSpec, input_bytes: bytes, behaviour: Behaviour = Behaviour.HONEST) -> Trace:
    """The job's full trace with op input tensors kept: what the node plays a dispute from.
    Exact execution (and a deterministic cheat) makes it the very trace the node committed to."""
    _, ctx = execute(spec, decode_input(input_bytes), keep_tensors=True, behaviour=behaviour)
    return ctx.trace


def leaf_evidence(trace: Trace, leaf_index: int, tensors: bool = True) -> dict[str, Any]:
    """The wire form of op ``leaf_index`` of ``trace`` (what ``/v1/jobs/{id}/trace`` serves;
    without its input tensors unless ``tensors``); IndexError past its end."""
    if leaf_index < 0:
        raise IndexError(f"leaf {leaf_index} is negative")
    remaining = leaf_index
    for step, ops in enumerate(trace.steps):
        if remaining < len(ops):
            record = trace.leaf(step, remaining)
            if not tensors:
                record = replace(record, inputs=None)
            return {
                "job_trace_root": hex_root(trace.root),
                "leaf_index": leaf_index,
                "record": record.to_json(),
                "proof": trace.proof(step, remaining).to_json(),
            }
        remaining -= len(ops)
    raise IndexError(f"leaf {leaf_index} is outside this job's trace of {trace.op_count} ops")


class InProcessExecutor:
    """``execute`` in the node process (the loaded models stay cached by ``models.api``)."""

    def __init__(self, behaviour: Behaviour = Behaviour.HONEST) -> None:
        self.behaviour = behaviour

    def run(self, spec: JobSpec, input_bytes: bytes) -> Execution:
        execution, _ = execute(spec, decode_input(input_bytes), behaviour=self.behaviour)
        return execution

    def trace(self, spec: JobSpec, input_bytes: bytes) -> Trace:
        return job_trace(spec, input_bytes, self.behaviour)


def worker_execution(fields: dict[str, Any], output_bytes: bytes) -> Execution:
    """The ``Execution`` a worker child reported (``execute_entry``), refused unless its
    output bytes and step roots hash to the roots it claims: the node commits to those roots,
    so a child that garbled them (a bug, a killed write) must not get them on chain."""
    output_root = _root_bytes(fields["output_root"])
    if blob_root(output_bytes) != output_root:
        raise ExecutionError("the worker's output bytes do not hash to its output_root")
    trace_root = _root_bytes(fields["trace_root"])
    step_roots = tuple(_root_bytes(root) for root in fields["step_roots"])
    if merkle_root(step_roots) != trace_root:
        raise ExecutionError("the worker's step roots do not hash to its trace_root")
    output, seconds = fields["output"], fields["seconds"]
    return Execution(output_bytes, output_root, trace_root, step_roots, output, seconds)


class WorkerExecutor:
    """Jobs in the device engineer's ``Worker``: a child process pinned to ``caps.cores``,
    with an address-space cap and the lowest priority, frozen (SIGSTOP) whenever the idle
    ``monitor`` says the owner needs the machine and continued (SIGCONT) after, no work lost.

    A dispute's trace is recomputed in-process (rare; the node is answering a dispute then).
    """

    def __init__(
        self, caps: Any, monitor: Any | None = None, stop: Any | None = None, behaviour: Behaviour = Behaviour.HONEST
    ) -> None:
        from verimesh.node.worker import Worker

        self.worker = Worker(caps, monitor=monitor, stop=stop)
        self.behaviour = behaviour
        self.last_progress: Any = None  # WorkerProgress: running/paused and why

    def run(self, spec: JobSpec, input_bytes: bytes) -> Execution:
        payload = {"spec": spec.model_dump(mode="json"), "input": decode_input(input_bytes),
                   "behaviour": self.behaviour.value}  # fmt: skip
        result = self.worker.call("verimesh.node.execute:execute_entry", payload, self._progress)
        return worker_execution(result.fields, result.output_bytes)

    def _progress(self, progress: Any) -> None:
        self.last_progress = progress

    def trace(self, spec: JobSpec, input_bytes: bytes) -> Trace:
        return job_trace(spec, input_bytes, self.behaviour)
