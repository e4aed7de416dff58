"""Arena.vy on titanoboa: registration, pruning with immunity, commit-reveal of scores,
bonded and challengeable settlement computed by `settle_epoch`, and pool conservation."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import boa
import pytest

from verimesh.market.consensus import settle_epoch

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "verimesh" / "chain" / "contracts"
E = 10**18
MAX = 2**256 - 1
ZERO = "0x0000000000000000000000000000000000000000"
SLOTS = 3
MIN_STAKE = 100 * E
IMMUNITY = 2
EPOCH = 1000
COMMIT = 600
BOND = 10 * E
WINDOW = 300
FAMILY = b"\x01" * 32
SPEC = b"\x02" * 32


@functools.cache
def _partial(name: str):
    return boa.load_partial(str(CONTRACTS / name))


class Arena:
    """Token + Arena, funded actors, and the conservation check."""

    def __init__(self) -> None:
        self.owner = boa.env.generate_address()
        self.arbiter = boa.env.generate_address()
        with boa.env.prank(self.owner):
            self.token = _partial("Token.vy").deploy("Verimesh Test Token", "VMT", 18, self.owner)
            self.arena = _partial("Arena.vy").deploy(
                self.token.address, self.arbiter, FAMILY, SPEC, SLOTS, MIN_STAKE, MIN_STAKE,
                IMMUNITY, EPOCH, COMMIT, BOND, WINDOW,
            )
        self.accounts: list[str] = []

    def actor(self, amount: int = 1_000 * E) -> str:
        who = boa.env.generate_address()
        with boa.env.prank(self.owner):
            self.token.mint(who, amount)
        with boa.env.prank(who):
            self.token.approve(self.arena.address, MAX)
        self.accounts.append(who)
        return who

    def provider(self, stake: int = MIN_STAKE) -> str:
        who = self.actor()
        with boa.env.prank(who):
            self.arena.register_provider(stake)
        return who

    def validator(self, stake: int = MIN_STAKE) -> str:
        who = self.actor()
        with boa.env.prank(who):
            self.arena.register_validator(stake)
        return who

    def to_epoch(self, epoch: int, reveal: bool = False) -> None:
        """Travel to the start of `epoch` (or of its reveal phase)."""
        target = self.arena.genesis() + epoch * EPOCH + (COMMIT if reveal else 0)
        boa.env.time_travel(seconds=target - boa.env.evm.patch.timestamp)

    def assert_conserved(self, epochs: int = 8) -> None:
        a = self.arena
        held = sum(a.provider_stake(x) + a.validator_stake(x) + a.claimable(x) for x in self.accounts)
        held += sum(a.pool(e) for e in range(epochs))
        for e in range(epochs):
            status, poster, _, _, _ = a.settlements(e)
            held += BOND * ((poster != ZERO and status in (1, 2)) + (status == 2))
        assert self.token.balanceOf(a.address) == held


@pytest.fixture
def w() -> Arena:
    return Arena()


def commit(w: Arena, who: str, epoch: int, scores: list[int], salt: bytes = b"\x07" * 32) -> None:
    c = w.arena.score_commitment(epoch, who, scores, salt)
    with boa.env.prank(who):
        w.arena.commit_scores(epoch, c)


def reveal(w: Arena, who: str, epoch: int, scores: list[int], salt: bytes = b"\x07" * 32) -> None:
    with boa.env.prank(who):
        w.arena.reveal_scores(epoch, scores, salt)


def test_deploy_checks():
    owner = boa.env.generate_address()
    token = _partial("Token.vy").deploy("T", "T", 18, owner)
    args = [token.address, owner, FAMILY, SPEC, SLOTS, MIN_STAKE, MIN_STAKE, IMMUNITY, EPOCH, COMMIT, BOND, WINDOW]
    for index, value, msg in [
        (0, ZERO, "token is the zero address"), (1, ZERO, "arbiter is the zero address"),
        (4, 1, "max providers out of 2..16"), (4, 17, "max providers out of 2..16"),
        (9, EPOCH, "commit phase must be inside the epoch"), (5, 0, "zero minimum stake"),
    ]:
        bad = list(args)
        bad[index] = value
        with boa.reverts(f"arena: {msg}"):
            _partial("Arena.vy").deploy(*bad)


def test_registration_rules(w):
    p = w.provider()
    v = w.validator()
    with boa.env.prank(p), boa.reverts("arena: already a provider"):
        w.arena.register_provider(MIN_STAKE)
    with boa.env.prank(v), boa.reverts("arena: validators cannot be providers"):
        w.arena.register_provider(MIN_STAKE)
    with boa.env.prank(v), boa.reverts("arena: already a validator"):
        w.arena.register_validator(MIN_STAKE)
    with boa.env.prank(p), boa.reverts("arena: providers cannot be validators"):
        w.arena.register_validator(MIN_STAKE)
    low = w.actor()
    before = w.token.balanceOf(low)
    with boa.env.prank(low), boa.reverts("arena: stake below the minimum provider stake"):
        w.arena.register_provider(MIN_STAKE - 1)
    with boa.env.prank(low), boa.reverts("arena: stake below the minimum validator stake"):
        w.arena.register_validator(MIN_STAKE - 1)
    assert w.token.balanceOf(low) == before  # nothing moved
    assert w.arena.provider_count() == 1 and w.arena.slot_provider(0) == p
    w.assert_conserved()


def test_validator_set_is_bounded_and_leaving_frees_a_place(w):
    validators = [w.validator() for _ in range(16)]
    extra = w.actor()
    with boa.env.prank(extra), boa.reverts("arena: validator set is full"):
        w.arena.register_validator(MIN_STAKE)
    with boa.env.prank(validators[3]):
        w.arena.leave_validator()
    with boa.env.prank(validators[3]), boa.reverts("arena: not a validator"):
        w.arena.leave_validator()
    assert w.arena.claimable(validators[3]) == MIN_STAKE and w.arena.validator_count() == 15
    assert w.arena.validator_at(3) == validators[15]  # swap-and-pop
    with boa.env.prank(extra):
        w.arena.register_validator(MIN_STAKE)
    assert {w.arena.validator_at(i) for i in range(16)} == (set(validators) - {validators[3]}) | {extra}
    w.assert_conserved()


def test_full_arena_prunes_lowest_ranked_non_immune_provider(w):
    providers = [w.provider() for _ in range(SLOTS)]
    newcomer = w.actor()
    with boa.env.prank(newcomer), boa.reverts("arena: full and every provider is immune; retry later"):
        w.arena.register_provider(MIN_STAKE)
    # settle epoch 0 with ranks 5, 1, 9: slot 1 is the lowest
    v = w.validator()
    w.to_epoch(1)
    payouts = ([*providers], [0, 0, 0], [5, 1, 9], [v], [0], 0)
    with boa.env.prank(w.actor()):
        w.arena.post_settlement(0, *payouts)
    boa.env.time_travel(seconds=WINDOW)
    w.arena.finalize(0, *payouts)
    w.to_epoch(IMMUNITY)
    with boa.env.prank(newcomer):
        w.arena.register_provider(MIN_STAKE)
    assert w.arena.slot_provider(1) == newcomer
    assert w.arena.provider_stake(providers[1]) == 0
    assert w.arena.claimable(providers[1]) == MIN_STAKE
    # the newcomer is immune: the next one prunes the lowest of the others (slot 0, rank 5)
    third = w.provider()
    assert w.arena.slot_provider(0) == third
    w.assert_conserved()
    with boa.env.prank(providers[1]):
        w.arena.claim()
    assert w.token.balanceOf(providers[1]) == 1_000 * E
    w.assert_conserved()


def test_leave_frees_the_slot(w):
    p = w.provider()
    with boa.env.prank(p):
        w.arena.leave()
    assert w.arena.slot_provider(0) == ZERO and w.arena.claimable(p) == MIN_STAKE
    with boa.env.prank(p), boa.reverts("arena: not a provider"):
        w.arena.leave()
    w.assert_conserved()


def test_fund_rules(w):
    funder = w.actor()
    with boa.env.prank(funder), boa.reverts("arena: zero amount"):
        w.arena.fund(0, 0)
    w.to_epoch(2)
    with boa.env.prank(funder), boa.reverts("arena: epoch already over"):
        w.arena.fund(1, E)
    with boa.env.prank(funder):
        w.arena.fund(2, E)
        w.arena.fund(5, 2 * E)
    assert w.arena.pool(2) == E and w.arena.pool(5) == 2 * E
    w.assert_conserved()


def test_commit_reveal_rules(w):
    w.provider()
    v = w.validator()
    outsider = w.actor()
    scores = [7, 0, 0]
    with boa.env.prank(outsider), boa.reverts("arena: not a validator"):
        w.arena.commit_scores(0, b"\x01" * 32)
    with boa.env.prank(v), boa.reverts("arena: not the current epoch"):
        w.arena.commit_scores(1, b"\x01" * 32)
    with boa.env.prank(v), boa.reverts("arena: empty commitment"):
        w.arena.commit_scores(0, b"\x00" * 32)
    with boa.env.prank(v), boa.reverts("arena: reveal phase has not started"):
        w.arena.reveal_scores(0, scores, b"\x07" * 32)
    commit(w, v, 0, scores)
    with boa.env.prank(v), boa.reverts("arena: already committed"):
        w.arena.commit_scores(0, b"\x01" * 32)
    w.to_epoch(0, reveal=True)
    late = w.validator()
    with boa.env.prank(late), boa.reverts("arena: commit phase is over"):
        w.arena.commit_scores(0, b"\x01" * 32)
    with boa.env.prank(late), boa.reverts("arena: nothing committed"):
        w.arena.reveal_scores(0, scores, b"\x07" * 32)
    with boa.env.prank(v), boa.reverts("arena: score vector length must equal max_providers"):
        w.arena.reveal_scores(0, [7, 0], b"\x07" * 32)
    with boa.env.prank(v), boa.reverts("arena: reveal does not match the commitment"):
        w.arena.reveal_scores(0, [8, 0, 0], b"\x07" * 32)
    with boa.env.prank(v), boa.reverts("arena: reveal does not match the commitment"):
        w.arena.reveal_scores(0, scores, b"\x08" * 32)
    reveal(w, v, 0, scores)
    assert w.arena.revealed(0, v)
    with boa.env.prank(v), boa.reverts("arena: already revealed"):
        w.arena.reveal_scores(0, scores, b"\x07" * 32)
    # someone else's commitment cannot be replayed: it binds the validator's address
    other = w.validator()
    w.to_epoch(1)
    with boa.env.prank(other):
        w.arena.commit_scores(1, w.arena.score_commitment(1, v, scores, b"\x07" * 32))
    w.to_epoch(1, reveal=True)
    with boa.env.prank(other), boa.reverts("arena: reveal does not match the commitment"):
        w.arena.reveal_scores(1, scores, b"\x07" * 32)
    # too late: the next epoch has started
    commit_v = w.arena.score_commitment(2, v, scores, b"\x07" * 32)
    w.to_epoch(2)
    with boa.env.prank(v):
        w.arena.commit_scores(2, commit_v)
    w.to_epoch(3)
    with boa.env.prank(v), boa.reverts("arena: not the current epoch"):
        w.arena.reveal_scores(2, scores, b"\x07" * 32)


def test_reveal_rejects_scores_for_empty_slots_and_all_zero(w):
    w.provider()
    v = w.validator()
    commit(w, v, 0, [0, 5, 0], b"\x01" * 32)
    w.to_epoch(0, reveal=True)
    with boa.env.prank(v), boa.reverts("arena: score for an empty slot"):
        w.arena.reveal_scores(0, [0, 5, 0], b"\x01" * 32)
    w.to_epoch(1)
    commit(w, v, 1, [0, 0, 0], b"\x02" * 32)
    w.to_epoch(1, reveal=True)
    with boa.env.prank(v), boa.reverts("arena: all scores are zero"):
        w.arena.reveal_scores(1, [0, 0, 0], b"\x02" * 32)


def test_epoch_settled_by_the_python_consensus_pays_exactly_the_pool(w):
    providers = [w.provider() for _ in range(SLOTS)]
    stakes = [300 * E, 200 * E, 100 * E]
    validators = [w.validator(s) for s in stakes]
    score_rows = [[60, 30, 10], [55, 35, 10], [0, 10, 90]]  # the last one is a small cartel
    funder = w.actor(10_000 * E)
    with boa.env.prank(funder):
        w.arena.fund(0, 1_000 * E + 7)
    for v, row in zip(validators, score_rows, strict=True):
        commit(w, v, 0, row)
    w.to_epoch(0, reveal=True)
    for v, row in zip(validators, score_rows, strict=True):
        reveal(w, v, 0, row)
    w.assert_conserved()
    out = settle_epoch(stakes, score_rows, None, w.arena.pool(0))
    payouts = (providers, list(out.provider_rewards), list(out.incentive), validators,
               list(out.validator_rewards), out.carry)
    poster = w.actor()
    with boa.env.prank(poster), boa.reverts("arena: epoch not over yet"):
        w.arena.post_settlement(0, *payouts)
    w.to_epoch(1)
    bad = (providers, [out.provider_rewards[0] + 1, *out.provider_rewards[1:]], *payouts[2:])
    with boa.env.prank(poster), boa.reverts("arena: payouts plus carry must equal the epoch's pool"):
        w.arena.post_settlement(0, *bad)
    with boa.env.prank(poster), boa.reverts("arena: provider lists must be max_providers long"):
        w.arena.post_settlement(0, providers[:2], *[x[:2] for x in payouts[1:3]], *payouts[3:])
    with boa.env.prank(poster), boa.reverts("arena: validators and rewards differ in length"):
        w.arena.post_settlement(0, *payouts[:4], payouts[4][:2], payouts[5])
    with boa.env.prank(poster), boa.reverts("arena: reward for a non-validator"):
        w.arena.post_settlement(0, *payouts[:3], [poster, *validators[1:]], *payouts[4:])
    with boa.env.prank(poster), boa.reverts("arena: reward for an empty slot"):
        w.arena.post_settlement(0, [providers[0], providers[1], ZERO], *payouts[1:])
    with boa.env.prank(poster):
        w.arena.post_settlement(0, *payouts)
    with boa.env.prank(poster), boa.reverts("arena: epoch already has a settlement"):
        w.arena.post_settlement(0, *payouts)
    w.assert_conserved()
    with boa.reverts("arena: challenge window still open"):
        w.arena.finalize(0, *payouts)
    boa.env.time_travel(seconds=WINDOW)
    with boa.reverts("arena: lists differ from the posted settlement"):
        w.arena.finalize(0, *payouts[:5], payouts[5] + 1)
    w.arena.finalize(0, *payouts)
    with boa.reverts("arena: no settlement to finalize"):
        w.arena.finalize(0, *payouts)
    assert w.arena.pool(1) == out.carry
    for p, r in zip(providers, out.provider_rewards, strict=True):
        assert w.arena.claimable(p) == r
    assert [w.arena.claimable(v) for v in validators] == list(out.validator_rewards)
    assert w.arena.claimable(poster) == BOND
    # two-sided clipping: the cartel's 0 does not drag provider 0 below the honest band
    assert out.provider_rewards[0] > out.provider_rewards[2]
    w.assert_conserved()
    for who in [*providers, *validators, poster]:
        with boa.env.prank(who):
            w.arena.claim()
    with boa.env.prank(poster), boa.reverts("arena: nothing to claim"):
        w.arena.claim()
    w.assert_conserved()


def _posted(w: Arena) -> tuple[tuple, str, str]:
    providers = [w.provider() for _ in range(SLOTS)]
    v = w.validator()
    with boa.env.prank(w.actor()):
        w.arena.fund(0, 100)
    w.to_epoch(1)
    payouts = (providers, [50, 0, 0], [1, 0, 0], [v], [40], 10)
    poster, challenger = w.actor(), w.actor()
    with boa.env.prank(poster):
        w.arena.post_settlement(0, *payouts)
    return payouts, poster, challenger


def test_challenge_upheld_erases_the_settlement_and_pays_the_challenger(w):
    payouts, poster, challenger = _posted(w)
    with boa.env.prank(poster), boa.reverts("arena: poster cannot challenge itself"):
        w.arena.challenge(0)
    with boa.env.prank(challenger):
        w.arena.challenge(0)
    with boa.env.prank(challenger), boa.reverts("arena: no posted settlement to challenge"):
        w.arena.challenge(0)
    w.assert_conserved()
    with boa.env.prank(challenger), boa.reverts("arena: caller is not the arbiter"):
        w.arena.resolve(0, False)
    with boa.env.prank(w.arbiter):
        w.arena.resolve(0, False)
    with boa.env.prank(w.arbiter), boa.reverts("arena: settlement is not challenged"):
        w.arena.resolve(0, False)
    assert w.arena.claimable(challenger) == 2 * BOND and w.arena.claimable(poster) == 0
    assert w.arena.settlements(0)[0] == 0 and w.arena.pool(0) == 100  # the pool is intact
    w.assert_conserved()
    with boa.env.prank(poster):  # a corrected settlement can be posted
        w.arena.post_settlement(0, payouts[0], [60, 0, 0], *payouts[2:4], [30], 10)
    w.assert_conserved()


def test_challenge_rejected_pays_the_poster_and_finalizes_at_once(w):
    payouts, poster, challenger = _posted(w)
    with boa.env.prank(challenger):
        w.arena.challenge(0)
    with boa.env.prank(w.arbiter):
        w.arena.resolve(0, True)
    assert w.arena.claimable(poster) == 2 * BOND
    w.arena.finalize(0, *payouts)
    assert w.arena.claimable(poster) == 2 * BOND  # the bond is not returned twice
    assert w.arena.pool(1) == 10
    w.assert_conserved()


def test_challenge_after_the_window_is_refused(w):
    _, _, challenger = _posted(w)
    boa.env.time_travel(seconds=WINDOW)
    with boa.env.prank(challenger), boa.reverts("arena: challenge window is over"):
        w.arena.challenge(0)


def test_random_epochs_conserve_the_pool(w):
    """Several epochs of random funding, scores and settlements: after every step the
    arena holds exactly what it owes."""
    rnd = random.Random(7)
    providers = [w.provider() for _ in range(SLOTS)]
    stakes = [rnd.randint(100, 400) * E for _ in range(4)]
    validators = [w.validator(s) for s in stakes]
    bonds = None
    funder = w.actor(10**6 * E)
    for epoch in range(4):
        with boa.env.prank(funder):
            w.arena.fund(epoch, rnd.randint(1, 10**21))
        rows = [[rnd.randint(0, 100) for _ in range(SLOTS)] for _ in validators]
        for row in rows:
            row[0] += 1
        for v, row in zip(validators, rows, strict=True):
            commit(w, v, epoch, row)
        w.to_epoch(epoch, reveal=True)
        for v, row in zip(validators, rows, strict=True):
            reveal(w, v, epoch, row)
        w.to_epoch(epoch + 1)
        out = settle_epoch(stakes, rows, bonds, w.arena.pool(epoch))
        bonds = [list(r) for r in out.bonds]
        payouts = (providers, list(out.provider_rewards), list(out.incentive), validators,
                   list(out.validator_rewards), out.carry)
        with boa.env.prank(funder):
            w.arena.post_settlement(epoch, *payouts)
        w.assert_conserved()
        boa.env.time_travel(seconds=WINDOW)
        w.arena.finalize(epoch, *payouts)
        w.assert_conserved()
        for who in rnd.sample([*providers, *validators], 3):
            if w.arena.claimable(who):
                with boa.env.prank(who):
                    w.arena.claim()
        w.assert_conserved()


def test_standing_is_a_moving_average_seeded_by_the_first_settlement(w):
    providers = [w.provider() for _ in range(SLOTS)]
    v = w.validator()
    for epoch, ranks in enumerate(([100, 10, 50], [0, 90, 50])):
        w.to_epoch(epoch + 1)
        payouts = (providers, [0, 0, 0], ranks, [v], [0], 0)
        with boa.env.prank(v):
            w.arena.post_settlement(epoch, *payouts)
        boa.env.time_travel(seconds=WINDOW)
        w.arena.finalize(epoch, *payouts)
    assert [w.arena.slot_rank(k) for k in range(SLOTS)] == [70, 34, 50]  # (3 new + 7 old) // 10
    # a newcomer's slot starts over: its first settlement sets the standing directly
    with boa.env.prank(providers[1]):
        w.arena.leave()
    newcomer = w.provider()
    assert w.arena.slot_provider(1) == newcomer and w.arena.slot_rank(1) == 0
    w.to_epoch(3)
    payouts = ([providers[0], newcomer, providers[2]], [0, 0, 0], [70, 40, 50], [v], [0], 0)
    with boa.env.prank(v):
        w.arena.post_settlement(2, *payouts)
    boa.env.time_travel(seconds=WINDOW)
    w.arena.finalize(2, *payouts)
    assert w.arena.slot_rank(1) == 40 and w.arena.slot_rank(0) == 70
