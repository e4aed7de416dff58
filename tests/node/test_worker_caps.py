"""The worker child: caps applied, pause/resume loses nothing, clear errors, cancel."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from verimesh.node.config import ResourceCaps
from verimesh.node.worker import Worker, WorkerCancelled, WorkerError

MATMUL = "verimesh.node.selfbench:matmul_entry"
# Tests run workers at nice 0: the test machine is saturated by design, and a worker at the
# node's default nice 19 (process and autogroup) would rightly get almost no CPU there.
# test_caps_are_applied_in_the_child checks that a nice value is applied.
# ~1-3 s of exact int8 products on one core of this machine (it depends on the load).
LONG = {"m": 256, "k": 1024, "n": 1024, "reps": 60}


def _run_in_thread(
    worker: Worker, payload: dict[str, Any]
) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = worker.call(MATMUL, payload)
        except Exception as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def _wait_for_child(worker: Worker) -> psutil.Process:
    deadline = time.monotonic() + 30
    while worker.pid is None:
        assert time.monotonic() < deadline, "the worker child did not start"
        time.sleep(0.01)
    return psutil.Process(worker.pid)


def test_pause_resume_loses_no_work() -> None:
    caps = ResourceCaps(cores=1, memory_mb=768, nice=0)
    plain = Worker(caps).call(MATMUL, LONG)

    worker = Worker(caps)
    thread, box = _run_in_thread(worker, LONG)
    child = _wait_for_child(worker)
    time.sleep(0.3)
    assert worker.pause() and not worker.pause()  # a second pause is a no-op
    assert worker.state == "paused"
    time.sleep(0.1)
    assert child.status() == psutil.STATUS_STOPPED
    cpu_before = sum(child.cpu_times()[:2])
    time.sleep(0.8)
    assert sum(child.cpu_times()[:2]) == cpu_before  # frozen: not one tick of CPU
    assert worker.resume() and not worker.resume()
    thread.join(timeout=120)
    assert "error" not in box, box.get("error")
    paused = box["result"]
    assert paused.fields["product_hash"] == plain.fields["product_hash"]
    assert paused.paused_seconds >= 0.8
    assert worker.state == "idle" and worker.pid is None


def test_caps_are_applied_in_the_child() -> None:
    caps = ResourceCaps(cores=1, memory_mb=700, nice=17)
    worker = Worker(caps)
    thread, box = _run_in_thread(worker, LONG)
    child = _wait_for_child(worker)
    try:
        deadline = time.monotonic() + 30
        while child.nice() != 17:  # apply_caps sets it last, before numpy is imported
            assert time.monotonic() < deadline, "the child never lowered its priority"
            time.sleep(0.02)
        assert child.cpu_affinity() == [max(os.sched_getaffinity(0))]
        assert child.nice() == 17
        assert child.rlimit(resource.RLIMIT_AS) == (700 << 20, 700 << 20)
        assert child.environ()["OPENBLAS_NUM_THREADS"] == "1"
        autogroup = Path(f"/proc/{child.pid}/autogroup")
        if autogroup.exists():  # its own session's scheduling group is deprioritised too
            assert autogroup.read_text().strip().endswith("nice 17")
    finally:
        worker.cancel()
        thread.join(timeout=60)
    assert isinstance(box.get("error"), WorkerCancelled)


def test_a_job_over_the_memory_cap_fails_clearly() -> None:
    worker = Worker(ResourceCaps(cores=1, memory_mb=400, nice=0))
    with pytest.raises(
        WorkerError, match=r"more memory than the worker's cap of 400 MB .*raise caps.memory_mb"
    ):
        worker.call(MATMUL, {"m": 8192, "k": 8192, "n": 8192, "reps": 1})


def test_a_crashed_worker_is_a_clear_error_and_the_next_job_runs() -> None:
    worker = Worker(ResourceCaps(cores=1, memory_mb=768, nice=0))
    thread, box = _run_in_thread(worker, LONG)
    child = _wait_for_child(worker)
    child.send_signal(signal.SIGKILL)  # what the kernel's OOM killer does
    thread.join(timeout=60)
    error = box.get("error")
    assert isinstance(error, WorkerError) and not isinstance(error, WorkerCancelled)
    assert "crashed: it was killed by signal SIGKILL" in str(error)
    result = worker.call(MATMUL, {"m": 64, "k": 64, "n": 64, "reps": 1})
    assert len(result.fields["product_hash"]) == 64


def test_a_failing_job_reports_the_exception() -> None:
    with pytest.raises(WorkerError, match=r"failed in the worker: KeyError: 'reps'"):
        Worker(ResourceCaps(cores=1, memory_mb=512, nice=0)).call(MATMUL, {"m": 4, "k": 4, "n": 4})


def test_cancel_while_paused_and_stop_event() -> None:
    worker = Worker(ResourceCaps(cores=1, memory_mb=768, nice=0))
    worker.cancel()  # nothing runs: no effect on the next job
    assert (
        len(worker.call(MATMUL, {"m": 8, "k": 8, "n": 8, "reps": 1}).fields["product_hash"]) == 64
    )
    thread, box = _run_in_thread(worker, LONG)
    _wait_for_child(worker)
    worker.pause()
    worker.cancel()
    thread.join(timeout=60)
    assert isinstance(box.get("error"), WorkerCancelled)

    stop = threading.Event()
    stopping = Worker(ResourceCaps(cores=1, memory_mb=768, nice=0), stop=stop)
    thread, box = _run_in_thread(stopping, LONG)
    child = _wait_for_child(stopping)
    stop.set()
    thread.join(timeout=60)
    assert isinstance(box.get("error"), WorkerCancelled)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_real_model_job_paused_midway_commits_to_the_same_output_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # models.api.run_job on the shipped tiny decoder (its model store in a temporary home).
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    entry, payload = "verimesh.node.selfbench:tiny_model_entry", {"max_tokens": 240}
    caps = ResourceCaps(cores=1, memory_mb=1024, nice=0)
    plain = Worker(caps).call(entry, payload)
    assert plain.fields["tokens"] > 0

    worker = Worker(caps)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=worker.call(entry, payload)))
    thread.start()
    child = _wait_for_child(worker)
    deadline = time.monotonic() + 60
    # Well into the job but far from its end: on an idle machine the whole job takes only a
    # few CPU seconds (imports, model load, 240 tokens), so the freezes start early and let
    # it run only briefly between them.
    while sum(child.cpu_times()[:2]) < 0.5:
        assert time.monotonic() < deadline, "the job never got going"
        time.sleep(0.02)
    for _ in range(3):  # freeze it several times mid-job
        assert worker.pause()
        time.sleep(0.3)
        assert worker.resume()
        time.sleep(0.03)
    thread.join(timeout=120)
    result = box["result"]
    assert result.paused_seconds >= 0.9
    assert result.fields["output_root"] == plain.fields["output_root"]
    assert result.fields["tokens"] == plain.fields["tokens"]
