"""OpRefereeClient on the in-process EVM and over JSON-RPC (anvil): a deployment wires OpCheck
and the OpReferee to its DisputeCommittee; a replicated job whose replicas disagree is settled
by one proven wrong op, without a committee; an honest leaf is refused; deployment records
name both contracts and older records (without them) still load."""

from __future__ import annotations

import os

import numpy as np
import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.client import CONTRACTS, Network
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, describe, fund_accounts
from verimesh.chain.deployment import ContractAddresses, NetworkParams
from verimesh.chain.errors import ContractRevert
from verimesh.chain.job_market import JobState, Mode, commitment
from verimesh.chain.lifecycle import VMT, WINDOW, register_providers
from verimesh.chain.op_referee import Accused
from verimesh.runtime import ExecutionContext
from verimesh.runtime.trace import Trace
from verimesh.verify.adversary import WrongOpContext

PRICE = 2 * VMT
STAKE = 200 * VMT
SALT = b"\x5a" * 32
TARGET = 3  # the cheat's wrong op: step 1, op 0


def _requantize_trace(ctx: ExecutionContext) -> Trace:
    rng = np.random.default_rng(11)
    for step in ([4, 8, 16], [16, 8]):
        ctx.begin_step()
        for n in step:
            ctx.call("requantize", rng.integers(-(2**30), 2**30, size=(n,), dtype=np.int32),
                     np.array(1 << 20, dtype=np.int32), np.array(24, dtype=np.int32))
    assert ctx.trace is not None
    return ctx.trace


def _network(backend, artifact_cache) -> tuple[Network, dict]:
    deployer = dev_signer(0)
    network = deploy_network(backend, deployer, artifacts=load_artifacts(cache_dir=artifact_cache, names=CONTRACTS))
    people = {"requester": dev_signer(1), "providers": [dev_signer(2), dev_signer(3)]}
    fund_accounts(network, deployer, [people["requester"].address, *(p.address for p in people["providers"])],
                  1_000 * VMT)
    register_providers(network, people["providers"], STAKE, PRICE)
    return network, people


def test_a_proven_wrong_op_settles_a_replicated_job(backend, artifact_cache):
    network, people = _network(backend, artifact_cache)
    jm, referee, committee = network.job_market, network.op_referee, network.committee
    assert referee is not None and committee is not None
    assert committee.call("op_referee") == referee.address
    assert referee.committee() == committee.address and referee.job_market() == jm.address
    assert referee.op_check() != "0x" + "00" * 20

    honest = _requantize_trace(ExecutionContext(keep_tensors=True))
    cheat = _requantize_trace(WrongOpContext(TARGET))
    output_root = os.urandom(32)  # both deliver the same output bytes: only the trace differs
    requester = people["requester"]
    network.token.approve(jm.address, 100 * VMT, signer=requester)
    posted = jm.post_job(os.urandom(32), b"\x01" * 32, b"\x02" * 32, Mode.REPLICATE, 2, PRICE, WINDOW, WINDOW,
                         WINDOW, signer=requester)
    by_address = {p.address: p for p in people["providers"]}
    challenger, defender = (by_address[a] for a in jm.assigned(posted.job_id))  # replica 0 challenges 1
    roots = {challenger.address: honest.root, defender.address: cheat.root}
    for p in (challenger, defender):
        jm.commit(posted.job_id, commitment(posted.job_id, p.address, output_root, roots[p.address], SALT), signer=p)
    for p in (challenger, defender):
        jm.reveal(posted.job_id, output_root, roots[p.address], SALT, signer=p)
    assert jm.jobs(posted.job_id).state == JobState.DISPUTED

    step, index = cheat.position(TARGET)
    with pytest.raises(ContractRevert, match="op_referee: the op is correct"):
        referee.prove_wrong_op(posted.job_id, Accused.CHALLENGER, honest.leaf(step, index), honest.proof(step, index),
                               output_root, honest.root, signer=challenger)
    with pytest.raises(ContractRevert, match="op_referee: the roots are not the accused party's committed result"):
        referee.prove_wrong_op(posted.job_id, Accused.CHALLENGER, cheat.leaf(step, index), cheat.proof(step, index),
                               output_root, cheat.root, signer=challenger)
    assert referee.committed_digest(posted.job_id, Accused.DEFENDER) == jm.replica(posted.job_id, 1).digest

    tx = referee.prove_wrong_op(posted.job_id, Accused.DEFENDER, cheat.leaf(step, index), cheat.proof(step, index),
                                output_root, cheat.root, signer=challenger)
    proven = tx.event("WrongOpProven", referee.address)
    assert (proven["job_id"], proven["accused"], proven["prover"]) == (posted.job_id, 1, challenger.address)
    assert (proven["step"], proven["index"], proven["op"]) == (step, index, "requantize")
    assert tx.event("ResolvedByOpProof", committee.address)["guilty"] == 1
    assert tx.event("DisputeResolved", jm.address)["winner"] == challenger.address
    assert jm.jobs(posted.job_id).state == JobState.FINALIZED
    assert referee.leaf_hash(cheat.leaf(step, index)) == cheat.leaf(step, index).leaf_hash()


def test_deployment_records_name_the_op_referee_and_older_records_still_load(artifact_cache):
    artifacts = load_artifacts(cache_dir=artifact_cache, names=CONTRACTS)
    network, _people = _network(BoaBackend(), artifact_cache)
    record = describe(network, dev_signer(0), NetworkParams(), artifacts, None)
    assert network.op_referee is not None
    assert record.contracts.op_referee == network.op_referee.address
    assert record.contracts.op_check == network.op_referee.op_check()
    again = Network.connect(record, backend=network.backend, artifacts=artifacts)
    assert again.op_referee is not None and again.op_referee.committee() == network.committee.address
    assert again.as_signer(dev_signer(1)).op_referee.signer.address == dev_signer(1).address
    assert again.op_referee in again.clients

    # a deployment.json written before on-chain op proofs: no op_check / op_referee keys
    old = record.contracts.model_dump()
    del old["op_check"], old["op_referee"]
    older = record.model_copy(update={"contracts": ContractAddresses.model_validate(old)})
    connected = Network.connect(older, backend=network.backend, artifacts=artifacts)
    assert connected.op_referee is None and connected.committee is not None
