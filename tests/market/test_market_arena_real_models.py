"""A real-model embeddings arena on the in-process EVM: all-MiniLM-L6-v2 against the same
encoder cut to its first layer, and a provider that memorized the public pairs. Answers are
committed on chain before the seed, validators score from the exact runtime's int outputs,
consensus settles, the contract pays. MiniLM must win; the memorizer must be caught."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from arena_world import VMT, arena_world

from verimesh.market.answers import AnswerSheet, compute_answers
from verimesh.market.arena_run import ArenaProvider, ArenaRun, ArenaValidator, ChainClock
from verimesh.market.challenges import Pool, task_spec

SPEC = task_spec("embeddings")
pytestmark = pytest.mark.slow  # MiniLM import + 2 epochs of real embeddings and audits: about a minute


@pytest.fixture(scope="module")
def model_home(tmp_path_factory):
    """A private model store (MiniLM imported once for the module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERIMESH_HOME", str(tmp_path_factory.mktemp("arena-home")))
        yield


@dataclass
class Memorizer(ArenaProvider):
    """Knows the public pairs: answers each query with its paraphrase's embedding (a perfect
    retrieval score) while claiming the cheap one-layer model made the answers."""

    def prepare(self, epoch: int, pool: Pool) -> AnswerSheet:
        answers = compute_answers(self.model, pool.spec, pool.inputs)
        n = pool.spec.pool_size
        answers[:n] = answers[n:]
        self.sheets[epoch] = AnswerSheet(answers)
        return self.sheets[epoch]


def test_minilm_beats_its_one_layer_cut_and_the_memorizer_is_caught(model_home, pytestconfig):
    backend, token, arena, owner, actors = arena_world(pytestconfig.cache.mkdir("verimesh-artifacts"))
    weak = ArenaProvider(actors[0], "minilm-l1", price=1)  # slot 0: ties would favour it
    memorizer = Memorizer(actors[1], "minilm-l1", price=1)
    strong = ArenaProvider(actors[2], "minilm", price=3)
    providers = [weak, memorizer, strong]
    validators = [ArenaValidator(actors[4]), ArenaValidator(actors[5])]  # audit every opened answer
    for p in providers:
        arena.register_provider(100 * VMT, signer=p.signer)
    for v, stake in zip(validators, (300, 200), strict=True):
        arena.register_validator(stake * VMT, signer=v.signer)
    run = ArenaRun(arena, SPEC, providers, validators, owner, 90 * VMT, ChainClock(backend, True))
    before = token.balance_of(arena.address)
    report = run.run(2)

    for epoch in report.epochs:
        assert epoch.ranks[strong.address] == 1, epoch
        for rows in epoch.scores.values():
            by = {s.provider: s for s in rows}
            assert by[strong.address].score > by[weak.address].score > 0
            assert by[memorizer.address].score == 0 and "audit" in (by[memorizer.address].failed or "")
            assert by[strong.address].audited == 2 * SPEC.pool_size  # every opened answer
        # every validator computed the very same vector: scoring is exact
        vectors = [[s.score for s in rows] for rows in epoch.scores.values()]
        assert all(v == vectors[0] for v in vectors)
    totals = report.total_rewards
    assert totals[strong.address] > totals[weak.address] > totals[memorizer.address]
    assert report.epochs_to_rank_first["minilm"] == 1
    # both pools were paid through the contract: what it holds beyond the stakes is claimable
    # (rewards and the poster's returned bonds) plus the carries, to the token unit
    last = report.epochs[-1].epoch
    claimable = sum(arena.claimable(a.address) for a in [owner, *providers, *validators])
    carries = sum(arena.pool(e) for e in range(last + 1, last + 4))
    assert token.balance_of(arena.address) == before + claimable + carries
    assert claimable + carries == 2 * 90 * VMT + 2 * arena.settle_bond()
