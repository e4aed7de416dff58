"""Fixtures of the adversary zoo: one devnet per module, the tiny model, a requester, the
referee, and an honest provider node that every cheat is replicated against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from zoo_world import Referee, ValidatorNode, Zoo, ZooNode, dev_wallet

from verimesh.chain import devnet
from verimesh.chain.devnet import free_port
from verimesh.client import Client

# dev0 deploys, dev1 requests, dev2 is the honest provider, dev3 the cheat; validators:
VALIDATORS = ("dev4", "dev5", "dev6")


@pytest.fixture(scope="module")
def zoo_chain(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Zoo]:
    """Devnet, tiny model, requester and referee; no provider yet."""
    from verimesh.chain.client import CONTRACTS
    from verimesh.chain.compile import load_artifacts
    from verimesh.models.api import import_model
    from verimesh.models.store import ModelStore

    tmp = tmp_path_factory.mktemp("zoo")
    # Compiled contracts are cached across runs (pytest's cache dir), keyed by their sources.
    artifacts = pytestconfig.cache.mkdir("verimesh-artifacts")
    load_artifacts(names=CONTRACTS, cache_dir=artifacts)
    (tmp / "home").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIMESH_HOME", str(tmp / "home"))  # the nodes' and the referee's model store
    root = "0x" + import_model("tiny-shakespeare", ModelStore(tmp / "home" / "models")).hex()
    state = tmp / "devnet"
    devnet.up(state, port=free_port())
    client = None
    try:
        client = Client(state / "deployment.json", dev_wallet(state, "dev1"))
        yield Zoo(tmp, state, root, client, Referee(client, dev_wallet(state, "dev0")), None)
    finally:
        if client is not None:
            client.close()
        devnet.down(state)
        mp.undo()


@pytest.fixture(scope="module")
def pool(zoo_chain: Zoo) -> Iterator[list[ValidatorNode]]:
    """Honest validators the chain draws committees (and auditors) from; none when a plain
    referee key decides disputes."""
    started = []
    try:
        if zoo_chain.referee.committee:
            for i, account in enumerate(VALIDATORS):
                started.append(ValidatorNode(zoo_chain.state, zoo_chain.tmp / f"validator-{i}", account))
        yield started
    finally:
        for validator in started:
            validator.close()


@pytest.fixture(scope="module")
def zoo(zoo_chain: Zoo, pool: list[ValidatorNode]) -> Iterator[Zoo]:
    """The zoo with an honest provider node (dev2) that every cheat is replicated against."""
    honest = ZooNode(zoo_chain.state, zoo_chain.tmp / "honest", "dev2")
    try:
        yield Zoo(zoo_chain.tmp, zoo_chain.state, zoo_chain.model_root, zoo_chain.client, zoo_chain.referee, honest,
                  pool)
    finally:
        honest.close()
