"""Helpers of the validator devnet tests: a real anvil devnet, a real provider node
(``NodeDaemon``) and real validator daemons in threads of the test process, and the
interim referee for deployments that still have a plain referee key instead of the
DisputeCommittee contract."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from verimesh.chain import Deployment, Network
from verimesh.chain.devnet import free_port
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.wallet import WalletStore
from verimesh.node.daemon import DaemonSettings, NodeDaemon
from verimesh.node.daemon import serve_forever as serve_node
from verimesh.node.dispute import replay_game
from verimesh.node.evidence import PostedJob, fetch_evidence, rule
from verimesh.node.validator import ValidatorDaemon, ValidatorSettings
from verimesh.node.validator import serve_forever as serve_validator
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party

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
    state: Path, home: Path, account: str, model_root: str, behaviour: Behaviour
) -> Threaded:
    settings = DaemonSettings(
        home=home, deployment=state / "deployment.json", wallet=wallet(state, account), port=free_port(),
        models=[model_root], poll_interval=0.05, behaviour=behaviour,
    )  # fmt: skip
    node = Threaded(serve_node, NodeDaemon(settings))
    wait_until(
        lambda: _registered(node.daemon.settings.public_endpoint), "the provider to register"
    )
    return node


def start_validator(
    state: Path, home: Path, account: str, behaviour: Behaviour = Behaviour.HONEST
) -> Threaded:
    settings = ValidatorSettings(
        home=home, deployment=state / "deployment.json", wallet=wallet(state, account), port=free_port(),
        poll_interval=0.05, behaviour=behaviour,
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


def act_as_referee(state: Path, net: Network, job_id: int, stop: threading.Event) -> None:
    """Until DisputeCommittee is the referee of every deployment: the deployer's key rules the
    referred dispute with the very code committee members run (``node.evidence.rule``)."""
    deployment = Deployment.load(state / "deployment.json")
    referee = net.as_signer(net_signer(state, "dev0"))
    domain = Domain(
        chain_id=deployment.chain_id, verifying_contract=deployment.contracts.job_market
    )
    signer = wallet(state, "dev0")
    http = httpx.Client(timeout=30)
    posted_event = next(
        e for e in net.job_market.get_events("JobPosted", deployment.block) if e["job_id"] == job_id
    )
    posted = PostedJob(spec_hash="0x" + posted_event["spec_hash"].hex(), model_root="0x" + posted_event["model_root"].hex(),
                       input_root="0x" + posted_event["input_root"].hex())  # fmt: skip
    while not stop.is_set():
        state_ = replay_game(net.job_market, job_id, deployment.block)
        if state_.chain.turn == 2 and state_.resolved is None and not state_.annulled:
            bodies = []
            for address, replica in ((state_.defender, state_.chain.defender_replica),
                                     (state_.challenger, state_.chain.challenger_replica)):  # fmt: skip
                endpoint = net.registry.members(address).endpoint
                bodies.append(fetch_evidence(http, signer, domain, endpoint, job_id, replica)[0])
            if None not in bodies:
                ruling = rule(state_, (bodies[0], bodies[1]), posted)
                referee.job_market.resolve_dispute(job_id, Party.DEFENDER in ruling.guilty)
                return
        stop.wait(0.2)


def net_signer(state: Path, name: str):
    from verimesh.chain import Signer

    return Signer.from_wallet(wallet(state, name))
