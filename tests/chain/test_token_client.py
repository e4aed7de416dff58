"""TokenClient against the real Token.vy on the in-process EVM."""

from __future__ import annotations

import pytest

from verimesh.chain.accounts import Signer, dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import load_artifacts
from verimesh.chain.errors import ChainError, ContractRevert
from verimesh.chain.token import TokenClient

VMT = 10**18


@pytest.fixture
def token(artifact_cache):
    artifact = load_artifacts(cache_dir=artifact_cache, names=["Token"])["Token"]
    minter = dev_signer(0)
    client, _ = TokenClient.deploy(BoaBackend(), minter, artifact, "verimesh test", "VMT", 18, minter.address)
    return client


def test_metadata(token):
    assert (token.name(), token.symbol(), token.decimals()) == ("verimesh test", "VMT", 18)
    assert token.minter() == dev_signer(0).address


def test_mint_transfer_and_allowance(token):
    alice, bob = dev_signer(1), dev_signer(2)
    tx = token.mint(alice.address, 100 * VMT)
    assert tx.event("Transfer").args["value"] == 100 * VMT
    token.transfer(bob.address, 30 * VMT, signer=alice)
    assert token.balance_of(alice.address) == 70 * VMT
    assert token.balance_of(bob.address) == 30 * VMT
    token.approve(bob.address, 5 * VMT, signer=alice)
    assert token.allowance(alice.address, bob.address) == 5 * VMT
    token.transfer_from(alice.address, bob.address, 5 * VMT, signer=bob)
    assert token.balance_of(bob.address) == 35 * VMT
    assert token.total_supply() == 100 * VMT


def test_reverts_carry_the_contract_reason(token):
    alice = dev_signer(1)
    with pytest.raises(ContractRevert, match="token: caller is not the minter"):
        token.mint(alice.address, 1, signer=alice)
    with pytest.raises(ContractRevert, match="token: transfer amount exceeds balance"):
        token.transfer(dev_signer(2).address, 1, signer=alice)


def test_malformed_address_is_refused_before_sending(token):
    with pytest.raises(ChainError, match="is not an address"):
        token.balance_of("0x1234")


def test_permit_sets_allowance_from_a_signature(token):
    owner = Signer.random()
    spender = dev_signer(3)
    deadline = token.backend.timestamp() + 3600
    v, r, s = token.permit_signature(owner, spender.address, 7, deadline)
    token.permit(owner.address, spender.address, 7, deadline, v, r, s, signer=Signer.random())
    assert token.allowance(owner.address, spender.address) == 7
    assert token.nonces(owner.address) == 1
    with pytest.raises(ContractRevert, match="token: invalid permit signature"):  # replayed
        token.permit(owner.address, spender.address, 7, deadline, v, r, s, signer=Signer.random())
