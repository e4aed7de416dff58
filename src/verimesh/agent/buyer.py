"""An agent buying from another agent's service: x402 over a channel its wallet opened.

``ServiceBuyer`` reads the seller's ``ServiceInfo``, builds a ``PaymentPolicy`` from it and
the agent's own price cap, and pays with ``PayingClient`` whose ``ChannelBook`` funds
channels from the AgentWallet (``open_channel`` under the chain's policy: the seller's
payee and the channel contract must be allowed counterparties) and signs vouchers the
wallet's EIP-1271 answer accepts. Every channel deposit and every paid request lands in the
agent's ledger: deposits with their transaction, requests as ``channel:cumulative``
vouchers (no transaction until the seller redeems: that is the point of a channel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from verimesh.agent.ledger import Ledger
from verimesh.agent.offers import ServiceInfo, discover_service
from verimesh.agent.wallet import BudgetRefused, tx_hash
from verimesh.chain import ContractRevert
from verimesh.client.payments import ChannelBook, PaymentPolicy, WalletFunder
from verimesh.client.x402 import PayingClient

if TYPE_CHECKING:  # the Agent module imports this one
    from verimesh.agent.agent import Agent

# A channel to a service holds this many requests at its price (one open per 20 requests).
DEPOSIT_REQUESTS = 20


class LedgerWalletFunder(WalletFunder):
    """``WalletFunder`` that books each deposit (open, top up) with its transaction."""

    def __init__(self, *args: Any, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = ledger

    def open(self, payee: str, amount: int) -> int:
        try:
            channel_id, tx = self.wallet.open_channel(self.contract, payee, amount)
        except ContractRevert as exc:
            raise BudgetRefused(amount, f"{exc.reason}; a channel to {payee}") from None
        self.ledger.record("channel", amount, payee, f"channel {channel_id}", tx_hash(tx), "deposit (recoverable)")
        return channel_id

    def top_up(self, channel_id: int, amount: int) -> None:
        try:
            tx = self.wallet.top_up_channel(self.contract, channel_id, amount)
        except ContractRevert as exc:
            raise BudgetRefused(amount, f"{exc.reason}; topping up channel {channel_id}") from None
        self.ledger.record("channel", amount, "", f"channel {channel_id}", tx_hash(tx), "top-up (recoverable)")


class ServiceBuyer:
    """Pays one seller per request; ``post(path, json=...)`` returns the service's answer."""

    def __init__(self, agent: Agent, url: str, max_price: int, deposit_requests: int = DEPOSIT_REQUESTS) -> None:
        self.url = url.rstrip("/")
        self.ledger: Ledger = agent.ledger
        self.info: ServiceInfo = discover_service(self.url, agent.client.http)
        channel = agent.net.payment_channel
        if channel is None:
            raise ValueError("this deployment has no PaymentChannel: agents cannot pay each other per request")
        if self.info.chain_id != agent.net.backend.chain_id or self.info.channel_contract != channel.address:
            raise ValueError(
                f"the service {self.info.name!r} is paid on chain {self.info.chain_id} through "
                f"{self.info.channel_contract}; this agent's network uses {channel.address} on chain "
                f"{agent.net.backend.chain_id}"
            )
        # A deposit is one wallet payment: keep it within the session key's per-payment cap.
        per_payment = agent.wallet.sessions(agent.key.address).max_per_payment
        policy = PaymentPolicy(
            max_price=max_price,
            allowed_payees=[self.info.payee],
            allowed_contracts=[channel.address],
            chain_id=agent.net.backend.chain_id,
            deposit_requests=deposit_requests,
            max_deposit=min(deposit_requests * max_price, per_payment),
        )
        funder = LedgerWalletFunder(agent.wallet, channel, agent.key, ledger=self.ledger)
        self.book = ChannelBook(funder, policy)
        self.http = PayingClient(self.book, base_url=self.url, timeout=httpx.Timeout(600.0, connect=5.0))
        self._booked = 0

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """Send a paid request (pays on 402 within the policy) and book what it cost."""
        try:
            return self.http.post(path, **kwargs)
        finally:
            self._book_vouchers()

    def _book_vouchers(self) -> None:
        entries = self.book.ledger.entries
        for entry in entries[self._booked :]:
            note = f"{entry.resource} served" if entry.served else f"{entry.resource} NOT served: voucher kept by the seller"
            self.ledger.record("voucher", entry.amount, entry.payee, f"{entry.channel_id}:{entry.cumulative}", None, note)
        self._booked = len(entries)

    def close(self) -> None:
        self.http.close()
