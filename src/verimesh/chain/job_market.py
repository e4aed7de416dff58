"""Typed client of JobMarket.vy: post, commit, reveal, audit, challenge, dispute, settle."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_utils import keccak
from pydantic import BaseModel

from verimesh.chain.accounts import Signer
from verimesh.chain.contract import ContractClient, Tx, checksum

# Gas limit of every reveal, instead of an estimate. The last replica's reveal also closes
# the reveal phase: it compares the replicas' digests and opens a dispute on a mismatch, or
# in audit mode scans the validator list to draw the auditor. Replicas reveal concurrently,
# so a node's estimate is taken before the others' reveals land and can miss that work
# (replicate(2) with a mismatch: estimated as a 41k reveal, 146k used: out of gas, and a
# retry that may come after the reveal deadline). Every loop on that path is bounded
# (8 replicas, a 32-entry validator scan), so one limit covers every case: the worst measured
# is 317k (audit, 31 validators skipped before the drawn one; tests/chain/test_reveal_gas.py
# keeps the margin). A transaction pays for the gas it uses, not for its limit.
REVEAL_GAS = 400_000


class Mode(IntEnum):
    AUDIT = 0  # mode_param = audit probability in bps; one provider
    REPLICATE = 1  # mode_param = number of replicas k (1..8)


class JobState(IntEnum):
    NONE = 0  # no such job
    ASSIGNED = 1
    COMMITTED = 2
    REVEALED = 3
    AUDITING = 4
    DISPUTED = 5
    FINALIZED = 6
    REFUNDED = 7


class Job(BaseModel):
    """The ``Job`` struct. Roots live only in events (JobPosted, Revealed) to save gas."""

    requester: str
    price: int  # per replica
    state: JobState
    mode: Mode
    mode_param: int
    replicas: int
    committed_mask: int
    revealed_mask: int
    commit_deadline: int
    reveal_deadline: int
    challenge_deadline: int
    challenge_window: int
    audited: bool = False  # a validator was drawn (its record is in ``audits``)
    seed_block: int = 0  # block of the last commitment; its hash seeds the audit draw


class Replica(BaseModel):
    """One assigned provider; ``digest`` is the commitment, then keccak(output||trace)."""

    provider: str
    digest: bytes
    committed: bool
    revealed: bool


class Audit(BaseModel):
    validator: str
    digest: bytes


class Turn(IntEnum):
    """Whose move it is in a dispute (``Dispute.turn``)."""

    DEFENDER = 0
    CHALLENGER = 1
    REFEREE = 2  # the game is over (referred, or 64 moves): the committee decides


class Dispute(BaseModel):
    challenger: str
    kind: int
    challenger_replica: int
    defender_replica: int
    bond: int
    round: int
    turn: int
    deadline: int


@dataclass(frozen=True)
class PostedJob:
    """Result of ``post_job``: the new job id and the providers drawn for it."""

    job_id: int
    providers: list[str]
    tx: Tx


def commitment(job_id: int, provider: str, output_root: bytes, trace_root: bytes, salt: bytes) -> bytes:
    """keccak256(job_id || provider || output_root || trace_root || salt), as JobMarket checks it.

    The provider's address inside stops a lazy replica from copying another's commitment.
    """
    for name, value in (("output_root", output_root), ("trace_root", trace_root), ("salt", salt)):
        if len(value) != 32:
            raise ValueError(f"{name} must be 32 bytes, got {len(value)}")
    provider_bytes = bytes.fromhex(checksum(provider)[2:])
    return keccak(job_id.to_bytes(32, "big") + provider_bytes + output_root + trace_root + salt)


def result_digest(output_root: bytes, trace_root: bytes) -> bytes:
    """The digest a replica holds after reveal (what replicas and audits compare)."""
    return keccak(output_root + trace_root)


class JobMarketClient(ContractClient):
    """Requesters post and settle jobs; providers commit and reveal; anyone may time out."""

    # -- parameters ----------------------------------------------------------------------
    def token(self) -> str:
        return self.call("token")

    def registry(self) -> str:
        return self.call("registry")

    def owner(self) -> str:
        return self.call("owner")

    def referee(self) -> str:
        return self.call("referee")

    def min_bond(self) -> int:
        return self.call("min_bond")

    def bond_multiplier_bps(self) -> int:
        return self.call("bond_multiplier_bps")

    def audit_fee_bps(self) -> int:
        return self.call("audit_fee_bps")

    def challenge_bond(self) -> int:
        return self.call("challenge_bond")

    def bounty_bps(self) -> int:
        return self.call("bounty_bps")

    def requester_share_bps(self) -> int:
        return self.call("requester_share_bps")

    def dispute_round_window(self) -> int:
        return self.call("dispute_round_window")

    # -- views -------------------------------------------------------------------------
    def job_count(self) -> int:
        return self.call("job_count")

    def jobs(self, job_id: int) -> Job:
        return Job.model_validate(self.call("jobs", job_id))

    def assigned(self, job_id: int) -> list[str]:
        return self.call("assigned", job_id)

    def replica(self, job_id: int, index: int) -> Replica:
        return Replica.model_validate(self.call("replica", job_id, index))

    def audits(self, job_id: int) -> Audit:
        return Audit.model_validate(self.call("audits", job_id))

    def disputes(self, job_id: int) -> Dispute:
        return Dispute.model_validate(self.call("disputes", job_id))

    def balances(self, account: str) -> int:
        """``account``'s market balance: deposits plus everything settled jobs credited it
        (payments, refunds, bounties, returned bonds). ``post_job`` spends it first;
        ``withdraw`` moves it to the wallet."""
        return self.call("balances", checksum(account))

    def min_audit_bps(self, price: int) -> int:
        """Smallest audit probability (bps) ``post_job`` accepts at ``price`` besides 0:
        p (bond + price) >= price, so cheating on an audited job loses money
        (``verify.economics.min_audit_bps`` is the offline twin)."""
        return self.call("min_audit_bps", price)

    def bond_for(self, price: int) -> int:
        """Bond locked from each assigned provider's stake for a job at ``price``."""
        return self.call("bond_for", price)

    def escrow_for(self, mode: Mode | int, mode_param: int, price: int) -> int:
        """Tokens ``post_job`` pulls from the requester (approve at least this much)."""
        return self.call("escrow_for", int(mode), mode_param, price)

    def audit_fee_for(self, price: int) -> int:
        return self.call("audit_fee_for", price)

    def commitment_for(
        self, job_id: int, provider: str, output_root: bytes, trace_root: bytes, salt: bytes
    ) -> bytes:
        """On-chain twin of ``commitment()``; use the local one in hot paths."""
        return self.call("commitment_for", job_id, checksum(provider), output_root, trace_root, salt)

    # -- transactions --------------------------------------------------------------------
    def post_job(
        self,
        spec_hash: bytes,
        model_root: bytes,
        input_root: bytes,
        mode: Mode | int,
        mode_param: int,
        price: int,
        commit_window: int,
        reveal_window: int,
        challenge_window: int,
        *,
        signer: Signer | None = None,
        gas: int | None = None,
    ) -> PostedJob:
        """Escrow ``escrow_for(mode, mode_param, price)`` (approve it first) and draw providers."""
        tx = self.transact(
            "post_job",
            spec_hash,
            model_root,
            input_root,
            int(mode),
            mode_param,
            price,
            commit_window,
            reveal_window,
            challenge_window,
            signer=signer,
            gas=gas,
        )
        job_id = tx.event("JobPosted", self.address)["job_id"]
        assigned = sorted(
            (e for e in tx.events_named("ProviderAssigned", self.address) if e["job_id"] == job_id),
            key=lambda e: e["replica"],
        )
        return PostedJob(job_id, [e["provider"] for e in assigned], tx)

    def commit(self, job_id: int, commitment: bytes, *, signer: Signer | None = None) -> Tx:
        return self.transact("commit", job_id, commitment, signer=signer)

    def reveal(
        self,
        job_id: int,
        output_root: bytes,
        trace_root: bytes,
        salt: bytes,
        *,
        signer: Signer | None = None,
        gas: int = REVEAL_GAS,
    ) -> Tx:
        """Open this provider's commitment. Sent with the fixed ``REVEAL_GAS`` limit, so it
        goes through whether or not the other replicas' reveals land first."""
        return self.transact("reveal", job_id, output_root, trace_root, salt, signer=signer, gas=gas)

    def audit_report(
        self, job_id: int, output_root: bytes, trace_root: bytes, *, signer: Signer | None = None
    ) -> Tx:
        return self.transact("audit_report", job_id, output_root, trace_root, signer=signer)

    def abandon_audit(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        """The drawn validator cannot audit (nobody gave it the job): before the report
        deadline, release every bond and refund the requester instead of being slashed as
        silent."""
        return self.transact("abandon_audit", job_id, signer=signer)

    def challenge(self, job_id: int, replica: int, *, signer: Signer | None = None) -> Tx:
        """Open a dispute against ``replica``; pulls ``challenge_bond()`` (approve first)."""
        return self.transact("challenge", job_id, replica, signer=signer)

    def dispute_move(self, job_id: int, data: bytes, *, signer: Signer | None = None) -> Tx:
        return self.transact("dispute_move", job_id, data, signer=signer)

    def dispute_timeout(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("dispute_timeout", job_id, signer=signer)

    def refer_dispute(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        """The party due to move ends the bisection and hands the dispute to the referee
        (the DisputeCommittee), which then has one round window for its verdict."""
        return self.transact("refer_dispute", job_id, signer=signer)

    def resolve_dispute(self, job_id: int, provider_at_fault: bool, *, signer: Signer | None = None) -> Tx:
        """Referee only: the verdict of the dispute on ``job_id``."""
        return self.transact("resolve_dispute", job_id, provider_at_fault, signer=signer)

    def resolve_dispute_both(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        """Referee only: both results are wrong; both sides slashed, the requester refunded."""
        return self.transact("resolve_dispute_both", job_id, signer=signer)

    def finalize(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("finalize", job_id, signer=signer)

    def timeout(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        """After a missed commit or reveal deadline: slash the silent, refund the requester."""
        return self.transact("timeout", job_id, signer=signer)

    def deposit(self, amount: int, *, signer: Signer | None = None) -> Tx:
        """Move tokens from the wallet into the market balance (approve first)."""
        return self.transact("deposit", amount, signer=signer)

    def withdraw(self, amount: int, *, signer: Signer | None = None) -> Tx:
        """Move ``amount`` of the market balance to the wallet. Settlements only credit
        balances (pull payments), so one withdrawal can collect many jobs."""
        return self.transact("withdraw", amount, signer=signer)

    def set_referee(self, new_referee: str, *, signer: Signer | None = None) -> Tx:
        return self.transact("set_referee", checksum(new_referee), signer=signer)
