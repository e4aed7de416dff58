"""CommitteeClient on the in-process EVM and over JSON-RPC (anvil): a deployment's referee is
its DisputeCommittee; a referred dispute gets a committee (the same one Python draws), its
m-of-n verdict settles the job, and a member that signed another verdict is slashed."""

from __future__ import annotations

import os

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.client import CONTRACTS, Network
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, describe, fund_accounts
from verimesh.chain.deployment import NetworkParams
from verimesh.chain.errors import ContractRevert
from verimesh.chain.job_market import JobState, Mode, Turn, commitment
from verimesh.chain.lifecycle import CAPABILITIES, VMT, WINDOW, register_providers
from verimesh.chain.registry import Role
from verimesh.crypto.eip712 import fast_digest
from verimesh.verify.committee import (
    GUILTY_CHALLENGER,
    GUILTY_DEFENDER,
    Verdict,
    aggregate,
    expected_committee,
    sign_verdict,
)

PRICE = 5 * VMT
STAKE = 200 * VMT
OUT, TRACE, SALT = b"\x0a" * 32, b"\x0b" * 32, b"\x5a" * 32
OUTPUT_HASH = b"\x77" * 32
LEAF = 3


def _network(backend, artifact_cache) -> tuple[Network, dict]:
    deployer = dev_signer(0)
    network = deploy_network(backend, deployer, artifacts=load_artifacts(cache_dir=artifact_cache, names=CONTRACTS))
    people = {"requester": dev_signer(1), "provider": dev_signer(2), "challenger": dev_signer(3)}
    validators = [dev_signer(i) for i in range(4, 8)]
    fund_accounts(network, deployer, [s.address for s in [*people.values(), *validators]], 1_000 * VMT)
    register_providers(network, [people["provider"]], STAKE, PRICE)
    for v in validators:
        network.token.approve(network.registry.address, STAKE, signer=v)
        network.registry.register(Role.VALIDATOR, STAKE, "http://v", CAPABILITIES, 0, signer=v)
    people["validators"] = validators
    return network, people


def _referred_dispute(network: Network, people: dict) -> int:
    """audit(0) job, challenged from outside, the defender ends the game at once."""
    jm, requester, provider, challenger = network.job_market, people["requester"], people["provider"], people["challenger"]
    for account in (requester, challenger):
        network.token.approve(jm.address, 500 * VMT, signer=account)
    posted = jm.post_job(os.urandom(32), b"\x01" * 32, b"\x02" * 32, Mode.AUDIT, 0, PRICE, WINDOW, WINDOW,
                         WINDOW, signer=requester)
    jm.commit(posted.job_id, commitment(posted.job_id, provider.address, OUT, TRACE, SALT), signer=provider)
    jm.reveal(posted.job_id, OUT, TRACE, SALT, signer=provider)
    jm.challenge(posted.job_id, 0, signer=challenger)
    tx = jm.refer_dispute(posted.job_id, signer=provider)
    assert tx.event("DisputeReferred", jm.address)["by"] == provider.address
    assert jm.disputes(posted.job_id).turn == Turn.REFEREE
    return posted.job_id


def test_committee_verdict_settles_a_dispute(backend, artifact_cache):
    network, people = _network(backend, artifact_cache)
    jm, committee = network.job_market, network.committee
    assert committee is not None
    assert jm.referee() == committee.address
    assert network.registry.slasher() == committee.address
    assert committee.job_market() == jm.address and committee.registry() == network.registry.address
    params = NetworkParams()
    assert (committee.committee_size(), committee.threshold()) == (params.committee_size, params.committee_threshold)

    job_id = _referred_dispute(network, people)
    listed = network.registry.validators()
    free = {a: network.registry.free_stake(a) for a in listed}
    keeper = people["requester"]
    committee.request_committee(job_id, signer=keeper)
    assert committee.request_block(job_id) > 0
    drawn = committee.draw_committee(job_id, signer=keeper)
    exclude = [people["requester"].address, people["provider"].address, people["challenger"].address]
    assert drawn.members == expected_committee(drawn.seed, listed, free, exclude, params.committee_size)
    assert len(drawn.members) == 4 and drawn.threshold == committee.threshold_for(4) == 3
    info = committee.committee(job_id)
    assert info.drawn and info.deadline == drawn.deadline == jm.disputes(job_id).deadline
    assert committee.members(job_id) == drawn.members

    by_address = {v.address: v for v in people["validators"]}
    verdict = Verdict(job_id=job_id, dispute_round=info.dispute_round, guilty=GUILTY_DEFENDER, leaf_index=LEAF,
                      recomputed_output=OUTPUT_HASH)
    domain = committee.domain()
    sigs = [sign_verdict(by_address[m], verdict, domain, drawn.deadline) for m in drawn.members[:3]]
    assert committee.verdict_digest(verdict, sigs[0].signer) == fast_digest(
        domain, verdict, sigs[0].signer, 0, drawn.deadline)
    with pytest.raises(ContractRevert, match="dispute_committee: too few signatures"):
        committee.submit_verdict(aggregate(verdict, drawn.deadline, sigs[:2]), signer=keeper)
    tx = committee.submit_verdict(aggregate(verdict, drawn.deadline, sigs), signer=keeper)
    assert tx.event("VerdictAccepted", committee.address)["guilty"] == GUILTY_DEFENDER
    assert tx.event("DisputeResolved", jm.address)["winner"] == people["challenger"].address
    assert jm.jobs(job_id).state == JobState.FINALIZED
    assert committee.committee(job_id).accepted

    # The fourth member signed the other verdict: anyone may get it slashed.
    liar = drawn.members[3]
    other = verdict.model_copy(update={"guilty": GUILTY_CHALLENGER})
    lie = sign_verdict(by_address[liar], other, domain, drawn.deadline)
    before = network.registry.members(liar).stake
    committee.report_equivocation(other, liar, lie.signature, signer=keeper)
    assert network.registry.members(liar).stake == before - committee.equivocation_penalty()
    assert committee.slashed(job_id, liar)


def test_published_signatures_and_deployment_record(artifact_cache):
    network, people = _network(BoaBackend(), artifact_cache)
    committee = network.committee
    job_id = _referred_dispute(network, people)
    committee.request_committee(job_id, signer=people["requester"])
    drawn = committee.draw_committee(job_id, signer=people["requester"])
    member = next(v for v in people["validators"] if v.address == drawn.members[0])
    verdict = Verdict(job_id=job_id, dispute_round=drawn.dispute_round, guilty=GUILTY_DEFENDER, leaf_index=LEAF,
                      recomputed_output=OUTPUT_HASH)
    sig = sign_verdict(member, verdict, committee.domain(), drawn.deadline)
    tx = committee.publish_signature(verdict, sig.signature, signer=member)
    event = tx.event("VerdictSigned", committee.address)
    assert (event["signer"], event["signature"]) == (member.address, sig.signature)
    record = describe(network, dev_signer(0), NetworkParams(), load_artifacts(cache_dir=artifact_cache,
                                                                              names=CONTRACTS), None)
    assert record.contracts.committee == committee.address
    again = Network.connect(record, backend=network.backend,
                            artifacts=load_artifacts(cache_dir=artifact_cache, names=CONTRACTS))
    assert again.committee is not None and again.committee.committee(job_id).size == len(drawn.members)
