"""The contract between the typed clients and an EVM.

A backend moves raw bytes (calldata in, return data / logs out) and nothing else: ABI
encoding lives in ``verimesh.chain.abi``, so the in-process EVM and a JSON-RPC node produce
identical results for the same calls. Every revert surfaces as ``ContractRevert`` with the
contract's reason, on every backend.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from verimesh.chain.abi import RawLog
from verimesh.chain.accounts import Signer


@dataclass(frozen=True)
class Receipt:
    """A mined, successful transaction."""

    tx_hash: bytes
    block_number: int
    gas_used: int  # as the chain charges it: intrinsic + execution - refunds
    logs: tuple[RawLog, ...]
    contract_address: str | None = None  # set for deployments


class Backend(ABC):
    """An EVM that executes transactions from ``Signer``s."""

    chain_id: int

    @abstractmethod
    def deploy(self, sender: Signer, initcode: bytes, gas: int | None = None) -> Receipt:
        """Create a contract; ``receipt.contract_address`` is its address."""

    @abstractmethod
    def transact(
        self,
        sender: Signer,
        to: str,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
        function: str | None = None,
    ) -> Receipt:
        """Send a state-changing call; raise ``ContractRevert`` (naming ``function``) on revert."""

    @abstractmethod
    def call(self, to: str, data: bytes, sender: str | None = None, function: str | None = None) -> bytes:
        """Run a read-only call against the latest state and return its return data."""

    @abstractmethod
    def get_logs(
        self,
        address: str | Sequence[str],
        from_block: int = 0,
        to_block: int | None = None,
        topic0: Sequence[bytes] | None = None,
    ) -> list[RawLog]:
        """Logs of ``address`` in ``[from_block, to_block]`` (None = latest), in chain order."""

    @abstractmethod
    def block_number(self) -> int: ...

    @abstractmethod
    def timestamp(self) -> int:
        """Timestamp of the latest block: what ``block.timestamp`` means for the next call."""

    def now(self) -> int:
        """Best estimate of the timestamp the next block will carry: what a deadline check
        in the next transaction will see. A devnet that mines on demand keeps an old latest
        block, and the next one takes the wall clock; never earlier than the latest block."""
        return max(self.timestamp(), int(time.time()))

    @abstractmethod
    def advance_time(self, seconds: int) -> None:
        """Move chain time forward by ``seconds`` and mine a block (devnets and tests only)."""

    @abstractmethod
    def eth_balance(self, address: str) -> int: ...
