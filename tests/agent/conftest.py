"""Fixtures of the agent tests: a private VERIMESH_HOME with compiled contracts and the tiny
model (both cached in pytest's cache dir), an in-process chain, and a devnet with a node."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agent_net import AgentNet, agent_net_up, prepare_home

from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import ArtifactSet, load_artifacts


@pytest.fixture(scope="session")
def agent_artifacts(pytestconfig: pytest.Config) -> ArtifactSet:
    return load_artifacts(cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"), names=[*CONTRACTS, "AgentWallet"])


@pytest.fixture(scope="session")
def agent_home(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, agent_artifacts: ArtifactSet) -> dict:
    """A VERIMESH_HOME with the compiled contracts and tiny-shakespeare (set by ``devnet_node``)."""
    home = tmp_path_factory.mktemp("agent-home")
    roots = prepare_home(home, pytestconfig.cache.mkdir("verimesh-artifacts"), pytestconfig.cache.mkdir("verimesh-bundles"),
                         ["tiny-shakespeare"])  # fmt: skip
    return {"home": home, "roots": roots}


@pytest.fixture(scope="module")
def devnet_node(agent_home: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentNet]:
    """A real anvil devnet with the contracts and one real provider node holding
    tiny-shakespeare; VERIMESH_HOME points at ``agent_home`` for this module only."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIMESH_HOME", str(agent_home["home"]))
    try:
        with agent_net_up(tmp_path_factory.mktemp("agent-devnet"), agent_home["roots"]["tiny-shakespeare"]) as net:
            yield net
    finally:
        mp.undo()
