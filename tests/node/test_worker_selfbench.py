"""The self-benchmark: measured in the capped worker, cached per machine and runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from verimesh.node.config import ResourceCaps
from verimesh.node.selfbench import CACHE_NAME, SelfBench, load_cached, self_benchmark


def test_measures_once_then_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))  # the tiny model's store
    caps = ResourceCaps(cores=1, memory_mb=1024, nice=0)
    bench = self_benchmark(tmp_path, caps)
    assert bench.matmul_gmacs > 0 and bench.matmul_seconds > 0 and bench.cores == 1
    assert bench.matmul_shape == [256, 1024, 1024]
    advertised = bench.advertised()
    assert advertised["matmul_int8_gmacs"] == bench.matmul_gmacs and advertised["cores"] == 1
    if bench.model is not None:  # the models API and the tiny decoder are installed
        assert advertised["tiny_decoder_tokens_per_second"] == bench.model["tokens_per_second"] > 0

    on_disk = SelfBench.model_validate_json((tmp_path / CACHE_NAME).read_text())
    assert on_disk == bench
    assert self_benchmark(tmp_path, caps) == bench  # cached: same figures, same timestamp
    assert load_cached(tmp_path) == bench


def test_other_caps_or_a_damaged_cache_measure_again(tmp_path: Path) -> None:
    (tmp_path / CACHE_NAME).write_text("{not json")
    assert load_cached(tmp_path) is None
    one = self_benchmark(tmp_path, ResourceCaps(cores=1, memory_mb=1024, nice=0))
    assert (
        load_cached(tmp_path, ResourceCaps(cores=2, memory_mb=1024, nice=0)) is None
    )  # another key
    two = self_benchmark(tmp_path, ResourceCaps(cores=2, memory_mb=1024, nice=0))
    assert two.key != one.key and two.cores == 2
