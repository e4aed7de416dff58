"""Typed clients over the in-process backend; the EIP-1271 checker inside the envelope Verifier."""

from __future__ import annotations

import pytest
from eth_account.datastructures import SignedMessage
from payments_chain import CHALLENGE_PERIOD, E, PayChain, deploy_pay_chain

from verimesh.chain.accounts import Signer
from verimesh.chain.agent_wallet import SessionStatus, eip1271_checker
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.compile import ArtifactSet
from verimesh.chain.errors import ContractRevert
from verimesh.chain.payment_channel import PaymentError, PaymentVoucher
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.envelope import BadSignatureError, Verifier, seal
from verimesh.crypto.messages import Request
from verimesh.crypto.nonces import MemoryNonceStore


class KeyAs:
    """Signs EIP-712 with ``signer``'s key while naming ``address`` as the envelope signer."""

    def __init__(self, signer: Signer, address: str) -> None:
        self._account = signer._account
        self.address = address

    def sign_typed_data(self, full_message: dict) -> SignedMessage:
        return self._account.sign_typed_data(full_message=full_message)


@pytest.fixture
def chain(payment_artifacts: ArtifactSet) -> PayChain:
    return deploy_pay_chain(BoaBackend(), payment_artifacts)


def test_wallet_client_policy_views_and_reverts(chain: PayChain) -> None:
    session = chain.wallet.sessions(chain.agent.address)
    assert session.status is SessionStatus.ACTIVE and session.allowance == 100 * E
    assert chain.wallet.is_allowed(chain.agent.address, chain.payee.address)
    tx = chain.wallet.pay(chain.payee.address, 5 * E)
    assert tx.event("Paid")["amount"] == 5 * E
    assert chain.wallet.spent_in_window(chain.agent.address) == 5 * E
    with pytest.raises(ContractRevert, match="agent_wallet: over per-payment limit"):
        chain.wallet.pay(chain.payee.address, 21 * E)
    chain.wallet.revoke_session_key(chain.agent.address, signer=chain.owner)
    assert chain.wallet.available(chain.agent.address) == 0
    with pytest.raises(ContractRevert, match="agent_wallet: session key revoked"):
        chain.wallet.pay(chain.payee.address, 1 * E)


def test_channel_client_round_trip_from_wallet(chain: PayChain) -> None:
    cid, _ = chain.wallet.open_channel(chain.channel.address, chain.payee.address, 10 * E)
    state = chain.channel.channels(cid)
    assert state.payer == chain.wallet.address and state.is_open
    voucher = chain.channel.sign_voucher(chain.agent, cid, 4 * E)
    assert voucher.digest() == chain.channel.voucher_digest(cid, 4 * E)
    assert PaymentVoucher.from_header(voucher.to_header()) == voucher
    payee_channel = chain.channel.as_signer(chain.payee)
    tx = payee_channel.close(cid, voucher)
    assert tx.event("Settled")["refunded"] == 6 * E
    assert chain.token.balance_of(chain.payee.address) == 4 * E


def test_unilateral_close_through_clients(chain: PayChain) -> None:
    cid, _ = chain.channel.open(chain.payee.address, 10 * E)
    chain.channel.start_close(cid)
    with pytest.raises(ContractRevert, match="challenge period not over"):
        chain.channel.withdraw(cid)
    chain.backend.advance_time(CHALLENGE_PERIOD + 1)
    before = chain.token.balance_of(chain.payer.address)
    chain.channel.withdraw(cid)
    assert chain.token.balance_of(chain.payer.address) == before + 10 * E


def test_malformed_voucher_header_is_a_clear_error() -> None:
    with pytest.raises(PaymentError, match="not base64url"):
        PaymentVoucher.from_header("%%%")
    with pytest.raises(PaymentError, match="not a valid voucher"):
        PaymentVoucher.from_header("e30=")  # {}


def test_verifier_accepts_contract_wallet_envelopes_via_eip1271(chain: PayChain) -> None:
    """An envelope whose signer is the AgentWallet, signed by its session key."""
    domain = Domain(chain_id=chain.backend.chain_id, verifying_contract=chain.channel.address)
    verifier = Verifier(domain, MemoryNonceStore(), signature_checker=eip1271_checker(chain.backend))
    message = Request.for_http("POST", "/v1/jobs", b"{}")

    as_wallet = KeyAs(chain.agent, chain.wallet.address)  # session key signs as the wallet
    assert verifier.verify(seal(as_wallet, message, domain), Request).signer == chain.wallet.address
    # plain accounts still pass (ECDSA, no chain call)
    plain = KeyAs(chain.payer, chain.payer.address)
    assert verifier.verify(seal(plain, message, domain), Request).signer == chain.payer.address
    # another key claiming to be the wallet is refused
    with pytest.raises(BadSignatureError):
        verifier.verify(seal(KeyAs(chain.payee, chain.wallet.address), message, domain), Request)
    chain.wallet.revoke_session_key(chain.agent.address, signer=chain.owner)
    with pytest.raises(BadSignatureError):
        verifier.verify(seal(as_wallet, message, domain), Request)
