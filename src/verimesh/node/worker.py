"""Run a job in a capped, low-priority child process that the idle policy can freeze.

Why a child process and not a thread: the owner's limits (cores, memory, priority) are
per-process kernel settings, a frozen process (SIGSTOP) keeps every byte of its state and
continues exactly where it stopped (SIGCONT), and a job that runs out of memory or crashes
takes down the worker, never the node.

The child is ``python -m verimesh.node.worker REQUEST RESULT``. Before importing numpy it
pins itself to ``caps.cores`` cores (``sched_setaffinity``), caps its address space
(``RLIMIT_AS``: numpy reports an allocation over the cap as a clean ``MemoryError`` instead
of the kernel's OOM killer shooting something), lowers its priority (``nice``) and asks the
kernel to kill it if the node dies (``PR_SET_PDEATHSIG``). BLAS gets one thread per allowed
core through the environment (set before the child starts, the only moment BLAS reads it),
and glibc at most two malloc arenas so that threads do not reserve the address space the
cap is meant for.

A request names an entry ``"module:function"`` called as ``function(payload) -> (dict,
bytes)``: the node's job entry is ``node.execute:execute_entry``, the self-benchmark has its
own. The result goes to a file (JSON + a sidecar for the output bytes): no pipe
can fill up and block a frozen child.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from verimesh.node.config import ResourceCaps

WorkerStateName = Literal["idle", "running", "paused"]
_EXIT_ERROR = 3  # the entry raised: the result file holds the error
_POLL = 0.05  # seconds between checks of the child when no idle monitor paces the loop


class WorkerError(RuntimeError):
    """The job did not produce a result here: the message says why (and what to change)."""


class WorkerCancelled(WorkerError):
    """``cancel()`` or the node's stop event ended the job; nothing was produced."""


class WorkerResult(BaseModel):
    """What the entry produced: JSON-able ``fields`` and the raw ``output_bytes``."""

    fields: dict[str, Any]
    output_bytes: bytes = b""
    seconds: float  # wall time of the child, pauses included
    paused_seconds: float = 0.0


class WorkerRequest(BaseModel):
    """The file the child reads: which entry, its payload, and the caps to apply first."""

    entry: str
    payload: dict[str, Any]
    cores: list[int]
    memory_mb: int
    nice: int


class WorkerProgress(BaseModel):
    """Reported to ``on_progress`` at every check: what the owner sees in ``node status``."""

    state: WorkerStateName
    seconds: float
    paused_seconds: float
    reason: str  # why running or paused (the idle verdict), or "no idle policy"


def pick_cores(count: int) -> list[int]:
    """The LAST ``count`` cores we may use: interactive work tends to land on core 0 first."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[-count:]


class Worker:
    """Runs one job at a time in a child process. ``pause``/``resume``/``cancel`` are safe to
    call from any thread while ``run`` blocks in another.

    With an ``IdleMonitor`` the worker freezes itself whenever the owner needs the machine
    and continues when the policy allows again; with a ``stop`` event, setting it cancels
    the job (the node is shutting down).
    """

    def __init__(
        self,
        caps: ResourceCaps,
        monitor: Any | None = None,  # IdleMonitor; Any keeps this module import-light for the child
        stop: threading.Event | None = None,
    ) -> None:
        self.caps = caps
        self.monitor = monitor
        self.stop = stop
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._state: WorkerStateName = "idle"
        self._cancelled = False
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._wake = threading.Event()

    @property
    def state(self) -> WorkerStateName:
        return self._state

    @property
    def pid(self) -> int | None:
        """The child's pid while a job runs (for status displays and tests)."""
        proc = self._proc
        return None if proc is None else proc.pid

    # -- control (any thread) ---------------------------------------------------------------
    def pause(self) -> bool:
        """Freeze the child (SIGSTOP to its process group). False if nothing runs or already paused."""
        with self._lock:
            if self._proc is None or self._state != "running":
                return False
            _signal_group(self._proc, signal.SIGSTOP)
            self._state = "paused"
            self._paused_at = time.monotonic()
            return True

    def resume(self) -> bool:
        """Continue a frozen child exactly where it stopped (SIGCONT)."""
        with self._lock:
            if self._proc is None or self._state != "paused":
                return False
            _signal_group(self._proc, signal.SIGCONT)
            self._state = "running"
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None
            return True

    def cancel(self) -> None:
        """Kill the running job (frozen or not); ``run`` raises ``WorkerCancelled``.
        Without a running job this does nothing (it does not poison the next job)."""
        with self._lock:
            if self._proc is None:
                return
            self._cancelled = True
            if self._proc.poll() is None:
                _signal_group(self._proc, signal.SIGKILL)
        self._wake.set()

    # -- running ------------------------------------------------------------------------------
    def call(
        self,
        entry: str,
        payload: dict[str, Any],
        on_progress: Callable[[WorkerProgress], None] | None = None,
    ) -> WorkerResult:
        """Run ``entry(payload)`` in a capped child; raises ``WorkerError`` with the reason."""
        request = WorkerRequest(
            entry=entry,
            payload=payload,
            cores=pick_cores(self.caps.cores),
            memory_mb=self.caps.memory_mb,
            nice=self.caps.nice,
        )
        with tempfile.TemporaryDirectory(prefix="verimesh-worker-") as tmp:
            folder = Path(tmp)
            (folder / "request.json").write_text(request.model_dump_json())
            started = time.monotonic()
            with self._lock:
                if self.stop is not None and self.stop.is_set():
                    raise WorkerCancelled("the node is stopping: the job was not started")
                with open(folder / "stderr.txt", "wb") as stderr:
                    self._proc = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "verimesh.node.worker",
                            str(folder / "request.json"),
                            str(folder / "result.json"),
                        ],
                        env=_child_env(self.caps.cores),
                        stdin=subprocess.DEVNULL,
                        stdout=stderr,
                        stderr=stderr,
                        start_new_session=True,  # its own process group: SIGSTOP reaches all of it
                    )
                self._state, self._paused_total, self._paused_at = "running", 0.0, None
            try:
                returncode = self._supervise(started, on_progress)
            finally:
                with self._lock:
                    cancelled, self._cancelled = self._cancelled, False
                    self._proc, self._state = None, "idle"
                    paused = self._paused_total + (
                        time.monotonic() - self._paused_at if self._paused_at else 0.0
                    )
            seconds = time.monotonic() - started
            if cancelled:
                raise WorkerCancelled("the job was cancelled (the node is stopping or was told to)")
            return _collect(folder, returncode, request, seconds, paused)

    def _supervise(
        self, started: float, on_progress: Callable[[WorkerProgress], None] | None
    ) -> int:
        """Wait for the child, pausing/resuming it by the idle verdict; returns its exit code."""
        assert self._proc is not None
        proc = self._proc
        while True:
            if self.stop is not None and self.stop.is_set():
                self.cancel()
            reason = "no idle policy"
            if self.monitor is not None and proc.poll() is None:
                verdict = self.monitor.state()
                reason = verdict.reason
                if verdict.idle:
                    self.resume()
                else:
                    self.pause()
            if on_progress is not None:
                with self._lock:
                    paused = self._paused_total + (
                        time.monotonic() - self._paused_at if self._paused_at else 0.0
                    )
                    state = self._state
                on_progress(
                    WorkerProgress(
                        state=state,
                        seconds=time.monotonic() - started,
                        paused_seconds=paused,
                        reason=reason,
                    )
                )
            code = proc.poll()
            if code is not None:
                return code
            interval = self.monitor.policy.check_seconds if self.monitor is not None else _POLL
            self._wake.wait(interval)
            self._wake.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it just exited: the supervisor sees that
        os.killpg(proc.pid, sig)


def _child_env(cores: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in (
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        env[name] = str(cores)
    env["MALLOC_ARENA_MAX"] = "2"
    return env


def _collect(
    folder: Path, returncode: int, request: WorkerRequest, seconds: float, paused: float
) -> WorkerResult:
    result_path = folder / "result.json"
    if returncode == 0 and result_path.is_file():
        fields = json.loads(result_path.read_text())
        output = folder / "result.json.bin"
        return WorkerResult(
            fields=fields,
            output_bytes=output.read_bytes() if output.is_file() else b"",
            seconds=seconds,
            paused_seconds=paused,
        )
    if returncode == _EXIT_ERROR and result_path.is_file():
        error = json.loads(result_path.read_text())
        if error.get("kind") == "memory":
            raise WorkerError(
                f"the job needs more memory than the worker's cap of {request.memory_mb} MB "
                f"({error['message']}); raise caps.memory_mb in node.toml or --memory-mb"
            )
        raise WorkerError(f"the job failed in the worker: {error['message']}")
    tail = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()[-5:]
    how = (
        f"was killed by signal {signal.Signals(-returncode).name}"
        if returncode < 0
        else f"exited with code {returncode}"
    )
    hint = ""
    if returncode in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT):
        hint = f" (out of memory under the {request.memory_mb} MB cap, or killed by the system?)"
    detail = (": " + " | ".join(tail)) if tail else ""
    raise WorkerError(f"the worker process crashed: it {how}{hint}{detail}")


# -- the child side ------------------------------------------------------------------------------
def apply_caps(request: WorkerRequest) -> None:
    """In the child, before any heavy import: cores, address space, priority, die with parent."""
    os.sched_setaffinity(0, request.cores)
    import resource

    limit = request.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if request.nice > current:  # only ever lower our priority (raising it needs privileges)
        os.setpriority(os.PRIO_PROCESS, 0, request.nice)
    # With autogroup scheduling (the default on desktop Linux), CPU is first shared fairly
    # between sessions and only then by nice inside one: our own session (start_new_session)
    # would get as much CPU as the owner's whole desktop. Its group nice fixes that (measured
    # in bench_idle: a never-paused worker slowed the foreground by ~20 % without it).
    with contextlib.suppress(OSError):  # no autogroup support: plain nice is all there is
        Path("/proc/self/autogroup").write_text(str(request.nice))
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _child_main(request_path: str, result_path: str) -> int:
    request = WorkerRequest.model_validate_json(Path(request_path).read_text())
    apply_caps(request)
    out = Path(result_path)
    try:
        module_name, _, function = request.entry.partition(":")
        entry = getattr(importlib.import_module(module_name), function)
        fields, output_bytes = entry(request.payload)
    except MemoryError as exc:
        _write_atomic(
            out, json.dumps({"kind": "memory", "message": str(exc) or "MemoryError"}).encode()
        )
        return _EXIT_ERROR
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        _write_atomic(out, json.dumps({"kind": "job", "message": message}).encode())
        return _EXIT_ERROR
    _write_atomic(Path(result_path + ".bin"), output_bytes)
    _write_atomic(out, json.dumps(fields).encode())  # last: its presence means complete
    return 0


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], sys.argv[2]))
