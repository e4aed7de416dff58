"""Fixtures of the validator tests: a real network on the in-process EVM with providers,
validators and a requester, and real traces of the shipped tiny decoder."""

from __future__ import annotations

import pytest
from validator_world import World

from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts


@pytest.fixture(scope="session")
def artifacts(pytestconfig: pytest.Config):
    return load_artifacts(names=CONTRACTS, cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("validator-home") / "models")
    return load_model("tiny-shakespeare", store=store)


@pytest.fixture(scope="session")
def tiny_job(tiny_model):
    from verimesh.verify.replay import JobRun

    return JobRun(tiny_model, "generate", "ROMEO:", {"max_tokens": 3})


@pytest.fixture(scope="session")
def honest_trace(tiny_job):
    return tiny_job.trace()


@pytest.fixture
def world(artifacts) -> World:
    return World(artifacts)
