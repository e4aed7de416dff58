"""The adversary zoo's world: a real anvil devnet with the real contracts, real node daemons
(one honest, one started with ``--adversary NAME``), a requester, and the referee.

Each node is a ``NodeDaemon`` (uvicorn API + chain loop threads) in the test process, with
the in-process executor: exactly what ``verimesh node run --in-process --adversary NAME``
runs, minus a Python start-up per node (2 cores are shared by the whole suite).

Disputes are decided by JobMarket's referee: the DisputeCommittee contract, whose members
are drawn from real validator daemons (``ValidatorNode``, engineer B2's ``node.validator``)
started with the world; on a deployment with a plain referee key (the deployer) the test's
``Referee`` sends the verdict instead. Either way ``Referee.rule`` computes the ruling
independently from the parties' served evidence, and checks the committee agreed with it.
A dispute over an op small enough for the EVM is settled by an on-chain op proof instead
(``OpReferee.prove_wrong_op``, sent by a party or a validator): ``op_proofs`` lists them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
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
from verimesh.node.journal import Journal
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party, PartyEvidence
from verimesh.verify.referee import Method, Ruling, decide

sys.path.insert(0, str(Path(__file__).parent.parent / "node"))
from daemon_net import node_process, share_selfbench

DEV_PASSWORD = "verimesh-dev"
# Seconds of the job windows (the contract's minimum): the tests move the chain's clock.
WINDOW = 60
_TURN_REFEREE = 2  # JobMarket.TURN_REFEREE


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
    # Refuse the job's result (and so its spec) to validators: a provider that tries to
    # starve its auditor (the daemon's own reader list, emptied before its API starts).
    withhold_from_validators: bool = False

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
        if self.withhold_from_validators:
            self.daemon._validators = lambda job_id: set()
        self.address = self.daemon.address
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=serve_forever, args=(self.daemon, self.stop_event), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not _registered(self.url):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"node {self.account} ({self.behaviour.value}) did not come up")
            time.sleep(0.05)

    def step(self, job_id: int) -> str | None:
        duty = self.daemon.journal.job(job_id)
        return None if duty is None else duty.step

    def duty(self, job_id: int):
        return self.daemon.journal.job(job_id)

    def close(self) -> None:
        self.stop_event.set()
        self.daemon.wake.set()
        self.thread.join(timeout=20)


# How a member decides the same dispute when the parties' leaves come without their input
# tensors (the agreed leaves served), and when nobody serves the agreed leaves: resume at
# the disputed layer, fast-forward to the disputed step after a claim, or replay the job.
FALLBACKS = {
    Behaviour.MODEL_SWAP: (Method.RESUME, Method.REPLAY),
    Behaviour.SKIP_LAYERS: (Method.RESUME, Method.REPLAY),
    Behaviour.LOWER_PRECISION: (Method.RESUME, Method.REPLAY),
    Behaviour.LOWER_PRECISION_LATE: (Method.RESUME, Method.FORWARD),
    Behaviour.RANDOM_OUTPUT: (Method.REPLAY, Method.REPLAY),
}


class Referee:
    """Rules on a finished game the way every committee member (or the interim referee key)
    does: replay the game from chain events, fetch both parties' final evidence from their
    nodes over HTTP (signed as the job's requester, who may always read it), decide with
    ``verify.referee.decide`` (one op recomputed: from the parties' own inputs, or, where
    they differ in the instruction, from the inputs the agreed leaves a party serves at
    ``/v1/jobs/{id}/trace`` name; or the program replayed to the disputed op). With the DisputeCommittee as JobMarket's referee, the validators' committee sends
    the verdict and this ruling is the independent check of it; with a plain referee key
    (``referee_wallet``) this sends it."""

    def __init__(self, client: Client, referee_wallet: Wallet | None = None) -> None:
        self.client = client
        self.jm = client.net.job_market
        self.domain = Domain(chain_id=client.deployment.chain_id, verifying_contract=client.deployment.contracts.job_market)
        self.referee_jm = None
        self.last_bodies: tuple[dict[str, Any], ...] = ()  # the evidence bodies of the last ruling
        self.leaves_served: list[tuple[Party, int, bool]] = []  # (party, leaf, served) the last ruling asked for
        self._deciding: tuple[Any, ...] = ()  # (dispute, evidence bodies, leaf source, job) of the last ruling
        if referee_wallet is not None and self.jm.referee().lower() == referee_wallet.address.lower():
            self.referee_jm = self.jm.as_signer(Signer.from_wallet(referee_wallet))

    @property
    def committee(self) -> bool:
        """True when the DisputeCommittee contract (validators) decides disputes."""
        return self.referee_jm is None

    def evidence(self, url: str, job_id: int) -> dict[str, Any]:
        """A party's evidence body: its leaf and proofs, the job, the output it claims."""
        request = DisputeDataRequest(job_id=job_id, replica=0, leaf_index=0)
        envelope = seal(self.client.wallet, request, self.domain)
        r = httpx.post(f"{url}/v1/jobs/{job_id}/evidence", content=envelope.model_dump_json(),
                       headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
        if r.status_code != 200:
            raise RuntimeError(f"{url} gave no evidence for job {job_id}: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
        PartyEvidence.from_json(body["evidence"])  # well-formed, or the request fails here
        return body

    def leaf(self, url: str, job_id: int, replica: int, index: int, tensors: bool = True) -> dict[str, Any] | None:
        """Leaf ``index`` of a party's trace from its node (``/v1/jobs/{id}/trace``; without
        its input tensors unless ``tensors``), or None: fetched as a committee member does."""
        from verimesh.node.evidence import fetch_leaf

        with httpx.Client(timeout=30) as http:
            return fetch_leaf(http, self.client.wallet, self.domain, url, job_id, replica, index, tensors)[0]

    def rule(self, job_id: int, nodes: dict[str, Any], spec: JobSpec, text: str | list[str], from_block: int) -> Ruling:
        """Wait until the bisection found its leaf, decide, and see the verdict through.
        ``text`` is the job's input: a prompt, or the texts of an embedding batch."""
        from verimesh.models.api import load_model
        from verimesh.node.dispute import replay_game
        from verimesh.node.evidence import served_claims
        from verimesh.node.execute import job_arguments
        from verimesh.verify.replay import JobRun

        # The party due to move refers the dispute once the bisection found its leaf (turn 2);
        # the game itself is replayed from the chain's events only now and then (it is the
        # expensive read).
        polls = 0

        def ended() -> Any:
            nonlocal polls
            polls += 1
            if self.jm.jobs(job_id).state != JobState.DISPUTED:
                return "decided"  # a fast committee may rule before we looked
            if self.jm.disputes(job_id).turn != _TURN_REFEREE and polls % 10:
                return None
            game = replay_game(self.jm, job_id, from_block)
            return game if game.dispute is not None and game.dispute.outcome is not None else None

        wait_for(ended, f"job {job_id}'s bisection to end", 120, 0.1)
        game = replay_game(self.jm, job_id, from_block)
        assert game.dispute is not None and game.dispute.outcome is not None, game
        by_address = {n.address.lower(): n for n in nodes.values()}
        evidence: dict[Party, dict[str, Any]] = {}

        def collected() -> Ruling | bool:
            proven = self._proven(job_id, from_block)
            if proven is not None:  # settled at once: the parties may have dropped their evidence
                return proven
            for party, address in ((Party.DEFENDER, game.defender), (Party.CHALLENGER, game.challenger)):
                if party not in evidence and (got := self._try_evidence(by_address[address.lower()].url, job_id)):
                    evidence[party] = got
            return len(evidence) == 2

        got = wait_for(collected, f"job {job_id}'s evidence of both parties (or an op proof)", 60, 0.1)
        if isinstance(got, Ruling):
            return got
        bodies = (evidence[Party.DEFENDER], evidence[Party.CHALLENGER])
        self.last_bodies = bodies
        first, params = job_arguments(spec, text)
        urls = {Party.DEFENDER: by_address[game.defender.lower()].url, Party.CHALLENGER: by_address[game.challenger.lower()].url}
        replicas = (game.chain.defender_replica, game.chain.challenger_replica)

        def leaf(party: Party, index: int, tensors: bool = True) -> dict[str, Any] | None:
            body = self.leaf(urls[party], job_id, replicas[party], index, tensors)
            self.leaves_served.append((party, index, body is not None))
            return body

        self._deciding = (game.dispute, bodies, leaf, JobRun(load_model(spec.model_root, auto_import=False),
                                                             spec.task, first, params, served_claims(bodies)))
        ruling = self.rerule()
        if self.referee_jm is not None and len(ruling.guilty) == 2:
            self.referee_jm.resolve_dispute_both(job_id)
        elif self.referee_jm is not None:
            self.referee_jm.resolve_dispute(job_id, Party.DEFENDER in ruling.guilty)
        else:
            wait_for(lambda: self.jm.jobs(job_id).state != JobState.DISPUTED, f"the committee's verdict on job {job_id}", 120)
            proven = self._proven(job_id, from_block)
            if proven is not None:  # an op proof landed after we fetched the evidence
                assert proven.guilty == ruling.guilty, (proven, ruling)
                return ruling
            accepted = [e for e in self.client.net.committee.get_events("VerdictAccepted", from_block)
                        if e["job_id"] == job_id]  # fmt: skip
            assert [e["guilty"] for e in accepted] == [ruling.guilty_code], (accepted, ruling)
        return ruling

    def rerule(self, tensors: bool = True, leaves: bool = True) -> Ruling:
        """Decide the last game ``rule`` saw again, from the same evidence and over HTTP, as
        a committee member would. ``tensors=False``: the parties' leaves without their input
        tensors (the member resumes at the disputed layer, or fast-forwards, or replays);
        ``leaves=False``: nobody serves the agreed leaves (the fast-forward or the replay).
        After the verdict the nodes serve the leaves from their kept traces."""
        from verimesh.node.evidence import with_agreed_leaves

        dispute, bodies, leaf, job = self._deciding
        self.leaves_served = []
        if leaves:
            job = with_agreed_leaves(job, dispute, leaf, lambda party, index: leaf(party, index, False))
        evidence = [PartyEvidence.from_json(b["evidence"]) for b in bodies]
        if not tensors:
            evidence = [e if e.record is None else replace(e, record=replace(e.record, inputs=None)) for e in evidence]
        return decide(dispute, *evidence, job)

    def check_fallbacks(self, behaviour: Behaviour, ruling: Ruling) -> None:
        """After the verdict: the last dispute decided again by the referee's fallbacks
        (``FALLBACKS``) finds the same op and the same guilty party, with every leaf asked
        served by the nodes from the traces they keep."""
        for (tensors, leaves), method in zip(((False, True), (True, False)), FALLBACKS.get(behaviour, ()), strict=False):
            again = self.rerule(tensors=tensors, leaves=leaves)
            assert (again.guilty, again.step, again.index, again.method) == (
                ruling.guilty, ruling.step, ruling.index, method), (tensors, leaves, again)  # fmt: skip
            assert all(served for *_, served in self.leaves_served)

    def _proven(self, job_id: int, from_block: int) -> Ruling | None:
        """The ruling of an on-chain op proof that settled the job (one op recomputed by the EVM)."""
        proofs = op_proofs(self.client, job_id, from_block)
        if not proofs:
            return None
        (proof,) = proofs  # one proof settles a dispute: any other reverts
        return Ruling(frozenset({Party(proof["accused"] - 1)}), proof["step"], proof["index"], Method.RECOMPUTE,
                      bytes(32), (f"{proof['op']} proven wrong on chain by {proof['prover']}",), 0.0)  # fmt: skip

    def _try_evidence(self, url: str, job_id: int) -> dict[str, Any] | None:
        try:
            return self.evidence(url, job_id)
        except (RuntimeError, httpx.HTTPError):
            return None  # the node has not ticked past the game's end yet


class ValidatorNode:
    """A real validator daemon (engineer B2's ``node.validator``) in threads of this process:
    it audits the jobs it is drawn for and sits on dispute committees."""

    def __init__(
        self, state: Path, home: Path, account: str, behaviour: Behaviour = Behaviour.HONEST, poll: float = 0.3
    ) -> None:
        from verimesh.node.validator import ValidatorDaemon, ValidatorSettings
        from verimesh.node.validator import serve_forever as serve_validator

        settings = ValidatorSettings(
            home=home, deployment=state / "deployment.json", wallet=dev_wallet(state, account), port=free_port(),
            poll_interval=poll, behaviour=behaviour,
        )  # fmt: skip
        self.daemon = ValidatorDaemon(settings)
        self.address = self.daemon.address
        self.url = settings.public_endpoint
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=serve_validator, args=(self.daemon, self.stop_event), daemon=True)
        self.thread.start()
        wait_for(lambda: _registered(self.url) or not self.thread.is_alive(), f"validator {account}", 60)
        if not self.thread.is_alive():
            raise RuntimeError(f"validator {account} stopped while starting")

    def close(self) -> None:
        self.stop_event.set()
        self.daemon.wake.set()
        self.thread.join(timeout=20)


class NodeProcess:
    """``verimesh node run`` as a process of its own (what a device owner starts), so a test
    can kill it without cleanup (SIGKILL, or ``$VERIMESH_CRASH_AT``) and start a new life on
    the same home. The first node of a machine measures the self-benchmark; later ones get
    a copy from ``bench_cache`` (pytest's cache dir)."""

    def __init__(self, zoo: Zoo, home: Path, account: str, bench_cache: Path) -> None:
        self.zoo, self.home, self.account, self.bench_cache = zoo, home, account, bench_cache
        self.address = dev_wallet(zoo.state, account).address
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"{home.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, crash_at: str | None = None) -> None:
        """Start a life and wait until it works; ``crash_at``: die at that crash point."""
        env = {"VERIMESH_CRASH_AT": crash_at} if crash_at else None
        self.proc = node_process(self.zoo.state, self.home, self.account, self.port, self.log, env,
                                 self.bench_cache, ["--in-process"])  # fmt: skip
        wait_for(lambda: _registered(self.url) or self.proc.poll() is not None, "the node process", timeout=180)
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        share_selfbench(self.home, self.bench_cache)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def step(self, job_id: int) -> str | None:
        """The job's step in the node's journal (read while the node runs or is dead)."""
        journal = Journal(self.home / "journal.sqlite")
        try:
            duty = journal.job(job_id)
            return None if duty is None else duty.step
        finally:
            journal.close()

    def meta(self, key: str) -> str | None:
        journal = Journal(self.home / "journal.sqlite")
        try:
            return journal.get_meta(key)
        finally:
            journal.close()


def _registered(url: str) -> bool:
    try:
        info = httpx.get(f"{url}/v1/info", timeout=1).json()
    except (httpx.HTTPError, ValueError):
        return False
    return info.get("status") != "starting" and info.get("working", False)


@dataclass
class Zoo:
    """One module's world: devnet state folder, model, requester, referee, honest node."""

    tmp: Path
    state: Path
    model_root: str
    client: Client
    referee: Referee
    honest: ZooNode | None  # None in a module that starts its own honest node
    validators: list[ValidatorNode] = field(default_factory=list)  # the committee pool


def wait_for(predicate: Any, what: str, timeout: float = 240, pause: float = 0.05) -> Any:
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


def op_proofs(client: Client, job_id: int, from_block: int) -> list[Any]:
    """``WrongOpProven`` events of ``job_id``: disputes settled on chain without a committee."""
    referee = client.net.op_referee
    if referee is None:
        return []
    return [e for e in referee.get_events("WrongOpProven", from_block) if e["job_id"] == job_id]


def committee_drawn(client: Client, job_id: int) -> bool:
    """True if a dispute committee was ever drawn (or requested) for ``job_id``."""
    committee = client.net.committee
    return committee is not None and bool(committee.committee(job_id).size or committee.request_block(job_id))


def job_state(client: Client, job_id: int) -> JobState:
    return client.net.job_market.jobs(job_id).state
