"""Mode choice by value at risk: audit(p) deters exactly the cheats it must, replicas beyond."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verimesh.agent.policy import MarketTerms, ModeRule, choose_mode
from verimesh.chain import Mode
from verimesh.client.sdk import audit, replicate
from verimesh.verify.economics import cheating_loses

E = 10**18
DEVNET = MarketTerms(min_bond=10 * E, bond_multiplier_bps=20_000, audit_fee_bps=10_000)


def test_low_value_audits_high_value_replicates() -> None:
    low = choose_mode(1 * E, 1 * E, DEVNET)
    assert low.mode.mode == Mode.AUDIT
    # a cheat forfeits bond 10 + reward 1 = 11 VMT; gain 1 + 1 = 2 -> p = 2/11
    assert low.mode.param == 1819
    assert "p >= 0.182" in low.reason
    assert choose_mode(50 * E, 1 * E, DEVNET).mode == replicate(2)
    assert choose_mode(500 * E, 1 * E, DEVNET).mode == replicate(3)
    # p never drops below the floor, however little is at risk
    assert choose_mode(0, 10**9, DEVNET).mode == audit(0.05)


def test_one_provider_means_audits_even_for_high_value() -> None:
    choice = choose_mode(500 * E, 1 * E, DEVNET, providers=1)
    assert choice.mode == audit(1.0)
    assert "only one provider" in choice.reason
    assert choose_mode(500 * E, 1 * E, DEVNET, providers=2).mode == replicate(2)


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="price > 0"):
        choose_mode(E, 0, DEVNET)
    with pytest.raises(ValueError, match="min_audit_p"):
        ModeRule(min_audit_p=0.5, max_audit_p=0.2)


@given(
    value=st.integers(0, 10**24),
    price=st.integers(1, 10**21),
    min_bond=st.integers(0, 10**21),
    multiplier=st.integers(0, 50_000),
)
def test_an_audit_choice_always_deters_the_cheat(value: int, price: int, min_bond: int, multiplier: int) -> None:
    terms = MarketTerms(min_bond, multiplier, 10_000)
    choice = choose_mode(value, price, terms)
    if choice.mode.mode == Mode.AUDIT:
        p = choice.mode.param / 10_000
        # the cheat's gain (skipped work + what the wrong result is worth) never pays
        assert cheating_loses(p, terms.bond(price), price, price + value) or p == 1.0
        assert p >= ModeRule().min_audit_p
    else:
        assert choice.mode.param in (2, 3)
        assert (price + value) / (terms.bond(price) + price) > ModeRule().max_audit_p


@given(v1=st.integers(0, 10**22), v2=st.integers(0, 10**22))
def test_more_value_never_buys_less_verification(v1: int, v2: int) -> None:
    low, high = sorted((v1, v2))

    def strength(value: int) -> tuple[int, int]:
        mode = choose_mode(value, E, DEVNET).mode
        return (1, mode.param) if mode.mode == Mode.REPLICATE else (0, mode.param)

    assert strength(low) <= strength(high)
