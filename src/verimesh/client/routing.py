"""Quality-adjusted routing: which provider gives the most quality per token?

An arena measures quality (its consensus incentive: each provider's share of the stake-
weighted, clipped scores); the registry holds prices. A requester wants neither the cheapest
nor the best, but the lowest price per unit of quality:

    adjusted_price = price * SCALE // quality        (quality in SCALE units, 0 < quality)

A provider with no measured quality, or below ``min_quality_bps`` of the best one's quality,
is not routed to at all: a free model that answers nothing is not a bargain. Everything is
integer arithmetic, so two clients with the same chain state pick the same provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from verimesh.market.consensus import SCALE

BPS = 10_000


class RoutingError(ValueError):
    """Nothing to route to; the message says why and what to change."""


@dataclass(frozen=True)
class RankedProvider:
    provider: str
    price: int  # token base units per job
    quality: int  # SCALE units (mean consensus incentive over the recent epochs)
    adjusted_price: int  # price per unit of quality, in SCALE units


def arena_quality(arena, last_epochs: int = 3) -> dict[str, int]:
    """provider -> mean consensus incentive over the last ``last_epochs`` finalized epochs,
    replayed from the chain with the consensus that settled them (``ArenaClient``)."""
    from verimesh.chain.arena import ZERO_ADDRESS
    from verimesh.market.arena_epoch import Bonds, compute_settlement

    if last_epochs < 1:
        raise RoutingError(f"last_epochs must be >= 1, got {last_epochs}")
    finalized = sorted({e["epoch"] for e in arena.get_events("SettlementFinalized")})
    if not finalized:
        raise RoutingError(f"arena {arena.address} has no finalized epoch yet: no quality to route by")
    window = set(finalized[-last_epochs:])
    sums: dict[str, int] = {}
    bonds: Bonds = {}
    for epoch in range(finalized[-1] + 1):
        settlement, _, bonds = compute_settlement(arena, epoch, bonds)
        if epoch not in window:
            continue
        for provider, incentive in zip(settlement.providers, settlement.ranks, strict=True):
            if provider != ZERO_ADDRESS:
                sums[provider] = sums.get(provider, 0) + incentive
    return {p: total // len(window) for p, total in sums.items()}


def rank_providers(
    quality: Mapping[str, int], prices: Mapping[str, int], min_quality_bps: int = 5_000
) -> list[RankedProvider]:
    """Providers with both a quality and a price, best (lowest adjusted price) first; ties go
    to the higher quality, then the lower address."""
    if not 0 <= min_quality_bps <= BPS:
        raise RoutingError(f"min_quality_bps must be in 0..10000, got {min_quality_bps}")
    both = [p for p in quality if p in prices and quality[p] > 0]
    if not both:
        raise RoutingError("no provider has both an arena quality and a price; are they registered in both?")
    best = max(quality[p] for p in both)
    floor = best * min_quality_bps // BPS
    ranked = [
        RankedProvider(p, prices[p], quality[p], prices[p] * SCALE // quality[p])
        for p in both if quality[p] >= floor
    ]  # fmt: skip
    ranked.sort(key=lambda r: (r.adjusted_price, -r.quality, r.provider.lower()))
    return ranked


def pick_provider(
    quality: Mapping[str, int], prices: Mapping[str, int], min_quality_bps: int = 5_000
) -> RankedProvider:
    """The quality-adjusted best provider."""
    return rank_providers(quality, prices, min_quality_bps)[0]
