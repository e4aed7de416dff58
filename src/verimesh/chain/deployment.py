"""``deployment.json``: where the contracts of one network live and how they were set up.

Written by ``verimesh devnet up`` (or ``deploy_network`` for any chain), read by every
process that joins the network (nodes, SDK, CLI). It crosses process boundaries, hence a
pydantic model with a version field.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from verimesh.chain.accounts import Signer
from verimesh.chain.errors import DeploymentError

FORMAT_VERSION = 1
VMT = 10**18


class NetworkParams(BaseModel):
    """Constructor parameters of the contracts and the devnet funding."""

    token_name: str = "verimesh test token"
    token_symbol: str = "VMT"
    token_decimals: int = 18
    min_provider_stake: int = 100 * VMT
    min_validator_stake: int = 100 * VMT
    unbonding_delay: int = 3_600  # seconds; long enough to slash a late-found cheat on a devnet
    min_bond: int = 10 * VMT  # bond locked per job and provider, at least
    bond_multiplier_bps: int = 20_000  # bond = max(min_bond, 2 x price)
    audit_fee_bps: int = 10_000  # validator's fee in audit mode (a full recompute = the price)
    challenge_bond: int = 50 * VMT  # an external challenger's stake in a dispute
    bounty_bps: int = 5_000  # of a slashed bond: to the party that proved the fault
    requester_share_bps: int = 3_000  # to the requester; the rest is burned
    dispute_round_window: int = 3_600  # seconds per dispute move (and for the referee's verdict)
    # DisputeCommittee: n members at most, m signatures from a full committee (ceil(size m / n)
    # from a smaller one), stake slashed from a member that signed another verdict than the
    # accepted one and the reporter's share of it
    committee_size: int = 5
    committee_threshold: int = 3
    equivocation_penalty: int = 50 * VMT
    reporter_bounty_bps: int = 5_000
    # seconds a payer's unilateral channel close waits for the payee's newest voucher
    channel_challenge_period: int = 3_600
    mint_per_account: int = 100_000 * VMT  # VMT given to each dev account


class ContractAddresses(BaseModel):
    token: str
    registry: str
    job_market: str
    # None in deployment.json files written before the channel was part of every deployment
    payment_channel: str | None = None
    # None in deployment.json files written before the committee was JobMarket's referee
    committee: str | None = None
    # None in deployment.json files written before on-chain op proofs: OpCheck recomputes
    # small ops, the OpReferee settles a dispute with them (the committee's op referee)
    op_check: str | None = None
    op_referee: str | None = None


class DevAccount(BaseModel):
    """A funded devnet account; ``keystore`` is relative to the deployment file's folder."""

    name: str
    address: str
    keystore: str


class Deployment(BaseModel):
    format_version: int = FORMAT_VERSION
    chain_id: int
    rpc_url: str | None  # None for an in-process chain
    block: int = Field(description="block of the last deployment transaction; follow events from here")
    deployer: str
    vyper_version: str
    sources_sha256: str
    contracts: ContractAddresses
    params: NetworkParams
    dev_accounts: list[DevAccount] = []
    dev_password: str | None = Field(
        default=None, description="password of the dev keystores; public, devnets only"
    )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> Deployment:
        path = Path(path)
        if not path.is_file():
            raise DeploymentError(f"no deployment file at {path}; start a devnet with `verimesh devnet up`")
        try:
            deployment = cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise DeploymentError(f"{path} is not a valid deployment.json: {exc}") from exc
        if deployment.format_version != FORMAT_VERSION:
            raise DeploymentError(
                f"{path} has format {deployment.format_version}, this verimesh reads {FORMAT_VERSION}; redeploy"
            )
        return deployment

    def dev_signer(self, name: str, base_dir: Path) -> Signer:
        """Unlock dev account ``name`` (``dev0``...) from its keystore next to deployment.json."""
        for account in self.dev_accounts:
            if account.name == name:
                if self.dev_password is None:
                    raise DeploymentError("this deployment has no dev password: use your own wallet")
                return Signer.from_keystore(base_dir / account.keystore, self.dev_password)
        known = ", ".join(a.name for a in self.dev_accounts) or "none"
        raise DeploymentError(f"no dev account {name!r} in this deployment (known: {known})")
