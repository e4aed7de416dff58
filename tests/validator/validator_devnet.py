"""Helpers of the validator devnet tests: a real provider node (``NodeDaemon``) and real
validator daemons in threads of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from verimesh.chain.devnet import free_port
from verimesh.crypto.wallet import WalletStore
from verimesh.node.daemon import DaemonSettings, NodeDaemon
from verimesh.node.daemon import serve_forever as serve_node
from verimesh.node.validator import ValidatorDaemon, ValidatorSettings
from verimesh.node.validator import serve_forever as serve_validator
from verimesh.verify.adversary import Behaviour

DEV_PASSWORD = "verimesh-dev"


def wallet(state: Path, name: str):
    return WalletStore(state / "wallets").load(name, DEV_PASSWORD)


class Threaded:
    """A daemon's ``serve_forever`` in a thread, stopped by ``close``."""

    def __init__(self, target: Callable, daemon) -> None:
        self.daemon = daemon
        self.stop = threading.Event()
        self.thread = threading.Thread(target=target, args=(daemon, self.stop), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.daemon.wake.set()
        self.thread.join(timeout=15)


def start_provider(
    state: Path, home: Path, account: str, model_root: str, behaviour: Behaviour, withhold: bool = False
) -> Threaded:
    """``withhold``: refuse validators the job's result and spec (its reader list emptied
    before its API starts), as a provider that starves its auditor would."""
    settings = DaemonSettings(
        home=home, deployment=state / "deployment.json", wallet=wallet(state, account), port=free_port(),
        models=[model_root], poll_interval=0.05, behaviour=behaviour,
    )  # fmt: skip
    daemon = NodeDaemon(settings)
    if withhold:
        daemon._validators = lambda job_id: set()
    node = Threaded(serve_node, daemon)
    wait_until(
        lambda: _registered(node.daemon.settings.public_endpoint), "the provider to register"
    )
    return node


def start_validator(
    state: Path, home: Path, account: str, behaviour: Behaviour = Behaviour.HONEST, **settings_: object
) -> Threaded:
    """``settings_``: further ``ValidatorSettings`` fields (e.g. ``abandon_margin``)."""
    settings = ValidatorSettings(
        home=home, deployment=state / "deployment.json", wallet=wallet(state, account), port=free_port(),
        poll_interval=0.05, behaviour=behaviour, **settings_,  # type: ignore[arg-type]
    )  # fmt: skip
    validator = Threaded(serve_validator, ValidatorDaemon(settings))
    wait_until(
        lambda: _registered(validator.daemon.settings.public_endpoint),
        f"validator {account} to register",
    )
    return validator


def _registered(url: str) -> bool:
    try:
        r = httpx.get(f"{url}/v1/info", timeout=1)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.json()["status"] != "starting" and r.json()["working"]


def wait_until(check: Callable[[], object], what: str, timeout: float = 180.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
