"""Spot audits of generation jobs on the real tiny decoder: a step re-run from the claimed
tokens is bit for bit the provider's step; an honest claim always passes; a cheat that
touches every step is always caught; a lie confined to one step is caught exactly when
that step is checked; the output, its length and the step roots must agree with the trace.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from verimesh.crypto.merkle import blob_root, merkle_root
from verimesh.node.execute import Execution, InProcessExecutor
from verimesh.node.jobs import make_spec
from verimesh.runtime import ExecutionContext, canonical_bytes
from verimesh.verify.adversary import Behaviour
from verimesh.verify.spot import (
    MIN_SPOT_STEPS,
    SpotUnavailable,
    choose_steps,
    claimed_tokens,
    spot_check,
    step_weights,
)

PROMPT = "ROMEO:"
PARAMS = {"max_tokens": 10}
SEEDS = range(12)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    from verimesh.models.api import import_model, load_model
    from verimesh.models.store import ModelStore

    home = tmp_path_factory.mktemp("spot") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIMESH_HOME", str(home))  # the executor loads the job's model from here
    store = ModelStore(home / "models")
    root = "0x" + import_model("tiny-shakespeare", store).hex()
    yield root, load_model(root, store=store, auto_import=False).impl
    mp.undo()


def run(tiny, behaviour: Behaviour = Behaviour.HONEST, params: dict = PARAMS) -> Execution:
    spec, data = make_spec(tiny[0], "generate", PROMPT, params)
    return InProcessExecutor(behaviour).run(spec, data)


@pytest.fixture(scope="module")
def honest(tiny) -> Execution:
    return run(tiny)


def check(tiny, claim: Execution, seed: int, params: dict = PARAMS, **kw):
    return spot_check(tiny[1], PROMPT, params, claim.output_bytes, claim.output_root, claim.trace_root, list(claim.step_roots),
                      random.Random(seed), **kw)  # fmt: skip


def answer(tokens: list[int]) -> dict:
    """Another output for a claim: its blob and the output root that commits to it."""
    data = canonical_bytes(np.asarray(tokens, dtype=np.int64))
    return {"output_bytes": data, "output_root": blob_root(data)}


@pytest.mark.parametrize("params", [PARAMS, {"max_tokens": 10, "seed": 3}], ids=["greedy", "sampled"])
def test_a_replayed_step_is_the_sequential_runs_step(tiny, params: dict) -> None:
    model = tiny[1]
    claim = run(tiny, params=params)
    tokens = claimed_tokens(claim.output_bytes)
    prompt = model.prompt_ids(PROMPT)
    replay = model.replay(prompt, tokens, list(range(len(tokens))), params.get("seed"))
    assert replay.chosen == tokens  # every step's choice, from one batched forward
    assert [replay.steps[s] for s in range(len(tokens))] == list(zip(claim.step_roots, tokens, strict=True))
    for s in (0, 1, len(tokens) - 1):  # and alone
        assert model.replay(prompt, tokens, [s], params.get("seed")).steps == {s: (claim.step_roots[s], tokens[s])}


def test_an_honest_claim_always_passes_and_the_last_step_is_always_checked(tiny, honest) -> None:
    for seed in SEEDS:
        result = check(tiny, honest, seed)
        assert result.ok, result.mismatch
        assert len(result.steps) == 2 and result.steps[-1] == PARAMS["max_tokens"] - 1


@pytest.mark.parametrize(
    "behaviour",
    sorted([Behaviour.MODEL_SWAP, Behaviour.SKIP_LAYERS, Behaviour.LOWER_PRECISION, Behaviour.WRONG_OUTPUT]),
    ids=lambda b: b.value,
)
def test_a_cheat_that_touches_every_step_is_always_caught(tiny, behaviour: Behaviour) -> None:
    cheat = run(tiny, behaviour)
    for seed in SEEDS:
        assert not check(tiny, cheat, seed).ok


def test_random_output_cannot_pass_a_spot_audit(tiny) -> None:
    cheat = run(tiny, Behaviour.RANDOM_OUTPUT)
    for seed in SEEDS:
        try:
            result = check(tiny, cheat, seed)
        except SpotUnavailable:  # its fabricated trace does not even have a step per token
            continue
        assert not result.ok


def test_a_lie_in_one_step_is_caught_exactly_when_that_step_is_checked(tiny, honest) -> None:
    cheat = run(tiny, Behaviour.ONE_BAD_OP)
    bad = [s for s, (a, b) in enumerate(zip(honest.step_roots, cheat.step_roots, strict=True)) if a != b]
    first = bad[0]
    caught = {seed: not check(tiny, cheat, seed).ok for seed in range(40)}
    for seed, was_caught in caught.items():
        steps = check(tiny, cheat, seed).steps  # the same seed draws the same steps
        assert was_caught == any(s in bad for s in steps), (seed, steps, bad)
    assert first < PARAMS["max_tokens"] - 1 and True in caught.values() and False in caught.values()


@pytest.mark.parametrize("position", [0, 4, PARAMS["max_tokens"] - 1])
def test_an_output_that_is_not_the_traces_is_always_caught(tiny, honest, position: int) -> None:
    """An honest trace with another answer: the last step, always checked, is re-run from
    the claimed tokens, so its cache (or its own token) differs from the provider's."""
    tokens = claimed_tokens(honest.output_bytes)
    tokens[position] = (tokens[position] + 1) % 60
    lie = replace(honest, **answer(tokens))
    for seed in SEEDS:
        assert not check(tiny, lie, seed).ok


def test_a_cut_or_padded_output_is_caught(tiny, honest) -> None:
    tokens = claimed_tokens(honest.output_bytes)
    roots = list(honest.step_roots)
    cut = replace(honest, **answer(tokens[:-1]), trace_root=merkle_root(roots[:-1]),
                  step_roots=tuple(roots[:-1]))  # fmt: skip
    assert "without a stop token" in check(tiny, cut, 0).mismatch
    longer = run(tiny, params={"max_tokens": 11})
    assert "the job allows 10" in check(tiny, longer, 0).mismatch


def test_claims_that_cannot_be_spot_checked_are_refused(tiny, honest) -> None:
    roots = list(honest.step_roots)
    with pytest.raises(SpotUnavailable, match="do not hash to the revealed trace root"):
        check(tiny, replace(honest, step_roots=tuple(reversed(roots))), 0)
    with pytest.raises(SpotUnavailable, match="9 step roots for 10"):
        check(tiny, replace(honest, step_roots=tuple(roots[:-1])), 0)
    with pytest.raises(SpotUnavailable, match="not generated tokens"):
        check(tiny, replace(honest, output_bytes=canonical_bytes(np.zeros((2, 3), np.int32)),
                            output_root=blob_root(canonical_bytes(np.zeros((2, 3), np.int32)))), 0)
    with pytest.raises(SpotUnavailable, match="does not hash to the revealed output root"):
        check(tiny, replace(honest, output_root=honest.trace_root), 0)
    with pytest.raises(SpotUnavailable, match="unknown params"):
        check(tiny, honest, 0, params={**PARAMS, "top_p": 1})
    with pytest.raises(SpotUnavailable, match="not generations"):
        spot_check(object(), PROMPT, PARAMS, honest.output_bytes, honest.output_root, honest.trace_root, roots,
                   random.Random(0))
    short = run(tiny, params={"max_tokens": MIN_SPOT_STEPS - 1})
    with pytest.raises(SpotUnavailable, match=f"below {MIN_SPOT_STEPS}"):
        check(tiny, short, 0, params={"max_tokens": MIN_SPOT_STEPS - 1})


@pytest.mark.parametrize(("prompt", "steps"), [(1, 2), (6, 10), (57, 16), (400, 64)])
def test_each_step_weighs_at_least_half_its_share_of_the_cost(prompt: int, steps: int) -> None:
    weights = step_weights(prompt, steps)
    assert len(weights) == steps - 1 and sum(weights) == pytest.approx(1.0)
    reads = [prompt] + [1] * (steps - 2)
    for a, b in [(1.0, 0.0), (0.0, 1.0), (1.0, 0.05), (0.3, 0.02)]:  # step cost a + b x tokens read
        costs = [a + b * r for r in reads]
        assert all(w >= 0.5 * c / sum(costs) - 1e-12 for w, c in zip(weights, costs, strict=True))


def test_the_draw_is_the_last_step_plus_distinct_others() -> None:
    rng = random.Random(1)
    assert choose_steps(10, 16, 0, rng) == (15,)
    for _ in range(50):
        steps = choose_steps(10, 16, 3, rng)
        assert len(steps) == 4 and steps[-1] == 15 and len(set(steps)) == 4
    assert choose_steps(10, 3, 5, rng) == (0, 1, 2)  # asked for more than there are: all of them
    with pytest.raises(ValueError, match="extra steps must be >= 0"):
        choose_steps(10, 16, -1, rng)


def test_the_last_step_alone_catches_a_lie_that_reached_the_kv_cache(tiny, honest) -> None:
    """One flipped bit in the keys step 3 adds to layer 0's cache (its second rope: q, then
    k): every later step reads that cache entry, so the last step's leaves (whose inputs
    commit to the whole cache) differ, and a spot audit that checks only the last step
    catches it. (A flipped bit that later rounding absorbs before it reaches the cache
    changes nothing downstream; only that step's own check can see it.)"""
    from verimesh.verify.adversary import WrongOpContext

    model = tiny[1]
    honest_ctx = ExecutionContext()
    model.generate(PROMPT, PARAMS["max_tokens"], None, honest_ctx)
    steps = honest_ctx.trace.steps
    key_rope = [r.index for r in steps[3] if r.op == "rope"][1]
    target = sum(len(s) for s in steps[:3]) + key_rope
    ctx = WrongOpContext(target, keep_tensors=False)
    tokens = model.generate(PROMPT, PARAMS["max_tokens"], None, ctx).tokens
    cheat = replace(honest, **answer(tokens), trace_root=ctx.trace.root, step_roots=tuple(ctx.trace.step_roots))
    assert cheat.step_roots[:3] == honest.step_roots[:3] and cheat.step_roots[3] != honest.step_roots[3]
    for seed in SEEDS:
        result = check(tiny, cheat, seed, extra=0)
        assert result.steps == (PARAMS["max_tokens"] - 1,) and not result.ok


def test_a_wrong_token_at_one_step_is_always_caught_even_when_that_step_is_not_drawn(tiny, honest) -> None:
    """Step 4 chooses another token than its logits give (the lie in its `argmax` leaf) and
    the generation goes on, consistently, from that token. Its trace differs from the honest
    one in step 4 and after; the cache holds no lie (every later key and value is right for
    the claimed tokens). The batched forward checks every step's choice: caught always."""
    from verimesh.verify.adversary import TamperContext

    model = tiny[1]
    honest_ctx = ExecutionContext()
    model.generate(PROMPT, PARAMS["max_tokens"], None, honest_ctx)
    steps = honest_ctx.trace.steps
    target = sum(len(s) for s in steps[:5]) - 1  # the last op of step 4: its token choice

    def next_token(index: int, _op: str, _inputs: tuple, out: np.ndarray) -> np.ndarray | None:
        return (out + 1) % model.cfg.vocab_size if index == target else None

    ctx = TamperContext(next_token)
    tokens = model.generate(PROMPT, PARAMS["max_tokens"], None, ctx).tokens
    cheat = replace(honest, **answer(tokens), trace_root=ctx.trace.root, step_roots=tuple(ctx.trace.step_roots))
    assert claimed_tokens(honest.output_bytes)[4] != tokens[4]
    for seed in SEEDS:
        result = check(tiny, cheat, seed)
        assert "step 4 chooses token" in result.mismatch
