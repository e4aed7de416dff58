"""The payment tests' world: Token, PaymentChannel and an AgentWallet on titanoboa.

The contracts are deployed once per session; titanoboa's pytest plugin runs every test in
``boa.env.anchor()``, so each test starts from the same funded state (and time travel is
undone). Property tests anchor each hypothesis example themselves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boa
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "verimesh" / "chain" / "contracts"
E = 10**18
MAX = 2**256 - 1
CHALLENGE_PERIOD = 3_600
DAY = 86_400
MAGIC = bytes.fromhex("1626ba7e")
INVALID = bytes.fromhex("ffffffff")


@functools.cache
def deployer(name: str) -> Any:
    """Compiles a contract once per process; ``.deploy()`` works in any boa Env."""
    return boa.load_partial(str(CONTRACTS / name))


def account(name: str) -> LocalAccount:
    """A deterministic key per role: tests sign vouchers and EIP-1271 messages with it."""
    return Account.from_key(keccak(f"verimesh payments {name}".encode()))


def sign_digest(acct: LocalAccount, digest: bytes) -> bytes:
    """65-byte r || s || v signature of a raw 32-byte digest."""
    return bytes(acct.unsafe_sign_hash(digest).signature)


@dataclass
class PayWorld:
    token: Any
    channel: Any
    wallet: Any
    owner: LocalAccount  # the wallet's owner
    agent: LocalAccount  # a session key of the wallet
    payer: LocalAccount  # a plain account paying through channels
    payee: LocalAccount  # a service
    shop: LocalAccount  # another allowed counterparty
    stranger: LocalAccount  # never allowed

    def voucher(self, signer: LocalAccount, channel_id: int, cumulative: int) -> bytes:
        return sign_digest(signer, bytes(self.channel.voucher_digest(channel_id, cumulative)))

    def open_plain(self, deposit: int = 100 * E) -> int:
        with boa.env.prank(self.payer.address):
            return self.channel.open(self.payee.address, deposit)

    def balance(self, who: Any) -> int:
        return self.token.balanceOf(getattr(who, "address", who))


def deploy_world() -> PayWorld:
    owner, agent, payer, payee, shop, stranger = (
        account(n) for n in ("owner", "agent", "payer", "payee", "shop", "stranger")
    )
    with boa.env.prank(owner.address):
        token = deployer("Token.vy").deploy("verimesh test token", "VMT", 18, owner.address)
        channel = deployer("PaymentChannel.vy").deploy(token.address, CHALLENGE_PERIOD)
        wallet = deployer("AgentWallet.vy").deploy(owner.address, token.address)
        for who in (owner, payer):
            token.mint(who.address, 10_000 * E)
        token.approve(wallet.address, MAX)
        wallet.top_up(1_000 * E)
        now = boa.env.evm.patch.timestamp
        wallet.add_session_key(
            agent.address, 10 * E, 50 * E, DAY, now + 30 * DAY, [payee.address, shop.address, channel.address]
        )
    with boa.env.prank(payer.address):
        token.approve(channel.address, MAX)
    return PayWorld(token, channel, wallet, owner, agent, payer, payee, shop, stranger)
