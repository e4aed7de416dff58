"""The llama family through the model registry: `generate` jobs on the shipped tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from verimesh.models.llama import ContextLengthError
from verimesh.models.registry import UnsupportedModelError, architecture, bundled
from verimesh.runtime import ExecutionContext


@pytest.fixture(scope="module")
def tiny():
    arch = architecture("llama")
    entry = bundled("tiny-shakespeare")
    assert entry is not None and entry.architecture == "llama" and entry.source().is_file()
    return arch, arch.load(entry.build())


def test_generate_job_output_is_the_token_ids(tiny) -> None:
    arch, model = tiny
    ctx = ExecutionContext()
    out = arch.run(model, "generate", "HAMLET.\n", {"max_tokens": 8, "seed": 5}, ctx)
    assert out.tensor.dtype == np.int64 and out.tensor.tolist() == out.extra["tokens"]
    assert out.output == model.decode(out.extra["tokens"]) and len(out.tensor) == 8
    assert len(ctx.trace.step_roots) == 8
    again = arch.run(model, "generate", "HAMLET.\n", {"max_tokens": 8, "seed": 5}, ExecutionContext())
    assert np.array_equal(again.tensor, out.tensor)


def test_bad_params_and_tasks_are_refused(tiny) -> None:
    arch, model = tiny
    ctx = ExecutionContext(trace=False)
    with pytest.raises(UnsupportedModelError, match="generate"):
        arch.run(model, "embed", "x", {}, ctx)
    with pytest.raises(ValueError, match="max_tokens"):
        arch.run(model, "generate", "x", {"max_tokens": 0}, ctx)
    with pytest.raises(ValueError, match="seed"):
        arch.run(model, "generate", "x", {"seed": -1}, ctx)
    with pytest.raises(ValueError, match="unknown params"):
        arch.run(model, "generate", "x", {"temperature": 2}, ctx)
    with pytest.raises(ContextLengthError, match="context"):
        arch.run(model, "generate", "x" * 300, {"max_tokens": 1}, ctx)


def test_gguf_files_are_detected_by_suffix(tmp_path) -> None:
    arch = architecture("llama")
    assert arch.detects(tmp_path / "model.Q4_1.gguf")
    assert not arch.detects(tmp_path / "model.safetensors")
