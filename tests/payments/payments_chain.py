"""A payments deployment through the typed clients (any backend): token, channel contract,
an AgentWallet with a session key, funded accounts. Used by the client and HTTP tests."""

from __future__ import annotations

from dataclasses import dataclass

from verimesh.chain.accounts import Signer
from verimesh.chain.agent_wallet import AgentWalletClient, deploy_agent_wallet
from verimesh.chain.backends.base import Backend
from verimesh.chain.compile import ArtifactSet
from verimesh.chain.payment_channel import PaymentChannelClient, deploy_payment_channel
from verimesh.chain.token import TokenClient

E = 10**18
CHALLENGE_PERIOD = 600


@dataclass
class PayChain:
    backend: Backend
    token: TokenClient
    channel: PaymentChannelClient
    wallet: AgentWalletClient
    owner: Signer
    agent: Signer  # session key of `wallet`
    payer: Signer  # plain account
    payee: Signer


def deploy_pay_chain(backend: Backend, artifacts: ArtifactSet, signers: list[Signer] | None = None) -> PayChain:
    """``signers`` (owner, agent, payer, payee) must hold ETH on a real node; random keys
    are given ETH on the in-process chain."""
    owner, agent, payer, payee = signers or [Signer.random() for _ in range(4)]
    if hasattr(backend, "set_eth_balance"):
        for s in (owner, agent, payer, payee):
            backend.set_eth_balance(s.address, 10**20)
    token, _ = TokenClient.deploy(backend, owner, artifacts["Token"], "verimesh test token", "VMT", 18, owner.address)
    channel = deploy_payment_channel(backend, owner, artifacts["PaymentChannel"], token.address, CHALLENGE_PERIOD)
    wallet = deploy_agent_wallet(backend, owner, artifacts["AgentWallet"], owner.address, token.address)
    token.mint(owner.address, 1_000 * E)
    token.mint(payer.address, 1_000 * E)
    token.approve(wallet.address, 500 * E)
    wallet.top_up(500 * E)
    wallet.add_session_key(
        agent.address, 20 * E, 100 * E, 86_400, backend.timestamp() + 86_400, [payee.address, channel.address]
    )
    token.as_signer(payer).approve(channel.address, 2**256 - 1)
    return PayChain(
        backend, token, channel.as_signer(payer), wallet.as_signer(agent), owner, agent, payer, payee
    )
