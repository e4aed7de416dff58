"""RegistryClient against the real Registry.vy on the in-process EVM."""

from __future__ import annotations

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import load_artifacts
from verimesh.chain.errors import ContractRevert
from verimesh.chain.registry import RegistryClient, Role
from verimesh.chain.token import TokenClient

VMT = 10**18
DELAY = 600
CAPS = b"\x11" * 32


@pytest.fixture
def chain(artifact_cache):
    arts = load_artifacts(cache_dir=artifact_cache, names=["Token", "Registry"])
    backend = BoaBackend()
    owner = dev_signer(0)
    token, _ = TokenClient.deploy(backend, owner, arts["Token"], "VMT", "VMT", 18, owner.address)
    registry, _ = RegistryClient.deploy(backend, owner, arts["Registry"], token.address, 50 * VMT, 100 * VMT, DELAY)
    provider = dev_signer(1)
    token.mint(provider.address, 1_000 * VMT)
    token.approve(registry.address, 1_000 * VMT, signer=provider)
    return token, registry.as_signer(provider), provider


def test_register_and_read_member(chain):
    token, registry, provider = chain
    tx = registry.register(Role.PROVIDER, 60 * VMT, "http://127.0.0.1:9000", CAPS, 3 * VMT)
    assert tx.event("Registered")["endpoint"] == "http://127.0.0.1:9000"
    assert {e.name for e in tx.events} >= {"Registered", "Transfer"}  # Token's event decoded too
    member = registry.members(provider.address)
    assert member.role is Role.PROVIDER
    assert (member.stake, member.locked, member.free, member.price) == (60 * VMT, 0, 60 * VMT, 3 * VMT)
    assert member.capabilities == CAPS and member.active
    assert registry.providers() == [provider.address]
    assert registry.free_stake(provider.address) == 60 * VMT
    assert token.balance_of(registry.address) == 60 * VMT


def test_unbond_waits_for_the_delay(chain):
    token, registry, provider = chain
    registry.register(Role.PROVIDER, 80 * VMT, "http://p", CAPS, 1)
    registry.request_unbond(30 * VMT)
    with pytest.raises(ContractRevert, match="registry: "):
        registry.withdraw()
    registry.backend.advance_time(DELAY + 1)
    registry.withdraw()
    assert token.balance_of(provider.address) == (1_000 - 50) * VMT
    assert [e["amount"] for e in registry.get_events("Withdrawn")] == [30 * VMT]


def test_stake_below_minimum_is_refused_and_nothing_moves(chain):
    token, registry, provider = chain
    with pytest.raises(ContractRevert, match="registry: "):
        registry.register(Role.PROVIDER, 10 * VMT, "http://p", CAPS, 1)
    assert token.balance_of(provider.address) == 1_000 * VMT
    assert registry.members(provider.address).role is Role.NONE
