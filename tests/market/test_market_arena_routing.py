"""Quality-adjusted routing: arena quality (replayed from a settled arena on chain) and
prices in, providers ranked by price per unit of quality out."""

from __future__ import annotations

import pytest
from arena_world import COMMIT, EPOCH, VMT, WINDOW, arena_world

from verimesh.client.routing import RoutingError, arena_quality, pick_provider, rank_providers
from verimesh.market.arena_epoch import settlement_from_history
from verimesh.market.consensus import SCALE


def test_lowest_price_per_quality_wins_and_junk_is_never_routed():
    quality = {"0xA": 600_000_000, "0xB": 300_000_000, "0xC": 100_000_000}
    prices = {"0xA": 30, "0xB": 10, "0xC": 1}
    ranked = rank_providers(quality, prices)  # C is below half of the best: excluded
    assert [r.provider for r in ranked] == ["0xB", "0xA"]
    assert ranked[0].adjusted_price == 10 * SCALE // 300_000_000
    assert pick_provider(quality, {**prices, "0xB": 25}).provider == "0xA"  # B no longer worth it
    assert pick_provider(quality, prices, min_quality_bps=0).provider == "0xC"
    with pytest.raises(RoutingError, match="both an arena quality and a price"):
        rank_providers({"0xA": 5}, {"0xB": 1})
    with pytest.raises(RoutingError, match="min_quality_bps"):
        rank_providers(quality, prices, min_quality_bps=20_000)


def test_quality_comes_from_the_settled_arena(pytestconfig):
    backend, _, arena, owner, actors = arena_world(pytestconfig.cache.mkdir("verimesh-artifacts"))
    good, poor = actors[0], actors[1]
    validators = actors[4:6]
    for p in (good, poor):
        arena.register_provider(100 * VMT, signer=p)
    for v in validators:
        arena.register_validator(100 * VMT, signer=v)
    with pytest.raises(RoutingError, match="no finalized epoch"):
        arena_quality(arena)
    for epoch in range(2):
        arena.fund(epoch, 10 * VMT, signer=owner)
        salts = [arena.commit_scores(epoch, [750, 250, 0, 0], signer=v)[1] for v in validators]
        backend.advance_time(COMMIT)
        for v, salt in zip(validators, salts, strict=True):
            arena.reveal_scores(epoch, [750, 250, 0, 0], salt, signer=v)
        backend.advance_time(EPOCH - COMMIT)
    for epoch in range(2):
        arena.post_settlement(epoch, settlement_from_history(arena, epoch), signer=owner)
    backend.advance_time(WINDOW)
    for epoch in range(2):
        arena.finalize(epoch, settlement_from_history(arena, epoch), signer=owner)
    quality = arena_quality(arena)
    assert quality[good.address] == 3 * quality[poor.address] > 0
    # three times the quality at twice the price: the good one is the better deal
    assert pick_provider(quality, {good.address: 2 * VMT, poor.address: VMT}, min_quality_bps=0).provider == good.address
    # at four times the price it is not
    assert pick_provider(quality, {good.address: 4 * VMT, poor.address: VMT}, min_quality_bps=0).provider == poor.address
