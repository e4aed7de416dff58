"""Suite-wide settings every test and every process a test starts inherits."""

from __future__ import annotations

import os

import pytest

# One BLAS thread per test process, set before anything imports numpy: the suite runs one
# pytest worker per core, and OpenBLAS threads that spin-wait for a core another worker
# holds made float-heavy tests (model import, calibration, float references) up to ten
# times slower. Tests of thread counts set their own (tests/runtime/test_determinism.py).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from verimesh.paths import ARTIFACTS_ENV  # noqa: E402  (after the BLAS settings)


def pytest_configure(config: pytest.Config) -> None:
    """One compiled-contract cache for the whole suite, in pytest's cache folder: tests give
    every node, CLI and devnet process its own temporary ``VERIMESH_HOME``, and each would
    otherwise compile the contracts again (~30 s of vyper per home)."""
    cache = getattr(config, "cache", None)
    if cache is not None and not os.environ.get(ARTIFACTS_ENV):
        os.environ[ARTIFACTS_ENV] = str(cache.mkdir("verimesh-artifacts"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding ``slow`` tests run first (whole files, so module fixtures are set up
    once), the rest in collection order: with ``--dist worksteal`` (Makefile) the workers
    then share out the short tests at the end instead of one worker starting a multi-minute
    test while the other runs out of work."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)
