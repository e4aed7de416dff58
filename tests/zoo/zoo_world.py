"""The adversary zoo's world: a real anvil devnet with the real contracts, real node daemons
(one honest, one started with ``--adversary NAME``), a requester, and the referee.

Each node is a ``NodeDaemon`` (uvicorn API + chain loop threads) in the test process, with
the in-process executor: exactly what ``verimesh node run --in-process --adversary NAME``
runs, minus a Python start-up per node (2 cores are shared by the whole suite).

The referee: until the committee contract decides disputes, JobMarket's referee is the
deployer (dev0). ``Referee.rule`` does what any referee does: replay the game from chain
events, fetch both parties' final evidence from their nodes over HTTP (signed requests),
decide with ``verify.referee.decide`` (one op recomputed, or the program replayed to the
disputed op) and send the verdict.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from verimesh.chain import JobState, Signer
from verimesh.chain.devnet import free_port
from verimesh.client import Client
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.envelope import seal
from verimesh.crypto.messages import DisputeDataRequest
from verimesh.crypto.wallet import Wallet, WalletStore
from verimesh.node.daemon import DaemonSettings, NodeDaemon, serve_forever
from verimesh.node.jobs import JobSpec
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party, PartyEvidence
from verimesh.verify.referee import Ruling, decide

DEV_PASSWORD = "verimesh-dev"
# Seconds of the job windows (the contract's minimum): the tests move the chain's clock.
WINDOW = 60


def dev_wallet(state: Path, name: str) -> Wallet:
    return WalletStore(state / "wallets").load(name, DEV_PASSWORD)


@dataclass
class ZooNode:
    """A real provider daemon in threads of this process, behaving as ``behaviour``."""

    state: Path
    home: Path
    account: str
    behaviour: Behaviour = Behaviour.HONEST
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.wallet = dev_wallet(self.state, self.account)
        self.settings = DaemonSettings(
            home=self.home,
            deployment=self.state / "deployment.json",
            wallet=self.wallet,
            port=self.port,
            poll_interval=0.05,
            behaviour=self.behaviour,
        )
        self.daemon = NodeDaemon(self.settings)
        self.address = self.daemon.address
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=serve_forever, args=(self.daemon, self.stop_event), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self._registered():
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"node {self.account} ({self.behaviour.value}) did not come up")
            time.sleep(0.05)

    def _registered(self) -> bool:
        try:
            info = httpx.get(f"{self.url}/v1/info", timeout=1).json()
        except (httpx.HTTPError, ValueError):
            return False
        return info.get("status") != "starting" and info.get("working", False)

    def step(self, job_id: int) -> str | None:
        duty = self.daemon.journal.job(job_id)
        return None if duty is None else duty.step

    def duty(self, job_id: int):
        return self.daemon.journal.job(job_id)

    def close(self) -> None:
        self.stop_event.set()
        self.daemon.wake.set()
        self.thread.join(timeout=20)


class Referee:
    """JobMarket's referee account (the deployer on a devnet) ruling on finished games."""

    def __init__(self, client: Client, wallet: Wallet) -> None:
        self.client = client
        self.wallet = wallet
        self.jm = client.net.job_market.as_signer(Signer.from_wallet(wallet))
        self.domain = Domain(chain_id=client.deployment.chain_id, verifying_contract=client.deployment.contracts.job_market)
        if self.jm.referee().lower() != Signer.from_wallet(wallet).address.lower():
            raise RuntimeError(f"{wallet.address} is not JobMarket's referee ({self.jm.referee()})")

    def evidence(self, url: str, job_id: int) -> PartyEvidence:
        envelope = seal(self.wallet, DisputeDataRequest(job_id=job_id, replica=0, leaf_index=0), self.domain)
        r = httpx.post(f"{url}/v1/jobs/{job_id}/evidence", content=envelope.model_dump_json(),
                       headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
        if r.status_code != 200:
            raise RuntimeError(f"{url} gave no evidence for job {job_id}: HTTP {r.status_code} {r.text[:300]}")
        return PartyEvidence.from_json(r.json()["evidence"])

    def rule(self, job_id: int, nodes: dict[str, ZooNode], spec: JobSpec, text: str, from_block: int) -> Ruling:
        """Wait until the bisection found its leaf, then decide and send the verdict."""
        from verimesh.models.api import load_model
        from verimesh.node.dispute import replay_game
        from verimesh.verify.replay import JobRun

        deadline = time.monotonic() + 120
        while True:
            game = replay_game(self.jm, job_id, from_block)
            if game.dispute is not None and game.dispute.outcome is not None:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id}: the bisection did not end ({game.dispute and game.dispute.rounds} rounds)")
            time.sleep(0.1)
        by_address = {n.address.lower(): n for n in nodes.values()}
        evidence = {}
        for party, address in ((Party.DEFENDER, game.defender), (Party.CHALLENGER, game.challenger)):
            url = by_address[address.lower()].url
            deadline = time.monotonic() + 60
            while True:
                try:
                    evidence[party] = self.evidence(url, job_id)
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)  # the node has not ticked past the game's end yet
        job = JobRun(load_model(spec.model_root, auto_import=False), spec.task, text, dict(spec.params))
        ruling = decide(game.dispute, evidence[Party.DEFENDER], evidence[Party.CHALLENGER], job)
        self.jm.resolve_dispute(job_id, Party.DEFENDER in ruling.guilty)
        return ruling


@dataclass
class Zoo:
    """One module's world: devnet state folder, model, requester, referee, honest node."""

    tmp: Path
    state: Path
    model_root: str
    client: Client
    referee: Referee
    honest: ZooNode | None  # None in a module that starts its own honest node


def wait_for(predicate: Any, what: str, timeout: float = 90, pause: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(pause)


def slashed_accounts(client: Client, job_id: int, from_block: int) -> set[str]:
    """Accounts whose bond JobMarket slashed for ``job_id`` (from its Slashed events)."""
    return {
        e["account"].lower() for e in client.net.job_market.get_events("Slashed", from_block) if e["job_id"] == job_id
    }


def job_state(client: Client, job_id: int) -> JobState:
    return client.net.job_market.jobs(job_id).state
