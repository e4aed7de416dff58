"""Llama-style decoder in the exact runtime: quantise once, then run only integer ops.

Read top to bottom: the number format, `quantize_llama` (float weights -> bundle), then
`LlamaModel` (forward with a KV cache, generation with one trace step per token).

Number format. Every scale is a power of two, value = integer * 2^-frac, with the fracs
chosen at import from the weights and a calibration text and committed in the config:

    residual stream   int32   frac `resid`  (bounded so the rmsnorm variance fits int64)
    norm outputs      int32   frac per norm (|y| <= sqrt(D) * max|gamma|)
    q, k, v, attn     int16   frac per layer (calibrated max x 2 headroom; rope keeps it)
    gate, up, silu    int16   frac per layer
    gated product     int32   frac per layer (massive activations: max x 16 headroom)
    logits            int32   frac `logits`
    weights           int8    symmetric, one scale per output channel

Every linear layer is `linear_rows` (runtime/ops/rows.py): its input is re-quantised to
int16 with a power-of-two scale PER TOKEN, which keeps ordinary tokens precise next to
the few "massive activation" tokens of Llama-family models. Nonlinearities are the
runtime's ops with committed tables: rmsnorm (integer rsqrt), rope (cos/sin tables),
attention (exp table, causal, GQA), lut (SiLU), argmax / sample (sha256 counter PRNG).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from verimesh.models.bundle import ModelBundle
from verimesh.models.llama_config import LlamaConfig
from verimesh.models.llama_float import float_logits
from verimesh.runtime import ExecutionContext, fixed, tables

ARCHITECTURE = "llama"
# Bumped whenever the bundle layout or an op sequence changes; older bundles are refused.
# 2: q/k/v and gate/up stacked into one linear_rows each.
FORMAT = 2
EXP_FRAC = 10  # softmax inputs in units of 2^-10 nats
LOGIT_FRAC = 12  # logits in units of 2^-12
ROPE_FRAC = 14
MAX_FRAC = 24
DEFAULT_TEMPERATURE_MILLI = 700
DEFAULT_TOP_K = 40


class ContextLengthError(ValueError):
    """Prompt plus requested tokens do not fit the model's context window."""


# --------------------------------------------------------------------------------------
# quantisation (runs once, at import, with floats; its integer outputs are the bundle)


def _frac_for(peak: float, limit: float, cap: int = MAX_FRAC) -> int:
    """Largest frac <= cap with peak * 2^frac <= limit (peak 0 -> cap)."""
    if peak <= 0:
        return cap
    return min(cap, math.floor(math.log2(limit / peak)))


def _weight_q(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 per output channel (row): q = round(w / s), s = max|row| / 127."""
    w = np.asarray(w, dtype=np.float32)  # float32 elementwise math: IEEE-exact everywhere
    peak = np.abs(w).max(axis=1)
    scale = np.where(peak > 0, peak / np.float32(127), np.float32(2.0**-20))  # zero row stays 0
    q = np.clip(np.floor(w / scale[:, None] + np.float32(0.5)), -127, 127).astype(np.int8)
    return q, scale.astype(np.float64)


def _ratio(real: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(m, shift) int32 tensors of the same shape as ``real``: real ~= m / 2^shift."""
    real = np.asarray(real, dtype=np.float64)
    m, s = fixed.multiplier_tensors(real)
    return m.reshape(real.shape), s.reshape(real.shape)


def calibrate(cfg: LlamaConfig, weights: dict[str, np.ndarray], tokens: list[int]) -> dict[str, Any]:
    """Max |value| of every statically scaled intermediate, over a float64 forward.

    float64, not float32: BLAS sums a matrix product in an order that depends on its thread
    count and CPU kernel, and in float32 that moved the committed peaks (rounded to 4
    decimals) and so the bundle root between 1 and 2 threads on one machine. In float64 the
    order changes results ~1e-16 relative: the peaks, the fracs and the root are the same on
    every machine."""
    peaks: dict[tuple[str, int], float] = {}

    def observe(name: str, layer: int, values: np.ndarray) -> None:
        key = (name, -1 if name == "residual" else layer)
        peaks[key] = max(peaks.get(key, 0.0), float(np.abs(values).max()))

    wide = {name: np.asarray(w, dtype=np.float64) for name, w in weights.items()}
    float_logits(cfg, wide, tokens, observe)
    return {f"{name}.{layer}": v for (name, layer), v in sorted(peaks.items())}


def quantize_llama(
    cfg: LlamaConfig,
    weights: dict[str, np.ndarray],
    calibration_tokens: list[int],
    extra_config: dict[str, Any],
) -> ModelBundle:
    """Float weights (GGUF names) -> canonical integer bundle; see the module docstring."""
    peaks = calibrate(cfg, weights, calibration_tokens)
    D, hd = cfg.dim, cfg.head_dim
    t: dict[str, np.ndarray] = {}
    # residual: room for 4x the calibrated peak, within int32 and the rmsnorm variance bound
    resid = _frac_for(4 * peaks["residual.-1"], min(2.0**31 - 1, 2.0**31 / math.sqrt(D)))
    layers = []

    def norm(name: str, gamma: np.ndarray) -> dict[str, int]:
        out_frac = _frac_for(math.sqrt(D) * float(np.abs(gamma).max()), 2.0**30)
        c = tables.build_norm_constants(gamma, None, 2.0**-resid, 2.0**-out_frac, cfg.norm_eps)
        t[f"{name}.gamma"] = c["gamma"]
        return {"frac": out_frac, "shift": int(c["shift"]), "eps": int(c["eps"])}

    def linear(name: str, parts: list[tuple[np.ndarray, int]], in_frac: int) -> None:
        """One linear_rows layer; ``parts`` = (weight, out_frac) stacked along the outputs,
        so q/k/v (or gate/up) run as one matrix product, each part at its own scale."""
        qs, ms, ss = [], [], []
        for w, out_frac in parts:
            q, scale = _weight_q(w)
            m, s = _ratio(scale * 2.0 ** (out_frac - in_frac))
            qs.append(q), ms.append(m), ss.append(s)
        t[f"{name}.q"] = np.concatenate(qs)
        t[f"{name}.m"], t[f"{name}.shift"] = np.concatenate(ms), np.concatenate(ss)

    int16_frac = lambda peak: _frac_for(2 * peak, 32767.0)  # noqa: E731
    for i in range(cfg.n_layers):
        w = lambda n, i=i: weights[f"blk.{i}.{n}.weight"]  # noqa: E731
        p = f"blk.{i}"
        L: dict[str, Any] = {"attn_norm": norm(f"{p}.attn_norm", w("attn_norm"))}
        L["q"] = int16_frac(peaks[f"q.{i}"])
        L["k"] = int16_frac(peaks[f"k.{i}"])
        L["v"] = int16_frac(peaks[f"v.{i}"])
        h = L["attn_norm"]["frac"]
        linear(f"{p}.attn_qkv", [(w("attn_q"), L["q"]), (w("attn_k"), L["k"]), (w("attn_v"), L["v"])], h)
        # scores: q k^T at 2^-(q+k), divided by sqrt(hd), into exp-table units 2^-EXP_FRAC
        t[f"{p}.attn.score_m"], t[f"{p}.attn.score_shift"] = _ratio(
            2.0 ** (EXP_FRAC - L["q"] - L["k"]) / math.sqrt(hd)
        )
        # P (2^-15) @ V (2^-v) -> attention output at v's scale
        t[f"{p}.attn.out_m"], t[f"{p}.attn.out_shift"] = _ratio(2.0**-15)
        linear(f"{p}.attn_output", [(w("attn_output"), resid)], L["v"])
        L["ffn_norm"] = norm(f"{p}.ffn_norm", w("ffn_norm"))
        L["gate"] = int16_frac(peaks[f"gate.{i}"])
        L["up"] = int16_frac(peaks[f"up.{i}"])
        L["gated"] = _frac_for(16 * peaks[f"gated.{i}"], 2.0**30)
        h = L["ffn_norm"]["frac"]
        linear(f"{p}.ffn_gate_up", [(w("ffn_gate"), L["gate"]), (w("ffn_up"), L["up"])], h)
        t[f"{p}.ffn_silu.table"] = tables.build_silu_table(
            2.0 ** -L["gate"], 2.0 ** -L["gate"], "int16", "int16"
        )
        t[f"{p}.ffn_mul.m"], t[f"{p}.ffn_mul.shift"] = _ratio(
            2.0 ** (L["gated"] - L["gate"] - L["up"])
        )
        linear(f"{p}.ffn_down", [(w("ffn_down"), resid)], L["gated"])
        layers.append(L)

    final = norm("output_norm", weights["output_norm.weight"])
    emb_q, emb_scale = _weight_q(weights["token_embd.weight"])
    t["token_embd.q"] = emb_q
    top = float(emb_scale.max())
    t["token_embd.row_scale"] = np.clip(np.floor(emb_scale / top * 32767 + 0.5), 1, 32767).astype(np.int16)[:, None]
    t["token_embd.to_resid.m"], t["token_embd.to_resid.shift"] = _ratio(top / 32767 * 2.0**resid)
    if cfg.tied_embeddings:
        t["head.m"], t["head.shift"] = _ratio(emb_scale * 2.0 ** (LOGIT_FRAC - final["frac"]))
    else:
        linear("output", [(weights["output.weight"], LOGIT_FRAC)], final["frac"])
    t["residual.m"], t["residual.shift"] = np.array(1 << 30, np.int32), np.array(30, np.int32)
    t["rope.cos"], t["rope.sin"] = tables.build_rope_tables(hd, cfg.context_length, cfg.rope_theta, ROPE_FRAC)
    t["attn.exp_table"] = tables.build_exp_table(2.0**-EXP_FRAC)
    t["sample.exp_table"] = tables.build_exp_table(2.0**-LOGIT_FRAC)
    quant = {
        "residual": resid,
        "logits": LOGIT_FRAC,
        "rope_frac": ROPE_FRAC,
        "output_norm": final,
        "layers": layers,
        "calibration_tokens": len(calibration_tokens),
        "calibration_peaks": {k: round(v, 4) for k, v in peaks.items()},
    }
    config = {**extra_config, "architecture": ARCHITECTURE, "format": FORMAT, "llama": cfg.to_dict(), "quant": quant}
    return ModelBundle(config=config, tensors=t)


# --------------------------------------------------------------------------------------
# the exact model


@dataclass
class KVCache:
    """Per layer (k, v), each [1, n_kv_heads, positions, head_dim] int16; grows by concat."""

    layers: list[tuple[np.ndarray, np.ndarray] | None]

    @property
    def length(self) -> int:
        first = self.layers[0] if self.layers else None
        return 0 if first is None else int(first[0].shape[2])

    def cut(self, positions: int) -> KVCache:
        """A new cache of the first ``positions`` positions (read-only copies): the cache a
        sequential run holds at that length, since every position's keys and values depend
        only on the positions before it."""
        if not 0 <= positions <= self.length:
            raise ValueError(f"cannot cut a cache of {self.length} positions to {positions}")
        if positions == 0:
            return KVCache([None] * len(self.layers))
        return KVCache([tuple(_frozen(t[:, :, :positions]) for t in layer) for layer in self.layers])  # type: ignore[misc]


def _frozen(values: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(values)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Replay:
    """A claimed generation checked from the claimed tokens (``LlamaModel.replay``)."""

    chosen: list[int]  # the token each step chooses given the claimed tokens before it
    steps: dict[int, tuple[bytes, int]]  # re-run step -> (its step root, its token)


@dataclass
class Generation:
    tokens: list[int]
    text: str
    prompt_tokens: int
    steps: int = 0
    finish_reason: str = "length"  # "length" | "eos"


class LlamaModel:
    """An imported Llama bundle, ready to run with `ExecutionContext`s."""

    def __init__(self, bundle: ModelBundle) -> None:
        if bundle.architecture != ARCHITECTURE:
            raise ValueError(f"bundle architecture is {bundle.architecture!r}, expected 'llama'")
        from verimesh.runtime.tensor import freeze

        if bundle.config.get("format") != FORMAT:
            raise ValueError(
                f"this llama bundle has format {bundle.config.get('format')}, this verimesh runs "
                f"format {FORMAT}: import the model again (e.g. `verimesh models import`)"
            )
        self.bundle = bundle
        self.cfg = LlamaConfig.from_dict(bundle.config["llama"])
        self.q = bundle.config["quant"]
        # frozen tensors: the runtime caches their hashes and float copies by identity
        self.t = {name: freeze(arr) for name, arr in bundle.tensors.items()}
        self._tokenizer = None

    # -- text ------------------------------------------------------------------------------
    @property
    def tokenizer(self):  # tokenizers.Tokenizer, built lazily from the committed JSON
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self.bundle.config["tokenizer"])
        return self._tokenizer

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def new_cache(self) -> KVCache:
        return KVCache([None] * self.cfg.n_layers)

    # -- forward ---------------------------------------------------------------------------
    def _linear(self, ctx: ExecutionContext, x: np.ndarray, name: str, out_dtype: str) -> np.ndarray:
        t = self.t
        return ctx.call("linear_rows", x, t[f"{name}.q"], t[f"{name}.m"], t[f"{name}.shift"], out_dtype=out_dtype)

    def _norm(self, ctx: ExecutionContext, x: np.ndarray, name: str, spec: dict[str, int]) -> np.ndarray:
        return ctx.call("rmsnorm", x, self.t[f"{name}.gamma"], eps=spec["eps"], shift=spec["shift"], out_dtype="int32")

    def _cols(self, ctx: ExecutionContext, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        return ctx.call("slice", x, axis=1, start=start, stop=stop)

    def _heads(self, ctx: ExecutionContext, x: np.ndarray, n: int) -> np.ndarray:
        """[T, n*hd] -> [1, n, T, hd] (one reshape when T == 1: a generation step)"""
        T = x.shape[0]
        if T == 1:
            return ctx.call("reshape", x, shape=[1, n, 1, self.cfg.head_dim])
        x = ctx.call("reshape", x, shape=[1, T, n, self.cfg.head_dim])
        return ctx.call("transpose", x, axes=[0, 2, 1, 3])

    def forward(
        self, ctx: ExecutionContext, tokens: list[int], cache: KVCache, logit_rows: int | None = 1
    ) -> np.ndarray:
        """Run ``tokens`` at positions cache.length.. ; returns int32 logits of the last
        ``logit_rows`` positions (None: all T), [rows, vocab].

        Appends the new keys/values to ``cache``. Every value flows through ``ctx.call``.
        """
        cfg, t = self.cfg, self.t
        start, T = cache.length, len(tokens)
        if start + T > cfg.context_length:
            raise ContextLengthError(
                f"{start + T} tokens do not fit the context of {cfg.context_length}; "
                "use a shorter input or fewer --max-tokens"
            )
        ids = np.asarray(tokens, dtype=np.int32)
        rope = self._rope_rows(ctx, start, T)
        e = ctx.call("embedding", ids, t["token_embd.q"])
        rs = ctx.call("embedding", ids, t["token_embd.row_scale"])
        x = ctx.call("mul", e, rs, t["token_embd.to_resid.m"], t["token_embd.to_resid.shift"], out_dtype="int32")
        return self._layers_and_head(ctx, x, cache, rope, 0, logit_rows, start)

    # ops of a forward before its first layer: two rope-table slices, two embeddings, one mul
    PREFIX_OPS = 5

    def layer_ops(self, T: int, cached: bool) -> int:
        """How many ops one layer of ``_layers_and_head`` runs on T new tokens (``cached``:
        with earlier positions in the cache, which adds a concat for k and one for v).
        ``tests/models/test_tiny_decoder.py`` holds it to the traces ``forward`` makes."""
        concat = 2 if cached else 0  # k, v
        attention = 1 + (0 if T == 1 else 1) + 1  # attention, its transpose back to [T, H, hd], reshape
        ffn = 1 + 1 + 2 + 1 + 1 + 1 + 1  # norm, gate_up, two slices, lut, mul, down, add
        return self.cache_reads(T) + concat + attention + 2 + ffn  # ..., attn_output + add, ...

    def forward_ops(self, T: int, cached: bool) -> int:
        """How many ops ``forward`` runs on T new tokens: the prefix, every layer, the head
        (with the slice to the last row when T > 1; a generation step adds its choice)."""
        return self.PREFIX_OPS + self.cfg.n_layers * self.layer_ops(T, cached) + 2 + (1 if T > 1 else 0)

    def cache_reads(self, T: int) -> int:
        """Where in a layer's ops its k concat (then its v concat) reads the cache, when
        cached: the ops before it."""
        return 1 + 1 + 3 * (1 + (1 if T == 1 else 2)) + 2  # norm, qkv, q/k/v heads, rope x2

    def resume_point(self, T: int, index: int, cached: bool = False) -> tuple[int, int] | None:
        """Where a referee can resume op ``index`` of a forward over T new tokens (step 0 of
        a generation: the prompt, uncached; a later step: one token, ``cached``): (the layer
        whose ops it starts from, the index of the op whose output is that layer's input:
        the residual add ending the layer before, or the embedding's mul). None when the op
        comes before the first layer (a prefix of ``PREFIX_OPS`` ops: nothing to skip)."""
        if index < self.PREFIX_OPS:
            return None
        per = self.layer_ops(T, cached)
        layer = min((index - self.PREFIX_OPS) // per, self.cfg.n_layers)
        return layer, self.PREFIX_OPS + layer * per - 1

    def resume(
        self, ctx: ExecutionContext, x: np.ndarray, layer: int, start: int = 0,
        past: Sequence[tuple[np.ndarray, np.ndarray]] = (), logit_rows: int | None = 1,
    ) -> np.ndarray:
        """``forward`` at positions ``start``.. from ``layer`` on, given ``x``, the residual
        stream that enters it, and ``past``, the cached keys and values of the positions
        before ``start`` of layers ``layer``, ``layer + 1``, ... (the first inputs of each
        layer's two concats): what a referee runs to find the program's op inside one layer
        without running the layers, or steps, before it (verify/replay.py). ``ctx`` sees
        exactly the ops ``forward`` runs from that layer's first op on; the rope rows every
        layer reads are recomputed outside it (two ops at the step's start). A run that
        reaches a layer whose cache is not given, with ``start`` > 0, raises."""
        cfg = self.cfg
        if not 0 <= layer <= cfg.n_layers:
            raise ValueError(f"layer {layer} is outside a model of {cfg.n_layers} layers")
        T = x.shape[0] if x.ndim == 2 else 0
        if x.ndim != 2 or x.shape[1] != cfg.dim or T == 0 or not 0 <= start <= cfg.context_length - T:
            raise ValueError(f"the residual stream must be [T, {cfg.dim}] at positions within the context, "
                             f"got {list(x.shape)} at {start}")  # fmt: skip
        cache = self.new_cache()
        shape = (1, cfg.n_kv_heads, start, cfg.head_dim)
        for i, kv in enumerate(past, start=layer):
            if i >= cfg.n_layers or len(kv) != 2 or any(t.shape != shape for t in kv):
                raise ValueError(f"the past keys and values of layer {i} must be two {list(shape)} tensors")
            cache.layers[i] = (kv[0], kv[1])
        rope = self._rope_rows(ExecutionContext(trace=False), start, T)
        return self._layers_and_head(ctx, x, cache, rope, layer, logit_rows, start)

    def _rope_rows(self, ctx: ExecutionContext, start: int, T: int) -> tuple[np.ndarray, np.ndarray]:
        """This call's rows of the committed cos/sin tables, once for all layers."""
        t = self.t
        cos = ctx.call("slice", t["rope.cos"], axis=0, start=start, stop=start + T)
        sin = ctx.call("slice", t["rope.sin"], axis=0, start=start, stop=start + T)
        return cos, sin

    def _layers_and_head(
        self, ctx: ExecutionContext, x: np.ndarray, cache: KVCache, rope: tuple[np.ndarray, np.ndarray],
        first: int, logit_rows: int | None, start: int,
    ) -> np.ndarray:
        """Layers ``first``.. on the residual stream ``x`` at positions ``start``.. (after
        the cached ones), then the output norm and head."""
        cfg, t, q = self.cfg, self.t, self.q
        T = x.shape[0]
        cos, sin = rope
        positions = np.arange(T, dtype=np.int32)  # rows of the sliced tables
        add = (t["residual.m"], t["residual.m"], t["residual.shift"])
        q_dim, kv_dim = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        for i in range(first, len(q["layers"])):
            L, p = q["layers"][i], f"blk.{i}"
            h = self._norm(ctx, x, f"{p}.attn_norm", L["attn_norm"])
            qkv = self._linear(ctx, h, f"{p}.attn_qkv", "int16")  # [T, (H + 2 Hkv) * hd]
            qh = self._heads(ctx, self._cols(ctx, qkv, 0, q_dim), cfg.n_heads)
            kh = self._heads(ctx, self._cols(ctx, qkv, q_dim, q_dim + kv_dim), cfg.n_kv_heads)
            vh = self._heads(ctx, self._cols(ctx, qkv, q_dim + kv_dim, q_dim + 2 * kv_dim), cfg.n_kv_heads)
            qh = ctx.call("rope", qh, cos, sin, positions, style="interleaved", frac_bits=q["rope_frac"])
            kh = ctx.call("rope", kh, cos, sin, positions, style="interleaved", frac_bits=q["rope_frac"])
            past = cache.layers[i]
            if past is None and start > 0:
                raise ValueError(f"layer {i} reads the keys and values of the {start} positions before; none are cached")
            if past is not None:
                kh = ctx.call("concat", past[0], kh, axis=2)
                vh = ctx.call("concat", past[1], vh, axis=2)
            cache.layers[i] = (kh, vh)
            att = ctx.call(
                "attention", qh, kh, vh,
                t[f"{p}.attn.score_m"], t[f"{p}.attn.score_shift"], t["attn.exp_table"],
                t[f"{p}.attn.out_m"], t[f"{p}.attn.out_shift"],
                causal=True, q_offset=start, out_dtype="int16",
            )  # [1, H, T, hd] at v's scale
            if T > 1:
                att = ctx.call("transpose", att, axes=[0, 2, 1, 3])
            att = ctx.call("reshape", att, shape=[T, cfg.dim])
            x = ctx.call("add", x, self._linear(ctx, att, f"{p}.attn_output", "int32"), *add, out_dtype="int32")
            h = self._norm(ctx, x, f"{p}.ffn_norm", L["ffn_norm"])
            gu = self._linear(ctx, h, f"{p}.ffn_gate_up", "int16")  # [T, 2 * ffn_dim]
            g = self._cols(ctx, gu, 0, cfg.ffn_dim)
            u = self._cols(ctx, gu, cfg.ffn_dim, 2 * cfg.ffn_dim)
            s = ctx.call("lut", g, t[f"{p}.ffn_silu.table"])
            a = ctx.call("mul", s, u, t[f"{p}.ffn_mul.m"], t[f"{p}.ffn_mul.shift"], out_dtype="int32")
            x = ctx.call("add", x, self._linear(ctx, a, f"{p}.ffn_down", "int32"), *add, out_dtype="int32")
        if logit_rows is not None and logit_rows < T:  # one row in generation: a step's token
            x = ctx.call("slice", x, axis=0, start=T - logit_rows, stop=T)
        h = self._norm(ctx, x, "output_norm", q["output_norm"])
        if cfg.tied_embeddings:
            return ctx.call("linear_rows", h, t["token_embd.q"], t["head.m"], t["head.shift"], out_dtype="int32")
        return self._linear(ctx, h, "output", "int32")

    # -- generation ------------------------------------------------------------------------
    def choose(
        self, ctx: ExecutionContext, logits: np.ndarray, step: int, seed: int | None,
        temperature_milli: int = DEFAULT_TEMPERATURE_MILLI, top_k: int = DEFAULT_TOP_K,
    ) -> int:
        """Next token from the last row of int32 logits: argmax, or seeded sampling (an op too)."""
        if seed is None:
            return int(ctx.call("argmax", logits)[-1])
        out = ctx.call(
            "sample", logits, self.t["sample.exp_table"], seed=seed, step=step,
            temperature_milli=temperature_milli, top_k=top_k,
        )
        return int(out[-1])

    def generate_ids(
        self, ctx: ExecutionContext, prompt: list[int], max_tokens: int, seed: int | None = None,
        stop: tuple[int, ...] | None = None, **sampling: int,
    ) -> tuple[list[int], str]:
        """Generate up to ``max_tokens`` ids after ``prompt``: one trace step per new token
        (step 0 also reads the prompt). Returns (ids, finish reason)."""
        if not prompt:
            raise ValueError("generation needs a prompt of at least one token")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if len(prompt) + max_tokens - 1 > self.cfg.context_length:
            raise ContextLengthError(
                f"prompt of {len(prompt)} tokens + {max_tokens} new tokens exceeds the context "
                f"of {self.cfg.context_length} tokens; shorten the input or lower --max-tokens"
            )
        stop = self.stop_tokens() if stop is None else stop
        cache = self.new_cache()
        out: list[int] = []
        feed = list(prompt)
        for step in range(max_tokens):
            ctx.begin_step()
            logits = self.forward(ctx, feed, cache)
            token = self.choose(ctx, logits, step, seed, **sampling)
            out.append(token)
            if token in stop:
                return out, "eos"
            feed = [token]
        return out, "length"

    def stop_tokens(self) -> tuple[int, ...]:
        """The tokens that end a generation early (the model's EOS, if it has one)."""
        return () if self.cfg.eos_token_id is None else (self.cfg.eos_token_id,)

    def prompt_ids(self, prompt: str, chat: bool | None = None) -> list[int]:
        """The token ids a generation starts from: the prompt, in the model's chat template
        when ``chat`` (default: when the model has a chat format)."""
        from verimesh.models.chat import render_prompt

        fmt = self.bundle.config.get("chat_format")
        text = render_prompt(fmt, prompt) if (chat if chat is not None else fmt is not None) else prompt
        return self.encode(text)

    def replay(
        self, prompt: list[int], tokens: list[int], steps: list[int], seed: int | None = None, **sampling: int
    ) -> Replay:
        """Check a generation that claims ``tokens`` after ``prompt`` without re-running it
        step by step: what a spot audit does (verify/spot.py).

        ONE untraced batched forward over prompt + tokens[:-1] gives the logits of the
        positions that choose tokens and the whole KV cache. Every op is exact and
        row-wise (linear rows, norms, rope, causal attention), so the logits of position
        P - 1 + s are bit for bit what step s of ``generate_ids`` computes from the claimed
        tokens before it, and the cache cut to the positions before step s is bit for bit
        its cache. So:

        - ``chosen[s]``: the token step s chooses from those logits, for EVERY step;
        - ``steps[s]`` for each s in ``steps``: (step root, token) of step s re-run traced
          on its cut cache, to compare with the provider's committed step root.
        """
        if not prompt:
            raise ValueError("generation needs a prompt of at least one token")
        if not tokens or any(not 0 <= s < len(tokens) for s in steps):
            raise ValueError(f"steps {steps} are outside a generation of {len(tokens)} tokens")
        untraced = ExecutionContext(trace=False)
        full = self.new_cache()
        # the last len(tokens) positions are those whose logits choose the tokens: the prompt's
        # last position (step 0) and each claimed token but the last (steps 1..)
        logits = self.forward(untraced, list(prompt) + list(tokens[:-1]), full, logit_rows=len(tokens))
        chosen = [self.choose(untraced, logits[s : s + 1], s, seed, **sampling) for s in range(len(tokens))]
        checked: dict[int, tuple[bytes, int]] = {}
        for s in sorted(set(steps)):
            cache = full.cut(0 if s == 0 else len(prompt) + s - 1)
            ctx = ExecutionContext()
            for _ in range(s + 1):  # empty steps before it: its leaves carry step index s
                ctx.begin_step()
            step_logits = self.forward(ctx, list(prompt) if s == 0 else [tokens[s - 1]], cache)
            token = self.choose(ctx, step_logits, s, seed, **sampling)
            assert ctx.trace is not None
            checked[s] = (ctx.trace.step_roots[s], token)
        return Replay(chosen, checked)

    def fast_forward(
        self, ctx: ExecutionContext, prompt: list[int], tokens: list[int], seed: int | None = None, **sampling: int
    ) -> bool:
        """Run step ``len(tokens)`` of the generation after ``prompt`` in ``ctx``, as
        ``generate_ids`` runs it, without running the steps before it: what a referee does
        to find the program's op deep in a generation (verify/replay.py).

        ``tokens`` are claimed choices of steps 0 .. s - 1. One untraced batched forward
        over prompt + tokens[:-1] (``replay``) gives every one of those steps' logits and
        the cache step s reads, bit for bit; if each step chooses its claimed token, the
        claim IS the honest generation so far and step s runs on that cache with its leaves
        at step index s. Returns False, having run nothing in ``ctx``, when a claimed token
        is not the program's choice."""
        s = len(tokens)
        if not prompt or s < 1:
            raise ValueError("fast_forward needs a prompt and the tokens of at least one step")
        untraced = ExecutionContext(trace=False)
        cache = self.new_cache()
        logits = self.forward(untraced, list(prompt) + list(tokens[:-1]), cache, logit_rows=s)
        for t in range(s):
            if self.choose(untraced, logits[t : t + 1], t, seed, **sampling) != tokens[t]:
                return False
        for _ in range(s + 1):  # empty steps before it: its leaves carry step index s
            ctx.begin_step()
        step_logits = self.forward(ctx, [tokens[-1]], cache)
        self.choose(ctx, step_logits, s, seed, **sampling)
        return True

    def generate(
        self, prompt: str, max_tokens: int, seed: int | None, ctx: ExecutionContext, chat: bool | None = None
    ) -> Generation:
        """Text in, text out. ``chat`` (default: when the model has a chat format) wraps the
        prompt in the model's chat template."""
        ids = self.prompt_ids(prompt, chat)
        tokens, reason = self.generate_ids(ctx, ids, max_tokens, seed)
        shown = [tok for tok in tokens if tok != self.cfg.eos_token_id]
        return Generation(tokens=tokens, text=self.decode(shown), prompt_tokens=len(ids), steps=len(tokens), finish_reason=reason)
