"""Spot audits of embedding batches on the real MiniLM: re-embedding a sample of the rows
gives the provider's rows bit for bit, so an honest batch always passes; a cheat that
changes the model changes every row and is always caught; a lie in one row is caught
exactly when that row is drawn; one audit in four is drawn for a full re-run (the sample
cannot see the trace); small batches and claims that do not match their roots go to the
full re-run.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from verimesh.crypto.merkle import blob_root
from verimesh.node.execute import Execution, InProcessExecutor
from verimesh.node.jobs import make_spec
from verimesh.runtime import canonical_bytes
from verimesh.runtime.tensor import from_canonical_bytes
from verimesh.verify.adversary import Behaviour
from verimesh.verify.spot import (
    EMBED_FULL_SHARE,
    MIN_SPOT_ROWS,
    SpotUnavailable,
    rows_to_check,
    spot_audit,
    spot_check_embeddings,
)

TEXTS = [
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.", "The cat sat on the mat.",
    "Stocks fell sharply on Monday.", "Verification needs no trust.", "Idle laptops sell compute.",
    "The referee recomputes one op.", "A cheat loses its stake.", "Rain is expected tomorrow.",
]  # fmt: skip
SEEDS = range(8)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory):
    from verimesh.models.api import import_model, load_model
    from verimesh.models.store import ModelStore

    home = tmp_path_factory.mktemp("spot-embed") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIMESH_HOME", str(home))  # the executor loads the job's model from here
    store = ModelStore(home / "models")
    root = "0x" + import_model("minilm", store).hex()
    yield root, load_model(root, store=store, auto_import=False).impl
    mp.undo()


def run(minilm, behaviour: Behaviour = Behaviour.HONEST, texts: list[str] = TEXTS) -> Execution:
    spec, data = make_spec(minilm[0], "embed", texts)
    return InProcessExecutor(behaviour).run(spec, data)


@pytest.fixture(scope="module")
def honest(minilm) -> Execution:
    return run(minilm)


def check(minilm, claim: Execution, seed: int, texts: list[str] = TEXTS, **kw):
    return spot_check_embeddings(minilm[1], texts[0], {"texts": texts}, claim.output_bytes, claim.output_root,
                                 claim.trace_root, list(claim.step_roots), random.Random(seed), **kw)  # fmt: skip


def test_rows_checked_grow_with_the_batch() -> None:
    assert [rows_to_check(n) for n in (1, 2, 8, 16, 17, 64, 256)] == [1, 2, 2, 2, 3, 8, 32]


def test_an_honest_batch_passes_every_spot_audit(minilm, honest) -> None:
    for seed in SEEDS:
        result = check(minilm, honest, seed, full_share=0)
        assert result.ok, result.mismatch
        assert result.unit == "row" and len(result.steps) == rows_to_check(len(TEXTS))
        assert result.label.startswith("rows ")


def test_one_audit_in_four_is_drawn_for_a_full_rerun(minilm, honest) -> None:
    full = 0
    for seed in range(80):
        try:
            assert check(minilm, honest, seed).ok
        except SpotUnavailable as exc:
            assert "full re-run" in str(exc)
            full += 1
    assert 8 <= full <= 34  # 25 % of 80 is 20; the bounds leave room for chance (p > 0.999)
    assert EMBED_FULL_SHARE == 0.25


@pytest.mark.parametrize(
    "behaviour",
    [Behaviour.WRONG_OUTPUT, Behaviour.SKIP_LAYERS, Behaviour.LOWER_PRECISION, Behaviour.RANDOM_OUTPUT],
    ids=lambda b: b.value,
)
def test_a_cheat_that_changes_the_model_is_caught_by_every_spot_audit(minilm, behaviour) -> None:
    cheat = run(minilm, behaviour)
    for seed in SEEDS:
        assert not check(minilm, cheat, seed, full_share=0).ok, f"seed {seed}"


def test_a_lie_in_one_row_is_caught_exactly_when_that_row_is_drawn(minilm, honest) -> None:
    rows = from_canonical_bytes(honest.output_bytes).copy()
    rows[5, 0] ^= 1
    data = canonical_bytes(rows)
    lie = replace(honest, output_bytes=data, output_root=blob_root(data))
    caught = 0
    for seed in range(24):
        result = check(minilm, lie, seed, full_share=0)
        assert result.ok is (5 not in result.steps)
        if 5 in result.steps:
            assert result.mismatch == "row 5's embedding differs from the provider's"
            caught += 1
    assert caught > 0


def test_small_batches_and_claims_off_their_roots_go_to_the_full_rerun(minilm, honest) -> None:
    few = TEXTS[: MIN_SPOT_ROWS - 1]
    small = run(minilm, texts=few)
    with pytest.raises(SpotUnavailable, match="below 8"):
        check(minilm, small, 0, texts=few)
    with pytest.raises(SpotUnavailable, match="output root"):
        check(minilm, replace(honest, output_root=bytes(32)), 0)
    with pytest.raises(SpotUnavailable, match="trace root"):
        check(minilm, replace(honest, trace_root=bytes(32)), 0)
    with pytest.raises(ValueError, match="full-audit share"):
        check(minilm, honest, 0, full_share=2)


def test_a_claim_of_the_wrong_shape_is_a_mismatch(minilm, honest) -> None:
    rows = from_canonical_bytes(honest.output_bytes)[:-1]  # one row short
    data = canonical_bytes(np.ascontiguousarray(rows))
    result = check(minilm, replace(honest, output_bytes=data, output_root=blob_root(data)), 0, full_share=0)
    assert not result.ok and "shape" in result.mismatch


def test_the_dispatcher_sends_embeddings_and_generations_to_their_checks(minilm, honest) -> None:
    result = spot_audit(minilm[1], TEXTS[0], {"texts": TEXTS}, honest.output_bytes, honest.output_root,
                        honest.trace_root, list(honest.step_roots), random.Random(0))  # fmt: skip
    assert result.unit == "row" and result.ok
    with pytest.raises(SpotUnavailable, match="below 8"):  # one text: no params["texts"]
        spot_audit(minilm[1], TEXTS[0], {}, honest.output_bytes, honest.output_root, honest.trace_root,
                   list(honest.step_roots), random.Random(1))  # fmt: skip
