"""An on-chain op proof survives a crash between the chain and the journal: the honest
provider is a real `verimesh node run` process that dies (``$VERIMESH_CRASH_AT``,
``os._exit``, no cleanup) right after its ``prove_wrong_op`` transaction, before it journals
how the attempt ended. The dispute is settled by that one proof (no committee), the cheat
(``one-bad-small-op``) is slashed; the next life of the node finds the job settled, sends no
second proof and collects its payment.
"""

from __future__ import annotations

import pytest
from zoo_world import (
    WINDOW,
    NodeProcess,
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
from verimesh.node.evidence import OpProofs
from verimesh.verify.adversary import Behaviour

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
PROMPT = "ROMEO:"


def test_a_node_killed_right_after_its_op_proof_is_paid_after_restart_and_proves_nothing_twice(
    zoo_chain: Zoo, pytestconfig: pytest.Config
) -> None:
    """No validators run: the node's own proof is the only one, and no committee could be
    drawn instead."""
    zoo = zoo_chain
    node = NodeProcess(zoo, zoo.tmp / "honest-proc", "dev2", pytestconfig.cache.mkdir("verimesh-selfbench"))
    cheater = ZooNode(zoo.state, zoo.tmp / "small-cheater", "dev3", Behaviour.ONE_BAD_SMALL_OP)
    try:
        node.start(crash_at="after_op_proof_sent")
        handle = zoo.client.submit(
            model=zoo.model_root, task="generate", input=PROMPT, params={"max_tokens": 3, "seed": 9},
            mode=replicate(2), commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
        )  # fmt: skip
        job_id = handle.job_id
        assert node.wait(timeout=240) == 137, node.log.read_text()[-3000:]  # died right after proving
        assert node.meta(OpProofs.key(job_id)) == "sending"  # the outcome never reached the journal
        assert node.step(job_id) == "revealed"
        (proof,) = op_proofs(zoo.client, job_id, handle.block)
        assert proof["prover"] == node.address
        assert job_state(zoo.client, job_id) == JobState.FINALIZED
        assert slashed_accounts(zoo.client, job_id, handle.block) == {cheater.address.lower()}
        assert not committee_drawn(zoo.client, job_id)

        node.start()  # same home, no fault: a new life of the same node
        wait_for(lambda: node.step(job_id) == "done", "the restarted node to be paid", timeout=120)
        assert len(op_proofs(zoo.client, job_id, handle.block)) == 1
        # the job is settled, so the new life sent nothing (a resend would have journaled its revert)
        assert node.meta(OpProofs.key(job_id)) == "sending"
        assert zoo.client.net.job_market.balances(node.address) == 0  # paid and withdrawn
    finally:
        cheater.close()
        node.stop()
