"""Measure what this device can do, once per machine and runtime version.

A provider advertises capability in ``/v1/info`` and (hashed) on chain; requesters pick
providers by it. Guessed numbers (core counts, clock speeds) say little about a laptop
that thermally throttles or a VM on a shared host, so the node measures at start, in its
own capped worker (the same cores and memory cap its jobs get):

- exact int8 matrix products through the runtime's ``matmul_exact`` (the hot loop of every
  model), reported as giga multiply-accumulates per second;
- a real job on the shipped tiny decoder (``tiny-shakespeare``) when the models API and
  the model are available: seconds and tokens per second of ``generate``.

The figures are cached in ``<home>/selfbench.json`` under a key of machine (CPU model,
cores cap) and software (runtime version, numpy) so a restart costs nothing, and a new CPU
or runtime re-measures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import platform
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from verimesh.benchinfo import cpu_name
from verimesh.node.config import ResourceCaps
from verimesh.node.worker import Worker, WorkerError

CACHE_NAME = "selfbench.json"
MATMUL_SHAPE = (256, 1024, 1024)  # (m, k, n): one BERT-base-sized linear layer on 256 tokens
TINY_MODEL = "tiny-shakespeare"
TINY_TOKENS = 24


class SelfBench(BaseModel):
    """Measured figures; ``advertised()`` is what the node publishes."""

    key: str
    cpu: str
    cores: int
    runtime_version: str
    measured_at: str
    matmul_shape: list[int]
    matmul_seconds: float  # best of the repetitions
    matmul_gmacs: float  # 1e9 multiply-accumulates per second, exact int8
    model: dict[str, Any] | None = None  # the tiny decoder job, when it could run here
    took_seconds: float  # how long the whole self-benchmark took

    def advertised(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "cores": self.cores,
            "matmul_int8_gmacs": self.matmul_gmacs,
            "measured_at": self.measured_at,
        }
        if self.model is not None:
            figures["tiny_decoder_tokens_per_second"] = self.model["tokens_per_second"]
        return figures


def cache_key(caps: ResourceCaps) -> str:
    import numpy

    from verimesh.node.jobs import RUNTIME_VERSION

    parts = [
        cpu_name(),
        platform.machine(),
        f"cores={caps.cores}",
        RUNTIME_VERSION,
        numpy.__version__,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def load_cached(home: Path, caps: ResourceCaps | None = None) -> SelfBench | None:
    """The cached figures for this machine (any caps when ``caps`` is None), or None."""
    path = home / CACHE_NAME
    if not path.is_file():
        return None
    try:
        bench = SelfBench.model_validate_json(path.read_text())
    except ValueError:
        return None  # an older or damaged cache: measure again
    if caps is not None and bench.key != cache_key(caps):
        return None
    return bench


def self_benchmark(home: Path, caps: ResourceCaps, refresh: bool = False) -> SelfBench:
    """Cached figures if this machine and runtime were measured before, else measure now."""
    cached = None if refresh else load_cached(home, caps)
    if cached is not None:
        return cached
    started = time.perf_counter()
    # The caps' cores and memory, but normal priority: jobs only ever run while the device is
    # idle, so the figure to advertise is the idle machine's, not what is left of a busy one.
    m, k, n = MATMUL_SHAPE
    model = None
    with Worker(caps.model_copy(update={"nice": 0})) as worker:
        mat = worker.call(
            "verimesh.node.selfbench:matmul_entry", {"m": m, "k": k, "n": n, "reps": 3}
        ).fields
        # No models API or no tiny model here: advertise only what was measured.
        with contextlib.suppress(WorkerError):
            model = worker.call(
                "verimesh.node.selfbench:tiny_model_entry", {"max_tokens": TINY_TOKENS}
            ).fields
    from verimesh.node.jobs import RUNTIME_VERSION

    bench = SelfBench(
        key=cache_key(caps),
        cpu=cpu_name(),
        cores=caps.cores,
        runtime_version=RUNTIME_VERSION,
        measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        matmul_shape=[m, k, n],
        matmul_seconds=mat["seconds"],
        matmul_gmacs=mat["gmacs"],
        model=model,
        took_seconds=round(time.perf_counter() - started, 2),
    )
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / (CACHE_NAME + ".tmp")
    tmp.write_text(bench.model_dump_json(indent=2))
    tmp.replace(home / CACHE_NAME)
    return bench


# -- worker entries (run in the capped child) ---------------------------------------------------
def matmul_entry(payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Exact int8 products of fixed pseudo-random matrices; best time of ``reps``.

    Also the worker's own test load: ``product_hash`` is the same on every run, paused or not.
    """
    import numpy as np

    from verimesh.runtime.matmul import matmul_exact
    from verimesh.runtime.tensor import tensor_hash

    m, k, n, reps = (int(payload[x]) for x in ("m", "k", "n", "reps"))
    rng = np.random.default_rng(int(payload.get("seed", 7)))
    a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    best = float("inf")
    digest = hashlib.sha256()
    for _ in range(reps):
        start = time.perf_counter()
        product = matmul_exact(a, b)
        best = min(best, time.perf_counter() - start)
        digest.update(tensor_hash(product))
    fields = {
        "seconds": round(best, 5),
        "gmacs": round(m * k * n / best / 1e9, 2),
        "product_hash": digest.hexdigest(),
    }
    return fields, b""


def tiny_model_entry(payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Time a real ``generate`` job on the shipped tiny decoder."""
    from verimesh.models import api

    max_tokens = int(payload["max_tokens"])
    model = api.load_model(TINY_MODEL)
    start = time.perf_counter()
    result = api.run_job(model, "generate", "ROMEO:", {"max_tokens": max_tokens, "seed": 1})
    seconds = time.perf_counter() - start
    generated = len(result.extra.get("tokens") or [])
    if generated == 0:
        raise ValueError("the tiny decoder generated no tokens: nothing to time")
    fields = {
        "model": TINY_MODEL,
        "task": "generate",
        "tokens": generated,
        "seconds": round(seconds, 4),
        "tokens_per_second": round(generated / seconds, 1),
        "output_root": result.output_root,
    }
    return fields, b""
