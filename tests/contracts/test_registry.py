"""Registry.vy: membership, stake, unbonding delay, and the JobMarket-only lock/unlock/
slash/draw hooks (driven here by a registry whose job market is a plain account)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import pytest
from contract_world import (
    MAX,
    MIN_PROVIDER_STAKE,
    PROVIDER_PRICE,
    PROVIDER_STAKE,
    ROLE_PROVIDER,
    ROLE_VALIDATOR,
    UNBONDING_DELAY,
    E,
    World,
    load,
    permit_signature,
)
from eth_account import Account

from verimesh.chain.registry import draw_start

ZERO = "0x0000000000000000000000000000000000000000"
URL = "http://127.0.0.1:9000"
CAPS = b"\xca" * 32


@dataclass
class Bare:
    """A registry whose job market is the account `hook`, so tests can call its hooks."""

    registry: Any
    token: Any
    hook: str
    members: list[str]

    def join(self, who: str, stake: int = PROVIDER_STAKE, role: int = ROLE_PROVIDER,
             price: int = PROVIDER_PRICE) -> None:
        self.token.mint(who, 1_000 * E)
        with boa.env.prank(who):
            self.token.approve(self.registry.address, MAX)
            self.registry.register(role, stake, URL, CAPS, price)
        self.members.append(who)

    def held(self) -> int:
        return sum(self.registry.members(m).stake + self.registry.members(m).unbonding
                   for m in self.members)


@pytest.fixture
def bare(world: World) -> Bare:
    registry = load("Registry.vy", world.token.address, MIN_PROVIDER_STAKE, MIN_PROVIDER_STAKE,
                    UNBONDING_DELAY, fresh=True)
    hook = boa.env.generate_address("hook")
    with boa.env.prank(registry.deployer):
        registry.set_job_market(hook)
    return Bare(registry, world.token, hook, [])


def test_constructor_reverts(world: World) -> None:
    with boa.reverts("registry: token is the zero address"):
        load("Registry.vy", ZERO, 1, 1, 1, fresh=True)
    with boa.reverts("registry: unbonding delay above one year"):
        load("Registry.vy", world.token.address, 1, 1, 366 * 86400, fresh=True)


def test_set_job_market_once_by_owner(world: World) -> None:
    registry = load("Registry.vy", world.token.address, 1, 1, 1, fresh=True)
    with boa.env.prank(world.outsider), boa.reverts("registry: caller is not the owner"):
        registry.set_job_market(world.outsider)
    with boa.env.prank(registry.deployer):
        with boa.reverts("registry: job market is the zero address"):
            registry.set_job_market(ZERO)
        registry.set_job_market(world.outsider)
        assert registry.job_market() == world.outsider
        with boa.reverts("registry: job market already set"):
            registry.set_job_market(world.owner)


def test_register_pulls_stake_and_lists_member(world: World) -> None:
    reg = world.registry
    before = reg.provider_count()
    who = boa.env.generate_address()
    world.register(who, stake=150 * E, price=3 * E)
    m = reg.members(who)
    assert (m.role, m.stake, m.locked, m.unbonding, m.price, m.active) == (
        ROLE_PROVIDER, 150 * E, 0, 0, 3 * E, True)
    assert m.endpoint == "http://127.0.0.1:8000"
    assert reg.provider_count() == before + 1
    assert reg.provider_at(before) == who
    assert world.balance(reg.address) == sum(
        reg.members(a).stake for a in [*world.providers, *world.validators, who])
    assert reg.validator_count() == 2
    assert reg.validator_at(1) == world.validators[1]


def test_register_reverts(world: World) -> None:
    reg = world.registry
    who = boa.env.generate_address()
    world.fund(who, 2**121)
    with boa.env.prank(who):
        with boa.reverts("registry: unknown role"):
            reg.register(3, PROVIDER_STAKE, URL, CAPS, 1)
        with boa.reverts("registry: stake below the role minimum"):
            reg.register(ROLE_PROVIDER, MIN_PROVIDER_STAKE - 1, URL, CAPS, 1)
        with boa.reverts("registry: stake above 2**120 - 1"):
            reg.register(ROLE_PROVIDER, 2**120, URL, CAPS, 1)
        with boa.reverts("registry: empty endpoint"):
            reg.register(ROLE_PROVIDER, PROVIDER_STAKE, "", CAPS, 1)
    with boa.env.prank(world.providers[0]), boa.reverts("registry: already registered"):
        reg.register(ROLE_VALIDATOR, PROVIDER_STAKE, URL, CAPS, 1)
    stranger = boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("token: insufficient allowance"):
        reg.register(ROLE_PROVIDER, PROVIDER_STAKE, URL, CAPS, 1)
    assert reg.members(stranger).role == 0  # nothing recorded, no token moved


def test_register_with_permit_needs_no_approve(world: World) -> None:
    reg = world.registry
    signer = Account.from_key(b"\x22" * 32)
    world.token.mint(signer.address, PROVIDER_STAKE)
    deadline = boa.env.timestamp + 600
    v, r, s = permit_signature(world.token, signer, reg.address, PROVIDER_STAKE, deadline)
    with boa.env.prank(signer.address):
        reg.register_with_permit(ROLE_PROVIDER, PROVIDER_STAKE, URL, CAPS, 1, deadline, v, r, s)
    assert reg.members(signer.address).stake == PROVIDER_STAKE
    assert world.balance(signer.address) == 0
    other = boa.env.generate_address()  # someone else cannot use the signer's permit
    world.token.mint(other, PROVIDER_STAKE)
    with boa.env.prank(other), boa.reverts("token: invalid permit signature"):
        reg.register_with_permit(ROLE_PROVIDER, PROVIDER_STAKE, URL, CAPS, 1, deadline, v, r, s)


def test_add_stake_and_update(world: World) -> None:
    reg, p = world.registry, world.providers[0]
    with boa.env.prank(p):
        reg.add_stake(5 * E)
        reg.update("http://10.0.0.1:1", b"\x01" * 32, 7 * E)
        with boa.reverts("registry: zero amount"):
            reg.add_stake(0)
        with boa.reverts("registry: stake above 2**120 - 1"):
            reg.add_stake(2**120)
        with boa.reverts("registry: empty endpoint"):
            reg.update("", CAPS, 1)
    m = reg.members(p)
    assert (m.stake, m.endpoint, m.capabilities, m.price) == (
        PROVIDER_STAKE + 5 * E, "http://10.0.0.1:1", b"\x01" * 32, 7 * E)
    with boa.env.prank(world.outsider):
        with boa.reverts("registry: not an active member"):
            reg.add_stake(1)
        with boa.reverts("registry: not an active member"):
            reg.update(URL, CAPS, 1)


def test_unbonding_delay(world: World) -> None:
    reg, p = world.registry, world.providers[0]
    wallet = world.balance(p)
    with boa.env.prank(p):
        reg.request_unbond(60 * E)
        m = reg.members(p)
        assert (m.stake, m.unbonding) == (PROVIDER_STAKE - 60 * E, 60 * E)
        assert m.unbond_at == boa.env.timestamp + UNBONDING_DELAY
        boa.env.time_travel(seconds=UNBONDING_DELAY - 1)
        with boa.reverts("registry: still unbonding"):
            reg.withdraw()
        boa.env.time_travel(seconds=1)
        reg.withdraw()
        with boa.reverts("registry: nothing to withdraw"):
            reg.withdraw()
    assert world.balance(p) == wallet + 60 * E
    assert reg.members(p).unbonding == 0


def test_request_unbond_reverts(world: World) -> None:
    reg, p = world.registry, world.providers[0]
    with boa.env.prank(p):
        with boa.reverts("registry: zero amount"):
            reg.request_unbond(0)
        with boa.reverts("registry: amount exceeds free stake"):
            reg.request_unbond(PROVIDER_STAKE + 1)
        with boa.reverts("registry: stake would fall below the role minimum; deregister to leave"):
            reg.request_unbond(PROVIDER_STAKE - MIN_PROVIDER_STAKE + 1)
    with boa.env.prank(world.outsider), boa.reverts("registry: not registered"):
        reg.request_unbond(1)


def test_deregister_unbonds_free_stake_and_allows_rejoin(world: World) -> None:
    reg = world.registry
    p0, p1, p2 = world.providers
    with boa.env.prank(p0):
        reg.deregister()
        with boa.reverts("registry: not an active member"):
            reg.deregister()
    # swap-and-pop: the last provider took p0's place
    assert reg.provider_count() == 2
    assert {reg.provider_at(0), reg.provider_at(1)} == {p1, p2}
    with boa.reverts("registry: index out of range"):
        reg.provider_at(2)
    with boa.reverts("registry: index out of range"):
        reg.validator_at(2)
    m = reg.members(p0)
    assert (m.active, m.stake, m.unbonding) == (False, 0, PROVIDER_STAKE)
    with boa.env.prank(p0), boa.reverts("registry: already registered"):
        reg.register(ROLE_PROVIDER, PROVIDER_STAKE, URL, CAPS, 1)
    boa.env.time_travel(seconds=UNBONDING_DELAY)
    with boa.env.prank(p0):
        reg.withdraw()
        assert reg.members(p0).role == 0  # forgotten: may register again
        reg.register(ROLE_PROVIDER, PROVIDER_STAKE, URL, CAPS, 1)
    assert reg.provider_count() == 3
    world.supply_accounted()


def test_hooks_are_job_market_only(world: World) -> None:
    reg, p = world.registry, world.providers[0]
    with boa.env.prank(world.outsider):
        for call in (lambda: reg.lock(p, 1), lambda: reg.unlock(p, 1),
                     lambda: reg.draw(ROLE_PROVIDER, 0, 1, MAX, 0, [])):
            with boa.reverts("registry: caller is not the job market"):
                call()
        with boa.reverts("registry: caller is not the job market or the slasher"):
            reg.slash(p, 1, world.outsider)


def test_slasher_is_set_once_by_the_owner_and_may_only_slash(world: World) -> None:
    reg, p = world.registry, world.providers[0]
    slasher = boa.env.generate_address("slasher")
    assert reg.slasher() == "0x" + "00" * 20
    with boa.env.prank(world.outsider), boa.reverts("registry: caller is not the owner"):
        reg.set_slasher(slasher)
    with boa.reverts("registry: slasher is the zero address"):
        reg.set_slasher("0x" + "00" * 20)
    reg.set_slasher(slasher)
    with boa.reverts("registry: slasher already set"):
        reg.set_slasher(world.outsider)
    with boa.env.prank(slasher):
        with boa.reverts("registry: caller is not the job market"):
            reg.lock(p, 1)
        assert reg.slash(p, 7 * E, slasher) == 7 * E
    assert world.balance(slasher) == 7 * E
    assert reg.members(p).stake == PROVIDER_STAKE - 7 * E


def test_lock_unlock(bare: Bare) -> None:
    reg = bare.registry
    p = boa.env.generate_address()
    bare.join(p)
    with boa.env.prank(bare.hook):
        reg.lock(p, 150 * E)
        assert reg.free_stake(p) == PROVIDER_STAKE - 150 * E
        with boa.reverts("registry: not enough free stake"):
            reg.lock(p, PROVIDER_STAKE - 150 * E + 1)
    with boa.env.prank(p), boa.reverts("registry: amount exceeds free stake"):
        reg.request_unbond(PROVIDER_STAKE - 150 * E + 1)
    with boa.env.prank(bare.hook):
        reg.unlock(p, 100 * E)
        assert reg.members(p).locked == 50 * E
        reg.unlock(p, 1_000 * E)  # clamped to what is locked
        assert reg.members(p).locked == 0
        with boa.reverts("registry: not an active member"):
            reg.lock(boa.env.generate_address(), 1)


def test_unlock_after_deregister_starts_unbonding(bare: Bare) -> None:
    reg = bare.registry
    p = boa.env.generate_address()
    bare.join(p)
    with boa.env.prank(bare.hook):
        reg.lock(p, 50 * E)
    with boa.env.prank(p):
        reg.deregister()
    m = reg.members(p)
    assert (m.stake, m.locked, m.unbonding) == (50 * E, 50 * E, PROVIDER_STAKE - 50 * E)
    boa.env.time_travel(seconds=UNBONDING_DELAY // 2)
    with boa.env.prank(bare.hook):
        reg.unlock(p, 50 * E)
    m = reg.members(p)
    assert (m.stake, m.locked, m.unbonding) == (0, 0, PROVIDER_STAKE)
    assert m.unbond_at == boa.env.timestamp + UNBONDING_DELAY  # the delay restarts
    assert bare.held() == PROVIDER_STAKE


def test_slash_takes_locked_then_free_then_unbonding(bare: Bare) -> None:
    reg, token = bare.registry, bare.token
    p, sink = boa.env.generate_address(), boa.env.generate_address()
    bare.join(p, stake=300 * E)
    with boa.env.prank(bare.hook):
        reg.lock(p, 40 * E)
    with boa.env.prank(p):
        reg.request_unbond(150 * E)  # stake 150 (40 locked), unbonding 150
    with boa.env.prank(bare.hook):
        assert reg.slash(p, 30 * E, sink) == 30 * E  # from locked only
        m = reg.members(p)
        assert (m.stake, m.locked, m.unbonding) == (120 * E, 10 * E, 150 * E)
        assert reg.slash(p, 60 * E, sink) == 60 * E  # 10 locked + 50 free
        m = reg.members(p)
        assert (m.stake, m.locked, m.unbonding) == (60 * E, 0, 150 * E)
        assert reg.slash(p, 100 * E, sink) == 100 * E  # 60 free + 40 of the unbonding
        m = reg.members(p)
        assert (m.stake, m.locked, m.unbonding) == (0, 0, 110 * E)
        assert reg.slash(p, 500 * E, sink) == 110 * E  # takes what is left, no more
        with boa.reverts("registry: recipient is the zero address"):
            reg.slash(p, 1, ZERO)
    assert token.balanceOf(sink) == 300 * E
    assert token.balanceOf(reg.address) == bare.held() == 0


def test_slash_reaches_unbonding_stake_of_a_member_who_left(bare: Bare) -> None:
    reg = bare.registry
    p, sink = boa.env.generate_address(), boa.env.generate_address()
    bare.join(p)
    with boa.env.prank(p):
        reg.deregister()
    with boa.env.prank(bare.hook):
        assert reg.slash(p, 30 * E, sink) == 30 * E
    assert reg.members(p).unbonding == PROVIDER_STAKE - 30 * E
    with boa.env.prank(bare.hook):
        reg.slash(p, PROVIDER_STAKE, sink)
    assert reg.members(p).role == 0  # nothing left: forgotten


def test_member_slashed_to_nothing_is_forgotten_when_it_leaves(bare: Bare) -> None:
    reg = bare.registry
    p, sink = boa.env.generate_address(), boa.env.generate_address()
    bare.join(p)
    with boa.env.prank(bare.hook):
        reg.lock(p, PROVIDER_STAKE)
        reg.slash(p, PROVIDER_STAKE, sink)
    assert reg.members(p).active  # still listed, with no stake
    with boa.env.prank(p):
        reg.deregister()
        assert reg.members(p).role == 0
        with boa.reverts("registry: nothing to withdraw"):
            reg.withdraw()
        reg.register(ROLE_PROVIDER, PROVIDER_STAKE, URL, CAPS, 1)


def test_draw_picks_distinct_eligible_members_and_locks(bare: Bare) -> None:
    reg = bare.registry
    cheap, dear, poor, excluded = (boa.env.generate_address() for _ in range(4))
    bare.join(cheap, price=1 * E)
    bare.join(dear, price=5 * E)
    bare.join(poor, price=1 * E)
    bare.join(excluded, price=1 * E)
    with boa.env.prank(bare.hook):
        reg.lock(poor, PROVIDER_STAKE - 5 * E)
        for seed in range(8):
            with boa.env.anchor():
                picked = reg.draw(ROLE_PROVIDER, seed, 8, 2 * E, 10 * E, [excluded])
                assert list(picked) == [cheap]
                assert reg.members(cheap).locked == 10 * E
        picked = reg.draw(ROLE_PROVIDER, 0, 8, 10 * E, 10 * E, [])
        assert sorted(picked) == sorted([cheap, dear, excluded])
        assert len(set(picked)) == len(picked)
        assert list(reg.draw(ROLE_VALIDATOR, 0, 1, MAX, 0, [])) == []
        assert list(reg.draw(ROLE_PROVIDER, 0, 0, MAX, 0, [])) == []
        with boa.reverts("registry: draw count above the maximum"):
            reg.draw(ROLE_PROVIDER, 0, 9, MAX, 0, [])


def test_accounts_registered_in_a_row_do_not_share_a_jobs_seats(bare: Bare) -> None:
    """A cartel's 3 accounts registered one after another among 20 providers: with seats
    scanned consecutively from one start they would hold all 3 replicas of a job whenever
    the draw started on the first (1 draw in 20, a wrong result nobody disputes); with a
    start per seat they do so as rarely as any 3 members (3/20 x 2/19 x 1/18, 1 in 1,140).
    The picks follow ``draw_start``, the Python twin."""
    reg = bare.registry
    members = [boa.env.generate_address() for _ in range(20)]
    for who in members:
        bare.join(who)
    cartel = set(members[7:10])
    captured, seats = 0, {who: 0 for who in members}
    with boa.env.prank(bare.hook):
        for seed in range(200):
            with boa.env.anchor():
                picked = list(reg.draw(ROLE_PROVIDER, seed, 3, MAX, 10 * E, []))
            assert len(set(picked)) == 3
            expected = []
            for seat in range(3):
                start = draw_start(seed, seat, len(members))
                expected.append(next(m for k in range(20) if (m := members[(start + k) % 20]) not in expected))
            assert picked == expected
            captured += set(picked) == cartel
            for who in picked:
                seats[who] += 1
    assert captured <= 2  # consecutive seats: 10 of these 200 draws
    assert min(seats.values()) > 0

