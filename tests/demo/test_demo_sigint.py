"""Ctrl-C (SIGINT) stops every process the demo started: anvil, nodes (and their job
workers), validators, the dashboard, the requester agent. None survives; the exit code is
130. A second demo right after starts clean (another run folder, other free ports)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = [pytest.mark.devnet, pytest.mark.slow]


def _descendants(pid: int) -> set[psutil.Process]:
    try:
        return set(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return set()


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # exited meanwhile
        return ""


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_sigint_stops_every_child_process(tmp_path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    err = tmp_path / "demo.err"
    with open(err, "wb") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "verimesh.cli.main", "demo", "--json", "--nodes", "2", "--cheaters", "0",
             "--jobs", "2", "--dashboard"],
            stdout=subprocess.PIPE, stderr=stderr, env=env,
        )  # fmt: skip
    seen: set[psutil.Process] = set()
    try:
        deadline = time.monotonic() + 240
        # Interrupt once the whole network is up: anvil, nodes, validators, dashboard, agent.
        while "nodes registered" not in err.read_text():
            assert demo.poll() is None, err.read_text()
            assert time.monotonic() < deadline, f"the demo did not bring its nodes up:\n{err.read_text()}"
            seen |= _descendants(demo.pid)
            time.sleep(0.2)
        time.sleep(1.0)
        seen |= _descendants(demo.pid)
        names = " ".join(_cmdline(p) for p in seen)
        for part in ("anvil", "node run", "validator run", "dashboard", "verimesh.demo.requester"):
            assert part in names, f"{part} was not running before the interrupt: {names}"
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, err.read_text()
    assert "every process the demo started has been stopped" in err.read_text()
    survivors = [p for p in seen if _alive(p)]
    assert not survivors, [_cmdline(p) for p in survivors]

    # Right after: a second demo starts clean and passes (one job, no cheater: quick).
    again = subprocess.run(
        [sys.executable, "-m", "verimesh.cli.main", "demo", "--json", "--nodes", "2", "--cheaters", "0",
         "--jobs", "1", "--no-dashboard"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert again.returncode == 0, f"{again.stdout[-2000:]}\n{again.stderr[-3000:]}"
    report = json.loads(again.stdout)
    assert report["ok"] and report["jobs_verified"] == 1, report
