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
    with pytest.raises(ValueError, match="careless_validators"):
        ModeRule(careless_validators=1.0)


def test_careless_validators_raise_the_audit_probability() -> None:
    """If a fifth of the audits reach validators that agree without checking, only 4 in 5
    audits catch the cheat: 2/11 becomes 2/11 / 0.8, and a value that audits alone could
    cover before may now need replicas."""
    rule = ModeRule(careless_validators=0.2)
    assert choose_mode(1 * E, 1 * E, DEVNET, rule).mode.param == 2273  # ceil(10000 x 2/11 / 0.8)
    assert choose_mode(1 * E, 1 * E, DEVNET).mode.param == 1819
    assert choose_mode(int(1.75 * E), 1 * E, DEVNET).mode.mode == Mode.AUDIT
    assert choose_mode(int(1.75 * E), 1 * E, DEVNET, rule).mode == replicate(2)


@given(
    value=st.integers(0, 10**24),
    price=st.integers(1, 10**21),
    min_bond=st.integers(0, 10**21),
    multiplier=st.integers(0, 50_000),
    careless=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_an_audit_choice_always_deters_the_cheat(value: int, price: int, min_bond: int, multiplier: int,
                                                 careless: float) -> None:  # fmt: skip
    terms = MarketTerms(min_bond, multiplier, 10_000)
    rule = ModeRule(careless_validators=careless)
    choice = choose_mode(value, price, terms, rule)
    if choice.mode.mode == Mode.AUDIT:
        p = choice.mode.param / 10_000
        # the cheat's gain (skipped work + what the wrong result is worth) never pays, even
        # though only the audits that reach a careful validator catch it
        assert cheating_loses(p * (1 - careless), terms.bond(price), price, price + value) or p == 1.0
        assert p >= rule.min_audit_p
    else:
        assert choice.mode.param in (2, 3)
        assert (price + value) / (terms.bond(price) + price) / (1 - careless) > rule.max_audit_p


@given(v1=st.integers(0, 10**22), v2=st.integers(0, 10**22))
def test_more_value_never_buys_less_verification(v1: int, v2: int) -> None:
    low, high = sorted((v1, v2))

    def strength(value: int) -> tuple[int, int]:
        mode = choose_mode(value, E, DEVNET).mode
        return (1, mode.param) if mode.mode == Mode.REPLICATE else (0, mode.param)

    assert strength(low) <= strength(high)
