"""Arena consensus: validator score vectors in, provider rewards and validator dividends out.

Everything here is integer arithmetic on Python ints (every division is a floor), so any
party, in any language or in a contract with uint256, recomputes exactly the same numbers
from the same on-chain submissions. That is what lets an epoch be settled by whoever posts
the result with a bond: a wrong result is challenged by recomputing it.

The scheme follows Bittensor's Yuma consensus (stake-weighted median with kappa = 1/2,
clipped weights, EMA bonds, dividends = bonds x incentive) and changes one thing: weights are
clipped into the consensus band on BOTH sides. Yuma only clips over-scoring, so a validator
with a small stake can still drag a good provider down by under-scoring it (its stake times
the missing weight comes straight off the provider's rank). Here every deviation from the
band, up or down, earns no influence on rewards, and it costs the deviating validator bonds.
Formulas and the argument are in docs/market.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SCALE = 10**9
"""Fixed-point one: normalized weights, consensus, incentive and bonds are fractions of it."""

BPS = 10_000
"""Basis points: the validator share of the pool is given in them."""

Clipping = Literal["two_sided", "yuma"]


class ConsensusInputError(ValueError):
    """A submission that cannot be settled; the message says which entry and what to fix."""


@dataclass(frozen=True)
class ConsensusParams:
    """Knobs of the consensus; the defaults are the protocol's values.

    kappa = kappa_num / kappa_den is the stake fraction that must support a value for it to
    be consensus. 1/2 is what makes a minority powerless (see `stake_quantile_band`).
    """

    kappa_num: int = 1
    kappa_den: int = 2
    bond_alpha_ppm: int = 100_000  # EMA weight of the new epoch's bonds (0.1, as Yuma)
    validator_share_bps: int = 5_000  # part of the pool paid to validators (Yuma: half)
    clipping: Clipping = "two_sided"

    def __post_init__(self) -> None:
        if not (0 < self.kappa_num < self.kappa_den):
            raise ConsensusInputError("kappa must be a fraction strictly between 0 and 1")
        if not (0 < self.bond_alpha_ppm <= 1_000_000):
            raise ConsensusInputError("bond_alpha_ppm must be in (0, 1_000_000]")
        if not (0 <= self.validator_share_bps <= BPS):
            raise ConsensusInputError("validator_share_bps must be in [0, 10_000]")
        if self.clipping not in ("two_sided", "yuma"):
            raise ConsensusInputError(f"clipping must be 'two_sided' or 'yuma', not {self.clipping!r}")


@dataclass(frozen=True)
class EpochSettlement:
    """The outcome of one epoch. Matrices are validator-major: ``bonds[i][j]``."""

    weights: tuple[tuple[int, ...], ...]  # rows normalized to (about) SCALE
    consensus: tuple[int, ...]  # upper kappa-quantile per provider (Yuma's consensus)
    consensus_low: tuple[int, ...]  # lower kappa-quantile; the band is [low, consensus]
    ranks: tuple[int, ...]  # sum_i stake_i * clipped weight_ij
    incentive: tuple[int, ...]  # ranks normalized to SCALE (floor)
    bonds: tuple[tuple[int, ...], ...]  # EMA bonds, each column sums to <= SCALE
    dividends: tuple[int, ...]  # sum_j bonds_ij * ranks_j
    provider_rewards: tuple[int, ...]
    validator_rewards: tuple[int, ...]
    carry: int  # undistributed remainder: goes into the next epoch's pool

    @property
    def paid(self) -> int:
        return sum(self.provider_rewards) + sum(self.validator_rewards)


def normalize_row(row: Sequence[int]) -> tuple[int, ...]:
    """Scale a validator's raw scores so they sum to SCALE (floor; the sum may fall short by
    fewer than len(row) units). Only proportions matter: a validator cannot gain influence by
    submitting bigger numbers."""
    total = sum(row)
    return tuple(w * SCALE // total for w in row)


def split_proportionally(amount: int, shares: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """Pay ``amount`` in proportion to ``shares`` with floors; return (payouts, remainder).

    The remainder rule is fixed and symmetric: what the floors leave (fewer units than there
    are recipients) is carried to the next epoch's pool instead of going to anybody, so the
    result does not depend on the order of recipients. payouts + remainder == amount always.
    With all shares zero, everything is carried.
    """
    total = sum(shares)
    if total == 0:
        return tuple(0 for _ in shares), amount
    payouts = tuple(amount * s // total for s in shares)
    return payouts, amount - sum(payouts)


def stake_quantile_band(
    column: Sequence[int], stakes: Sequence[int], kappa_num: int, kappa_den: int
) -> tuple[int, int]:
    """(low, high) kappa-quantiles of one provider's weights, weighted by stake.

    high = the largest value v such that validators scoring >= v hold >= kappa of the stake
    (Yuma's consensus); low = the smallest v such that those scoring <= v hold >= kappa.
    With kappa = 1/2 both lie between the lowest and highest weight given by any group
    holding more than half the stake, whatever the others submit: that is the honest band.
    """
    total = sum(stakes)
    pairs = sorted(zip(column, stakes, strict=True))
    need = total * kappa_num  # compare cum * kappa_den >= total * kappa_num, no division
    high = 0
    cum = 0
    for value, stake in reversed(pairs):
        cum += stake
        if cum * kappa_den >= need:
            high = value
            break
    low = 0
    cum = 0
    for value, stake in pairs:
        cum += stake
        if cum * kappa_den >= need:
            low = value
            break
    return low, high


def _check(stakes: Sequence[int], weights: Sequence[Sequence[int]], prev_bonds, pool: int) -> int:
    if pool < 0:
        raise ConsensusInputError(f"pool must be >= 0, got {pool}")
    if not stakes:
        raise ConsensusInputError("no validators: settle only epochs with at least one reveal")
    if len(weights) != len(stakes):
        raise ConsensusInputError(
            f"{len(stakes)} stakes but {len(weights)} weight rows: give one row per validator"
        )
    n = len(weights[0])
    if n == 0:
        raise ConsensusInputError("no providers: weight rows are empty")
    for i, row in enumerate(weights):
        if len(row) != n:
            raise ConsensusInputError(
                f"validator {i} scored {len(row)} providers, expected {n}: one score per provider"
            )
        if any(w < 0 for w in row):
            raise ConsensusInputError(f"validator {i} has a negative score; scores are >= 0")
        if sum(row) == 0:
            raise ConsensusInputError(
                f"validator {i} scored every provider 0; drop its submission or give a score"
            )
    if any(s < 0 for s in stakes):
        raise ConsensusInputError("stakes must be >= 0")
    if sum(stakes) == 0:
        raise ConsensusInputError("total stake is 0: nobody backs these scores")
    if prev_bonds is not None:
        if len(prev_bonds) != len(stakes) or any(len(r) != n for r in prev_bonds):
            raise ConsensusInputError(
                f"previous bonds must be {len(stakes)} x {n} (validators x providers); "
                "use zeros for a new validator or provider"
            )
        if any(b < 0 for r in prev_bonds for b in r):
            raise ConsensusInputError("previous bonds must be >= 0")
    return n


def settle_epoch(
    stakes: Sequence[int],
    weights: Sequence[Sequence[int]],
    prev_bonds: Sequence[Sequence[int]] | None,
    pool: int,
    params: ConsensusParams | None = None,
) -> EpochSettlement:
    """Settle one epoch from the revealed score vectors.

    stakes[i]: stake of validator i (token units); weights[i][j]: its raw score of provider
    j (any non-negative ints, normalized here); prev_bonds: last epoch's bonds for the same
    validators and providers (None or zeros at the start; zero the column of a new
    provider); pool: tokens to pay this epoch. Raises ConsensusInputError on bad shapes.
    """
    params = params or ConsensusParams()
    n = _check(stakes, weights, prev_bonds, pool)
    m = len(stakes)
    w = [normalize_row(row) for row in weights]

    low: list[int] = []
    high: list[int] = []
    for j in range(n):
        lo, hi = stake_quantile_band([w[i][j] for i in range(m)], stakes, params.kappa_num, params.kappa_den)
        low.append(lo)
        high.append(hi)

    # Clipped weights decide the providers' ranks. Yuma: min(w, high). Two-sided: clamp into
    # [low, high], so no deviation, up or down, changes any rank beyond the band.
    if params.clipping == "yuma":
        clipped = [[min(w[i][j], high[j]) for j in range(n)] for i in range(m)]
    else:
        clipped = [[min(max(w[i][j], low[j]), high[j]) for j in range(n)] for i in range(m)]
    ranks = [sum(stakes[i] * clipped[i][j] for i in range(m)) for j in range(n)]
    rank_total = sum(ranks)
    incentive = [r * SCALE // rank_total if rank_total else 0 for r in ranks]

    # Agreement earns bonds. Yuma: the clipped weight (under-scoring costs, over-scoring is
    # cut). Two-sided: high minus the distance to the band, so a deviation in either
    # direction costs exactly as much as it deviates (equal to Yuma's below the band).
    if params.clipping == "yuma":
        agreement = clipped
    else:
        agreement = [
            [max(0, high[j] - max(low[j] - w[i][j], w[i][j] - high[j], 0)) for j in range(n)]
            for i in range(m)
        ]
    alpha = params.bond_alpha_ppm
    bonds: list[list[int]] = []
    column_totals = [sum(stakes[i] * agreement[i][j] for i in range(m)) for j in range(n)]
    for i in range(m):
        row = []
        for j in range(n):
            fresh = stakes[i] * agreement[i][j] * SCALE // column_totals[j] if column_totals[j] else 0
            old = prev_bonds[i][j] if prev_bonds is not None else 0
            row.append((alpha * fresh + (1_000_000 - alpha) * old) // 1_000_000)
        bonds.append(row)
    dividends = [sum(bonds[i][j] * ranks[j] for j in range(n)) for i in range(m)]

    validator_pool = pool * params.validator_share_bps // BPS
    provider_pool = pool - validator_pool
    provider_rewards, carry_p = split_proportionally(provider_pool, ranks)
    validator_rewards, carry_v = split_proportionally(validator_pool, dividends)
    return EpochSettlement(
        weights=tuple(w),
        consensus=tuple(high),
        consensus_low=tuple(low),
        ranks=tuple(ranks),
        incentive=tuple(incentive),
        bonds=tuple(tuple(r) for r in bonds),
        dividends=tuple(dividends),
        provider_rewards=provider_rewards,
        validator_rewards=validator_rewards,
        carry=carry_p + carry_v,
    )
