"""Decoder benchmark: exact-runtime generation vs a hand-written torch fp32 Llama.

    python -m verimesh.models.llama_bench --threads 2 --tokens 32 [--model smollm2|tiny-shakespeare]
    python -m verimesh.models.llama_bench --quality [--model ...]   # exact vs float on held-out text

Both sides generate the same number of tokens greedily with a KV cache from the same
prompt, on the same number of threads (OPENBLAS/OMP env for numpy, torch.set_num_threads),
each in its own child process so that each peak RSS is its own. The exact side runs twice:
without a trace and with one, which gives the trace overhead. Needs torch (`.[bench]`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROMPT = "Write a short story about a robot who learns to paint."


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _exact_bundle(model: str):
    """The exact bundle from the local store (imported there on first use)."""
    from verimesh.models.llama import FORMAT
    from verimesh.models.store import ModelStore

    store = ModelStore()
    try:
        bundle = store.load(model)[1]
        if bundle.config.get("format") == FORMAT:
            return bundle
    except LookupError:
        pass
    if model == "smollm2":
        from verimesh.models.gguf_import import gguf_bundle, smollm2_path

        bundle = gguf_bundle(smollm2_path())
    else:
        from verimesh.models.tiny import tiny_bundle

        bundle = tiny_bundle()
    store.put(bundle, name=model)
    return bundle


def _child_exact(model: str, tokens: int) -> dict[str, Any]:
    from verimesh.models.chat import render_prompt
    from verimesh.models.llama import LlamaModel
    from verimesh.runtime import ExecutionContext

    llama = LlamaModel(_exact_bundle(model))
    prompt = llama.encode(render_prompt(llama.bundle.config.get("chat_format"), PROMPT))
    llama.generate_ids(ExecutionContext(trace=False), prompt, 2, stop=())  # warm caches
    result: dict[str, Any] = {"prompt_tokens": len(prompt)}
    for trace in (False, True):
        ctx = ExecutionContext(trace=trace)
        start, cpu = time.perf_counter(), time.process_time()
        out, _ = llama.generate_ids(ctx, prompt, tokens, stop=())
        if trace:
            result["trace_root"] = ctx.trace_root.hex()  # computing the root is part of the cost
        key = "traced" if trace else "exact"
        result[f"{key}_s"] = time.perf_counter() - start
        result[f"{key}_cpu_s"] = time.process_time() - cpu
        result["tokens"] = out
    result["text"] = llama.decode(result["tokens"])
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _child_torch(model: str, tokens: int, threads: int) -> dict[str, Any]:
    import torch
    from tokenizers import Tokenizer

    from verimesh.models.chat import detect_chat_format, render_prompt
    from verimesh.models.llama_torch import TorchLlama

    torch.set_num_threads(threads)
    if model == "smollm2":
        from verimesh.models.gguf_import import read_gguf, smollm2_path

        imported = read_gguf(smollm2_path())
        cfg, weights, tok_json = imported.config, imported.weights, imported.tokenizer_json
        fmt = detect_chat_format(imported.chat_template)
    else:
        from verimesh.models.tiny import load_tiny_float

        cfg, weights, tok_json = load_tiny_float()
        fmt = None
    net = TorchLlama(cfg)
    net.load_gguf_state(weights)
    net.eval()
    tokenizer = Tokenizer.from_str(tok_json)
    prompt = tokenizer.encode(render_prompt(fmt, PROMPT), add_special_tokens=False).ids
    net.generate_greedy(prompt, 2)
    start, cpu = time.perf_counter(), time.process_time()
    out = net.generate_greedy(prompt, tokens)
    return {
        "torch_s": time.perf_counter() - start,
        "torch_cpu_s": time.process_time() - cpu,
        "tokens": out,
        "text": tokenizer.decode(out, skip_special_tokens=True),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_child(kind: str, model: str, tokens: int, threads: int) -> dict[str, Any]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, "-m", "verimesh.models.llama_bench", "--child", kind,
           "--model", model, "--tokens", str(tokens), "--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_decoder_bench(model: str = "smollm2", tokens: int = 32, threads: int = 2) -> dict[str, Any]:
    """One bench case as a JSON-able dict (fields of `verimesh bench runtime`)."""
    exact = _run_child("exact", model, tokens, threads)
    ref = _run_child("torch", model, tokens, threads)
    n = len(exact["tokens"])
    same = sum(a == b for a, b in zip(exact["tokens"], ref["tokens"], strict=False))
    first_diff = next((i for i, (a, b) in enumerate(zip(exact["tokens"], ref["tokens"], strict=False)) if a != b), n)
    return {
        "model": model,
        "task": f"generate {n} tokens (greedy, KV cache, prompt {exact['prompt_tokens']} tokens)",
        "threads": threads,
        "exact_s": round(exact["exact_s"], 3),
        "torch_s": round(ref["torch_s"], 3),
        "ratio": round(exact["exact_s"] / ref["torch_s"], 2),
        "exact_tokens_per_s": round(n / exact["exact_s"], 2),
        "torch_tokens_per_s": round(n / ref["torch_s"], 2),
        "trace_overhead": round(exact["traced_s"] / exact["exact_s"] - 1, 3),
        # CPU seconds of each process: steadier than wall time on a shared machine
        "exact_cpu_s": round(exact["exact_cpu_s"], 3),
        "torch_cpu_s": round(ref["torch_cpu_s"], 3),
        "cpu_ratio": round(exact["exact_cpu_s"] / ref["torch_cpu_s"], 2),
        "trace_overhead_cpu": round(exact["traced_cpu_s"] / exact["exact_cpu_s"] - 1, 3),
        "exact_peak_rss_mb": round(exact["peak_rss_mb"]),
        "torch_peak_rss_mb": round(ref["peak_rss_mb"]),
        "greedy_tokens_equal_to_torch": same,
        "greedy_prefix_equal_to_torch": first_diff,
        "exact_text": exact["text"],
        "torch_text": ref["text"],
    }


def quality(model: str = "smollm2", max_tokens: int = 512, text: Path | None = None) -> dict[str, Any]:
    """Teacher-forced next-token top-1 agreement and perplexity, exact vs float weights,
    on held-out text that calibration never saw."""
    import numpy as np

    from verimesh.models.llama import LlamaModel
    from verimesh.models.llama_float import float_logits
    from verimesh.runtime import ExecutionContext

    if model == "smollm2":
        from verimesh.models.gguf_import import HELDOUT_TEXT, read_gguf, smollm2_path

        imported = read_gguf(smollm2_path())
        cfg, weights, text_file = imported.config, imported.weights, HELDOUT_TEXT
    else:
        from verimesh.models.tiny import TINY_DIR, load_tiny_float

        cfg, weights, _ = load_tiny_float()
        text_file = TINY_DIR / "heldout.txt"
    text_file = text or text_file
    llama = LlamaModel(_exact_bundle(model))
    ids = llama.encode(text_file.read_text())[: min(max_tokens, cfg.context_length)]
    exact = llama.forward(ExecutionContext(trace=False), ids, llama.new_cache(), logit_rows=None)
    exact = exact.astype(np.float64) / 2 ** llama.q["logits"]
    ref = float_logits(cfg, weights, ids).astype(np.float64)

    def ppl(logits: np.ndarray) -> float:
        z = logits[:-1] - logits[:-1].max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))

    exact_ppl, float_ppl = ppl(exact), ppl(ref)
    return {
        "model": model,
        "text": text_file.name,
        "positions": len(ids),
        "top1_agreement": round(float(np.mean(exact.argmax(1) == ref.argmax(1))), 4),
        "float_ppl": round(float_ppl, 3),
        "exact_ppl": round(exact_ppl, 3),
        "ppl_change": round(exact_ppl / float_ppl - 1, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2", choices=["smollm2", "tiny-shakespeare"])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quality", action="store_true", help="exact vs float quality instead of speed")
    ap.add_argument("--text", type=Path, help="held-out text for --quality (default: the model's)")
    ap.add_argument("--child", choices=["exact", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quality:
        print(json.dumps(quality(args.model, text=args.text), indent=2))
    elif args.child == "exact":
        print(json.dumps(_child_exact(args.model, args.tokens)))
    elif args.child == "torch":
        print(json.dumps(_child_torch(args.model, args.tokens, args.threads)))
    else:
        print(json.dumps(run_decoder_bench(args.model, args.tokens, args.threads), indent=2))


if __name__ == "__main__":
    main()
