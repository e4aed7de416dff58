"""The planner keeps every plan within budget and per-job limits, and skips with reasons."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from verimesh.agent.planner import market_price, plan_purchases
from verimesh.agent.policy import MarketTerms, choose_mode
from verimesh.agent.work import WorkItem
from verimesh.client.sdk import replicate

E = 10**18
TERMS = MarketTerms(min_bond=10 * E, bond_multiplier_bps=20_000, audit_fee_bps=10_000)

items_st = st.lists(
    st.builds(
        lambda task, value, fixed: WorkItem(
            task=task, model="0x" + "11" * 32, input="x", value=value, mode=replicate(fixed) if fixed else None
        ),
        st.sampled_from(["embed", "generate"]),
        st.integers(0, 200 * E),
        st.sampled_from([0, 0, 0, 1, 2, 3, 5]),
    ),
    max_size=12,
)


@given(
    items=items_st,
    prices=st.lists(st.integers(1, 5 * E), max_size=6),
    budget=st.integers(0, 60 * E),
    per_job=st.one_of(st.none(), st.integers(1, 10 * E)),
)
def test_plans_fit_the_budget_and_account_for_every_item(items, prices, budget, per_job) -> None:
    plan = plan_purchases(items, prices, budget, TERMS, max_per_job=per_job)
    assert plan.escrow <= budget
    # every item is either bought or skipped, exactly once, at its own position
    assert sorted(x.index for x in [*plan.purchases, *plan.skipped]) == list(range(len(items)))
    for purchase in plan.purchases:
        item = items[purchase.index]
        assert purchase.item is item
        if item.mode is None:
            assert purchase.mode == choose_mode(item.value, min(prices), TERMS, providers=len(prices)).mode
        else:
            assert purchase.mode == item.mode
        assert purchase.price == market_price(prices, purchase.mode.replicas)
        assert purchase.escrow == TERMS.escrow(purchase.mode, purchase.price)
        assert per_job is None or purchase.escrow <= per_job
    # nothing skipped for budget would still have fitted in what is left
    left = budget - plan.escrow
    for skipped in plan.skipped:
        assert skipped.reason
        if skipped.reason.startswith("over budget"):
            mode = skipped.item.mode or choose_mode(skipped.item.value, min(prices), TERMS, providers=len(prices)).mode
            assert TERMS.escrow(mode, market_price(prices, mode.replicas)) > left


def test_short_budget_keeps_the_most_valuable_items_in_their_order() -> None:
    cheap = WorkItem(task="embed", model="m", input="a", value=E, label="cheap")
    dear = WorkItem(task="embed", model="m", input="b", value=3 * E, label="dear")
    plan = plan_purchases([cheap, dear], [E, E], budget=2 * E, terms=TERMS)
    assert [p.item.label for p in plan.purchases] == ["dear"]
    assert plan.skipped[0].item.label == "cheap" and "over budget" in plan.skipped[0].reason


def test_skips_say_why() -> None:
    item = WorkItem(task="embed", model="m", input="a", value=E, mode=replicate(3))
    assert "no active provider" in plan_purchases([item], [], 10 * E, TERMS).skipped[0].reason
    assert "needs 3 providers, 2 registered" in plan_purchases([item], [E, E], 10 * E, TERMS).skipped[0].reason
    assert "above the per-job limit" in plan_purchases([item], [E] * 3, 10 * E, TERMS, max_per_job=E).skipped[0].reason
