"""PaymentChannel.vy on titanoboa: vouchers, close paths, challenge period, every revert path."""

from __future__ import annotations

import boa
import pytest
from payments_world import CHALLENGE_PERIOD, E, PayWorld, deployer, sign_digest

from verimesh.chain.payment_channel import domain_separator, voucher_digest

ZERO = "0x" + "00" * 20


def test_python_digest_matches_contract(pay_world: PayWorld) -> None:
    w = pay_world
    chain_id = boa.env.evm.patch.chain_id
    assert bytes(w.channel.DOMAIN_SEPARATOR()) == domain_separator(chain_id, w.channel.address)
    for cid, cumulative in ((1, 0), (7, 10**18), (2**255, 2**256 - 1)):
        assert bytes(w.channel.voucher_digest(cid, cumulative)) == voucher_digest(
            chain_id, w.channel.address, cid, cumulative
        )


@pytest.mark.parametrize(
    ("period", "reason"),
    [(59, "payment_channel: challenge period too short"), (30 * 86400 + 1, "payment_channel: challenge period too long")],
)
def test_constructor_bounds(pay_world: PayWorld, period: int, reason: str) -> None:
    with boa.reverts(reason):
        deployer("PaymentChannel.vy").deploy(pay_world.token.address, period)
    with boa.reverts("payment_channel: token is the zero address"):
        deployer("PaymentChannel.vy").deploy(ZERO, 3600)


def test_open_refusals(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.payer.address):
        with boa.reverts("payment_channel: payee is the zero address"):
            w.channel.open(ZERO, 1)
        with boa.reverts("payment_channel: payee is the payer"):
            w.channel.open(w.payer.address, 1)
        with boa.reverts("payment_channel: zero deposit"):
            w.channel.open(w.payee.address, 0)
    with boa.env.prank(w.stranger.address), boa.reverts("token: insufficient allowance"):
        w.channel.open(w.payee.address, 1)


def test_redeem_pays_difference_and_newer_voucher_wins(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(100 * E)
    v3, v5 = w.voucher(w.payer, cid, 3 * E), w.voucher(w.payer, cid, 5 * E)
    start = w.balance(w.payee)
    with boa.env.prank(w.payee.address):
        w.channel.redeem(cid, 3 * E, v3)
        w.channel.redeem(cid, 5 * E, v5)
        assert w.balance(w.payee) == start + 5 * E
        with boa.reverts("payment_channel: voucher not newer than redeemed"):
            w.channel.redeem(cid, 3 * E, v3)  # replay of an older voucher
        with boa.reverts("payment_channel: voucher not newer than redeemed"):
            w.channel.redeem(cid, 5 * E, v5)  # replay of the same voucher
    assert w.channel.channels(cid).redeemed == 5 * E


def test_voucher_refusals(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(10 * E)
    other = w.open_plain(10 * E)
    with boa.env.prank(w.payee.address):
        with boa.reverts("payment_channel: voucher exceeds deposit"):
            w.channel.redeem(cid, 11 * E, w.voucher(w.payer, cid, 11 * E))
        with boa.reverts("payment_channel: invalid voucher signature"):
            w.channel.redeem(cid, 1 * E, w.voucher(w.payer, other, 1 * E))  # for another channel
        with boa.reverts("payment_channel: invalid voucher signature"):
            w.channel.redeem(cid, 1 * E, w.voucher(w.stranger, cid, 1 * E))  # forged
        with boa.reverts("payment_channel: invalid voucher signature"):
            w.channel.redeem(cid, 2 * E, w.voucher(w.payer, cid, 1 * E))  # altered amount
        with boa.reverts("payment_channel: invalid voucher signature"):
            w.channel.redeem(cid, 1 * E, b"\x00" * 65)
        with boa.reverts("payment_channel: unknown channel"):
            w.channel.redeem(999, 1 * E, w.voucher(w.payer, 999, 1 * E))


def test_voucher_for_another_contract_is_refused(pay_world: PayWorld) -> None:
    w = pay_world
    twin = deployer("PaymentChannel.vy").deploy(w.token.address, CHALLENGE_PERIOD)
    cid = w.open_plain(10 * E)
    with boa.env.prank(w.payer.address):
        w.token.approve(twin.address, 10 * E)
        twin_id = twin.open(w.payee.address, 10 * E)
    assert twin_id == 1 and cid == 1
    foreign = sign_digest(w.payer, bytes(twin.voucher_digest(1, 1 * E)))
    with boa.env.prank(w.payee.address), boa.reverts("payment_channel: invalid voucher signature"):
        w.channel.redeem(cid, 1 * E, foreign)


def test_payee_close_settles_at_once(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(10 * E)
    payer_before, payee_before = w.balance(w.payer), w.balance(w.payee)
    with boa.env.prank(w.stranger.address), boa.reverts("payment_channel: caller is not the payee"):
        w.channel.close(cid, 4 * E, w.voucher(w.payer, cid, 4 * E))
    with boa.env.prank(w.payee.address):
        w.channel.close(cid, 4 * E, w.voucher(w.payer, cid, 4 * E))
        with boa.reverts("payment_channel: channel settled"):
            w.channel.close(cid, 0, b"")
    assert w.balance(w.payee) == payee_before + 4 * E
    assert w.balance(w.payer) == payer_before + 6 * E
    assert w.balance(w.channel) == 0


def test_payee_close_ignores_an_older_voucher(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(10 * E)
    with boa.env.prank(w.payee.address):
        w.channel.redeem(cid, 6 * E, w.voucher(w.payer, cid, 6 * E))
        w.channel.close(cid, 2 * E, w.voucher(w.payer, cid, 2 * E))
    ch = w.channel.channels(cid)
    assert ch.settled and ch.redeemed == 6 * E


def test_top_up(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(10 * E)
    with boa.env.prank(w.payer.address):
        w.channel.top_up(cid, 5 * E)
        with boa.reverts("payment_channel: zero amount"):
            w.channel.top_up(cid, 0)
    with boa.env.prank(w.stranger.address), boa.reverts("payment_channel: caller is not the payer"):
        w.channel.top_up(cid, 1)
    assert w.channel.channels(cid).deposit == 15 * E
    with boa.env.prank(w.payee.address):
        w.channel.redeem(cid, 12 * E, w.voucher(w.payer, cid, 12 * E))  # above the first deposit
    with boa.env.prank(w.payer.address):
        w.channel.start_close(cid)
        with boa.reverts("payment_channel: channel is closing"):
            w.channel.top_up(cid, 1)


def test_old_voucher_close_is_beaten_by_newer_one_in_challenge_period(pay_world: PayWorld) -> None:
    """The payer tries to settle on an old voucher; the payee answers with its newest."""
    w = pay_world
    cid = w.open_plain(20 * E)
    old, new = w.voucher(w.payer, cid, 2 * E), w.voucher(w.payer, cid, 9 * E)
    payer_before, payee_before = w.balance(w.payer), w.balance(w.payee)
    with boa.env.prank(w.payer.address):
        w.channel.redeem(cid, 2 * E, old)
        w.channel.start_close(cid)
        with boa.reverts("payment_channel: channel is closing"):
            w.channel.start_close(cid)
        with boa.reverts("payment_channel: challenge period not over"):
            w.channel.withdraw(cid)
    boa.env.time_travel(seconds=CHALLENGE_PERIOD - 10)
    with boa.env.prank(w.payee.address):
        w.channel.redeem(cid, 9 * E, new)
    boa.env.time_travel(seconds=11)
    with boa.env.prank(w.payee.address), boa.reverts("payment_channel: challenge period over"):
        w.channel.redeem(cid, 10 * E, w.voucher(w.payer, cid, 10 * E))
    with boa.env.prank(w.stranger.address):  # anyone may trigger the refund
        w.channel.withdraw(cid)
    assert w.balance(w.payee) == payee_before + 9 * E
    assert w.balance(w.payer) == payer_before + 11 * E


def test_vanished_payee_payer_recovers_everything_unredeemed(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(20 * E)
    before = w.balance(w.payer)
    with boa.env.prank(w.payer.address):
        with boa.reverts("payment_channel: close not started"):
            w.channel.withdraw(cid)
        w.channel.start_close(cid)
    boa.env.time_travel(seconds=CHALLENGE_PERIOD + 1)
    with boa.env.prank(w.payee.address), boa.reverts("payment_channel: challenge period over"):
        w.channel.close(cid, 0, b"")
    with boa.env.prank(w.payer.address):
        w.channel.withdraw(cid)
        with boa.reverts("payment_channel: channel settled"):
            w.channel.withdraw(cid)
    assert w.balance(w.payer) == before + 20 * E


def test_start_close_payer_only(pay_world: PayWorld) -> None:
    w = pay_world
    cid = w.open_plain(1 * E)
    with boa.env.prank(w.payee.address), boa.reverts("payment_channel: caller is not the payer"):
        w.channel.start_close(cid)


def test_contract_wallet_vouchers_via_eip1271(pay_world: PayWorld) -> None:
    w = pay_world
    with boa.env.prank(w.agent.address):
        cid = w.wallet.open_channel(w.channel.address, w.payee.address, 10 * E)
    with boa.env.prank(w.payee.address):
        w.channel.redeem(cid, 1 * E, w.voucher(w.agent, cid, 1 * E))  # session key
        w.channel.redeem(cid, 2 * E, w.voucher(w.owner, cid, 2 * E))  # owner
        with boa.reverts("payment_channel: invalid voucher signature"):
            w.channel.redeem(cid, 3 * E, w.voucher(w.stranger, cid, 3 * E))
    with boa.env.prank(w.owner.address):
        w.wallet.revoke_session_key(w.agent.address)
    with boa.env.prank(w.payee.address), boa.reverts("payment_channel: invalid voucher signature"):
        w.channel.redeem(cid, 3 * E, w.voucher(w.agent, cid, 3 * E))  # revoked key


def test_contract_payer_without_eip1271_is_refused(pay_world: PayWorld) -> None:
    """A contract that reverts or returns garbage is a "no", never a stuck call."""
    w = pay_world
    for source in (
        "@external\ndef open_it(c: address, p: address, a: uint256):\n    pass\n",
        "@external\n@view\ndef isValidSignature(h: bytes32, s: Bytes[256]) -> bytes4:\n    return 0x1626ba7f\n",
    ):
        payer_contract = boa.loads(source)
        with boa.env.prank(w.owner.address):
            w.token.mint(payer_contract.address, 1 * E)
        with boa.env.prank(payer_contract.address):
            w.token.approve(w.channel.address, 1 * E)
            cid = w.channel.open(w.payee.address, 1 * E)
        with boa.env.prank(w.payee.address), boa.reverts("payment_channel: invalid voucher signature"):
            w.channel.redeem(cid, 1, w.voucher(w.payer, cid, 1))
