"""The provider adversary zoo in replicate(2) mode, through the real contracts: an honest
node and a node started with ``--adversary NAME`` are drawn for the same job. Every cheat
is caught and its bond slashed; the honest node is never slashed (and is paid whenever a
verdict decides the job).

- wrong computations (wrong-output, model-swap, skip-layers, lower-precision(-late), random-output,
  one-bad-op): the replicas' results differ, the contract opens a dispute, both nodes play
  the bisection game on chain from their own traces, the referee rules on the one leaf
  they end at (one op recomputed, or the program replayed to it);
- one-bad-small-op: the same, but the wrong op is small enough for the EVM: the honest node
  (or a validator) proves it wrong on chain (``OpReferee.prove_wrong_op``) and no committee
  is ever drawn;
- copy-replica: its reveal of the honest replica's roots is refused by the contract (they
  do not open its commitment); it is slashed at the reveal deadline;
- withhold-reveal: commits, never reveals, slashed at the reveal deadline.
"""

from __future__ import annotations

import json

import httpx
import pytest
from zoo_world import (
    WINDOW,
    Zoo,
    ZooNode,
    committee_drawn,
    job_state,
    op_proofs,
    slashed_accounts,
    wait_for,
)

from verimesh.chain import JobState
from verimesh.client import replicate
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party
from verimesh.verify.referee import Method

pytestmark = [pytest.mark.devnet, pytest.mark.slow]

PROMPT = "ROMEO:"
PARAMS = {"max_tokens": 3, "seed": 5}
CHEATER = "dev3"  # one cheating account for every behaviour: a slash costs 10 of its 100 VMT

# behaviour -> how the referee decides (RECOMPUTE: one op; INSTRUCTION: one op too, after
# walking the program's instruction at that position from its layer, or from the step's or
# the job's start, on the inputs the agreed leaves a party serves name; their fallbacks:
# RESUME, that layer alone; FORWARD, the disputed step after a confirmed output; REPLAY)
COMPUTE_CHEATS = {
    Behaviour.WRONG_OUTPUT: Method.RECOMPUTE,
    Behaviour.ONE_BAD_OP: Method.RECOMPUTE,
    Behaviour.ONE_BAD_SMALL_OP: Method.RECOMPUTE,
    Behaviour.MODEL_SWAP: Method.INSTRUCTION,
    Behaviour.SKIP_LAYERS: Method.INSTRUCTION,
    Behaviour.LOWER_PRECISION: Method.INSTRUCTION,
    Behaviour.LOWER_PRECISION_LATE: Method.INSTRUCTION,
    Behaviour.RANDOM_OUTPUT: Method.INSTRUCTION,  # a fabricated first op: the job's start walked
}
# the cheats whose wrong op the chain recomputes itself: settled by an op proof, no committee
SETTLED_ON_CHAIN = {Behaviour.ONE_BAD_SMALL_OP}


def _post(zoo: Zoo):
    return zoo.client.submit(
        model=zoo.model_root, task="generate", input=PROMPT, params=PARAMS, mode=replicate(2),
        commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
    )  # fmt: skip


@pytest.mark.parametrize("behaviour", list(COMPUTE_CHEATS), ids=lambda b: b.value)
def test_wrong_computation_loses_the_dispute_and_is_slashed(zoo: Zoo, behaviour: Behaviour) -> None:
    cheater = ZooNode(zoo.state, zoo.tmp / "cheater", CHEATER, behaviour)
    try:
        # A cheat does not advertise itself: its public info reads like the honest node's.
        info, honest_info = (httpx.get(f"{n.url}/v1/info").json() for n in (cheater, zoo.honest))
        assert info.keys() == honest_info.keys() and behaviour.value not in json.dumps(info)
        assert info["capabilities_hash"] == honest_info["capabilities_hash"]
        handle = _post(zoo)
        assert {p.lower() for p in handle.providers} == {zoo.honest.address.lower(), cheater.address.lower()}
        wait_for(lambda: job_state(zoo.client, handle.job_id) == JobState.DISPUTED, "the replicas' mismatch")
        nodes = {"honest": zoo.honest, "cheater": cheater}
        ruling = zoo.referee.rule(handle.job_id, nodes, handle.spec, PROMPT, handle.block)

        # On a mismatch replica 0 challenges and the first replica that differs defends.
        defender = handle.providers[zoo.client.net.job_market.disputes(handle.job_id).defender_replica]
        cheater_party = Party.DEFENDER if defender == cheater.address else Party.CHALLENGER
        assert ruling.guilty == {cheater_party}, ruling.reasons
        assert ruling.method is COMPUTE_CHEATS[behaviour], ruling
        if ruling.method is Method.INSTRUCTION:  # the agreed leaves were served over HTTP by a party's node
            assert all(served for *_, served in zoo.referee.leaves_served)
            assert zoo.referee.leaves_served or (ruling.step, ruling.index) == (0, 0)  # the first op reads none
        proofs = op_proofs(zoo.client, handle.job_id, handle.block)
        if behaviour in SETTLED_ON_CHAIN:  # proven by the honest node or a validator, never drawn
            assert [p["accused"] for p in proofs] == [int(cheater_party) + 1]
            assert proofs[0]["prover"] != cheater.address
            assert not committee_drawn(zoo.client, handle.job_id)
        else:  # an op too big for the EVM, or another program: the committee ruled
            assert proofs == []
        assert job_state(zoo.client, handle.job_id) == JobState.FINALIZED
        assert slashed_accounts(zoo.client, handle.job_id, handle.block) == {cheater.address.lower()}
        # Both nodes read the verdict: the honest one is paid and done, the cheat knows it lost.
        wait_for(lambda: zoo.honest.step(handle.job_id) == "done", "the honest node to be paid")
        wait_for(lambda: cheater.step(handle.job_id) == "failed", "the cheater to see its loss")
        assert "slashed" in (cheater.duty(handle.job_id).error or "")
        paid = [e for e in zoo.client.net.job_market.get_events("Credited", handle.block)
                if e["job_id"] == handle.job_id and e["account"].lower() == zoo.honest.address.lower()]  # fmt: skip
        assert sum(e["amount"] for e in paid) >= zoo.client.net.job_market.jobs(handle.job_id).price
        # The requester ends with the correct result: the winner's, never the proven lie.
        # (Either node may serve the bytes: a cheat whose lie did not change the output, like
        # one-bad-op's flipped bit, holds the same output blob.)
        out = handle.result(timeout=120)
        honest = [e for e in zoo.client.net.job_market.get_events("Revealed", handle.block)
                  if e["job_id"] == handle.job_id and e["provider"].lower() == zoo.honest.address.lower()]  # fmt: skip
        assert out.output_root == "0x" + bytes(honest[0]["output_root"]).hex()
        assert out.trace_root == "0x" + bytes(honest[0]["trace_root"]).hex()
        zoo.referee.check_fallbacks(behaviour, ruling)
    finally:
        cheater.close()


@pytest.mark.parametrize("behaviour", [Behaviour.COPY_REPLICA, Behaviour.WITHHOLD_REVEAL], ids=lambda b: b.value)
def test_missing_reveal_is_slashed_at_the_deadline(zoo: Zoo, behaviour: Behaviour) -> None:
    cheater = ZooNode(zoo.state, zoo.tmp / "cheater", CHEATER, behaviour)
    try:
        handle = _post(zoo)
        job_id = handle.job_id
        wait_for(lambda: zoo.honest.step(job_id) == "revealed", "the honest reveal")
        if behaviour is Behaviour.COPY_REPLICA:
            # It saw the honest roots and tried to reveal them as its own: refused on chain.
            wait_for(lambda: cheater.daemon.journal.get_meta(f"copied:{job_id}"), "the copy attempt")
            assert cheater.daemon.journal.get_meta(f"copied:{job_id}") == zoo.honest.duty(job_id).trace_root
        job = zoo.client.net.job_market.jobs(job_id)
        assert job.state == JobState.COMMITTED and job.revealed_mask.bit_count() == 1
        zoo.client.net.backend.advance_time(2 * WINDOW + 1)  # past the reveal deadline
        wait_for(lambda: job_state(zoo.client, job_id) == JobState.REFUNDED, "the timeout")
        assert slashed_accounts(zoo.client, job_id, handle.block) == {cheater.address.lower()}
        wait_for(lambda: zoo.honest.step(job_id) == "failed", "the honest node to close the job")
        wait_for(lambda: cheater.step(job_id) == "failed", "the cheater to close the job")
        refunds = [e for e in zoo.client.net.job_market.get_events("Refunded", handle.block) if e["job_id"] == job_id]
        assert refunds and refunds[0]["amount"] > zoo.client.net.job_market.escrow_for(1, 2, job.price)
    finally:
        cheater.close()
