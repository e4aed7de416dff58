"""`verimesh devnet up/status/down/lifecycle` against the real anvil binary."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from verimesh.chain import devnet
from verimesh.chain.accounts import DEV_PASSWORD, dev_signer
from verimesh.chain.client import Network
from verimesh.chain.deployment import Deployment
from verimesh.chain.errors import DevnetError
from verimesh.cli.main import app
from verimesh.crypto.wallet import WalletStore

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private VERIMESH_HOME; the contracts come from the suite's shared artifact cache."""
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.devnet
def test_up_status_down(home):
    state = home / "devnet"
    port = devnet.free_port()
    try:
        result = runner.invoke(app, ["devnet", "up", "--port", str(port), "--state-dir", str(state)])
        assert result.exit_code == 0, result.output
        pid = int((state / devnet.PID_FILE).read_text())
        assert devnet.pid_alive(pid)

        deployment = Deployment.load(state / devnet.DEPLOYMENT_FILE)
        assert deployment.rpc_url == f"http://127.0.0.1:{port}"
        assert deployment.chain_id == devnet.DEV_CHAIN_ID
        assert [a.address for a in deployment.dev_accounts] == [dev_signer(i).address for i in range(10)]
        signer = deployment.dev_signer("dev1", state)
        assert signer.address == dev_signer(1).address
        wallet = WalletStore(state / devnet.WALLETS_DIR).load("dev2", DEV_PASSWORD)
        assert wallet.address == dev_signer(2).address

        net = Network.connect(state / devnet.DEPLOYMENT_FILE, signer)
        assert net.token.balance_of(signer.address) == deployment.params.mint_per_account
        assert net.registry.job_market() == net.job_market.address
        net.token.transfer(dev_signer(3).address, 1)  # a dev keystore can send transactions

        result = runner.invoke(app, ["devnet", "status", "--state-dir", str(state)])
        assert result.exit_code == 0 and f"127.0.0.1:{port}" in result.output

        result = runner.invoke(app, ["devnet", "up", "--port", str(port), "--state-dir", str(state)])
        assert result.exit_code == 1 and "already running" in result.output

        result = runner.invoke(app, ["devnet", "down", "--state-dir", str(state)])
        assert result.exit_code == 0 and "devnet stopped" in result.output
        assert not devnet.pid_alive(pid)
        assert not (state / devnet.DEPLOYMENT_FILE).exists()
        result = runner.invoke(app, ["devnet", "status", "--state-dir", str(state)])
        assert result.exit_code == 1 and "no devnet running" in result.output
    finally:
        devnet.down(state)


@pytest.mark.devnet
def test_lifecycle_command_runs_a_job_and_a_refund(home):
    result = runner.invoke(app, ["devnet", "lifecycle"])
    assert result.exit_code == 0, result.output
    assert "final state FINALIZED" in result.output
    assert "final state REFUNDED" in result.output
    assert "devnet stopped" in result.output


@pytest.mark.devnet
def test_up_refuses_a_busy_port(home):
    with devnet.socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(DevnetError, match=f"port {port} on 127.0.0.1 is already in use"):
            devnet.start_anvil(port)


def test_missing_anvil_says_run_make_setup(monkeypatch, tmp_path):
    monkeypatch.setenv("VERIMESH_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(DevnetError, match="not an executable file"):
        devnet.find_anvil()
    monkeypatch.delenv("VERIMESH_ANVIL")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(devnet, "__file__", str(tmp_path / "devnet.py"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevnetError, match="run `make setup`"):
        devnet.find_anvil()


def test_down_without_a_devnet_is_harmless(tmp_path):
    assert devnet.down(tmp_path) is False
    assert devnet.status(tmp_path).running is False


def test_free_port_never_hands_out_a_port_twice(monkeypatch):
    """The kernel may offer a just-released port again; a port planned for one process must
    not be planned for another before either binds it (the demo's dashboard once got a
    node's port)."""
    offered = iter([41001, 41001, 41002, 41001, 41003])
    monkeypatch.setattr(devnet, "_unbound_port", lambda: next(offered))
    monkeypatch.setattr(devnet, "_HANDED_OUT", set())
    assert [devnet.free_port(), devnet.free_port(), devnet.free_port()] == [41001, 41002, 41003]


def test_free_port_says_so_when_every_offer_was_handed_out(monkeypatch):
    monkeypatch.setattr(devnet, "_unbound_port", lambda: 41001)
    monkeypatch.setattr(devnet, "_HANDED_OUT", {41001})
    with pytest.raises(DevnetError, match="no free port"):
        devnet.free_port()
