"""Same bytes everywhere: thread counts, SIMD dispatch, BLAS kernels, fast vs reference.

Each configuration runs ``python -m verimesh.runtime.synthetic`` (a transformer-shaped op
graph plus BLAS-sized linears) in a fresh process, because thread counts and CPU feature
switches are read once, when numpy and OpenBLAS load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from numpy._core import _multiarray_umath as umath

# numpy refuses to start if asked to disable a baseline feature, so only the optional
# dispatch targets this CPU actually has (e.g. X86_V3 X86_V4 AVX512_ICL AVX512_SPR) go here.
OPTIONAL_SIMD = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]

CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "fast, 1 thread": ("fast", {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}),
    "fast, 2 threads": ("fast", {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}),
    "fast, 1 thread, no optional SIMD": (
        "fast",
        {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NPY_DISABLE_CPU_FEATURES": ",".join(OPTIONAL_SIMD)},
    ),
    "fast, 2 threads, no optional SIMD": (
        "fast",
        {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": ",".join(OPTIONAL_SIMD)},
    ),
    # OpenBLAS picks its kernels at load time; force the AVX2 (Haswell) and SSE3 (Prescott)
    # ones instead of the widest this CPU offers.
    "fast, 2 threads, Haswell BLAS kernels": ("fast", {"OPENBLAS_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"}),
    "fast, 1 thread, Prescott BLAS kernels": ("fast", {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Prescott"}),
    "reference path": ("reference", {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}),
    "fast, 1 thread, background hashing": ("fast background", {"OPENBLAS_NUM_THREADS": "1"}),
}

_ENV_KEYS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE",
             "OPENBLAS_VERBOSE")


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    procs = {}
    for name, (path, extra) in CONFIGS.items():
        env = {k: v for k, v in os.environ.items() if k not in _ENV_KEYS}
        env.update(extra)
        env["OPENBLAS_VERBOSE"] = "2"  # OpenBLAS names its kernel set on stderr
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "verimesh.runtime.synthetic", *path.split()],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name} failed:\n{stderr}"
        out[name] = json.loads(stdout) | {"stderr": stderr}
    return out


def test_every_configuration_gives_the_same_output_and_trace_root(results):
    first = results["fast, 1 thread"]
    assert first["ops"] > 300
    for name, got in results.items():
        assert got["output_hash"] == first["output_hash"], name
        assert got["trace_root"] == first["trace_root"], name


def test_the_configurations_really_differ(results):
    assert OPTIONAL_SIMD, "this CPU reports no optional SIMD target; the SIMD switch tests nothing"
    assert results["fast, 1 thread"]["simd_dispatch_enabled"] == OPTIONAL_SIMD
    assert results["fast, 1 thread, no optional SIMD"]["simd_dispatch_enabled"] == []
    assert "Core: Haswell" in results["fast, 2 threads, Haswell BLAS kernels"]["stderr"]
    assert "Core: Katmai" in results["fast, 1 thread, Prescott BLAS kernels"]["stderr"]  # Prescott's kernel set


@pytest.mark.slow  # imports and calibrates the model: ~10 s alone, minutes on a loaded machine
def test_real_minilm_fast_and_reference_paths_agree():
    """The same check on a real imported model: all-MiniLM-L6-v2 from its PyPI package."""
    import numpy as np

    from verimesh.models.minilm import BertModel, import_bert_folder, minilm_folder
    from verimesh.runtime import ExecutionContext

    model = BertModel(import_bert_folder(minilm_folder()))
    texts = ["The cat sat on the mat.", "Exact integer inference gives the same bytes everywhere."]
    fast, reference = ExecutionContext(), ExecutionContext(path="reference")
    np.testing.assert_array_equal(model.embed(texts, fast), model.embed(texts, reference))
    assert fast.trace_root == reference.trace_root
    assert fast.op_count > 100
