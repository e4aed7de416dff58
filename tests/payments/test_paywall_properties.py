"""Property: whatever vouchers arrive (valid, forged, replayed, stale, over the deposit, for
other channels, racing), the paywall accepts a request only when the payee gains at least
one price of redeemable value, and what it holds is always redeemable on chain in full."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments_chain import E, PayChain, deploy_pay_chain

from verimesh.chain.accounts import Signer
from verimesh.chain.agent_wallet import eip1271_checker
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import ArtifactSet
from verimesh.node.paywall import PaymentRefused, Paywall

PRICE = E // 100
DEPOSIT = 30 * PRICE

step = st.tuples(
    st.sampled_from(["payer", "payer", "payer", "stranger"]),  # who signs
    st.integers(0, 2),  # which channel: 0, 1 ours; 2 pays someone else
    st.integers(-2, 4),  # cumulative = accepted + k * PRICE (k <= 0: replay / stale)
    st.sampled_from(["serve", "serve", "serve", "fail"]),  # does the handler succeed
)


@pytest.fixture(scope="module")
def setup(payment_artifacts: ArtifactSet) -> tuple[PayChain, list[int]]:
    chain = deploy_pay_chain(BoaBackend(), payment_artifacts)
    ids = [chain.channel.open(chain.payee.address, DEPOSIT)[0] for _ in range(2)]
    ids.append(chain.channel.open(Signer.random().address, DEPOSIT)[0])
    return chain, ids


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=40))
def test_paywall_accepts_only_new_redeemable_value(setup: tuple[PayChain, list[int]], steps: list) -> None:
    chain, ids = setup
    stranger = Signer.random()
    paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE, min_deposit=PRICE)
    served = {cid: 0 for cid in ids}  # prices of requests whose handler completed
    for who, pick, k, outcome in steps:
        cid = ids[pick]
        before = paywall._states[cid].accepted if cid in paywall._states else 0
        cumulative = max(0, before + k * PRICE)
        signer = chain.payer if who == "payer" else stranger
        header = chain.channel.sign_voucher(signer, cid, cumulative).to_header()
        try:
            payment = paywall.accept(header, "/x", PRICE)
        except PaymentRefused:
            assert paywall.latest_voucher(cid) is None or paywall._states[cid].accepted == before
            continue
        # accepted: ours, signed by the payer, at least one price more, within the deposit
        assert pick != 2 and who == "payer"
        assert payment.cumulative >= before + PRICE and payment.cumulative <= DEPOSIT
        if outcome == "fail":
            paywall.rollback(payment)
            assert paywall._states[cid].accepted == before
        else:
            served[cid] += PRICE
    for cid in ids[:2]:
        voucher = paywall.latest_voucher(cid)
        held = voucher.cumulative if voucher else 0
        assert held >= served[cid]  # never served more than it is paid for
        if voucher is not None:  # and everything it holds passes the contract's redeem checks
            state = chain.channel.channels(cid)
            assert state.is_open and state.redeemed < held <= state.deposit
            digest = chain.channel.voucher_digest(cid, held)
            assert digest == voucher.digest()
            assert eip1271_checker(chain.backend)(state.payer, digest, voucher.signature_bytes)
