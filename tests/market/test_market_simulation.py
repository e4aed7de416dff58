"""Arena simulation: reproducible, conserves the pool, and the consensus meets its goals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from verimesh.cli.arena import app
from verimesh.market.simulation import SimConfig, build_world, reward_shift, run, simulate

SMALL = SimConfig(epochs=16, best_arrival=4, seed=3)


@pytest.fixture(scope="module")
def sim():
    return simulate(SMALL)


def test_same_seed_same_report_other_seed_other_world(sim):
    assert simulate(SMALL).report() == sim.report()
    other = build_world(SimConfig(epochs=16, best_arrival=4, seed=4))
    assert [p.quality for p in other.providers] != [p.quality for p in sim.world.providers]


def test_every_epoch_pays_exactly_the_pool_plus_last_carry(sim):
    pool = SMALL.pool_per_epoch
    for res in sim.runs.values():
        paid = sum(sum(r.values()) for r in res.provider_rewards) + sum(map(sum, res.validator_rewards))
        assert paid + res.carry == pool * SMALL.epochs


def test_arena_never_exceeds_its_slots_and_prunes_only_non_immune(sim):
    for res in sim.runs.values():
        assert all(len(lineup) <= SMALL.slots for lineup in res.lineup)
        for epoch, pid in res.pruned:
            joined = next(e for e, lineup in enumerate(res.lineup) if pid in lineup)
            assert epoch - joined >= SMALL.immunity


def test_without_a_cartel_the_counterfactual_shift_is_zero(sim):
    world = sim.world
    honest = run(world, "two_sided", cartel_active=False)
    assert reward_shift(honest, sim.runs[("two_sided", False)]) == 0.0


def test_two_sided_meets_the_goals_and_beats_yuma_on_the_cartel(sim):
    report = sim.report()
    ours, yuma = report["two_sided"], report["yuma"]
    assert ours["goals_met"] == {
        "epochs_for_best_to_rank_first": True,
        "cartel_reward_shift": True,
        "copier_to_honest_earnings": True,
    }
    assert ours["cartel_reward_shift"] < yuma["cartel_reward_shift"]
    assert ours["cartel_to_honest_earnings"] < 1.0
    assert ours["honest_validator_share"] > report["stake_shares"]["honest"]


def test_with_exact_scoring_a_minority_cartel_moves_nothing():
    """Fresh challenges scored exactly: honest validators agree bit for bit, so the band
    collapses to one value and the cartel's shift is exactly 0 (Yuma's is not)."""
    report = simulate(SimConfig(epochs=12, best_arrival=3, private_noise=0.0, seed=1)).report()
    assert report["two_sided"]["cartel_reward_shift"] == 0.0
    assert report["yuma"]["cartel_reward_shift"] > 0.01


def test_bad_config_says_what_to_fix():
    with pytest.raises(ValueError, match="sum to 1"):
        SimConfig(cartel_stake=0.5)
    with pytest.raises(ValueError, match="best_arrival"):
        SimConfig(epochs=5, best_arrival=5)
    with pytest.raises(ValueError, match="the best provider is a newcomer"):
        SimConfig(best_arrival=0)


def test_cli_simulate_json_has_the_required_fields():
    result = CliRunner().invoke(app, ["simulate", "--epochs", "12", "--seed", "2", "--best-arrival", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for rule in ("two_sided", "yuma"):
        for key in ("epochs_for_best_to_rank_first", "cartel_reward_shift",
                    "copier_to_honest_earnings", "honest_validator_share"):
            assert key in report[rule]


def test_cli_simulate_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the bench extra (matplotlib)")
    result = CliRunner().invoke(app, ["simulate", "--epochs", "8", "--best-arrival", "2", "--plot-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "cartel_reward_shift" in result.output
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["market-ranks.png", "market-rewards.png", "market-validators.png"]
    assert all((tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--cartel-stake", "0.5"], "--cartel-stake must be in (0, 0.5)"),
     (["--epochs", "5", "--best-arrival", "5"], "must be below --epochs"),
     (["--cartel-stake", "0.45", "--copier-stake", "0.5"], "leave no stake to honest")],
)
def test_cli_rejects_bad_options(args, message):
    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exit_code == 1
    assert message in result.output
