"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from blob_peers import SMALL_CHUNK, Clock

from verimesh.store import BlobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BlobStore]:
    """A fresh store with small chunks and a fake clock."""
    with BlobStore(tmp_path / "blobs", chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        yield s
