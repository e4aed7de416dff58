"""JobMarket.vy: posting and assignment, commit-reveal, finalize, timeouts, market balances.

Disputes and audits live in test_disputes.py. Amounts with the world's parameters: a job
at price 2 VMT locks a bond of max(10, 2 * 2) = 10 VMT per provider; a slash of 10 VMT
splits into 5 bounty, 3 requester share and 2 burned.
"""

from __future__ import annotations

import boa
import pytest
from contract_world import (
    ASSIGNED,
    BURN,
    COMMITTED,
    FINALIZED,
    JOB_PRICE,
    MIN_BOND,
    MODE_AUDIT,
    MODE_REPLICATE,
    MODEL,
    OUTPUT,
    REFUNDED,
    REVEALED,
    ROUND_WINDOW,
    SALT,
    SPEC,
    TRACE,
    WINDOW,
    E,
    World,
    load,
)
from eth_utils import keccak

INPUT = b"\x53" * 32
ZERO = "0x0000000000000000000000000000000000000000"
BOND = MIN_BOND


def post_args(**overrides: object) -> list[object]:
    args = {"spec": SPEC, "model": MODEL, "input": INPUT, "mode": MODE_AUDIT, "param": 0,
            "price": JOB_PRICE, "commit": WINDOW, "reveal": WINDOW, "challenge": WINDOW}
    args.update(overrides)
    return list(args.values())


def test_constructor_reverts(world: World) -> None:
    t, r, o = world.token.address, world.registry.address, world.owner
    good = [t, r, o, MIN_BOND, 20_000, 10_000, 50 * E, 5_000, 3_000, ROUND_WINDOW]
    cases = {
        0: (ZERO, "job_market: token is the zero address"),
        1: (ZERO, "job_market: registry is the zero address"),
        2: (ZERO, "job_market: referee is the zero address"),
        3: (0, "job_market: zero minimum bond"),
        6: (0, "job_market: zero challenge bond"),
        7: (7_001, "job_market: slash split above 10000 bps"),
        9: (59, "job_market: dispute round window out of range"),
    }
    for index, (value, message) in cases.items():
        args = list(good)
        args[index] = value
        with boa.reverts(message):
            load("JobMarket.vy", *args, fresh=True)
    args = list(good)
    args[9] = 30 * 86400 + 1
    with boa.reverts("job_market: dispute round window out of range"):
        load("JobMarket.vy", *args, fresh=True)


def test_set_referee(world: World) -> None:
    m = world.market
    with boa.env.prank(world.outsider), boa.reverts("job_market: caller is not the owner"):
        m.set_referee(world.outsider)
    with boa.reverts("job_market: referee is the zero address"):
        m.set_referee(ZERO)
    m.set_referee(world.outsider)
    assert m.referee() == world.outsider


def test_post_job_escrows_assigns_and_locks(world: World) -> None:
    m = world.market
    wallet = world.balance(world.requester)
    job_id = world.post()
    job = m.jobs(job_id)
    assert (job.requester, job.price, job.state, job.mode, job.replicas) == (
        world.requester, JOB_PRICE, ASSIGNED, MODE_AUDIT, 1)
    assert job.commit_deadline == boa.env.timestamp + WINDOW
    assert job.reveal_deadline == boa.env.timestamp + 2 * WINDOW
    assert world.balance(world.requester) == wallet - JOB_PRICE  # p = 0: no audit fee
    (provider,) = m.assigned(job_id)
    assert provider in world.providers
    assert world.member(provider).locked == BOND
    assert m.replica(job_id, 0).provider == provider
    world.assert_conserved()


def test_escrow_includes_audit_fee_when_audits_are_possible(world: World) -> None:
    m = world.market
    assert m.escrow_for(MODE_AUDIT, 0, JOB_PRICE) == JOB_PRICE
    assert m.escrow_for(MODE_AUDIT, 5_000, JOB_PRICE) == 2 * JOB_PRICE  # fee = 100% of price
    assert m.escrow_for(MODE_REPLICATE, 3, JOB_PRICE) == 3 * JOB_PRICE
    assert m.audit_fee_for(JOB_PRICE) == JOB_PRICE
    assert m.bond_for(JOB_PRICE) == MIN_BOND
    assert m.bond_for(100 * E) == 200 * E


@pytest.mark.parametrize(("overrides", "message"), [
    ({"mode": 2}, "job_market: unknown mode"),
    ({"param": 10_001}, "job_market: audit probability above 10000 bps"),
    ({"mode": MODE_REPLICATE, "param": 0}, "job_market: replicas must be between 1 and 8"),
    ({"mode": MODE_REPLICATE, "param": 9}, "job_market: replicas must be between 1 and 8"),
    ({"price": 0}, "job_market: zero price"),
    ({"price": 2**96}, "job_market: price above 2**96 - 1"),
    ({"commit": 59}, "job_market: commit window out of range"),
    ({"commit": 30 * 86400 + 1}, "job_market: commit window out of range"),
    ({"reveal": 59}, "job_market: reveal window out of range"),
    ({"reveal": 30 * 86400 + 1}, "job_market: reveal window out of range"),
    ({"challenge": 59}, "job_market: challenge window out of range"),
    ({"challenge": 30 * 86400 + 1}, "job_market: challenge window out of range"),
    ({"mode": MODE_REPLICATE, "param": 4}, "job_market: too few eligible providers"),
    ({"price": JOB_PRICE // 4}, "job_market: too few eligible providers"),  # below their price
])
def test_post_job_reverts(world: World, overrides: dict, message: str) -> None:
    wallet = world.balance(world.requester)
    with boa.env.prank(world.requester), boa.reverts(message):
        world.market.post_job(*post_args(**overrides))
    assert world.balance(world.requester) == wallet


def test_post_job_needs_allowance(world: World) -> None:
    stranger = boa.env.generate_address()
    world.token.mint(stranger, 100 * E)
    with boa.env.prank(stranger), boa.reverts("token: insufficient allowance"):
        world.market.post_job(*post_args())


def test_providers_need_free_stake_for_the_bond(world: World) -> None:
    big_price = 60 * E  # bond = 120 VMT, each provider has 200 VMT free
    job_id = world.post(mode=MODE_REPLICATE, param=3, price=big_price)
    assert len(world.market.assigned(job_id)) == 3
    with boa.reverts("job_market: too few eligible providers"):  # 80 VMT free < 120 VMT bond
        world.post(price=big_price)


def test_requester_is_never_its_own_provider(world: World) -> None:
    provider = world.providers[0]
    world.fund(provider)
    for _ in range(6):
        job_id = world.post(mode=MODE_REPLICATE, param=2, requester=provider)
        assert provider not in world.market.assigned(job_id)
    with boa.reverts("job_market: too few eligible providers"):
        world.post(mode=MODE_REPLICATE, param=3, requester=provider)


def test_no_provider_is_assigned_twice(world: World) -> None:
    for _ in range(5):
        assigned = world.market.assigned(world.post(mode=MODE_REPLICATE, param=3))
        assert sorted(assigned) == sorted(world.providers)


def test_audit_job_happy_path(world: World) -> None:
    m = world.market
    job_id = world.post()
    (p,) = m.assigned(job_id)
    world.commit(job_id, p)
    assert world.state(job_id) == COMMITTED
    assert m.replica(job_id, 0).committed
    world.reveal(job_id, p)
    job = m.jobs(job_id)
    assert job.state == REVEALED
    assert job.challenge_deadline == boa.env.timestamp + WINDOW
    assert m.replica(job_id, 0).revealed
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    assert world.state(job_id) == FINALIZED
    assert m.balances(p) == JOB_PRICE
    assert world.member(p).locked == 0
    world.assert_conserved()
    wallet = world.balance(p)
    with boa.env.prank(p):
        m.withdraw(JOB_PRICE)
    assert world.balance(p) == wallet + JOB_PRICE
    assert m.balances(p) == 0
    world.assert_conserved()


def test_replicated_job_pays_every_agreeing_replica(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=3)
    world.commit_reveal_all(job_id)
    assert world.state(job_id) == REVEALED
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    for p in world.providers:
        assert m.balances(p) == JOB_PRICE
        assert world.member(p).locked == 0
    world.assert_conserved()


def test_commit_reverts(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    outsider = next(p for p in world.providers if p not in (p0, p1))
    with boa.env.prank(outsider), boa.reverts("job_market: caller is not assigned to this job"):
        m.commit(job_id, b"\x01" * 32)
    with boa.env.prank(p0):
        with boa.reverts("job_market: empty commitment"):
            m.commit(job_id, b"\x00" * 32)
        with boa.reverts("job_market: unknown job"):
            m.commit(job_id + 1, b"\x01" * 32)
        m.commit(job_id, b"\x01" * 32)
        with boa.reverts("job_market: already committed"):
            m.commit(job_id, b"\x02" * 32)
    boa.env.time_travel(seconds=WINDOW + 1)
    with boa.env.prank(p1), boa.reverts("job_market: commit deadline passed"):
        m.commit(job_id, b"\x01" * 32)


def test_reveal_reverts(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    world.commit(job_id, p0)
    with boa.env.prank(p0), boa.reverts("job_market: job is not in its reveal phase"):
        m.reveal(job_id, OUTPUT, TRACE, SALT)  # p1 has not committed yet
    world.commit(job_id, p1)
    with boa.env.prank(p1), boa.reverts("job_market: job is not awaiting commitments"):
        m.commit(job_id, b"\x01" * 32)
    with boa.env.prank(p0):
        with boa.reverts("job_market: reveal does not match the commitment"):
            m.reveal(job_id, OUTPUT, TRACE, b"\x00" * 32)
        m.reveal(job_id, OUTPUT, TRACE, SALT)
        with boa.reverts("job_market: already revealed"):
            m.reveal(job_id, OUTPUT, TRACE, SALT)
    with boa.env.prank(world.outsider), boa.reverts("job_market: caller is not assigned to this job"):
        m.reveal(job_id, OUTPUT, TRACE, SALT)
    boa.env.time_travel(seconds=2 * WINDOW + 1)
    with boa.env.prank(p1), boa.reverts("job_market: reveal deadline passed"):
        m.reveal(job_id, OUTPUT, TRACE, SALT)


def test_commitment_binds_the_provider(world: World) -> None:
    """A provider cannot reuse another replica's commitment: the reveal check includes
    the revealer's own address."""
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    copied = m.commitment_for(job_id, p0, OUTPUT, TRACE, SALT)
    for p in (p0, p1):
        with boa.env.prank(p):
            m.commit(job_id, copied)
    world.reveal(job_id, p0)
    with boa.env.prank(p1), boa.reverts("job_market: reveal does not match the commitment"):
        m.reveal(job_id, OUTPUT, TRACE, SALT)


def test_finalize_reverts(world: World) -> None:
    m = world.market
    job_id = world.post()
    with boa.reverts("job_market: job is not ready to finalize"):
        m.finalize(job_id)
    with boa.reverts("job_market: unknown job"):
        m.finalize(job_id + 1)
    world.commit_reveal_all(job_id)
    with boa.reverts("job_market: challenge window still open"):
        m.finalize(job_id)
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    with boa.reverts("job_market: job is not ready to finalize"):
        m.finalize(job_id)


def test_commit_timeout_slashes_the_silent_and_refunds(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    world.commit(job_id, p0)
    with boa.reverts("job_market: commit deadline not reached"):
        m.timeout(job_id)
    boa.env.time_travel(seconds=WINDOW + 1)
    burned = world.balance(BURN)
    with boa.env.prank(world.outsider):  # anyone may call it
        m.timeout(job_id)
    assert world.state(job_id) == REFUNDED
    # escrow back, plus bounty and share of the silent provider's slash (5 + 3); 2 burned
    assert m.balances(world.requester) == 2 * JOB_PRICE + 8 * E
    assert world.balance(BURN) == burned + 2 * E
    assert world.member(p0).locked == 0 and world.member(p0).stake == 200 * E
    assert world.member(p1).locked == 0 and world.member(p1).stake == 190 * E
    with boa.reverts("job_market: job has no missed deadline"):
        m.timeout(job_id)
    world.assert_conserved()


def test_reveal_timeout_slashes_the_silent_and_refunds(world: World) -> None:
    m = world.market
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    p0, p1 = m.assigned(job_id)
    world.commit(job_id, p0)
    world.commit(job_id, p1)
    world.reveal(job_id, p1)
    boa.env.time_travel(seconds=WINDOW + 1)
    with boa.reverts("job_market: reveal deadline not reached"):
        m.timeout(job_id)
    boa.env.time_travel(seconds=WINDOW)
    m.timeout(job_id)
    assert world.state(job_id) == REFUNDED
    assert m.balances(world.requester) == 2 * JOB_PRICE + 8 * E
    assert world.member(p0).stake == 190 * E
    assert world.member(p1).stake == 200 * E and world.member(p1).locked == 0
    world.assert_conserved()


def test_timeout_refunds_the_audit_fee(world: World) -> None:
    m = world.market
    job_id = world.post(param=5_000)
    boa.env.time_travel(seconds=WINDOW + 1)
    m.timeout(job_id)
    assert m.balances(world.requester) == 2 * JOB_PRICE + 8 * E  # price + fee + 5 + 3
    world.assert_conserved()


def test_no_missed_deadline_in_revealed_state(world: World) -> None:
    job_id = world.post()
    world.commit_reveal_all(job_id)
    boa.env.time_travel(seconds=10 * WINDOW)
    with boa.reverts("job_market: job has no missed deadline"):
        world.market.timeout(job_id)


def test_slash_of_a_provider_who_left_reaches_its_locked_stake(world: World) -> None:
    m = world.market
    job_id = world.post()
    (p,) = m.assigned(job_id)
    with boa.env.prank(p):
        world.registry.deregister()  # free stake starts unbonding, the bond stays locked
    assert world.member(p).stake == BOND
    boa.env.time_travel(seconds=WINDOW + 1)
    m.timeout(job_id)
    member = world.member(p)
    assert (member.stake, member.locked, member.unbonding) == (0, 0, 200 * E - BOND)
    world.assert_conserved()


def test_bond_of_a_provider_who_left_follows_into_unbonding(world: World) -> None:
    m = world.market
    job_id = world.post()
    (p,) = m.assigned(job_id)
    with boa.env.prank(p):
        world.registry.deregister()
    world.commit_reveal_all(job_id)
    boa.env.time_travel(seconds=WINDOW + 1)
    m.finalize(job_id)
    member = world.member(p)
    assert (member.stake, member.locked, member.unbonding) == (0, 0, 200 * E)
    assert member.unbond_at == boa.env.timestamp + 7 * 86400
    world.assert_conserved()


def test_market_balance_deposit_withdraw_and_prepaid_post(world: World) -> None:
    m, r = world.market, world.requester
    wallet = world.balance(r)
    with boa.env.prank(r):
        with boa.reverts("job_market: zero amount"):
            m.deposit(0)
        m.deposit(3 * E)
        assert m.balances(r) == 3 * E
        m.post_job(*post_args())  # 2 VMT from the balance
        assert m.balances(r) == 1 * E
        m.post_job(*post_args())  # 1 VMT from the balance, 1 VMT from the wallet
        assert m.balances(r) == 0
        assert world.balance(r) == wallet - 4 * E
        with boa.reverts("job_market: zero amount"):
            m.withdraw(0)
        with boa.reverts("job_market: amount exceeds balance"):
            m.withdraw(1)
    world.assert_conserved()


def test_views(world: World) -> None:
    m = world.market
    assert m.jobs(999).state == 0
    assert list(m.assigned(999)) == []
    job_id = world.post(mode=MODE_REPLICATE, param=2)
    with boa.reverts("job_market: no such replica"):
        m.replica(job_id, 2)
    assert m.job_count() == job_id
    provider = world.providers[0]
    expected = keccak(job_id.to_bytes(32, "big") + bytes.fromhex(str(provider)[2:]) + OUTPUT
                      + TRACE + SALT)  # the formula agreed in CONTRACTS.md
    assert m.commitment_for(job_id, provider, OUTPUT, TRACE, SALT) == expected


@pytest.mark.parametrize("price", [E, JOB_PRICE, 5 * E, 7 * E + 3, 50 * E, 100 * E])
def test_audit_jobs_must_deter_a_provider_that_skips_the_work(world: World, price: int) -> None:
    """p (S + R) >= g with S = bond, R = g = price: post_job accepts p = min_audit_bps(price)
    and refuses one bps less; the contract and verify.economics agree on the minimum."""
    from verimesh.verify.economics import BPS, audit_job_allowed, min_audit_bps

    m = world.market
    minimum = m.min_audit_bps(price)
    assert minimum == min_audit_bps(price, MIN_BOND, 20_000)
    bond = m.bond_for(price)
    assert minimum * (bond + price) >= price * BPS > (minimum - 1) * (bond + price)
    assert audit_job_allowed(minimum, price, MIN_BOND, 20_000)
    assert not audit_job_allowed(minimum - 1, price, MIN_BOND, 20_000)
    assert audit_job_allowed(0, price, MIN_BOND, 20_000)  # unaudited jobs stay allowed
    with boa.env.prank(world.requester), boa.reverts(
            "job_market: audit probability below the deterrence minimum; see min_audit_bps(price)"):
        m.post_job(*post_args(param=minimum - 1, price=price))
    with boa.env.prank(world.requester):
        m.post_job(*post_args(param=minimum, price=price))
        m.post_job(*post_args(param=0, price=price))


def test_min_audit_bps_on_the_devnet_terms(world: World) -> None:
    assert [world.market.min_audit_bps(p) for p in (E, 2 * E, 5 * E, 1_000 * E)] == [910, 1667, 3334, 3334]
