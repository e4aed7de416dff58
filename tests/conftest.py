"""Suite-wide settings every test and every process a test starts inherits."""

from __future__ import annotations

import os

import pytest

from verimesh.paths import ARTIFACTS_ENV


def pytest_configure(config: pytest.Config) -> None:
    """One compiled-contract cache for the whole suite, in pytest's cache folder: tests give
    every node, CLI and devnet process its own temporary ``VERIMESH_HOME``, and each would
    otherwise compile the contracts again (~30 s of vyper per home)."""
    cache = getattr(config, "cache", None)
    if cache is not None and not os.environ.get(ARTIFACTS_ENV):
        os.environ[ARTIFACTS_ENV] = str(cache.mkdir("verimesh-artifacts"))
