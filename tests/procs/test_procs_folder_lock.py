"""A daemon's state folder belongs to one live process: a second daemon started on it is
refused with the holder's pid, and a holder killed with SIGKILL leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verimesh.cli.main import app
from verimesh.procs import FolderInUse, hold_folder

HOLDER = (
    "import sys, time; from pathlib import Path; from verimesh.procs import hold_folder; "
    "h = hold_folder(Path(sys.argv[1]), 'validator'); print('held', flush=True); time.sleep(120)"
)


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "home")
    try:
        with pytest.raises(FolderInUse, match=rf"in use by a running validator \(pid {proc.pid}\).*--home"):
            hold_folder(tmp_path / "home", "validator")
    finally:
        proc.kill()
        proc.wait()


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "home")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    handle = hold_folder(tmp_path / "home", "node")
    assert (tmp_path / "home" / "lock").read_text() == str(os.getpid())
    handle.close()


def test_validator_run_on_a_folder_in_use_says_so(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "validator")
    try:
        result = CliRunner().invoke(
            app, ["validator", "run", "--home", str(tmp_path / "validator"), "--dev", "dev5",
                  "--deployment", str(tmp_path / "missing.json")],
        )  # fmt: skip
        assert result.exit_code == 2
        assert f"pid {proc.pid}" in result.output and "--home" in result.output
    finally:
        proc.kill()
        proc.wait()
