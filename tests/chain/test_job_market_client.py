"""JobMarketClient beyond the happy path, on the in-process EVM: audit, replica mismatch,
external challenge and dispute moves, typed views and the commitment helper."""

from __future__ import annotations

import os

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.errors import ContractRevert
from verimesh.chain.job_market import JobState, Mode, commitment, result_digest
from verimesh.chain.lifecycle import CAPABILITIES, VMT, WINDOW, register_providers
from verimesh.chain.registry import Role

PRICE = 5 * VMT
OUT, TRACE = b"\x0a" * 32, b"\x0b" * 32


@pytest.fixture
def net(artifact_cache):
    referee = dev_signer(0)
    network = deploy_network(
        BoaBackend(), referee, artifacts=load_artifacts(cache_dir=artifact_cache, names=CONTRACTS),
        referee=referee.address,  # an account decides: these tests are about JobMarket alone
    )
    requester, validator, challenger = dev_signer(1), dev_signer(4), dev_signer(5)
    providers = [dev_signer(2), dev_signer(3)]
    everyone = [requester, validator, challenger, *providers]
    fund_accounts(network, referee, [a.address for a in everyone], 1_000 * VMT)
    register_providers(network, providers, 200 * VMT, PRICE)
    network.token.approve(network.registry.address, 200 * VMT, signer=validator)
    network.registry.register(
        Role.VALIDATOR, 200 * VMT, "http://v", CAPABILITIES, 0, signer=validator
    )
    for account in (requester, challenger):
        network.token.approve(network.job_market.address, 500 * VMT, signer=account)
    return network, requester, providers, validator, challenger, referee


def _by_address(signers):
    return {s.address: s for s in signers}


def _post(network, requester, mode, param):
    return network.job_market.post_job(
        os.urandom(32),
        b"\x01" * 32,
        b"\x02" * 32,
        mode,
        param,
        PRICE,
        WINDOW,
        WINDOW,
        WINDOW,
        signer=requester,
    )


def _commit_reveal(network, job_id, signers, roots):
    salts = {}
    for address, (out, trace) in zip(network.job_market.assigned(job_id), roots, strict=True):
        salts[address] = os.urandom(32)
        c = commitment(job_id, address, out, trace, salts[address])
        assert c == network.job_market.commitment_for(job_id, address, out, trace, salts[address])
        network.job_market.commit(job_id, c, signer=signers[address])
    for address, (out, trace) in zip(network.job_market.assigned(job_id), roots, strict=True):
        network.job_market.reveal(job_id, out, trace, salts[address], signer=signers[address])


def test_certain_audit_agreeing_validator_then_finalize(net):
    network, requester, providers, validator, _, _ = net
    posted = _post(network, requester, Mode.AUDIT, 10_000)  # audit probability 100 %
    _commit_reveal(network, posted.job_id, _by_address(providers), [(OUT, TRACE)])
    job = network.job_market.jobs(posted.job_id)
    assert job.state is JobState.AUDITING and job.audited
    assert network.job_market.audits(posted.job_id).validator == validator.address
    tx = network.job_market.audit_report(posted.job_id, OUT, TRACE, signer=validator)
    assert tx.event("AuditReported")["agrees"] is True
    network.backend.advance_time(WINDOW + 1)
    network.job_market.finalize(posted.job_id, signer=requester)
    assert network.job_market.balances(validator.address) == network.job_market.audit_fee_for(PRICE)
    assert network.job_market.balances(posted.providers[0]) == PRICE


def test_replica_mismatch_goes_to_the_referee(net):
    network, requester, providers, _, _, referee = net
    posted = _post(network, requester, Mode.REPLICATE, 2)
    _commit_reveal(
        network, posted.job_id, _by_address(providers), [(OUT, TRACE), (b"\x0c" * 32, TRACE)]
    )
    assert network.job_market.jobs(posted.job_id).state is JobState.DISPUTED
    replica = network.job_market.replica(posted.job_id, 0)
    assert replica.revealed and replica.digest == result_digest(OUT, TRACE)
    with pytest.raises(ContractRevert, match="job_market: caller is not the referee"):
        network.job_market.resolve_dispute(posted.job_id, True, signer=requester)
    tx = network.job_market.resolve_dispute(posted.job_id, True, signer=referee)
    assert tx.event("DisputeResolved", network.job_market.address)["defender_at_fault"] is True
    assert network.job_market.jobs(posted.job_id).state in (JobState.FINALIZED, JobState.REFUNDED)


def test_external_challenge_and_dispute_moves(net):
    network, requester, providers, _, challenger, _ = net
    posted = _post(network, requester, Mode.REPLICATE, 1)
    signers = _by_address(providers)
    _commit_reveal(network, posted.job_id, signers, [(OUT, TRACE)])
    tx = network.job_market.challenge(posted.job_id, 0, signer=challenger)
    assert tx.event("Challenged")["bond"] == network.job_market.challenge_bond()
    dispute = network.job_market.disputes(posted.job_id)
    assert (dispute.challenger, dispute.bond, dispute.turn) == (challenger.address, 50 * VMT, 0)
    defender = signers[posted.providers[0]]
    with pytest.raises(ContractRevert, match="job_market: not your turn"):
        network.job_market.dispute_move(posted.job_id, b"\x01" * 32, signer=challenger)
    network.job_market.dispute_move(posted.job_id, b"\x01" * 32, signer=defender)
    assert network.job_market.disputes(posted.job_id).turn == 1
    network.backend.advance_time(network.job_market.dispute_round_window() + 1)
    tx = network.job_market.dispute_timeout(posted.job_id, signer=requester)
    assert tx.event("DisputeResolved", network.job_market.address)["winner"] == defender.address


def test_wrong_state_calls_are_refused_with_the_contract_reason(net):
    network, requester, providers, _, _, _ = net
    posted = _post(network, requester, Mode.REPLICATE, 1)
    provider = _by_address(providers)[posted.providers[0]]
    with pytest.raises(ContractRevert, match="job_market: "):
        network.job_market.reveal(posted.job_id, OUT, TRACE, b"\x00" * 32, signer=provider)
    with pytest.raises(ContractRevert, match="job_market: "):
        network.job_market.finalize(posted.job_id, signer=requester)
    assert network.job_market.jobs(posted.job_id).state is JobState.ASSIGNED
