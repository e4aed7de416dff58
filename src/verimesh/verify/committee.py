"""The dispute verdict as m-of-n EIP-712 signatures of a committee of staked validators.

Why a committee: one referee is one key to bribe or steal. The committee is drawn from the
staked validators by chain randomness the parties cannot steer (``draw_committee``: stake
weighted, without replacement, a pure function of the seed), each member recomputes the
disputed op itself (``referee.decide``) and signs a ``Verdict``; the verdict counts once
``threshold`` distinct members signed the SAME message. A minority that signs a false
verdict therefore cannot reach the threshold, and cannot borrow the honest members'
signatures either: each signature covers the whole typed message.

Signatures use verimesh's EIP-712 domain (``crypto.eip712``) with the DisputeCommittee
contract as verifying contract (``verdict_domain``), so a verdict signed for one chain or
deployment is worthless on another. The envelope fields are fixed for verdicts: ``nonce`` 0
(a verdict is unique per job and dispute round anyway) and ``expiry`` the committee's
deadline, by which the verdict must be submitted.

On chain (``chain/contracts/DisputeCommittee.vy``) the committee is drawn from the
Registry's validator list: ``scan_pool`` is the contract's scan (a window of at most 32
list entries from the seed, the dispute's parties and validators without free stake left
out), ``draw_committee`` its stake-weighted draw, ``committee_threshold`` its m-of-n
rounding. ``tests/contracts/test_committee_contract.py`` checks that both draw the same
committee from the same seed and registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from eth_utils import keccak, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field

from ..crypto.eip712 import Bytes32, Domain, TypedMessage, Uint256, fast_digest, typed_data
from ..crypto.envelope import ecdsa_signature_checker

GUILTY_DEFENDER = 1
GUILTY_CHALLENGER = 2
GUILTY_BOTH = 3
VERDICT_NONCE = 0
# DisputeCommittee.vy's bounds: list entries one draw inspects, largest committee.
MAX_SCAN = 32
# DisputeCommittee._POOL_TAG: keeps the pool's probes apart from the draw's hashes of the seed.
POOL_TAG = keccak(b"verimesh.committee.pool")
MAX_COMMITTEE = 16


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


def verdict_domain(chain_id: int, committee_address: str) -> Domain:
    """The EIP-712 domain verdicts are signed in: verimesh's, verified by the committee contract."""
    return Domain(chain_id=chain_id, verifying_contract=committee_address)


def scan_pool(
    seed: bytes, listed: Sequence[str], free_stake: Mapping[str, int], exclude: Iterable[str]
) -> list[Validator]:
    """The validators a committee is drawn from, as DisputeCommittee.vy collects them.

    ``listed`` is the Registry's validator list in list order (``validator_at(0..count-1)``),
    ``free_stake`` each one's ``Registry.free_stake`` (the draw weight), ``exclude`` the
    dispute's parties (requester, defender, challenger). A list of at most ``MAX_SCAN``
    is taken whole (from uint256(seed) mod count, wrapping); a longer one is probed at
    ``pool_position(seed, i, count)`` for i < ``MAX_SCAN``, each validator once: a window
    of neighbours would let a cartel that registered in a row fill most of a pool."""
    if len(seed) != 32:
        raise CommitteeError(f"the seed must be 32 bytes of chain randomness, got {len(seed)}")
    excluded = {a.lower() for a in exclude}
    n = len(listed)
    if n == 0:
        return []
    start = int.from_bytes(seed, "big") % n
    pool: list[Validator] = []
    seen: set[str] = set()
    for i in range(min(n, MAX_SCAN)):
        address = listed[pool_position(seed, i, n) if n > MAX_SCAN else (start + i) % n]
        weight = free_stake[address]
        if address.lower() in excluded or address.lower() in seen or weight == 0:
            continue
        seen.add(address.lower())
        pool.append(Validator(address=address, stake=weight))
    return pool


def pool_position(seed: bytes, probe: int, listed: int) -> int:
    """The list position probe ``probe`` of a committee draw inspects in a list longer than
    ``MAX_SCAN``: keccak256(seed || POOL_TAG || uint256(probe)) mod its length."""
    return int.from_bytes(keccak(seed + POOL_TAG + probe.to_bytes(32, "big")), "big") % listed


def committee_threshold(size: int, committee_size: int, threshold: int) -> int:
    """Signatures a committee of ``size`` needs under the contract's m-of-n (ceil(size m / n))."""
    if not 0 < threshold <= committee_size or 2 * threshold <= committee_size:
        raise CommitteeError(f"{threshold}-of-{committee_size} is not a majority threshold")
    return -(-size * threshold // committee_size)


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


def expected_committee(
    seed: bytes,
    listed: Sequence[str],
    free_stake: Mapping[str, int],
    exclude: Iterable[str],
    committee_size: int,
) -> list[str]:
    """The members DisputeCommittee.draw_committee draws from this registry snapshot, in
    draw order (``scan_pool`` then ``draw_committee`` of min(committee_size, pool) members)."""
    pool = scan_pool(seed, listed, free_stake, exclude)
    if not pool:
        raise CommitteeError("no eligible validator: every listed validator is a party or has no free stake")
    return draw_committee(seed, pool, min(committee_size, len(pool)))


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
    """``signer``'s 65-byte signature (r || s || v) of ``verdict``; ``expiry`` must be the
    committee's deadline (the contract checks the signature against exactly that).
    ``signer`` is an eth-account ``LocalAccount``, a ``crypto.wallet`` wallet or a
    ``chain.accounts.Signer`` (which returns ``(v, r, s)``)."""
    full = typed_data(domain, verdict, signer.address, VERDICT_NONCE, expiry)
    signed = signer.sign_typed_data(full_message=full)
    if hasattr(signed, "signature"):  # eth-account's SignedMessage
        signature = bytes(signed.signature)
    else:  # chain.accounts.Signer: (v, r, s)
        v, r, s = signed
        signature = bytes(r) + bytes(s) + bytes([v])
    return VerdictSignature(signer=to_checksum_address(signer.address), signature=signature)


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
