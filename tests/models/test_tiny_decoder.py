"""The shipped tiny decoder through the exact Llama path: fast checks of the generation loop."""

from __future__ import annotations

import numpy as np
import pytest

from verimesh.models.llama import ContextLengthError, LlamaModel
from verimesh.models.llama_float import float_logits
from verimesh.models.tiny import TINY_DIR, load_tiny_float, tiny_bundle
from verimesh.runtime import ExecutionContext, recompute, tensor_hash

PROMPT = "ROMEO.\nWhat light"


@pytest.fixture(scope="module")
def model() -> LlamaModel:
    return LlamaModel(tiny_bundle())


def test_bundle_is_small_integer_and_reproducible(model: LlamaModel) -> None:
    data = model.bundle.to_bytes()
    assert len(data) < 5 * 1024 * 1024
    assert {a.dtype.name for a in model.bundle.tensors.values()} <= {"int8", "int16", "int32"}
    assert tiny_bundle.__wrapped__().root() == model.bundle.root()  # import is deterministic


def test_kv_cache_steps_equal_full_recompute_bit_for_bit(model: LlamaModel) -> None:
    ids = model.encode(PROMPT + " through yonder window breaks?")
    full = model.forward(ExecutionContext(trace=False), ids, model.new_cache(), logit_rows=None)
    ctx, cache = ExecutionContext(trace=False), model.new_cache()
    first = model.forward(ctx, ids[:5], cache, logit_rows=None)
    rows = [first]
    for token in ids[5:]:
        rows.append(model.forward(ctx, [token], cache))
    assert np.array_equal(np.concatenate(rows), full)


def test_greedy_generation_is_deterministic_with_one_trace_step_per_token(model: LlamaModel) -> None:
    runs = []
    for _ in range(2):
        ctx = ExecutionContext()
        gen = model.generate(PROMPT, 12, None, ctx)
        runs.append((gen.tokens, ctx.trace_root))
        assert len(ctx.trace.step_roots) == len(gen.tokens) == gen.steps == 12
        assert gen.text == model.decode(gen.tokens)
    assert runs[0] == runs[1]


def test_seeded_sampling_is_reproducible_and_depends_on_the_seed(model: LlamaModel) -> None:
    def sample(seed: int) -> tuple[list[int], bytes]:
        ctx = ExecutionContext()
        return model.generate(PROMPT, 24, seed, ctx).tokens, ctx.trace_root

    a, b, c = sample(7), sample(7), sample(8)
    assert a == b
    assert a[0] != c[0] or a[1] != c[1]
    greedy = model.generate(PROMPT, 24, None, ExecutionContext(trace=False)).tokens
    assert a[0] != greedy or c[0] != greedy  # sampling is not argmax in disguise


def test_reference_path_gives_the_same_bytes_and_trace(model: LlamaModel) -> None:
    roots = []
    for path in ("fast", "reference"):
        ctx = ExecutionContext(path=path)
        tokens = model.generate("KING.\n", 2, 3, ctx).tokens
        roots.append((tokens, ctx.trace_root))
    assert roots[0] == roots[1]


def test_a_referee_recomputes_a_generation_op_from_its_inputs(model: LlamaModel) -> None:
    ctx = ExecutionContext(keep_tensors=True)
    model.generate(PROMPT, 2, None, ctx)
    records = [r for step in ctx.trace.steps for r in step]
    for name in ("linear_rows", "attention", "rmsnorm", "argmax"):
        record = next(r for r in reversed(records) if r.op == name)
        out = recompute(record)
        assert record.output_hash == tensor_hash(out)


def test_exact_model_tracks_its_float_reference(model: LlamaModel) -> None:
    """Teacher-forced top-1 agreement with the float weights on held-out text."""
    cfg, weights, _ = load_tiny_float()
    ids = model.encode((TINY_DIR / "heldout.txt").read_text())[:200]
    exact = model.forward(ExecutionContext(trace=False), ids, model.new_cache(), logit_rows=None)
    ref = float_logits(cfg, weights, ids)
    agree = float(np.mean(exact.argmax(axis=1) == ref.argmax(axis=1)))
    assert agree >= 0.9, agree
    # and greedy continuations: the exact argmax matches the float greedy next token
    prompt = model.encode(PROMPT)
    from verimesh.models.llama_float import float_greedy

    float_tokens = float_greedy(cfg, weights, prompt, 20)
    forced = model.forward(ExecutionContext(trace=False), prompt + float_tokens, model.new_cache(), logit_rows=None)
    predicted = forced[len(prompt) - 1 : -1].argmax(axis=1)
    assert np.mean(predicted == np.array(float_tokens)) >= 0.8


def test_input_longer_than_the_context_is_a_clear_error(model: LlamaModel) -> None:
    n = model.cfg.context_length
    with pytest.raises(ContextLengthError, match="context"):
        model.generate("a" * (n + 1), 1, None, ExecutionContext(trace=False))
    assert len(model.generate("a" * n, 1, None, ExecutionContext(trace=False)).tokens) == 1
    with pytest.raises(ContextLengthError, match="max-tokens"):
        model.generate("a" * (n - 4), 10, None, ExecutionContext(trace=False))
    with pytest.raises(ValueError, match="max_tokens"):
        model.generate("a", 0, None, ExecutionContext(trace=False))


_CHILD = """
from verimesh.models.llama import LlamaModel
from verimesh.models.tiny import tiny_bundle
from verimesh.runtime import ExecutionContext
model = LlamaModel(tiny_bundle())
ctx = ExecutionContext()
gen = model.generate("First Citizen.\\n", 6, 11, ctx)
print(model.bundle.root().hex(), ctx.trace_root.hex(), gen.tokens)
"""


def test_same_roots_on_one_and_two_blas_threads_and_without_simd() -> None:
    import os
    import subprocess
    import sys

    from numpy._core import _multiarray_umath as umath

    # only optional dispatch targets this CPU has (numpy refuses to disable baseline ones)
    optional = ",".join(f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f))
    outputs = set()
    for extra in (
        {"OPENBLAS_NUM_THREADS": "1"},
        {"OPENBLAS_NUM_THREADS": "2"},
        {"OPENBLAS_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": optional, "OPENBLAS_CORETYPE": "Prescott"},
    ):
        env = dict(os.environ, OMP_NUM_THREADS=extra["OPENBLAS_NUM_THREADS"], **extra)
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
        outputs.add(done.stdout.strip().splitlines()[-1])
    assert len(outputs) == 1, outputs


def test_a_bundle_of_another_format_is_refused_with_a_fix(model: LlamaModel) -> None:
    from verimesh.models.bundle import ModelBundle

    old = ModelBundle({**model.bundle.config, "format": 1}, model.bundle.tensors)
    with pytest.raises(ValueError, match="import the model again"):
        LlamaModel(old)


@pytest.mark.parametrize("prompt", ["R", PROMPT], ids=["one-token-prompt", "prompt"])
def test_the_layer_layout_is_the_traces(model: LlamaModel, prompt: str) -> None:
    """``layer_ops`` and ``resume_point`` describe the ops ``forward`` really runs: step 0
    is the prefix, n layers and the head; each resume point is the residual that enters its
    layer (the embedding's mul for layer 0, the ffn's residual add after), followed by the
    layer's attention norm, or the output norm's input after the last layer."""
    ids = model.encode(prompt)
    ctx = ExecutionContext()
    model.generate_ids(ctx, ids, 2)
    step0, step1 = ctx.trace.steps
    n, T = model.cfg.n_layers, len(ids)
    head = (2 if T == 1 else 3) + 1  # [slice to the last row], output norm, head, argmax
    assert len(step0) == model.PREFIX_OPS + n * model.layer_ops(T, cached=False) + head
    assert len(step0) == model.forward_ops(T, cached=False) + 1
    assert len(step1) == model.PREFIX_OPS + n * model.layer_ops(1, cached=True) + 2 + 1
    assert len(step1) == model.forward_ops(1, cached=True) + 1
    reads = model.PREFIX_OPS + model.cache_reads(1)
    assert [r.op for r in step1[reads : reads + 3]] == ["concat", "concat", "attention"]
    for layer in range(n + 1):  # a cached step's layers start where resume_point says
        first = model.PREFIX_OPS + layer * model.layer_ops(1, cached=True)
        assert model.resume_point(1, first + 1, cached=True) == (min(layer, n), first - 1)
        assert step1[first - 1].op == ("mul" if layer == 0 else "add")
    per = model.layer_ops(T, cached=False)
    for layer in range(n + 1):
        first = model.PREFIX_OPS + layer * per
        for index in (first, first + per // 2, first + per - 1):
            if index >= len(step0):
                continue
            at_layer, at = model.resume_point(T, index)
            assert (at_layer, at) == (min(layer, n), first - 1)
            assert step0[at].op == ("mul" if layer == 0 else "add")
            assert step0[at + 1].op in ("rmsnorm", "slice")  # the layer's attention norm / the head
    assert model.resume_point(T, model.PREFIX_OPS - 1) is None


def test_resuming_at_a_layer_runs_the_forwards_own_ops(model: LlamaModel) -> None:
    """``resume`` from the residual entering layer j (and, in a later step, that layer's
    cached keys and values) runs the very ops ``forward`` runs from that layer's first op on
    (same op, params, inputs and output), and gives the same logits."""

    def ops(records):
        return [(r.op, r.params_json, r.input_hashes, r.output_hash) for r in records]

    ids = model.encode(PROMPT)
    full, cache = ExecutionContext(keep_tensors=True), model.new_cache()
    logits = [model.forward(full, ids, cache)]
    full.begin_step()
    logits.append(model.forward(full, [ids[0]], cache))
    for step, (T, cached, start) in enumerate([(len(ids), False, 0), (1, True, len(ids))]):
        leaves = full.trace.steps[step]
        for layer in range(model.cfg.n_layers + 1):
            first = model.PREFIX_OPS + layer * model.layer_ops(T, cached)
            assert model.resume_point(T, first, cached) == (layer, first - 1)
            past = []
            for later in range(layer, model.cfg.n_layers) if cached else ():  # each layer's concats read its cache
                reads = model.PREFIX_OPS + later * model.layer_ops(T, cached) + model.cache_reads(T)
                past.append((leaves[reads].inputs[0], leaves[reads + 1].inputs[0]))
            ctx = ExecutionContext()
            ctx.begin_step()
            again = model.resume(ctx, recompute(leaves[first - 1]), layer, start, past)
            assert np.array_equal(again, logits[step])
            assert ops(ctx.trace.steps[0]) == ops(leaves[first:])
    x = recompute(full.trace.steps[1][model.PREFIX_OPS - 1])
    with pytest.raises(ValueError, match="outside a model"):
        model.resume(ExecutionContext(), x, model.cfg.n_layers + 1)
    with pytest.raises(ValueError, match="residual stream must be"):
        model.resume(ExecutionContext(), x[:, :-1], 0)
    with pytest.raises(ValueError, match="past keys and values of layer 0 must be"):
        model.resume(ExecutionContext(), x, 0, len(ids), [(x, x)])
    with pytest.raises(ValueError, match="reads the keys and values of the"):
        model.resume(ExecutionContext(trace=False), x, 0, len(ids))
