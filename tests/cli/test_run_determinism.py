"""`verimesh run` on real MiniLM gives the same output and trace roots in every process
configuration: thread counts, numpy SIMD dispatch on/off, OpenBLAS kernel sets.

Each configuration is a fresh `verimesh run --json` process (thread counts and CPU feature
switches are read once, when numpy and OpenBLAS load), all reading one store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numpy._core import _multiarray_umath as umath

from verimesh.models.api import import_model
from verimesh.models.store import ModelStore

OPTIONAL_SIMD = ",".join(f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f))
CONFIGS = {
    "1 thread": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "2 threads, no optional SIMD": {
        "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": OPTIONAL_SIMD,
    },
    "2 threads, Haswell BLAS kernels": {"OPENBLAS_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"},
}
TEXT = "Two honest devices must get the very same bytes for the same job."


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    import_model("minilm", ModelStore(home / "models"))
    return home


def _run(home: Path, env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES",
                        "OPENBLAS_CORETYPE")}
    env.update(env_extra, VERIMESH_HOME=str(home))
    cmd = [sys.executable, "-m", "verimesh.cli.main", "run", "-m", "minilm", "-t", "embed",
           "-i", TEXT, "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_same_roots_in_every_configuration(home) -> None:
    results = {name: _run(home, env) for name, env in CONFIGS.items()}
    roots = {(r["output_root"], r["trace_root"], r["model_root"]) for r in results.values()}
    assert len(roots) == 1, json.dumps({k: v["output_root"] for k, v in results.items()})
