"""A contract world whose referee is the DisputeCommittee: validators with real keys (they
sign verdicts), the committee wired as JobMarket's referee and the Registry's slasher, and
helpers that drive a dispute to a drawn committee and sign its verdicts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import boa
from contract_world import ROLE_VALIDATOR, E, World, deploy, load
from eth_account import Account
from eth_account.signers.local import LocalAccount

from verimesh.verify.committee import (
    Validator,
    Verdict,
    VerdictSignature,
    aggregate,
    sign_verdict,
    verdict_domain,
)

COMMITTEE_SIZE = 5
THRESHOLD = 3
PENALTY = 50 * E
REPORTER_BOUNTY_BPS = 5_000
VALIDATOR_STAKE = 200 * E
OUTPUT_HASH = b"\x77" * 32  # the op output the committee recomputed
LEAF = (2 << 32) | 17  # step 2, op 17


@dataclass
class CommitteeWorld:
    world: World
    committee: Any
    keys: dict[str, LocalAccount] = field(default_factory=dict)

    @property
    def market(self) -> Any:
        return self.world.market

    @property
    def registry(self) -> Any:
        return self.world.registry

    def domain(self):
        return verdict_domain(boa.env.evm.patch.chain_id, str(self.committee.address))

    def referred_dispute(self) -> tuple[int, str]:
        """An externally challenged audit(0) job whose defender ends the game at once."""
        w = self.world
        job_id = w.post()
        (provider,) = w.market.assigned(job_id)
        w.commit_reveal_all(job_id)
        with boa.env.prank(w.challenger):
            w.market.challenge(job_id, 0)
        with boa.env.prank(provider):
            w.market.refer_dispute(job_id)
        return job_id, provider

    def draw(self, job_id: int) -> list[str]:
        self.committee.request_committee(job_id)
        boa.env.time_travel(blocks=1)
        return list(self.committee.draw_committee(job_id))

    def verdict(self, job_id: int, guilty: int, leaf: int = LEAF, output: bytes = OUTPUT_HASH) -> Verdict:
        round_ = self.committee.committees(job_id).dispute_round
        return Verdict(job_id=job_id, dispute_round=round_, guilty=guilty, leaf_index=leaf,
                       recomputed_output=output)

    def sign(self, members: list[str], verdict: Verdict) -> list[VerdictSignature]:
        expiry = self.committee.committees(verdict.job_id).deadline
        return [sign_verdict(self.keys[m], verdict, self.domain(), expiry) for m in members]

    def submit(self, verdict: Verdict, signatures: list[VerdictSignature], sort: bool = True) -> None:
        ordered = aggregate(verdict, 0, signatures).signatures if sort else signatures
        self.committee.submit_verdict(
            verdict.job_id, verdict.guilty, verdict.leaf_index, verdict.recomputed_output,
            [(s.signer, s.signature) for s in ordered],
        )

    def snapshot(self) -> tuple[list[str], dict[str, int]]:
        """The registry's validator list (list order) and each one's free stake."""
        r = self.registry
        listed = [str(r.validator_at(i)) for i in range(r.validator_count())]
        return listed, {a: r.free_stake(a) for a in listed}


def validator_keys(count: int) -> list[LocalAccount]:
    return [Account.from_key(hashlib.sha256(b"committee validator %d" % i).digest()) for i in range(count)]


def deploy_committee_world(validators: int = 7, stakes: list[int] | None = None,
                           size: int = COMMITTEE_SIZE, threshold: int = THRESHOLD) -> CommitteeWorld:
    world = deploy(providers=3, validators=0)
    committee = load("DisputeCommittee.vy", world.market.address, world.registry.address,
                     world.token.address, size, threshold, PENALTY, REPORTER_BOUNTY_BPS)
    world.market.set_referee(committee.address)
    world.registry.set_slasher(committee.address)
    cw = CommitteeWorld(world, committee)
    for i, key in enumerate(validator_keys(validators)):
        stake = stakes[i] if stakes else VALIDATOR_STAKE
        world.register(key.address, role=ROLE_VALIDATOR, stake=stake, price=0)
        world.validators.append(key.address)
        cw.keys[key.address] = key
    return cw


def pool_validators(listed: list[str], free: dict[str, int]) -> list[Validator]:
    return [Validator(address=a, stake=free[a]) for a in listed if free[a] > 0]
