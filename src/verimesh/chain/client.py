"""One object for the whole protocol on one chain: ``Network`` = Token + Registry + JobMarket
(+ PaymentChannel, for per-request payments, the DisputeCommittee, JobMarket's referee, and
the OpReferee, which settles a dispute by an on-chain proof of one wrong op, in deployments
that have them).

Everything above the chain layer (node, SDK, CLI, agents) starts here:

    net = Network.connect("~/.verimesh/devnet/deployment.json", signer)
    net.token.approve(net.job_market.address, amount)
    posted = net.job_market.post_job(...)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from verimesh.chain.accounts import Signer
from verimesh.chain.backends.base import Backend
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.committee import CommitteeClient
from verimesh.chain.compile import ArtifactSet, load_artifacts
from verimesh.chain.contract import ContractClient
from verimesh.chain.deployment import Deployment
from verimesh.chain.errors import DeploymentError
from verimesh.chain.job_market import JobMarketClient
from verimesh.chain.op_referee import OpRefereeClient
from verimesh.chain.payment_channel import PaymentChannelClient
from verimesh.chain.registry import RegistryClient
from verimesh.chain.token import TokenClient

# What ``deploy_network`` deploys. The sources digest a deployment records covers every
# contract source, so a deployment made before PaymentChannel joined this list still matches.
CONTRACTS = ["Token", "Registry", "JobMarket", "PaymentChannel", "DisputeCommittee", "OpCheck", "OpReferee"]


@dataclass(frozen=True)
class Network:
    backend: Backend
    token: TokenClient
    registry: RegistryClient
    job_market: JobMarketClient
    # None for a deployment.json written before every deployment had a channel
    payment_channel: PaymentChannelClient | None = None
    # JobMarket's referee; None for a deployment.json written before the committee existed
    committee: CommitteeClient | None = None
    # proves one wrong op on chain (OpCheck recomputes it); None for a deployment.json
    # written before on-chain op proofs existed
    op_referee: OpRefereeClient | None = None

    def as_signer(self, signer: Signer) -> Network:
        """The same contracts, sending as ``signer``."""
        return Network(
            self.backend,
            self.token.as_signer(signer),
            self.registry.as_signer(signer),
            self.job_market.as_signer(signer),
            self.payment_channel.as_signer(signer) if self.payment_channel else None,
            self.committee.as_signer(signer) if self.committee else None,
            self.op_referee.as_signer(signer) if self.op_referee else None,
        )

    @property
    def clients(self) -> list[ContractClient]:
        clients: list[ContractClient] = [self.token, self.registry, self.job_market]
        if self.payment_channel is not None:
            clients.append(self.payment_channel)
        if self.committee is not None:
            clients.append(self.committee)
        if self.op_referee is not None:
            clients.append(self.op_referee)
        return clients

    @classmethod
    def connect(
        cls,
        deployment: Deployment | Path | str,
        signer: Signer | None = None,
        backend: Backend | None = None,
        artifacts: ArtifactSet | None = None,
    ) -> Network:
        """Clients for a deployment; over its ``rpc_url`` unless a backend is given.

        Refuses a deployment made from other contract sources (its ABI may differ) or a
        node on another chain.
        """
        if not isinstance(deployment, Deployment):
            deployment = Deployment.load(Path(deployment).expanduser())
        artifacts = artifacts or load_artifacts(names=CONTRACTS)
        if artifacts.sources_sha256 != deployment.sources_sha256:
            raise DeploymentError(
                "this deployment was made from other contract sources than the installed ones; "
                "redeploy (`verimesh devnet down && verimesh devnet up`) or install the matching verimesh"
            )
        if backend is None:
            if not deployment.rpc_url:
                raise DeploymentError("this deployment has no rpc_url; pass the backend it lives on")
            backend = RpcBackend(deployment.rpc_url)
        if backend.chain_id != deployment.chain_id:
            raise DeploymentError(
                f"the node is on chain {backend.chain_id} but the deployment is for chain "
                f"{deployment.chain_id}: wrong --rpc-url or a restarted devnet; run `verimesh devnet up`"
            )
        addresses = deployment.contracts
        channel = None
        if addresses.payment_channel is not None:
            channel = PaymentChannelClient(
                backend, addresses.payment_channel, artifacts["PaymentChannel"].abi, signer
            )
        committee = None
        if addresses.committee is not None:
            committee = CommitteeClient(backend, addresses.committee, artifacts["DisputeCommittee"].abi, signer)
        op_referee = None
        if addresses.op_referee is not None and committee is not None:  # it rules through the committee
            op_referee = OpRefereeClient(backend, addresses.op_referee, artifacts["OpReferee"].abi, signer)
        return cls(
            backend,
            TokenClient(backend, addresses.token, artifacts["Token"].abi, signer),
            RegistryClient(backend, addresses.registry, artifacts["Registry"].abi, signer),
            JobMarketClient(backend, addresses.job_market, artifacts["JobMarket"].abi, signer),
            channel,
            committee,
            op_referee,
        )
