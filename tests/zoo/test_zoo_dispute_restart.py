"""A dispute duty survives SIGKILL: the honest provider is a real `verimesh node run` process,
killed (SIGKILL, no cleanup) the moment its job turns DISPUTED and started again on the same
home. It picks the dispute up from its journal and the chain (the player keeps no state of
its own), plays it to the end, wins, is paid; the cheat (``one-bad-op``) is slashed.
"""

from __future__ import annotations

import pytest
from zoo_world import WINDOW, NodeProcess, Zoo, ZooNode, job_state, slashed_accounts, wait_for

from verimesh.chain import JobState
from verimesh.client import replicate
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
PROMPT = "ROMEO:"


def test_killed_honest_node_finishes_its_dispute_after_restart(
    zoo_chain: Zoo, pool: list, pytestconfig: pytest.Config
) -> None:
    zoo = zoo_chain
    node = NodeProcess(zoo, zoo.tmp / "honest-proc", "dev2", pytestconfig.cache.mkdir("verimesh-selfbench"))
    cheater = ZooNode(zoo.state, zoo.tmp / "cheater", "dev3", Behaviour.ONE_BAD_OP)
    try:
        node.start()
        handle = zoo.client.submit(
            model=zoo.model_root, task="generate", input=PROMPT, params={"max_tokens": 3, "seed": 9},
            mode=replicate(2), commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
        )  # fmt: skip
        job_id = handle.job_id
        wait_for(lambda: job_state(zoo.client, job_id) == JobState.DISPUTED, "the dispute", timeout=120)
        node.kill()
        rounds = zoo.client.net.job_market.disputes(job_id).round
        assert node.step(job_id) == "revealed"  # the journal still holds the duty

        node.start()  # same home: a new life of the same node
        nodes = {"honest": _Endpoint(node.url, handle.providers, cheater.address), "cheater": cheater}
        ruling = zoo.referee.rule(job_id, nodes, handle.spec, PROMPT, handle.block)
        assert zoo.client.net.job_market.disputes(job_id).round > rounds  # it played on after the kill
        defender = handle.providers[zoo.client.net.job_market.disputes(job_id).defender_replica]
        assert ruling.guilty == {Party.DEFENDER if defender == cheater.address else Party.CHALLENGER}
        assert slashed_accounts(zoo.client, job_id, handle.block) == {cheater.address.lower()}
        wait_for(lambda: node.step(job_id) == "done", "the restarted node to be paid", timeout=60)
    finally:
        cheater.close()
        node.stop()


class _Endpoint:
    """The honest node process as the referee sees it: an address and a URL."""

    def __init__(self, url: str, providers: list[str], cheater: str) -> None:
        self.url = url
        self.address = next(p for p in providers if p != cheater)
