"""Float32 numpy Llama: the "float model" that the exact model's quality is measured against.

It runs on the very float weights the exact bundle was quantised from (GGUF dequantised, or
the tiny model's trained floats), so any gap between the two is the cost of exact integer
execution and nothing else. Not used for jobs: float results differ across machines.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from verimesh.models.llama_config import LlamaConfig


def rope_angles(cfg: LlamaConfig, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin of shape (T, head_dim/2) for the given positions (float64 math, float32 out)."""
    half = cfg.head_dim // 2
    inv_freq = cfg.rope_theta ** (-np.arange(half, dtype=np.float64) * 2 / cfg.head_dim)
    angles = positions.astype(np.float64)[:, None] * inv_freq[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x (H, T, head_dim): rotate adjacent pairs (2i, 2i+1)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def _rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


Observer = Callable[[str, int, np.ndarray], None]


def float_logits(
    cfg: LlamaConfig,
    weights: dict[str, np.ndarray],
    tokens: list[int],
    observe: Observer | None = None,
) -> np.ndarray:
    """Logits (T, vocab) of a full causal forward over ``tokens``.

    ``observe(name, layer, values)`` sees every intermediate the exact model stores at a
    static scale (residual, q, k, v, gate, up, gated product); calibration uses it.
    """
    seen: Observer = observe or (lambda name, layer, values: None)
    T, hd = len(tokens), cfg.head_dim
    cos, sin = rope_angles(cfg, np.arange(T))
    x = weights["token_embd.weight"][np.asarray(tokens)]  # (T, dim)
    seen("residual", -1, x)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    rep = cfg.n_heads // cfg.n_kv_heads
    for i in range(cfg.n_layers):
        w = lambda n, i=i: weights[f"blk.{i}.{n}.weight"]  # noqa: E731
        h = _rmsnorm(x, w("attn_norm"), cfg.norm_eps)
        q = (h @ w("attn_q").T).reshape(T, cfg.n_heads, hd).transpose(1, 0, 2)
        k = (h @ w("attn_k").T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)
        v = (h @ w("attn_v").T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)
        seen("q", i, q)
        seen("k", i, k)
        seen("v", i, v)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        seen("q", i, q)
        seen("k", i, k)
        k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
        s = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(hd)) + mask
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        att = (p @ v).transpose(1, 0, 2).reshape(T, -1)
        x = x + att @ w("attn_output").T
        seen("residual", i, x)
        h = _rmsnorm(x, w("ffn_norm"), cfg.norm_eps)
        g, u = h @ w("ffn_gate").T, h @ w("ffn_up").T
        a = (g / (1 + np.exp(-g))) * u
        seen("gate", i, g)
        seen("up", i, u)
        seen("gated", i, a)
        x = x + a @ w("ffn_down").T
        seen("residual", i, x)
    x = _rmsnorm(x, weights["output_norm.weight"], cfg.norm_eps)
    head = weights["token_embd.weight"] if cfg.tied_embeddings else weights["output.weight"]
    return (x @ head.T).astype(np.float32)


def float_greedy(cfg: LlamaConfig, weights: dict[str, np.ndarray], prompt: list[int], max_tokens: int) -> list[int]:
    """Greedy continuation by full recompute (slow, simple: a reference, not a product)."""
    tokens = list(prompt)
    for _ in range(max_tokens):
        tokens.append(int(float_logits(cfg, weights, tokens)[-1].argmax()))
    return tokens[len(prompt) :]
