"""Seed-revealed challenges: the pool is public, answers are committed on chain before the
seed exists, the same seed draws the same challenges, scoring is exact. No models here."""

from __future__ import annotations

import numpy as np
import pytest
from arena_world import COMMIT, VMT, arena_world

from verimesh.chain.errors import ContractRevert
from verimesh.market.answers import AnswerSheet, verify_openings
from verimesh.market.challenges import (
    ChallengeError,
    answer_is_right,
    draw_challenges,
    epoch_pool,
    opened_items,
    questions,
    retrieval_pairs,
    retrieval_rank,
    score_answers,
    task_spec,
)

ARENA = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_held_out_sets_ship_with_the_package():
    assert len(retrieval_pairs()) == 48 and len(questions()) == 32
    assert all(p.query != p.target for p in retrieval_pairs())


def test_pool_is_public_and_changes_every_epoch():
    spec = task_spec("embeddings")
    first = epoch_pool(spec, ARENA, 3)
    assert first == epoch_pool(spec, ARENA.lower(), 3)  # a function of (arena, epoch) only
    assert first.items != epoch_pool(spec, ARENA, 4).items
    assert len(set(first.items)) == spec.pool_size and first.answer_count == 2 * spec.pool_size


def test_same_seed_same_challenges_other_seed_other_challenges():
    pool = epoch_pool(task_spec("embeddings"), ARENA, 0)
    seed = bytes(range(32))
    assert draw_challenges(pool, seed) == draw_challenges(pool, bytes(seed))
    other = draw_challenges(pool, bytes([1]) + seed[1:])
    assert [c.item for c in other] != [c.item for c in draw_challenges(pool, seed)]
    with pytest.raises(ChallengeError, match="call reveal_seed first"):
        draw_challenges(pool, bytes(32))


def test_bad_spec_is_refused_with_the_limits():
    with pytest.raises(ChallengeError, match="held-out items"):
        task_spec("generation", pool_size=99)
    with pytest.raises(ChallengeError, match="unknown arena task"):
        task_spec("chess")


def test_answers_are_committed_before_the_seed_exists(pytestconfig):
    backend, _, arena, _, actors = arena_world(pytestconfig.cache.mkdir("verimesh-artifacts"))
    provider, late, outsider = actors[0], actors[1], actors[2]
    arena.register_provider(100 * VMT, signer=provider)
    arena.register_provider(100 * VMT, signer=late)
    with pytest.raises(ContractRevert, match="arena: not a provider"):
        arena.commit_answers(0, b"\x07" * 32, b"\x01" * 32, signer=outsider)
    with pytest.raises(ContractRevert, match="arena: answer window still open"):
        arena.reveal_seed(0, signer=outsider)
    assert arena.challenge_seed(0) is None
    arena.commit_answers(0, b"\x07" * 32, b"\x01" * 32, signer=provider)
    with pytest.raises(ContractRevert, match="arena: answers already committed"):
        arena.commit_answers(0, b"\x07" * 32, b"\x02" * 32, signer=provider)
    backend.advance_time(COMMIT // 2)
    with pytest.raises(ContractRevert, match="arena: answer window is over"):
        arena.commit_answers(0, b"\x07" * 32, b"\x03" * 32, signer=late)
    seed = arena.reveal_seed(0, signer=outsider)
    assert arena.challenge_seed(0) == seed and seed != bytes(32)
    with pytest.raises(ContractRevert, match="arena: seed already revealed"):
        arena.reveal_seed(0, signer=provider)
    committed = arena.answers(0)
    assert list(committed) == [provider.address] and committed[provider.address].answers_root == b"\x01" * 32
    # the event log orders it: answers (block n) strictly before the seed's block
    events = [e.name for e in arena.get_all_events() if e.name in ("AnswersCommitted", "SeedRevealed")]
    assert events == ["AnswersCommitted", "SeedRevealed"]


def test_openings_must_match_the_committed_root():
    sheet = AnswerSheet([b"a", b"b", b"c", b"d", b"e"])
    openings = sheet.open([1, 3])
    assert verify_openings(sheet.root, openings, 5) == {1: b"b", 3: b"d"}
    forged = [openings[0].model_copy(update={"data": b"x"})]
    with pytest.raises(ChallengeError, match="does not match the committed answers root"):
        verify_openings(sheet.root, forged, 5)
    with pytest.raises(ChallengeError, match="does not match"):
        verify_openings(sheet.root, openings, 6)  # a sheet of another size


def test_retrieval_rank_is_exact_and_ties_go_to_the_lower_index():
    query = np.array([3, 4], dtype=np.int32)
    targets = np.array([[4, 3], [3, 4], [4, 3]], dtype=np.int32)  # 24, 25, 24
    assert retrieval_rank(query, targets, 1) == 1
    assert retrieval_rank(query, targets, 0) == 2
    assert retrieval_rank(query, targets, 2) == 3  # tied with 0, which comes first


def test_generation_answers_score_whole_words_only():
    assert answer_is_right("The capital of France is Paris.", ("Paris",))
    assert answer_is_right("It has 8 legs", ("eight", "8"))
    assert not answer_is_right("Parisian food", ("Paris",))
    pool = epoch_pool(task_spec("generation"), ARENA, 0)
    challenges = draw_challenges(pool, b"\x05" * 32)
    right = {c.item: questions()[pool.items[c.item]].answers[0] for c in challenges}
    assert score_answers(right, pool, challenges) == 1000 * len(challenges)
    assert score_answers({i: "no idea" for i in right}, pool, challenges) == 0
    assert opened_items(pool, challenges) == sorted(right)
