"""Provider cheats in audit(p) mode, through the real contracts: the cheating node is the
job's only provider; a validator drawn by the chain's randomness (p = 100% here) re-executes
the job, reports a different result, and the dispute is played on chain between the
provider node and the validator daemon. The committee (or the interim referee) rules on the
one leaf the game ends at; the cheat is slashed and the validator earns the bounty.

Three cheats stand for the three ways a dispute is decided: ``wrong-output`` (same
instruction, another output: one op recomputed by the committee), ``model-swap`` (another
program: replayed to the disputed op, from the job spec and input in the evidence) and
``one-bad-small-op`` (an op the EVM recomputes itself: the validator, or another one, proves
it wrong on chain and no committee is drawn). The other cheats are played in replicate mode
(test_zoo_replicate.py): the game does not depend on who the opponent is.
"""

from __future__ import annotations

import pytest
from zoo_world import (
    WINDOW,
    ValidatorNode,
    Zoo,
    ZooNode,
    committee_drawn,
    job_state,
    op_proofs,
    slashed_accounts,
    wait_for,
)

from verimesh.chain import JobState
from verimesh.client import JobFailed, JobHandle, audit
from verimesh.node.evidence import served_claims
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party
from verimesh.verify.referee import Method

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
PROMPT = "ROMEO:"
# Sampled, not greedy: wrong-output's lie is then the `sample` op, which the EVM does not
# recompute (a greedy `argmax` over the tiny vocabulary it does: that lie is proven on chain).
PARAMS = {"max_tokens": 3, "seed": 7}
ZERO_ADDRESS = "0x" + "0" * 40


@pytest.fixture(scope="module")
def validators(zoo_chain: Zoo, pool: list[ValidatorNode]):
    """Honest validators to audit (and, with the committee contract, to rule)."""
    started = [] if pool else [ValidatorNode(zoo_chain.state, zoo_chain.tmp / f"auditor-{i}", f"dev{i}") for i in (4, 5)]
    yield pool or started
    for validator in started:
        validator.close()


@pytest.mark.parametrize(
    ("behaviour", "method"),
    [
        (Behaviour.WRONG_OUTPUT, Method.RECOMPUTE),
        (Behaviour.MODEL_SWAP, Method.INSTRUCTION),
        (Behaviour.ONE_BAD_SMALL_OP, Method.RECOMPUTE),
        (Behaviour.LOWER_PRECISION_LATE, Method.INSTRUCTION),
    ],
    ids=lambda v: getattr(v, "value", ""),
)
def test_audit_catches_the_cheat_and_slashes_it(zoo_chain: Zoo, validators, behaviour: Behaviour, method: Method) -> None:
    zoo = zoo_chain
    jm = zoo.client.net.job_market
    cheater = ZooNode(zoo.state, zoo.tmp / "cheater", "dev3", behaviour)  # the only provider
    try:
        handle = zoo.client.submit(
            model=zoo.model_root, task="generate", input=PROMPT, params=PARAMS,
            mode=audit(1.0), commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
        )  # fmt: skip
        wait_for(lambda: job_state(zoo.client, handle.job_id) == JobState.DISPUTED, "the audit's dispute")
        auditor = next(v for v in validators if v.address == jm.audits(handle.job_id).validator)
        stake = zoo.client.net.registry.members(auditor.address).stake

        ruling = zoo.referee.rule(handle.job_id, {"cheat": cheater, "auditor": auditor}, handle.spec, PROMPT, handle.block)
        assert ruling.guilty == {Party.DEFENDER}, ruling.reasons  # the provider defends its result
        assert ruling.method is method
        if method is Method.INSTRUCTION:  # the agreed leaves came from the provider's node; the auditor serves them too
            asked = zoo.referee.leaves_served
            assert asked and all(party is Party.DEFENDER and served for party, _, served in asked)
            index = asked[0][1]
            leaves = [zoo.referee.leaf(node.url, handle.job_id, 0, index) for node in (cheater, auditor)]
            assert leaves[0] is not None and leaves[0]["record"] == leaves[1]["record"]
            # a leaf whose hashes are all a member needs comes without its input tensors
            bare = [zoo.referee.leaf(node.url, handle.job_id, 0, index, tensors=False) for node in (cheater, auditor)]
            full = {k: v for k, v in leaves[0]["record"].items() if k != "inputs"}
            assert "inputs" in leaves[0]["record"] and [b["record"] for b in bare] == [full, full]
            # both also serve the generation they claim, for a fast-forward had no leaf been served
            assert len(served_claims(zoo.referee.last_bodies)) == 2
        proofs = op_proofs(zoo.client, handle.job_id, handle.block)
        if behaviour is Behaviour.ONE_BAD_SMALL_OP:  # settled on chain: no committee drawn
            assert [(p["accused"], p["prover"] != cheater.address) for p in proofs] == [(1, True)]
            assert not committee_drawn(zoo.client, handle.job_id)
        else:
            assert proofs == []
        assert slashed_accounts(zoo.client, handle.job_id, handle.block) == {cheater.address.lower()}
        wait_for(lambda: cheater.step(handle.job_id) == "failed", "the cheat to see its loss")
        zoo.referee.check_fallbacks(behaviour, ruling)  # the auditor serves its leaves from a rebuilt player
        bounty = next(e for e in jm.get_events("Slashed", handle.block) if e["job_id"] == handle.job_id)
        assert bounty["bounty_to"] == auditor.address and bounty["bounty"] > 0
        assert zoo.client.net.registry.members(auditor.address).stake == stake  # never slashed
        # The requester is never handed the proven lie: no provider won, so it gets its refund.
        with pytest.raises(JobFailed, match="proved the providers' result wrong") as failed:
            handle.result(timeout=60)
        assert failed.value.refund is not None and failed.value.refund.amount > 0
    finally:
        cheater.close()


def audited_job(zoo: Zoo) -> JobHandle:
    """A 3-token generation audited for certain, once its auditor is drawn."""
    handle = zoo.client.submit(
        model=zoo.model_root, task="generate", input=PROMPT, params={"max_tokens": 3},
        mode=audit(1.0), commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
    )  # fmt: skip
    jm = zoo.client.net.job_market
    wait_for(lambda: jm.audits(handle.job_id).validator != ZERO_ADDRESS, "the audit draw")
    return handle


def test_an_auditor_nobody_gives_the_job_abandons_the_audit_and_nobody_is_slashed(zoo_chain: Zoo, validators) -> None:
    """The provider refuses its drawn auditor the job, and the requester goes offline after
    posting (it never hands the auditor its copy). The auditor cannot tell who withheld what,
    so before the report deadline it abandons the audit: the requester is refunded in full,
    every bond is released, nobody is slashed (it used to stay silent and be slashed)."""
    zoo = zoo_chain
    jm = zoo.client.net.job_market
    provider = ZooNode(zoo.state, zoo.tmp / "withholder-offline", "dev3", withhold_from_validators=True)
    try:
        handle = audited_job(zoo)
        auditor = jm.audits(handle.job_id).validator
        stakes = {a: zoo.client.net.registry.members(a).stake for a in (auditor, provider.address)}
        job = jm.jobs(handle.job_id)
        # the chain's clock 40 s on (a block with that timestamp is mined): 20 s minus the
        # seconds since the last reveal are left before the report deadline, which is the
        # auditor's abandon_margin, so it abandons at its next poll, with ~20 s of chain time
        # for its transaction (anvil keeps the offset: waiting for the wall clock instead
        # would land the transaction after the deadline)
        zoo.client.net.backend.advance_time(WINDOW - 20)
        wait_for(lambda: job_state(zoo.client, handle.job_id) == JobState.REFUNDED, "the abandoned audit", timeout=60)
        (abandoned,) = [e for e in jm.get_events("AuditAbandoned", handle.block) if e["job_id"] == handle.job_id]
        assert abandoned["validator"] == auditor
        (refund,) = [e for e in jm.get_events("Refunded", handle.block) if e["job_id"] == handle.job_id]
        assert refund["amount"] == jm.escrow_for(job.mode, job.mode_param, job.price)  # the audit fee too
        assert slashed_accounts(zoo.client, handle.job_id, handle.block) == set()
        for account, stake in stakes.items():
            member = zoo.client.net.registry.members(account)
            assert (member.stake, member.locked) == (stake, 0)
        duty = next(v for v in validators if v.address == auditor).daemon.journal.duty(handle.job_id)
        assert duty.step == "done" and duty.error.startswith("audit abandoned")
    finally:
        provider.close()


def test_a_provider_that_withholds_the_job_from_its_auditor_is_audited_anyway(zoo_chain: Zoo, validators) -> None:
    """The provider refuses its drawn auditor the result and the spec. The requester's SDK
    hands the auditor the spec and input it uploaded, so the audit happens, the auditor
    reports in time and is not slashed, and the (honest) provider is paid."""
    zoo = zoo_chain
    jm = zoo.client.net.job_market
    provider = ZooNode(zoo.state, zoo.tmp / "withholder", "dev3", withhold_from_validators=True)
    try:
        handle = audited_job(zoo)
        auditor = next(v for v in validators if v.address == jm.audits(handle.job_id).validator)
        stake = zoo.client.net.registry.members(auditor.address).stake
        out = handle.result(timeout=240)  # hands the auditor the spec and input
        wait_for(lambda: jm.audits(handle.job_id).digest != bytes(32), "the auditor's report", timeout=60)
        assert job_state(zoo.client, handle.job_id) == JobState.REVEALED  # it agreed: no dispute
        assert out.provider == provider.address
        assert slashed_accounts(zoo.client, handle.job_id, handle.block) == set()
        assert zoo.client.net.registry.members(auditor.address).stake == stake
    finally:
        provider.close()


# An embedding batch large enough to be spot-audited (verify.spot.MIN_SPOT_ROWS = 8).
TEXTS = [
    "A man is eating food.", "A man is riding a horse.", "A woman is playing violin.",
    "A monkey is playing drums.", "The cat sat on the mat.", "Stocks fell sharply on Monday.",
    "Idle laptops sell compute.", "The referee recomputes one op.", "A cheat loses its stake.",
    "Rain is expected tomorrow.",
]  # fmt: skip


@pytest.fixture(scope="module")
def minilm_root(zoo_chain: Zoo) -> str:
    """MiniLM in the store every node and validator of the zoo loads models from."""
    from verimesh.models.api import import_model
    from verimesh.models.store import ModelStore

    return "0x" + import_model("minilm", ModelStore(zoo_chain.tmp / "home" / "models")).hex()


@pytest.mark.parametrize("behaviour", [Behaviour.HONEST, Behaviour.LOWER_PRECISION], ids=lambda b: b.value)
def test_an_embedding_batch_is_spot_audited_from_sampled_rows(
    zoo_chain: Zoo, validators, minilm_root: str, behaviour: Behaviour, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auditor re-embeds a sample of the batch's rows instead of the whole batch: an
    honest batch passes and its provider is paid; a lower-precision one differs in every
    row, so the sample finds it, the auditor re-runs the whole job for its own roots, and
    the dispute slashes the provider."""
    from verimesh.verify import spot

    monkeypatch.setattr(spot, "EMBED_FULL_SHARE", 0.0)  # else 1 audit in 4 is a full re-run
    zoo = zoo_chain
    jm = zoo.client.net.job_market
    provider = ZooNode(zoo.state, zoo.tmp / f"embedder-{behaviour.value}", "dev3", behaviour)
    try:
        handle = zoo.client.submit(
            model=minilm_root, task="embed", input=TEXTS, mode=audit(1.0),
            commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
        )  # fmt: skip
        wait_for(lambda: jm.audits(handle.job_id).validator != ZERO_ADDRESS, "the audit draw")
        auditor = next(v for v in validators if v.address == jm.audits(handle.job_id).validator)
        stake = zoo.client.net.registry.members(auditor.address).stake
        if behaviour is Behaviour.HONEST:
            out = handle.result(timeout=240)
            wait_for(lambda: jm.audits(handle.job_id).digest != bytes(32), "the auditor's report", timeout=120)
            assert job_state(zoo.client, handle.job_id) == JobState.REVEALED  # it agreed: no dispute
            assert len(out.output) == len(TEXTS) and out.provider == provider.address
            assert slashed_accounts(zoo.client, handle.job_id, handle.block) == set()
            checked = auditor.daemon.journal.duty(handle.job_id).checked
            assert checked.startswith("spot check of rows "), checked
        else:
            wait_for(lambda: job_state(zoo.client, handle.job_id) == JobState.DISPUTED, "the audit's dispute")
            ruling = zoo.referee.rule(handle.job_id, {"cheat": provider, "auditor": auditor}, handle.spec, TEXTS,
                                      handle.block)  # fmt: skip
            assert ruling.guilty == {Party.DEFENDER}, ruling.reasons
            assert slashed_accounts(zoo.client, handle.job_id, handle.block) == {provider.address.lower()}
            checked = auditor.daemon.journal.duty(handle.job_id).checked
            assert checked.startswith("whole job re-run: spot check of rows ") and checked.endswith("failed"), checked
        assert zoo.client.net.registry.members(auditor.address).stake == stake  # never slashed
    finally:
        provider.close()
