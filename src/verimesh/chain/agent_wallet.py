"""Typed client of AgentWallet.vy, and the EIP-1271 checker bound to a chain backend.

The owner key manages the wallet (``add_session_key``, ``set_policy``, ``revoke_session_key``,
``withdraw``); the agent sends as its session key (``pay``, ``open_channel``...). Every
limit is enforced by the contract: this client only gives the calls names and types.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from pydantic import BaseModel

from verimesh.chain.accounts import Signer
from verimesh.chain.backends.base import Backend
from verimesh.chain.compile import Artifact
from verimesh.chain.contract import ContractClient, Tx, checksum
from verimesh.chain.errors import ContractRevert
from verimesh.crypto.eip1271 import Eip1271SignatureChecker

# Counterparties ``add_session_key`` accepts in one call (``_MAX_COUNTERPARTIES``).
MAX_COUNTERPARTIES = 16


class SessionStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2


class Session(BaseModel):
    """The ``Session`` struct: one session key's policy."""

    status: SessionStatus
    max_per_payment: int
    allowance: int
    period: int
    expires_at: int
    epoch: int


class AgentWalletClient(ContractClient):
    """Amounts are token base units; times are chain timestamps (seconds)."""

    # -- views -------------------------------------------------------------------------
    def owner(self) -> str:
        return self.call("owner")

    def token(self) -> str:
        return self.call("token")

    def sessions(self, key: str) -> Session:
        return Session.model_validate(self.call("sessions", checksum(key)))

    def is_allowed(self, key: str, counterparty: str) -> bool:
        return self.call("is_allowed", checksum(key), checksum(counterparty))

    def spent_in_window(self, key: str) -> int:
        return self.call("spent_in_window", checksum(key))

    def available(self, key: str) -> int:
        """The largest payment ``key`` could make now (0 if revoked, expired or unknown)."""
        return self.call("available", checksum(key))

    def is_valid_signature(self, digest: bytes, signature: bytes) -> bool:
        """EIP-1271 as the chain answers it: owner or active session key signatures."""
        return self.call("isValidSignature", digest, signature) == bytes.fromhex("1626ba7e")

    # -- owner ---------------------------------------------------------------------------
    def top_up(self, amount: int, *, signer: Signer | None = None) -> Tx:
        """Fund the wallet (approve it on the token first); anyone may."""
        return self.transact("top_up", amount, signer=signer)

    def withdraw(self, to: str, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("withdraw", checksum(to), amount, signer=signer)

    def add_session_key(
        self,
        key: str,
        max_per_payment: int,
        allowance: int,
        period: int,
        expires_at: int,
        counterparties: Sequence[str] = (),
        *,
        signer: Signer | None = None,
    ) -> Tx:
        if len(counterparties) > MAX_COUNTERPARTIES:
            raise ValueError(
                f"at most {MAX_COUNTERPARTIES} counterparties per call; add the rest with set_counterparty"
            )
        return self.transact(
            "add_session_key",
            checksum(key),
            max_per_payment,
            allowance,
            period,
            expires_at,
            [checksum(c) for c in counterparties],
            signer=signer,
        )

    def set_policy(
        self, key: str, max_per_payment: int, allowance: int, expires_at: int, *, signer: Signer | None = None
    ) -> Tx:
        return self.transact("set_policy", checksum(key), max_per_payment, allowance, expires_at, signer=signer)

    def set_counterparty(self, key: str, counterparty: str, allowed: bool, *, signer: Signer | None = None) -> Tx:
        return self.transact("set_counterparty", checksum(key), checksum(counterparty), allowed, signer=signer)

    def revoke_session_key(self, key: str, *, signer: Signer | None = None) -> Tx:
        return self.transact("revoke_session_key", checksum(key), signer=signer)

    # -- session key ---------------------------------------------------------------------
    def pay(self, to: str, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("pay", checksum(to), amount, signer=signer)

    def open_channel(
        self, channel: str, payee: str, amount: int, *, signer: Signer | None = None
    ) -> tuple[int, Tx]:
        """Open a channel from the wallet under the policy; returns the channel id."""
        tx = self.transact("open_channel", checksum(channel), checksum(payee), amount, signer=signer)
        return tx.event("ChannelFunded", self.address)["channel_id"], tx

    def top_up_channel(self, channel: str, channel_id: int, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("top_up_channel", checksum(channel), channel_id, amount, signer=signer)

    def start_channel_close(self, channel: str, channel_id: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("start_channel_close", checksum(channel), channel_id, signer=signer)

    def withdraw_channel(self, channel: str, channel_id: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("withdraw_channel", checksum(channel), channel_id, signer=signer)


def deploy_agent_wallet(
    backend: Backend, deployer: Signer, artifact: Artifact, owner: str, token: str
) -> AgentWalletClient:
    """Deploy an AgentWallet for ``owner`` holding ``token`` (``load_artifacts(names=["AgentWallet"])``)."""
    client, _ = AgentWalletClient.deploy(backend, deployer, artifact, checksum(owner), checksum(token))
    return client


def eip1271_checker(backend: Backend) -> Eip1271SignatureChecker:
    """A ``SignatureChecker`` for ``Verifier`` and the paywall that accepts plain accounts
    (ECDSA, no chain access) and contract wallets (``isValidSignature`` on ``backend``)."""

    def read(to: str, data: bytes) -> bytes | None:
        try:
            return backend.call(checksum(to), data, function="isValidSignature")
        except ContractRevert:
            return None

    return Eip1271SignatureChecker(read)


__all__ = [
    "AgentWalletClient",
    "Session",
    "SessionStatus",
    "deploy_agent_wallet",
    "eip1271_checker",
]
