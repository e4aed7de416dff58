"""Fixtures of the payment tests (the deployed world is in ``payments_world``)."""

from __future__ import annotations

import pytest
from payments_world import PayWorld, deploy_world


@pytest.fixture(scope="session")
def pay_world() -> PayWorld:
    return deploy_world()
