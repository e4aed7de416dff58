"""`verimesh arena create | join | status | leaderboard` against a real anvil devnet started
with `devnet.up` (dev wallets, deployment.json) in a temporary VERIMESH_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verimesh.chain import devnet
from verimesh.chain.accounts import dev_signer
from verimesh.chain.arena import ArenaClient
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.compile import load_artifacts
from verimesh.chain.token import TokenClient
from verimesh.cli.arena import app
from verimesh.market.arena_epoch import settlement_from_history

pytestmark = pytest.mark.devnet
VMT = 10**18
EPOCH, COMMIT, WINDOW = 1000, 600, 300


@pytest.fixture(scope="module")
def home(devnet_home):
    return devnet_home


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_create_join_status_leaderboard(home):
    path, deployment = home
    spec = "0x" + "01" * 32
    created = cli(
        "create", "emb", "--dev", "dev0", "--spec-hash", spec, "--slots", "2", "--immunity", "1",
        "--min-provider-stake", "10", "--min-validator-stake", "10", "--epoch-length", str(EPOCH),
        "--commit-length", str(COMMIT), "--settle-bond", "1", "--challenge-window", str(WINDOW),
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    address = created.output.strip().splitlines()[-1]
    book = json.loads((path / "arenas.json").read_text())
    assert book["arenas"]["emb"]["address"] == address
    assert book["arenas"]["emb"]["token"] == deployment.contracts.token

    again = cli("create", "emb", "--dev", "dev0", "--spec-hash", spec)
    assert again.exit_code == 1 and "already exists" in again.output
    no_spec = cli("create", "other", "--dev", "dev0")
    assert no_spec.exit_code == 2 and "--spec" in no_spec.output
    unknown = cli("status", "nope")
    assert unknown.exit_code == 1 and "no arena named 'nope'" in unknown.output and "emb" in unknown.output

    p1, p2, v1, late = dev_signer(1), dev_signer(2), dev_signer(3), dev_signer(4)
    assert cli("join", "emb", "--dev", "dev1", "--stake", "20").exit_code == 0
    second = cli("join", "emb", "--dev", "dev2")  # the minimum stake
    assert second.exit_code == 0 and "slot 1" in second.output, second.output
    validator = cli("join", "emb", "--dev", "dev3", "--validator", "--stake", "30")
    assert validator.exit_code == 0, validator.output
    low = cli("join", "emb", "--dev", "dev4", "--validator", "--stake", "5")
    assert low.exit_code == 1 and "below the arena's minimum validator stake" in low.output
    # the contract's own revert strings reach the user
    full = cli("join", "emb", "--dev", "dev4")
    assert full.exit_code == 1 and "arena: full and every provider is immune" in full.output, full.output
    cross = cli("join", "emb", "--dev", "dev3")
    assert cross.exit_code == 1 and "arena: validators cannot be providers" in cross.output

    st = cli("status", "emb", "--json")
    assert st.exit_code == 0, st.output
    status = json.loads(st.output)
    assert status["epoch"] == 0 and status["phase"] == "commit"
    assert [(p["slot"], p["provider"], p["stake"], p["immune"]) for p in status["providers"]] == [
        (0, p1.address, 20 * VMT, True), (1, p2.address, 10 * VMT, True),
    ]  # fmt: skip
    assert status["validators"] == [{"validator": v1.address, "stake": 30 * VMT}]
    assert status["params"]["spec_hash"] == spec and status["params"]["max_providers"] == 2
    table = cli("status", "emb")
    assert table.exit_code == 0 and p1.address in table.output and v1.address in table.output
    assert "2 of 2 taken" in table.output

    empty = cli("leaderboard", "emb", "--json")
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output) == {"address": address, "settled_epochs": [], "providers": [], "epochs": []}
    assert "no settled epoch yet" in cli("leaderboard", "emb").output

    # one epoch on chain: fund, commit, reveal, post the recomputed settlement, finalize
    backend = RpcBackend(deployment.rpc_url, gas_limit=devnet.DEVNET_GAS_LIMIT)
    arts = load_artifacts(names=["Token", "Arena"])
    token = TokenClient(backend, deployment.contracts.token, arts["Token"].abi)
    arena = ArenaClient(backend, address, arts["Arena"].abi)
    funder = dev_signer(0)
    token.approve(address, 101 * VMT, signer=funder)
    arena.fund(0, 100 * VMT, signer=funder)
    _, salt = arena.commit_scores(0, [3, 7], signer=v1)
    backend.advance_time(COMMIT)
    assert json.loads(cli("status", "emb", "--json").output)["phase"] == "reveal"
    arena.reveal_scores(0, [3, 7], salt, signer=v1)
    backend.advance_time(EPOCH)
    settlement = settlement_from_history(arena, 0)
    arena.post_settlement(0, settlement, signer=funder)
    backend.advance_time(WINDOW)
    arena.finalize(0, settlement, signer=funder)

    board = json.loads(cli("leaderboard", "emb", "--json").output)
    assert board["settled_epochs"] == [0]
    assert [(t["provider"], t["last_rank"], t["epochs"]) for t in board["providers"]] == [
        (p2.address, 1, 1), (p1.address, 2, 1),
    ]  # fmt: skip
    assert [t["reward"] for t in board["providers"]] == settlement.provider_rewards[::-1]
    assert board["providers"][0]["reward"] > board["providers"][1]["reward"] > 0
    assert board["epochs"][0]["agrees"] is True
    text = cli("leaderboard", "emb")
    assert text.exit_code == 0 and "1 settled epochs" in text.output and p2.address in text.output

    # past its immunity, the lowest-ranked provider is pruned by a newcomer
    pruned = cli("join", "emb", "--dev", "dev4")
    assert pruned.exit_code == 0, pruned.output
    assert f"pruned {p1.address} from slot 0" in pruned.output and late.address in pruned.output


def test_stale_book_and_missing_deployment(home, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    (tmp_path / "arenas.json").write_text("{not json")
    broken = cli("status", "emb")
    assert broken.exit_code == 2 and "not a valid arenas file" in broken.output
    (tmp_path / "arenas.json").unlink()
    missing = cli("create", "x", "--dev", "dev0", "--spec-hash", "0x" + "00" * 32)
    assert missing.exit_code != 0 and "deployment" in missing.output.lower()
