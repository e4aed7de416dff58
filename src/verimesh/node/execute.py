"""Run a job spec in the exact runtime and hand back what the node commits to.

``Executor.run(spec, input_bytes) -> Execution`` (output blob bytes, output_root, trace_root,
seconds). Two implementations behind that one signature:
- ``WorkerExecutor``: the device engineer's ``node.worker.Worker`` (a capped, low-priority
  child process that the idle policy can pause) — the default when it is installed;
- ``InProcessExecutor``: ``models.api.run_job`` in this process (tests of the journal, and
  the fallback until the worker lands).

``evidence(spec, input_bytes, leaf_index)`` answers a dispute: it re-runs the job (exact
execution makes the re-run identical) keeping op inputs, and returns the leaf's record with
its inputs and Merkle proof. Re-running on demand keeps nothing big on disk for the
overwhelming majority of jobs that are never disputed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from verimesh.crypto.merkle import blob_root
from verimesh.node.jobs import JobSpec, decode_input


@dataclass(frozen=True)
class Execution:
    output_bytes: bytes
    output_root: bytes
    trace_root: bytes
    seconds: float


class ExecutionError(RuntimeError):
    """The job cannot run here (unknown model, bad params): the message says why."""


class Executor(Protocol):
    def run(self, spec: JobSpec, input_bytes: bytes) -> Execution: ...

    def evidence(self, spec: JobSpec, input_bytes: bytes, leaf_index: int) -> dict[str, Any]: ...


def output_blob(result: Any) -> bytes:
    """The bytes behind ``result.output_root`` (what the node serves and the requester checks)."""
    from verimesh.models import api

    data = api.output_bytes(result)
    if blob_root(data) != _root_bytes(result.output_root):
        raise ExecutionError("run_job's output bytes do not hash to its output_root (runtime bug)")
    return data


def _root_bytes(root: bytes | str) -> bytes:
    return root if isinstance(root, bytes) else bytes.fromhex(root.removeprefix("0x"))


class InProcessExecutor:
    """``models.api.run_job`` in this process; keeps the last few models loaded."""

    def __init__(self, cache_size: int = 2) -> None:
        self._models: dict[str, Any] = {}
        self._cache_size = cache_size

    def _model(self, root: str) -> Any:
        from verimesh.models import api

        model = self._models.pop(root, None)
        if model is None:
            try:
                model = api.load_model(root)
            except LookupError as exc:
                raise ExecutionError(
                    f"model {root} is not in this node's model store: `verimesh models pull` it"
                ) from exc
        self._models[root] = model  # most recently used last
        while len(self._models) > self._cache_size:
            self._models.pop(next(iter(self._models)))
        return model

    def run(self, spec: JobSpec, input_bytes: bytes) -> Execution:
        from verimesh.models import api

        started = time.perf_counter()
        result = api.run_job(self._model(spec.model_root), spec.task, decode_input(input_bytes), dict(spec.params))
        if _root_bytes(result.model_root) != spec.model_root_bytes:
            raise ExecutionError(f"loaded model {result.model_root} is not the job's {spec.model_root}")
        return Execution(
            output_bytes=output_blob(result),
            output_root=_root_bytes(result.output_root),
            trace_root=_root_bytes(result.trace_root),
            seconds=time.perf_counter() - started,
        )

    def evidence(self, spec: JobSpec, input_bytes: bytes, leaf_index: int) -> dict[str, Any]:
        from verimesh.models import api

        return api.trace_evidence(
            self._model(spec.model_root), spec.task, decode_input(input_bytes), dict(spec.params), leaf_index
        )


class WorkerExecutor:
    """Jobs in the device engineer's ``Worker``: a child process pinned to ``caps.cores``,
    with an address-space cap and the lowest priority, frozen (SIGSTOP) whenever the idle
    ``monitor`` says the owner needs the machine and continued (SIGCONT) after, no work lost.

    Dispute evidence is recomputed in-process (rare; the node is answering a dispute then).
    """

    def __init__(self, caps: Any, monitor: Any | None = None, stop: Any | None = None) -> None:
        from verimesh.node.worker import Worker

        self.worker = Worker(caps, monitor=monitor, stop=stop)
        self._evidence = InProcessExecutor(cache_size=1)
        self.last_progress: Any = None  # WorkerProgress: running/paused and why

    def run(self, spec: JobSpec, input_bytes: bytes) -> Execution:
        from verimesh.node.worker import WorkerJob

        job = WorkerJob(model_root=spec.model_root, task=spec.task, input=decode_input(input_bytes),
                        params=dict(spec.params), trace=True)  # fmt: skip
        result = self.worker.run(job, on_progress=self._progress)
        fields = result.fields
        if fields["model_root"] != spec.model_root:
            raise ExecutionError(f"worker ran model {fields['model_root']}, not the job's {spec.model_root}")
        output_root = _root_bytes(fields["output_root"])
        if blob_root(result.output_bytes) != output_root:
            raise ExecutionError("the worker's output bytes do not hash to its output_root")
        return Execution(result.output_bytes, output_root, _root_bytes(fields["trace_root"]), result.seconds)

    def _progress(self, progress: Any) -> None:
        self.last_progress = progress

    def evidence(self, spec: JobSpec, input_bytes: bytes, leaf_index: int) -> dict[str, Any]:
        return self._evidence.evidence(spec, input_bytes, leaf_index)

