"""`render_status`: what the owner reads, from a live node's report or measured on the spot."""

from __future__ import annotations

import contextlib
import io
import re
import threading
import time
from pathlib import Path

from rich.console import Console

from verimesh.node.config import IdlePolicy, ResourceCaps
from verimesh.node.idle import CpuSample, IdleMonitor
from verimesh.node.status import REPORT_NAME, DeviceReporter, read_report, render_status
from verimesh.node.worker import Worker, WorkerCancelled

MATMUL = "verimesh.node.selfbench:matmul_entry"


def _text(home: Path) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(render_status(home, measure_seconds=0.2))
    return out.getvalue()


class Busy:
    """A machine whose other processes use 1.5 of 2 cores (75%)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def sample(self) -> CpuSample:
        now = time.monotonic()
        return CpuSample(at=now, busy=1.5 * (now - self.start), own=0.0, cores=2)


class Executor:
    """The two attributes the reporter reads from the daemon's executor, on a real Worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.last_progress = None

    def progress(self, p: object) -> None:
        self.last_progress = p


def test_no_node_running_measures_the_policy_now(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        "[idle]\nmax_other_cpu_percent = 100\ngrace_seconds = 0\n[caps]\ncores = 1\nmemory_mb = 512\n"
    )
    text = _text(tmp_path)
    assert f"no node running in {tmp_path}" in text
    assert "a node started now would work" in text  # nothing exceeds 100%
    assert "1 core(s), 512 MB, nice 19" in text
    assert "not measured yet" in text


def test_bad_config_is_shown_not_raised(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text("[caps]\nnice = 40\n")
    assert "caps.nice = 40" in _text(tmp_path)


def test_a_running_node_reports_a_paused_job_and_why(tmp_path: Path) -> None:
    policy = IdlePolicy(max_other_cpu_percent=25, grace_seconds=0, check_seconds=0.05)
    monitor = IdleMonitor(policy, sampler=Busy().sample)
    caps = ResourceCaps(cores=1, memory_mb=768, nice=0)
    executor = Executor(Worker(caps, monitor=monitor))
    stop = threading.Event()

    def run_job() -> None:
        with contextlib.suppress(WorkerCancelled):  # the test cancels it at the end
            executor.worker.call(MATMUL, {"m": 64, "k": 64, "n": 64, "reps": 1}, executor.progress)

    job = threading.Thread(target=run_job, daemon=True)
    reporter = DeviceReporter(tmp_path, monitor, executor, caps, interval=0.05)
    thread = reporter.start(stop)
    try:
        job.start()
        deadline = time.monotonic() + 30
        while True:  # the owner's load keeps the job frozen; wait until the report shows it
            report = read_report(tmp_path)
            if report is not None and report.worker is not None and report.worker.state == "paused":
                break
            assert time.monotonic() < deadline, "the report never showed the paused job"
            time.sleep(0.05)
        text = _text(tmp_path)
        assert "PAUSED" in text and "other processes use 75% CPU (limit 25%)" in text
        assert re.search(rf"worker pid\s+{executor.worker.pid}\b", text)
    finally:
        executor.worker.cancel()
        job.join(timeout=30)
        stop.set()
        thread.join(timeout=5)
    assert not (tmp_path / REPORT_NAME).exists()  # a stopped node leaves no stale report
    assert "no node running" in _text(tmp_path)


def test_cli_status_shows_jobs_from_the_journal(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from verimesh.cli.node import app
    from verimesh.node.journal import Assignment, Journal

    journal = Journal(tmp_path / "journal.sqlite")
    root = "0x" + "ab" * 32
    journal.record_assignments(
        [
            Assignment(
                job_id=41, replica=0, requester="0x" + "11" * 20, spec_hash=root,
                model_root=root, input_root=root, commit_deadline=10, reveal_deadline=20,
            )
        ],
        99,
    )  # fmt: skip
    journal.close()
    result = CliRunner().invoke(app, ["status", "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no node running" in result.output
    assert "jobs: 1 assigned; chain events read up to block 99" in result.output
    assert "41" in result.output and "assigned" in result.output
