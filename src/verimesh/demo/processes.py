"""Every process the demo starts, and the one way it stops them: no orphans, ever.

Each child runs in its own process group (its own session), so a Ctrl-C in the terminal
reaches only the demo, which then stops the children in order; and the node's job worker,
which puts itself in yet another group, is found through the process tree (psutil) rather
than trusted to follow its parent. On Linux every child also gets ``PR_SET_PDEATHSIG``:
if the demo itself is killed with SIGKILL, the kernel sends the direct children SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1
# Loaded here, not in the child: after fork() only async-signal-safe work is allowed.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def verimesh_command(*args: str) -> list[str]:
    """``verimesh ARGS`` with this interpreter: the same venv and package as the demo."""
    return [sys.executable, "-m", "verimesh.cli.main", *args]


@dataclass
class Child:
    """One started process: its name in the demo, how it was started and where it logs."""

    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The process and every descendant (job workers included), best effort."""
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Supervisor:
    """Starts, hard-kills, restarts and finally stops the demo's child processes."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, Child] = {}
        self._seen: set[psutil.Process] = set()  # every process of the demo ever observed

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        if name in self.children and self.children[name].alive():
            raise RuntimeError(f"{name} is already running (pid {self.children[name].pid})")
        child = self.children.get(name) or Child(
            name, args, self.log_dir / f"{name}.log", {**os.environ, **(env or {})}
        )
        self.children[name] = child
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log, "ab") as out:
            child.process = subprocess.Popen(
                child.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child.env,
                start_new_session=True,  # its own group: the terminal's Ctrl-C goes to the demo only
                preexec_fn=_die_with_parent,
            )
        self.remember(child)

    def remember(self, child: Child) -> None:
        """Note the child's current process tree, so that stop_all finds workers whose
        parent has already died (they are re-parented and no longer in its tree)."""
        self._seen.update(child.tree())

    def kill_hard(self, name: str) -> None:
        """SIGKILL the child and all its descendants at once: a device losing power."""
        child = self.children[name]
        procs = child.tree()
        self._seen.update(procs)
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(procs, timeout=5)
        if child.process is not None:
            child.process.wait(timeout=5)

    def restart(self, name: str) -> Child:
        child = self.children[name]
        if child.alive():
            raise RuntimeError(f"{name} is still running; stop it first")
        child.restarts += 1
        self._spawn(child)
        return child

    def stop(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM the child's group (a clean shutdown), then SIGKILL what is left."""
        child = self.children[name]
        procs = child.tree()
        self._seen.update(procs)
        if child.alive():
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        if child.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)

    def stop_all(self, timeout: float = 10.0) -> list[int]:
        """Stop every child (reverse start order), then any straggler ever seen. Returns
        the pids still alive afterwards (empty unless something resisted SIGKILL)."""
        for child in self.children.values():
            self.remember(child)
        names = list(self.children)
        for name in names:  # SIGTERM all first: they shut down in parallel
            child = self.children[name]
            if child.alive():
                assert child.process is not None
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        for name in reversed(names):
            self.stop(name, timeout)
        stragglers = [p for p in self._seen if _running(p)]
        for proc in stragglers:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(stragglers, timeout=5)
        return [p.pid for p in self._seen if _running(p)]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
