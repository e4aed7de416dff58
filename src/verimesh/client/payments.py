"""Client side of per-request payments: the buyer's policy, its channels and its ledger.

``PaymentPolicy`` says which offers the buyer accepts (max price, allowed payees and channel
contracts, how much to deposit). A ``ChannelFunder`` opens and tops up channels and signs
vouchers: ``AccountFunder`` for a plain account, ``WalletFunder`` for an AgentWallet (the
session key opens channels through the wallet, under the policy the chain enforces, and
signs vouchers the wallet's EIP-1271 answer accepts). ``ChannelBook`` remembers, per payee,
the channel, what was signed and what was acknowledged as served; ``PaymentLedger`` records
every payment so an agent can show what it paid for.

The exposure rule (why a client never pays for work it did not receive beyond one price):
the book signs a new increment only when the previous voucher was acknowledged by a served
response. A voucher whose request failed is sent again as is (the service gave it back, or
never saw it); a service that refuses it as "already used" took it without serving, and
the book stops paying that service (``ServiceCheatedError``): the loss is that one price.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from pydantic import BaseModel, Field, field_validator

from verimesh.chain.accounts import Signer
from verimesh.chain.agent_wallet import AgentWalletClient
from verimesh.chain.contract import checksum
from verimesh.chain.payment_channel import PaymentChannelClient, PaymentOffer, PaymentVoucher
from verimesh.chain.token import TokenClient

# A new channel holds this many requests at the offered price unless the policy says otherwise.
DEFAULT_DEPOSIT_REQUESTS = 100

# The two ERC-20 functions a payer needs: any ERC-20 works, not only verimesh's Token.
_ERC20_ABI: Sequence[dict] = [
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
]


class PaymentClientError(Exception):
    """Base of the client's payment errors; the message says what to change."""


class OfferRejected(PaymentClientError):
    """The service's offer is outside the buyer's policy (price, payee, contract, chain)."""


class ServiceCheatedError(PaymentClientError):
    """The service kept a voucher without serving the request; the book stops paying it."""


class PaymentPolicy(BaseModel):
    """What a buyer accepts. Addresses are compared checksummed."""

    max_price: Annotated[int, Field(gt=0)] = Field(description="most base units per request")
    allowed_payees: list[str] = Field(min_length=1, description="services this buyer may pay")
    allowed_contracts: list[str] = Field(min_length=1, description="PaymentChannel contracts it uses")
    chain_id: Annotated[int, Field(gt=0)]
    deposit_requests: Annotated[int, Field(gt=0)] = DEFAULT_DEPOSIT_REQUESTS
    max_deposit: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="largest deposit per channel (default: deposit_requests x max_price)"
    )

    @field_validator("allowed_payees", "allowed_contracts")
    @classmethod
    def _checksummed(cls, values: list[str]) -> list[str]:
        return [checksum(v) for v in values]

    def check(self, offer: PaymentOffer) -> None:
        """Raise ``OfferRejected`` saying which term is outside the policy."""
        if offer.chain_id != self.chain_id:
            raise OfferRejected(f"the offer is for chain {offer.chain_id}, this buyer pays on chain {self.chain_id}")
        if offer.price > self.max_price:
            raise OfferRejected(
                f"the service asks {offer.price} per request, above this buyer's max_price {self.max_price}"
            )
        if offer.payee not in self.allowed_payees:
            raise OfferRejected(f"payee {offer.payee} is not in allowed_payees; add it to pay this service")
        if offer.channel_contract not in self.allowed_contracts:
            raise OfferRejected(f"channel contract {offer.channel_contract} is not in allowed_contracts")
        if offer.min_deposit > self.deposit_cap:
            raise OfferRejected(
                f"the service wants channels of at least {offer.min_deposit}, above this buyer's "
                f"max_deposit {self.deposit_cap}"
            )

    @property
    def deposit_cap(self) -> int:
        return self.max_deposit if self.max_deposit is not None else self.deposit_requests * self.max_price

    def deposit_for(self, offer: PaymentOffer) -> int:
        return min(max(self.deposit_requests * offer.price, offer.min_deposit), self.deposit_cap)


class ChannelFunder(Protocol):
    """Opens and tops up channels on one contract and signs their vouchers."""

    @property
    def contract(self) -> str: ...

    def open(self, payee: str, amount: int) -> int: ...

    def top_up(self, channel_id: int, amount: int) -> None: ...

    def sign(self, channel_id: int, cumulative: int) -> PaymentVoucher: ...


class AccountFunder:
    """A plain account pays: it approves the channel contract and opens channels itself."""

    def __init__(self, channel: PaymentChannelClient, payer: Signer) -> None:
        self.channel = channel.as_signer(payer)
        self.payer = payer

    @property
    def contract(self) -> str:
        return self.channel.address

    def _approve(self, amount: int) -> None:
        token = TokenClient(self.channel.backend, self.channel.token(), _ERC20_ABI, self.payer)
        if token.allowance(self.payer.address, self.contract) < amount:
            token.approve(self.contract, amount)

    def open(self, payee: str, amount: int) -> int:
        self._approve(amount)
        channel_id, _ = self.channel.open(payee, amount)
        return channel_id

    def top_up(self, channel_id: int, amount: int) -> None:
        self._approve(amount)
        self.channel.top_up(channel_id, amount)

    def sign(self, channel_id: int, cumulative: int) -> PaymentVoucher:
        return self.channel.sign_voucher(self.payer, channel_id, cumulative)


class WalletFunder:
    """An AgentWallet pays: its session key funds channels through the wallet (policy on
    chain) and signs vouchers as the wallet (EIP-1271)."""

    def __init__(self, wallet: AgentWalletClient, channel: PaymentChannelClient, session_key: Signer) -> None:
        self.wallet = wallet.as_signer(session_key)
        self.channel = channel
        self.session_key = session_key

    @property
    def contract(self) -> str:
        return self.channel.address

    def open(self, payee: str, amount: int) -> int:
        channel_id, _ = self.wallet.open_channel(self.contract, payee, amount)
        return channel_id

    def top_up(self, channel_id: int, amount: int) -> None:
        self.wallet.top_up_channel(self.contract, channel_id, amount)

    def sign(self, channel_id: int, cumulative: int) -> PaymentVoucher:
        return self.channel.sign_voucher(self.session_key, channel_id, cumulative)


@dataclass
class LedgerEntry:
    """One paid request: ``served`` is False for a voucher the service kept without serving."""

    at: float
    resource: str
    payee: str
    channel_id: int
    amount: int
    cumulative: int
    served: bool


@dataclass
class PaymentLedger:
    """Everything a buyer paid, in order; ``total`` is what its vouchers commit to."""

    entries: list[LedgerEntry] = field(default_factory=list)
    deposits: int = 0  # tokens moved into channels (recoverable minus what was paid)

    def record(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)

    @property
    def total(self) -> int:
        return sum(e.amount for e in self.entries)

    @property
    def unserved(self) -> int:
        return sum(e.amount for e in self.entries if not e.served)

    def by_payee(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.payee] = out.get(e.payee, 0) + e.amount
        return out


@dataclass
class _OpenChannel:
    channel_id: int
    deposit: int
    acknowledged: int = 0  # cumulative of the last served request
    pending: PaymentVoucher | None = None  # signed, sent, not acknowledged yet


class ChannelBook:
    """The buyer's channels, one per (contract, payee), and the exposure rule."""

    def __init__(self, funder: ChannelFunder, policy: PaymentPolicy, ledger: PaymentLedger | None = None) -> None:
        self.funder = funder
        self.policy = policy
        self.ledger = ledger or PaymentLedger()
        self._channels: dict[str, _OpenChannel] = {}
        self._cheaters: set[str] = set()
        self._lock = threading.Lock()

    def lock(self) -> threading.Lock:
        """Payments to one book are sequential: the exposure rule needs a single pending voucher."""
        return self._lock

    def channel_id(self, payee: str) -> int | None:
        ch = self._channels.get(checksum(payee))
        return ch.channel_id if ch else None

    def voucher_for(self, offer: PaymentOffer) -> PaymentVoucher:
        """The voucher to send for one request at ``offer`` (call with ``lock()`` held)."""
        self.policy.check(offer)
        if offer.channel_contract != self.funder.contract:
            raise OfferRejected(
                f"the service uses channel contract {offer.channel_contract}, this buyer's funder uses {self.funder.contract}"
            )
        if offer.payee in self._cheaters:
            raise ServiceCheatedError(
                f"{offer.payee} kept a voucher without serving; this client no longer pays it"
            )
        ch = self._channels.get(offer.payee)
        if ch is not None and ch.pending is not None:
            return ch.pending  # the last request was not served: resend, never sign more
        if ch is None:
            deposit = self.policy.deposit_for(offer)
            ch = _OpenChannel(self.funder.open(offer.payee, deposit), deposit)
            self.ledger.deposits += deposit
            self._channels[offer.payee] = ch
        cumulative = ch.acknowledged + offer.price
        if cumulative > ch.deposit:
            amount = self.policy.deposit_for(offer)
            self.funder.top_up(ch.channel_id, amount)
            ch.deposit += amount
            self.ledger.deposits += amount
        ch.pending = self.funder.sign(ch.channel_id, cumulative)
        return ch.pending

    def served(self, offer: PaymentOffer, voucher: PaymentVoucher, resource: str) -> None:
        """The service answered with the requested work for ``voucher``."""
        ch = self._channels[offer.payee]
        if ch.pending != voucher:
            return
        self.ledger.record(
            LedgerEntry(time.time(), resource, offer.payee, ch.channel_id, voucher.cumulative - ch.acknowledged,
                        voucher.cumulative, served=True)
        )
        ch.acknowledged, ch.pending = voucher.cumulative, None

    def kept_without_serving(self, offer: PaymentOffer, voucher: PaymentVoucher, resource: str) -> None:
        """The service says it already has ``voucher`` but did not serve: count the loss, stop."""
        ch = self._channels[offer.payee]
        self.ledger.record(
            LedgerEntry(time.time(), resource, offer.payee, ch.channel_id, voucher.cumulative - ch.acknowledged,
                        voucher.cumulative, served=False)
        )
        ch.acknowledged, ch.pending = voucher.cumulative, None
        self._cheaters.add(offer.payee)

    def refused(self, offer: PaymentOffer, voucher: PaymentVoucher) -> None:
        """The service refused ``voucher`` (did not accept it): it need not be resent. Safe for
        the exposure rule: every voucher this book signs is ``acknowledged + price``, so what
        the service can redeem stays within one price of the work it served."""
        ch = self._channels.get(offer.payee)
        if ch is not None and ch.pending == voucher:
            ch.pending = None

    def forget(self, payee: str) -> None:
        """Drop a channel the service no longer accepts (closing/settled): the next request opens a new one."""
        self._channels.pop(checksum(payee), None)

    def channels(self) -> dict[str, int]:
        return {payee: ch.channel_id for payee, ch in self._channels.items()}
