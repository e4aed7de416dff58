"""JSON-RPC backend: any EVM node reachable by URL (the local anvil devnet or a real chain).

Why it is written the way it is (all measured on the anvil devnet):
- transactions are signed locally (eth-account + coincurve) and sent raw; the node never
  holds a key;
- nonces are counted locally per sender, so sending needs no ``eth_getTransactionCount``;
- gas is an explicit limit when one is configured (devnet) and an estimate otherwise; an
  estimate reverts before anything is sent, and a mined revert is replayed as ``eth_call``
  on the same block to recover the contract's revert string;
- receipts are polled every 5 ms: web3's default 100 ms polling made the devnet 4x slower.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from verimesh.chain.abi import RawLog, decode_revert
from verimesh.chain.accounts import Signer
from verimesh.chain.backends.base import Backend, Receipt
from verimesh.chain.errors import ChainError, ContractRevert

P = ParamSpec("P")
R = TypeVar("R")

_POLL_SECONDS = 0.005
_FEE_REFRESH_SECONDS = 10.0


def _revert_from(exc: ContractLogicError, function: str | None) -> ContractRevert:
    raw = exc.data if isinstance(exc.data, str) else None
    if raw and raw.startswith("0x"):
        data = bytes.fromhex(raw[2:])
        return ContractRevert(decode_revert(data), function=function, data=data)
    message = str(exc.message or exc).removeprefix("execution reverted: ").removeprefix("execution reverted")
    return ContractRevert(message or "no reason given", function=function)


def _node_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Connection failures (a stopped devnet, a wrong port) become one ``ChainError``."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            url = getattr(args[0], "url", "?")
            raise ChainError(
                f"the node at {url} does not answer ({type(exc).__name__}); is it running? "
                "`verimesh devnet status` shows the devnet"
            ) from exc

    return wrapper


class RpcBackend(Backend):
    """Talks to ``url`` over JSON-RPC. Thread-safe for sending (one lock for nonces)."""

    def __init__(
        self,
        url: str,
        gas_limit: int | None = None,
        receipt_timeout: float = 60.0,
        request_timeout: float = 30.0,
        poll_interval: float = _POLL_SECONDS,
    ) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": request_timeout}))
        try:
            self.chain_id = self.w3.eth.chain_id
        except Exception as exc:
            raise ChainError(
                f"no EVM node answers at {url}: {exc}; start one with `verimesh devnet up` "
                "or pass the right --rpc-url"
            ) from exc
        self.gas_limit = gas_limit
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._fees: tuple[int, int] | None = None
        self._fees_at = 0.0

    # -- reads ------------------------------------------------------------------------
    @_node_errors
    def block_number(self) -> int:
        return self.w3.eth.block_number

    @_node_errors
    def timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    @_node_errors
    def now(self) -> int:
        """The pending block's timestamp: the node's own clock, including any time a devnet
        was moved forward by ``evm_increaseTime`` since its latest block (the wall clock
        knows nothing of that offset)."""
        pending = self.w3.eth.get_block("pending")
        if not pending or "timestamp" not in pending:  # a node that keeps no pending block
            return super().now()
        return int(pending["timestamp"])

    @_node_errors
    def eth_balance(self, address: str) -> int:
        return self.w3.eth.get_balance(to_checksum_address(address))

    @_node_errors
    def call(
        self, to: str, data: bytes, sender: str | None = None, function: str | None = None, block: int | str = "latest"
    ) -> bytes:
        tx: dict = {"to": to_checksum_address(to), "data": data}
        if sender:
            tx["from"] = to_checksum_address(sender)
        try:
            return bytes(self.w3.eth.call(tx, block))
        except ContractLogicError as exc:
            raise _revert_from(exc, function) from None

    @_node_errors
    def get_logs(
        self,
        address: str | Sequence[str],
        from_block: int = 0,
        to_block: int | None = None,
        topic0: Sequence[bytes] | None = None,
    ) -> list[RawLog]:
        addresses = [address] if isinstance(address, str) else list(address)
        # Nodes reject ranges past the head; a follower asking for "what is new" gets nothing.
        latest = self.block_number()
        to_block = latest if to_block is None else min(to_block, latest)
        if from_block > to_block:
            return []
        query: dict = {
            "address": [to_checksum_address(a) for a in addresses],
            "fromBlock": from_block,
            "toBlock": to_block,
        }
        if topic0 is not None:
            query["topics"] = [["0x" + t.hex() for t in topic0]]
        return [
            _raw_log(log)
            for log in self.w3.eth.get_logs(query)
        ]

    # -- devnet controls ---------------------------------------------------------------
    @_node_errors
    def advance_time(self, seconds: int) -> None:
        if seconds < 0:
            raise ChainError("time only moves forward: seconds must be >= 0")
        self._rpc("evm_increaseTime", [seconds])
        self._rpc("evm_mine", [])

    def _rpc(self, method: str, params: list) -> object:
        response = self.w3.provider.make_request(method, params)
        if "error" in response:
            raise ChainError(f"{method} failed on {self.url}: {response['error']}")
        return response.get("result")

    # -- sending ------------------------------------------------------------------------
    def _fee_fields(self) -> dict:
        """EIP-1559 fees, refreshed every few seconds instead of once per transaction."""
        now = time.monotonic()
        if self._fees is None or now - self._fees_at > _FEE_REFRESH_SECONDS:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(self.w3.eth.max_priority_fee)
            self._fees = (2 * base + tip, tip)
            self._fees_at = now
        max_fee, tip = self._fees
        return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = self.w3.eth.get_transaction_count(address, "pending")
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return nonce

    def _send(
        self, sender: Signer, to: str | None, data: bytes, value: int, gas: int | None, function: str | None
    ) -> Receipt:
        tx: dict = {"chainId": self.chain_id, "data": data, "value": value}
        if to is not None:
            tx["to"] = to_checksum_address(to)  # eth-account 0.14 rejects lower-case `to`
        gas = gas or self.gas_limit
        if gas is None:
            try:
                estimate = self.w3.eth.estimate_gas({**tx, "from": sender.address})
            except ContractLogicError as exc:
                raise _revert_from(exc, function) from None
            gas = estimate * 6 // 5 + 10_000
        tx["gas"] = gas
        with self._lock:
            tx.update(self._fee_fields())
            tx["nonce"] = self._next_nonce(sender.address)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(sender.sign_transaction(tx))
            except Web3RPCError as exc:
                self._nonces.pop(sender.address, None)  # resync from the node next time
                self._fees = None
                raise ChainError(f"{function or 'transaction'} was rejected by the node: {exc}") from exc
        receipt = self._wait(bytes(tx_hash))
        if receipt["status"] != 1:
            raise self._explain_failure(tx, sender, receipt, function)
        logs = tuple(
            _raw_log(log)
            for log in receipt["logs"]
        )
        created = receipt.get("contractAddress")
        return Receipt(
            tx_hash=bytes(tx_hash),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            logs=logs,
            contract_address=to_checksum_address(created) if created else None,
        )

    def _wait(self, tx_hash: bytes) -> dict:
        deadline = time.monotonic() + self.receipt_timeout
        while True:
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
                if receipt is not None:
                    return receipt
            except TransactionNotFound:
                pass
            if time.monotonic() > deadline:
                raise ChainError(
                    f"transaction 0x{tx_hash.hex()} not mined after {self.receipt_timeout:.0f} s; "
                    "is the node mining (anvil automines) and is the fee high enough?"
                )
            time.sleep(self.poll_interval)

    def _explain_failure(self, tx: dict, sender: Signer, receipt: dict, function: str | None) -> ContractRevert:
        """A mined revert carries no reason: replay it as a call on the same block to get one."""
        if int(receipt["gasUsed"]) >= tx["gas"]:
            return ContractRevert(f"out of gas (limit {tx['gas']})", function=function)
        call: dict = {"from": sender.address, "data": tx["data"], "value": tx["value"]}
        if "to" in tx:
            call["to"] = tx["to"]
        try:
            self.w3.eth.call(call, int(receipt["blockNumber"]))
        except ContractLogicError as exc:
            return _revert_from(exc, function)
        return ContractRevert("reverted on chain; the replay did not revert", function=function)

    @_node_errors
    def deploy(self, sender: Signer, initcode: bytes, gas: int | None = None) -> Receipt:
        return self._send(sender, None, initcode, 0, gas, "deploy")

    @_node_errors
    def transact(
        self,
        sender: Signer,
        to: str,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
        function: str | None = None,
    ) -> Receipt:
        return self._send(sender, to, data, value, gas, function)


def _raw_log(log: Any) -> RawLog:
    """A web3 log entry (from ``eth_getLogs`` or a receipt) in the backends' common form."""
    return RawLog(
        address=to_checksum_address(log["address"]),
        topics=tuple(bytes(t) for t in log["topics"]),
        data=bytes(log["data"]),
        block_number=int(log["blockNumber"]),
        tx_hash=bytes(log["transactionHash"]),
        log_index=int(log["logIndex"]),
    )
