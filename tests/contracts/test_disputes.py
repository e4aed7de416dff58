"""JobMarket.vy: audits, challenges, the dispute game's turns and deadlines, verdicts both
ways, and what every party ends up with.

With the world's parameters: price 2 VMT, audit fee 2 VMT (100% of price), bond 10 VMT,
challenge bond 50 VMT; a forfeited amount X splits 50% bounty, 30% requester, 20% burned.
"""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest
from contract_world import (
    AUDITING,
    BURN,
    CHALLENGE_BOND,
    DISPUTED,
    FINALIZED,
    JOB_PRICE,
    MIN_BOND,
    MODE_REPLICATE,
    OUTPUT,
    REFUNDED,
    REVEALED,
    ROUND_WINDOW,
    TRACE,
    WINDOW,
    E,
    World,
)

BOND = MIN_BOND
FEE = JOB_PRICE
OTHER = b"\x0c" * 32  # a different output root
CHALLENGER_EXTERNAL, CHALLENGER_REPLICA, CHALLENGER_VALIDATOR = 0, 1, 2
TURN_DEFENDER, TURN_CHALLENGER, TURN_REFEREE = 0, 1, 2


def audited_job(world: World) -> tuple[int, str, str]:
    """An audit job with p = 100%, revealed in a later block than its commitment."""
    job_id = world.post(param=10_000)
    (provider,) = world.market.assigned(job_id)
    world.commit(job_id, provider)
    boa.env.time_travel(blocks=1)
    world.reveal(job_id, provider)
    assert world.state(job_id) == AUDITING
    return job_id, provider, world.market.audits(job_id).validator


def revealed_job(world: World) -> tuple[int, str]:
    job_id = world.post()
    (provider,) = world.market.assigned(job_id)
    world.commit_reveal_all(job_id)
    return job_id, provider


def challenged_job(world: World) -> tuple[int, str]:
    job_id, provider = revealed_job(world)
    with boa.env.prank(world.challenger):
        world.market.challenge(job_id, 0)
    return job_id, provider


def test_audit_drawn_validator_agrees_and_is_paid(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    assert validator in world.validators
    assert m.jobs(job_id).audited
    assert world.member(validator).locked == BOND
    with boa.env.prank(validator):
        m.audit_report(job_id, OUTPUT, TRACE)
    job = m.jobs(job_id)
    assert job.state == REVEALED
    assert job.challenge_deadline == boa.env.timestamp + WINDOW  # a fresh window
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    assert m.balances(provider) == JOB_PRICE
    assert m.balances(validator) == FEE
    assert world.member(validator).locked == 0
    world.assert_conserved()


# A job cheap enough for audit(p = 0.01%) to deter: p (S + R) >= g needs
# price <= p x (bond + price), so 0.001 VMT against the 10 VMT minimum bond.
TINY_PRICE = E // 1000


@pytest.fixture
def cheap_provider(world: World) -> Iterator[str]:
    """A provider asking nothing: the only one drawable for a TINY_PRICE job. It joins
    `world.providers` for this test only (the session world outlives the chain rollback)."""
    cheap = boa.env.generate_address("cheap provider")
    world.register(cheap, price=0)
    world.providers.append(cheap)
    yield cheap
    world.providers.remove(cheap)


def tiny_audit_job(world: World) -> int:
    """audit(0.01%) at TINY_PRICE (needs the `cheap_provider` fixture)."""
    return world.post(param=1, price=TINY_PRICE)


@pytest.mark.usefixtures("cheap_provider")
def test_same_block_reveal_is_audited_for_certain(world: World) -> None:
    """The audit coin reads the hash of the commitment's block; a reveal in that very
    block cannot read it, so the job is audited whatever p is."""
    job_id = tiny_audit_job(world)
    world.commit_reveal_all(job_id)
    assert world.state(job_id) == AUDITING


@pytest.mark.usefixtures("cheap_provider")
def test_audit_not_drawn_refunds_the_fee(world: World) -> None:
    m = world.market
    job_id = tiny_audit_job(world)  # p = 0.01%
    (provider,) = m.assigned(job_id)
    world.commit(job_id, provider)
    boa.env.time_travel(blocks=1)
    world.reveal(job_id, provider)
    assert world.state(job_id) == REVEALED
    assert not m.jobs(job_id).audited
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    assert m.balances(world.requester) == TINY_PRICE  # the fee (100% of the price) back
    world.assert_conserved()


def test_audit_without_eligible_validator_goes_unaudited(world: World) -> None:
    m = world.market
    for v in world.validators:
        with boa.env.prank(v):
            world.registry.deregister()
    job_id = world.post(param=10_000)
    world.commit_reveal_all(job_id)
    job = m.jobs(job_id)
    assert job.state == REVEALED and not job.audited
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    assert m.balances(world.requester) == FEE
    world.assert_conserved()


def test_requester_is_never_its_own_auditor(world: World) -> None:
    v0, v1 = world.validators
    world.fund(v0)
    for _ in range(3):
        job_id = world.post(param=10_000, requester=v0)
        (provider,) = world.market.assigned(job_id)
        world.commit(job_id, provider)
        boa.env.time_travel(blocks=1)
        world.reveal(job_id, provider)
        assert world.market.audits(job_id).validator == v1
    with boa.env.prank(v1):
        world.registry.deregister()  # now the requester is the only validator
    job_id = world.post(param=10_000, requester=v0)
    world.commit_reveal_all(job_id)
    assert world.state(job_id) == REVEALED and not world.market.jobs(job_id).audited


def test_audit_reverts(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(provider), boa.reverts("job_market: caller is not the drawn validator"):
        m.audit_report(job_id, OUTPUT, TRACE)
    with boa.env.prank(world.challenger), boa.reverts(
            "job_market: audit in progress; challenge after its report"):
        m.challenge(job_id, 0)
    with boa.reverts("job_market: audit report deadline not reached"):
        m.finalize(job_id)
    boa.env.time_travel(seconds=WINDOW + 1)
    with boa.env.prank(validator), boa.reverts("job_market: audit report deadline passed"):
        m.audit_report(job_id, OUTPUT, TRACE)
    other, _ = revealed_job(world)
    with boa.env.prank(validator), boa.reverts("job_market: job is not being audited"):
        m.audit_report(other, OUTPUT, TRACE)


def test_silent_validator_is_slashed_and_the_provider_paid(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    assert world.state(job_id) == FINALIZED
    assert m.balances(provider) == JOB_PRICE
    assert m.balances(world.requester) == FEE + 5 * E + 3 * E  # fee back, bounty and share
    assert world.member(validator).stake == 200 * E - BOND
    world.assert_conserved()


def test_a_validator_left_without_the_job_abandons_the_audit_and_nobody_is_slashed(world: World) -> None:
    """A provider withheld the job from its auditor and the requester is offline: the
    validator cannot tell who is to blame, so it abandons instead of going silent."""
    m = world.market
    job_id, provider, validator = audited_job(world)
    stakes = {a: world.member(a).stake for a in (provider, validator)}
    with boa.env.prank(validator):
        m.abandon_audit(job_id)
    (event,) = [e for e in m.get_logs() if type(e).__name__ == "AuditAbandoned"]
    assert (event.job_id, event.validator) == (job_id, validator)
    assert world.state(job_id) == REFUNDED
    assert m.balances(world.requester) == JOB_PRICE + FEE  # the whole escrow back
    assert m.balances(provider) == 0 and m.balances(validator) == 0  # nobody is paid...
    for a in (provider, validator):  # ... or slashed, and every bond is free again
        assert world.member(a).stake == stakes[a] and world.member(a).locked == 0
    world.assert_conserved()


def test_abandon_audit_reverts(world: World) -> None:
    """Only the drawn validator, only while the job is audited, only before the deadline;
    a refused call changes nothing."""
    m = world.market
    job_id, provider, validator = audited_job(world)
    for who in (provider, world.requester, world.challenger):
        with boa.env.prank(who), boa.reverts("job_market: caller is not the drawn validator"):
            m.abandon_audit(job_id)
    other, _ = revealed_job(world)
    with boa.env.prank(validator), boa.reverts("job_market: job is not being audited"):
        m.abandon_audit(other)
    with boa.env.prank(validator), boa.reverts("job_market: unknown job"):
        m.abandon_audit(10**9)
    boa.env.time_travel(seconds=WINDOW + 1)
    with boa.env.prank(validator), boa.reverts("job_market: audit report deadline passed"):
        m.abandon_audit(job_id)
    assert world.state(job_id) == AUDITING
    assert world.member(validator).locked == BOND
    m.finalize(job_id)  # silent after all: slashed
    assert world.member(validator).stake == 200 * E - BOND
    with boa.env.prank(validator), boa.reverts("job_market: job is not being audited"):
        m.abandon_audit(job_id)
    world.assert_conserved()


def test_an_audit_reported_cannot_be_abandoned(world: World) -> None:
    m = world.market
    job_id, _, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OUTPUT, TRACE)
    with boa.env.prank(validator), boa.reverts("job_market: job is not being audited"):
        m.abandon_audit(job_id)
    assert world.state(job_id) == REVEALED


def test_audit_catches_a_cheating_provider(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OTHER, TRACE)
    assert world.state(job_id) == DISPUTED
    d = m.disputes(job_id)
    assert (d.challenger, d.kind, d.defender_replica, d.turn) == (
        validator, CHALLENGER_VALIDATOR, 0, TURN_DEFENDER)
    burned = world.balance(BURN)
    m.resolve_dispute(job_id, True)  # the referee (world owner) rules
    assert world.state(job_id) == FINALIZED
    assert m.balances(provider) == 0
    assert world.member(provider).stake == 200 * E - BOND
    assert m.balances(validator) == FEE + 5 * E
    assert world.member(validator).locked == 0
    assert m.balances(world.requester) == JOB_PRICE + 3 * E
    assert world.balance(BURN) == burned + 2 * E
    world.assert_conserved()


def test_lying_validator_is_slashed(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OTHER, TRACE)
    m.resolve_dispute(job_id, False)
    assert m.balances(provider) == JOB_PRICE + 5 * E
    assert world.member(provider).locked == 0
    assert world.member(validator).stake == 200 * E - BOND
    assert m.balances(validator) == 0
    assert m.balances(world.requester) == FEE + 3 * E
    world.assert_conserved()


def _wealth(world: World, *accounts: str) -> int:
    """Tokens held, credited in JobMarket and staked in Registry by ``accounts``."""
    return sum(world.balance(a) + world.market.balances(a) + world.member(a).stake for a in accounts)


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy auditor", "diligent auditor"])
def test_a_probe_of_the_auditor_earns_what_economics_says(world: World, lazy: bool) -> None:
    """One owner as requester, provider and challenger reveals a wrong result on purpose.
    A lazy auditor agrees with it: the owner's challenge slashes both, and the owner ends
    probe_profit(1) bonds richer (+6 VMT here). A diligent one disputes it: the owner loses
    -probe_profit(0) bonds, its own bond less its share and the audit fee (-9 VMT)
    (docs/verification.md, "Auditors")."""
    from verimesh.verify.economics import probe_profit

    m = world.market
    before = _wealth(world, world.requester, world.challenger, *world.providers)
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OUTPUT if lazy else OTHER, TRACE)  # lazy: the revealed roots
    if lazy:
        with boa.env.prank(world.challenger):
            m.challenge(job_id, 0)
    m.resolve_dispute(job_id, True)  # the provider's result was wrong
    assert world.member(provider).stake == 200 * E - BOND
    assert world.member(validator).stake == 200 * E - (BOND if lazy else 0)
    earned = _wealth(world, world.requester, world.challenger, *world.providers) - before
    assert earned / BOND == pytest.approx(probe_profit(1.0 if lazy else 0.0, audit_fee=FEE / BOND))
    world.assert_conserved()


def test_challenge_reverts(world: World) -> None:
    m = world.market
    fresh = world.post()
    with boa.env.prank(world.challenger), boa.reverts("job_market: job is not open to challenge"):
        m.challenge(fresh, 0)
    job_id, provider = revealed_job(world)
    with boa.env.prank(world.challenger), boa.reverts("job_market: no such replica"):
        m.challenge(job_id, 1)
    with boa.env.prank(provider), boa.reverts("job_market: cannot challenge your own result"):
        m.challenge(job_id, 0)
    stranger = boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("token: insufficient allowance"):
        m.challenge(job_id, 0)
    assert world.state(job_id) == REVEALED
    boa.env.time_travel(seconds=WINDOW + 1)
    with boa.env.prank(world.challenger), boa.reverts("job_market: challenge window closed"):
        m.challenge(job_id, 0)


def test_challenger_wins_against_a_cheating_provider(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    d = m.disputes(job_id)
    assert (d.challenger, d.kind, d.bond) == (world.challenger, CHALLENGER_EXTERNAL,
                                               CHALLENGE_BOND)
    world.assert_conserved()
    m.resolve_dispute(job_id, True)
    assert m.balances(world.challenger) == CHALLENGE_BOND + 5 * E
    assert m.balances(world.requester) == JOB_PRICE + 3 * E
    assert m.balances(provider) == 0
    assert world.member(provider).stake == 200 * E - BOND
    world.assert_conserved()


def test_wrong_challenger_loses_its_bond(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    burned = world.balance(BURN)
    m.resolve_dispute(job_id, False)
    assert m.balances(provider) == JOB_PRICE + CHALLENGE_BOND // 2
    assert world.member(provider).locked == 0
    assert m.balances(world.requester) == CHALLENGE_BOND * 3 // 10
    assert m.balances(world.challenger) == 0
    assert world.balance(BURN) == burned + CHALLENGE_BOND // 5
    world.assert_conserved()


def test_validator_that_vouched_for_a_bad_result_is_slashed(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OUTPUT, TRACE)
    with boa.env.prank(world.challenger):
        m.challenge(job_id, 0)
    m.resolve_dispute(job_id, True)
    assert world.member(provider).stake == 200 * E - BOND
    assert world.member(validator).stake == 200 * E - BOND
    assert m.balances(world.challenger) == CHALLENGE_BOND + 10 * E  # two bounties
    assert m.balances(world.requester) == JOB_PRICE + FEE + 6 * E
    world.assert_conserved()


def test_replica_mismatch_opens_a_dispute_and_the_liar_pays(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    world.commit_reveal_all(job_id, outputs={p1: OTHER})
    assert world.state(job_id) == DISPUTED
    d = m.disputes(job_id)
    assert (d.challenger, d.kind, d.challenger_replica, d.defender_replica) == (
        p0, CHALLENGER_REPLICA, 0, 1)
    m.resolve_dispute(job_id, True)
    assert m.balances(p0) == JOB_PRICE + 5 * E
    assert world.member(p0).locked == 0
    assert world.member(p1).stake == 200 * E - BOND
    assert m.balances(world.requester) == JOB_PRICE + 3 * E
    world.assert_conserved()


def test_replica_mismatch_verdict_pays_every_replica_with_the_good_result(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=3)
    p0, p1, p2 = m.assigned(job_id)
    world.commit_reveal_all(job_id, outputs={p0: OTHER, p2: OTHER})
    assert m.disputes(job_id).defender_replica == 1  # first replica that differs from 0
    m.resolve_dispute(job_id, False)  # replica 1 was right; replicas 0 and 2 lied
    assert m.balances(p1) == JOB_PRICE + 10 * E  # price and a bounty from each liar
    for liar in (p0, p2):
        assert world.member(liar).stake == 200 * E - BOND
        assert m.balances(liar) == 0
    assert m.balances(world.requester) == 2 * JOB_PRICE + 6 * E
    world.assert_conserved()


def test_dispute_turns_and_deadlines(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    with boa.env.prank(world.challenger), boa.reverts("job_market: not your turn"):
        m.dispute_move(job_id, b"\x01" * 32)  # the defender moves first
    with boa.env.prank(provider):
        m.dispute_move(job_id, b"\x01" * 32)
        with boa.reverts("job_market: not your turn"):
            m.dispute_move(job_id, b"\x02" * 32)
    d = m.disputes(job_id)
    assert (d.round, d.turn, d.deadline) == (1, TURN_CHALLENGER,
                                             boa.env.timestamp + ROUND_WINDOW)
    with boa.reverts("job_market: round deadline not reached"):
        m.dispute_timeout(job_id)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    with boa.env.prank(world.challenger), boa.reverts("job_market: round deadline passed"):
        m.dispute_move(job_id, b"\x02" * 32)


def test_silent_defender_loses_the_dispute(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    with boa.env.prank(world.outsider):
        m.dispute_timeout(job_id)
    assert world.state(job_id) == FINALIZED
    assert m.balances(world.challenger) == CHALLENGE_BOND + 5 * E
    assert world.member(provider).stake == 200 * E - BOND
    world.assert_conserved()


def test_silent_challenger_loses_the_dispute(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    with boa.env.prank(provider):
        m.dispute_move(job_id, b"\x01" * 32)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    m.dispute_timeout(job_id)
    assert m.balances(provider) == JOB_PRICE + CHALLENGE_BOND // 2
    assert m.balances(world.challenger) == 0
    world.assert_conserved()


def test_exhausted_rounds_then_silent_referee_annuls(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    movers = [provider, world.challenger]
    for i in range(64):
        with boa.env.prank(movers[i % 2]):
            m.dispute_move(job_id, i.to_bytes(32, "big"))
    assert m.disputes(job_id).turn == TURN_REFEREE
    for who in movers:
        with boa.env.prank(who), boa.reverts(
                "job_market: dispute rounds exhausted; the referee decides"):
            m.dispute_move(job_id, b"\x01" * 32)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    m.dispute_timeout(job_id)
    assert world.state(job_id) == REFUNDED
    assert m.balances(world.challenger) == CHALLENGE_BOND
    assert m.balances(world.requester) == JOB_PRICE
    assert m.balances(provider) == 0
    assert world.member(provider).locked == 0 and world.member(provider).stake == 200 * E
    world.assert_conserved()


def test_annulment_releases_an_audit_validator(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OTHER, TRACE)
    for i in range(64):
        with boa.env.prank(provider if i % 2 == 0 else validator):
            m.dispute_move(job_id, b"\x01" * 32)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    m.dispute_timeout(job_id)
    assert m.balances(world.requester) == JOB_PRICE + FEE
    assert world.member(validator).locked == 0
    world.assert_conserved()


def test_dispute_entry_points_revert_outside_a_dispute(world: World) -> None:
    m = world.market
    job_id, _ = revealed_job(world)
    with boa.reverts("job_market: job is not disputed"):
        m.resolve_dispute(job_id, True)
    with boa.reverts("job_market: job is not disputed"):
        m.dispute_move(job_id, b"\x01" * 32)
    with boa.reverts("job_market: job is not disputed"):
        m.dispute_timeout(job_id)
    disputed, _ = challenged_job(world)
    with boa.env.prank(world.outsider), boa.reverts("job_market: caller is not the referee"):
        m.resolve_dispute(disputed, True)
    m.resolve_dispute(disputed, True)
    with boa.reverts("job_market: job is not disputed"):
        m.resolve_dispute(disputed, True)



def test_party_due_refers_the_dispute_to_the_referee(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    with boa.env.prank(world.challenger), boa.reverts("job_market: not your turn"):
        m.refer_dispute(job_id)  # the defender is due
    with boa.env.prank(provider):
        m.dispute_move(job_id, b"\x01" * 32)
    with boa.env.prank(provider), boa.reverts("job_market: not your turn"):
        m.refer_dispute(job_id)
    with boa.env.prank(world.challenger):
        m.refer_dispute(job_id)
    (event,) = [e for e in m.get_logs() if type(e).__name__ == "DisputeReferred"]
    d = m.disputes(job_id)
    assert (d.round, d.turn, d.deadline) == (1, TURN_REFEREE, boa.env.timestamp + ROUND_WINDOW)
    assert (event.by, event.round, event.deadline) == (world.challenger, 1, d.deadline)
    for who in (provider, world.challenger):
        with boa.env.prank(who), boa.reverts("job_market: dispute rounds exhausted; the referee decides"):
            m.refer_dispute(job_id)
        with boa.env.prank(who), boa.reverts("job_market: dispute rounds exhausted; the referee decides"):
            m.dispute_move(job_id, b"\x02" * 32)
    with boa.reverts("job_market: round deadline not reached"):
        m.dispute_timeout(job_id)
    m.resolve_dispute(job_id, True)
    assert world.state(job_id) == FINALIZED
    world.assert_conserved()


def test_refer_reverts_outside_a_live_turn(world: World) -> None:
    m = world.market
    job_id, provider = revealed_job(world)
    with boa.env.prank(provider), boa.reverts("job_market: job is not disputed"):
        m.refer_dispute(job_id)
    with boa.env.prank(world.challenger):
        m.challenge(job_id, 0)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    with boa.env.prank(provider), boa.reverts("job_market: round deadline passed"):
        m.refer_dispute(job_id)


def test_referred_dispute_with_a_silent_referee_is_annulled(world: World) -> None:
    m = world.market
    job_id, provider = challenged_job(world)
    with boa.env.prank(provider):
        m.refer_dispute(job_id)
    boa.env.time_travel(seconds=ROUND_WINDOW + 1)
    m.dispute_timeout(job_id)
    assert world.state(job_id) == REFUNDED
    assert m.balances(world.requester) == JOB_PRICE
    assert m.balances(world.challenger) == CHALLENGE_BOND
    world.assert_conserved()


def test_both_at_fault_slashes_both_replicas(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    world.commit_reveal_all(job_id, outputs={p0: OTHER, p1: b"\x0d" * 32})
    with boa.env.prank(world.outsider), boa.reverts("job_market: caller is not the referee"):
        m.resolve_dispute_both(job_id)
    burned = world.balance(BURN)
    m.resolve_dispute_both(job_id)
    (event,) = [e for e in m.get_logs() if type(e).__name__ == "DisputeResolved"]
    assert (event.defender_at_fault, event.reason, event.winner) == (True, 2, world.requester)
    for liar in (p0, p1):
        assert world.member(liar).stake == 200 * E - BOND and m.balances(liar) == 0
    assert m.balances(world.requester) == 2 * JOB_PRICE + 2 * 8 * E
    assert world.balance(BURN) == burned + 2 * 2 * E
    with boa.reverts("job_market: job is not disputed"):
        m.resolve_dispute_both(job_id)
    world.assert_conserved()


def test_both_at_fault_after_an_audit_slashes_provider_and_validator(world: World) -> None:
    m = world.market
    job_id, provider, validator = audited_job(world)
    with boa.env.prank(validator):
        m.audit_report(job_id, OTHER, TRACE)
    m.resolve_dispute_both(job_id)
    assert world.member(provider).stake == 200 * E - BOND
    assert world.member(validator).stake == 200 * E - BOND
    assert m.balances(validator) == 0 and m.balances(provider) == 0
    assert m.balances(world.requester) == JOB_PRICE + FEE + 2 * 8 * E
    world.assert_conserved()
