"""The tiny character-level Llama that verimesh trains and ships (scripts/train_tiny.py).

Files beside this module: `model.safetensors` (float32 weights, GGUF tensor names),
`config.json` (architecture, alphabet, training record), `calibration.txt` (training text
for activation scales), `heldout.txt` (text from a play never seen in training).
It goes through the same importer as SmolLM2 (`quantize_llama`), just much faster.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from verimesh.models.bundle import ModelBundle
from verimesh.models.llama_config import LlamaConfig

TINY_DIR = Path(__file__).resolve().parent
TINY_NAME = "tiny-shakespeare"


def char_tokenizer_json(alphabet: str) -> str:
    """A `tokenizers` tokenizer with one token per character; unknown characters -> id 0."""
    from tokenizers import Tokenizer, decoders, models

    tk = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[], unk_token=alphabet[0]))
    tk.decoder = decoders.Fuse()
    return tk.to_str()


def tiny_files_config() -> dict:
    return json.loads((TINY_DIR / "config.json").read_text())


def load_tiny_float() -> tuple[LlamaConfig, dict[str, np.ndarray], str]:
    """(config, float32 weights, tokenizer JSON) of the shipped tiny model."""
    from safetensors.numpy import load_file

    from verimesh.models.gguf_import import check_weights

    meta = tiny_files_config()
    cfg = LlamaConfig.from_dict(meta["llama"])
    weights = load_file(str(TINY_DIR / "model.safetensors"))
    check_weights(cfg, weights, str(TINY_DIR / "model.safetensors"))
    return cfg, weights, char_tokenizer_json(meta["alphabet"])


@lru_cache(maxsize=1)
def tiny_bundle() -> ModelBundle:
    """The exact bundle of the tiny model (deterministic: same files -> same model root)."""
    from tokenizers import Tokenizer

    from verimesh.models.llama import quantize_llama

    cfg, weights, tokenizer_json = load_tiny_float()
    text = (TINY_DIR / "calibration.txt").read_text()
    ids = Tokenizer.from_str(tokenizer_json).encode(text, add_special_tokens=False).ids
    meta = tiny_files_config()
    extra = {
        "name": TINY_NAME,
        "source": {"format": "verimesh-tiny", "training": meta["training"]},
        "tokenizer": tokenizer_json,
        "chat_template": None,
        "chat_format": None,
    }
    return quantize_llama(cfg, weights, ids[: cfg.context_length], extra)
