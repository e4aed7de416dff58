"""A live network for the dashboard's HTTP and browser tests, shared by the session.

Real parts only: anvil started by ``verimesh.chain.devnet.up`` on a free 127.0.0.1 port, a
real node daemon (dev2, API up, registers itself at price 1 VMT), three members registered
by hand whose endpoints nobody serves (devices that are down: dev3, dev4 providers at
0.5 VMT, dev5 validator), the dashboard app under a real uvicorn on a free port. Jobs at
0.5 VMT are drawn from dev3/dev4 only, so the tests drive commit/reveal themselves.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from verimesh.chain import devnet
from verimesh.chain.accounts import Signer, dev_signer
from verimesh.chain.client import Network
from verimesh.chain.devnet import free_port
from verimesh.chain.job_market import Mode, PostedJob, commitment
from verimesh.chain.lifecycle import CAPABILITIES, VMT
from verimesh.chain.registry import Role
from verimesh.crypto.merkle import blob_root
from verimesh.crypto.wallet import WalletStore
from verimesh.dashboard.app import create_app
from verimesh.dashboard.follower import Follower
from verimesh.node.daemon import DaemonSettings, NodeDaemon, serve_forever

PRICE = VMT // 2  # below the daemon's 1 VMT: only the hand-driven providers are drawn
WINDOW = 60
OUT, TRACE = blob_root(b"dashboard live output"), blob_root(b"dashboard live trace")


@dataclass
class LiveNetwork:
    state_dir: Path
    net: Network
    requester: Signer
    providers: dict[str, Signer]
    validator: Signer
    daemon_address: str
    url: str  # the dashboard

    def post(self, mode: Mode = Mode.REPLICATE, param: int = 1) -> PostedJob:
        spec = blob_root(os.urandom(16))
        return self.net.job_market.post_job(
            spec, spec, spec, mode, param, PRICE, WINDOW, WINDOW, WINDOW, signer=self.requester
        )

    def commit(self, job: PostedJob) -> dict[str, bytes]:
        salts = {a: os.urandom(32) for a in job.providers}
        for a, salt in salts.items():
            c = commitment(job.job_id, a, OUT, TRACE, salt)
            self.net.job_market.commit(job.job_id, c, signer=self.providers[a])
        return salts

    def reveal(self, job: PostedJob, salts: dict[str, bytes]) -> None:
        for a, salt in salts.items():
            self.net.job_market.reveal(job.job_id, OUT, TRACE, salt, signer=self.providers[a])

    def state(self) -> dict:
        r = httpx.get(f"{self.url}/api/state", timeout=5)
        r.raise_for_status()
        return r.json()

    def wait_for(self, predicate, what: str, timeout: float = 30) -> dict:
        """The first /api/state for which ``predicate`` holds (the dashboard polls every 0.2 s)."""
        deadline = time.monotonic() + timeout
        last: dict = {}
        while time.monotonic() < deadline:
            try:
                last = self.state()
                if predicate(last):
                    return last
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"dashboard never showed {what} within {timeout} s; last state: {last}"
        )


def _wait_http(url: str, ok, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=1)
            if r.status_code == 200 and ok(r.json()):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {timeout} s")


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    tmp = tmp_path_factory.mktemp("dashboard")
    state_dir = tmp / "devnet"
    deployment = devnet.up(state_dir, port=free_port())
    stops: list = []
    try:
        # A real provider node (its own API answers /v1/info).
        node_port = free_port()
        wallet = WalletStore(state_dir / "wallets").load("dev2", "verimesh-dev")
        daemon = NodeDaemon(DaemonSettings(
            home=tmp / "node", deployment=state_dir / "deployment.json", wallet=wallet,
            port=node_port, poll_interval=0.1,
        ))  # fmt: skip
        node_stop = threading.Event()
        node_thread = threading.Thread(target=serve_forever, args=(daemon, node_stop), daemon=True)
        node_thread.start()
        stops.append(lambda: (node_stop.set(), daemon.wake.set(), node_thread.join(timeout=10)))
        _wait_http(f"http://127.0.0.1:{node_port}/v1/info",
                   lambda b: b["status"] != "starting" and b["working"])  # fmt: skip

        net = Network.connect(state_dir / "deployment.json")
        requester, p3, p4, validator = dev_signer(1), dev_signer(3), dev_signer(4), dev_signer(5)
        for member, role in [(p3, Role.PROVIDER), (p4, Role.PROVIDER), (validator, Role.VALIDATOR)]:
            net.token.approve(net.registry.address, 100 * VMT, signer=member)
            endpoint = f"http://127.0.0.1:{free_port()}"  # nobody serves it: a device that is down
            net.registry.register(role, 100 * VMT, endpoint, CAPABILITIES, PRICE, signer=member)
        net.token.approve(net.job_market.address, 2**256 - 1, signer=requester)

        port = free_port()
        app = create_app(Follower(net, from_block=deployment.block, info_timeout=0.5), interval=0.2)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        server_thread = threading.Thread(target=server.run, daemon=True)
        server_thread.start()
        stops.append(lambda: (setattr(server, "should_exit", True), server_thread.join(timeout=30)))
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/api/state", lambda b: len(b["nodes"]) == 4)
        yield LiveNetwork(
            state_dir,
            net,
            requester,
            {p3.address: p3, p4.address: p4},
            validator,
            daemon.address,
            url,
        )
    finally:
        for stop in reversed(stops):
            stop()
        devnet.down(state_dir)
