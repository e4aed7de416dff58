"""The dashboard's state follows the chain: each transaction, then one poll, then the
aggregated picture must show it. Runs on the in-process EVM with the real contracts."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from verimesh.chain.accounts import Signer, dev_signers
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.client import Network
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.devnet import start_anvil
from verimesh.chain.job_market import Mode, commitment
from verimesh.chain.lifecycle import CAPABILITIES, VMT, WINDOW
from verimesh.chain.registry import Role
from verimesh.crypto.merkle import blob_root
from verimesh.dashboard.follower import BURN_ADDRESS, Follower

PRICE = 5 * VMT
OUT, TRACE = blob_root(b"dashboard test output"), blob_root(b"dashboard test trace")


@dataclass
class World:
    net: Network
    requester: Signer
    providers: dict[str, Signer]
    validator: Signer
    follower: Follower


@pytest.fixture
def world(pytestconfig: pytest.Config):
    artifacts = load_artifacts(cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"))
    deployer, requester, p1, p2, validator = dev_signers(5)
    net = deploy_network(BoaBackend(), deployer, artifacts=artifacts)
    fund_accounts(
        net, deployer, [requester.address, p1.address, p2.address, validator.address], 1_000 * VMT
    )
    for i, (member, role) in enumerate(
        [(p1, Role.PROVIDER), (p2, Role.PROVIDER), (validator, Role.VALIDATOR)]
    ):
        net.token.approve(net.registry.address, 100 * VMT, signer=member)
        # Port 9 (discard) on loopback: nobody listens, like a node that is down.
        net.registry.register(
            role, 100 * VMT, f"http://127.0.0.1:9/{i}", CAPABILITIES, PRICE, signer=member
        )
    net.token.approve(net.job_market.address, 2**256 - 1, signer=requester)
    follower = Follower(net, info_timeout=0.5)
    yield World(net, requester, {p1.address: p1, p2.address: p2}, validator, follower)
    follower.close()


def _post(net, requester, mode=Mode.REPLICATE, param=2):
    spec = blob_root(os.urandom(16))
    return net.job_market.post_job(
        spec, spec, spec, mode, param, PRICE, WINDOW, WINDOW, WINDOW, signer=requester
    )


def _job(state, job_id):
    return next(j for j in state.jobs if j.job_id == job_id)


def _node(state, address):
    return next(n for n in state.nodes if n.address == address)


def test_job_moves_through_states_and_pays(world) -> None:
    net, requester, providers, follower = (
        world.net,
        world.requester,
        world.providers,
        world.follower,
    )
    state = follower.poll()
    assert {n.role for n in state.nodes} == {"provider", "validator"} and len(state.nodes) == 3
    assert state.jobs == [] and state.jobs_by_state["assigned"] == 0

    posted = _post(net, requester)
    state = follower.poll()
    job = _job(state, posted.job_id)
    assert job.state == "assigned" and job.mode == "replicate" and job.mode_param == 2
    assert sorted(job.providers) == sorted(posted.providers) and job.escrow == 2 * PRICE
    assert state.jobs_by_state["assigned"] == 1
    bond = net.job_market.bond_for(PRICE)
    assert all(
        _node(state, a).locked == bond and _node(state, a).jobs_assigned == 1
        for a in posted.providers
    )

    salts = {a: os.urandom(32) for a in posted.providers}
    for a in posted.providers:
        c = commitment(posted.job_id, a, OUT, TRACE, salts[a])
        net.job_market.commit(posted.job_id, c, signer=providers[a])
    state = follower.poll()
    assert (
        _job(state, posted.job_id).state == "committed"
        and _job(state, posted.job_id).committed == 2
    )

    for a in posted.providers:
        net.job_market.reveal(posted.job_id, OUT, TRACE, salts[a], signer=providers[a])
    state = follower.poll()
    assert _job(state, posted.job_id).state == "revealed"

    net.backend.advance_time(WINDOW + 1)
    net.job_market.finalize(posted.job_id, signer=requester)
    state = follower.poll()
    job = _job(state, posted.job_id)
    assert job.state == "finalized"
    assert [s.event for s in job.history] == [
        "JobPosted",
        "Committed",
        "Committed",
        "Revealed",
        "Revealed",
        "Finalized",
    ]
    assert [s.state for s in job.history][-1] == "finalized" and job.history[2].state == "committed"
    assert state.jobs_by_state == {**state.jobs_by_state, "finalized": 1, "assigned": 0}
    for a in posted.providers:
        node = _node(state, a)
        assert node.jobs_done == 1 and node.jobs_slashed == 0 and node.locked == 0
        balance = next(b for b in state.balances if b.address == a)
        assert balance.market == PRICE and balance.stake == 100 * VMT
    # Every token is somewhere the dashboard shows: the parties, the two contracts, burned.
    held = {b.address: b for b in state.balances}
    assert sum(b.wallet for b in held.values()) == state.total_supply
    assert (
        held[net.job_market.address].label == "job_market" and held[BURN_ADDRESS].label == "burned"
    )
    assert job.gas is None  # the in-process EVM keeps no receipts by hash; JSON-RPC does


def test_timeout_slash_and_refund(world) -> None:
    net, requester, follower = world.net, world.requester, world.follower
    posted = _post(net, requester, param=1)
    follower.poll()
    net.backend.advance_time(WINDOW + 1)
    net.job_market.timeout(posted.job_id, signer=requester)
    state = follower.poll()
    job = _job(state, posted.job_id)
    assert job.state == "refunded"
    (slash,) = state.slashes
    bond = net.job_market.bond_for(PRICE)
    assert (
        slash.job_id == posted.job_id
        and slash.account == posted.providers[0]
        and slash.amount == bond
    )
    assert slash.bounty + slash.requester_share + slash.burned == bond
    node = _node(state, posted.providers[0])
    assert node.jobs_slashed == 1 and node.slashed_amount == bond and node.jobs_done == 0
    assert node.stake == 100 * VMT - bond
    burned = next(b for b in state.balances if b.label == "burned")
    assert burned.wallet == slash.burned


def test_audit_draw_and_report_are_verifications(world) -> None:
    net, requester, providers, validator, follower = (
        world.net,
        world.requester,
        world.providers,
        world.validator,
        world.follower,
    )
    posted = _post(net, requester, mode=Mode.AUDIT, param=10_000)  # p = 100%: always audited
    (a,) = posted.providers
    salt = os.urandom(32)
    net.job_market.commit(
        posted.job_id, commitment(posted.job_id, a, OUT, TRACE, salt), signer=providers[a]
    )
    net.job_market.reveal(posted.job_id, OUT, TRACE, salt, signer=providers[a])
    state = follower.poll()
    (v,) = state.verifications
    assert v.job_id == posted.job_id and v.validator == validator.address and not v.reported
    assert _job(state, posted.job_id).state == "auditing"
    assert _node(state, validator.address).audits == 1

    net.job_market.audit_report(
        posted.job_id, blob_root(b"another output"), TRACE, signer=validator
    )
    state = follower.poll()
    (v,) = state.verifications
    assert v.reported and v.agrees is False
    assert _job(state, posted.job_id).state == "disputed"


def test_nodes_that_are_down_are_shown_offline(world) -> None:
    follower = world.follower
    state = follower.poll()
    for node in state.nodes:
        assert node.info.online is False and "not reachable" in node.info.status
    state = follower.poll(nodes=False)  # skipping the HTTP polls keeps the last answers
    assert all(n.info.checked_at is not None for n in state.nodes)


@pytest.mark.devnet
def test_chain_outage_keeps_the_last_state_and_says_why(pytestconfig: pytest.Config) -> None:
    """The chain going away must not kill the dashboard: the last good state stays, with
    the reason, so the page can say "chain unreachable"."""
    artifacts = load_artifacts(cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"))
    node = start_anvil()
    try:
        deployer, requester = dev_signers(2)
        net = deploy_network(
            RpcBackend(node.url, gas_limit=5_000_000), deployer, artifacts=artifacts
        )
        fund_accounts(net, deployer, [requester.address], 100 * VMT)
        follower = Follower(net, info_timeout=0.5)
        good = follower.poll()
        assert follower.state().error is None
    finally:
        node.stop()
    follower.poll_safely()
    after = follower.state()
    assert (
        after.error is not None
        and after.error.startswith("ChainError")
        and "does not answer" in after.error
    )
    assert after.block == good.block and after.total_supply == good.total_supply
    follower.close()


def test_an_abandoned_audit_is_shown_and_counted_for_its_validator(world) -> None:
    """A validator that got no job to audit gives the audit up: the job is refunded, the
    verification says abandoned (not "recomputing" forever), and the validator's count of
    abandoned audits goes up next to its audits."""
    net, requester, providers, validator, follower = (
        world.net, world.requester, world.providers, world.validator, world.follower,
    )  # fmt: skip
    posted = _post(net, requester, mode=Mode.AUDIT, param=10_000)
    (a,) = posted.providers
    salt = os.urandom(32)
    net.job_market.commit(posted.job_id, commitment(posted.job_id, a, OUT, TRACE, salt), signer=providers[a])
    net.job_market.reveal(posted.job_id, OUT, TRACE, salt, signer=providers[a])
    assert _node(follower.poll(), validator.address).audits_abandoned == 0

    net.job_market.abandon_audit(posted.job_id, signer=validator)
    state = follower.poll()
    (v,) = state.verifications
    assert v.abandoned and not v.reported
    assert _job(state, posted.job_id).state == "refunded"
    assert "AuditAbandoned" in [h.event for h in _job(state, posted.job_id).history]
    node = _node(state, validator.address)
    assert (node.audits, node.audits_abandoned) == (1, 1)
