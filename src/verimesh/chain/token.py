"""Typed client of Token.vy: ERC-20 + EIP-2612 permit, the mintable "VMT" on devnets."""

from __future__ import annotations

from verimesh.chain.accounts import Signer
from verimesh.chain.contract import ContractClient, Tx, checksum
from verimesh.crypto.eip712 import DOMAIN_FIELDS


class TokenClient(ContractClient):
    """Amounts are base units (18 decimals): ``10**18`` is one VMT."""

    # -- views -------------------------------------------------------------------------
    def name(self) -> str:
        return self.call("name")

    def symbol(self) -> str:
        return self.call("symbol")

    def decimals(self) -> int:
        return self.call("decimals")

    def total_supply(self) -> int:
        return self.call("totalSupply")

    def balance_of(self, account: str) -> int:
        return self.call("balanceOf", checksum(account))

    def allowance(self, owner: str, spender: str) -> int:
        return self.call("allowance", checksum(owner), checksum(spender))

    def nonces(self, owner: str) -> int:
        return self.call("nonces", checksum(owner))

    def domain_separator(self) -> bytes:
        return self.call("DOMAIN_SEPARATOR")

    def minter(self) -> str:
        return self.call("minter")

    # -- transactions --------------------------------------------------------------------
    def transfer(self, to: str, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("transfer", checksum(to), amount, signer=signer)

    def transfer_from(self, owner: str, to: str, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("transferFrom", checksum(owner), checksum(to), amount, signer=signer)

    def approve(self, spender: str, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("approve", checksum(spender), amount, signer=signer)

    def permit(
        self,
        owner: str,
        spender: str,
        value: int,
        deadline: int,
        v: int,
        r: bytes,
        s: bytes,
        *,
        signer: Signer | None = None,
    ) -> Tx:
        """Set an allowance from an off-chain EIP-2612 signature; anyone may submit it."""
        return self.transact(
            "permit", checksum(owner), checksum(spender), value, deadline, v, r, s, signer=signer
        )

    def permit_signature(
        self, owner: Signer, spender: str, value: int, deadline: int
    ) -> tuple[int, bytes, bytes]:
        """``owner``'s EIP-2612 signature ``(v, r, s)`` allowing ``spender`` to move ``value``
        until ``deadline``: an approval that costs the owner no transaction (and no ETH)."""
        message = {
            "types": {
                "EIP712Domain": list(DOMAIN_FIELDS),
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {
                "name": self.name(),
                "version": "1",
                "chainId": self.backend.chain_id,
                "verifyingContract": self.address,
            },
            "message": {
                "owner": owner.address,
                "spender": checksum(spender),
                "value": value,
                "nonce": self.nonces(owner.address),
                "deadline": deadline,
            },
        }
        return owner.sign_typed_data(message)

    def mint(self, to: str, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("mint", checksum(to), amount, signer=signer)

    def burn(self, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("burn", amount, signer=signer)

    def set_minter(self, new_minter: str, *, signer: Signer | None = None) -> Tx:
        return self.transact("set_minter", checksum(new_minter), signer=signer)
