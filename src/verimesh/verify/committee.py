"""The dispute verdict as m-of-n EIP-712 signatures of a committee of staked validators.

Why a committee: one referee is one key to bribe or steal. The committee is drawn from the
staked validators by chain randomness the parties cannot steer (``draw_committee``: stake
weighted, without replacement, a pure function of the seed), each member recomputes the
disputed op itself (``referee.decide``) and signs a ``Verdict``; the verdict counts once
``threshold`` distinct members signed the SAME message. A minority that signs a false
verdict therefore cannot reach the threshold, and cannot borrow the honest members'
signatures either: each signature covers the whole typed message.

Signatures use verimesh's EIP-712 domain (``crypto.eip712``), so a verdict signed for one
chain or JobMarket deployment is worthless on another. The envelope fields are fixed for
verdicts: ``nonce`` 0 (a verdict is unique per job and dispute round anyway) and ``expiry``
the deadline by which the verdict must be submitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from eth_utils import keccak, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field

from ..crypto.eip712 import Bytes32, Domain, TypedMessage, Uint256, fast_digest, typed_data
from ..crypto.envelope import ecdsa_signature_checker

GUILTY_DEFENDER = 1
GUILTY_CHALLENGER = 2
GUILTY_BOTH = 3
VERDICT_NONCE = 0


class CommitteeError(ValueError):
    """A committee draw or a verdict certificate that cannot be accepted as given."""


class Verdict(TypedMessage):
    """What the committee signs: who lied at which leaf, and the output it recomputed."""

    eip712_type: ClassVar[str] = "DisputeVerdict"

    job_id: Uint256
    dispute_round: Uint256
    guilty: Uint256  # 1 defender, 2 challenger, 3 both (referee.Ruling.guilty_code)
    leaf_index: Uint256  # step * 2**32 + op index in the step
    recomputed_output: Bytes32  # tensor hash the committee computed for that op


def leaf_index(step: int, index: int) -> int:
    return (step << 32) | index


class Validator(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str
    stake: int = Field(gt=0)


def draw_committee(seed: bytes, validators: Sequence[Validator], size: int) -> list[str]:
    """``size`` distinct validators, stake-weighted, without replacement, from ``seed``.

    Draw k picks the member whose cumulative stake interval holds
    keccak256(seed || uint256(k)) mod (stake still in the pool)."""
    if len(seed) != 32:
        raise CommitteeError(f"the seed must be 32 bytes of chain randomness, got {len(seed)}")
    pool = sorted(validators, key=lambda v: v.address.lower())
    addresses = [v.address.lower() for v in pool]
    if len(set(addresses)) != len(addresses):
        raise CommitteeError("a validator appears twice in the list; pass each staked validator once")
    if not 0 < size <= len(pool):
        raise CommitteeError(f"cannot draw a committee of {size} from {len(pool)} validators")
    chosen: list[str] = []
    for k in range(size):
        total = sum(v.stake for v in pool)
        r = int.from_bytes(keccak(seed + k.to_bytes(32, "big")), "big") % total
        for i, v in enumerate(pool):
            if r < v.stake:
                chosen.append(to_checksum_address(v.address))
                del pool[i]
                break
            r -= v.stake
    return chosen


def default_threshold(size: int) -> int:
    """More than two thirds of the committee."""
    return size * 2 // 3 + 1


class Signer(Protocol):
    @property
    def address(self) -> str: ...

    def sign_typed_data(self, *, full_message: dict[str, Any]) -> Any: ...


class VerdictSignature(BaseModel):
    model_config = ConfigDict(frozen=True)

    signer: str
    signature: bytes


class VerdictCertificate(BaseModel):
    """A verdict and its committee signatures, signers in ascending address order (the
    order a contract checks them in, which also makes a repeated signer visible)."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    expiry: int
    signatures: tuple[VerdictSignature, ...]


def sign_verdict(signer: Signer, verdict: Verdict, domain: Domain, expiry: int) -> VerdictSignature:
    full = typed_data(domain, verdict, signer.address, VERDICT_NONCE, expiry)
    signed = signer.sign_typed_data(full_message=full)
    return VerdictSignature(signer=to_checksum_address(signer.address), signature=bytes(signed.signature))


def aggregate(verdict: Verdict, expiry: int, signatures: Sequence[VerdictSignature]) -> VerdictCertificate:
    ordered = tuple(sorted(signatures, key=lambda s: int(s.signer, 16)))
    return VerdictCertificate(verdict=verdict, expiry=expiry, signatures=ordered)


def check_certificate(
    certificate: VerdictCertificate,
    domain: Domain,
    committee: Sequence[str],
    threshold: int,
    now: int,
) -> list[str]:
    """Accept the certificate or raise ``CommitteeError`` saying why; returns the signers.

    All-or-nothing, like the contract: one bad, repeated or foreign signature rejects it."""
    members = {to_checksum_address(a) for a in committee}
    if not 0 < threshold <= len(members):
        raise CommitteeError(f"threshold {threshold} is impossible for a committee of {len(members)}")
    if now > certificate.expiry:
        raise CommitteeError("the verdict's signatures expired; ask the committee to sign again")
    signers: list[str] = []
    last = -1
    for sig in certificate.signatures:
        signer = to_checksum_address(sig.signer)
        if int(signer, 16) <= last:
            raise CommitteeError(f"signer {signer} is repeated or out of ascending order; sign once each, sorted")
        last = int(signer, 16)
        if signer not in members:
            raise CommitteeError(f"{signer} is not a member of this dispute's committee")
        digest = fast_digest(domain, certificate.verdict, signer, VERDICT_NONCE, certificate.expiry)
        if not ecdsa_signature_checker(signer, digest, sig.signature):
            raise CommitteeError(
                f"the signature of {signer} does not match this verdict for chain {domain.chain_id} "
                f"and contract {domain.verifying_contract}"
            )
        signers.append(signer)
    if len(signers) < threshold:
        raise CommitteeError(f"{len(signers)} committee signatures, {threshold} needed")
    return signers
