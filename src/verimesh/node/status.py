"""Why is my node (not) working? The answer ``verimesh node status`` prints.

A running node keeps ``<home>/device.json`` current (``DeviceReporter``, once a second): the
idle verdict with its reason, the worker's state (running / paused / no job) and the caps.
Sampling the idle policy continuously also keeps its grace timer honest: a job that arrives
after an hour of quiet starts at once instead of waiting a fresh grace period.

``render_status(home)`` reads that file, the config, the self-benchmark cache and the
journal. When no node runs, it measures the idle policy right now instead, so the owner
still learns whether a node started now would work, and why not.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel
from rich.console import Group
from rich.table import Table
from rich.text import Text

from verimesh.node.config import CONFIG_NAME, ConfigError, IdlePolicy, NodeConfig, ResourceCaps
from verimesh.node.idle import IdleMonitor, IdleState
from verimesh.node.selfbench import load_cached
from verimesh.node.worker import WorkerProgress

REPORT_NAME = "device.json"
STALE_SECONDS = 10.0  # a report older than this comes from a node that is hung or gone


class DeviceReport(BaseModel):
    """What the running node says about the device (crosses to the status process)."""

    pid: int
    updated_at: float
    policy: IdlePolicy | None
    caps: ResourceCaps | None
    idle: IdleState | None
    worker: WorkerProgress | None  # None: no job in the worker right now
    worker_pid: int | None = None
    adversary: str | None = None  # the zoo behaviour a test/demo node runs (never advertised)


class DeviceReporter:
    """Writes ``device.json`` every ``interval`` seconds until ``stop``; removes it after.

    ``executor`` is the daemon's: its ``worker`` (``Worker``) and ``last_progress`` are read,
    both optional, so an in-process executor reports "no worker".
    """

    def __init__(
        self,
        home: Path,
        monitor: IdleMonitor | None,
        executor: Any,
        caps: ResourceCaps | None,
        interval: float = 1.0,
    ) -> None:
        self.path = home / REPORT_NAME
        self.monitor = monitor
        self.executor = executor
        self.caps = caps
        self.interval = interval

    def report(self) -> DeviceReport:
        worker = getattr(self.executor, "worker", None)
        progress = getattr(self.executor, "last_progress", None)
        running = worker is not None and worker.state != "idle"
        behaviour = getattr(self.executor, "behaviour", None)
        return DeviceReport(
            pid=os.getpid(),
            updated_at=time.time(),
            policy=self.monitor.policy if self.monitor is not None else None,
            caps=self.caps,
            idle=self.monitor.state() if self.monitor is not None else None,
            worker=progress if running else None,
            worker_pid=worker.pid if running else None,
            adversary=None if behaviour is None or behaviour == "honest" else str(behaviour),
        )

    def write(self) -> None:
        tmp = self.path.with_name(REPORT_NAME + ".tmp")
        tmp.write_text(self.report().model_dump_json())
        tmp.replace(self.path)

    def start(self, stop: threading.Event) -> threading.Thread:
        def loop() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):  # a full disk must not stop the node
                    self.write()
                stop.wait(self.interval)
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

        thread = threading.Thread(target=loop, name="device-report", daemon=True)
        thread.start()
        return thread


def read_report(home: Path) -> DeviceReport | None:
    """The running node's report, or None when no node runs (no file, dead pid, stale)."""
    path = home / REPORT_NAME
    try:
        report = DeviceReport.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None
    if not psutil.pid_exists(report.pid) or time.time() - report.updated_at > STALE_SECONDS:
        return None
    return report


def _headline(report: DeviceReport | None, idle: IdleState | None) -> Text:
    if report is not None and report.worker is not None:
        w = report.worker
        if w.state == "paused":
            return Text.assemble(
                ("PAUSED", "bold yellow"),
                f"  a job is frozen in the worker ({w.paused_seconds:.0f} s of {w.seconds:.0f} s): {w.reason}",
            )
        return Text.assemble(
            ("WORKING", "bold green"), f"  running a job for {w.seconds:.0f} s: {w.reason}"
        )
    if idle is None:
        return Text.assemble(
            ("READY", "bold green"), "  no idle policy: jobs run as soon as they arrive"
        )
    if idle.idle:
        what = "waiting for jobs" if report is not None else "a node started now would work"
        return Text.assemble(("IDLE", "bold green"), f"  {what}: {idle.reason}")
    what = "not taking jobs" if report is not None else "a node started now would wait"
    return Text.assemble(("NOT WORKING", "bold red"), f"  {what}: {idle.reason}")


def render_status(home: Path, measure_seconds: float = 1.0) -> Group:
    """Everything an owner asks about the node in ``home``, as a rich renderable."""
    report = read_report(home)
    lines: list[Any] = []
    config: NodeConfig | None = None
    try:
        config = NodeConfig.load(home / CONFIG_NAME, home=home)
    except ConfigError as exc:
        lines.append(Text(f"config: {exc}", style="red"))

    if report is not None:
        policy, caps, idle = report.policy, report.caps, report.idle
        age = time.time() - report.updated_at
        lines.append(Text(f"node running (pid {report.pid}, home {home}); checked {age:.0f} s ago"))
    else:
        policy = config.idle if config else None
        caps = config.caps if config else None
        idle = None
        if policy is not None:
            measuring = policy.model_copy(update={"check_seconds": measure_seconds})
            idle = IdleMonitor(measuring).state()
        lines.append(
            Text(f"no node running in {home}; idle policy measured now for {measure_seconds:g} s")
        )
    lines.append(_headline(report, idle))

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    if idle is not None:
        other = "?" if idle.other_cpu_percent is None else f"{idle.other_cpu_percent:.0f}%"
        table.add_row(
            "other CPU load", f"{other} of all cores (quiet for {idle.quiet_seconds:.0f} s)"
        )
        table.add_row("power", "battery" if idle.on_battery else "mains (or no battery)")
    if policy is not None:
        hours = ", ".join(policy.allowed_hours) if policy.allowed_hours else "any time"
        table.add_row(
            "idle policy",
            f"work while other CPU <= {policy.max_other_cpu_percent:g}% for {policy.grace_seconds:g} s; "
            f"on battery: {'yes' if policy.allow_on_battery else 'no'}; hours: {hours}",
        )
    if caps is not None:
        table.add_row("worker caps", f"{caps.cores} core(s), {caps.memory_mb} MB, nice {caps.nice}")
    if report is not None and report.worker_pid is not None:
        table.add_row("worker pid", str(report.worker_pid))
    if report is not None and report.adversary is not None:
        table.add_row("ADVERSARY", Text(f"{report.adversary}: this node cheats on purpose (tests, demos)", style="red"))
    bench = load_cached(home)
    if bench is not None:
        figures = f"exact int8 matmul {bench.matmul_gmacs:g} GMAC/s on {bench.cores} core(s)"
        if bench.model is not None:
            figures += f"; {bench.model['model']} {bench.model['tokens_per_second']:g} tokens/s"
        table.add_row("self-benchmark", f"{figures} (measured {bench.measured_at})")
    else:
        table.add_row("self-benchmark", "not measured yet (the node measures at its first start)")
    lines.append(table)
    journal_path = home / "journal.sqlite"
    if journal_path.is_file():
        lines.append(_journal_table(journal_path))
    return Group(*lines)


def _journal_table(path: Path, recent: int = 10) -> Group:
    from verimesh.node.journal import Journal

    journal = Journal(path)
    try:
        counts, cursor, duties = journal.counts(), journal.cursor(), journal.jobs()[-recent:]
    finally:
        journal.close()
    steps = ", ".join(f"{n} {step}" for step, n in sorted(counts.items())) or "none yet"
    summary = Text(f"jobs: {steps}; chain events read up to block {cursor}")
    table = Table()
    for column in ("job", "step", "output root", "note"):
        table.add_column(column)
    for duty in duties:
        table.add_row(str(duty.job_id), duty.step, (duty.output_root or "")[:18], duty.error or "")
    return Group(summary, table)
