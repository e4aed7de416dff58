"""Helpers of the node tests: a real anvil devnet with the contracts, and real nodes.

``devnet_dir`` starts anvil on a free 127.0.0.1 port through ``verimesh.chain.devnet.up``
(deploy, fund dev accounts, write deployment.json + dev keystores) and stops it again.
``InProcessNode`` runs a real ``NodeDaemon`` (uvicorn API + chain loop threads) inside the
test process, for tests that poke its API; the kill-and-restart tests run ``verimesh node
run`` as a separate process instead (``node_process``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from verimesh.chain import devnet
from verimesh.chain.devnet import free_port
from verimesh.crypto.wallet import Wallet, WalletStore
from verimesh.node.daemon import DaemonSettings, NodeDaemon, serve_forever

DEV_PASSWORD = "verimesh-dev"


@contextmanager
def devnet_dir(tmp: Path) -> Iterator[Path]:
    """A fresh devnet; yields the folder holding deployment.json and wallets/."""
    state = tmp / "devnet"
    devnet.up(state, port=free_port())
    try:
        yield state
    finally:
        devnet.down(state)


def dev_wallet(state: Path, name: str) -> Wallet:
    return WalletStore(state / "wallets").load(name, DEV_PASSWORD)


class InProcessNode:
    """A real node daemon on a free port, in threads of this process."""

    def __init__(
        self, state: Path, home: Path, account: str, models: list[str] | None = None, deployment: Path | None = None
    ) -> None:
        self.port = free_port()
        self.settings = DaemonSettings(
            home=home,
            deployment=deployment or state / "deployment.json",
            wallet=dev_wallet(state, account),
            port=self.port,
            models=models or [],
            poll_interval=0.05,
        )
        self.daemon = NodeDaemon(self.settings)
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=serve_forever, args=(self.daemon, self.stop), daemon=True)
        self.thread.start()
        wait_registered(self.url, self.daemon)

    def close(self) -> None:
        self.stop.set()
        self.daemon.wake.set()
        self.thread.join(timeout=10)


def wait_registered(url: str, daemon: NodeDaemon | None = None, timeout: float = 30) -> None:
    """Until the API answers and (for an in-process node) the registration is on chain."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/v1/info", timeout=1)
            # "starting" until the first loop pass, which registers on chain, has completed.
            if r.status_code == 200 and r.json()["status"] != "starting" and r.json()["working"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"node at {url} did not come up within {timeout} s")


SELFBENCH = "selfbench.json"  # node.selfbench's cache file in a node's home


def share_selfbench(home: Path, cache: Path) -> None:
    """Keep the first node's self-benchmark for the next ones: measuring it again in every
    fresh test home would cost each node start seconds of CPU on a busy machine."""
    if (home / SELFBENCH).is_file() and not (cache / SELFBENCH).is_file():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / SELFBENCH, cache / SELFBENCH)


def node_process(
    state: Path, home: Path, account: str, port: int, log: Path, env: dict[str, str] | None = None,
    bench_cache: Path | None = None, extra: list[str] | None = None,
) -> subprocess.Popen:
    """``verimesh node run`` as its own process (what a device owner starts)."""
    if bench_cache is not None and (bench_cache / SELFBENCH).is_file():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(bench_cache / SELFBENCH, home / SELFBENCH)
    args = [
        sys.executable, "-m", "verimesh.cli.node", "run",
        "--deployment", str(state / "deployment.json"), "--dev", account,
        "--home", str(home), "--port", str(port), "--poll", "0.05",
        # The test machine is busy by design (anvil, other nodes, the requester): an idle
        # policy would keep the node waiting. The policy itself is tested in test_idle*.
        "--max-cpu", "100", "--grace", "0", *(extra or []),
    ]  # fmt: skip
    full_env = {**os.environ, **(env or {})}
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=full_env)


def install_models(home: Path, names: list[str], cache: Path | None = None) -> dict[str, str]:
    """Build the named bundled models (offline, from installed packages / shipped files) into
    ``home/models``, the model store of processes run with ``VERIMESH_HOME=home``.

    Importing MiniLM calibrates activation scales (about a minute on a busy 2-core machine),
    so built bundles are kept in ``cache`` (pytest's cache dir), keyed by the bytes of the
    importer code and the source files' names, sizes and mtimes: any change rebuilds.
    """
    from verimesh.models.registry import bundled
    from verimesh.models.store import ModelStore

    store = ModelStore(home / "models")
    roots = {}
    for name in names:
        model = bundled(name)
        if model is None:
            raise LookupError(f"no bundled model {name!r}")
        cached = cache / f"{name}-{_bundle_key(model)}.safetensors" if cache else None
        if cached is not None and cached.is_file():
            roots[name] = "0x" + store.put_bytes(cached.read_bytes(), name).hex()
            continue
        data = model.build().to_bytes()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(cached)
        roots[name] = "0x" + store.put_bytes(data, name).hex()
    return roots


def _bundle_key(model) -> str:  # model: a models.registry.BundledModel
    import hashlib

    import verimesh.models

    digest = hashlib.sha256()
    for path in sorted(Path(verimesh.models.__file__).parent.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    source = Path(model.source())
    for path in sorted(source.rglob("*") if source.is_dir() else [source]):
        if path.is_file():
            st = path.stat()
            digest.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def install_tiny_model(home: Path, cache: Path | None = None) -> str:
    return install_models(home, ["tiny-shakespeare"], cache)["tiny-shakespeare"]


class TcpProxy:
    """A real TCP forwarder 127.0.0.1:port -> upstream that a test can cut and restore: the
    chain endpoint "going away" (connections refused and dropped) and coming back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._conns = self._conns, []
        if server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
