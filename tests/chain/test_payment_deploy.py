"""PaymentChannel is part of every network deployment; older deployment.json files (without
it) still connect; the node's envelope verifier accepts an AgentWallet (EIP-1271) signer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account.datastructures import SignedMessage

from verimesh.chain.accounts import Signer, dev_signer
from verimesh.chain.agent_wallet import deploy_agent_wallet
from verimesh.chain.backends.base import Backend
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.client import CONTRACTS, Network
from verimesh.chain.compile import ArtifactSet, load_artifacts
from verimesh.chain.deploy import deploy_network, describe, fund_accounts
from verimesh.chain.deployment import VMT, NetworkParams
from verimesh.chain.devnet import AnvilNode
from verimesh.crypto.envelope import BadSignatureError, seal
from verimesh.crypto.messages import JobResultRequest
from verimesh.crypto.wallet import Wallet
from verimesh.node.daemon import DaemonSettings, NodeDaemon
from verimesh.paths import HOME_ENV

GAS_LIMIT = 5_000_000  # explicit: no eth_estimateGas round trip per devnet transaction


@pytest.fixture(scope="module")
def artifacts(artifact_cache: Path) -> ArtifactSet:
    return load_artifacts(cache_dir=artifact_cache, names=[*CONTRACTS, "AgentWallet"])


def test_deployment_includes_a_working_payment_channel(
    backend: Backend, artifacts: ArtifactSet, tmp_path: Path
) -> None:
    deployer, payer, payee = dev_signer(0), dev_signer(1), dev_signer(2)
    params = NetworkParams(channel_challenge_period=1_234)
    network = deploy_network(backend, deployer, params, artifacts)
    channel = network.payment_channel
    assert channel is not None
    assert channel.token().lower() == network.token.address.lower()
    assert channel.challenge_period() == 1_234
    assert channel in network.clients

    # deployment.json records the address and Network.connect builds its client
    path = tmp_path / "deployment.json"
    describe(network, deployer, params, artifacts, None).save(path)
    assert json.loads(path.read_text())["contracts"]["payment_channel"] == channel.address
    joined = Network.connect(path, payer, backend=backend, artifacts=artifacts)
    assert joined.payment_channel is not None
    assert joined.payment_channel.address == channel.address

    # usable end to end: the payer opens, signs a voucher, the payee redeems it
    fund_accounts(network, deployer, [payer.address], 10 * VMT)
    joined.token.approve(channel.address, 5 * VMT)
    channel_id, _ = joined.payment_channel.open(payee.address, 5 * VMT)
    voucher = joined.payment_channel.sign_voucher(payer, channel_id, 2 * VMT)
    joined.as_signer(payee).payment_channel.redeem(voucher)
    assert network.token.balance_of(payee.address) == 2 * VMT
    assert channel.channels(channel_id).redeemed == 2 * VMT


def test_deployment_json_without_payment_channel_still_connects(
    artifacts: ArtifactSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment.json written before the channel joined every deployment."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    backend, deployer = BoaBackend(), dev_signer(0)
    params = NetworkParams()
    network = deploy_network(backend, deployer, params, artifacts)
    doc = describe(network, deployer, params, artifacts, None).model_dump(mode="json")
    del doc["contracts"]["payment_channel"]
    del doc["params"]["channel_challenge_period"]
    del doc["contracts"]["committee"]  # written before the committee joined every deployment too
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(doc))

    old = Network.connect(path, dev_signer(1), backend=backend, artifacts=artifacts)
    assert old.payment_channel is None
    assert old.clients == [old.token, old.registry, old.job_market]
    assert old.as_signer(dev_signer(2)).payment_channel is None
    assert old.token.address == network.token.address
    # connecting with the default artifacts (CONTRACTS): the sources digest still matches
    assert Network.connect(path, backend=backend).job_market.address == network.job_market.address


class KeyAs:
    """Signs EIP-712 with ``signer``'s key while naming ``address`` as the envelope signer."""

    def __init__(self, signer: Signer, address: str) -> None:
        self._account = signer._account
        self.address = address

    def sign_typed_data(self, full_message: dict) -> SignedMessage:
        return self._account.sign_typed_data(full_message=full_message)


@pytest.mark.devnet
def test_node_verifier_accepts_an_agent_wallet_signer(
    anvil: AnvilNode,
    artifacts: ArtifactSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node daemon's own Verifier: a JobResultRequest signed by an AgentWallet (its owner,
    the requester's key, signs) opens; the wallet's address is the verified signer."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    backend = RpcBackend(anvil.url, gas_limit=GAS_LIMIT)
    deployer, requester, provider, stranger = dev_signer(0), dev_signer(1), dev_signer(2), dev_signer(3)
    params = NetworkParams()
    network = deploy_network(backend, deployer, params, artifacts)
    path = tmp_path / "deployment.json"
    describe(network, deployer, params, artifacts, anvil.url).save(path)
    wallet = deploy_agent_wallet(
        backend, deployer, artifacts["AgentWallet"], requester.address, network.token.address
    )

    node = NodeDaemon(
        DaemonSettings(
            home=tmp_path / "node",
            deployment=path,
            wallet=Wallet.from_key("provider", provider._account.key),
        )
    )
    message = JobResultRequest(job_id=7, requester=wallet.address)
    verified = node.verifier.verify(seal(KeyAs(requester, wallet.address), message, node.domain), JobResultRequest)
    assert verified.signer.lower() == wallet.address.lower()
    assert verified.message.requester.lower() == wallet.address.lower()
    # plain accounts still pass; a key that is not the wallet's is refused
    plain = JobResultRequest(job_id=7, requester=requester.address)
    assert node.verifier.verify(seal(KeyAs(requester, requester.address), plain, node.domain), JobResultRequest).signer == requester.address
    with pytest.raises(BadSignatureError):
        node.verifier.verify(seal(KeyAs(stranger, wallet.address), message, node.domain), JobResultRequest)


@pytest.mark.devnet
def test_node_verifier_answers_503_when_it_cannot_read_a_contract_signer(
    anvil: AnvilNode,
    artifacts: ArtifactSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A contract signer can only be checked on chain: with the chain out of reach the node
    says so (503, retry) instead of calling the signature bad or failing with a 500."""
    import socket

    from verimesh.chain.deployment import Deployment
    from verimesh.node.api import Rejected

    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    backend = RpcBackend(anvil.url, gas_limit=GAS_LIMIT)
    deployer, requester, provider = dev_signer(0), dev_signer(1), dev_signer(2)
    params = NetworkParams()
    network = deploy_network(backend, deployer, params, artifacts)
    wallet = deploy_agent_wallet(
        backend, deployer, artifacts["AgentWallet"], requester.address, network.token.address
    )
    with socket.socket() as probe:  # a port nobody listens on: the chain is "down"
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    deployment = describe(network, deployer, params, artifacts, anvil.url)
    path = tmp_path / "deployment.json"
    Deployment.model_validate({**deployment.model_dump(), "rpc_url": dead_url}).save(path)

    node = NodeDaemon(
        DaemonSettings(home=tmp_path / "node", deployment=path, wallet=Wallet.from_key("p", provider._account.key))
    )
    message = JobResultRequest(job_id=7, requester=wallet.address)
    with pytest.raises(Rejected) as refused:
        node.verifier.verify(seal(KeyAs(requester, wallet.address), message, node.domain), JobResultRequest)
    assert refused.value.status == 503 and "cannot reach the chain" in refused.value.detail
    # a plain account needs no chain: still served
    plain = JobResultRequest(job_id=7, requester=requester.address)
    assert node.verifier.verify(seal(KeyAs(requester, requester.address), plain, node.domain), JobResultRequest).signer == requester.address
