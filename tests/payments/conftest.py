"""Fixtures of the payment tests (the deployed world is in ``payments_world``)."""

from __future__ import annotations

import pytest
from payments_world import PayWorld, deploy_world

from verimesh.chain.compile import ArtifactSet, load_artifacts


@pytest.fixture(scope="session")
def pay_world() -> PayWorld:
    return deploy_world()


@pytest.fixture(scope="session")
def payment_artifacts(pytestconfig: pytest.Config) -> ArtifactSet:
    """Compiled Token, AgentWallet, PaymentChannel, cached in pytest's cache dir."""
    return load_artifacts(
        names=["Token", "AgentWallet", "PaymentChannel"],
        cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"),
    )
