"""AgentWallet.vy on titanoboa: policy enforcement, owner powers, EIP-1271, every revert path."""

from __future__ import annotations

import boa
import pytest
from eth_utils import keccak
from payments_world import DAY, INVALID, MAGIC, MAX, E, PayWorld, account, deployer, sign_digest

ZERO = "0x" + "00" * 20


def test_constructor_rejects_zero_owner_and_token(pay_world: PayWorld) -> None:
    with boa.reverts("agent_wallet: owner is the zero address"):
        deployer("AgentWallet.vy").deploy(ZERO, pay_world.token.address)
    with boa.reverts("agent_wallet: token is the zero address"):
        deployer("AgentWallet.vy").deploy(pay_world.owner.address, ZERO)


def test_session_key_pays_allowed_counterparty(pay_world: PayWorld) -> None:
    w = pay_world
    before = w.balance(w.payee)
    with boa.env.prank(w.agent.address):
        w.wallet.pay(w.payee.address, 3 * E)
        (event,) = [e for e in w.wallet.get_logs() if type(e).__name__ == "Paid"]
    assert type(event).__name__ == "Paid" and event.amount == 3 * E
    assert w.balance(w.payee) == before + 3 * E
    assert w.wallet.spent_in_window(w.agent.address) == 3 * E
    assert w.wallet.available(w.agent.address) == 10 * E  # per-payment cap binds


@pytest.mark.parametrize(
    ("who", "to", "amount", "reason"),
    [
        ("agent", "payee", 10 * E + 1, "agent_wallet: over per-payment limit"),
        ("agent", "stranger", 1 * E, "agent_wallet: counterparty not allowed"),
        ("agent", "payee", 0, "agent_wallet: zero amount"),
        ("stranger", "payee", 1 * E, "agent_wallet: caller is not a session key"),
        ("agent", "zero", 1 * E, "agent_wallet: pay to the zero address"),
    ],
)
def test_pay_refusals(pay_world: PayWorld, who: str, to: str, amount: int, reason: str) -> None:
    w = pay_world
    target = ZERO if to == "zero" else getattr(w, to).address
    with boa.env.prank(getattr(w, who).address), boa.reverts(reason):
        w.wallet.pay(target, amount)


def test_period_allowance_and_rolling_window(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        for _ in range(5):
            w.wallet.pay(w.payee.address, 10 * E)  # 50 = the allowance
        with boa.reverts("agent_wallet: over period allowance"):
            w.wallet.pay(w.payee.address, 1)
    # bucket width = DAY / 8; after DAY + one bucket everything has left the window
    boa.env.time_travel(seconds=DAY + DAY // 8)
    with boa.env.prank(w.agent.address):
        w.wallet.pay(w.payee.address, 10 * E)
    assert w.wallet.spent_in_window(w.agent.address) == 10 * E


def test_payment_after_expiry_reverts_and_owner_can_renew(pay_world: PayWorld) -> None:
    w = pay_world
    boa.env.time_travel(seconds=31 * DAY)
    with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: session key expired"):
        w.wallet.pay(w.payee.address, 1 * E)
    assert w.wallet.available(w.agent.address) == 0
    now = boa.env.evm.patch.timestamp
    with boa.env.prank(w.owner.address):
        w.wallet.set_policy(w.agent.address, 2 * E, 4 * E, now + DAY)
    with boa.env.prank(w.agent.address):
        w.wallet.pay(w.payee.address, 2 * E)
        with boa.reverts("agent_wallet: over per-payment limit"):
            w.wallet.pay(w.payee.address, 2 * E + 1)


def test_revocation_is_immediate_and_readding_starts_clean(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        w.wallet.pay(w.payee.address, 5 * E)
    with boa.env.prank(w.owner.address):
        w.wallet.revoke_session_key(w.agent.address)
    with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: session key revoked"):
        w.wallet.pay(w.payee.address, 1 * E)
    assert w.wallet.available(w.agent.address) == 0
    now = boa.env.evm.patch.timestamp
    with boa.env.prank(w.owner.address):
        w.wallet.add_session_key(w.agent.address, 1 * E, 2 * E, DAY, now + DAY, [])
    assert not w.wallet.is_allowed(w.agent.address, w.payee.address)  # old list did not come back
    assert w.wallet.spent_in_window(w.agent.address) == 0
    with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: counterparty not allowed"):
        w.wallet.pay(w.payee.address, 1 * E)


def test_counterparty_can_be_forbidden_again(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.owner.address):
        w.wallet.set_counterparty(w.agent.address, w.shop.address, False)
    with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: counterparty not allowed"):
        w.wallet.pay(w.shop.address, 1 * E)


def test_lower_allowance_applies_to_what_was_already_spent(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        w.wallet.pay(w.payee.address, 8 * E)
    with boa.env.prank(w.owner.address):
        w.wallet.set_policy(w.agent.address, 5 * E, 10 * E, boa.env.evm.patch.timestamp + DAY)
    with boa.env.prank(w.agent.address):
        w.wallet.pay(w.payee.address, 2 * E)
        with boa.reverts("agent_wallet: over period allowance"):
            w.wallet.pay(w.payee.address, 1)


def test_owner_powers_and_their_refusals(pay_world: PayWorld) -> None:
    w = pay_world
    key = account("agent2").address
    now = boa.env.evm.patch.timestamp
    owner_only = [
        lambda: w.wallet.withdraw(w.stranger.address, 1),
        lambda: w.wallet.add_session_key(key, 1, 1, DAY, now + DAY, []),
        lambda: w.wallet.set_policy(w.agent.address, 1, 1, now + DAY),
        lambda: w.wallet.set_counterparty(w.agent.address, w.stranger.address, True),
        lambda: w.wallet.revoke_session_key(w.agent.address),
    ]
    for call in owner_only:
        with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: caller is not the owner"):
            call()
    with boa.env.prank(w.owner.address):
        before = w.balance(w.owner)
        w.wallet.withdraw(w.owner.address, 100 * E)
        assert w.balance(w.owner) == before + 100 * E
        with boa.reverts("agent_wallet: withdraw to the zero address"):
            w.wallet.withdraw(ZERO, 1)
        with boa.reverts("agent_wallet: zero amount"):
            w.wallet.withdraw(w.owner.address, 0)
        with boa.reverts("token: transfer amount exceeds balance"):
            w.wallet.withdraw(w.owner.address, 10**6 * E)


@pytest.mark.parametrize(
    ("key", "limits", "reason"),
    [
        ("zero", (1, 1, DAY, DAY), "agent_wallet: session key is the zero address"),
        ("owner", (1, 1, DAY, DAY), "agent_wallet: session key is the owner"),
        ("agent", (1, 1, DAY, DAY), "agent_wallet: session key already active"),
        ("new", (1, 1, 0, DAY), "agent_wallet: period out of range"),
        ("new", (1, 1, 366 * DAY, DAY), "agent_wallet: period out of range"),
        ("new", (0, 1, DAY, DAY), "agent_wallet: zero per-payment limit"),
        ("new", (2, 1, DAY, DAY), "agent_wallet: per-payment limit above allowance"),
        ("new", (1, 2**192, DAY, DAY), "agent_wallet: allowance too large"),
        ("new", (1, 1, DAY, 0), "agent_wallet: expiry in the past"),
    ],
)
def test_add_session_key_refusals(pay_world: PayWorld, key: str, limits: tuple, reason: str) -> None:
    w = pay_world
    address = {"zero": ZERO, "owner": w.owner.address, "agent": w.agent.address, "new": account("new").address}[key]
    per, allowance, period, ttl = limits
    expires = boa.env.evm.patch.timestamp + ttl if ttl else 0
    with boa.env.prank(w.owner.address), boa.reverts(reason):
        w.wallet.add_session_key(address, per, allowance, period, expires, [])


def test_management_of_unknown_keys_and_zero_counterparty(pay_world: PayWorld) -> None:
    w = pay_world
    other = account("nobody").address
    now = boa.env.evm.patch.timestamp
    with boa.env.prank(w.owner.address):
        for call in (
            lambda: w.wallet.set_policy(other, 1, 1, now + DAY),
            lambda: w.wallet.set_counterparty(other, w.payee.address, True),
            lambda: w.wallet.revoke_session_key(other),
        ):
            with boa.reverts("agent_wallet: not an active session key"):
                call()
        with boa.reverts("agent_wallet: counterparty is the zero address"):
            w.wallet.set_counterparty(w.agent.address, ZERO, True)


def test_top_up_by_anyone(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.payer.address):
        w.token.approve(w.wallet.address, 5 * E)
        w.wallet.top_up(5 * E)
        with boa.reverts("agent_wallet: zero amount"):
            w.wallet.top_up(0)
    assert w.balance(w.wallet) == 1_005 * E


def test_insufficient_balance_reverts(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.owner.address):
        w.wallet.withdraw(w.owner.address, w.balance(w.wallet) - 1 * E)
    with boa.env.prank(w.agent.address), boa.reverts("token: transfer amount exceeds balance"):
        w.wallet.pay(w.payee.address, 2 * E)


# -- EIP-1271 ---------------------------------------------------------------------------


def test_is_valid_signature_accepts_owner_and_active_session_key(pay_world: PayWorld) -> None:
    w = pay_world
    digest = keccak(b"some protocol message")
    assert w.wallet.isValidSignature(digest, sign_digest(w.owner, digest)) == MAGIC
    assert w.wallet.isValidSignature(digest, sign_digest(w.agent, digest)) == MAGIC
    assert w.wallet.isValidSignature(digest, sign_digest(w.stranger, digest)) == INVALID
    other = keccak(b"another message")
    assert w.wallet.isValidSignature(other, sign_digest(w.agent, digest)) == INVALID
    assert w.wallet.isValidSignature(digest, b"\x01" * 64) == INVALID  # wrong length
    bad_v = sign_digest(w.agent, digest)[:64] + b"\x05"
    assert w.wallet.isValidSignature(digest, bad_v) == INVALID


def test_is_valid_signature_refuses_high_s_twin(pay_world: PayWorld) -> None:
    w = pay_world
    digest = keccak(b"malleable")
    sig = sign_digest(w.owner, digest)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    assert w.wallet.isValidSignature(digest, twin) == INVALID


def test_session_key_signatures_stop_at_revocation_and_expiry(pay_world: PayWorld) -> None:
    w = pay_world
    digest = keccak(b"voucher-like")
    sig = sign_digest(w.agent, digest)
    boa.env.time_travel(seconds=30 * DAY)
    assert w.wallet.isValidSignature(digest, sig) == INVALID  # expired
    with boa.env.prank(w.owner.address):
        w.wallet.set_policy(w.agent.address, 1 * E, 1 * E, boa.env.evm.patch.timestamp + DAY)
    assert w.wallet.isValidSignature(digest, sig) == MAGIC
    with boa.env.prank(w.owner.address):
        w.wallet.revoke_session_key(w.agent.address)
    assert w.wallet.isValidSignature(digest, sig) == INVALID


# -- channels from the wallet -----------------------------------------------------------------


def test_open_and_top_up_channel_under_policy(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        cid = w.wallet.open_channel(w.channel.address, w.payee.address, 10 * E)
        w.wallet.top_up_channel(w.channel.address, cid, 5 * E)
    ch = w.channel.channels(cid)
    assert (ch.payer, ch.payee, ch.deposit) == (w.wallet.address, w.payee.address, 15 * E)
    assert w.token.allowance(w.wallet.address, w.channel.address) == 0
    assert w.wallet.spent_in_window(w.agent.address) == 15 * E


def test_channel_funding_refusals(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        with boa.reverts("agent_wallet: counterparty not allowed"):
            w.wallet.open_channel(w.channel.address, w.stranger.address, 1 * E)
        with boa.reverts("agent_wallet: over per-payment limit"):
            w.wallet.open_channel(w.channel.address, w.payee.address, 11 * E)
        with boa.reverts("agent_wallet: unknown channel"):
            w.wallet.top_up_channel(w.channel.address, 999, 1 * E)
    other = deployer("PaymentChannel.vy").deploy(w.token.address, 3_600)
    with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: channel contract not allowed"):
        w.wallet.open_channel(other.address, w.payee.address, 1 * E)


def test_channel_that_leaves_an_allowance_is_refused(pay_world: PayWorld) -> None:
    w = pay_world
    greedy = boa.loads(
        """
@external
def open(payee: address, amount: uint256) -> uint256:
    return 1
"""
    )
    with boa.env.prank(w.owner.address):
        w.wallet.set_counterparty(w.agent.address, greedy.address, True)
    with boa.env.prank(w.agent.address), boa.reverts("agent_wallet: channel left an allowance"):
        w.wallet.open_channel(greedy.address, w.payee.address, 1 * E)


def test_wallet_recovers_channel_funds_after_challenge_period(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        cid = w.wallet.open_channel(w.channel.address, w.payee.address, 10 * E)
    voucher = w.voucher(w.agent, cid, 3 * E)  # session key signs for the wallet (EIP-1271)
    with boa.env.prank(w.payee.address):
        w.channel.redeem(cid, 3 * E, voucher)
    with boa.env.prank(w.stranger.address), boa.reverts("agent_wallet: caller is not a session key"):
        w.wallet.start_channel_close(w.channel.address, cid)
    with boa.env.prank(w.agent.address):
        w.wallet.start_channel_close(w.channel.address, cid)
    boa.env.time_travel(seconds=3_601)
    before = w.balance(w.wallet)
    with boa.env.prank(w.owner.address):
        w.wallet.withdraw_channel(w.channel.address, cid)
    assert w.balance(w.wallet) == before + 7 * E


def test_owner_is_not_limited_by_policy(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.owner.address):
        cid = w.wallet.open_channel(w.channel.address, w.stranger.address, 500 * E)
    assert w.channel.channels(cid).deposit == 500 * E
    assert w.token.allowance(w.wallet.address, w.channel.address) == 0
    assert MAX > 0
