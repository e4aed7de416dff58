"""Typed client of Registry.vy: providers and validators with stake, unbonding, slashing."""

from __future__ import annotations

from enum import IntEnum

from eth_abi import encode
from eth_utils import keccak
from pydantic import BaseModel

from verimesh.chain.accounts import Signer
from verimesh.chain.contract import ContractClient, Tx, checksum


class Role(IntEnum):
    """Registry roles (``ROLE_PROVIDER``/``ROLE_VALIDATOR``); 0 means "not a member"."""

    NONE = 0
    PROVIDER = 1
    VALIDATOR = 2


def draw_start(seed: int, seat: int, listed: int) -> int:
    """Where seat ``seat`` of ``Registry.draw`` starts scanning a list of ``listed`` members.

    Every seat has its own start (``seed`` for the first, keccak256(seed, seat) for the
    others), so members that registered next to each other fill several seats of one job
    no more often than any others: with consecutive seats, k accounts registered in a row
    would hold all k replicas of a job whenever the draw started on the first of them."""
    if listed <= 0:
        raise ValueError(f"nothing to draw from a list of {listed} members")
    if seat == 0:
        return seed % listed
    return int.from_bytes(keccak(encode(["uint256", "uint256"], [seed, seat])), "big") % listed


class Member(BaseModel):
    """A registry entry (the ``Member`` struct)."""

    role: Role
    stake: int
    locked: int
    unbonding: int
    unbond_at: int
    endpoint: str
    capabilities: bytes
    price: int
    active: bool

    @property
    def free(self) -> int:
        """Stake not locked as a job bond: what can be unbonded or bonded anew."""
        return self.stake - self.locked


class RegistryClient(ContractClient):
    """Register with a stake (approve the Registry on the token first), update, leave."""

    # -- views -------------------------------------------------------------------------
    def token(self) -> str:
        return self.call("token")

    def owner(self) -> str:
        return self.call("owner")

    def job_market(self) -> str:
        return self.call("job_market")

    def min_provider_stake(self) -> int:
        return self.call("min_provider_stake")

    def min_validator_stake(self) -> int:
        return self.call("min_validator_stake")

    def unbonding_delay(self) -> int:
        return self.call("unbonding_delay")

    def members(self, account: str) -> Member:
        return Member.model_validate(self.call("members", checksum(account)))

    def provider_count(self) -> int:
        return self.call("provider_count")

    def provider_at(self, index: int) -> str:
        return self.call("provider_at", index)

    def validator_count(self) -> int:
        return self.call("validator_count")

    def validator_at(self, index: int) -> str:
        return self.call("validator_at", index)

    def providers(self) -> list[str]:
        """Every registered provider (one call per entry: for tools, not hot paths)."""
        return [self.provider_at(i) for i in range(self.provider_count())]

    def validators(self) -> list[str]:
        return [self.validator_at(i) for i in range(self.validator_count())]

    def free_stake(self, account: str) -> int:
        return self.call("free_stake", checksum(account))

    def slasher(self) -> str:
        """The contract besides JobMarket that may slash (the DisputeCommittee)."""
        return self.call("slasher")

    # -- transactions --------------------------------------------------------------------
    def set_job_market(self, job_market: str, *, signer: Signer | None = None) -> Tx:
        """Owner only, once: the JobMarket allowed to lock, unlock and slash stake."""
        return self.transact("set_job_market", checksum(job_market), signer=signer)

    def set_slasher(self, slasher: str, *, signer: Signer | None = None) -> Tx:
        """Owner only, once: the DisputeCommittee, which slashes equivocating members."""
        return self.transact("set_slasher", checksum(slasher), signer=signer)

    def register(
        self,
        role: Role | int,
        stake: int,
        endpoint: str,
        capabilities: bytes,
        price: int,
        *,
        signer: Signer | None = None,
    ) -> Tx:
        """Join as provider or validator; pulls ``stake`` tokens (needs an allowance)."""
        return self.transact("register", int(role), stake, endpoint, capabilities, price, signer=signer)

    def add_stake(self, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("add_stake", amount, signer=signer)

    def update(self, endpoint: str, capabilities: bytes, price: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("update", endpoint, capabilities, price, signer=signer)

    def request_unbond(self, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("request_unbond", amount, signer=signer)

    def withdraw(self, *, signer: Signer | None = None) -> Tx:
        return self.transact("withdraw", signer=signer)

    def deregister(self, *, signer: Signer | None = None) -> Tx:
        return self.transact("deregister", signer=signer)
