"""`verimesh.procs.pid_alive`: the one answer to "is this process still there?" (zombie = dead)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from verimesh.chain import devnet
from verimesh.procs import pid_alive, process_state
from verimesh.store import local


def test_running_exited_and_zombie_processes() -> None:
    assert pid_alive(os.getpid())
    assert process_state(os.getpid()) == "R"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    # Exited but not reaped: a zombie. Still in the process table, yet it is not alive.
    while process_state(child.pid) != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid) and process_state(child.pid) is None


def test_group_addresses_are_not_processes() -> None:
    # os.kill(0, 0) would succeed (it signals our own process group): never "alive".
    assert not pid_alive(0) and not pid_alive(-1)


def test_the_devnet_and_the_blob_store_use_it() -> None:
    assert devnet.pid_alive is pid_alive
    assert local.pid_alive is pid_alive
