"""A devnet with a real provider node for the agent tests (helper module, not a test file).

``prepare_home`` fills a VERIMESH_HOME with the compiled contracts and bundled models from
pytest's cache (so nothing is compiled or calibrated twice); ``agent_net_up`` starts anvil
(``verimesh.chain.devnet.up``) and a real ``NodeDaemon`` in threads of this process, and
stops both when the block ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from verimesh.chain import devnet
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.devnet import free_port
from verimesh.crypto.wallet import WalletStore
from verimesh.node.daemon import DaemonSettings, NodeDaemon, serve_forever

sys.path.insert(0, str(Path(__file__).parent.parent / "node"))
from daemon_net import install_models, wait_registered

DEV_PASSWORD = "verimesh-dev"


def prepare_home(home: Path, artifact_cache: Path, bundle_cache: Path, models: list[str]) -> dict[str, str]:
    """The network's compiled contracts plus AgentWallet (in the suite's shared artifact
    cache, tests/conftest.py), and ``models`` in ``home``."""
    load_artifacts(cache_dir=artifact_cache, names=[*CONTRACTS, "AgentWallet"])
    return install_models(home, models, bundle_cache)


@dataclass
class AgentNet:
    state: Path  # holds deployment.json and wallets/
    node_url: str
    model: str  # root of the model the node holds

    @property
    def deployment(self) -> Path:
        return self.state / "deployment.json"


@contextmanager
def agent_net_up(tmp: Path, model_root: str, node_account: str = "dev2") -> Iterator[AgentNet]:
    state = tmp / "devnet"
    devnet.up(state, port=free_port())
    stop = threading.Event()
    daemon = None
    thread = None
    try:
        port = free_port()
        settings = DaemonSettings(home=tmp / "node", deployment=state / "deployment.json",
                                  wallet=WalletStore(state / "wallets").load(node_account, DEV_PASSWORD),
                                  port=port, models=[model_root], poll_interval=0.05)  # fmt: skip
        daemon = NodeDaemon(settings)
        thread = threading.Thread(target=serve_forever, args=(daemon, stop), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        wait_registered(url, daemon, timeout=120)
        yield AgentNet(state, url, model_root)
    finally:
        stop.set()
        if daemon is not None:
            daemon.wake.set()
        if thread is not None:
            thread.join(timeout=15)
        devnet.down(state)
