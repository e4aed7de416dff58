"""The generation arena with real decoders on the in-process EVM: SmolLM2-135M-Instruct
against the shipped tiny Shakespeare decoder, on held-out short-answer questions. One epoch,
two questions: the exact runtime runs SmolLM2 at about a token per second here."""

from __future__ import annotations

import pytest
from arena_world import VMT, arena_world

from verimesh.market.arena_run import ArenaProvider, ArenaRun, ArenaValidator, ChainClock
from verimesh.market.challenges import POINTS, task_spec

pytestmark = pytest.mark.slow


def test_smollm2_outscores_the_tiny_decoder(tmp_path, monkeypatch, pytestconfig):
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    backend, _, arena, owner, actors = arena_world(pytestconfig.cache.mkdir("verimesh-artifacts"))
    tiny = ArenaProvider(actors[0], "tiny-shakespeare", price=VMT // 10)  # slot 0: ties favour it
    smol = ArenaProvider(actors[1], "smollm2", price=2 * VMT)
    validator = ArenaValidator(actors[4], audits=0)  # audits are tested with the embeddings arena
    for p in (tiny, smol):
        arena.register_provider(100 * VMT, signer=p.signer)
    arena.register_validator(100 * VMT, signer=validator.signer)
    spec = task_spec("generation", pool_size=2, challenges=2)
    report = ArenaRun(arena, spec, [tiny, smol], [validator], owner, 50 * VMT, ChainClock(backend, True)).run(1)

    (epoch,) = report.epochs
    scores = {s.provider: s.score for s in epoch.scores[validator.address]}
    assert scores[smol.address] >= POINTS + 1 > scores[tiny.address] >= 1, scores
    assert epoch.ranks[smol.address] == 1
    assert report.total_rewards[smol.address] > report.total_rewards[tiny.address]
    assert report.epochs_to_rank_first["smollm2"] == 1
