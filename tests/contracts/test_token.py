"""Token.vy: ERC-20 behaviour, minting and burning, and EIP-2612 permit signed by eth-account."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from contract_world import MAX, E, World, load, permit_signature
from eth_account import Account

SIGNER = Account.from_key(b"\x11" * 32)
ZERO = "0x0000000000000000000000000000000000000000"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def token(world: World) -> Any:
    return world.token


def test_metadata_and_minter(world: World, token: Any) -> None:
    assert token.name() == "Verimesh Test Token"
    assert token.symbol() == "VMT"
    assert token.decimals() == 18
    assert token.minter() == world.owner


def test_constructor_rejects_zero_minter() -> None:
    with boa.reverts("token: minter is the zero address"):
        load("Token.vy", "T", "T", 18, ZERO, fresh=True)


def test_transfer_moves_balance_and_conserves_supply(world: World, token: Any) -> None:
    supply = token.totalSupply()
    a, b = world.requester, world.outsider
    before_a, before_b = token.balanceOf(a), token.balanceOf(b)
    with boa.env.prank(a):
        assert token.transfer(b, 5 * E)
    assert token.balanceOf(a) == before_a - 5 * E
    assert token.balanceOf(b) == before_b + 5 * E
    assert token.totalSupply() == supply


def test_transfer_reverts(world: World, token: Any) -> None:
    with boa.env.prank(world.requester):
        with boa.reverts("token: transfer to the zero address"):
            token.transfer(ZERO, 1)
        with boa.reverts("token: transfer amount exceeds balance"):
            token.transfer(world.outsider, token.balanceOf(world.requester) + 1)


def test_approve_and_transfer_from(world: World, token: Any) -> None:
    owner, spender = world.outsider, world.challenger
    with boa.env.prank(owner):
        token.approve(spender, 7 * E)
    with boa.env.prank(spender):
        token.transferFrom(owner, spender, 3 * E)
        assert token.allowance(owner, spender) == 4 * E
        with boa.reverts("token: insufficient allowance"):
            token.transferFrom(owner, spender, 5 * E)


def test_infinite_allowance_is_not_decreased(world: World, token: Any) -> None:
    owner, spender = world.outsider, world.challenger
    with boa.env.prank(owner):
        token.approve(spender, MAX)
    with boa.env.prank(spender):
        token.transferFrom(owner, spender, 3 * E)
    assert token.allowance(owner, spender) == MAX


def test_approve_zero_address_reverts(world: World, token: Any) -> None:
    with boa.env.prank(world.outsider), boa.reverts("token: approve to the zero address"):
        token.approve(ZERO, 1)


def test_mint_and_burn(world: World, token: Any) -> None:
    supply = token.totalSupply()
    token.mint(world.outsider, 10 * E)
    assert token.totalSupply() == supply + 10 * E
    with boa.env.prank(world.outsider):
        token.burn(4 * E)
    assert token.totalSupply() == supply + 6 * E
    with boa.env.prank(world.outsider), boa.reverts("token: burn amount exceeds balance"):
        token.burn(token.balanceOf(world.outsider) + 1)


def test_mint_reverts(world: World, token: Any) -> None:
    with boa.env.prank(world.outsider), boa.reverts("token: caller is not the minter"):
        token.mint(world.outsider, 1)
    with boa.reverts("token: mint to the zero address"):
        token.mint(ZERO, 1)


def test_set_minter(world: World, token: Any) -> None:
    with boa.env.prank(world.outsider), boa.reverts("token: caller is not the minter"):
        token.set_minter(world.outsider)
    with boa.reverts("token: minter is the zero address"):
        token.set_minter(ZERO)
    token.set_minter(world.outsider)
    assert token.minter() == world.outsider
    with boa.reverts("token: caller is not the minter"):
        token.mint(world.owner, 1)


def test_permit_sets_allowance_once(world: World, token: Any) -> None:
    deadline = boa.env.timestamp + 3600
    v, r, s = permit_signature(token, SIGNER, world.challenger, 9 * E, deadline)
    with boa.env.prank(world.outsider):  # anyone may relay the signature
        token.permit(SIGNER.address, world.challenger, 9 * E, deadline, v, r, s)
    assert token.allowance(SIGNER.address, world.challenger) == 9 * E
    assert token.nonces(SIGNER.address) == 1
    with boa.reverts("token: invalid permit signature"):  # replay: the nonce moved on
        token.permit(SIGNER.address, world.challenger, 9 * E, deadline, v, r, s)


def test_permit_domain_separator_matches_eip712(token: Any) -> None:
    from eth_abi import encode
    from eth_utils import keccak

    expected = keccak(encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
         keccak(token.name().encode()), keccak(b"1"), boa.env.evm.patch.chain_id,
         str(token.address)],
    ))
    assert token.DOMAIN_SEPARATOR() == expected


def test_permit_reverts(world: World, token: Any) -> None:
    deadline = boa.env.timestamp + 3600
    v, r, s = permit_signature(token, SIGNER, world.challenger, 9 * E, deadline)
    with boa.reverts("token: permit expired"):
        token.permit(SIGNER.address, world.challenger, 9 * E, boa.env.timestamp - 1, v, r, s)
    with boa.reverts("token: invalid permit signature"):  # a different value was signed
        token.permit(SIGNER.address, world.challenger, 10 * E, deadline, v, r, s)
    with boa.reverts("token: invalid permit signature"):  # garbage: ecrecover gives 0x0
        token.permit(SIGNER.address, world.challenger, 9 * E, deadline, 27, b"\x00" * 32,
                     b"\x01" * 32)
    high_s = (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big")
    with boa.reverts("token: malleable signature"):
        token.permit(SIGNER.address, world.challenger, 9 * E, deadline, 55 - v, r, high_s)
    with boa.reverts("token: approve to the zero address"):
        v0, r0, s0 = permit_signature(token, SIGNER, ZERO, 1, deadline)
        token.permit(SIGNER.address, ZERO, 1, deadline, v0, r0, s0)
