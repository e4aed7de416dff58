"""Server side of per-request payments: a FastAPI dependency that answers ``402 Payment
Required`` with a price, and serves a request only after a valid channel voucher.

    paywall = Paywall(channel_client, payee=node_address, price=10**15)
    paywall.install(app)                       # 402 bodies in the x402 shape
    @app.post("/v1/embed", dependencies=[Depends(paywall.require())])
    def embed(...): ...

A request is served only if its ``X-Payment`` header carries a voucher that (cheapest check
first): parses; is for this chain and channel contract; names an existing channel whose
payee is us, that is open (the payer did not start closing) and whose deposit covers the
voucher (channel state cached ``cache_seconds``, re-read when a voucher exceeds the cached
deposit); raises the cumulative total by at least the price over the last accepted voucher
(so a replayed or stale voucher pays nothing and is refused); and is signed by the payer
(ECDSA, or EIP-1271 for contract wallets such as AgentWallet). Only then does the handler
run. If the handler fails (an exception), the voucher is given back: the client may retry
with the same voucher and is not charged for work it did not get.

The paywall keeps the latest accepted voucher of every channel; ``settle`` redeems it on
chain (``close=True`` also returns the rest to the payer). A node calls it when a channel
holds enough unredeemed value, when the payer starts closing (the challenge period is the
deadline), and at shutdown. It lives in ``node/`` so that nodes and agents (above) can both
use it; the wire messages are in ``verimesh.chain.payment_channel``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from verimesh.chain.agent_wallet import eip1271_checker
from verimesh.chain.contract import Tx, checksum
from verimesh.chain.payment_channel import (
    PAYMENT_HEADER,
    RECEIPT_HEADER,
    Channel,
    PaymentChannelClient,
    PaymentError,
    PaymentOffer,
    PaymentReceipt,
    PaymentRequired,
    PaymentVoucher,
)
from verimesh.crypto.envelope import SignatureChecker, ecdsa_signature_checker

# Seconds a channel's on-chain state is trusted before it is read again. A payer who starts
# closing is noticed at most this late; the challenge period (>= 60 s) leaves time to redeem.
DEFAULT_CACHE_SECONDS = 5.0
# Default smallest deposit a new channel must hold, in requests at the offered price.
DEFAULT_MIN_DEPOSIT_REQUESTS = 10


class VoucherStore:
    """The latest served voucher of every channel, in SQLite: money the payee can redeem, and
    the replay floor. Without it a restarted service would take old vouchers as new (and
    serve them again) and forget what it can redeem.

    Written after each served request (WAL, synchronous=NORMAL: a power cut may lose the
    last few, which only costs the payee those prices, never serves anything twice).
    """

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS vouchers (contract TEXT, channel_id TEXT, cumulative TEXT, voucher TEXT,"
            " redeemed TEXT NOT NULL DEFAULT '0', PRIMARY KEY (contract, channel_id))"
        )
        self._lock = threading.Lock()

    def save(self, voucher: PaymentVoucher) -> None:
        """Record ``voucher`` unless a higher one for its channel is already stored."""
        with self._lock:
            row = self._conn.execute(
                "SELECT cumulative FROM vouchers WHERE contract = ? AND channel_id = ?",
                (voucher.contract, str(voucher.channel_id)),
            ).fetchone()
            if row is not None and int(row[0]) >= voucher.cumulative:
                return
            self._conn.execute(
                "INSERT INTO vouchers (contract, channel_id, cumulative, voucher) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (contract, channel_id) DO UPDATE SET cumulative = excluded.cumulative, "
                "voucher = excluded.voucher",
                (voucher.contract, str(voucher.channel_id), str(voucher.cumulative), voucher.model_dump_json()),
            )

    def set_redeemed(self, contract: str, channel_id: int, redeemed: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE vouchers SET redeemed = ? WHERE contract = ? AND channel_id = ?",
                (str(redeemed), contract, str(channel_id)),
            )

    def load(self, contract: str) -> list[tuple[PaymentVoucher, int]]:
        """Every stored (voucher, redeemed) of one channel contract."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT voucher, redeemed FROM vouchers WHERE contract = ?", (contract,)
            ).fetchall()
        return [(PaymentVoucher.model_validate_json(v), int(r)) for v, r in rows]

    def close(self) -> None:
        self._conn.close()


class _NeedsChain(Exception):
    """The fast path cannot decide without reading the chain."""


class PaymentRefused(HTTPException):
    """A request without a valid payment: 402 with a ``PaymentRequired`` body."""

    def __init__(self, body: PaymentRequired) -> None:
        super().__init__(status_code=402, detail=body.model_dump(mode="json"))
        self.body = body


@dataclass
class _ChannelState:
    """What the paywall knows about one channel."""

    channel: Channel
    read_at: float
    accepted: int = 0  # highest cumulative accepted (served or being served)
    latest: PaymentVoucher | None = None  # the voucher for `accepted`
    redeemed: int = 0  # what was redeemed on chain by `settle`


@dataclass(frozen=True)
class Payment:
    """An accepted voucher for one request; the handler may read it (``Depends`` value)."""

    channel_id: int
    payer: str
    price: int
    cumulative: int
    previous: int
    previous_voucher: PaymentVoucher | None = field(repr=False)


class Paywall:
    """Prices requests and checks vouchers for one payee on one PaymentChannel contract."""

    def __init__(
        self,
        channel: PaymentChannelClient,
        payee: str,
        price: int,
        *,
        min_deposit: int | None = None,
        terms: str = "",
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        signature_checker: SignatureChecker | None = None,
        clock: Callable[[], float] = time.monotonic,
        store: VoucherStore | None = None,
    ) -> None:
        if price <= 0:
            raise ValueError("price must be > 0 base units per request")
        self.channel = channel
        self.payee = checksum(payee)
        self.price = price
        self.min_deposit = DEFAULT_MIN_DEPOSIT_REQUESTS * price if min_deposit is None else min_deposit
        self.terms = terms
        self.cache_seconds = cache_seconds
        self.check_signature = signature_checker or eip1271_checker(channel.backend)
        self.clock = clock
        self.chain_id = channel.backend.chain_id
        self.token = channel.token()
        self.challenge_period = channel.challenge_period()
        self._lock = threading.Lock()
        self._states: dict[int, _ChannelState] = {}
        self.served = 0  # requests whose handler ran to completion with a payment
        self.store = store
        # what a previous run served: the replay floor and what can still be redeemed
        self._restored: dict[int, tuple[PaymentVoucher, int]] = {
            v.channel_id: (v, redeemed) for v, redeemed in (store.load(self.channel.address) if store else [])
        }

    # -- offers --------------------------------------------------------------------------
    def offer(self, resource: str, price: int | None = None) -> PaymentOffer:
        return PaymentOffer(
            resource=resource,
            price=price or self.price,
            token=self.token,
            channel_contract=self.channel.address,
            payee=self.payee,
            chain_id=self.chain_id,
            challenge_period=self.challenge_period,
            min_deposit=self.min_deposit,
            terms=self.terms,
        )

    def _refuse(self, error: str, detail: str, resource: str, price: int) -> PaymentRefused:
        return PaymentRefused(PaymentRequired(error=error, detail=detail, accepts=[self.offer(resource, price)]))

    # -- FastAPI glue ----------------------------------------------------------------------
    def install(self, app: FastAPI) -> None:
        """Answer refusals with the x402 body itself (not wrapped in ``{"detail": ...}``)."""

        async def handler(_: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, PaymentRefused)
            return JSONResponse(exc.body.model_dump(mode="json"), status_code=402)

        app.add_exception_handler(PaymentRefused, handler)

    def require(self, price: int | None = None) -> Callable[..., AsyncIterator[Payment]]:
        """A dependency: the endpoint runs only for a paid request; failure refunds the voucher.
        ``price`` fixes this route's price; by default it follows ``self.price`` (which may change)."""

        async def paid(request: Request, response: Response) -> AsyncIterator[Payment]:
            amount = price or self.price
            header = request.headers.get(PAYMENT_HEADER)
            try:  # the common case (cached channel, account payer) needs no chain: no thread hop
                payment = self.accept(header, request.url.path, amount, offline=True)
            except _NeedsChain:
                payment = await anyio.to_thread.run_sync(self.accept, header, request.url.path, amount)
            response.headers[RECEIPT_HEADER] = PaymentReceipt(
                channel_id=payment.channel_id, cumulative=payment.cumulative, price=amount
            ).to_header()
            try:
                yield payment
            except BaseException:
                self.rollback(payment)
                raise
            self.commit(payment)

        return paid

    # -- the checks ------------------------------------------------------------------------
    def accept(self, header: str | None, resource: str, price: int, *, offline: bool = False) -> Payment:
        """Check a payment header and reserve its voucher; raise ``PaymentRefused`` otherwise.

        ``offline=True`` (the event loop's fast path) raises ``_NeedsChain`` instead of
        reading the chain (stale cache, a voucher above the cached deposit, or a contract
        wallet's EIP-1271 check); the caller then runs it again in a worker thread.
        """
        if not header:
            raise self._refuse(
                "payment_required",
                f"this resource costs {price} base units per request: send a signed voucher in {PAYMENT_HEADER}",
                resource,
                price,
            )
        try:
            voucher = PaymentVoucher.from_header(header)
        except PaymentError as exc:
            raise self._refuse("malformed_voucher", str(exc), resource, price) from None
        if voucher.chain_id != self.chain_id:
            raise self._refuse(
                "wrong_chain", f"voucher is for chain {voucher.chain_id}, this service is on chain {self.chain_id}",
                resource, price,
            )
        if voucher.contract != self.channel.address:
            raise self._refuse(
                "wrong_contract",
                f"voucher is for channel contract {voucher.contract}, this service uses {self.channel.address}",
                resource, price,
            )
        state = self._state(voucher.channel_id, fresh_if_below=voucher.cumulative, offline=offline)
        ch = state.channel
        if not ch.exists:
            raise self._refuse("unknown_channel", f"channel {voucher.channel_id} does not exist: open one", resource, price)
        if ch.payee != self.payee:
            raise self._refuse(
                "wrong_payee", f"channel {voucher.channel_id} pays {ch.payee}, not this service ({self.payee})",
                resource, price,
            )
        if not ch.is_open:
            raise self._refuse(
                "channel_closing",
                f"channel {voucher.channel_id} is closing or settled: its vouchers are no longer accepted; open a new channel",
                resource, price,
            )
        if ch.deposit < self.min_deposit:
            raise self._refuse(
                "deposit_too_small",
                f"channel {voucher.channel_id} holds {ch.deposit}, this service needs at least {self.min_deposit}",
                resource, price,
            )
        if voucher.cumulative > ch.deposit:
            raise self._refuse(
                "over_deposit",
                f"voucher for {voucher.cumulative} exceeds the deposit {ch.deposit} of channel {voucher.channel_id}: top it up",
                resource, price,
            )
        self._check_increase(state, voucher, resource, price)
        digest, signature = voucher.digest(), voucher.signature_bytes
        if offline and not ecdsa_signature_checker(ch.payer, digest, signature):
            raise _NeedsChain  # maybe a contract wallet: ask it on chain, off the event loop
        if not offline and not self.check_signature(ch.payer, digest, signature):
            raise self._refuse(
                "bad_signature",
                f"voucher signature is not the payer's ({ch.payer}) for channel {voucher.channel_id} and this amount",
                resource, price,
            )
        with self._lock:  # two requests may race with the same voucher: one wins
            self._check_increase(state, voucher, resource, price)
            payment = Payment(voucher.channel_id, ch.payer, price, voucher.cumulative, state.accepted, state.latest)
            state.accepted, state.latest = voucher.cumulative, voucher
        return payment

    def _check_increase(self, state: _ChannelState, voucher: PaymentVoucher, resource: str, price: int) -> None:
        if voucher.cumulative <= state.accepted:
            raise self._refuse(
                "replayed_voucher",
                f"voucher for {voucher.cumulative} is not newer than the accepted {state.accepted} "
                f"on channel {voucher.channel_id}: sign cumulative {state.accepted + price}",
                resource, price,
            )
        if voucher.cumulative < state.accepted + price:
            raise self._refuse(
                "underpaid",
                f"voucher adds {voucher.cumulative - state.accepted}, the price is {price}: "
                f"sign cumulative {state.accepted + price}",
                resource, price,
            )

    def commit(self, payment: Payment) -> None:
        """The handler served the request: persist its voucher (if a store is configured)."""
        with self._lock:
            self.served += 1
            state = self._states.get(payment.channel_id)
            voucher = state.latest if state is not None and state.accepted == payment.cumulative else None
        if self.store is not None and voucher is not None:
            self.store.save(voucher)

    def rollback(self, payment: Payment) -> None:
        """Give a voucher back after the handler failed (only if nothing newer came since)."""
        with self._lock:
            state = self._states.get(payment.channel_id)
            if state is not None and state.accepted == payment.cumulative:
                state.accepted, state.latest = payment.previous, payment.previous_voucher

    def _state(self, channel_id: int, fresh_if_below: int, offline: bool = False) -> _ChannelState:
        """The cached channel, read again when stale or when a voucher exceeds its deposit."""
        now = self.clock()
        state = self._states.get(channel_id)
        if state is None or now - state.read_at > self.cache_seconds or state.channel.deposit < fresh_if_below:
            if offline:
                raise _NeedsChain
            channel = self.channel.channels(channel_id)
            with self._lock:
                state = self._states.get(channel_id)
                if state is None:
                    state = _ChannelState(channel, now)
                    if channel_id in self._restored:
                        state.latest, state.redeemed = self._restored[channel_id]
                        state.accepted = state.latest.cumulative
                    state = self._states.setdefault(channel_id, state)
                else:
                    state.channel, state.read_at = channel, now
        return state

    # -- money in ----------------------------------------------------------------------------
    def latest_voucher(self, channel_id: int) -> PaymentVoucher | None:
        state = self._states.get(channel_id)
        if state is not None:
            return state.latest
        restored = self._restored.get(channel_id)
        return restored[0] if restored else None

    def unredeemed(self, channel_id: int) -> int:
        """Accepted but not yet redeemed on chain: what the payee would lose if the payer's
        wallet stopped honouring the signature (e.g. a revoked session key)."""
        state = self._states.get(channel_id)
        if state is not None:
            return state.accepted - state.redeemed
        restored = self._restored.get(channel_id)
        return restored[0].cumulative - restored[1] if restored else 0

    def channels_to_settle(self) -> list[int]:
        """Channels holding accepted vouchers not redeemed yet (this run's and restored)."""
        ids = set(self._states) | set(self._restored)
        return sorted(i for i in ids if self.unredeemed(i) > 0)

    def settle(self, channel_id: int, *, close: bool = False) -> Tx | None:
        """Redeem the latest voucher (``close=True``: and settle the channel). None if there
        is nothing to redeem and no close was asked."""
        state = self._state(channel_id, fresh_if_below=0)
        voucher = state.latest
        if close:
            tx = self.channel.close(channel_id, voucher)
        elif voucher is None or state.accepted <= state.redeemed:
            return None
        else:
            tx = self.channel.redeem(voucher)
        if voucher is not None:
            state.redeemed = max(state.redeemed, voucher.cumulative)
            if self.store is not None:
                self.store.set_redeemed(self.channel.address, channel_id, state.redeemed)
        return tx
