"""`verimesh wallet balance` against a real anvil devnet with the verimesh contracts deployed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from verimesh.chain.accounts import DEV_MNEMONIC, dev_signer
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, describe, fund_accounts
from verimesh.chain.deployment import VMT, NetworkParams
from verimesh.chain.devnet import AnvilNode, start_anvil
from verimesh.cli.main import app

pytestmark = pytest.mark.devnet
runner = CliRunner()
# anvil's dev account 5 (public test key): funded with 10000 ETH by anvil, unused by the deployment.
DEV5_INDEX = 5


@pytest.fixture(scope="module")
def artifact_cache(pytestconfig: pytest.Config) -> Path:
    # Shared with the chain tests: compiled once per source change, not once per test.
    cache = pytestconfig.cache.mkdir("verimesh-artifacts")
    load_artifacts(cache_dir=cache, names=CONTRACTS)
    return cache


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory, artifact_cache: Path) -> Iterator[tuple[AnvilNode, Path]]:
    """A devnet with Token/Registry/JobMarket and 1234.5 VMT minted to dev account 5."""
    work = tmp_path_factory.mktemp("devnet")
    node = start_anvil(log_path=work / "anvil.log")
    try:
        backend = RpcBackend(node.url, gas_limit=5_000_000)
        deployer = dev_signer(0)
        artifacts = load_artifacts(cache_dir=artifact_cache, names=CONTRACTS)
        params = NetworkParams()
        network = deploy_network(backend, deployer, params, artifacts)
        fund_accounts(network, deployer, [dev_signer(DEV5_INDEX).address], 1234 * VMT + VMT // 2)
        path = work / "deployment.json"
        describe(network, deployer, params, artifacts, node.url).save(path)
        yield node, path
    finally:
        node.stop()


@pytest.fixture
def home(verimesh_home: Path) -> Path:
    verimesh_home.mkdir(parents=True, exist_ok=True)
    return verimesh_home


def _import_dev5() -> str:
    Account.enable_unaudited_hdwallet_features()
    key = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{DEV5_INDEX}").key.hex()
    result = runner.invoke(app, ["wallet", "import", "dev5"], env={"VERIMESH_PRIVATE_KEY": key, "VERIMESH_PASSWORD": "pw"})
    assert result.exit_code == 0, result.output
    return dev_signer(DEV5_INDEX).address


def test_balance_shows_eth_and_vmt(home, devnet):
    _, deployment = devnet
    address = _import_dev5()
    result = runner.invoke(app, ["wallet", "balance", "dev5", "--deployment", str(deployment)])
    assert result.exit_code == 0, result.output
    assert address in result.stdout
    assert "ETH      10000\n" in result.stdout
    assert "VMT      1234.5\n" in result.stdout
    assert "chain    31337" in result.stdout


def test_balance_of_a_fresh_wallet_is_zero_and_default_path_is_the_devnet_dir(home, devnet):
    _, deployment = devnet
    (home / "devnet").mkdir()
    (home / "devnet" / "deployment.json").write_bytes(deployment.read_bytes())
    assert runner.invoke(app, ["wallet", "new", "fresh"], env={"VERIMESH_PASSWORD": "pw"}).exit_code == 0
    result = runner.invoke(app, ["wallet", "balance", "fresh"])
    assert result.exit_code == 0, result.output
    assert "ETH      0\n" in result.stdout and "VMT      0\n" in result.stdout


def test_balance_errors_say_what_to_do(home, devnet, tmp_path):
    _import_dev5()
    missing = runner.invoke(app, ["wallet", "balance", "dev5", "--deployment", str(tmp_path / "nope.json")])
    assert missing.exit_code == 1 and "verimesh devnet up" in missing.stderr
    unknown = runner.invoke(app, ["wallet", "balance", "ghost", "--deployment", str(devnet[1])])
    assert unknown.exit_code == 1 and "no wallet named 'ghost'" in unknown.stderr
    dead = tmp_path / "dead.json"
    dead.write_text(devnet[1].read_text().replace(devnet[0].url, "http://127.0.0.1:9"))
    down = runner.invoke(app, ["wallet", "balance", "dev5", "--deployment", str(dead)])
    assert down.exit_code == 1 and "no EVM node answers" in down.stderr
