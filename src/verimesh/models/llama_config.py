"""Hyper-parameters of a Llama-style decoder, shared by the importers, the exact model and
the float references, so that all of them read one definition of the architecture."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class LlamaConfig:
    """Shape of a Llama-style decoder (names follow the GGUF `llama.*` metadata keys).

    RoPE pairs ADJACENT features (2i, 2i+1) as in the original Llama and in llama.cpp's
    GGUF files (the HF->GGUF converter permutes q/k weights into that layout).
    """

    vocab_size: int
    dim: int  # embedding_length
    n_layers: int  # block_count
    n_heads: int  # attention.head_count
    n_kv_heads: int  # attention.head_count_kv (GQA when < n_heads)
    ffn_dim: int  # feed_forward_length
    context_length: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tied_embeddings: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def __post_init__(self) -> None:
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"llama config: dim {self.dim} must divide by n_heads {self.n_heads} and "
                f"n_heads by n_kv_heads {self.n_kv_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"llama config: head_dim {self.head_dim} must be even for RoPE")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LlamaConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"llama config: unknown keys {unknown}; expected a subset of {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"llama config: {exc}; required keys are documented on LlamaConfig") from exc


def tensor_names(cfg: LlamaConfig) -> list[str]:
    """Float weight names, GGUF style; every importer maps its source onto these."""
    names = ["token_embd.weight", "output_norm.weight"]
    if not cfg.tied_embeddings:
        names.append("output.weight")
    for i in range(cfg.n_layers):
        names += [
            f"blk.{i}.{part}.weight"
            for part in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
            )
        ]
    return names
