"""Exact integer matmul vs the int64 reference vs plain float32 BLAS, and the cost of tracing.

Run: OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/bench_matmul.py [--repeat 5] [--json]
     (add --no-trace-bench to skip the trace-overhead part, ~1 min)

Matmul shapes are the products of the real models: MiniLM-L6 (hidden 384, FFN 1536) on a
batch of 256 token rows, SmolLM2-135M (hidden 576, FFN 1536, vocab 49152) in prefill (128
rows) and decode (1 row), and the 256x1024 @ 1024x1024 product quoted in ARCHITECTURE.md.
For each: `exact` = verimesh.runtime.matmul.matmul_exact with the weight frozen (its float
copy cached, as in a loaded model), `exact_cold` = the same without the cache (weight
converted on every call), `float32` = np.matmul on float32 copies made beforehand (the
speed of light for this BLAS; NOT bit-reproducible), `int64` = matmul_reference. Times are
the best of --repeat runs (the machine is shared; the best run is the least disturbed),
measured with --clock: "cpu" (process CPU time, default: robust against other processes on
a shared machine; with several BLAS threads it is the sum over threads) or "wall".

Trace overhead: the synthetic transformer graph of verimesh.runtime.synthetic at MiniLM
shape (6 layers, 2 x 128 tokens) and at SmolLM2 shape (30 layers, decode), with tracing on
vs off; with --real-models also the imported all-MiniLM-L6-v2 (32 sentences) and
SmolLM2-135M-Instruct (16 greedy tokens) from the model packages (import takes ~30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np

from verimesh.benchinfo import machine_facts
from verimesh.runtime import ExecutionContext, freeze
from verimesh.runtime.matmul import matmul_exact, matmul_reference, plan_chunks
from verimesh.runtime.synthetic import SyntheticConfig, make_weights, run_decoder, run_encoder

SHAPES = [
    # name, M, K, N, activation dtype
    ("minilm qkv 256x384 @ 384x384", 256, 384, 384, "int8"),
    ("minilm ffn-up 256x384 @ 384x1536", 256, 384, 1536, "int8"),
    ("minilm ffn-down 256x1536 @ 1536x384", 256, 1536, 384, "int8"),
    ("smollm2 prefill up 128x576 @ 576x1536", 128, 576, 1536, "int8"),
    ("smollm2 prefill down 128x1536 @ 1536x576", 128, 1536, 576, "int8"),
    ("smollm2 decode up 1x576 @ 576x1536", 1, 576, 1536, "int8"),
    ("smollm2 decode lm-head 1x576 @ 576x49152", 1, 576, 49152, "int8"),
    ("arch doc 256x1024 @ 1024x1024", 256, 1024, 1024, "int8"),
    ("int16 acts: minilm ffn-down 256x1536 @ 1536x384", 256, 1536, 384, "int16"),
]


CLOCK: Callable[[], float] = time.process_time


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = CLOCK()
        fn()
        best = min(best, CLOCK() - t)
    return best


def bench_shape(name: str, m: int, k: int, n: int, dtype: str, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, int(info.max) + 1, (m, k)).astype(dtype)
    w_cold = rng.integers(-127, 128, (n, k)).astype(np.int8)  # [out, in] like a linear weight
    w = freeze(w_cold.copy())
    exact = matmul_exact(a, w, transpose_b=True)
    assert np.array_equal(exact, matmul_reference(a, w, transpose_b=True)), name
    af, wf = a.astype(np.float32), w.astype(np.float32)
    kind, chunk = plan_chunks(k, int(np.abs(a.astype(np.int64)).max()), 127)
    row = {
        "shape": name,
        "plan": f"{kind} x{-(-k // chunk)}",
        "exact_s": best_time(lambda: matmul_exact(a, w, transpose_b=True), repeat),
        "exact_cold_s": best_time(lambda: matmul_exact(a, w_cold, transpose_b=True), repeat),
        "float32_s": best_time(lambda: af @ wf.T, repeat),
        "int64_s": best_time(lambda: matmul_reference(a, w, transpose_b=True), max(1, repeat // 3)),
    }
    row["exact_vs_float32"] = row["exact_s"] / row["float32_s"]
    row["int64_vs_exact"] = row["int64_s"] / row["exact_s"]
    return row


def _traced(job: Callable[[ExecutionContext], object]) -> None:
    ctx = ExecutionContext(trace=True)
    job(ctx)
    _ = ctx.trace_root  # the Merkle trees are part of the tracing cost


def bench_trace(repeat: int) -> list[dict]:
    rows = []
    enc = SyntheticConfig(dim=384, heads=12, kv_heads=12, ffn=1536, vocab=30522, seq=128, batch=2, layers=6)
    w = make_weights(enc)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, enc.vocab, (enc.batch, enc.seq)).astype(np.int64)
    mask = np.ones(ids.shape, dtype=np.int8)
    dec = SyntheticConfig(dim=576, heads=9, kv_heads=3, ffn=1536, vocab=49152, layers=30, new_tokens=16)
    wd = make_weights(dec)
    prompt = rng.integers(0, dec.vocab, 32)
    jobs = [
        ("encoder, MiniLM shape, 2x128 tokens", enc, lambda ctx: run_encoder(ctx, w, enc, ids, mask)),
        ("decoder, SmolLM2 shape, 32-token prompt + 16 tokens", dec,
         lambda ctx: run_decoder(ctx, wd, dec, prompt, seed=None)),
    ]
    for name, _cfg, job in jobs:
        job(ExecutionContext(trace=False))  # warm the float-weight and hash caches
        job(ExecutionContext(trace=True))
        off = on = float("inf")
        for _ in range(repeat):  # interleaved, so a disturbance hits both alike
            off = min(off, best_time(lambda job=job: job(ExecutionContext(trace=False)), 1))
            on = min(on, best_time(lambda job=job: _traced(job), 1))
        ctx = ExecutionContext(trace=True)
        job(ctx)
        rows.append({"workload": name, "ops": ctx.op_count, "trace_off_s": off, "trace_on_s": on,
                     "trace_overhead": on / off - 1})
    return rows


def bench_real_models(repeat: int) -> list[dict]:
    """Trace on vs off on the real imported models (needs the model packages installed)."""
    from verimesh.models.gguf_import import gguf_bundle, smollm2_path
    from verimesh.models.llama import LlamaModel
    from verimesh.models.minilm import (
        BertModel,
        calibration_sentences,
        import_bert_folder,
        minilm_folder,
    )

    bert = BertModel(import_bert_folder(minilm_folder()))
    texts = (calibration_sentences() * 4)[:32]
    llama = LlamaModel(gguf_bundle(smollm2_path()))
    prompt = llama.encode("Write a short story about a robot who learns to paint.")
    jobs = [
        (f"all-MiniLM-L6-v2, 32 sentences ({bert.tokenizer.encode_batch(texts).ids.shape[1]} tokens each)",
         lambda ctx: bert.embed(texts, ctx)),
        (f"SmolLM2-135M, {len(prompt)}-token prompt + 16 greedy tokens",
         lambda ctx: llama.generate_ids(ctx, prompt, 16, stop=())),
    ]
    rows = []
    for name, job in jobs:
        job(ExecutionContext(trace=True))  # warm caches
        off = on = float("inf")
        for _ in range(repeat):
            off = min(off, best_time(lambda job=job: job(ExecutionContext(trace=False)), 1))
            on = min(on, best_time(lambda job=job: _traced(job), 1))
        ctx = ExecutionContext(trace=True)
        job(ctx)
        ops = ctx.op_count
        rows.append({"workload": name, "ops": ops, "trace_off_s": off, "trace_on_s": on,
                     "trace_overhead": on / off - 1})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-trace-bench", action="store_true")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--real-models", action="store_true")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    machine = {
        **machine_facts(),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "numpy": np.__version__,
        "clock": args.clock,
        "load_average": os.getloadavg(),
    }
    shapes = [bench_shape(*s, repeat=args.repeat) for s in SHAPES]
    trace = [] if args.no_trace_bench else bench_trace(max(1, args.repeat // 2))
    if args.real_models:
        trace += bench_real_models(max(1, args.repeat // 2))
    if args.json:
        print(json.dumps({"machine": machine, "matmul": shapes, "trace": trace}, indent=2))
        return
    print(f"machine: {machine}")
    print("| shape | plan | exact (s) | exact, cold weight (s) | float32 BLAS (s) | int64 ref (s) "
          "| exact / float32 | int64 / exact |")
    print("|---|---|---|---|---|---|---|---|")
    for r in shapes:
        print(f"| {r['shape']} | {r['plan']} | {r['exact_s']:.5f} | {r['exact_cold_s']:.5f} | "
              f"{r['float32_s']:.5f} | {r['int64_s']:.4f} | {r['exact_vs_float32']:.2f} | "
              f"{r['int64_vs_exact']:.0f} |")
    if trace:
        print()
        print("| workload | ops | trace off (s) | trace on (s) | overhead |")
        print("|---|---|---|---|---|")
        for r in trace:
            print(f"| {r['workload']} | {r['ops']} | {r['trace_off_s']:.3f} | {r['trace_on_s']:.3f} | "
                  f"{100 * r['trace_overhead']:.1f}% |")


if __name__ == "__main__":
    main()
