"""Deploy Token, Registry, JobMarket, PaymentChannel, DisputeCommittee, OpCheck and OpReferee,
wire them together, and fund accounts.

Works on any backend: the in-process EVM for tests, anvil for the devnet, a real chain for
a real deployment (then skip the minting: a real token is not mintable by us).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from verimesh.chain.accounts import DEV_PASSWORD, Signer
from verimesh.chain.backends.base import Backend
from verimesh.chain.client import CONTRACTS, Network
from verimesh.chain.committee import CommitteeClient
from verimesh.chain.compile import ArtifactSet, load_artifacts
from verimesh.chain.contract import ContractClient
from verimesh.chain.deployment import ContractAddresses, Deployment, DevAccount, NetworkParams
from verimesh.chain.job_market import JobMarketClient
from verimesh.chain.op_referee import OpRefereeClient
from verimesh.chain.payment_channel import deploy_payment_channel
from verimesh.chain.registry import RegistryClient
from verimesh.chain.token import TokenClient
from verimesh.crypto.keystore import write_new_private_file

# Dev keystores hold public keys (the anvil mnemonic) under a public password: a small
# scrypt work factor keeps `devnet up` fast without weakening anything that was secret.
DEV_SCRYPT_N = 2**10


def deploy_network(
    backend: Backend,
    deployer: Signer,
    params: NetworkParams | None = None,
    artifacts: ArtifactSet | None = None,
    referee: str | None = None,
) -> Network:
    """Deploy the contracts and wire them: ``Registry.set_job_market``, then the
    DisputeCommittee becomes JobMarket's referee (``set_referee``) and the Registry's slasher,
    and the OpReferee (with OpCheck, which recomputes small ops) the committee's op referee
    (``set_op_referee``): a proof of one wrong op then settles a dispute without a committee.

    The deployer is the token's minter and the owner of Registry and JobMarket. ``referee``
    overrides the committee as JobMarket's referee (an account that decides disputes by
    itself: only for tests of JobMarket alone). PaymentChannel (per-request payments in the
    network's token) has no owner: deploying it with the network gives every node and agent
    the same channel address to trust.
    """
    params = params or NetworkParams()
    artifacts = artifacts or load_artifacts(names=CONTRACTS)
    token, _ = TokenClient.deploy(
        backend,
        deployer,
        artifacts["Token"],
        params.token_name,
        params.token_symbol,
        params.token_decimals,
        deployer.address,
    )
    registry, _ = RegistryClient.deploy(
        backend,
        deployer,
        artifacts["Registry"],
        token.address,
        params.min_provider_stake,
        params.min_validator_stake,
        params.unbonding_delay,
    )
    job_market, _ = JobMarketClient.deploy(
        backend,
        deployer,
        artifacts["JobMarket"],
        token.address,
        registry.address,
        deployer.address,  # replaced by the committee (or `referee`) below
        params.min_bond,
        params.bond_multiplier_bps,
        params.audit_fee_bps,
        params.challenge_bond,
        params.bounty_bps,
        params.requester_share_bps,
        params.dispute_round_window,
    )
    registry.set_job_market(job_market.address)
    committee, _ = CommitteeClient.deploy(
        backend,
        deployer,
        artifacts["DisputeCommittee"],
        job_market.address,
        registry.address,
        token.address,
        params.committee_size,
        params.committee_threshold,
        params.equivocation_penalty,
        params.reporter_bounty_bps,
    )
    registry.set_slasher(committee.address)
    job_market.set_referee(referee or committee.address)
    op_check = deploy_op_check(backend, deployer, artifacts)
    op_referee, _ = OpRefereeClient.deploy(
        backend, deployer, artifacts["OpReferee"], committee.address, op_check.address
    )
    committee.transact("set_op_referee", op_referee.address)
    channel = deploy_payment_channel(
        backend, deployer, artifacts["PaymentChannel"], token.address, params.channel_challenge_period
    )
    return Network(backend, token, registry, job_market, channel, committee, op_referee)


def deploy_op_check(backend: Backend, deployer: Signer, artifacts: ArtifactSet) -> ContractClient:
    """OpCheck: stateless, no constructor arguments, no owner. Its code is close to the
    EIP-170 size limit and a deploy pays 200 gas per byte of it (about 5M gas, the devnet's
    per-transaction limit; 5.3M at 24.4 kB): it gets a gas limit of its own."""
    artifact = artifacts["OpCheck"]
    op_check, _ = ContractClient.deploy(backend, deployer, artifact, gas=code_deploy_gas(artifact.bytecode))
    return op_check


def code_deploy_gas(initcode: bytes) -> int:
    """An upper bound of the gas to deploy ``initcode`` when its constructor does no work:
    intrinsic cost (21,000 + 32,000 for a creation, calldata at most 16 per byte, 2 per
    initcode word), 200 per byte of deployed code (at most the initcode), and 100k for the
    constructor's copying."""
    words = (len(initcode) + 31) // 32
    return 21_000 + 32_000 + 16 * len(initcode) + 2 * words + 200 * len(initcode) + 100_000


def fund_accounts(network: Network, minter: Signer, addresses: Sequence[str], amount: int) -> None:
    """Mint ``amount`` test tokens to each address (devnets: the deployer is the minter)."""
    for address in addresses:
        network.token.mint(address, amount, signer=minter)


def describe(
    network: Network,
    deployer: Signer,
    params: NetworkParams,
    artifacts: ArtifactSet,
    rpc_url: str | None,
    dev_accounts: list[DevAccount] | None = None,
) -> Deployment:
    """The ``deployment.json`` record of a network deployed just now."""
    return Deployment(
        chain_id=network.backend.chain_id,
        rpc_url=rpc_url,
        block=network.backend.block_number(),
        deployer=deployer.address,
        vyper_version=artifacts.vyper_version,
        sources_sha256=artifacts.sources_sha256,
        contracts=ContractAddresses(
            token=network.token.address,
            registry=network.registry.address,
            job_market=network.job_market.address,
            payment_channel=network.payment_channel.address if network.payment_channel else None,
            committee=network.committee.address if network.committee else None,
            op_check=network.op_referee.op_check() if network.op_referee else None,
            op_referee=network.op_referee.address if network.op_referee else None,
        ),
        params=params,
        dev_accounts=dev_accounts or [],
        dev_password=DEV_PASSWORD if dev_accounts else None,
    )


def write_dev_keystores(signers: Sequence[Signer], directory: Path) -> list[DevAccount]:
    """Write ``dev<i>.json`` keystores (password ``DEV_PASSWORD``) readable by
    ``verimesh wallet`` (``WalletStore(directory)``) and ``Signer.from_keystore``."""
    accounts = []
    for i, signer in enumerate(signers):
        name = f"dev{i}"
        path = directory / f"{name}.json"
        if not path.exists():
            keystore = signer.to_keystore(DEV_PASSWORD, scrypt_n=DEV_SCRYPT_N)
            write_new_private_file(path, json.dumps(keystore, indent=2))
        accounts.append(DevAccount(name=name, address=signer.address, keystore=f"{directory.name}/{name}.json"))
    return accounts
