"""EIP-1271: accept signatures of contract wallets (AgentWallet, multisigs) like an account's.

A contract has no key; it answers ``isValidSignature(bytes32 digest, bytes signature)``
with the magic value ``0x1626ba7e`` when it considers the signature its own (AgentWallet:
its owner's or an active session key's). ``Eip1271SignatureChecker`` plugs into the
``Verifier(..., signature_checker=...)`` hook of ``verimesh.crypto.envelope`` and into the
paywall: it tries the cheap ECDSA recovery first (every plain account passes there, with no
chain access), and only then asks the chain.

This module sits below the chain layer, so it does not know how to reach a chain: it takes
a ``ContractReader`` (``verimesh.chain.agent_wallet.eip1271_checker(backend)`` builds one
from any backend). Why ECDSA first: an account's address is the hash of its public key, so
a valid ECDSA signature that recovers to a contract's address cannot be produced, and plain
accounts, the common case, cost no RPC round trip.
"""

from __future__ import annotations

from typing import Protocol

from eth_abi import encode
from eth_utils import keccak

from verimesh.crypto.envelope import ecdsa_signature_checker

# What a wallet returns for a valid signature: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
MAGIC_VALUE = bytes.fromhex("1626ba7e")
SELECTOR = bytes(keccak(text="isValidSignature(bytes32,bytes)"))[:4]


class ContractReader(Protocol):
    """A read-only call: return data, ``b""`` for an address without code, ``None`` if the
    call reverted. Connection failures raise (they must not look like a bad signature)."""

    def __call__(self, to: str, data: bytes) -> bytes | None: ...


def is_valid_signature_calldata(digest: bytes, signature: bytes) -> bytes:
    """Calldata of ``isValidSignature(digest, signature)``."""
    if len(digest) != 32:
        raise ValueError(f"an EIP-1271 digest is 32 bytes, got {len(digest)}")
    return SELECTOR + encode(["bytes32", "bytes"], [digest, signature])


def is_magic(return_data: bytes | None) -> bool:
    """Whether a wallet's answer means "valid": exactly the magic value, left-aligned."""
    return return_data is not None and len(return_data) == 32 and return_data[:4] == MAGIC_VALUE


class Eip1271SignatureChecker:
    """A ``SignatureChecker`` for accounts and contract wallets alike."""

    def __init__(self, read: ContractReader) -> None:
        self.read = read

    def __call__(self, signer: str, digest: bytes, signature: bytes) -> bool:
        if ecdsa_signature_checker(signer, digest, signature):
            return True
        return is_magic(self.read(signer, is_valid_signature_calldata(digest, signature)))
