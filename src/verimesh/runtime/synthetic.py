"""A transformer-shaped op graph with seeded random integer weights.

It exercises every op family the way the real models do (encoder block with padding mask,
mean pooling and L2 normalisation; decoder block with RMSNorm, RoPE, grouped-query causal
attention over a growing KV cache, SwiGLU and sampling), so that determinism tests and the
trace-overhead benchmark can run before, and independently of, any imported model.
Weights are random but every scale is plausible, so values stay in realistic ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .context import ExecutionContext
from .fixed import add_multipliers, multiplier_tensors
from .tables import (
    build_exp_table,
    build_gelu_table,
    build_norm_constants,
    build_rope_tables,
    build_silu_table,
)
from .tensor import freeze

S_ACT = 0.05  # int8 activations
S_RES = 0.01  # int16 residual stream
SCORE_SCALE = 1 / 16  # exp-table input unit


@dataclass(frozen=True)
class SyntheticConfig:
    dim: int = 64
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 128
    vocab: int = 97
    seq: int = 8
    batch: int = 2
    layers: int = 2
    new_tokens: int = 3
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


def _linear(rng: np.random.Generator, n_out: int, n_in: int, s_in: float, s_out: float) -> dict:
    w = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    w_scales = math.sqrt(3 / n_in) / 127 * rng.uniform(0.5, 1.5, n_out)  # real weights ~ 1/sqrt(n)
    m, s = multiplier_tensors(s_in * w_scales / s_out)
    bias = rng.integers(-200, 200, n_out).astype(np.int32)
    return {"w": freeze(w), "m": freeze(m), "s": freeze(s), "b": freeze(bias)}


def _norm(rng: np.random.Generator, dim: int, with_beta: bool) -> dict:
    c = build_norm_constants(rng.uniform(0.5, 1.5, dim), rng.uniform(-0.1, 0.1, dim) if with_beta else None,
                             S_RES, S_ACT, 1e-6)
    out = {"gamma": freeze(c["gamma"]), "eps": c["eps"], "shift": c["shift"]}
    if with_beta:
        out["beta"] = freeze(c["beta"])
    return out


def make_weights(cfg: SyntheticConfig) -> dict:
    rng = np.random.default_rng(cfg.seed)
    d, dh, kvd = cfg.dim, cfg.head_dim, cfg.kv_heads * cfg.head_dim
    score_m, score_s = multiplier_tensors(S_ACT * S_ACT / math.sqrt(dh) / SCORE_SCALE)
    out_m, out_s = multiplier_tensors(S_ACT * 2.0**-15 / S_ACT)
    res = add_multipliers(1.0, S_ACT / S_RES)  # residual (S_RES) + branch (S_ACT) -> S_RES
    layers = []
    for _ in range(cfg.layers):
        layers.append({
            "norm1": _norm(rng, d, True), "norm2": _norm(rng, d, True), "rms1": _norm(rng, d, False),
            "q": _linear(rng, d, d, S_ACT, S_ACT), "k": _linear(rng, kvd, d, S_ACT, S_ACT),
            "v": _linear(rng, kvd, d, S_ACT, S_ACT), "o": _linear(rng, d, d, S_ACT, S_ACT),
            "up": _linear(rng, cfg.ffn, d, S_ACT, S_ACT), "gate": _linear(rng, cfg.ffn, d, S_ACT, S_ACT),
            "down": _linear(rng, d, cfg.ffn, S_ACT, S_ACT),
        })
    cos, sin = build_rope_tables(dh, 256)
    gate_m, gate_s = multiplier_tensors(S_ACT * S_ACT / S_ACT)
    return {
        "embed": freeze(rng.integers(-127, 128, (cfg.vocab, d)).astype(np.int16)),
        "layers": layers,
        "attn": tuple(freeze(t) for t in (score_m, score_s, build_exp_table(SCORE_SCALE), out_m, out_s)),
        "res": tuple(freeze(t) for t in res),
        "gelu": freeze(build_gelu_table(S_ACT, S_ACT)),
        "silu": freeze(build_silu_table(S_ACT, S_ACT)),
        "gate": (freeze(gate_m), freeze(gate_s)),
        "rope": (freeze(cos), freeze(sin)),
        "head": _linear(rng, cfg.vocab, d, S_ACT, 1 / 8),
        "logit_table": freeze(build_exp_table(1 / 8, frac_bits=20)),
    }


def _lin(ctx: ExecutionContext, x: np.ndarray, p: dict, out_dtype: str = "int8") -> np.ndarray:
    return ctx.call("linear", x, p["w"], p["m"], p["s"], p["b"], out_dtype=out_dtype)


def _heads(ctx: ExecutionContext, x: np.ndarray, b: int, t: int, h: int, dh: int) -> np.ndarray:
    x = ctx.call("reshape", x, shape=[b, t, h, dh])
    return ctx.call("transpose", x, axes=[0, 2, 1, 3])  # [B, H, T, Dh]


def _merge(ctx: ExecutionContext, x: np.ndarray, b: int, t: int, d: int) -> np.ndarray:
    return ctx.call("reshape", ctx.call("transpose", x, axes=[0, 2, 1, 3]), shape=[b, t, d])


def run_encoder(ctx: ExecutionContext, w: dict, cfg: SyntheticConfig, ids: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
    """BERT-style post-norm encoder -> L2-normalised mean-pooled embeddings [B, D] int32."""
    b, t = ids.shape
    d, h, dh = cfg.dim, cfg.heads, cfg.head_dim
    x = ctx.call("embedding", ids, w["embed"])  # int16 residual stream
    for layer in w["layers"]:
        n = layer["norm1"]
        a = ctx.call("layernorm", x, n["gamma"], n["beta"], eps=n["eps"], shift=n["shift"])
        q = _heads(ctx, _lin(ctx, a, layer["q"]), b, t, h, dh)
        k = _heads(ctx, _lin(ctx, a, layer["k"]), b, t, cfg.kv_heads, dh)
        v = _heads(ctx, _lin(ctx, a, layer["v"]), b, t, cfg.kv_heads, dh)
        att = ctx.call("attention", q, k, v, *w["attn"], mask)
        x = ctx.call("add", x, _lin(ctx, _merge(ctx, att, b, t, d), layer["o"]), *w["res"])
        n = layer["norm2"]
        a = ctx.call("layernorm", x, n["gamma"], n["beta"], eps=n["eps"], shift=n["shift"])
        hdn = ctx.call("lut", _lin(ctx, a, layer["up"]), w["gelu"])
        x = ctx.call("add", x, _lin(ctx, hdn, layer["down"]), *w["res"])
    pooled = ctx.call("mean_pool", x, mask)
    return ctx.call("l2_normalize", pooled, frac_bits=15)


def _decoder_block(ctx: ExecutionContext, w: dict, layer: dict, cfg: SyntheticConfig, x: np.ndarray,
                   cache: dict, pos: np.ndarray) -> np.ndarray:
    b, t = x.shape[0], x.shape[1]
    d, h, dh = cfg.dim, cfg.heads, cfg.head_dim
    n = layer["rms1"]
    a = ctx.call("rmsnorm", x, n["gamma"], eps=n["eps"], shift=n["shift"])
    rope = dict(style="half", out_dtype="int8")
    q = ctx.call("rope", _heads(ctx, _lin(ctx, a, layer["q"]), b, t, h, dh), *w["rope"], pos, **rope)
    k = ctx.call("rope", _heads(ctx, _lin(ctx, a, layer["k"]), b, t, cfg.kv_heads, dh), *w["rope"], pos, **rope)
    v = _heads(ctx, _lin(ctx, a, layer["v"]), b, t, cfg.kv_heads, dh)
    cache["k"] = ctx.call("concat", cache["k"], k, axis=2)
    cache["v"] = ctx.call("concat", cache["v"], v, axis=2)
    att = ctx.call("attention", q, cache["k"], cache["v"], *w["attn"], causal=True)
    x = ctx.call("add", x, _lin(ctx, _merge(ctx, att, b, t, d), layer["o"]), *w["res"])
    n = layer["norm2"]
    a = ctx.call("layernorm", x, n["gamma"], n["beta"], eps=n["eps"], shift=n["shift"])
    gate = ctx.call("lut", _lin(ctx, a, layer["gate"]), w["silu"])
    hdn = ctx.call("mul", gate, _lin(ctx, a, layer["up"]), *w["gate"])
    return ctx.call("add", x, _lin(ctx, hdn, layer["down"]), *w["res"])


def run_decoder(ctx: ExecutionContext, w: dict, cfg: SyntheticConfig, prompt: np.ndarray,
                seed: int | None) -> list[int]:
    """Llama-style decoder: prefill the prompt, then one step per generated token."""
    b, kv, dh = 1, cfg.kv_heads, cfg.head_dim
    caches = [{"k": np.zeros((b, kv, 0, dh), np.int8), "v": np.zeros((b, kv, 0, dh), np.int8)}
              for _ in w["layers"]]
    tokens = [int(t) for t in prompt]
    ids = np.array([tokens], dtype=np.int64)
    start = 0
    for step in range(cfg.new_tokens):
        ctx.begin_step()
        pos = np.arange(start, start + ids.shape[1], dtype=np.int64)
        x = ctx.call("embedding", ids, w["embed"])
        for layer, cache in zip(w["layers"], caches, strict=True):
            x = _decoder_block(ctx, w, layer, cfg, x, cache, pos)
        last = ctx.call("slice", x, axis=1, start=ids.shape[1] - 1, stop=ids.shape[1])
        logits = _lin(ctx, last, w["head"], out_dtype="int32")
        if seed is None:
            nxt = ctx.call("argmax", logits)
        else:
            nxt = ctx.call("sample", logits, w["logit_table"], seed=seed, step=step, top_k=20,
                           temperature_milli=800)
        tokens.append(int(nxt.reshape(-1)[0]))
        start += ids.shape[1]
        ids = np.array([[tokens[-1]]], dtype=np.int64)
    return tokens


def run_all(ctx: ExecutionContext, cfg: SyntheticConfig = SyntheticConfig()) -> np.ndarray:
    """Encoder batch + greedy and sampled decoding; returns every output as one int64 tensor."""
    w = make_weights(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    ids = rng.integers(0, cfg.vocab, (cfg.batch, cfg.seq)).astype(np.int64)
    mask = np.ones((cfg.batch, cfg.seq), dtype=np.int8)
    mask[-1, cfg.seq // 2 :] = 0  # padding in the last item
    emb = run_encoder(ctx, w, cfg, ids, mask)
    greedy = run_decoder(ctx, w, cfg, ids[0, :5], seed=None)
    sampled = run_decoder(ctx, w, cfg, ids[0, :5], seed=1234)
    return np.concatenate([emb.reshape(-1).astype(np.int64), np.array(greedy + sampled, dtype=np.int64)])


def run_with_large_matmuls(ctx: ExecutionContext, cfg: SyntheticConfig = SyntheticConfig()) -> np.ndarray:
    """``run_all`` plus BLAS-sized linears (256x1536 @ 1536x384, int8 and int16 activations),
    large enough for OpenBLAS to use several threads and its widest kernels."""
    rng = np.random.default_rng(cfg.seed + 2)
    small = run_all(ctx, cfg)
    p = _linear(rng, 384, 1536, S_ACT, S_ACT)
    x8 = rng.integers(-128, 128, (256, 1536)).astype(np.int8)
    x16 = rng.integers(-(2**15), 2**15, (256, 1536)).astype(np.int16)
    y8 = _lin(ctx, x8, p, out_dtype="int32")
    y16 = ctx.call("linear", x16, p["w"], p["m"], p["s"], out_dtype="int32")
    return np.concatenate([small, y8.reshape(-1).astype(np.int64), y16.reshape(-1).astype(np.int64)])


def _main() -> None:
    """``python -m verimesh.runtime.synthetic [fast|reference] [background]``: hashes as JSON."""
    import json
    import sys

    from numpy._core import _multiarray_umath as umath

    from .tensor import tensor_hash

    path = sys.argv[1] if len(sys.argv) > 1 else "fast"
    ctx = ExecutionContext(path=path, background_hashing="background" in sys.argv[2:])  # type: ignore[arg-type]
    out = run_with_large_matmuls(ctx)
    enabled = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    print(json.dumps({
        "output_hash": tensor_hash(out).hex(),
        "trace_root": ctx.trace_root.hex(),
        "ops": ctx.op_count,
        "simd_dispatch_enabled": enabled,
    }))


if __name__ == "__main__":
    _main()
