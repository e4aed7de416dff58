"""Plan purchases within a budget: a mode and a price per item, and the items it cannot afford.

Each item's cost is its worst case, the escrow JobMarket takes at posting (an unused audit
fee or a refund comes back later and only makes the plan cheaper). When the budget cannot
cover everything, the planner keeps the items with the most value per token of escrow (a
greedy knapsack: simple, and within one item of the best for equal-sized jobs), then runs
them in the order they were given. An item is skipped, with the reason, when its escrow
exceeds the per-job limit (the wallet's ``max_per_payment``) or when not enough providers
are registered for its replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verimesh.agent.policy import DEFAULT_RULE, MarketTerms, ModeRule, choose_mode
from verimesh.agent.work import WorkItem
from verimesh.client.sdk import VerificationMode


@dataclass(frozen=True)
class Purchase:
    item: WorkItem
    mode: VerificationMode
    reason: str
    price: int  # per replica, the market price for its replicas
    escrow: int  # what posting takes
    index: int = 0  # position of the item in the planned list


@dataclass(frozen=True)
class Skipped:
    item: WorkItem
    reason: str
    index: int = 0


@dataclass
class Plan:
    purchases: list[Purchase] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def by_index(self) -> dict[int, Purchase | Skipped]:
        return {x.index: x for x in [*self.purchases, *self.skipped]}

    @property
    def escrow(self) -> int:
        return sum(p.escrow for p in self.purchases)


def market_price(prices: list[int], replicas: int) -> int | None:
    """The lowest price at which ``replicas`` providers accept a job (the SDK's rule)."""
    ordered = sorted(prices)
    return ordered[replicas - 1] if len(ordered) >= replicas else None


def plan_purchases(
    items: list[WorkItem],
    provider_prices: list[int],
    budget: int,
    terms: MarketTerms,
    rule: ModeRule = DEFAULT_RULE,
    max_per_job: int | None = None,
) -> Plan:
    """The affordable subset of ``items`` with their modes; total escrow <= ``budget``."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    plan = Plan()
    priced: list[tuple[int, Purchase]] = []
    for index, item in enumerate(items):
        cheapest = market_price(provider_prices, 1)
        if cheapest is None:
            plan.skipped.append(Skipped(item, "no active provider is registered", index))
            continue
        if item.mode is not None:
            mode, reason = item.mode, "mode set by the work item"
        else:
            choice = choose_mode(item.value, cheapest, terms, rule, providers=len(provider_prices))
            mode, reason = choice.mode, choice.reason
        price = market_price(provider_prices, mode.replicas)
        if price is None:
            plan.skipped.append(
                Skipped(item, f"{mode} needs {mode.replicas} providers, {len(provider_prices)} registered", index)
            )
            continue
        escrow = terms.escrow(mode, price)
        if max_per_job is not None and escrow > max_per_job:
            why = f"{mode} escrows {escrow / 10**18:g} VMT, above the per-job limit {max_per_job / 10**18:g} VMT"
            plan.skipped.append(Skipped(item, why, index))
            continue
        priced.append((index, Purchase(item, mode, reason, price, escrow, index)))
    # Most value per token of escrow first; the original order breaks ties.
    by_worth = sorted(priced, key=lambda ip: (-ip[1].item.value / ip[1].escrow, ip[0]))
    left = budget
    chosen: set[int] = set()
    for index, purchase in by_worth:
        if purchase.escrow <= left:
            left -= purchase.escrow
            chosen.add(index)
    for index, purchase in priced:
        if index in chosen:
            plan.purchases.append(purchase)
        else:
            why = f"over budget: its {purchase.escrow / 10**18:g} VMT escrow does not fit in {budget / 10**18:g} VMT"
            plan.skipped.append(Skipped(purchase.item, why, index))
    return plan
