"""BERT sentence encoder in torch fp32, written by hand (no transformers): the benchmark's
yardstick for speed. Same maths as ``bert_float`` (post-LayerNorm BERT, erf GELU, mean
pooling, L2 normalisation). Needs torch (the ``bench`` extra)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from verimesh.models.bert_float import BertShape


class TorchBert:
    def __init__(self, weights: dict[str, np.ndarray], shape: BertShape) -> None:
        self.s = shape
        self.w = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in weights.items()}

    @torch.inference_mode()
    def embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, s = self.w, self.s
        ids_t = torch.from_numpy(ids.astype(np.int64))
        m = torch.from_numpy(mask.astype(np.float32))
        batch, seq = ids_t.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids_t]
            + w["embeddings.position_embeddings.weight"][:seq][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = F.layer_norm(x, (s.hidden,), w["embeddings.LayerNorm.weight"],
                         w["embeddings.LayerNorm.bias"], s.layer_norm_eps)
        bias = ((1.0 - m) * -1e9)[:, None, None, :]
        for i in range(s.layers):
            p = f"encoder.layer.{i}."

            def lin(name: str, t: torch.Tensor, p: str = p) -> torch.Tensor:
                return F.linear(t, w[p + name + ".weight"], w[p + name + ".bias"])

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.view(batch, seq, s.heads, s.head_dim).transpose(1, 2)

            q = heads(lin("attention.self.query", x))
            k = heads(lin("attention.self.key", x))
            v = heads(lin("attention.self.value", x))
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            ctx = ctx.transpose(1, 2).reshape(batch, seq, s.hidden)
            x = F.layer_norm(lin("attention.output.dense", ctx) + x, (s.hidden,),
                             w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], s.layer_norm_eps)
            h = lin("output.dense", F.gelu(lin("intermediate.dense", x)))
            x = F.layer_norm(h + x, (s.hidden,), w[p + "output.LayerNorm.weight"],
                             w[p + "output.LayerNorm.bias"], s.layer_norm_eps)
        pooled = (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1).numpy()
