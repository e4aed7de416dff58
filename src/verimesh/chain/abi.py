"""Encode calls and decode results, events and revert reasons from a contract's JSON ABI.

Both backends move raw bytes only; this module is the single place where Python values
become calldata and logs become named events, so the two backends cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from verimesh.chain.errors import ChainError

_ERROR_SELECTOR = keccak(text="Error(string)")[:4]
_PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]


def abi_type(param: dict) -> str:
    """Canonical type string of one ABI parameter; structs become tuples ``(t1,t2)``."""
    typ = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){typ[len('tuple'):]}"
    return typ


def _to_python(param: dict, value: Any) -> Any:
    """Decoded value -> plain Python: structs become dicts, arrays lists, addresses checksummed."""
    typ = param["type"]
    if typ.endswith("]"):
        item = {**param, "type": typ[: typ.rindex("[")]}
        return [_to_python(item, v) for v in value]
    if typ == "tuple":
        return {c["name"]: _to_python(c, v) for c, v in zip(param["components"], value, strict=True)}
    if typ == "address":
        return to_checksum_address(value)
    return value


@dataclass(frozen=True)
class Function:
    name: str
    inputs: list[dict]
    outputs: list[dict]
    mutability: str

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(abi_type(p) for p in self.inputs)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]

    @property
    def is_view(self) -> bool:
        return self.mutability in ("view", "pure")

    def encode(self, args: tuple) -> bytes:
        types = [abi_type(p) for p in self.inputs]
        try:
            return self.selector + encode(types, list(args))
        except Exception as exc:  # eth_abi raises several unrelated types for bad input
            raise ChainError(
                f"bad arguments for {self.signature}: {exc}; pass Python ints, bytes, str and "
                "0x-prefixed addresses matching the ABI types"
            ) from exc

    def decode_output(self, data: bytes) -> Any:
        """Return value: one value as itself, several as a tuple, structs as dicts."""
        values = decode([abi_type(p) for p in self.outputs], data)
        out = [_to_python(p, v) for p, v in zip(self.outputs, values, strict=True)]
        if not out:
            return None
        return out[0] if len(out) == 1 else tuple(out)


@dataclass(frozen=True)
class RawLog:
    """A log as both backends report it, before decoding."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class Event:
    """A decoded contract event. ``args`` maps field names to Python values."""

    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    tx_hash: bytes
    log_index: int

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


@dataclass(frozen=True)
class EventType:
    name: str
    inputs: list[dict]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(abi_type(p) for p in self.inputs)})"

    @property
    def topic(self) -> bytes:
        return keccak(text=self.signature)

    def decode(self, log: RawLog) -> Event:
        indexed = [p for p in self.inputs if p.get("indexed")]
        plain = [p for p in self.inputs if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, log.topics[1:], strict=True):
            typ = abi_type(param)
            # Indexed dynamic values are stored as their keccak hash: keep the hash.
            dynamic = typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("(")
            args[param["name"]] = topic if dynamic else _to_python(param, decode([typ], topic)[0])
        values = decode([abi_type(p) for p in plain], log.data)
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = _to_python(param, value)
        ordered = {p["name"]: args[p["name"]] for p in self.inputs}
        return Event(self.name, ordered, log.address, log.block_number, log.tx_hash, log.log_index)


class ContractAbi:
    """Lookup tables over one contract's ABI."""

    def __init__(self, abi: list[dict]) -> None:
        self.abi = abi
        self._functions: dict[str, list[Function]] = {}
        self.events: dict[str, EventType] = {}
        self._events_by_topic: dict[bytes, EventType] = {}
        self.constructor_inputs: list[dict] = []
        for item in abi:
            kind = item.get("type")
            if kind == "function":
                fn = Function(item["name"], item["inputs"], item["outputs"], item["stateMutability"])
                self._functions.setdefault(fn.name, []).append(fn)
            elif kind == "event":
                ev = EventType(item["name"], item["inputs"])
                self.events[ev.name] = ev
                self._events_by_topic[ev.topic] = ev
            elif kind == "constructor":
                self.constructor_inputs = item["inputs"]

    def function(self, name: str, n_args: int) -> Function:
        """The function ``name`` taking ``n_args`` arguments (Vyper default args = overloads)."""
        candidates = self._functions.get(name)
        if not candidates:
            raise ChainError(f"the contract has no function {name!r}; is the ABI up to date?")
        for fn in candidates:
            if len(fn.inputs) == n_args:
                return fn
        arities = sorted(len(f.inputs) for f in candidates)
        raise ChainError(f"{name} takes {arities} arguments, got {n_args}")

    def event(self, name: str) -> EventType:
        try:
            return self.events[name]
        except KeyError:
            raise ChainError(f"the contract has no event {name!r}") from None

    def encode_constructor(self, args: tuple) -> bytes:
        types = [abi_type(p) for p in self.constructor_inputs]
        if len(types) != len(args):
            raise ChainError(f"constructor takes {len(types)} arguments, got {len(args)}")
        return encode(types, list(args))

    def decode_log(self, log: RawLog) -> Event | None:
        """Decode a log emitted by this contract; None for an event this ABI does not know."""
        if not log.topics:
            return None
        ev = self._events_by_topic.get(log.topics[0])
        return ev.decode(log) if ev else None


def decode_revert(data: bytes) -> str:
    """The human reason inside revert data: ``Error(string)``, ``Panic(uint256)`` or raw."""
    if data[:4] == _ERROR_SELECTOR:
        try:
            return decode(["string"], data[4:])[0]
        except Exception:
            return f"malformed revert string 0x{data.hex()}"
    if data[:4] == _PANIC_SELECTOR and len(data) == 36:
        return f"panic 0x{int.from_bytes(data[4:], 'big'):02x}"
    if not data:
        return "no reason given"
    return f"revert data 0x{data.hex()}"
