"""Float32 reference forward of a BERT sentence encoder, in numpy, from Hugging Face weights.

Two jobs: (1) the quality yardstick the exact (integer) forward is compared against, and
(2) the calibration pass of the importer, which records the range of every activation the
exact forward quantises (``observe`` callback). It follows the BERT paper / Hugging Face
``BertModel`` (post-LayerNorm, erf GELU) plus sentence-transformers' mean pooling and L2
normalisation. It is NOT part of any exact computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Observer = Callable[[str, np.ndarray], None]


@dataclass(frozen=True)
class BertShape:
    """The few config numbers the forward needs (from Hugging Face config.json)."""

    hidden: int
    heads: int
    layers: int
    intermediate: int
    max_positions: int
    vocab: int
    layer_norm_eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def from_hf_config(cls, cfg: dict) -> BertShape:
        return cls(
            hidden=int(cfg["hidden_size"]),
            heads=int(cfg["num_attention_heads"]),
            layers=int(cfg["num_hidden_layers"]),
            intermediate=int(cfg["intermediate_size"]),
            max_positions=int(cfg["max_position_embeddings"]),
            vocab=int(cfg["vocab_size"]),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
        )


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64, vectorised (numpy has none): Abramowitz & Stegun 7.1.26, |error| < 1.5e-7,
    below float32 resolution at the GELU's scale, so the reference stays a float32 model."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    """erf GELU, as BERT uses; float64 inside, out in x's dtype."""
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + erf(x64 / np.sqrt(2.0)))).astype(x.dtype)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Out in x's dtype: float32 for the reference model, float64 for calibration."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * w + b).astype(x.dtype)


def bert_embed(
    weights: dict[str, np.ndarray],
    shape: BertShape,
    ids: np.ndarray,
    mask: np.ndarray,
    observe: Observer | None = None,
) -> np.ndarray:
    """Sentence embeddings (B, hidden) float32 for token ids (B, T) and attention mask (B, T)."""
    obs = observe or (lambda name, x: None)
    w = weights
    batch, seq = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
        + w["embeddings.token_type_embeddings.weight"][0][None, None]
    )
    obs("embeddings.sum", x)
    x = layer_norm(
        x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], shape.layer_norm_eps
    )
    # Padding keys get -inf-like scores: they take no part in attention.
    key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
    scale = 1.0 / np.sqrt(shape.head_dim)
    for i in range(shape.layers):
        p = f"encoder.layer.{i}."
        obs(p + "input", x)

        def linear(name: str, inp: np.ndarray, p: str = p) -> np.ndarray:
            return inp @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def heads(t: np.ndarray) -> np.ndarray:  # (B, T, H) -> (B, heads, T, head_dim)
            return t.reshape(batch, seq, shape.heads, shape.head_dim).transpose(0, 2, 1, 3)

        q = linear("attention.self.query", x)
        k = linear("attention.self.key", x)
        v = linear("attention.self.value", x)
        obs(p + "q", q)
        obs(p + "k", k)
        obs(p + "v", v)
        scores = heads(q) @ heads(k).transpose(0, 1, 3, 2) * scale + key_bias
        obs(p + "scores", np.where(key_bias == 0, scores, 0))
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ heads(v)).transpose(0, 2, 1, 3).reshape(batch, seq, shape.hidden)
        obs(p + "context", ctx)
        attn = linear("attention.output.dense", ctx)
        obs(p + "attention_out", attn)
        obs(p + "attention_residual", attn + x)
        x = layer_norm(
            attn + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            shape.layer_norm_eps,
        )
        obs(p + "attention_norm", x)
        pre = linear("intermediate.dense", x)
        obs(p + "gelu_in", pre)
        inter = gelu(pre)
        obs(p + "gelu_out", inter)
        out = linear("output.dense", inter)
        obs(p + "mlp_out", out)
        obs(p + "mlp_residual", out + x)
        x = layer_norm(
            out + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            shape.layer_norm_eps,
        )
    obs("output", x)
    m = mask[..., None].astype(np.float32)
    pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)).astype(
        np.float32
    )
