"""The game reader's snapshot is of one block: a transaction that lands while a party reads
the dispute record and its events (the other side's referral here) never gives a state whose
record and events disagree; the reader reads again instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from validator_world import World

from verimesh.chain import Mode
from verimesh.node.dispute import DisputePlayer, DisputePlayerError, GameReader
from verimesh.verify.adversary import WrongOpContext

OUT_A, OUT_B = b"\xaa" * 32, b"\xbb" * 32
TURN_REFEREE = 2


class RacingJobMarket:
    """The JobMarket client, except that ``race`` runs right after a dispute record is read:
    as if that transaction landed between the record read and the event read."""

    def __init__(self, jm: Any, race: Callable[[], None], times: int = 1) -> None:
        self._jm, self._race, self._times = jm, race, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jm, name)

    def disputes(self, job_id: int) -> Any:
        record = self._jm.disputes(job_id)
        if self._times:
            self._times -= 1
            self._race()
        return record


@pytest.fixture
def finished_game(world: World, tiny_job, honest_trace) -> tuple[int, DisputePlayer, DisputePlayer]:
    """An audit dispute bisected to its leaf; the defender is due to refer it and has not yet."""
    jm = world.net.job_market
    cheat = tiny_job.trace(WrongOpContext(40))
    job_id = world.post(Mode.AUDIT, 10_000)
    (provider,) = jm.assigned(job_id)
    world.commit_reveal(job_id, {provider: (OUT_A, cheat.root)})
    validator = jm.audits(job_id).validator
    jm.audit_report(job_id, OUT_B, honest_trace.root, signer=world.signer_of(validator))
    now = world.backend.timestamp
    d = DisputePlayer(world.signed(world.signer_of(provider)).job_market, job_id, cheat, clock=now)
    c = DisputePlayer(world.signed(world.signer_of(validator)).job_market, job_id, honest_trace, clock=now)
    reader = GameReader(jm, job_id)
    for _ in range(100):
        for player in (d, c):
            player.tick()
            if reader.read().over:
                assert jm.disputes(job_id).turn == 0  # the defender's turn: to refer
                return job_id, d, c
    raise AssertionError("the game did not end")


def test_a_referral_landing_mid_read_is_in_the_snapshot_record_and_events_alike(world, finished_game) -> None:
    job_id, defender, _ = finished_game
    jm = world.net.job_market
    refer = lambda: defender.jm.refer_dispute(job_id)  # noqa: E731
    state = GameReader(RacingJobMarket(jm, refer), job_id).read()
    assert state.referred_by == defender.address  # the event ...
    assert state.chain.turn == TURN_REFEREE  # ... and the record of the same block


def test_a_reader_that_never_sees_a_quiet_block_says_so(world, finished_game) -> None:
    job_id, _, _ = finished_game
    jm = world.net.job_market
    mine_a_block = lambda: world.backend.advance_time(0)  # noqa: E731
    with pytest.raises(DisputePlayerError, match="new blocks kept coming"):
        GameReader(RacingJobMarket(jm, mine_a_block, times=1000), job_id).read()
