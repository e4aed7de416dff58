"""The 402 flow end to end over real HTTP (uvicorn on 127.0.0.1) and the in-process chain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from paid_service import Counters, Server, service_app
from payments_chain import CHALLENGE_PERIOD, E, PayChain, deploy_pay_chain

from verimesh.chain.accounts import Signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import ArtifactSet
from verimesh.chain.payment_channel import PAYMENT_HEADER, PaymentVoucher
from verimesh.client.payments import (
    AccountFunder,
    ChannelBook,
    OfferRejected,
    PaymentPolicy,
    ServiceCheatedError,
    WalletFunder,
)
from verimesh.client.x402 import AsyncPayingClient, MalformedOfferError, PayingClient, PaymentFailed
from verimesh.node.paywall import Paywall, VoucherStore

PRICE = E // 100  # 0.01 VMT per request


@pytest.fixture
def chain(payment_artifacts: ArtifactSet) -> PayChain:
    return deploy_pay_chain(BoaBackend(), payment_artifacts)


@pytest.fixture
def service(chain: PayChain) -> Iterator[tuple[Server, Paywall, Counters]]:
    paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE, terms="test service")
    counters = Counters()
    with Server(service_app(paywall, counters)) as server:
        yield server, paywall, counters


def policy(chain: PayChain, **overrides: object) -> PaymentPolicy:
    fields = dict(
        max_price=PRICE,
        allowed_payees=[chain.payee.address],
        allowed_contracts=[chain.channel.address],
        chain_id=chain.backend.chain_id,
        deposit_requests=20,
    )
    return PaymentPolicy(**{**fields, **overrides})


def account_book(chain: PayChain, **overrides: object) -> ChannelBook:
    return ChannelBook(AccountFunder(chain.channel, chain.payer), policy(chain, **overrides))


def test_unpaid_request_gets_a_402_offer_and_is_not_served(chain: PayChain, service) -> None:
    server, _paywall, counters = service
    r = httpx.post(f"{server.url}/v1/echo", json={"x": 1})
    assert r.status_code == 402
    body = r.json()
    assert body["error"] == "payment_required" and body["x402_version"] == 1
    (offer,) = body["accepts"]
    assert offer["price"] == PRICE and offer["payee"] == chain.payee.address
    assert offer["channel_contract"] == chain.channel.address and offer["chain_id"] == chain.backend.chain_id
    assert offer["challenge_period"] == CHALLENGE_PERIOD and offer["terms"] == "test service"
    assert counters.served == [] and httpx.get(f"{server.url}/free").status_code == 200


def test_client_pays_each_request_with_one_channel(chain: PayChain, service) -> None:
    server, paywall, counters = service
    book = account_book(chain)
    with PayingClient(book, base_url=server.url) as http:
        for i in range(25):  # crosses the 20-request deposit: one top-up
            r = http.post("/v1/echo", json={"i": i})
            assert r.status_code == 200 and r.json()["echo"] == {"i": i}
    assert counters.served == [PRICE * (i + 1) for i in range(25)]
    assert book.ledger.total == 25 * PRICE and book.ledger.unserved == 0
    cid = book.channel_id(chain.payee.address)
    assert chain.channel.channel_count() == 1 and chain.channel.channels(cid).deposit == 40 * PRICE
    paywall.settle(cid)
    assert chain.token.balance_of(chain.payee.address) == 25 * PRICE
    assert paywall.unredeemed(cid) == 0


def _header(voucher: PaymentVoucher) -> dict[str, str]:
    return {PAYMENT_HEADER: voucher.to_header()}


def test_service_refuses_bad_vouchers_without_serving(chain: PayChain, service) -> None:
    server, paywall, counters = service
    ch = chain.channel
    cid, _ = ch.open(chain.payee.address, 10 * PRICE)
    other_cid, _ = ch.open(chain.payee.address, 10 * PRICE)
    stranger = Signer.random()
    url = f"{server.url}/v1/echo"

    def refused(headers: dict[str, str]) -> str:
        r = httpx.post(url, json={}, headers=headers)
        assert r.status_code == 402, r.text
        assert r.json()["accepts"][0]["price"] == PRICE and r.json()["detail"]
        return r.json()["error"]

    good = ch.sign_voucher(chain.payer, cid, PRICE)
    forged = ch.sign_voucher(stranger, cid, PRICE)
    other = ch.sign_voucher(chain.payer, other_cid, PRICE)
    as_other = other.model_copy(update={"channel_id": cid})  # signed for another channel
    assert refused(_header(forged)) == "bad_signature"
    assert refused(_header(as_other)) == "bad_signature"
    assert refused(_header(ch.sign_voucher(chain.payer, cid, 11 * PRICE))) == "over_deposit"
    assert refused(_header(ch.sign_voucher(chain.payer, cid, PRICE // 2))) == "underpaid"
    assert refused(_header(ch.sign_voucher(chain.payer, 99, PRICE))) == "unknown_channel"
    assert refused({PAYMENT_HEADER: "not base64!"}) == "malformed_voucher"
    assert refused(_header(good.model_copy(update={"chain_id": 1}))) == "wrong_chain"
    assert refused(_header(good.model_copy(update={"contract": chain.token.address}))) == "wrong_contract"
    assert counters.served == []
    assert httpx.post(url, json={}, headers=_header(good)).status_code == 200
    assert refused(_header(good)) == "replayed_voucher"  # the same voucher again
    assert counters.served == [PRICE]
    # a channel the payer started closing: its vouchers are expired for the service
    ch.start_close(cid)
    paywall.cache_seconds = 0
    assert refused(_header(ch.sign_voucher(chain.payer, cid, 2 * PRICE))) == "channel_closing"
    assert counters.served == [PRICE]


def test_channel_to_another_payee_and_small_deposit_refused(chain: PayChain, service) -> None:
    server, _paywall, counters = service
    elsewhere, _ = chain.channel.open(Signer.random().address, 10 * PRICE)
    small, _ = chain.channel.open(chain.payee.address, PRICE)
    for cid, error in ((elsewhere, "wrong_payee"), (small, "deposit_too_small")):
        r = httpx.post(f"{server.url}/v1/echo", json={}, headers=_header(chain.channel.sign_voucher(chain.payer, cid, PRICE)))
        assert r.status_code == 402 and r.json()["error"] == error
    assert counters.served == []


def test_failed_handler_gives_the_voucher_back(chain: PayChain, service) -> None:
    server, paywall, counters = service
    book = account_book(chain)
    with PayingClient(book, base_url=server.url) as http:
        assert http.post("/v1/flaky").status_code == 503
        assert http.post("/v1/flaky").status_code == 503  # same voucher resent, not a new one
        assert http.post("/v1/echo", json={}).status_code == 200  # the pending voucher pays for this
    assert book.ledger.total == PRICE and counters.served == [PRICE]
    assert paywall.latest_voucher(book.channel_id(chain.payee.address)).cumulative == PRICE


def test_client_loses_at_most_one_price_to_a_cheating_service(chain: PayChain, service) -> None:
    server, paywall, _counters = service
    book = account_book(chain)
    with PayingClient(book, base_url=server.url) as http:
        assert http.post("/v1/cheat").status_code == 500  # voucher kept, nothing served
        with pytest.raises(PaymentFailed, match="replayed_voucher"):
            http.post("/v1/cheat")  # resent the same voucher: the service claims it already has it
        with pytest.raises(ServiceCheatedError):
            http.post("/v1/echo", json={})  # never pays that service again
    assert book.ledger.unserved == PRICE and book.ledger.total == PRICE
    # on chain the cheater can take at most that one price
    cid = book.channel_id(chain.payee.address)
    paywall.settle(cid, close=True)
    assert chain.token.balance_of(chain.payee.address) == PRICE


@pytest.mark.parametrize(("kind", "match"), [("text", "malformed offer"), ("empty", "no offer"), ("price", "malformed offer")])
def test_malformed_402_offer_is_a_clear_client_error(chain: PayChain, service, kind: str, match: str) -> None:
    server, _, _ = service
    book = account_book(chain)
    with PayingClient(book, base_url=server.url) as http, pytest.raises(MalformedOfferError, match=match):
        http.post("/v1/bad-offer", params={"kind": kind})
    assert chain.channel.channel_count() == 0  # nothing opened, nothing paid


def test_offer_outside_policy_is_rejected_before_any_money_moves(chain: PayChain, service) -> None:
    server, _, counters = service
    for overrides, match in (
        ({"max_price": PRICE - 1}, "above this buyer's max_price"),
        ({"allowed_payees": [Signer.random().address]}, "not in allowed_payees"),
        ({"chain_id": 1}, "chain"),
        ({"max_deposit": PRICE}, "at least"),
    ):
        book = account_book(chain, **overrides)
        with PayingClient(book, base_url=server.url) as http, pytest.raises(OfferRejected, match=match):
            http.post("/v1/echo", json={})
    assert chain.channel.channel_count() == 0 and counters.served == []


def test_agent_wallet_pays_through_session_key(chain: PayChain, service) -> None:
    """Channel funded by the AgentWallet under its policy; vouchers checked via EIP-1271."""
    server, _paywall, counters = service
    book = ChannelBook(WalletFunder(chain.wallet, chain.channel, chain.agent), policy(chain))
    with PayingClient(book, base_url=server.url) as http:
        for i in range(3):
            assert http.post("/v1/echo", json={"i": i}).status_code == 200
    cid = book.channel_id(chain.payee.address)
    assert chain.channel.channels(cid).payer == chain.wallet.address
    assert chain.wallet.spent_in_window(chain.agent.address) == 20 * PRICE  # the deposit counts
    # once the session key is revoked, its new vouchers are refused...
    chain.wallet.revoke_session_key(chain.agent.address, signer=chain.owner)
    with PayingClient(book, base_url=server.url) as http, pytest.raises(PaymentFailed, match="bad_signature"):
        http.post("/v1/echo", json={})
    assert len(counters.served) == 3


def test_vanished_payee_payer_recovers_funds_after_challenge_period(chain: PayChain, payment_artifacts) -> None:
    paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE)
    counters = Counters()
    book = account_book(chain)
    with Server(service_app(paywall, counters)) as server, PayingClient(book, base_url=server.url) as http:
        for _ in range(4):
            assert http.post("/v1/echo", json={}).status_code == 200
    # the service is gone (server stopped, never redeemed); the payer closes unilaterally
    cid = book.channel_id(chain.payee.address)
    before = chain.token.balance_of(chain.payer.address)
    chain.channel.start_close(cid)
    chain.backend.advance_time(CHALLENGE_PERIOD + 1)
    chain.channel.withdraw(cid)
    assert chain.token.balance_of(chain.payer.address) == before + 20 * PRICE
    assert chain.token.balance_of(chain.channel.address) == 0


def test_payee_redeems_newest_voucher_during_payer_close(chain: PayChain, service) -> None:
    """The payer starts closing after 5 paid requests; the service still collects all 5."""
    server, paywall, _counters = service
    book = account_book(chain)
    with PayingClient(book, base_url=server.url) as http:
        for _ in range(5):
            http.post("/v1/echo", json={})
    cid = book.channel_id(chain.payee.address)
    old = chain.channel.sign_voucher(chain.payer, cid, PRICE)
    chain.channel.redeem(old)  # the payer pushes an old voucher on chain first
    chain.channel.start_close(cid)
    chain.backend.advance_time(CHALLENGE_PERIOD // 2)
    paywall.settle(cid)  # newer voucher wins within the challenge period
    chain.backend.advance_time(CHALLENGE_PERIOD)
    chain.channel.withdraw(cid)
    assert chain.token.balance_of(chain.payee.address) == 5 * PRICE


def test_expired_session_key_vouchers_are_refused(chain: PayChain, service) -> None:
    server, _paywall, counters = service
    book = ChannelBook(WalletFunder(chain.wallet, chain.channel, chain.agent), policy(chain))
    with PayingClient(book, base_url=server.url) as http:
        assert http.post("/v1/echo", json={}).status_code == 200
        chain.backend.advance_time(86_400)  # the session key's expiry
        with pytest.raises(PaymentFailed, match="bad_signature"):
            http.post("/v1/echo", json={})
    assert len(counters.served) == 1


def test_restarted_service_refuses_replays_and_still_redeems(chain: PayChain, tmp_path) -> None:
    """Served vouchers survive a restart: old ones stay refused, the latest stays redeemable."""
    store_path = tmp_path / "vouchers.sqlite"
    payee_channel = chain.channel.as_signer(chain.payee)
    first = Paywall(payee_channel, chain.payee.address, PRICE, store=VoucherStore(store_path))
    book = account_book(chain)
    sent: list[str] = []
    with Server(service_app(first, Counters())) as server, PayingClient(book, base_url=server.url) as http:
        for _ in range(3):
            r = http.post("/v1/echo", json={})
            assert r.status_code == 200
            sent.append(r.request.headers[PAYMENT_HEADER])
    first.store.close()
    cid = book.channel_id(chain.payee.address)

    restarted = Paywall(payee_channel, chain.payee.address, PRICE, store=VoucherStore(store_path))
    counters = Counters()
    assert restarted.channels_to_settle() == [cid] and restarted.unredeemed(cid) == 3 * PRICE
    with Server(service_app(restarted, counters)) as server:
        for header in sent:  # a replay of any earlier voucher is refused after the restart too
            r = httpx.post(f"{server.url}/v1/echo", json={}, headers={PAYMENT_HEADER: header})
            assert r.status_code == 402 and r.json()["error"] == "replayed_voucher"
        with PayingClient(book, base_url=server.url) as http:
            assert http.post("/v1/echo", json={}).status_code == 200
    assert counters.served == [4 * PRICE]
    restarted.settle(cid)
    assert chain.token.balance_of(chain.payee.address) == 4 * PRICE
    assert restarted.channels_to_settle() == []
    restarted.store.close()


def test_async_client_pays_concurrent_requests_one_at_a_time(chain: PayChain, service) -> None:
    server, _paywall, counters = service
    book = account_book(chain)

    async def run() -> list[httpx.Response]:
        async with AsyncPayingClient(book, base_url=server.url) as http:
            return await asyncio.gather(*(http.post("/v1/echo", json={"i": i}) for i in range(8)))

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 8
    assert sorted(counters.served) == [PRICE * (i + 1) for i in range(8)]
    assert book.ledger.total == 8 * PRICE and chain.channel.channel_count() == 1


def test_client_recovers_when_the_service_raises_its_price(chain: PayChain, service) -> None:
    server, paywall, counters = service
    book = account_book(chain, max_price=3 * PRICE)
    with PayingClient(book, base_url=server.url) as http:
        assert http.post("/v1/echo", json={}).status_code == 200
        paywall.price = 2 * PRICE  # new terms: the cached offer's voucher is now underpaid
        with pytest.raises(PaymentFailed, match="underpaid"):
            http.post("/v1/echo", json={})
        assert http.post("/v1/echo", json={}).status_code == 200  # re-reads the offer, pays the new price
    assert counters.served == [PRICE, 3 * PRICE]
    assert book.ledger.total == 3 * PRICE and book.ledger.unserved == 0
