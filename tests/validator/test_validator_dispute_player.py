"""The dispute player against a real JobMarket on the in-process EVM: honest and lying
defenders and challengers play the bisection to the first differing op, the referee rules
on their evidence, the liar is slashed; a silent party loses by timeout; a player rebuilt
mid-game (a restarted node) carries on from the chain alone."""

from __future__ import annotations

import pytest
from validator_world import PRICE, World

from verimesh.chain import Mode
from verimesh.chain.job_market import JobState
from verimesh.node.dispute import DisputePlayer, DisputePlayerError, replay_game
from verimesh.verify.adversary import WrongOpContext
from verimesh.verify.bisection import Party, PartyEvidence
from verimesh.verify.referee import decide

OUT_A = b"\xaa" * 32
OUT_B = b"\xbb" * 32


@pytest.fixture(scope="module")
def cheat_trace(tiny_job):
    return tiny_job.trace(WrongOpContext(40))


def audit_dispute(world: World, provider_trace, validator_trace) -> tuple[int, str, str]:
    """An audited job whose validator reports another result: DISPUTED, validator challenging."""
    jm = world.net.job_market
    job_id = world.post(Mode.AUDIT, 10_000)
    (provider,) = jm.assigned(job_id)
    world.commit_reveal(job_id, {provider: (OUT_A, provider_trace.root)})
    validator = jm.audits(job_id).validator
    assert jm.jobs(job_id).state == JobState.AUDITING
    jm.audit_report(job_id, OUT_B, validator_trace.root, signer=world.signer_of(validator))
    assert jm.jobs(job_id).state == JobState.DISPUTED
    return job_id, provider, validator


def players(world: World, job_id: int, provider: str, challenger: str, d_trace, c_trace, **kw):
    now = world.backend.timestamp
    d = DisputePlayer(
        world.signed(world.signer_of(provider)).job_market, job_id, d_trace, clock=now, **kw
    )
    c = DisputePlayer(
        world.signed(world.signer_of(challenger)).job_market, job_id, c_trace, clock=now
    )
    return d, c


def play_to_end(*ps: DisputePlayer, limit: int = 200):
    for _ in range(limit):
        statuses = [p.tick() for p in ps]
        if all(s.phase != "bisecting" for s in statuses):
            return statuses
    raise AssertionError("the game did not end")


def referee_resolves(
    world: World, job_id: int, d: DisputePlayer, c: DisputePlayer, job
) -> set[Party]:
    """The interim referee (the deployer's key) rules from both parties' wire evidence."""
    state = replay_game(world.net.job_market, job_id)
    evidence = [PartyEvidence.from_json(p.evidence_json()["evidence"]) for p in (d, c)]
    ruling = decide(state.dispute, *evidence, job)
    world.net.job_market.resolve_dispute(
        job_id, Party.DEFENDER in ruling.guilty, signer=world.deployer
    )
    return set(ruling.guilty)


def test_lying_defender_is_bisected_to_its_wrong_op_and_slashed(
    world, tiny_job, honest_trace, cheat_trace
):
    job_id, provider, validator = audit_dispute(world, cheat_trace, honest_trace)
    stake_before = world.stake(provider)
    d, c = players(world, job_id, provider, validator, cheat_trace, honest_trace)
    statuses = play_to_end(d, c)
    assert [s.phase for s in statuses] == ["over", "over"]
    assert statuses[0].outcome["kind"] == "leaf"
    assert (statuses[0].outcome["step"], statuses[0].outcome["index"]) == honest_trace.position(40)
    rounds = statuses[0].rounds
    assert 2 < rounds <= 64 and rounds % 2 == 0
    assert referee_resolves(world, job_id, d, c, tiny_job) == {Party.DEFENDER}
    final = [p.tick() for p in (d, c)]
    assert [s.phase for s in final] == ["resolved", "resolved"]
    assert final[1].won and not final[0].won
    assert world.stake(provider) < stake_before  # the cheat lost its bond
    assert world.stake(validator) == 500 * 10**18  # the honest validator keeps everything
    assert world.balance(validator) > PRICE  # audit fee + bounty


def test_lying_challenger_loses_and_the_honest_provider_is_paid(
    world, tiny_job, honest_trace, cheat_trace
):
    job_id, provider, validator = audit_dispute(world, honest_trace, cheat_trace)
    d, c = players(world, job_id, provider, validator, honest_trace, cheat_trace)
    play_to_end(d, c)
    assert referee_resolves(world, job_id, d, c, tiny_job) == {Party.CHALLENGER}
    assert world.stake(provider) == 500 * 10**18
    assert world.balance(provider) >= PRICE
    assert world.stake(validator) < 500 * 10**18
    assert d.tick().won is True


def test_a_restarted_player_continues_from_the_chain(world, honest_trace, cheat_trace):
    job_id, provider, validator = audit_dispute(world, cheat_trace, honest_trace)
    for _ in range(6):  # a few rounds, then both processes "restart" with fresh players
        for p in players(world, job_id, provider, validator, cheat_trace, honest_trace):
            p.tick()
    assert world.net.job_market.disputes(job_id).round >= 4
    d, c = players(world, job_id, provider, validator, cheat_trace, honest_trace)
    statuses = play_to_end(d, c)
    assert (statuses[0].outcome["step"], statuses[0].outcome["index"]) == honest_trace.position(40)
    assert (
        d.evidence().record.leaf_hash() == cheat_trace.leaf(*honest_trace.position(40)).leaf_hash()
    )


def test_silent_defender_loses_by_timeout(world, honest_trace, cheat_trace):
    job_id, provider, validator = audit_dispute(world, cheat_trace, honest_trace)
    d, c = players(world, job_id, provider, validator, cheat_trace, honest_trace)
    for _ in range(3):
        d.tick(), c.tick()
    assert c.tick().action is None  # the defender's deadline has not passed
    world.backend.advance_time(world.net.job_market.dispute_round_window() + 1)
    status = c.tick()
    assert status.action == "claimed-timeout"
    assert c.tick().phase == "resolved" and c.tick().won
    assert world.net.job_market.jobs(job_id).state == JobState.FINALIZED


def test_after_the_leaf_is_found_the_party_due_refers_and_a_silent_referee_annuls(
    world, honest_trace, cheat_trace
):
    job_id, provider, validator = audit_dispute(world, cheat_trace, honest_trace)
    d, c = players(world, job_id, provider, validator, cheat_trace, honest_trace)
    statuses = play_to_end(d, c)
    jm = world.net.job_market
    assert jm.disputes(job_id).turn == 2  # referred: the referee decides, nobody can be timed out
    assert "referred" in {s.action for s in statuses}
    assert replay_game(jm, job_id).late_moves == 0
    world.backend.advance_time(jm.dispute_round_window() + 1)
    assert d.tick().action == "claimed-annulment"
    assert c.tick().phase == "annulled"
    assert jm.jobs(job_id).state == JobState.REFUNDED
    assert world.stake(provider) == world.stake(validator) == 500 * 10**18  # nobody slashed


def test_a_move_that_breaks_the_rules_is_recorded_against_its_mover(
    world, honest_trace, cheat_trace
):
    job_id, provider, validator = audit_dispute(world, honest_trace, cheat_trace)
    d, c = players(world, job_id, provider, validator, honest_trace, cheat_trace)
    c._answer = lambda query: bytes(32)  # a step count of zero: not a legal move
    d.tick(), c.tick()
    status = d.tick()
    assert status.phase == "over" and status.violation.startswith("challenger")
    assert replay_game(world.net.job_market, job_id).violation[0] is Party.CHALLENGER


def test_an_outsider_cannot_play(world, honest_trace, cheat_trace):
    job_id, _, _ = audit_dispute(world, cheat_trace, honest_trace)
    outsider = DisputePlayer(world.signed(world.outsider).job_market, job_id, honest_trace)
    with pytest.raises(DisputePlayerError, match="neither the defender"):
        outsider.tick()
