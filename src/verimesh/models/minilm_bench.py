"""Encoder benchmark: a MiniLM batch in the exact runtime vs a hand-written torch fp32 BERT.

    python -m verimesh.models.minilm_bench --threads 2 --batch 32
    python -m verimesh.models.minilm_bench --quality      # exact vs float, 300 sentences

Both sides embed the same sentences (the first ``batch`` of the shipped evaluation set)
on the same number of threads, each in its own child process so that each peak RSS is its
own. The exact side runs without a trace and with one (trace overhead). Times are the best
of ``repeats`` runs after one warm-up. Needs torch (`.[bench]`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

REPEATS = 3


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sentences(batch: int) -> list[str]:
    from verimesh.models.minilm import DATA

    lines = (DATA / "minilm_eval_sentences.txt").read_text().splitlines()
    return [s for s in lines if s][:batch]


def _best(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over ``repeats`` runs.

    CPU time is reported too because the wall time of a shared machine depends on what
    else runs; the CPU time of a process much less so (BLAS spin-waits still count)."""
    fn()  # warm-up: float copies of weights, allocator, BLAS threads
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def _child_exact(batch: int, repeats: int) -> dict[str, Any]:
    from verimesh.models.api import load_model
    from verimesh.runtime import ExecutionContext

    model = load_model("minilm").impl
    texts = _sentences(batch)
    tokens = model.tokenizer.encode_batch(texts)
    out: dict[str, Any] = {"tokens": int(tokens.mask.sum()), "padded": int(tokens.mask.size)}
    out["exact_s"], out["exact_cpu_s"] = _best(lambda: model.forward(ExecutionContext(trace=False), tokens.ids, tokens.mask), repeats)

    def traced() -> None:
        ctx = ExecutionContext(trace=True)
        model.forward(ctx, tokens.ids, tokens.mask)
        ctx.trace_root  # noqa: B018  (building the Merkle root is part of the cost)

    out["traced_s"], out["traced_cpu_s"] = _best(traced, repeats)
    emb = model.forward(ExecutionContext(trace=False), tokens.ids, tokens.mask)
    out["embeddings"] = (emb.astype(np.float64) / 2**15).tolist()
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _child_torch(batch: int, repeats: int, threads: int) -> dict[str, Any]:
    import torch

    from verimesh.models.bert_torch import TorchBert
    from verimesh.models.minilm import minilm_folder, read_bert_folder
    from verimesh.models.tokenizer import TextTokenizer

    torch.set_num_threads(threads)
    src = read_bert_folder(minilm_folder())
    net = TorchBert(src.weights, src.shape)
    tokens = TextTokenizer(src.tokenizer_json, src.shape.max_positions).encode_batch(_sentences(batch))
    seconds, cpu = _best(lambda: net.embed(tokens.ids, tokens.mask), repeats)
    emb = net.embed(tokens.ids, tokens.mask)
    return {"torch_s": seconds, "torch_cpu_s": cpu, "embeddings": emb.tolist(), "peak_rss_mb": _peak_rss_mb()}


def _run_child(kind: str, batch: int, threads: int, repeats: int) -> dict[str, Any]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, "-m", "verimesh.models.minilm_bench", "--child", kind,
           "--batch", str(batch), "--threads", str(threads), "--repeats", str(repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_encoder_bench(threads: int = 2, batch: int = 32, repeats: int = REPEATS) -> dict[str, Any]:
    """One bench case as a JSON-able dict (fields of `verimesh bench runtime`)."""
    exact = _run_child("exact", batch, threads, repeats)
    ref = _run_child("torch", batch, threads, repeats)
    a, b = np.asarray(exact["embeddings"]), np.asarray(ref["embeddings"])
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {
        "model": "minilm",
        "task": f"embed {batch} sentences ({exact['tokens']} tokens, {exact['padded']} padded)",
        "threads": threads,
        "exact_s": round(exact["exact_s"], 4),
        "torch_s": round(ref["torch_s"], 4),
        "ratio": round(exact["exact_s"] / ref["torch_s"], 2),
        "trace_overhead": round(exact["traced_s"] / exact["exact_s"] - 1, 3),
        "exact_cpu_s": round(exact["exact_cpu_s"], 4),
        "torch_cpu_s": round(ref["torch_cpu_s"], 4),
        "cpu_ratio": round(exact["exact_cpu_s"] / ref["torch_cpu_s"], 2),
        "trace_overhead_cpu": round(exact["traced_cpu_s"] / exact["exact_cpu_s"] - 1, 3),
        "exact_sentences_per_s": round(batch / exact["exact_s"], 1),
        "torch_sentences_per_s": round(batch / ref["torch_s"], 1),
        "exact_peak_rss_mb": round(exact["peak_rss_mb"]),
        "torch_peak_rss_mb": round(ref["peak_rss_mb"]),
        "cosine_to_torch_min": round(float(cosine.min()), 5),
        "cosine_to_torch_mean": round(float(cosine.mean()), 5),
    }


def quality(batch: int = 25) -> dict[str, Any]:
    """Cosine between exact and float32 (numpy reference) embeddings on the whole shipped
    evaluation set (300 sentences the calibration never saw)."""
    from verimesh.models.api import load_model
    from verimesh.models.bert_float import bert_embed
    from verimesh.models.minilm import DATA, embeddings_as_float, minilm_folder, read_bert_folder
    from verimesh.runtime import ExecutionContext

    model = load_model("minilm").impl
    src = read_bert_folder(minilm_folder())
    texts = [s for s in (DATA / "minilm_eval_sentences.txt").read_text().splitlines() if s]
    cosines = []
    for start in range(0, len(texts), batch):
        tokens = model.tokenizer.encode_batch(texts[start : start + batch])
        exact = embeddings_as_float(model.forward(ExecutionContext(trace=False), tokens.ids, tokens.mask))
        ref = bert_embed(src.weights, src.shape, tokens.ids, tokens.mask).astype(np.float64)
        cosines.extend((exact * ref).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(ref, axis=1))
    c = np.asarray(cosines)
    return {
        "model": "minilm",
        "sentences": len(c),
        "cosine_mean": round(float(c.mean()), 5),
        "cosine_min": round(float(c.min()), 5),
        "cosine_p1": round(float(np.percentile(c, 1)), 5),
        "share_at_least_0.99": round(float((c >= 0.99).mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--child", choices=("exact", "torch"))
    parser.add_argument("--quality", action="store_true", help="cosine vs float on 300 sentences")
    args = parser.parse_args()
    if args.quality:
        result = quality()
    elif args.child == "exact":
        result = _child_exact(args.batch, args.repeats)
    elif args.child == "torch":
        result = _child_torch(args.batch, args.repeats, args.threads)
    else:
        result = run_encoder_bench(args.threads, args.batch, args.repeats)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
