"""A real job, end to end, on any backend: the scripted story behind `verimesh devnet
lifecycle`, the gas benchmark and the devnet integration test (one script, three users).

Two paths:
- ``run_job``: post (escrow + provider draw), commit, reveal, challenge window, finalize
  (credits the providers' market balances, unlocks bonds), each provider withdraws.
- ``run_timeout``: post, the provider stays silent past the commit deadline, ``timeout``
  slashes its bond and credits the requester's refund, the requester withdraws it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from verimesh.chain.accounts import Signer
from verimesh.chain.client import Network
from verimesh.chain.contract import Tx
from verimesh.chain.errors import ChainError
from verimesh.chain.job_market import JobState, Mode, commitment
from verimesh.chain.registry import Role
from verimesh.crypto.merkle import blob_root, merkle_root

VMT = 10**18
WINDOW = 60  # seconds: the contracts' minimum commit/reveal/challenge window
CAPABILITIES = blob_root(b"verimesh demo capabilities: exact int8 runtime v0")


@dataclass(frozen=True)
class Step:
    name: str
    actor: str
    gas: int
    detail: str = ""


@dataclass
class JobRun:
    job_id: int
    mode: Mode
    mode_param: int
    price: int
    providers: list[str]
    steps: list[Step] = field(default_factory=list)  # post .. finalize / timeout
    payouts: list[Step] = field(default_factory=list)  # withdrawals of the credited tokens
    final_state: JobState = JobState.NONE

    @property
    def gas(self) -> int:
        """Gas of the job itself, post to settlement. Approvals and withdrawals are not
        counted: both are made once for many jobs (balances accumulate in JobMarket)."""
        return sum(s.gas for s in self.steps)


def _step(steps: list[Step], name: str, actor: str, tx: Tx, detail: str = "") -> Tx:
    steps.append(Step(name, actor, tx.gas_used, detail))
    return tx


def register_providers(
    net: Network, providers: Sequence[Signer], stake: int, price: int, endpoint: str = "http://127.0.0.1"
) -> list[Step]:
    """Approve the Registry and register each account as a provider (skips members)."""
    steps: list[Step] = []
    for i, provider in enumerate(providers):
        if net.registry.members(provider.address).role != Role.NONE:
            continue
        label = f"provider{i}"
        _step(steps, "approve stake", label, net.token.approve(net.registry.address, stake, signer=provider))
        _step(
            steps,
            "register",
            label,
            net.registry.register(
                Role.PROVIDER, stake, f"{endpoint}:{9000 + i}", CAPABILITIES, price, signer=provider
            ),
        )
    return steps


def _post(
    net: Network, requester: Signer, mode: Mode, mode_param: int, price: int, label: str
) -> tuple[JobRun, list[Step]]:
    steps: list[Step] = []
    escrow = net.job_market.escrow_for(mode, mode_param, price)
    _step(steps, "approve escrow", "requester", net.token.approve(net.job_market.address, escrow, signer=requester))
    spec = blob_root(f"verimesh demo job spec {label} {os.urandom(8).hex()}".encode())
    model = blob_root(b"verimesh demo model")
    inputs = blob_root(b"verimesh demo input")
    posted = net.job_market.post_job(
        spec, model, inputs, mode, mode_param, price, WINDOW, WINDOW, WINDOW, signer=requester
    )
    run = JobRun(posted.job_id, mode, mode_param, price, posted.providers)
    _step(
        run.steps,
        "post_job",
        "requester",
        posted.tx,
        f"job {posted.job_id}: escrow {escrow / VMT:g} VMT, {len(posted.providers)} provider(s) drawn",
    )
    return run, steps


def _signer_for(address: str, providers: Sequence[Signer]) -> tuple[int, Signer]:
    for i, p in enumerate(providers):
        if p.address == address:
            return i, p
    raise ChainError(f"JobMarket assigned {address}, which is not one of this script's providers")


def run_job(
    net: Network,
    requester: Signer,
    providers: Sequence[Signer],
    mode: Mode = Mode.REPLICATE,
    mode_param: int = 1,
    price: int = 5 * VMT,
) -> tuple[JobRun, list[Step]]:
    """One honest job to completion. Returns the run and the approval step (setup)."""
    run, setup = _post(net, requester, mode, mode_param, price, "honest")
    output_root = blob_root(b"verimesh demo output")
    trace_root = merkle_root([b"op 0: embed", b"op 1: matmul", b"op 2: argmax"])
    salts = {}
    for address in run.providers:
        i, provider = _signer_for(address, providers)
        salts[address] = os.urandom(32)
        c = commitment(run.job_id, address, output_root, trace_root, salts[address])
        _step(run.steps, "commit", f"provider{i}", net.job_market.commit(run.job_id, c, signer=provider))
    for address in run.providers:
        i, provider = _signer_for(address, providers)
        tx = net.job_market.reveal(run.job_id, output_root, trace_root, salts[address], signer=provider)
        _step(run.steps, "reveal", f"provider{i}", tx)
    net.backend.advance_time(WINDOW + 1)  # let the challenge window pass unchallenged
    tx = net.job_market.finalize(run.job_id, signer=requester)
    finalized = tx.event("Finalized", net.job_market.address)
    _step(run.steps, "finalize", "requester", tx, f"credited {finalized['paid'] / VMT:g} VMT")
    for address in run.providers:
        i, provider = _signer_for(address, providers)
        _withdraw_all(net, run.payouts, provider, f"provider{i}")
    run.final_state = net.job_market.jobs(run.job_id).state
    return run, setup


def _withdraw_all(net: Network, steps: list[Step], signer: Signer, label: str) -> None:
    """Settlements only credit market balances (pull payments); this moves them out."""
    amount = net.job_market.balances(signer.address)
    if amount:
        tx = net.job_market.withdraw(amount, signer=signer)
        _step(steps, "withdraw", label, tx, f"{amount / VMT:g} VMT to the wallet")


def run_timeout(
    net: Network, requester: Signer, price: int = 5 * VMT
) -> tuple[JobRun, list[Step]]:
    """A job whose provider never commits: ``timeout`` slashes it and refunds the requester."""
    run, setup = _post(net, requester, Mode.REPLICATE, 1, price, "silent")
    net.backend.advance_time(WINDOW + 1)  # past the commit deadline
    tx = net.job_market.timeout(run.job_id, signer=requester)
    refunded = tx.event("Refunded", net.job_market.address)["amount"]
    slashed = sum(e["amount"] for e in tx.events_named("Slashed", net.job_market.address))
    _step(
        run.steps,
        "timeout",
        "requester",
        tx,
        f"refunded {refunded / VMT:g} VMT, slashed {slashed / VMT:g} VMT",
    )
    _withdraw_all(net, run.payouts, requester, "requester")
    run.final_state = net.job_market.jobs(run.job_id).state
    return run, setup


def token_balances(net: Network, accounts: dict[str, str]) -> dict[str, int]:
    """Token balances of labelled accounts plus the two contracts that hold tokens."""
    labelled = {**accounts, "Registry": net.registry.address, "JobMarket": net.job_market.address}
    return {label: net.token.balance_of(address) for label, address in labelled.items()}
