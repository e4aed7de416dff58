"""Hand-written torch fp32 Llama: trains the tiny decoder and is the speed reference of the
bench. Same architecture and weight names as the exact model (`models/llama.py`), no
transformers library. torch is an optional dependency (`pip install .[bench]`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from verimesh.models.llama_config import LlamaConfig


def rope_tables(cfg: LlamaConfig, n_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape (n_pos, head_dim // 2), frequencies theta^(-2i/head_dim)."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(half, dtype=torch.float64) * 2 / cfg.head_dim))
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, head_dim) with adjacent pairs (2i, 2i+1) rotated by angle pos * freq_i."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn_q = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.attn_k = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.attn_v = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.attn_output = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.ffn_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.ffn_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, dim)
        cos: torch.Tensor,  # (T, head_dim/2) for the positions of x
        sin: torch.Tensor,
        cache: list[torch.Tensor] | None = None,  # [k, v] of earlier positions, grown in place
    ) -> torch.Tensor:
        cfg, (B, T, _) = self.cfg, x.shape
        h = self.attn_norm(x)
        q = self.attn_q(h).view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = self.attn_k(h).view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.attn_v(h).view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if cache:
                k, v = torch.cat((cache[0], k), 2), torch.cat((cache[1], v), 2)
            cache[:] = [k, v]
        rep = cfg.n_heads // cfg.n_kv_heads
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        # causal over the whole (cached + new) sequence: new query t sees keys <= past + t
        past = k.shape[2] - T
        mask = torch.ones(T, k.shape[2], dtype=torch.bool).tril(diagonal=past)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.attn_output(att.transpose(1, 2).reshape(B, T, -1))
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))


class TorchLlama(nn.Module):
    """Parameter names map 1:1 to GGUF names (`blk.0.attn_q.weight` <- `blocks.0.attn_q.weight`)."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embd = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.output_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = None if cfg.tied_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg, cfg.context_length)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(
        self, tokens: torch.Tensor, start: int = 0, caches: list[list[torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """tokens (B, T) at positions start..start+T-1 -> logits (B, T, vocab)."""
        T = tokens.shape[1]
        cos, sin = self.rope_cos[start : start + T], self.rope_sin[start : start + T]
        x = self.token_embd(tokens)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if caches is None else caches[i])
        x = self.output_norm(x)
        head = self.token_embd.weight if self.output is None else self.output.weight
        return x @ head.T

    def gguf_state(self) -> dict[str, torch.Tensor]:
        """Weights under GGUF names, shapes (out, in) as in GGUF's numpy view."""
        return {
            name.replace("blocks.", "blk."): t.detach()
            for name, t in self.state_dict().items()
        }

    def load_gguf_state(self, weights: dict) -> None:
        state = {name.replace("blk.", "blocks.", 1): torch.tensor(np.asarray(w, dtype=np.float32)) for name, w in weights.items()}
        self.load_state_dict(state, strict=True)

    @torch.no_grad()
    def generate_greedy(self, prompt: list[int], max_tokens: int) -> list[int]:
        """Greedy decoding with a KV cache, one forward of one token per generated token."""
        caches: list[list[torch.Tensor]] = [[] for _ in self.blocks]
        logits = self(torch.tensor([prompt]), 0, caches)
        out: list[int] = []
        pos = len(prompt)
        for _ in range(max_tokens):
            token = int(logits[0, -1].argmax())
            out.append(token)
            if len(out) == max_tokens or pos >= self.cfg.context_length:
                break
            logits = self(torch.tensor([[token]]), pos, caches)
            pos += 1
        return out


def init_weights(model: TorchLlama, seed: int) -> None:
    """GPT-2 style init (std 0.02, residual projections scaled by depth), seeded."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            nn.init.ones_(p)
            continue
        std = 0.02
        if name.endswith(("attn_output.weight", "ffn_down.weight")):
            std /= math.sqrt(2 * model.cfg.n_layers)
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
