"""Fixtures of the contract unit tests.

The contracts are deployed once per session (with three providers and two validators
registered). titanoboa's pytest plugin runs every test inside `boa.env.anchor()`, so a
test's state changes (and time travel) are rolled back afterwards: tests stay independent
and fast.
"""

from __future__ import annotations

import pytest
from contract_world import World, deploy


@pytest.fixture(scope="session")
def world() -> World:
    return deploy()
