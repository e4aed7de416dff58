"""Registry and JobMarket on a token that returns `false` instead of reverting: every
token movement must be checked, so a failed transfer reverts the whole call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boa
import pytest
from contract_world import MAX, E, load

HERE = Path(__file__).parent
URL = "http://127.0.0.1:1"


@pytest.fixture
def market() -> dict[str, Any]:
    owner = boa.env.generate_address()  # a fresh deployer: fresh addresses (see `load`)
    with boa.env.prank(owner):
        token = boa.load(str(HERE / "FalseToken.vy"))
        registry = load("Registry.vy", token.address, 100 * E, 100 * E, 60)
        jm = load("JobMarket.vy", token.address, registry.address, owner, 10 * E, 20_000,
                  10_000, 50 * E, 5_000, 3_000, 3600)
        registry.set_job_market(jm.address)
    actors = {name: boa.env.generate_address(name)
              for name in ("provider", "requester", "challenger")}
    for who in actors.values():
        token.mint(who, 1_000 * E)
        with boa.env.prank(who):
            token.approve(registry.address, MAX)
            token.approve(jm.address, MAX)
    with boa.env.prank(actors["provider"]):
        registry.register(1, 200 * E, URL, b"\x00" * 32, 1 * E)
    return {"token": token, "registry": registry, "jm": jm, **actors}


def test_registry_checks_every_transfer(market: dict[str, Any]) -> None:
    token, registry, provider = market["token"], market["registry"], market["provider"]
    with boa.env.prank(provider):
        registry.request_unbond(50 * E)
    boa.env.time_travel(seconds=61)
    token.set_fail_from(market["requester"])
    with boa.env.prank(market["requester"]), boa.reverts("registry: transfer failed"):
        registry.register(1, 200 * E, URL, b"\x00" * 32, 1 * E)
    token.set_fail_from(provider)
    with boa.env.prank(provider), boa.reverts("registry: transfer failed"):
        registry.add_stake(1 * E)
    token.set_fail_from(registry.address)
    with boa.env.prank(provider), boa.reverts("registry: transfer failed"):
        registry.withdraw()
    assert registry.members(provider).unbonding == 50 * E  # nothing booked


def test_job_market_checks_every_transfer(market: dict[str, Any]) -> None:
    token, jm, registry = market["token"], market["jm"], market["registry"]
    requester, provider = market["requester"], market["provider"]
    args = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 0, 0, 2 * E, 60, 60, 60)
    with boa.env.prank(requester):
        jm.deposit(2 * E)
        job_id = jm.post_job(*args)  # paid from the deposit: no transfer needed
        jm.deposit(5 * E)
    commitment = jm.commitment_for(job_id, provider, b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32)
    with boa.env.prank(provider):
        jm.commit(job_id, commitment)
        jm.reveal(job_id, b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32)
    token.set_fail_from(requester)
    with boa.env.prank(requester):
        with boa.reverts("job_market: transfer failed"):
            jm.deposit(1 * E)
        with boa.reverts("job_market: transfer failed"):
            jm.post_job(*args[:5], 6 * E, *args[6:])  # 5 VMT from balance, 1 VMT pulled
    token.set_fail_from(market["challenger"])
    with boa.env.prank(market["challenger"]), boa.reverts("job_market: transfer failed"):
        jm.challenge(job_id, 0)
    token.set_fail_from(jm.address)
    with boa.env.prank(requester), boa.reverts("job_market: transfer failed"):
        jm.withdraw(1 * E)
    # A slash moves tokens Registry -> JobMarket -> burn address: both legs are checked.
    token.set_fail_from("0x0000000000000000000000000000000000000000")
    with boa.env.prank(requester):
        other = jm.post_job(*args)
    boa.env.time_travel(seconds=61)
    token.set_fail_from(registry.address)
    with boa.reverts("registry: transfer failed"):
        jm.timeout(other)
    token.set_fail_from(jm.address)
    with boa.reverts("job_market: transfer failed"):
        jm.timeout(other)
    assert jm.balances(requester) == 3 * E  # nothing booked by the failed calls
    assert registry.members(provider).locked == 20 * E
