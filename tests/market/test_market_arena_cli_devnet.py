"""`verimesh arena settlement` against a real anvil devnet: recomputes an epoch from the
chain and tells a correct posted settlement from a wrong one."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from verimesh.chain.accounts import dev_signer
from verimesh.chain.arena import ArenaClient, ArenaSettlement
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.compile import load_artifacts
from verimesh.chain.devnet import start_anvil
from verimesh.chain.token import TokenClient
from verimesh.cli.arena import app

pytestmark = pytest.mark.devnet
VMT = 10**18
EPOCH, COMMIT, WINDOW = 1000, 600, 300


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    anvil = start_anvil(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log")
    yield anvil
    anvil.stop()


def test_settlement_command_checks_the_posted_payouts(node, tmp_path, monkeypatch):
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))  # the CLI's artifact cache, not ~/.verimesh
    backend = RpcBackend(node.url, gas_limit=8_000_000)
    arts = load_artifacts(names=["Token", "Arena"])
    owner, p0, p1, v0, v1, poster = (dev_signer(i) for i in range(6))
    token, _ = TokenClient.deploy(backend, owner, arts["Token"], "VMT", "VMT", 18, owner.address)
    arena, _ = ArenaClient.deploy(
        backend, owner, arts["Arena"], token.address, owner.address, b"\x01" * 32, b"\x02" * 32,
        2, 10 * VMT, 10 * VMT, 1, EPOCH, COMMIT, VMT, WINDOW,
    )
    for s in (owner, p0, p1, v0, v1, poster):
        token.mint(s.address, 1_000 * VMT, signer=owner)
        token.approve(arena.address, 2**256 - 1, signer=s)
    arena.register_provider(10 * VMT, signer=p0)
    arena.register_provider(10 * VMT, signer=p1)
    arena.register_validator(30 * VMT, signer=v0)
    arena.register_validator(10 * VMT, signer=v1)
    arena.fund(0, 100 * VMT, signer=owner)
    rows = {v0: [8, 2], v1: [2, 8]}
    salts = {v: arena.commit_scores(0, r, signer=v)[1] for v, r in rows.items()}
    backend.advance_time(COMMIT)
    for v, r in rows.items():
        arena.reveal_scores(0, r, salts[v], signer=v)
    backend.advance_time(EPOCH)

    args = ["settlement", "--rpc", node.url, "--arena", arena.address, "--epoch", "0", "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["posted"] == "none posted"
    correct = ArenaSettlement.model_validate(report["settlement"])
    assert correct.total == 100 * VMT and correct.provider_rewards[0] > correct.provider_rewards[1]

    # a poster that swaps the providers' rewards keeps the sums right but is caught
    wrong = correct.model_copy(update={"provider_rewards": correct.provider_rewards[::-1]})
    arena.post_settlement(0, wrong, signer=poster)
    caught = CliRunner().invoke(app, args)
    assert caught.exit_code == 2 and json.loads(caught.output)["posted"] == "WRONG"
    arena.challenge(0, signer=v1)
    arena.resolve(0, False, signer=owner)
    arena.post_settlement(0, correct, signer=poster)
    agreed = CliRunner().invoke(app, args)
    assert agreed.exit_code == 0 and json.loads(agreed.output)["posted"] == "agrees"

    future = CliRunner().invoke(app, ["settlement", "--rpc", node.url, "--arena", arena.address, "--epoch", "9"])
    assert future.exit_code == 1 and "is not over yet" in future.output
