"""Shared fixtures of the chain tests.

- compiled artifacts in pytest's cache dir (never the user's ~/.verimesh);
- one real anvil node per test session (per xdist worker), on a free port of 127.0.0.1,
  stopped when the session ends;
- ``backend``: the same test body runs on the in-process EVM and over JSON-RPC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from verimesh.chain.backends.base import Backend
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.compile import ArtifactSet, load_artifacts
from verimesh.chain.devnet import AnvilNode, start_anvil

PROBE_DIR = Path(__file__).parent / "contracts"
# Explicit gas limit: the devnet then needs no eth_estimateGas round trip per transaction.
DEVNET_GAS_LIMIT = 5_000_000


@pytest.fixture(scope="session")
def artifact_cache(pytestconfig: pytest.Config) -> Path:
    """pytest's own cache dir: survives between runs (compiling takes seconds) and is keyed
    by the sources' sha256, so a changed contract is still recompiled."""
    return pytestconfig.cache.mkdir("verimesh-artifacts")


@pytest.fixture(scope="session")
def probe_artifacts(artifact_cache: Path) -> ArtifactSet:
    return load_artifacts(PROBE_DIR, artifact_cache)


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    node = start_anvil(log_path=log)
    yield node
    node.stop()


def _make_backend(kind: str, request: pytest.FixtureRequest) -> Backend:
    if kind == "boa":
        return BoaBackend()
    node: AnvilNode = request.getfixturevalue("anvil")
    return RpcBackend(node.url, gas_limit=DEVNET_GAS_LIMIT)


@pytest.fixture(params=["boa", pytest.param("rpc", marks=pytest.mark.devnet)])
def backend(request: pytest.FixtureRequest) -> Backend:
    return _make_backend(request.param, request)
