"""The cases of `verimesh bench runtime`: one function per model, each returning one row.

A case is ``fn(threads: int) -> dict`` with at least the fields ``model``, ``exact_s``,
``torch_s``, ``ratio``, ``trace_overhead`` (plus peak RSS and whatever else it measures).
Cases run in child processes of their own, so importing this module is cheap. Add a model
by adding one entry to ``BENCH_CASES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BenchCase = Callable[[int], dict[str, Any]]


def minilm(threads: int) -> dict[str, Any]:
    from verimesh.models.minilm_bench import run_encoder_bench

    return run_encoder_bench(threads=threads, batch=32)


def smollm2(threads: int) -> dict[str, Any]:
    from verimesh.models.llama_bench import run_decoder_bench

    return run_decoder_bench(model="smollm2", tokens=32, threads=threads)


BENCH_CASES: dict[str, BenchCase] = {
    "minilm": minilm,
    "smollm2": smollm2,
}
