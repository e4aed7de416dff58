"""The chain, not the agent, enforces the budget: a session key on an AgentWallet can fund
jobs only within its policy, whatever the agent's code does (in-process EVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from verimesh.agent.ledger import Ledger
from verimesh.agent.policy import MarketTerms
from verimesh.agent.wallet import AgentFunds, BudgetRefused, SessionPolicy, provision_wallet
from verimesh.chain import ContractRevert, Signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import ArtifactSet
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.client.sdk import audit, replicate

E = 10**18


@pytest.fixture
def world(agent_artifacts: ArtifactSet, tmp_path: Path):
    backend = BoaBackend()
    deployer, owner, key, stranger = (Signer.random() for _ in range(4))
    for s in (deployer, owner, key, stranger):
        backend.set_eth_balance(s.address, 10**20)
    net = deploy_network(backend, deployer, artifacts=agent_artifacts)
    fund_accounts(net, deployer, [owner.address], 1_000 * E)
    policy = SessionPolicy(allowance=10 * E, max_per_payment=3 * E, period=86_400, lifetime=3_600)
    wallet = provision_wallet(net, owner, key, 10 * E, policy, agent_artifacts, gas_funding=0)
    funds = AgentFunds(net, wallet, key, Ledger(tmp_path / "ledger.sqlite"))
    return net, wallet, funds, owner, key, stranger


def _spend(net, key: Signer, to: str) -> None:
    """The float leaves the key (what posting a job does to it)."""
    token = net.token.as_signer(key)
    token.transfer(to, token.balance_of(key.address))


def test_the_wallet_stops_an_agent_at_its_allowance(world) -> None:
    net, wallet, funds, _, key, stranger = world
    for i in range(5):
        funds.cover(2 * E, f"job-{i}")
        assert funds.float_balance == 2 * E
        _spend(net, key, stranger.address)
    with pytest.raises(BudgetRefused, match="over period allowance"):
        funds.cover(2 * E, "job-5")
    fund_rows = funds.ledger.rows("fund")
    assert sum(r.amount for r in fund_rows) == 10 * E
    assert all(r.tx_hash and r.tx_hash.startswith("0x") for r in fund_rows)
    assert net.token.balance_of(wallet.address) == 0  # budget 10, all of it paid out under the policy


def test_cover_tops_up_only_what_the_float_lacks(world) -> None:
    funds = world[2]
    funds.cover(2 * E, "a")
    funds.cover(2 * E, "b")  # already there: no payment
    funds.cover(3 * E, "c")  # one more VMT
    assert [r.amount for r in funds.ledger.rows("fund")] == [2 * E, E]
    with pytest.raises(BudgetRefused, match="over per-payment limit"):
        funds.cover(7 * E, "d")  # needs 4 > max_per_payment 3


def test_a_stolen_key_cannot_pay_strangers_or_more_than_the_policy(world) -> None:
    _, wallet, _, _, key, stranger = world
    thief = wallet.as_signer(key)
    with pytest.raises(ContractRevert, match="counterparty not allowed"):
        thief.pay(stranger.address, E)
    with pytest.raises(ContractRevert, match="over per-payment limit"):
        thief.pay(key.address, 4 * E)
    with pytest.raises(ContractRevert, match="caller is not the owner"):
        thief.withdraw(stranger.address, E)


def test_revoked_and_expired_keys_fund_nothing(world) -> None:
    net, wallet, funds, owner, key, _ = world
    net.backend.advance_time(3_601)
    with pytest.raises(BudgetRefused, match="session key expired"):
        funds.cover(E, "late")
    assert funds.allowance_left() == 0
    wallet.revoke_session_key(key.address, signer=owner)
    with pytest.raises(BudgetRefused, match="session key revoked"):
        funds.cover(E, "revoked")
    # the owner still recovers everything
    wallet.withdraw(owner.address, net.token.balance_of(wallet.address), signer=owner)
    assert net.token.balance_of(wallet.address) == 0


def test_unused_float_goes_back_to_the_wallet(world) -> None:
    net, wallet, funds, _, key, _ = world
    funds.cover(3 * E, "job")
    jm = net.job_market.as_signer(key)
    net.token.as_signer(key).approve(jm.address, E)
    jm.deposit(E)  # e.g. a refund credited to the key's market balance
    before = net.token.balance_of(wallet.address)
    assert funds.return_float() == 3 * E
    assert net.token.balance_of(wallet.address) == before + 3 * E
    assert funds.float_balance == 0
    assert funds.ledger.rows("return")[0].amount == 3 * E


def test_market_terms_mirror_the_contract(world) -> None:
    net = world[0]
    terms = MarketTerms.read(net.job_market)
    for price in (1, 10**15, E, 7 * E, 10**22):
        assert terms.bond(price) == net.job_market.bond_for(price)
        for mode in (audit(0), audit(0.05), audit(1.0), replicate(1), replicate(3)):
            assert terms.escrow(mode, price) == net.job_market.escrow_for(mode.mode, mode.param, price)


def test_funding_ahead_pays_a_batch_in_one_payment_within_the_cap(world) -> None:
    net, _, funds, _, key, stranger = world
    funds.cover(2 * E, "a", ahead=4 * E)  # 6 wanted, one payment may move 3
    assert funds.float_balance == 3 * E
    _spend(net, key, stranger.address)  # job a takes 2... and the rest leaves too (simulated)
    funds.cover(2 * E, "b", ahead=0)
    assert [r.amount for r in funds.ledger.rows("fund")] == [3 * E, 2 * E]
