"""`verimesh arena run` on a real anvil devnet (devnet.up in a temporary VERIMESH_HOME): a
generation arena played for one epoch with the shipped tiny decoder, through the CLI, then
its leaderboard; and the run's bad inputs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from verimesh.cli.arena import app

pytestmark = pytest.mark.devnet


@pytest.fixture(scope="module")
def home(devnet_home):
    return devnet_home[0]


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_run_plays_an_epoch_and_the_leaderboard_shows_it(home):
    created = cli(
        "create", "gen", "--task-family", "generation", "--dev", "dev0", "--spec-hash", "0x" + "02" * 32,
        "--slots", "2", "--min-provider-stake", "10", "--min-validator-stake", "10",
        "--epoch-length", "600", "--commit-length", "400", "--settle-bond", "1", "--challenge-window", "10",
    )  # fmt: skip
    assert created.exit_code == 0, created.output

    wrong_task = cli("run", "gen", "--provider", "dev2=minilm@1", "--validator", "dev5", "--fast-forward")
    assert wrong_task.exit_code == 1 and "competes in the embeddings arena" in wrong_task.output
    bad_spec = cli("run", "gen", "--provider", "dev2", "--validator", "dev5")
    assert bad_spec.exit_code == 2 and "ACCOUNT=MODEL@PRICE" in bad_spec.output

    ran = cli(
        "run", "gen", "--provider", "dev2=tiny-shakespeare@0.1", "--provider", "dev3=tiny-shakespeare@0.2",
        "--validator", "dev5", "--funder", "dev1", "--fund", "10", "--epochs", "1",
        "--pool-size", "2", "--challenges", "1", "--audits", "1", "--fast-forward", "--json",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output)
    (epoch,) = report["epochs"]
    (rows,) = epoch["scores"].values()
    assert [r["audited"] for r in rows] == [1, 1] and all(r["failed"] is None for r in rows)
    assert sum(epoch["rewards"].values()) > 0 and sorted(epoch["ranks"].values()) == [1, 2]

    board = cli("leaderboard", "gen", "--json")
    assert board.exit_code == 0, board.output
    settled = json.loads(board.output)
    assert settled["settled_epochs"] == [epoch["epoch"]] and all(e["agrees"] for e in settled["epochs"])
    assert {p["provider"] for p in settled["providers"]} == set(report["models"])
