"""Run jobs in one long-lived, capped, low-priority child process that the idle policy can freeze.

Why a child process and not a thread: the owner's limits (cores, memory, priority) are
per-process kernel settings, a frozen process (SIGSTOP) keeps every byte of its state and
continues exactly where it stopped (SIGCONT), and a job that runs out of memory or crashes
takes down the worker, never the node.

Why ONE child for many jobs: starting Python, importing numpy and the runtime and loading a
model cost more than a small job itself (docs/bench-worker.md measures both). The child
(``python -m verimesh.node.worker CAPS``) serves requests one after another and keeps the
models it loaded in a cache bounded by bytes inside its memory cap (least recently used go
first). It starts on the first ``call`` (or ``start()``); one that crashed, was killed or
hit its memory cap is replaced by a fresh one on the next call; ``close()``, the node's
stop event or the node's death end it.

Caps, applied by the child to itself before it imports numpy: it pins itself to
``caps.cores`` cores (``sched_setaffinity``), caps its address space (``RLIMIT_AS``: numpy
reports an allocation over the cap as a clean ``MemoryError`` instead of the kernel's OOM
killer shooting something), lowers its priority (``nice``) and asks the kernel to kill it
when the node dies (``PR_SET_PDEATHSIG``). BLAS gets one thread per allowed core through
the environment (set before the child starts, the only moment BLAS reads it), and glibc at
most two malloc arenas so that threads do not reserve the address space the cap is for.

Priority. The child runs in its own session (one signal freezes all of it), so with Linux
autogroup scheduling (the default: ``/proc/sys/kernel/sched_autogroup_enabled``) the CPU is
shared between sessions first and by nice only inside one: the session's group nice is what
counts. Group nice 19 all the time starved jobs on a busy machine (a warm 0.1 s job took
19 s next to a CPU hog, and 83 s with the process start and model load of a fresh worker). So the worker's group gets ``caps.nice`` while the owner is active (the
idle verdict says busy: the job is frozen then anyway) and ``RUNNING_GROUP_NICE`` while the
idle policy lets it work; without an idle policy ``caps.nice`` holds throughout.

Protocol: a request and its result are files in the worker's folder, announced by one short
line on a pipe each way (``"seq"`` to the child's stdin, ``"seq status"`` back on its notify
pipe). The node waits for the notify line with a timeout, so a frozen child never blocks
it, and a line is far below a pipe's buffer, so neither side ever blocks writing.

A request names an entry ``"module:function"`` called as ``function(payload) -> (dict,
bytes)``: the node's job entry is ``node.execute:execute_entry``, the self-benchmark has its
own.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from verimesh.node.config import ResourceCaps

WorkerStateName = Literal["idle", "running", "paused"]
# Group nice while the idle policy lets the job run. bench/bench_worker.py (docs/bench-worker.md),
# a warm MiniLM job next to a 2-process CPU hog on 2 cores: 18.8 s at group nice 19, 2.0 s at
# 10, 0.63 s at 5, 0.30 s at 0; the owner's foreground slowed +8.8 % (noise: no job ran), +13 %
# at 5, +38 % at 0. Five: jobs finish, and the owner keeps most of the machine.
RUNNING_GROUP_NICE = 5
_POLL = 0.05  # seconds between checks of the child when no idle monitor paces the loop
_CLOSE_GRACE = 2.0  # seconds a closed child gets to exit by itself before SIGKILL
_LOG_LIMIT = 1 << 20  # the child's stderr log is emptied between jobs beyond this size
_EXIT_MEMORY = 3  # the child leaves after a MemoryError: a fresh process is the clean state


class WorkerError(RuntimeError):
    """The job did not produce a result here: the message says why (and what to change)."""


class WorkerCancelled(WorkerError):
    """``cancel()`` or the node's stop event ended the job; nothing was produced."""


class WorkerResult(BaseModel):
    """What the entry produced: JSON-able ``fields`` and the raw ``output_bytes``."""

    fields: dict[str, Any]
    output_bytes: bytes = b""
    seconds: float  # wall time of the job, pauses included
    paused_seconds: float = 0.0
    pid: int  # the worker process that ran it
    models_loaded: int = 0  # models the child loaded for this job (0: all came from its cache)
    cached_models: int = 0  # models in the child's cache after the job
    cache_bytes: int = 0  # their array bytes


class WorkerRequest(BaseModel):
    """One job for the child (``request.json``)."""

    seq: int
    entry: str
    payload: dict[str, Any]


class ChildCaps(BaseModel):
    """The child's only argument: the caps it applies to itself first, and where to talk."""

    cores: list[int]
    memory_mb: int
    nice: int
    cache_bytes: int
    parent_pid: int
    notify_fd: int
    folder: str


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


@dataclass
class _Child:
    """One live worker process as the node sees it."""

    proc: subprocess.Popen[bytes]
    notify: int  # read end of the child's notify pipe
    served: int = 0  # requests it answered (a fresh child has served none)
    ready: bool = False  # it applied its caps (and set its own group nice): ours to change now
    group_nice: int | None = None  # its session's autogroup nice as last set
    wanted_nice: int | None = None  # what the node wants it to be
    log_offset: int = 0  # where this job's stderr starts in the log
    buffer: bytes = b""
    closed: bool = False


@dataclass
class _Holder:
    """The current child, in a box the finalizer can reach without keeping the Worker alive."""

    child: _Child | None = None
    pipes: list[int] = field(default_factory=list)


class Worker:
    """Runs jobs one at a time in a long-lived child process. ``pause``/``resume``/``cancel``
    are safe to call from any thread while ``call`` blocks in another.

    With an ``IdleMonitor`` the worker freezes the job whenever the owner needs the machine
    and continues it when the policy allows again; with a ``stop`` event, setting it cancels
    the job and ends the child (the node is shutting down). ``model_cache_mb`` bounds the
    child's model cache (default: half of ``caps.memory_mb``).
    """

    def __init__(
        self,
        caps: ResourceCaps,
        monitor: Any | None = None,  # IdleMonitor; Any keeps this module import-light for the child
        stop: threading.Event | None = None,
        model_cache_mb: int | None = None,
    ) -> None:
        self.caps = caps
        self.monitor = monitor
        self.stop = stop
        self.model_cache_mb = caps.memory_mb // 2 if model_cache_mb is None else model_cache_mb
        self._lock = threading.Lock()  # the child, the state and the counters below
        self._calls = threading.Lock()  # one job at a time
        self._state: WorkerStateName = "idle"
        self._cancelled = False
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._seq = 0
        self._autogroup = True  # False once the kernel refused: plain nice is all there is
        self._folder = Path(tempfile.mkdtemp(prefix="verimesh-worker-"))
        self._wake_r, self._wake_w = os.pipe()  # cancel() interrupts the supervisor's wait
        self._box = _Holder(pipes=[self._wake_r, self._wake_w])
        weakref.finalize(self, _release, self._box, self._folder)
        if stop is not None:
            threading.Thread(
                target=_close_on_stop, args=(stop, weakref.ref(self)), daemon=True,
                name="worker-stop",
            ).start()  # fmt: skip

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> WorkerStateName:
        return self._state

    @property
    def pid(self) -> int | None:
        """The child's pid while it lives (the same across jobs), for status displays and tests."""
        child = self._box.child
        return None if child is None or child.proc.returncode is not None else child.proc.pid

    # -- life of the child --------------------------------------------------------------------
    def start(self) -> int:
        """Start the child now (it imports the runtime while the node does other work); its pid."""
        with self._lock:
            return self._ensure_child().proc.pid

    def close(self) -> None:
        """End the child: a running job is cancelled, an idle child exits. A later ``call``
        starts a new one."""
        self.cancel()
        with self._lock:
            child = self._box.child
            if child is None or self._state != "idle":
                return  # the running call discards its cancelled child itself
            self._box.child = None
        _stop_child(child)

    # -- control (any thread) -------------------------------------------------------------------
    def pause(self) -> bool:
        """Freeze the job (SIGSTOP to the child's process group). False if none runs or already paused."""
        with self._lock:
            child = self._box.child
            if child is None or self._state != "running":
                return False
            _signal_group(child.proc, signal.SIGSTOP)
            self._state = "paused"
            self._paused_at = time.monotonic()
            self._set_group_nice(child, self.caps.nice)  # the owner is active
            return True

    def resume(self) -> bool:
        """Continue a frozen job exactly where it stopped (SIGCONT)."""
        with self._lock:
            child = self._box.child
            if child is None or self._state != "paused":
                return False
            self._set_group_nice(child, self._running_nice())
            _signal_group(child.proc, signal.SIGCONT)
            self._state = "running"
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None
            return True

    def cancel(self) -> None:
        """Kill the running job (frozen or not); ``call`` raises ``WorkerCancelled``.
        Without a running job this does nothing (it does not poison the next job)."""
        with self._lock:
            child = self._box.child
            if child is None or self._state == "idle":
                return
            self._cancelled = True
            _signal_group(child.proc, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # -- running a job --------------------------------------------------------------------------
    def call(
        self,
        entry: str,
        payload: dict[str, Any],
        on_progress: Callable[[WorkerProgress], None] | None = None,
    ) -> WorkerResult:
        """Run ``entry(payload)`` in the capped child; raises ``WorkerError`` with the reason.

        A ``MemoryError`` in a child that had served earlier jobs (its cache holds models) is
        retried once in a fresh child: the job may fit where the cache is empty.
        """
        with self._calls:
            if self.stop is not None and self.stop.is_set():
                raise WorkerCancelled("the node is stopping: the job was not started")
            self._seq += 1
            request = WorkerRequest(seq=self._seq, entry=entry, payload=payload)
            _write_atomic(self._folder / "request.json", request.model_dump_json().encode())
            started = time.monotonic()
            self._paused_total = 0.0
            retried = False
            while True:
                child = self._send(request)
                try:
                    status = self._supervise(child, request.seq, started, on_progress)
                finally:
                    cancelled, paused = self._finish(child)
                if cancelled:
                    raise WorkerCancelled(
                        "the job was cancelled (the node is stopping or was told to)"
                    )
                if status == "memory" and child.served > 0 and not retried:
                    retried = True
                    self._discard(child)
                    continue
                return self._collect(child, request, status, time.monotonic() - started, paused)

    def _send(self, request: WorkerRequest) -> _Child:
        """Hand the request to a live child (a fresh one if the last died while idle)."""
        with self._lock:
            for _ in range(2):
                child = self._ensure_child()
                log = self._folder / "worker.log"
                if log.stat().st_size > _LOG_LIMIT:
                    os.truncate(log, 0)  # the child appends: it continues at the new end
                child.log_offset = log.stat().st_size
                assert child.proc.stdin is not None
                try:
                    child.proc.stdin.write(f"{request.seq}\n".encode())
                    child.proc.stdin.flush()
                except OSError:  # it died since the last job: replace it
                    self._box.child = None
                    _stop_child(child)
                    continue
                self._state, self._paused_at = "running", None
                return child
        raise WorkerError(f"the worker process could not be started: {_log_tail(self._folder, 0)}")

    def _supervise(
        self,
        child: _Child,
        seq: int,
        started: float,
        on_progress: Callable[[WorkerProgress], None] | None,
    ) -> str:
        """Wait for the child's answer, pausing/resuming it by the idle verdict; its status
        ("ok", "error", "memory"), or "died" when the child went away without one."""
        while True:
            if self.stop is not None and self.stop.is_set():
                self.cancel()
            reason = "no idle policy"
            if self.monitor is not None and not self._cancelled:
                verdict = self.monitor.state()
                reason = verdict.reason
                if verdict.idle:
                    self.resume()
                else:
                    self.pause()
            with self._lock:  # (again, if the kernel asked us to retry a change)
                if self._state == "running":
                    self._set_group_nice(child, self._running_nice())
            if on_progress is not None:
                with self._lock:
                    paused = self._paused_now()
                    state = self._state
                on_progress(
                    WorkerProgress(
                        state=state,
                        seconds=time.monotonic() - started,
                        paused_seconds=paused,
                        reason=reason,
                    )
                )
            interval = self.monitor.policy.check_seconds if self.monitor is not None else _POLL
            status = self._read_status(child, seq, interval)
            if status is not None:
                return status

    def _read_status(self, child: _Child, seq: int, timeout: float) -> str | None:
        poller = select.poll()  # not select(): a busy node may hold fds above FD_SETSIZE
        poller.register(child.notify, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(timeout * 1000)}
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)
        if child.notify in ready:  # data, or the end of file of a child that died (POLLHUP)
            data = os.read(child.notify, 4096)
            if not data:
                return "died"
            child.buffer += data
        while b"\n" in child.buffer:
            line, _, child.buffer = child.buffer.partition(b"\n")
            answered, _, status = line.decode().partition(" ")
            if status == "ready":
                with self._lock:
                    child.ready = True
                    if child.wanted_nice is not None:
                        self._set_group_nice(child, child.wanted_nice)
            elif int(answered) == seq:
                return status
        return None

    def _finish(self, child: _Child) -> tuple[bool, float]:
        """The job is over (answered, died or cancelled): never leave the child frozen."""
        with self._lock:
            if self._state == "paused":
                _signal_group(child.proc, signal.SIGCONT)
            paused = self._paused_now()
            cancelled, self._cancelled = self._cancelled, False
            self._state, self._paused_at = "idle", None
            self._paused_total = paused
        if cancelled:
            self._discard(child)
        return cancelled, paused

    def _collect(
        self, child: _Child, request: WorkerRequest, status: str, seconds: float, paused: float
    ) -> WorkerResult:
        result_path = self._folder / "result.json"
        if status in ("ok", "error", "memory"):
            answer = json.loads(result_path.read_text())
            if answer.get("seq") != request.seq:
                raise WorkerError(
                    f"the worker answered request {answer.get('seq')}, not {request.seq}"
                )
            if status == "ok":
                child.served += 1
                return WorkerResult(
                    fields=answer["fields"],
                    output_bytes=(self._folder / "result.bin").read_bytes(),
                    seconds=seconds,
                    paused_seconds=paused,
                    pid=child.proc.pid,
                    models_loaded=answer["models_loaded"],
                    cached_models=answer["cached_models"],
                    cache_bytes=answer["cache_bytes"],
                )
            if status == "error":
                child.served += 1  # the entry raised; the child itself is fine
                raise WorkerError(f"the job failed in the worker: {answer['message']}")
            self._discard(child)  # it leaves after a MemoryError
            raise WorkerError(
                f"the job needs more memory than the worker's cap of {self.caps.memory_mb} MB "
                f"({answer['message']}); raise caps.memory_mb in node.toml or --memory-mb"
            )
        # No answer: the child died (killed by a signal, crashed in native code).
        self._discard(child)
        returncode = child.proc.returncode
        assert returncode is not None  # reaped by _discard
        how = (
            f"was killed by signal {signal.Signals(-returncode).name}"
            if returncode < 0
            else f"exited with code {returncode}"
        )
        hint = ""
        if returncode in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT):
            hint = (
                f" (out of memory under the {self.caps.memory_mb} MB cap, or killed by the system?)"
            )
        tail = _log_tail(self._folder, child.log_offset)
        detail = f": {tail}" if tail else ""
        raise WorkerError(f"the worker process crashed: it {how}{hint}{detail}")

    # -- helpers (call with self._lock held where noted) ------------------------------------------
    def _ensure_child(self) -> _Child:
        """Under the lock: the live child, starting one if there is none."""
        child = self._box.child
        if child is not None and child.proc.poll() is None:
            return child
        if child is not None:
            _stop_child(child)
        notify_r, notify_w = os.pipe()
        cores = pick_cores(self.caps.cores)
        caps = ChildCaps(
            cores=cores,
            memory_mb=self.caps.memory_mb,
            nice=self.caps.nice,
            cache_bytes=self.model_cache_mb << 20,
            parent_pid=os.getpid(),
            notify_fd=notify_w,
            folder=str(self._folder),
        )
        try:
            with open(self._folder / "worker.log", "ab") as log:
                proc = _SPAWNER.popen(
                    [sys.executable, "-m", "verimesh.node.worker", caps.model_dump_json()],
                    env=_child_env(len(cores)),
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=log,
                    pass_fds=(notify_w,),
                    start_new_session=True,  # its own process group and scheduling autogroup
                )
        except BaseException:
            os.close(notify_r)
            raise
        finally:
            os.close(notify_w)  # the child holds it now: its exit is our end of file
        # The child sets its own group to caps.nice first thing (its start-up is not starved
        # behind that) and says "ready"; changing it before then could be overwritten.
        child = _Child(proc=proc, notify=notify_r, group_nice=self.caps.nice)
        self._box.child = child
        return child

    def _discard(self, child: _Child) -> None:
        """Forget a child that ended (or must end) and reap it."""
        with self._lock:
            if self._box.child is child:
                self._box.child = None
        _stop_child(child)

    def _running_nice(self) -> int:
        return (
            min(self.caps.nice, RUNNING_GROUP_NICE) if self.monitor is not None else self.caps.nice
        )

    def _set_group_nice(self, child: _Child, nice: int) -> None:
        """Under the lock: the autogroup nice of the child's session (only on a change)."""
        child.wanted_nice = nice
        if not child.ready or not self._autogroup or child.group_nice == nice:
            return
        if child.proc.returncode is not None:
            return
        try:
            Path(f"/proc/{child.proc.pid}/autogroup").write_text(str(nice))
        except BlockingIOError:
            return  # the kernel allows ten changes a second system-wide: next check retries
        except OSError:
            self._autogroup = False  # no autogroup scheduling here: the process nice rules
            return
        child.group_nice = nice

    def _paused_now(self) -> float:
        ongoing = time.monotonic() - self._paused_at if self._paused_at is not None else 0.0
        return self._paused_total + ongoing


# -- node-side helpers ----------------------------------------------------------------------------
class _Spawner:
    """Starts worker children from one thread that lives as long as the node process.

    Why: ``PR_SET_PDEATHSIG`` fires when the THREAD that forked the child exits, not the
    process. A long-lived child started from a short-lived thread (a request handler, an
    executor's worker thread) would be killed with that thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.Queue[
            tuple[list[str], dict[str, Any], dict[str, Any], threading.Event]
        ] = queue.Queue()
        self._thread: threading.Thread | None = None

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="worker-spawner", daemon=True
                )
                self._thread.start()
        box: dict[str, Any] = {}
        done = threading.Event()
        self._requests.put((args, kwargs, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["proc"]

    def _serve(self) -> None:
        while True:
            args, kwargs, box, done = self._requests.get()
            try:
                box["proc"] = subprocess.Popen(args, **kwargs)
            except BaseException as exc:
                box["error"] = exc
            done.set()


_SPAWNER = _Spawner()


def _close_on_stop(stop: threading.Event, ref: weakref.ref[Worker]) -> None:
    stop.wait()
    worker = ref()
    if worker is not None:
        worker.close()


def _stop_child(child: _Child) -> None:
    """End of input, then SIGKILL if it does not exit in time; reaps it and closes our pipes."""
    if child.closed:
        return
    child.closed = True
    if child.proc.stdin is not None:
        with contextlib.suppress(OSError):
            child.proc.stdin.close()
    _signal_group(child.proc, signal.SIGCONT)  # a frozen child cannot read its end of input
    try:
        child.proc.wait(timeout=_CLOSE_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(child.proc, signal.SIGKILL)
        child.proc.wait()
    with contextlib.suppress(OSError):
        os.close(child.notify)


def _release(box: _Holder, folder: Path) -> None:
    """Finalizer of a Worker: its child, pipes and folder go with it."""
    if box.child is not None:
        _stop_child(box.child)
    for fd in box.pipes:
        with contextlib.suppress(OSError):
            os.close(fd)
    shutil.rmtree(folder, ignore_errors=True)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is not None:
        return  # reaped: its pid (and group id) may belong to another process by now
    with contextlib.suppress(ProcessLookupError, PermissionError):  # it just exited
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


def _log_tail(folder: Path, offset: int) -> str:
    try:
        with open(folder / "worker.log", "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-5:])


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# -- the child side ------------------------------------------------------------------------------
def apply_caps(caps: ChildCaps) -> None:
    """In the child, before any heavy import: cores, address space, priority, die with parent."""
    os.sched_setaffinity(0, caps.cores)
    import resource

    limit = caps.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Our session's scheduling group (see the module docstring): lowest until the node,
    # told we are ready, raises it for a job the idle policy lets run.
    with contextlib.suppress(OSError):  # no autogroup support: plain nice is all there is
        Path("/proc/self/autogroup").write_text(str(caps.nice))
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if caps.nice > current:  # only ever lower our priority (raising it needs privileges)
        os.setpriority(os.PRIO_PROCESS, 0, caps.nice)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != caps.parent_pid:  # the node died before the line above took effect
        os._exit(1)


def array_bytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Bytes of the numpy arrays reachable from ``obj`` through attributes and containers,
    each buffer counted once: what a loaded model really holds in memory."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen or _depth > 16 or isinstance(obj, str | bytes | int | float | bool | type):
        return 0
    seen.add(id(obj))
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen and base is not obj:
            return 0
        seen.add(id(base))
        return int(base.nbytes)
    if isinstance(obj, dict):
        items: list[Any] = list(obj.values())
    elif isinstance(obj, list | tuple | set | frozenset):
        items = list(obj)
    else:
        items = list(getattr(obj, "__dict__", {}).values())
        for slot in getattr(type(obj), "__slots__", ()):
            if isinstance(slot, str) and hasattr(obj, slot):
                items.append(getattr(obj, slot))
    return sum(array_bytes(item, seen, _depth + 1) for item in items)


class ModelCache(OrderedDict[Any, Any]):
    """The child's loaded models, least recently used first, bounded by their array bytes.

    ``models.api`` keeps every loaded model in a plain module-level dict: right for one CLI
    run, unbounded for a worker that lives for days. The child puts this mapping in its
    place (same protocol: ``in``, ``[key]``, ``[key] = model``), so a model stays loaded
    across jobs and the oldest go once the budget is passed. The newest model always stays,
    even alone over budget: it is the one the next job most likely needs.
    """

    def __init__(self, budget_bytes: int) -> None:
        super().__init__()
        self.budget_bytes = budget_bytes
        self.sizes: dict[Any, int] = {}
        self.loads = 0

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        self.sizes[key] = array_bytes(value)
        self.loads += 1
        evicted = False
        while self.total_bytes > self.budget_bytes and len(self) > 1:
            del self[next(iter(self))]
            evicted = True
        if evicted:
            gc.collect()  # give the arrays back now, not at some later collection

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.sizes.pop(key, None)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def _install_model_cache(budget_bytes: int) -> ModelCache | None:
    """Preload the models API (the imports every job needs) and bound its model cache."""
    try:
        from verimesh.models import api
    except Exception as exc:  # a worker for other entries still works: say why, carry on
        print(f"worker: no model cache ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    cache = ModelCache(budget_bytes)
    api.use_model_cache(cache)
    return cache


def _answer(request: WorkerRequest, folder: Path, cache: ModelCache | None) -> str:
    """Run one request; write its result file; its status word."""
    out = folder / "result.json"
    loads = cache.loads if cache is not None else 0
    try:
        module_name, _, function = request.entry.partition(":")
        entry = getattr(importlib.import_module(module_name), function)
        fields, output_bytes = entry(request.payload)
    except MemoryError as exc:
        message = str(exc) or "MemoryError"
        _write_atomic(out, json.dumps({"seq": request.seq, "message": message}).encode())
        return "memory"
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        _write_atomic(out, json.dumps({"seq": request.seq, "message": message}).encode())
        return "error"
    answer = {
        "seq": request.seq,
        "fields": fields,
        "models_loaded": (cache.loads - loads) if cache is not None else 0,
        "cached_models": len(cache) if cache is not None else 0,
        "cache_bytes": cache.total_bytes if cache is not None else 0,
    }
    _write_atomic(folder / "result.bin", output_bytes)
    _write_atomic(out, json.dumps(answer).encode())  # last: the notify line follows it
    return "ok"


def _child_main(caps_json: str) -> int:
    caps = ChildCaps.model_validate_json(caps_json)
    apply_caps(caps)
    notify = os.fdopen(caps.notify_fd, "wb", buffering=0)
    notify.write(b"0 ready\n")
    folder = Path(caps.folder)
    cache = _install_model_cache(caps.cache_bytes)
    for line in sys.stdin.buffer:  # end of input: the node closed us (or died)
        seq = int(line)
        request = WorkerRequest.model_validate_json((folder / "request.json").read_text())
        if request.seq != seq:
            raise RuntimeError(f"request file holds {request.seq}, the node announced {seq}")
        status = _answer(request, folder, cache)
        notify.write(f"{seq} {status}\n".encode())
        if status == "memory":
            return _EXIT_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
