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
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from verimesh.chain.accounts import DEV_MNEMONIC, dev_signers
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, describe, fund_accounts, write_dev_keystores
from verimesh.chain.deployment import Deployment, NetworkParams
from verimesh.chain.errors import DevnetError
from verimesh.paths import verimesh_home
from verimesh.procs import pid_alive

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


_HANDED_OUT: set[int] = set()  # ports free_port gave this process: planned, maybe not bound yet
_HANDED_OUT_LOCK = threading.Lock()


def _unbound_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port() -> int:
    """A port free on 127.0.0.1 that this process has not handed out before. The kernel may
    offer a port again as soon as it is released, and callers plan several ports before
    anything binds them (the demo picks its nodes' ports, then the dashboard's): without
    the memory two of them could get the same port and one would fail to start."""
    for _ in range(1000):
        port = _unbound_port()
        with _HANDED_OUT_LOCK:
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port
    raise DevnetError("no free port on 127.0.0.1 that this process has not handed out already")


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
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
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


# -- the devnet of `verimesh devnet up/down/status` -------------------------------------
DEPLOYMENT_FILE = "deployment.json"
WALLETS_DIR = "wallets"
# Explicit gas limit for devnet transactions: no eth_estimateGas round trip per transaction.
DEVNET_GAS_LIMIT = 5_000_000


@dataclass(frozen=True)
class DevnetStatus:
    state_dir: Path
    running: bool
    pid: int | None = None
    url: str | None = None
    block: int | None = None
    deployment: Path | None = None


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def status(state_dir: Path | None = None) -> DevnetStatus:
    """Is a devnet running from ``state_dir``, where, and at which block."""
    state_dir = state_dir or default_state_dir()
    pid = _read_pid(state_dir)
    if pid is None or not pid_alive(pid) or not _is_anvil(pid):
        return DevnetStatus(state_dir, running=False)
    deployment_path = state_dir / DEPLOYMENT_FILE
    url = block = None
    if deployment_path.is_file():
        url = Deployment.load(deployment_path).rpc_url
        if url and rpc_ready(url):
            block = RpcBackend(url).block_number()
    return DevnetStatus(
        state_dir, True, pid, url, block, deployment_path if deployment_path.is_file() else None
    )


def up(
    state_dir: Path | None = None, port: int = DEFAULT_PORT, n_accounts: int = DEV_ACCOUNTS
) -> Deployment:
    """Start anvil detached, deploy and fund, write deployment.json; return the Deployment.

    On any failure after anvil started, anvil is stopped again: no orphan node is left.
    """

    state_dir = state_dir or default_state_dir()
    current = status(state_dir)
    if current.running:
        raise DevnetError(
            f"a devnet is already running from {state_dir} (pid {current.pid}, {current.url}); "
            "stop it with `verimesh devnet down` or use another --state-dir"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    (state_dir / DEPLOYMENT_FILE).unlink(missing_ok=True)
    artifacts = load_artifacts(names=CONTRACTS)  # compile before starting anything
    node = start_anvil(port, log_path=state_dir / LOG_FILE, detach=True)
    try:
        (state_dir / PID_FILE).write_text(f"{node.pid}\n")
        backend = RpcBackend(node.url, gas_limit=DEVNET_GAS_LIMIT)
        signers = dev_signers(n_accounts)
        params = NetworkParams()
        network = deploy_network(backend, signers[0], params, artifacts)
        fund_accounts(network, signers[0], [s.address for s in signers], params.mint_per_account)
        accounts = write_dev_keystores(signers, state_dir / WALLETS_DIR)
        deployment = describe(network, signers[0], params, artifacts, node.url, accounts)
        deployment.save(state_dir / DEPLOYMENT_FILE)
    except BaseException:
        node.stop()
        (state_dir / PID_FILE).unlink(missing_ok=True)
        raise
    return deployment


def down(state_dir: Path | None = None, timeout: float = 5.0) -> bool:
    """Stop the devnet of ``state_dir``; False when none was running. Keeps the dev wallets."""
    state_dir = state_dir or default_state_dir()
    pid = _read_pid(state_dir)
    was_running = pid is not None and pid_alive(pid) and _is_anvil(pid)
    if was_running:
        assert pid is not None
        stop_pid(pid, timeout)
        if pid_alive(pid):
            raise DevnetError(f"anvil (pid {pid}) survived SIGKILL; check it with `ps {pid}`")
    (state_dir / PID_FILE).unlink(missing_ok=True)
    (state_dir / DEPLOYMENT_FILE).unlink(missing_ok=True)  # its chain is gone
    return was_running
