"""A full job lifecycle and a timeout-refund path, with balances checked, on the in-process
EVM and over JSON-RPC against a real anvil devnet (the integration test of issue 2)."""

from __future__ import annotations

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.job_market import JobState, Mode
from verimesh.chain.lifecycle import VMT, register_providers, run_job, run_timeout
from verimesh.chain.registry import Role

BURN = "0x000000000000000000000000000000000000dEaD"
STAKE = 200 * VMT
PRICE = 5 * VMT


@pytest.fixture
def net(backend, artifact_cache):
    deployer = dev_signer(0)
    network = deploy_network(
        backend, deployer, artifacts=load_artifacts(cache_dir=artifact_cache, names=CONTRACTS)
    )
    requester, providers = dev_signer(1), [dev_signer(2), dev_signer(3)]
    fund_accounts(
        network, deployer, [requester.address] + [p.address for p in providers], 1_000 * VMT
    )
    register_providers(network, providers, STAKE, price=PRICE)
    return network, requester, providers


def _balances(net, addresses):
    return {a: net.token.balance_of(a) for a in addresses}


def test_deployment_is_wired(net):
    network, _, providers = net
    assert network.registry.job_market() == network.job_market.address
    assert network.job_market.registry() == network.registry.address
    assert network.job_market.token() == network.token.address
    assert sorted(network.registry.providers()) == sorted(p.address for p in providers)


def test_full_job_lifecycle_pays_providers(net):
    network, requester, providers = net
    watched = [
        requester.address,
        *(p.address for p in providers),
        network.registry.address,
        network.job_market.address,
    ]
    before = _balances(network, watched)
    run, _ = run_job(network, requester, providers, Mode.REPLICATE, 2, PRICE)
    after = _balances(network, watched)
    assert run.final_state is JobState.FINALIZED
    assert sorted(run.providers) == sorted(p.address for p in providers)
    assert [s.name for s in run.steps] == [
        "post_job",
        "commit",
        "commit",
        "reveal",
        "reveal",
        "finalize",
    ]
    assert [s.name for s in run.payouts] == ["withdraw", "withdraw"]
    assert after[requester.address] == before[requester.address] - 2 * PRICE
    for p in providers:
        assert after[p.address] == before[p.address] + PRICE
        member = network.registry.members(p.address)
        assert (member.stake, member.locked) == (STAKE, 0)  # bond released
    assert after[network.job_market.address] == before[network.job_market.address] == 0
    assert after[network.registry.address] == before[network.registry.address]
    paid = [e for e in network.job_market.get_events("Credited") if e["job_id"] == run.job_id]
    assert sorted(e["account"] for e in paid) == sorted(run.providers)


def test_timeout_slashes_the_silent_provider_and_refunds(net):
    network, requester, providers = net
    watched = [
        requester.address,
        *(p.address for p in providers),
        network.registry.address,
        network.job_market.address,
        BURN,
    ]
    before = _balances(network, watched)
    run, _ = run_timeout(network, requester, PRICE)
    after = _balances(network, watched)
    assert run.final_state is JobState.REFUNDED
    (silent,) = run.providers
    bond = network.job_market.bond_for(PRICE)
    member = network.registry.members(silent)
    assert (member.stake, member.locked) == (STAKE - bond, 0)
    assert after[network.registry.address] == before[network.registry.address] - bond
    assert (
        after[requester.address] >= before[requester.address]
    )  # refunded, plus its share of the slash
    assert after[silent] == before[silent]  # the silent provider gets nothing
    # conservation: the slashed bond went to the requester and the burn address, nowhere else
    assert sum(after.values()) == sum(before.values())
    assert after[network.job_market.address] == 0
    assert member.role is Role.PROVIDER
