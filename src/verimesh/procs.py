"""Process facts every part needs, answered one way (the bottom of the stack: imports nothing).

``pid_alive`` is asked before signalling a pid read from a file (the devnet's anvil), before
deleting another process's temporary file (the blob store), and while waiting for a child
to go. A zombie is dead for all of them: it has exited and only waits for its parent to
collect its exit code; it holds no files, computes nothing and will never answer.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and has not exited (a zombie has exited)."""
    if pid <= 0:  # kill(0) / kill(-n) address process groups, not one process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return process_state(pid) not in ("Z", "X", None)


def process_state(pid: int) -> str | None:
    """The one-letter state of ``/proc/<pid>/stat`` (R, S, D, T, Z, ...), or None when gone.

    Without /proc (not Linux) a process that answered signal 0 is reported as running ("R").
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else "R"
    except OSError:
        return None
    # "pid (command) state ...": the command may itself contain ") ", so split at the last one
    return stat.rsplit(") ", 1)[-1][:1] or None


class FolderInUse(RuntimeError):
    """Another live process already works in this state folder."""


def hold_folder(folder: Path, what: str) -> IO[str]:
    """Lock ``folder`` for this process's lifetime, or say which process holds it.

    Two daemons on one state folder (say two validators started without ``--home``) would
    share one journal and each act on the other's duties. The lock is an ``flock`` on
    ``folder/lock``: the kernel drops it when the process dies, even by SIGKILL, so a
    crashed daemon never leaves a stale lock behind. Keep the returned file open.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / "lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FolderInUse(
            f"{folder} is in use by a running {what} (pid {holder}); stop it, or give this "
            f"one its own folder with --home"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


__all__ = ["FolderInUse", "hold_folder", "pid_alive", "process_state"]
