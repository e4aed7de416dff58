"""The validator adversaries of the zoo, through the real contracts: an honest provider's
audit(100%) job is drawn to a ``griefing-challenger`` validator, which reports a wrong
result and defends it in the dispute; the committee that rules on it holds a
``false-verdict`` member among an honest majority. The griefer loses the dispute and its
bond; the false signature cannot reach the threshold, is reported as an equivocation and
slashed; the honest provider is paid and never slashed, the requester gets its result.
"""

from __future__ import annotations

import pytest
from zoo_world import WINDOW, ValidatorNode, Zoo, ZooNode, job_state, slashed_accounts, wait_for

from verimesh.chain import JobState
from verimesh.client import audit
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
PROMPT = "ROMEO:"


def test_griefing_challenger_and_false_verdict_lose_their_stake(zoo_chain: Zoo) -> None:
    zoo = zoo_chain
    net = zoo.client.net
    nodes: list = []
    try:
        provider = ZooNode(zoo.state, zoo.tmp / "provider", "dev2")
        nodes.append(provider)
        griefer = ValidatorNode(zoo.state, zoo.tmp / "griefer", "dev4", Behaviour.GRIEFING_CHALLENGER)
        nodes.append(griefer)  # the only validator yet: the audit draw must pick it
        stakes = {a: net.registry.members(a).stake for a in (provider.address, griefer.address)}
        handle = zoo.client.submit(
            model=zoo.model_root, task="generate", input=PROMPT, params={"max_tokens": 3, "seed": 3},
            mode=audit(1.0), commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
        )  # fmt: skip
        wait_for(lambda: net.job_market.audits(handle.job_id).validator == griefer.address, "the audit draw")
        # The committee's pool joins now (the auditor, a party, is never on the committee):
        # two honest validators and one that signs the verdict the evidence refutes.
        nodes += [ValidatorNode(zoo.state, zoo.tmp / f"v{i}", f"dev{i}") for i in (5, 6)]
        liar = ValidatorNode(zoo.state, zoo.tmp / "liar", "dev7", Behaviour.FALSE_VERDICT)
        nodes.append(liar)
        wait_for(lambda: job_state(zoo.client, handle.job_id) == JobState.DISPUTED, "the griefer's dispute")

        parties = {"provider": provider, "griefer": griefer}
        ruling = zoo.referee.rule(handle.job_id, parties, handle.spec, PROMPT, handle.block)
        assert ruling.guilty == {Party.CHALLENGER}, ruling.reasons  # the validator challenged
        assert slashed_accounts(zoo.client, handle.job_id, handle.block) == {griefer.address.lower()}
        assert net.registry.members(griefer.address).stake < stakes[griefer.address]
        assert net.registry.members(provider.address).stake == stakes[provider.address]  # never slashed
        wait_for(lambda: provider.step(handle.job_id) == "done", "the honest provider to be paid")
        assert handle.result(timeout=60).provider == provider.address  # the requester's answer
        if zoo.referee.committee:  # a minority's false signature proves its own guilt
            committee = net.committee
            assert liar.address in committee.members(handle.job_id)
            wait_for(lambda: committee.slashed(handle.job_id, liar.address), "the liar's slash", timeout=120)
    finally:
        for node in reversed(nodes):
            node.close()
