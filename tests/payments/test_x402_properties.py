"""Property over real HTTP: against a service that behaves at random per request (serves,
fails and gives the voucher back, keeps the voucher without serving, or lies with a 402),
what the service can redeem never exceeds the work the client received plus one price,
and the service never served a request it was not paid for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paid_service import Server
from payments_chain import E, PayChain, deploy_pay_chain

from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import ArtifactSet
from verimesh.chain.payment_channel import (
    PAYMENT_HEADER,
    RECEIPT_HEADER,
    PaymentReceipt,
    PaymentRequired,
)
from verimesh.client.payments import AccountFunder, ChannelBook, PaymentClientError, PaymentPolicy
from verimesh.client.x402 import PayingClient
from verimesh.node.paywall import PaymentRefused, Paywall

PRICE = E // 100


class Moody:
    """The service's state for one example: its paywall and the next behaviours."""

    paywall: Paywall
    behaviours: list[str]
    served: int


def moody_app(moody: Moody) -> FastAPI:
    app = FastAPI()

    @app.post("/work")
    async def work(request: Request) -> JSONResponse:
        behaviour = moody.behaviours.pop(0) if moody.behaviours else "serve"
        paywall = moody.paywall
        if behaviour == "lie":
            body = PaymentRequired(error="underpaid", detail="lying", accepts=[paywall.offer("/work")])
            return JSONResponse(body.model_dump(mode="json"), status_code=402)
        try:
            payment = paywall.accept(request.headers.get(PAYMENT_HEADER), "/work", paywall.price)
        except PaymentRefused as exc:
            return JSONResponse(exc.body.model_dump(mode="json"), status_code=402)
        if behaviour == "fail":
            paywall.rollback(payment)
            return JSONResponse({"error": "busy"}, status_code=503)
        if behaviour == "cheat":
            return JSONResponse({"error": "oops"}, status_code=500)
        paywall.commit(payment)
        moody.served += 1
        receipt = PaymentReceipt(channel_id=payment.channel_id, cumulative=payment.cumulative, price=payment.price)
        return JSONResponse({"ok": True}, headers={RECEIPT_HEADER: receipt.to_header()})

    return app


@pytest.fixture(scope="module")
def moody_world(payment_artifacts: ArtifactSet) -> Iterator[tuple[PayChain, Moody, Server]]:
    chain = deploy_pay_chain(BoaBackend(), payment_artifacts)
    moody = Moody()
    with Server(moody_app(moody)) as server:
        yield chain, moody, server


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(behaviours=st.lists(st.sampled_from(["serve", "serve", "fail", "cheat", "lie"]), min_size=1, max_size=14))
def test_client_exposure_is_one_price_against_any_service(moody_world, behaviours: list[str]) -> None:
    chain, moody, server = moody_world
    moody.paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE)
    moody.behaviours = list(behaviours)
    moody.served = 0
    policy = PaymentPolicy(
        max_price=PRICE,
        allowed_payees=[chain.payee.address],
        allowed_contracts=[chain.channel.address],
        chain_id=chain.backend.chain_id,
        deposit_requests=50,
    )
    book = ChannelBook(AccountFunder(chain.channel, chain.payer), policy)
    received = 0
    with PayingClient(book, base_url=server.url) as http:
        for _ in range(len(behaviours) + 2):
            try:
                if http.post("/work", json={}).status_code == 200:
                    received += 1
            except PaymentClientError:
                pass
    cid = book.channel_id(chain.payee.address)
    held = moody.paywall.latest_voucher(cid)
    redeemable = held.cumulative if held else 0
    assert moody.served == received  # every served answer reached the client
    assert redeemable >= moody.served * PRICE  # never served unpaid work
    assert redeemable <= received * PRICE + PRICE  # client exposure: one price at most
    assert book.ledger.unserved <= PRICE
