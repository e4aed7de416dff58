"""An arena's leaderboard over epochs, replayed from the chain: ranks and rewards of every
finalized epoch, recomputed with the same consensus that settled them (bonds carried from
epoch to epoch). The CLI (`verimesh arena leaderboard`) and the dashboard show this."""

from __future__ import annotations

from verimesh.chain.arena import ZERO_ADDRESS, ArenaClient
from verimesh.market.arena_epoch import Bonds, compute_settlement


def leaderboard(arena: ArenaClient) -> dict:
    """``providers``: totals best first; ``epochs``: per finalized epoch, each provider's
    rank (1 = highest incentive), reward and incentive. An epoch whose finalized payouts
    differ from the replay is marked ``agrees: false`` and its replayed numbers shown.
    ``models``: provider -> root of the model named in its latest answer commitment."""
    finalized = sorted({e["epoch"] for e in arena.get_events("SettlementFinalized")})
    models = {e["provider"]: "0x" + e["model_root"].hex() for e in arena.get_events("AnswersCommitted")}
    epochs = []
    totals: dict[str, dict] = {}
    bonds: Bonds = {}
    for epoch in range(finalized[-1] + 1 if finalized else 0):
        settlement, _, bonds = compute_settlement(arena, epoch, bonds)
        if epoch not in finalized:
            continue
        digest = arena.call("settlement_digest", *settlement.args())
        live = [
            (k, p, settlement.provider_rewards[k], settlement.ranks[k])
            for k, p in enumerate(settlement.providers) if p != ZERO_ADDRESS
        ]  # fmt: skip
        live.sort(key=lambda row: (-row[3], row[0]))
        rows = []
        for position, (slot, provider, reward, incentive) in enumerate(live, start=1):
            rows.append({"rank": position, "slot": slot, "provider": provider, "reward": reward, "incentive": incentive})
            total = totals.setdefault(provider, {"provider": provider, "reward": 0, "epochs": 0, "ranks": []})
            total["reward"] += reward
            total["epochs"] += 1
            total["ranks"].append(position)
        epochs.append({"epoch": epoch, "agrees": digest == arena.settlement(epoch).digest, "providers": rows})
    board = sorted(totals.values(), key=lambda t: (-t["reward"], t["provider"]))
    for t in board:
        t["last_rank"] = t["ranks"][-1]
        t["best_rank"] = min(t["ranks"])
        t["model_root"] = models.get(t["provider"])
    return {"address": arena.address, "settled_epochs": finalized, "providers": board, "epochs": epochs}
