"""Fixtures of the store tests: small chunks for speed, a controllable clock for LRU order."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from verimesh.store import BlobStore

SMALL_CHUNK = 64


class Clock:
    """Strictly increasing fake time, so "least recently used" is unambiguous in tests."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1)

    def __call__(self) -> float:
        return float(next(self._ticks))


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    with BlobStore(tmp_path / "blobs", chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        yield s
