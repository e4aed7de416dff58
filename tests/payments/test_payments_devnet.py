"""The AgentWallet + channel + 402 flow on a real anvil node over JSON-RPC: EIP-1271 voucher
checks go through eth_call, transactions through signed raw transactions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paid_service import Counters, Server, service_app
from payments_chain import CHALLENGE_PERIOD, E, PayChain, deploy_pay_chain

from verimesh.chain.accounts import dev_signers
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.compile import ArtifactSet
from verimesh.chain.devnet import AnvilNode, start_anvil
from verimesh.client.payments import ChannelBook, PaymentPolicy, WalletFunder
from verimesh.client.x402 import PayingClient, PaymentFailed
from verimesh.node.paywall import Paywall

pytestmark = pytest.mark.devnet
PRICE = E // 100


@pytest.fixture(scope="module")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    node = start_anvil(log_path=tmp_path_factory.mktemp("anvil-payments") / "anvil.log")
    yield node
    node.stop()


@pytest.fixture
def chain(anvil_node: AnvilNode, payment_artifacts: ArtifactSet) -> PayChain:
    backend = RpcBackend(anvil_node.url, gas_limit=5_000_000)
    return deploy_pay_chain(backend, payment_artifacts, dev_signers(4))


def test_agent_wallet_pays_over_http_on_anvil(chain: PayChain) -> None:
    paywall = Paywall(chain.channel.as_signer(chain.payee), chain.payee.address, PRICE)
    counters = Counters()
    policy = PaymentPolicy(
        max_price=PRICE,
        allowed_payees=[chain.payee.address],
        allowed_contracts=[chain.channel.address],
        chain_id=chain.backend.chain_id,
        deposit_requests=10,
    )
    book = ChannelBook(WalletFunder(chain.wallet, chain.channel, chain.agent), policy)
    payee_before = chain.token.balance_of(chain.payee.address)
    with Server(service_app(paywall, counters)) as server, PayingClient(book, base_url=server.url) as http:
        for i in range(4):
            assert http.post("/v1/echo", json={"i": i}).status_code == 200
        cid = book.channel_id(chain.payee.address)
        assert chain.channel.channels(cid).payer == chain.wallet.address
        paywall.settle(cid)  # the service redeems (EIP-1271 check on chain) before the owner acts
        chain.wallet.revoke_session_key(chain.agent.address, signer=chain.owner)
        with pytest.raises(PaymentFailed, match="bad_signature"):  # EIP-1271 over eth_call says no
            http.post("/v1/echo", json={})
    assert len(counters.served) == 4
    # the owner recovers the rest after the challenge period
    wallet_before = chain.token.balance_of(chain.wallet.address)
    chain.wallet.start_channel_close(chain.channel.address, cid, signer=chain.owner)
    chain.backend.advance_time(CHALLENGE_PERIOD + 1)
    chain.wallet.withdraw_channel(chain.channel.address, cid, signer=chain.owner)
    assert chain.token.balance_of(chain.wallet.address) == wallet_before + 6 * PRICE
    assert chain.token.balance_of(chain.payee.address) == payee_before + 4 * PRICE
