"""In-process EVM backend on titanoboa's py-evm: fast, deterministic, no node to run.

Used by unit tests, property-based invariant tests and single-process tools. It behaves like
an automining devnet: every transaction gets its own block, gas is charged as a real chain
would charge it (intrinsic + execution - refunds), logs are kept so that ``get_logs`` can
follow events by block range, and ``advance_time`` moves ``block.timestamp`` forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import boa
from eth_utils import keccak, to_checksum_address

from verimesh.chain.abi import RawLog, decode_revert
from verimesh.chain.accounts import Signer
from verimesh.chain.backends.base import Backend, Receipt
from verimesh.chain.errors import ChainError, ContractRevert

_TX_GAS = 21_000
_CREATE_GAS = 32_000
_DEFAULT_GAS_LIMIT = 30_000_000


def intrinsic_gas(data: bytes, create: bool = False) -> tuple[int, int]:
    """(intrinsic gas, EIP-7623 calldata floor) of a transaction carrying ``data``, as far
    as py-evm's raw message execution does not charge it itself."""
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    gas = _TX_GAS + 4 * zeros + 16 * nonzeros
    if create:
        # + 2 gas per initcode word (EIP-3860), which py-evm already charges in the create
        gas += _CREATE_GAS
    floor = _TX_GAS + 10 * (zeros + 4 * nonzeros)
    return gas, floor


class BoaBackend(Backend):
    """A private in-memory chain; each instance starts empty."""

    def __init__(self, chain_id: int = 31337, gas_limit: int = _DEFAULT_GAS_LIMIT) -> None:
        self.env = boa.Env()
        self.chain_id = chain_id
        self.env.evm.patch.chain_id = chain_id
        self.gas_limit = gas_limit
        self._logs: list[RawLog] = []
        self._tx_count = 0

    # -- blocks ------------------------------------------------------------------------
    def _mine(self) -> int:
        """Open a new block for the next transaction, with fresh prevrandao like a real chain."""
        patch = self.env.evm.patch
        patch.block_number += 1
        patch.prevrandao = keccak(
            b"verimesh-boa-prevrandao" + patch.block_number.to_bytes(32, "big")
        )
        return patch.block_number

    def block_number(self) -> int:
        return self.env.evm.patch.block_number

    def timestamp(self) -> int:
        return self.env.evm.patch.timestamp

    def advance_time(self, seconds: int) -> None:
        if seconds < 0:
            raise ChainError("time only moves forward: seconds must be >= 0")
        self.env.evm.patch.timestamp += seconds
        self._mine()

    def eth_balance(self, address: str) -> int:
        return self.env.get_balance(address)

    def set_eth_balance(self, address: str, wei: int) -> None:
        """Give an account ETH for ``value`` transfers (gas itself is free in-process)."""
        self.env.set_balance(address, wei)

    # -- execution ---------------------------------------------------------------------
    def _receipt(
        self, computation, data: bytes, create: bool, address: str | None = None
    ) -> Receipt:
        intrinsic, floor = intrinsic_gas(data, create)
        used = intrinsic + computation.get_gas_used()
        used -= min(computation.get_gas_refund(), used // 5)  # EIP-3529 refund cap
        used = max(used, floor)
        block = self.block_number()
        self._tx_count += 1
        tx_hash = keccak(b"verimesh-boa-tx" + self._tx_count.to_bytes(8, "big"))
        logs = tuple(
            RawLog(
                address=to_checksum_address(addr),
                topics=tuple(t.to_bytes(32, "big") for t in topics),
                data=bytes(payload),
                block_number=block,
                tx_hash=tx_hash,
                log_index=i,
            )
            for i, (addr, topics, payload) in enumerate(computation.get_log_entries())
        )
        self._logs.extend(logs)
        return Receipt(tx_hash, block, used, logs, address)

    def _check(self, computation, function: str | None, gas: int) -> None:
        if not computation.is_error:
            return
        err = computation.error
        # py-evm's Revert carries the revert data; other errors (OutOfGas, InvalidJump...) do not
        if type(err).__name__ == "Revert":
            data = bytes(err.args[0]) if err.args else b""
            raise ContractRevert(decode_revert(data), function=function, data=data)
        if type(err).__name__ == "OutOfGas":
            raise ContractRevert(f"out of gas (limit {gas})", function=function)
        raise ContractRevert(type(err).__name__, function=function)

    def _start_transaction(self, sender: str, to: str | None) -> None:
        """Start a transaction as a real chain does, or gas comes out too low: the storage
        values now become the "original" values of EIP-2200 refunds (``lock_changes``), and
        the EIP-2929 access sets start empty except for sender, target, precompiles and
        coinbase."""
        evm = self.env.evm
        state = evm.vm.state
        state.lock_changes()
        evm.reset_access_counters()
        warm = [sender, to] if to else [sender]
        for address in warm:
            state.mark_address_warm(bytes.fromhex(address[2:]))
        for address in state.computation_class._precompiles:
            state.mark_address_warm(address)
        state.mark_address_warm(state.coinbase)  # EIP-3651

    def _execution_gas(
        self, gas: int | None, data: bytes, create: bool, function: str | None
    ) -> int:
        """A transaction's gas limit covers intrinsic gas first, as on a real chain."""
        if gas is None:
            return self.gas_limit
        intrinsic, floor = intrinsic_gas(data, create)
        if gas < max(intrinsic, floor):
            raise ContractRevert(
                f"out of gas (limit {gas} is below the intrinsic {max(intrinsic, floor)})",
                function=function,
            )
        return gas - intrinsic

    def deploy(self, sender: Signer, initcode: bytes, gas: int | None = None) -> Receipt:
        exec_gas = self._execution_gas(gas, initcode, True, "deploy")
        self._mine()
        self._start_transaction(sender.address, None)
        address, computation = self.env.deploy(
            sender=sender.address, gas=exec_gas, bytecode=initcode
        )
        self._check(computation, "deploy", gas or self.gas_limit)
        return self._receipt(computation, initcode, True, to_checksum_address(str(address)))

    def transact(
        self,
        sender: Signer,
        to: str,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
        function: str | None = None,
    ) -> Receipt:
        exec_gas = self._execution_gas(gas, data, False, function)
        self._mine()
        self._start_transaction(sender.address, to)
        computation = self.env.execute_code(
            to_address=to, sender=sender.address, gas=exec_gas, value=value, data=data
        )
        self._check(computation, function, gas or self.gas_limit)
        return self._receipt(computation, data, False)

    def call(
        self, to: str, data: bytes, sender: str | None = None, function: str | None = None
    ) -> bytes:
        computation = self.env.execute_code(
            to_address=to,
            sender=sender or "0x" + "00" * 20,
            gas=self.gas_limit,
            data=data,
            is_modifying=False,
        )
        self._check(computation, function, self.gas_limit)
        return bytes(computation.output)

    def get_logs(
        self,
        address: str | Sequence[str],
        from_block: int = 0,
        to_block: int | None = None,
        topic0: Sequence[bytes] | None = None,
    ) -> list[RawLog]:
        wanted = {
            to_checksum_address(a) for a in ([address] if isinstance(address, str) else address)
        }
        last = self.block_number() if to_block is None else to_block
        topics = set(topic0) if topic0 is not None else None
        return [
            log
            for log in self._logs
            if log.address in wanted
            and from_block <= log.block_number <= last
            and (topics is None or (log.topics and log.topics[0] in topics))
        ]
