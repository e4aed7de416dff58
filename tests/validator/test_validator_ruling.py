"""A committee member's ruling (``node.evidence.rule``) on games played on a real JobMarket:
a rule-breaking move, a premature referral, missing evidence and an outside challenger whose
trace root is not on chain."""

from __future__ import annotations

import pytest
from test_validator_dispute_player import OUT_A, audit_dispute, play_to_end, players
from validator_world import World

from verimesh.chain import Mode
from verimesh.node.dispute import DisputePlayer, replay_game
from verimesh.node.evidence import PostedJob, rule
from verimesh.verify.adversary import WrongOpContext
from verimesh.verify.bisection import Party
from verimesh.verify.referee import Method

POSTED = PostedJob(
    spec_hash="0x" + "01" * 32, model_root="0x" + "02" * 32, input_root="0x" + "03" * 32
)


@pytest.fixture(scope="module")
def cheat_trace(tiny_job):
    return tiny_job.trace(WrongOpContext(40))


def bodies(*ps: DisputePlayer):
    return tuple(p.evidence_json() for p in ps)


def test_a_rule_breaking_move_convicts_its_mover(world, honest_trace, cheat_trace):
    job_id, provider, validator = audit_dispute(world, honest_trace, cheat_trace)
    d, c = players(world, job_id, provider, validator, honest_trace, cheat_trace)
    c._answer = lambda query: (2**64).to_bytes(32, "big")  # a step count that is no 64-bit number
    d.tick(), c.tick()
    assert d.tick().action == "referred"
    ruling = rule(replay_game(world.net.job_market, job_id), (None, None), POSTED)
    assert ruling.guilty == {Party.CHALLENGER} and ruling.method is Method.EVIDENCE


def test_referring_before_the_end_concedes(world, honest_trace, cheat_trace):
    job_id, provider, validator = audit_dispute(world, honest_trace, cheat_trace)
    d, c = players(world, job_id, provider, validator, honest_trace, cheat_trace)
    d.tick(), c.tick()
    world.net.job_market.transact("refer_dispute", job_id, signer=world.signer_of(provider))
    state = replay_game(world.net.job_market, job_id)
    assert state.conceded is Party.DEFENDER
    assert rule(state, (None, None), POSTED).guilty == {Party.DEFENDER}


def test_a_party_without_evidence_is_guilty(world, honest_trace, cheat_trace):
    job_id, provider, validator = audit_dispute(world, honest_trace, cheat_trace)
    d, c = players(world, job_id, provider, validator, honest_trace, cheat_trace)
    play_to_end(d, c)
    state = replay_game(world.net.job_market, job_id)
    assert rule(state, (d.evidence_json(), None), POSTED).guilty == {Party.CHALLENGER}
    ruling = rule(state, bodies(d, c), POSTED)  # with both: the op is recomputed
    assert ruling.guilty == {Party.CHALLENGER} and ruling.method is Method.RECOMPUTE


def test_an_outside_challenger_is_judged_on_the_root_its_evidence_proves(
    world: World, honest_trace, cheat_trace
):
    jm = world.net.job_market
    job_id = world.post(Mode.REPLICATE, 1)
    (provider,) = jm.assigned(job_id)
    world.commit_reveal(job_id, {provider: (OUT_A, cheat_trace.root)})
    world.net.token.approve(jm.address, jm.challenge_bond(), signer=world.outsider)
    jm.challenge(job_id, 0, signer=world.outsider)
    d, c = players(world, job_id, provider, world.outsider.address, cheat_trace, honest_trace)
    play_to_end(d, c)
    state = replay_game(jm, job_id)
    assert state.challenger_root is None  # not on chain: taken from the challenger's evidence
    ruling = rule(state, bodies(d, c), POSTED)
    assert ruling.guilty == {Party.DEFENDER} and ruling.method is Method.RECOMPUTE
    jm.resolve_dispute(job_id, True, signer=world.deployer)
    assert c.tick().won


def test_same_trace_other_output_is_settled_by_the_traces_answer_ops(world, tmp_path, monkeypatch):
    """Both claim one trace, so there is no leaf to bisect to: the member reads the job's
    answer off that trace, or re-executes the job if no leaf of it is served."""
    from verimesh.models.registry import bundled
    from verimesh.models.store import ModelStore
    from verimesh.node.execute import execute, job_trace, leaf_evidence
    from verimesh.node.jobs import decode_input, make_spec

    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    root = ModelStore(tmp_path / "models").put_bytes(
        bundled("tiny-shakespeare").build().to_bytes(), "tiny"
    )
    spec, data = make_spec(root, "generate", "ROMEO:", {"max_tokens": 2})
    honest, _ = execute(spec, decode_input(data))
    jm = world.net.job_market
    job_id = world.post(Mode.AUDIT, 10_000)
    (provider,) = jm.assigned(job_id)
    world.commit_reveal(job_id, {provider: (honest.output_root, honest.trace_root)})
    validator = jm.audits(job_id).validator  # a griefer: the right trace, another output
    jm.audit_report(job_id, OUT_A, honest.trace_root, signer=world.signer_of(validator))
    now = world.backend.timestamp
    d = DisputePlayer(world.signed(world.signer_of(provider)).job_market, job_id, lambda: None,
                      clock=now, spec=spec, input_bytes=data)  # fmt: skip
    assert d.tick().action == "referred"  # nothing to bisect: straight to the committee
    state = replay_game(jm, job_id)
    posted = PostedJob(
        spec_hash="0x" + spec.hash().hex(), model_root=spec.model_root, input_root=spec.input_root
    )
    # the committed trace's answer ops (one choice per step), served by the provider
    trace = job_trace(spec, data)
    asked = []

    def leaves(party, leaf_index):
        asked.append(leaf_index)
        return leaf_evidence(trace, leaf_index) if party is Party.DEFENDER else None

    ruling = rule(state, (d.evidence_json(), None), posted, leaves)
    assert ruling.guilty == {Party.CHALLENGER} and ruling.recomputed_output == honest.output_root
    assert ruling.method is Method.ANSWER and len(set(asked)) == len(trace.steps) == 2
    # nobody serves a leaf that holds: the whole job again, the same ruling
    ruling = rule(state, (d.evidence_json(), None), posted, lambda party, leaf_index: {"record": {}})
    assert ruling.guilty == {Party.CHALLENGER} and ruling.recomputed_output == honest.output_root
    assert ruling.method is Method.REPLAY


def test_members_take_the_claimed_tokens_of_every_output_served_and_skip_the_rest():
    """What each party's body claims it generated: a referee fast-forwards deep into a
    generation only after the program confirms such a claim (tests/verify/test_verify_referee.py),
    so anything else served is simply not a claim."""
    import numpy as np

    from verimesh.node.evidence import served_claims
    from verimesh.runtime.tensor import canonical_bytes

    tokens = canonical_bytes(np.asarray([5, 7, 2], dtype=np.int64))
    matrix = canonical_bytes(np.zeros((2, 3), dtype=np.int32))  # an embedding job's output
    served = [None, {"output_hex": tokens.hex()}, {"output_hex": "zz"}, {"output_hex": matrix.hex()},
              {"output_hex": None}, {}]  # fmt: skip
    assert served_claims(served) == ((5, 7, 2),)
