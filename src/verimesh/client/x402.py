"""An httpx client that pays for requests in the style of x402, with channel vouchers.

    book = ChannelBook(AccountFunder(channel_client, payer), policy)
    with PayingClient(book, base_url="http://127.0.0.1:8080") as http:
        r = http.post("/v1/embed", json={...})   # 402 -> check offer -> open channel -> retry paid
        book.ledger.total                        # what it paid so far

On ``402 Payment Required`` the client reads the offer (``PaymentRequired`` body), checks it
against its ``PaymentPolicy`` (price, payee, channel contract, chain), opens a channel if it
has none with that payee, and retries once with a signed voucher in ``X-Payment``. A served
answer carries ``X-Payment-Receipt``; only then does the book count the voucher as paid for
work received. See ``verimesh.client.payments`` for why a client never pays for work it did
not receive beyond one request's price.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
from pydantic import ValidationError

from verimesh.chain.payment_channel import (
    PAYMENT_HEADER,
    RECEIPT_HEADER,
    PaymentError,
    PaymentOffer,
    PaymentReceipt,
    PaymentRequired,
    PaymentVoucher,
)
from verimesh.client.payments import ChannelBook, OfferRejected, PaymentClientError

# 402 errors after which the client opens a fresh channel instead of giving up.
_REOPEN_ERRORS = {"channel_closing", "unknown_channel", "wrong_payee"}


class MalformedOfferError(PaymentClientError):
    """The service answered 402 with a body that is not a valid x402 offer."""


class PaymentFailed(PaymentClientError):
    """The service refused a voucher; ``error`` is its machine-readable reason."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"the service refused the payment ({error}): {detail}")
        self.error = error
        self.detail = detail


def parse_payment_required(response: httpx.Response) -> PaymentRequired:
    """The x402 body of a 402 answer (also accepted wrapped as FastAPI's ``{"detail": ...}``)."""
    try:
        body = response.json()
    except ValueError:
        raise MalformedOfferError(
            f"{response.request.url} answered 402 without a JSON body; it does not speak x402"
        ) from None
    if isinstance(body, dict) and "accepts" not in body and isinstance(body.get("detail"), dict):
        body = body["detail"]
    try:
        required = PaymentRequired.model_validate(body)
    except ValidationError as exc:
        first = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise MalformedOfferError(f"{response.request.url} answered 402 with a malformed offer: {first}") from None
    if not required.accepts:
        raise MalformedOfferError(f"{response.request.url} answered 402 with no offer in 'accepts'")
    return required


def pick_offer(book: ChannelBook, required: PaymentRequired) -> PaymentOffer:
    """The first offer the buyer's policy and funder accept; else every reason, joined."""
    errors = []
    for offer in required.accepts:
        try:
            book.policy.check(offer)
        except PaymentClientError as exc:
            errors.append(str(exc))
            continue
        if offer.channel_contract == book.funder.contract:
            return offer
        errors.append(f"offer uses channel contract {offer.channel_contract}, not {book.funder.contract}")
    raise OfferRejected("; ".join(errors))


def paid_kwargs(voucher: PaymentVoucher, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request's keyword arguments with the voucher in the payment header."""
    headers = dict(kwargs.get("headers") or {})
    headers[PAYMENT_HEADER] = voucher.to_header()
    return {**kwargs, "headers": headers}


def handle_paid_response(
    book: ChannelBook, offer: PaymentOffer, voucher: PaymentVoucher, response: httpx.Response, url: str
) -> bool:
    """Book-keeping after a paid attempt: True when ``response`` is the final answer, False
    when the channel was dropped and a new one should be tried; raises on a refusal."""
    if response.status_code != 402:
        _acknowledge(book, offer, voucher, response, url)
        return True
    refusal = parse_payment_required(response)
    if refusal.error in _REOPEN_ERRORS:
        book.forget(offer.payee)
        return False
    if refusal.error == "replayed_voucher":
        book.kept_without_serving(offer, voucher, url)
    else:
        book.refused(offer, voucher)
    raise PaymentFailed(refusal.error, refusal.detail)


def _acknowledge(
    book: ChannelBook, offer: PaymentOffer, voucher: PaymentVoucher, response: httpx.Response, url: str
) -> None:
    """Count the voucher as paid for received work only on a successful, receipted answer."""
    if not response.is_success:
        return  # the service gave the voucher back (handler failed); resend it next time
    raw = response.headers.get(RECEIPT_HEADER)
    try:
        receipt = PaymentReceipt.from_header(raw) if raw else None
    except PaymentError:
        receipt = None
    if receipt is None or receipt.cumulative != voucher.cumulative or receipt.channel_id != voucher.channel_id:
        return  # unreceipted success: keep the voucher pending, never sign more for it
    book.served(offer, voucher, url)


def _offer_key(http: httpx.Client | httpx.AsyncClient, method: str, url: str) -> tuple[str, str]:
    return method.upper(), str(http.build_request(method, url).url.copy_with(query=None))


_GAVE_UP = "the service refused a freshly opened channel too"


class PayingClient:
    """``httpx.Client`` that pays on 402. Same request API (``get``, ``post``, ``request``)."""

    def __init__(self, book: ChannelBook, http: httpx.Client | None = None, **httpx_kwargs: Any) -> None:
        self.book = book
        self.http = http or httpx.Client(**httpx_kwargs)
        # offers already seen, per (method, URL without query): later requests pay up front
        # instead of taking a 402 round trip each time
        self._offers: dict[tuple[str, str], PaymentOffer] = {}

    def __enter__(self) -> PayingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send; on 402 pay per the offer and retry. Returns the service's final answer.

        Once a resource's offer is known, requests carry a voucher from the start.
        """
        key = _offer_key(self.http, method, url)
        offer = self._offers.get(key)
        if offer is None:
            response = self.http.request(method, url, **kwargs)
            if response.status_code != 402:
                return response
            offer = pick_offer(self.book, parse_payment_required(response))
            self._offers[key] = offer
        try:
            with self.book.lock():
                for _ in range(2):  # a second round only after a closed channel was dropped
                    voucher = self.book.voucher_for(offer)
                    response = self.http.request(method, url, **paid_kwargs(voucher, kwargs))
                    if handle_paid_response(self.book, offer, voucher, response, url):
                        return response
            raise PaymentFailed("channel_closing", _GAVE_UP)
        except PaymentClientError:
            self._offers.pop(key, None)  # terms may have changed: read them again next time
            raise


class AsyncPayingClient:
    """``httpx.AsyncClient`` that pays on 402, for agents that buy from many services at once.

    Payments to one book are still one at a time (an ``asyncio.Lock``: the exposure rule
    needs a single pending voucher); chain transactions (opening, topping up) run in a
    worker thread. Do not share a book between a sync and an async client.
    """

    def __init__(self, book: ChannelBook, http: httpx.AsyncClient | None = None, **httpx_kwargs: Any) -> None:
        self.book = book
        self.http = http or httpx.AsyncClient(**httpx_kwargs)
        self._offers: dict[tuple[str, str], PaymentOffer] = {}
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncPayingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """As ``PayingClient.request``."""
        key = _offer_key(self.http, method, url)
        offer = self._offers.get(key)
        if offer is None:
            response = await self.http.request(method, url, **kwargs)
            if response.status_code != 402:
                return response
            offer = pick_offer(self.book, parse_payment_required(response))
            self._offers[key] = offer
        try:
            async with self._lock:
                for _ in range(2):
                    voucher = await anyio.to_thread.run_sync(self.book.voucher_for, offer)
                    response = await self.http.request(method, url, **paid_kwargs(voucher, kwargs))
                    if handle_paid_response(self.book, offer, voucher, response, url):
                        return response
            raise PaymentFailed("channel_closing", _GAVE_UP)
        except PaymentClientError:
            self._offers.pop(key, None)
            raise
