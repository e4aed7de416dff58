"""Property tests: random sequences against AgentWallet and PaymentChannel, invariants after
every step.

- Wallet: a stolen session key tries random payments (allowed and not, big and small) while
  time moves; an exact Python model of the rolling-window rule predicts accept/refuse and
  the reason, and afterwards the total paid in EVERY window of `period` seconds is checked
  against the allowance. The wallet's books balance: tokens in = tokens out + balance, with
  every outflow announced by one of the wallet's own events.
- Channel: random opens, top-ups, vouchers (new, old, over deposit, for other channels),
  closes and withdrawals; conservation (the contract holds exactly the unsettled deposits
  minus what was redeemed; nobody's tokens appear or vanish) and "payee gets the highest
  voucher it submitted, never more than the deposit".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boa
from boa.contracts.base_evm_contract import BoaError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments_world import CHALLENGE_PERIOD, E, PayWorld, account

PERIOD = 800  # seconds; buckets of 100 s
BUCKETS = 8
MAX_PER = 10 * E
ALLOWANCE = 25 * E
LIFETIME = 3_000

amounts = st.one_of(st.integers(1, 12).map(lambda n: n * E), st.integers(1, 12 * E))
pay_action = st.tuples(st.just("pay"), st.sampled_from(["payee", "payee", "shop", "stranger"]), amounts)
wait_action = st.tuples(st.just("wait"), st.integers(0, 450), st.just(0))
owner_action = st.tuples(st.sampled_from(["top_up", "withdraw"]), st.just(""), st.integers(1, 50 * E))
channel_action = st.tuples(st.just("channel"), st.just(""), amounts)
wallet_actions = st.lists(
    st.one_of(pay_action, pay_action, pay_action, wait_action, wait_action, owner_action, channel_action),
    min_size=10,
    max_size=50,
)


@dataclass
class WindowModel:
    """The contract's rule, re-implemented: ring of BUCKETS + 1 (bucket, amount) slots."""

    slots: dict[int, tuple[int, int]] = field(default_factory=dict)

    def total(self, now: int) -> int:
        current = now // -(-PERIOD // BUCKETS)
        return sum(a for b, a in self.slots.values() if b + BUCKETS >= current)

    def record(self, now: int, amount: int) -> None:
        current = now // -(-PERIOD // BUCKETS)
        slot = current % (BUCKETS + 1)
        b, a = self.slots.get(slot, (-1, 0))
        self.slots[slot] = (current, a + amount) if b == current else (current, amount)


def _reason(model: WindowModel, now: int, expires: int, to: str, amount: int, balance: int) -> str | None:
    if now >= expires:
        return "agent_wallet: session key expired"
    if amount > MAX_PER:
        return "agent_wallet: over per-payment limit"
    if to == "stranger":
        return "agent_wallet: counterparty not allowed"
    if model.total(now) + amount > ALLOWANCE:
        return "agent_wallet: over period allowance"
    if amount > balance:
        return "token: transfer amount exceeds balance"
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=wallet_actions)
def test_stolen_session_key_never_exceeds_policy_and_books_balance(pay_world: PayWorld, actions: list) -> None:
    w = pay_world
    thief = account("thief")
    with boa.env.anchor():
        now = boa.env.evm.patch.timestamp
        expires = now + LIFETIME
        with boa.env.prank(w.owner.address):
            w.wallet.withdraw(w.owner.address, w.balance(w.wallet) - 60 * E)
            w.wallet.add_session_key(
                thief.address, MAX_PER, ALLOWANCE, PERIOD, expires, [w.payee.address, w.shop.address, w.channel.address]
            )
        model = WindowModel()
        paid: list[tuple[int, int]] = []  # (timestamp, amount) of every accepted session payment
        tokens_in = w.balance(w.wallet)
        tokens_out = 0
        for kind, to, amount in actions:
            now = boa.env.evm.patch.timestamp
            balance = w.balance(w.wallet)
            if kind == "wait":
                boa.env.time_travel(seconds=to or amount or 1)
                continue
            if kind == "top_up":
                with boa.env.prank(w.owner.address):
                    w.wallet.top_up(amount)
                tokens_in += amount
                continue
            if kind == "withdraw":
                with boa.env.prank(w.owner.address):
                    if amount > balance:
                        with boa.reverts("token: transfer amount exceeds balance"):
                            w.wallet.withdraw(w.owner.address, amount)
                    else:
                        w.wallet.withdraw(w.owner.address, amount)
                        tokens_out += amount
                continue
            payee = "payee" if kind == "channel" else to
            reason = _reason(model, now, expires, payee, amount, balance)
            with boa.env.prank(thief.address):
                if reason is not None:
                    with boa.reverts(reason):
                        if kind == "channel":
                            w.wallet.open_channel(w.channel.address, w.payee.address, amount)
                        else:
                            w.wallet.pay(getattr(w, to).address, amount)
                    continue
                if kind == "channel":
                    w.wallet.open_channel(w.channel.address, w.payee.address, amount)
                else:
                    w.wallet.pay(getattr(w, to).address, amount)
            model.record(now, amount)
            paid.append((now, amount))
            tokens_out += amount
            # books: every token in is either out (announced by an event) or still held
            assert w.balance(w.wallet) == tokens_in - tokens_out
            assert w.token.allowance(w.wallet.address, w.channel.address) == 0
        for t_end, _ in paid:
            window = sum(a for t, a in paid if t_end - PERIOD < t <= t_end)
            assert window <= ALLOWANCE, f"paid {window} in the {PERIOD} s ending at {t_end}"
        assert all(a <= MAX_PER for _, a in paid)
        assert all(t < expires for t, _ in paid)
        assert w.balance(w.wallet) == tokens_in - tokens_out


channel_step = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 1), st.integers(1, 20)),
    st.tuples(st.just("top_up"), st.integers(0, 5), st.integers(1, 10)),
    st.tuples(st.just("voucher"), st.integers(0, 5), st.integers(0, 30)),
    st.tuples(st.just("foreign_voucher"), st.integers(0, 5), st.integers(1, 5)),
    st.tuples(st.just("close"), st.integers(0, 5), st.integers(0, 30)),
    st.tuples(st.just("start_close"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("withdraw"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("wait"), st.integers(0, 1), st.integers(0, 2 * CHALLENGE_PERIOD)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(channel_step, max_size=35))
def test_channel_conservation(pay_world: PayWorld, steps: list) -> None:
    w = pay_world
    payers = [w.payer, w.stranger]
    with boa.env.anchor():
        with boa.env.prank(w.owner.address):
            w.token.mint(w.stranger.address, 1_000 * E)
        with boa.env.prank(w.stranger.address):
            w.token.approve(w.channel.address, 2**256 - 1)
        people = [w.payer, w.stranger, w.payee]
        total = sum(w.balance(p) for p in people) + w.balance(w.channel)
        ids: list[int] = []
        best: dict[int, int] = {}  # highest voucher that was accepted per channel
        for kind, pick, units in steps:
            amount = units * E
            cid = ids[pick % len(ids)] if ids else 1
            payer = payers[pick % 2] if kind == "open" else None
            try:
                if kind == "open":
                    with boa.env.prank(payer.address):
                        ids.append(w.channel.open(w.payee.address, amount))
                elif kind == "top_up":
                    ch = w.channel.channels(cid)
                    with boa.env.prank(ch.payer):
                        w.channel.top_up(cid, amount)
                elif kind in ("voucher", "close", "foreign_voucher"):
                    ch = w.channel.channels(cid)
                    signer = next((p for p in payers if p.address == ch.payer), w.payer)
                    target = cid + 1 if kind == "foreign_voucher" else cid
                    sig = w.voucher(signer, target, amount)
                    with boa.env.prank(w.payee.address):
                        if kind == "close":
                            w.channel.close(cid, amount, sig)
                        else:
                            w.channel.redeem(cid, amount, sig)
                    assert kind != "foreign_voucher", "a voucher for another channel was accepted"
                    if amount > best.get(cid, 0):
                        best[cid] = amount
                elif kind == "start_close":
                    with boa.env.prank(w.channel.channels(cid).payer):
                        w.channel.start_close(cid)
                elif kind == "withdraw":
                    w.channel.withdraw(cid)
                else:
                    boa.env.time_travel(seconds=units or 1)
            except BoaError:
                pass  # a refused step must change nothing; the invariants below check it
            held = 0
            for i in ids:
                ch = w.channel.channels(i)
                assert ch.redeemed <= ch.deposit
                assert ch.redeemed == best.get(i, 0)  # the payee got exactly its best voucher
                if not ch.settled:
                    held += ch.deposit - ch.redeemed
            assert w.balance(w.channel) == held
            assert sum(w.balance(p) for p in people) + w.balance(w.channel) == total
