"""all-MiniLM-L6-v2 in the exact runtime: quality against float, exactness, import errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from verimesh.models.bert_float import bert_embed
from verimesh.models.minilm import (
    DATA,
    BertImportError,
    BertModel,
    calibrate,
    calibration_sentences,
    embeddings_as_float,
    import_bert_folder,
    minilm_folder,
    quantize_bert,
    read_bert_folder,
)
from verimesh.models.registry import UnsupportedModelError
from verimesh.models.tokenizer import InputTooLongError
from verimesh.runtime import ExecutionContext, verify_record


@pytest.fixture(scope="module")
def source():
    return read_bert_folder(minilm_folder())


@pytest.fixture(scope="module")
def peaks(source):
    return calibrate(source, calibration_sentences())


@pytest.fixture(scope="module")
def model(source, peaks) -> BertModel:
    return BertModel(quantize_bert(source, peaks))


def eval_sentences() -> list[str]:
    return [s for s in (DATA / "minilm_eval_sentences.txt").read_text().splitlines() if s]


def test_exact_embeddings_match_float_model(model, source) -> None:
    sentences = eval_sentences()[::12]  # 25 of the 300 (the full set is in docs/models.md)
    exact = embeddings_as_float(model.embed(sentences, ExecutionContext(trace=False)))
    batch = model.tokenizer.encode_batch(sentences)
    ref = bert_embed(source.weights, source.shape, batch.ids, batch.mask)
    cosine = (exact * ref).sum(axis=1) / np.linalg.norm(exact, axis=1)
    assert cosine.min() >= 0.99, f"worst cosine {cosine.min():.4f}"


def test_embedding_is_unit_norm_int32(model) -> None:
    emb = model.embed(["A man is eating food."], ExecutionContext(trace=False))
    assert emb.dtype == np.int32 and emb.shape == (1, 384)
    assert abs(np.linalg.norm(embeddings_as_float(emb)) - 1.0) < 1e-3


def test_similar_sentences_are_closer(model) -> None:
    e = embeddings_as_float(
        model.embed(
            ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."],
            ExecutionContext(trace=False),
        )
    )
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3


def test_batch_does_not_change_a_sentences_bytes(model) -> None:
    texts = ["Short one.", "A much longer sentence, padded less than the short one in a batch."]
    together = model.embed(texts, ExecutionContext(trace=False))
    for i, text in enumerate(texts):
        alone = model.embed([text], ExecutionContext(trace=False))
        np.testing.assert_array_equal(alone[0], together[i])


def test_fast_and_reference_paths_agree_bit_for_bit(model) -> None:
    fast, ref = ExecutionContext(path="fast"), ExecutionContext(path="reference")
    a = model.embed(["A cat sat on the mat."], fast)
    b = model.embed(["A cat sat on the mat."], ref)
    np.testing.assert_array_equal(a, b)
    assert fast.trace_root == ref.trace_root


def test_every_op_of_the_trace_recomputes(model) -> None:
    ctx = ExecutionContext(keep_tensors=True)
    model.embed(["Referees recompute one op."], ctx)
    records = ctx.trace.records()
    assert len(records) == ctx.op_count > 100
    for record in records[:: max(1, len(records) // 12)]:
        assert verify_record(record)


def test_input_longer_than_context_is_refused(model) -> None:
    with pytest.raises(InputTooLongError, match="context is 512"):
        model.embed(["word " * 600], ExecutionContext(trace=False))


def test_quantisation_is_deterministic(source, peaks, model) -> None:
    again = quantize_bert(source, peaks)
    assert again.root() == model.bundle.root()


def test_the_import_gives_one_root_on_one_and_two_blas_threads() -> None:
    """Calibration is a float forward; BLAS sums it in an order set by its thread count.
    The committed bundle must not depend on it, or nodes that import "minilm" themselves
    would hold different models under one name."""
    import os
    import subprocess
    import sys

    child = "from verimesh.models.registry import bundled; print(bundled('minilm').build().root().hex())"
    roots = set()
    for n in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=n, OMP_NUM_THREADS=n)
        done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True)
        roots.add(done.stdout.strip())
    assert len(roots) == 1, roots


def _copy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "minilm"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(minilm_folder() / name, folder / name)
    return folder


def test_truncated_weights_give_clear_error(tmp_path) -> None:
    folder = _copy_folder(tmp_path)
    with open(minilm_folder() / "model.safetensors", "rb") as f:
        (folder / "model.safetensors").write_bytes(f.read(1_000_000))
    with pytest.raises(BertImportError, match="corrupt or truncated"):
        import_bert_folder(folder)


def test_missing_file_and_wrong_architecture(tmp_path) -> None:
    folder = _copy_folder(tmp_path)
    with pytest.raises(BertImportError, match=r"no model\.safetensors"):
        import_bert_folder(folder)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(UnsupportedModelError, match="'gpt2'"):
        import_bert_folder(folder)


def test_length_buckets_give_the_bytes_of_one_padded_batch(model) -> None:
    texts = eval_sentences()[:40]
    bucketed = model.embed(texts, ExecutionContext(trace=False))
    batch = model.tokenizer.encode_batch(texts)
    whole = model.forward(ExecutionContext(trace=False), batch.ids, batch.mask)
    np.testing.assert_array_equal(bucketed, whole)


def test_the_layer_layout_is_the_traces_and_resuming_runs_the_forwards_own_ops(model) -> None:
    """A forward is ``PREFIX_OPS``, ``LAYER_OPS`` per layer and ``HEAD_OPS``, each layer
    entered by a norm's output; ``resume`` from that output runs the very ops ``forward``
    runs from the layer's first op on (same op, params, inputs and output)."""
    from verimesh.runtime import recompute

    def ops(records):
        return [(r.op, r.params_json, r.input_hashes, r.output_hash) for r in records]

    batch = model.tokenizer.encode_batch(["A man is eating food.", "Two dogs run."])
    full = ExecutionContext(keep_tensors=True)
    out = model.forward(full, batch.ids, batch.mask)
    (leaves,) = full.trace.steps
    assert len(leaves) == model.PREFIX_OPS + model.layers * model.LAYER_OPS + model.HEAD_OPS == model.forward_ops()
    for layer in range(model.layers + 1):
        first = model.PREFIX_OPS + layer * model.LAYER_OPS
        assert leaves[first - 1].op == "layernorm"
        ctx = ExecutionContext()
        ctx.begin_step()
        assert np.array_equal(model.resume(ctx, recompute(leaves[first - 1]), layer, batch.mask), out)
        assert ops(ctx.trace.steps[0]) == ops(leaves[first:])
    with pytest.raises(ValueError, match="outside a model"):
        model.resume(ExecutionContext(), recompute(leaves[3]), model.layers + 1, batch.mask)
    with pytest.raises(ValueError, match="hidden state must be"):
        model.resume(ExecutionContext(), recompute(leaves[3]), 0, batch.mask[:1])
