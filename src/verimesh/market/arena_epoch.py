"""Settle an arena epoch from the chain: read the reveals, run the consensus, build the
payouts to post (or to compare with a posted settlement before challenging it).

Everyone runs this same function on the same on-chain data, so an honest poster and an
honest challenger always agree; a posted settlement that differs is wrong.
"""

from __future__ import annotations

from verimesh.chain.arena import ZERO_ADDRESS, ArenaClient, ArenaSettlement
from verimesh.market.consensus import ConsensusParams, EpochSettlement, settle_epoch

Bonds = dict[tuple[str, str], int]
"""(validator, provider) -> bond, carried from one epoch's settlement to the next."""


def epoch_inputs(arena: ArenaClient, epoch: int) -> tuple[list[str], dict[str, int], int]:
    """The lineup (provider per slot), validator stakes and reward pool of ``epoch``, replayed
    from the arena's events in chain order: the same answer whenever anyone asks, even after
    later registrations, prunings, departures or the epoch's own finalization (which empties
    its pool on chain). Pool = what was funded for the epoch + carries finalized during it."""
    lineup = [ZERO_ADDRESS] * arena.max_providers()
    stakes: dict[str, int] = {}
    pool = 0
    for e in arena.get_all_events():
        if e.name == "Funded" and e["epoch"] == epoch:
            pool += e["amount"]
        elif e.name == "SettlementFinalized" and e["carried_into"] == epoch:
            pool += e["carry"]
        if e.name not in _MEMBERSHIP or e["epoch"] > epoch:
            continue
        if e.name == "ProviderRegistered":
            lineup[e["slot"]] = e["provider"]
        elif e.name == "ProviderLeft":
            lineup[e["slot"]] = ZERO_ADDRESS
        elif e.name == "ValidatorRegistered":
            stakes[e["validator"]] = e["stake"]
        elif e.name == "ValidatorLeft":
            stakes.pop(e["validator"], None)
        # ProviderPruned is always followed by the newcomer's ProviderRegistered in its slot
    return lineup, stakes, pool


_MEMBERSHIP = {"ProviderRegistered", "ProviderPruned", "ProviderLeft", "ValidatorRegistered", "ValidatorLeft"}


def compute_settlement(
    arena: ArenaClient, epoch: int, prev_bonds: Bonds | None = None, params: ConsensusParams | None = None
) -> tuple[ArenaSettlement, EpochSettlement | None, Bonds]:
    """Payouts of ``epoch`` from its reveals and the lineup and stakes at the epoch's end.

    Empty slots get no score column. With no reveal (or no stake behind them) nothing is
    paid and the whole pool is carried into the next epoch. Returns (what to post, the full
    consensus result or None, the bonds to pass to the next epoch).
    """
    lineup, stake_of, pool = epoch_inputs(arena, epoch)
    reveals = arena.revealed_scores(epoch)
    validators = sorted(reveals)
    stakes = [stake_of.get(v, 0) for v in validators]
    live = [k for k, p in enumerate(lineup) if p != ZERO_ADDRESS]
    rows = [[reveals[v][k] for k in live] for v in validators]
    usable = [i for i, row in enumerate(rows) if sum(row) > 0]
    if not live or not usable or sum(stakes[i] for i in usable) == 0:
        empty = ArenaSettlement(
            providers=lineup, provider_rewards=[0] * len(lineup), ranks=[0] * len(lineup),
            validators=[], validator_rewards=[], carry=pool,
        )
        return empty, None, dict(prev_bonds or {})
    validators = [validators[i] for i in usable]
    stakes = [stakes[i] for i in usable]
    rows = [rows[i] for i in usable]
    providers = [lineup[k] for k in live]
    prev = [[(prev_bonds or {}).get((v, p), 0) for p in providers] for v in validators]
    out = settle_epoch(stakes, rows, prev, pool, params)
    rewards = [0] * len(lineup)
    ranks = [0] * len(lineup)
    for j, k in enumerate(live):
        rewards[k] = out.provider_rewards[j]
        ranks[k] = out.incentive[j]
    settlement = ArenaSettlement(
        providers=lineup, provider_rewards=rewards, ranks=ranks, validators=validators,
        validator_rewards=list(out.validator_rewards), carry=out.carry,
    )
    bonds = {(v, p): out.bonds[i][j] for i, v in enumerate(validators) for j, p in enumerate(providers)}
    return settlement, out, bonds


def settlement_from_history(
    arena: ArenaClient, epoch: int, params: ConsensusParams | None = None
) -> ArenaSettlement:
    """The one correct settlement of ``epoch``: bonds are an EMA over every earlier epoch,
    so they are replayed from epoch 0 (each epoch from its own reveals). This is what a poster
    posts and what a challenger or the arbiter compares with."""
    bonds: Bonds = {}
    settlement = None
    for e in range(epoch + 1):
        settlement, _, bonds = compute_settlement(arena, e, bonds, params)
    assert settlement is not None
    return settlement
