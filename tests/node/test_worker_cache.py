"""The worker child's model cache: least recently used models go once their bytes pass the budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verimesh.node.worker import ModelCache, array_bytes


@dataclass(frozen=True)
class Layer:
    weight: np.ndarray
    bias: np.ndarray


class Model:
    def __init__(self, mb: int) -> None:
        weights = np.zeros(mb << 20, dtype=np.uint8)
        self.layers = [Layer(weights[: mb << 19], weights[mb << 19 :]), {"table": np.ones(256)}]
        self.same_buffer_again = weights.reshape(-1, 1024)  # a view: counted once
        self.name = "model"


def test_array_bytes_counts_each_buffer_once() -> None:
    assert array_bytes(Model(3)) == (3 << 20) + 256 * 8
    assert array_bytes({"a": [1, "x", None]}) == 0


def test_least_recently_used_models_go_when_over_budget() -> None:
    cache = ModelCache(budget_bytes=10 << 20)
    cache["a"] = Model(4)
    cache["b"] = Model(4)
    assert list(cache) == ["a", "b"] and cache.loads == 2
    assert "a" in cache and cache["a"] is not None  # a use: "a" is now the most recent
    cache["c"] = Model(4)  # 12 MB > 10 MB: the least recently used ("b") goes
    assert list(cache) == ["a", "c"]
    assert cache.total_bytes == 2 * ((4 << 20) + 2048)
    cache["big"] = Model(20)  # alone over budget: it stays (the next job likely needs it)
    assert list(cache) == ["big"] and cache.loads == 4
    del cache["big"]
    assert cache.total_bytes == 0 and not cache
