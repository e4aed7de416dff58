"""Typed client of DisputeCommittee.vy: draw a dispute's committee, submit its m-of-n verdict,
report members that signed another verdict.

The flow of one dispute (docs/verification.md, "The committee on chain"): the party due to
move calls ``JobMarketClient.refer_dispute``; anyone calls ``request_committee``, then, at
least one block later, ``draw_committee``; each member signs a ``verify.committee.Verdict``
(``dispute_round`` from ``committee(job_id)``) with ``sign_verdict(account, verdict,
client.domain(), expiry=committee(job_id).deadline)``; anyone submits ``aggregate(...)`` of
at least ``threshold`` signatures with ``submit_verdict``. The signed message and the draw
are defined once, in ``verimesh.verify.committee`` (above this layer: the methods here take
any object with the verdict's fields), this module only moves them on and off the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from verimesh.chain.accounts import Signer
from verimesh.chain.contract import ContractClient, Tx, checksum
from verimesh.crypto.eip712 import Domain


class VerdictFields(Protocol):
    """What a verdict carries on chain (``verify.committee.Verdict`` has these fields)."""

    job_id: int
    guilty: int
    leaf_index: int
    recomputed_output: bytes


class MemberSignature(Protocol):
    signer: str
    signature: bytes


class Certificate(Protocol):
    """A verdict and its member signatures (``verify.committee.VerdictCertificate``)."""

    verdict: VerdictFields
    signatures: Sequence[MemberSignature]


class CommitteeInfo(BaseModel):
    """The ``Committee`` struct (all zero until drawn)."""

    dispute_round: int
    seed: bytes
    deadline: int  # JobMarket's referee deadline; every signature's EIP-712 expiry
    threshold: int
    size: int
    accepted: bool
    guilty: int  # accepted verdict: 1 defender, 2 challenger, 3 both (0 before)

    @property
    def drawn(self) -> bool:
        return self.size > 0


@dataclass(frozen=True)
class DrawnCommittee:
    """Result of ``draw_committee`` (from its CommitteeDrawn event)."""

    job_id: int
    dispute_round: int
    seed: bytes
    members: list[str]
    threshold: int
    deadline: int
    tx: Tx


class CommitteeClient(ContractClient):
    """JobMarket's referee: a stake-weighted validator committee per dispute."""

    # -- parameters ----------------------------------------------------------------------
    def job_market(self) -> str:
        return self.call("job_market")

    def registry(self) -> str:
        return self.call("registry")

    def committee_size(self) -> int:
        """n: most members per committee."""
        return self.call("committee_size")

    def threshold(self) -> int:
        """m: signatures a full committee needs (a smaller one needs ceil(size m / n))."""
        return self.call("threshold")

    def equivocation_penalty(self) -> int:
        return self.call("equivocation_penalty")

    def reporter_bounty_bps(self) -> int:
        return self.call("reporter_bounty_bps")

    def domain(self) -> Domain:
        """The EIP-712 domain verdicts are signed in (verifying contract: this committee)."""
        return Domain(chain_id=self.backend.chain_id, verifying_contract=self.address)

    # -- views ---------------------------------------------------------------------------
    def request_block(self, job_id: int) -> int:
        """Block whose hash seeds the job's draw (0: not requested)."""
        return self.call("request_block", job_id)

    def committee(self, job_id: int) -> CommitteeInfo:
        return CommitteeInfo.model_validate(self.call("committees", job_id))

    def members(self, job_id: int) -> list[str]:
        return self.call("members", job_id)

    def is_member(self, job_id: int, account: str) -> bool:
        return self.call("is_member", job_id, checksum(account))

    def slashed(self, job_id: int, account: str) -> bool:
        return self.call("slashed", job_id, checksum(account))

    def threshold_for(self, size: int) -> int:
        return self.call("threshold_for", size)

    def verdict_digest(self, verdict: VerdictFields, signer: str) -> bytes:
        """On-chain twin of ``crypto.eip712.fast_digest`` for a verdict (tests pin both)."""
        return self.call("verdict_digest", verdict.job_id, verdict.guilty, verdict.leaf_index,
                         verdict.recomputed_output, checksum(signer))

    # -- transactions --------------------------------------------------------------------
    def request_committee(self, job_id: int, *, signer: Signer | None = None) -> Tx:
        """Fix the block whose hash seeds the draw; the dispute must be in the referee turn."""
        return self.transact("request_committee", job_id, signer=signer)

    def draw_committee(self, job_id: int, *, signer: Signer | None = None) -> DrawnCommittee:
        """Draw the members (1..256 blocks after the request)."""
        tx = self.transact("draw_committee", job_id, signer=signer)
        event = tx.event("CommitteeDrawn", self.address)
        return DrawnCommittee(job_id, event["dispute_round"], event["seed"], list(event["members"]),
                              event["threshold"], event["deadline"], tx)

    def publish_signature(self, verdict: VerdictFields, signature: bytes, *, signer: Signer | None = None) -> Tx:
        """Post the sender's own verdict signature as a VerdictSigned event (optional: an
        on-chain bulletin board from which any member can collect the others')."""
        return self.transact("publish_signature", verdict.job_id, verdict.guilty, verdict.leaf_index,
                             verdict.recomputed_output, signature, signer=signer)

    def submit_verdict(self, certificate: Certificate, *, signer: Signer | None = None) -> Tx:
        """Hand a verdict with at least ``threshold`` member signatures to JobMarket.
        ``verify.committee.aggregate`` orders the signatures as the contract wants them."""
        v = certificate.verdict
        signatures = [(checksum(s.signer), s.signature) for s in certificate.signatures]
        return self.transact("submit_verdict", v.job_id, v.guilty, v.leaf_index, v.recomputed_output,
                             signatures, signer=signer)

    def report_equivocation(
        self, verdict: VerdictFields, member: str, signature: bytes, *, signer: Signer | None = None
    ) -> Tx:
        """Slash ``member`` for its ``signature`` on ``verdict`` when the job's accepted
        verdict differs; the sender earns the reporter's bounty."""
        return self.transact("report_equivocation", verdict.job_id, verdict.guilty, verdict.leaf_index,
                             verdict.recomputed_output, checksum(member), signature, signer=signer)
