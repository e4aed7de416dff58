"""Fixtures of the market tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from verimesh.chain import devnet
from verimesh.chain.deployment import Deployment


@pytest.fixture(scope="module")
def devnet_home(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[tuple[Path, Deployment]]:
    """A temporary VERIMESH_HOME with a devnet running from HOME/devnet (stopped at the end).
    Its contract cache is pytest's, shared with the other tests: compiling every contract
    again in each fresh home costs ~20 s of CPU."""
    path = tmp_path_factory.mktemp("home")
    (path / "artifacts").symlink_to(pytestconfig.cache.mkdir("verimesh-artifacts"), target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERIMESH_HOME", str(path))
        deployment = devnet.up(path / "devnet", devnet.free_port())
        try:
            yield path, deployment
        finally:
            devnet.down(path / "devnet")
