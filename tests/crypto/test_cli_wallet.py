"""`verimesh wallet ...` through the real CLI entry point (typer's CliRunner)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from verimesh.cli.main import app
from verimesh.crypto.wallet import WalletStore

KEY_HEX = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
runner = CliRunner()


def _run(*args, input=None, env=None):
    return runner.invoke(app, ["wallet", *args], input=input, env=env)


def test_new_prompts_twice_and_writes_a_keystore(verimesh_home):
    result = _run("new", "alice", input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    info = WalletStore().info("alice")
    assert info.address in result.stdout and "s3cret" not in result.stdout
    assert WalletStore().load("alice", "s3cret").address == info.address


def test_new_with_mismatched_confirmation_asks_again(verimesh_home):
    result = _run("new", "alice", input="one\ntwo\nthree\nthree\n")
    assert result.exit_code == 0, result.output
    assert WalletStore().load("alice", "three")


def test_import_from_env_and_password_from_env(verimesh_home):
    result = _run("import", "dev", env={"VERIMESH_PRIVATE_KEY": KEY_HEX, "VERIMESH_PASSWORD": "pw"})
    assert result.exit_code == 0, result.output
    assert KEY_ADDRESS in result.stdout
    assert KEY_HEX[2:] not in result.output
    assert WalletStore().load("dev", "pw").address == KEY_ADDRESS


def test_import_from_hidden_prompt(verimesh_home):
    result = _run("import", "dev", input=f"{KEY_HEX}\npw\npw\n")
    assert result.exit_code == 0, result.output
    assert KEY_HEX[2:] not in result.stdout  # hidden input is not echoed
    assert WalletStore().load("dev", "pw").address == KEY_ADDRESS


def test_import_malformed_key_fails_clearly(verimesh_home):
    result = _run("import", "dev", env={"VERIMESH_PRIVATE_KEY": "0x1234", "VERIMESH_PASSWORD": "pw"})
    assert result.exit_code == 1
    assert "64 hex digits" in result.stderr
    assert WalletStore().list() == []


def test_duplicate_and_bad_names(verimesh_home):
    env = {"VERIMESH_PASSWORD": "pw"}
    assert _run("new", "alice", env=env).exit_code == 0
    dup = _run("new", "alice", env=env)
    assert dup.exit_code == 1 and "already exists" in dup.stderr
    bad = _run("new", "../x", env=env)
    assert bad.exit_code == 1 and "not allowed" in bad.stderr


def test_list_and_show(verimesh_home):
    assert "no wallets" in _run("list").stdout
    _run("import", "dev", env={"VERIMESH_PRIVATE_KEY": KEY_HEX, "VERIMESH_PASSWORD": "pw"})
    _run("new", "alice", env={"VERIMESH_PASSWORD": "pw"})
    listed = _run("list")
    assert listed.exit_code == 0
    assert listed.stdout.index("alice") < listed.stdout.index("dev")
    assert KEY_ADDRESS in listed.stdout
    shown = _run("show", "dev")
    assert shown.exit_code == 0
    assert KEY_ADDRESS in shown.stdout and "scrypt" in shown.stdout
    assert KEY_HEX[2:] not in shown.output


def test_show_check_password(verimesh_home):
    _run("new", "alice", env={"VERIMESH_PASSWORD": "right"})
    ok = _run("show", "alice", "--check-password", input="right\n")
    assert ok.exit_code == 0 and "password ok" in ok.stdout
    bad = _run("show", "alice", "--check-password", env={"VERIMESH_PASSWORD": "wrong"})
    assert bad.exit_code == 1 and "wrong password for wallet 'alice'" in bad.stderr


def test_show_unknown_wallet(verimesh_home):
    result = _run("show", "bob")
    assert result.exit_code == 1
    assert "no wallet named 'bob'" in result.stderr and "verimesh wallet new bob" in result.stderr


def test_keystores_written_by_the_cli_are_standard(verimesh_home):
    _run("import", "dev", env={"VERIMESH_PRIVATE_KEY": KEY_HEX, "VERIMESH_PASSWORD": "pw"})
    data = json.loads((verimesh_home / "wallets" / "dev.json").read_text())
    assert data["version"] == 3 and data["address"].lower() == KEY_ADDRESS[2:].lower()
