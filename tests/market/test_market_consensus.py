"""Consensus rules: exact conservation, symmetry, minority resistance, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verimesh.market.consensus import (
    SCALE,
    ConsensusInputError,
    ConsensusParams,
    normalize_row,
    settle_epoch,
    split_proportionally,
    stake_quantile_band,
)

YUMA = ConsensusParams(clipping="yuma")


def _matrix(draw, rows: int, cols: int, lo: int = 0) -> list[list[int]]:
    out = []
    for _ in range(rows):
        row = draw(st.lists(st.integers(lo, 1000), min_size=cols, max_size=cols))
        if sum(row) == 0:
            row[0] = 1
        out.append(row)
    return out


@st.composite
def epochs(draw):
    m = draw(st.integers(1, 6))
    n = draw(st.integers(1, 6))
    stakes = draw(st.lists(st.integers(0, 10**6), min_size=m, max_size=m))
    if sum(stakes) == 0:
        stakes[0] = 1
    weights = _matrix(draw, m, n)
    bonds = draw(st.one_of(st.none(), st.just([[b * 1000 for b in r] for r in _matrix(draw, m, n)])))
    pool = draw(st.integers(0, 10**24))
    clipping = draw(st.sampled_from(["two_sided", "yuma"]))
    return stakes, weights, bonds, pool, ConsensusParams(clipping=clipping)


@settings(max_examples=200, deadline=None)
@given(epochs())
def test_rewards_plus_carry_equal_the_pool_exactly(case):
    stakes, weights, bonds, pool, params = case
    out = settle_epoch(stakes, weights, bonds, pool, params)
    assert out.paid + out.carry == pool
    assert out.carry >= 0
    # the floors leave less than one unit per recipient (or everything when nobody earns)
    if sum(out.ranks) and sum(out.dividends):
        assert out.carry < len(stakes) + len(weights[0])
    assert all(r >= 0 for r in out.provider_rewards + out.validator_rewards)


@settings(max_examples=150, deadline=None)
@given(epochs(), st.randoms(use_true_random=False))
def test_permuting_validators_and_providers_permutes_the_result(case, rnd):
    stakes, weights, bonds, pool, params = case
    m, n = len(stakes), len(weights[0])
    pv = list(range(m))
    pp = list(range(n))
    rnd.shuffle(pv)
    rnd.shuffle(pp)
    a = settle_epoch(stakes, weights, bonds, pool, params)
    b = settle_epoch(
        [stakes[i] for i in pv],
        [[weights[i][j] for j in pp] for i in pv],
        None if bonds is None else [[bonds[i][j] for j in pp] for i in pv],
        pool,
        params,
    )
    assert b.provider_rewards == tuple(a.provider_rewards[j] for j in pp)
    assert b.validator_rewards == tuple(a.validator_rewards[i] for i in pv)
    assert b.consensus == tuple(a.consensus[j] for j in pp)
    assert b.carry == a.carry


@st.composite
def honest_vs_minority(draw):
    n = draw(st.integers(1, 5))
    honest = draw(st.integers(1, 4))
    cartel = draw(st.integers(1, 4))
    h_stakes = draw(st.lists(st.integers(1, 10**6), min_size=honest, max_size=honest))
    budget = sum(h_stakes) - 1  # the minority holds strictly less than half of all stake
    c_stakes = draw(st.lists(st.integers(0, 10**6), min_size=cartel, max_size=cartel))
    scale = sum(c_stakes)
    if scale > budget:
        c_stakes = [s * budget // scale for s in c_stakes]
    return h_stakes, _matrix(draw, honest, n), c_stakes, _matrix(draw, cartel, n)


@settings(max_examples=300, deadline=None)
@given(honest_vs_minority())
def test_a_minority_cannot_move_consensus_or_rank_outside_the_honest_band(case):
    h_stakes, h_weights, c_stakes, c_weights = case
    stakes = h_stakes + c_stakes
    out = settle_epoch(stakes, h_weights + c_weights, None, 10**18)
    honest_rows = [normalize_row(r) for r in h_weights]
    total = sum(stakes)
    for j in range(len(h_weights[0])):
        col = [r[j] for r in honest_rows]
        lo, hi = min(col), max(col)
        assert lo <= out.consensus_low[j] <= out.consensus[j] <= hi
        # two-sided clipping: every validator's effective weight is inside the band
        assert lo * total <= out.ranks[j] <= hi * total


def test_yuma_lets_a_small_validator_drag_a_provider_down_two_sided_does_not():
    # two providers, the honest 90% score them 60/40; a 10% validator zeroes provider 0
    stakes = [45, 45, 10]
    weights = [[60, 40], [60, 40], [0, 100]]
    yuma = settle_epoch(stakes, weights, None, 10**6, YUMA)
    ours = settle_epoch(stakes, weights, None, 10**6)
    honest = settle_epoch(stakes, [[60, 40]] * 3, None, 10**6)
    assert ours.provider_rewards == honest.provider_rewards
    assert yuma.provider_rewards[0] < honest.provider_rewards[0] - 10**6 // 100
    # ...and the deviating validator earns fewer bonds than the honest ones in both
    assert ours.bonds[2][0] < ours.bonds[0][0] * 10 // 45


def test_over_scoring_costs_bonds_two_sided_but_not_in_yuma():
    stakes = [50, 50, 50]
    weights = [[50, 50], [50, 50], [90, 10]]  # validator 2 over-scores provider 0
    yuma = settle_epoch(stakes, weights, None, 10**6, YUMA)
    ours = settle_epoch(stakes, weights, None, 10**6)
    assert yuma.bonds[2][0] == yuma.bonds[0][0]  # clipped to consensus: full bonds
    assert ours.bonds[2][0] < ours.bonds[0][0]  # two-sided: deviation costs


def test_ema_bonds_reward_early_agreement():
    """A validator that scored the provider before consensus did keeps more bonds after."""
    stakes = [10, 10, 10]
    early = settle_epoch(stakes, [[50, 50], [50, 50], [50, 50]], None, 0)
    # epoch 2: everybody agrees the same; validator 0's bonds came from epoch 1 as well
    late_bonds = [list(early.bonds[0]), [0, 0], [0, 0]]
    nxt = settle_epoch(stakes, [[50, 50]] * 3, late_bonds, 10**6)
    assert nxt.validator_rewards[0] > nxt.validator_rewards[1] == nxt.validator_rewards[2]


def test_stake_quantile_band_examples():
    assert stake_quantile_band([1, 2, 3], [1, 1, 1], 1, 2) == (2, 2)
    assert stake_quantile_band([1, 3], [1, 1], 1, 2) == (1, 3)  # exact tie: the band is wide
    assert stake_quantile_band([5, 9], [1, 3], 1, 2) == (9, 9)


def test_split_proportionally_carries_the_floor_remainder():
    assert split_proportionally(10, [1, 1, 1]) == ((3, 3, 3), 1)
    assert split_proportionally(7, [0, 0]) == ((0, 0), 7)


def test_normalized_rows_ignore_the_size_of_the_numbers():
    assert normalize_row([1, 3]) == normalize_row([1000, 3000]) == (SCALE // 4, 3 * SCALE // 4)


def test_determinism_same_input_same_output():
    args = ([3, 5, 7], [[1, 2, 3], [3, 2, 1], [2, 2, 2]], None, 10**20)
    assert settle_epoch(*args) == settle_epoch(*args)


@pytest.mark.parametrize(
    ("stakes", "weights", "bonds", "pool", "match"),
    [
        ([1], [[1, 2]], None, -1, "pool must be"),
        ([], [], None, 1, "no validators"),
        ([1, 2], [[1]], None, 1, "2 stakes but 1 weight rows"),
        ([1, 2], [[1, 2], [1]], None, 1, "validator 1 scored 1 providers, expected 2"),
        ([1], [[1, -2]], None, 1, "negative score"),
        ([1], [[0, 0]], None, 1, "scored every provider 0"),
        ([0], [[1, 1]], None, 1, "total stake is 0"),
        ([1], [[1, 1]], [[0]], 1, "previous bonds must be 1 x 2"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(stakes, weights, bonds, pool, match):
    with pytest.raises(ConsensusInputError, match=match):
        settle_epoch(stakes, weights, bonds, pool)


def test_bad_params_are_rejected():
    with pytest.raises(ConsensusInputError, match="kappa"):
        ConsensusParams(kappa_num=2, kappa_den=2)
    with pytest.raises(ConsensusInputError, match="clipping"):
        ConsensusParams(clipping="both")  # type: ignore[arg-type]
