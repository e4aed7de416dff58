"""Generic contract client: ABI-encoded calls through a ``Backend``, decoded events out.

The typed clients (``TokenClient``, ``RegistryClient``, ``JobMarketClient``) are thin
subclasses that give each contract function a typed Python method; everything that touches
bytes happens here once.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from eth_utils import is_address, to_checksum_address

from verimesh.chain.abi import ContractAbi, Event, RawLog
from verimesh.chain.accounts import Signer
from verimesh.chain.backends.base import Backend, Receipt
from verimesh.chain.compile import Artifact
from verimesh.chain.errors import ChainError

# Every contract client registers its ABI per backend, so a transaction's logs can be decoded
# even when another contract emitted them (JobMarket.post_job -> Token.Transfer).
_known_abis: weakref.WeakKeyDictionary[Backend, dict[str, ContractAbi]] = weakref.WeakKeyDictionary()


def checksum(address: str) -> str:
    """Validate an address and return its checksummed form, with an error that says why."""
    if not isinstance(address, str) or not is_address(address):
        raise ChainError(f"{address!r} is not an address: expected 0x followed by 40 hex digits")
    return to_checksum_address(address)


def decode_logs(backend: Backend, logs: Sequence[RawLog]) -> list[Event]:
    """Decode every log whose contract is known to a client on this backend; skip the rest."""
    known = _known_abis.get(backend, {})
    events = []
    for log in logs:
        abi = known.get(log.address)
        event = abi.decode_log(log) if abi else None
        if event is not None:
            events.append(event)
    return events


@dataclass(frozen=True)
class Tx:
    """A successful transaction with its decoded events."""

    receipt: Receipt
    events: tuple[Event, ...]

    @property
    def gas_used(self) -> int:
        return self.receipt.gas_used

    @property
    def block_number(self) -> int:
        return self.receipt.block_number

    def events_named(self, name: str, address: str | None = None) -> list[Event]:
        """Events called ``name``, optionally only those of the contract at ``address``
        (two contracts may use one name: Registry and JobMarket both emit ``Slashed``)."""
        return [e for e in self.events if e.name == name and (address is None or e.address == address)]

    def event(self, name: str, address: str | None = None) -> Event:
        """The first event called ``name``; an error if the transaction emitted none."""
        for e in self.events_named(name, address):
            return e
        emitted = ", ".join(e.name for e in self.events) or "none"
        raise ChainError(f"transaction emitted no {name} event (emitted: {emitted})")


class ContractClient:
    """One deployed contract on one backend, sending as ``signer`` by default."""

    def __init__(
        self, backend: Backend, address: str, abi: ContractAbi | list[dict], signer: Signer | None = None
    ) -> None:
        self.backend = backend
        self.address = checksum(address)
        self.abi = abi if isinstance(abi, ContractAbi) else ContractAbi(abi)
        self.signer = signer
        _known_abis.setdefault(backend, {})[self.address] = self.abi

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address})"

    @classmethod
    def deploy(
        cls, backend: Backend, signer: Signer, artifact: Artifact, *args: Any, gas: int | None = None
    ) -> tuple[Self, Tx]:
        """Deploy ``artifact`` with constructor ``args``; return the client and the deploy tx."""
        abi = ContractAbi(artifact.abi)
        receipt = backend.deploy(signer, artifact.bytecode + abi.encode_constructor(args), gas)
        assert receipt.contract_address is not None
        client = cls(backend, receipt.contract_address, abi, signer)
        return client, Tx(receipt, tuple(decode_logs(backend, receipt.logs)))

    def as_signer(self, signer: Signer) -> Self:
        """The same contract, sending as another account."""
        return type(self)(self.backend, self.address, self.abi, signer)

    def call(self, name: str, *args: Any) -> Any:
        """Read-only call of ``name``; structs come back as dicts."""
        fn = self.abi.function(name, len(args))
        sender = self.signer.address if self.signer else None
        data = self.backend.call(self.address, fn.encode(args), sender=sender, function=name)
        if not data and fn.outputs:
            raise ChainError(
                f"{name} returned nothing: no contract at {self.address} on this chain "
                "(a restarted devnet or a stale deployment.json?); run `verimesh devnet up` again"
            )
        return fn.decode_output(data)

    def transact(
        self, name: str, *args: Any, value: int = 0, gas: int | None = None, signer: Signer | None = None
    ) -> Tx:
        """Send ``name(*args)`` as a transaction; raises ``ContractRevert`` with the reason."""
        signer = signer or self.signer
        if signer is None:
            raise ChainError(f"{name} changes state and needs a signer: use .as_signer(account)")
        fn = self.abi.function(name, len(args))
        receipt = self.backend.transact(signer, self.address, fn.encode(args), value, gas, function=name)
        return Tx(receipt, tuple(decode_logs(self.backend, receipt.logs)))

    def get_events(self, name: str, from_block: int = 0, to_block: int | None = None) -> list[Event]:
        """Events ``name`` of this contract in ``[from_block, to_block]`` (None = latest)."""
        topic = self.abi.event(name).topic
        logs = self.backend.get_logs(self.address, from_block, to_block, topic0=[topic])
        return [e for e in (self.abi.decode_log(log) for log in logs) if e is not None]

    def get_all_events(self, from_block: int = 0, to_block: int | None = None) -> list[Event]:
        """Every event of this contract in the range, in chain order (for followers)."""
        logs = self.backend.get_logs(self.address, from_block, to_block)
        return [e for e in (self.abi.decode_log(log) for log in logs) if e is not None]
