"""The local devnet: a real anvil node on 127.0.0.1, started and stopped by verimesh.

``verimesh devnet up`` starts anvil detached (its own session, log and pid file in the state
dir), deploys the contracts and writes ``deployment.json``; ``down`` stops it with SIGTERM,
then SIGKILL if it does not exit. Tests use ``start_anvil`` directly for a node that lives
exactly as long as the test session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from verimesh.chain.accounts import DEV_MNEMONIC
from verimesh.chain.errors import DevnetError
from verimesh.crypto.wallet import verimesh_home

ANVIL_RELATIVE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
DEFAULT_PORT = 8545
DEV_CHAIN_ID = 31337
DEV_ACCOUNTS = 10
PID_FILE = "anvil.pid"
LOG_FILE = "anvil.log"


def default_state_dir() -> Path:
    return verimesh_home() / "devnet"


def find_anvil() -> Path:
    """The anvil binary: ``$VERIMESH_ANVIL``, else node_modules above the cwd or this package."""
    override = os.environ.get("VERIMESH_ANVIL")
    if override:
        path = Path(override).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise DevnetError(f"VERIMESH_ANVIL={override} is not an executable file; fix or unset it")
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in [start, *start.parents]:
            candidate = folder / ANVIL_RELATIVE
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise DevnetError(
        "the anvil devnet node is not installed: run `make setup` in the verimesh checkout "
        f"(it installs {ANVIL_RELATIVE} from npm), or set VERIMESH_ANVIL to an anvil binary"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def rpc_ready(url: str, timeout: float = 0.5) -> bool:
    """True when a node answers ``eth_chainId`` at ``url``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


@dataclass
class AnvilNode:
    """A running anvil. ``process`` is set when this Python process started it."""

    pid: int
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        stop_pid(self.pid, timeout, self.process)


def start_anvil(
    port: int | None = None,
    log_path: Path | None = None,
    detach: bool = False,
    startup_timeout: float = 20.0,
) -> AnvilNode:
    """Start anvil on 127.0.0.1 and wait until it answers JSON-RPC.

    ``detach`` puts it in its own session so it outlives this process (``devnet up``).
    """
    anvil = find_anvil()
    port = port or free_port()
    if port_in_use(port):
        raise DevnetError(f"port {port} on 127.0.0.1 is already in use; pick another with --port")
    args = [
        str(anvil),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(DEV_CHAIN_ID),
        "--accounts", str(DEV_ACCOUNTS),
        "--balance", "10000",
        "--mnemonic", DEV_MNEMONIC,
    ]  # fmt: skip
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=detach
        )
    finally:
        if log_path:
            log.close()
    node = AnvilNode(process.pid, port, process)
    deadline = time.monotonic() + startup_timeout
    while not rpc_ready(node.url):
        if process.poll() is not None:
            where = f"; see {log_path}" if log_path else ""
            raise DevnetError(f"anvil exited with code {process.returncode} at startup{where}")
        if time.monotonic() > deadline:
            node.stop()
            raise DevnetError(f"anvil did not answer on {node.url} within {startup_timeout:.0f} s")
        time.sleep(0.02)
    return node


def _is_anvil(pid: int) -> bool:
    """Guard against pid reuse: only ever signal a process that is an anvil."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"anvil" in cmdline.split(b"\0")[0]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    # a zombie has exited already; it only waits for its parent to reap it
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def stop_pid(pid: int, timeout: float = 5.0, process: subprocess.Popen | None = None) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
    if process is not None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        return
    if not pid_alive(pid) or not _is_anvil(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
