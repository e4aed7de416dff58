"""Wallets: encrypted keystore files that round-trip, fail clearly, and never show a key."""

from __future__ import annotations

import json
import os
import pickle
import stat

import pytest
from eth_account import Account

from verimesh.crypto.keystore import (
    INSECURE_SCRYPT_N,
    SCRYPT_N,
    MalformedKeystoreError,
    WrongPasswordError,
    scrypt_work_factor,
)
from verimesh.crypto.wallet import (
    DuplicateWalletError,
    InvalidWalletNameError,
    MalformedKeyError,
    TamperedWalletError,
    UnknownWalletError,
    Wallet,
    WalletError,
    WalletStore,
    parse_private_key,
)

# A well-known test key (anvil's account 0); never holds real funds.
KEY_HEX = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_store_defaults_to_verimesh_home(verimesh_home):
    assert WalletStore().directory == verimesh_home / "wallets"


def test_create_then_load_round_trips_and_files_are_private(verimesh_home):
    store = WalletStore()
    info = store.create("alice", "pw")
    assert info.path == verimesh_home / "wallets" / "alice.json"
    assert stat.S_IMODE(os.stat(info.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(info.path.parent).st_mode) == 0o700
    assert [p.name for p in info.path.parent.iterdir()] == ["alice.json"]  # no temp left
    wallet = store.load("alice", "pw")
    assert wallet.address == info.address
    keystore = json.loads(info.path.read_text())
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert keystore["crypto"]["kdfparams"]["n"] == INSECURE_SCRYPT_N


def test_import_keeps_the_key_and_standard_tools_can_read_the_file(verimesh_home):
    info = WalletStore().import_key("dev", KEY_HEX, "pw")
    assert info.address == KEY_ADDRESS
    # A plain eth-account (any keystore v3 reader) decrypts it: no lock-in.
    assert Account.decrypt(json.loads(info.path.read_text()), "pw").hex() == KEY_HEX[2:]
    assert WalletStore().load("dev", "pw").address == KEY_ADDRESS


def test_list_is_sorted_and_needs_no_password(verimesh_home):
    store = WalletStore()
    assert store.list() == []
    store.create("zed", "a")
    store.import_key("amy", KEY_HEX[2:], "b")
    assert [(i.name, i.address == KEY_ADDRESS) for i in store.list()] == [("amy", True), ("zed", False)]


def test_wrong_password_is_its_own_error(verimesh_home):
    store = WalletStore()
    store.create("alice", "right")
    with pytest.raises(WrongPasswordError, match="wrong password for wallet 'alice'"):
        store.load("alice", "wrong")


def test_unknown_wallet_names_the_known_ones(verimesh_home):
    store = WalletStore()
    store.create("alice", "pw")
    with pytest.raises(UnknownWalletError, match=r"no wallet named 'bob'.*known: alice.*verimesh wallet new bob"):
        store.load("bob", "pw")


def test_duplicate_name_is_refused_and_the_first_wallet_survives(verimesh_home):
    store = WalletStore()
    first = store.create("alice", "pw")
    with pytest.raises(DuplicateWalletError, match="already exists"):
        store.import_key("alice", KEY_HEX, "pw")
    assert store.load("alice", "pw").address == first.address


@pytest.mark.parametrize(
    "bad",
    ["", "12", KEY_HEX + "00", "0x" + "g" * 64, "0x" + "00" * 32, "0x" + "ff" * 32],
)
def test_malformed_keys_are_rejected_without_echoing_them(verimesh_home, bad):
    with pytest.raises(MalformedKeyError) as exc:
        WalletStore().import_key("x", bad, "pw")
    if len(bad) > 4:
        assert bad.removeprefix("0x") not in str(exc.value)
    assert not (verimesh_home / "wallets" / "x.json").exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "sp ace"])
def test_wallet_names_cannot_escape_the_directory(verimesh_home, name):
    with pytest.raises(InvalidWalletNameError, match="not allowed"):
        WalletStore().create(name, "pw")


def test_empty_password_is_refused(verimesh_home):
    with pytest.raises(WalletError, match="empty password"):
        WalletStore().create("alice", "")


def test_repr_str_and_errors_never_contain_the_key(verimesh_home):
    wallet = Wallet.from_key("dev", parse_private_key(KEY_HEX))
    for text in (repr(wallet), str(wallet), f"{wallet}", repr([wallet])):
        assert KEY_HEX[2:] not in text.lower()
        assert KEY_ADDRESS in text
    assert not hasattr(wallet, "__dict__")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(wallet)


def test_wallet_signs_transactions_for_its_address(verimesh_home):
    wallet = Wallet.from_key("dev", parse_private_key(KEY_HEX))
    tx = {"to": KEY_ADDRESS, "value": 1, "gas": 21000, "gasPrice": 1, "nonce": 0, "chainId": 31337}
    signed = wallet.sign_transaction(tx)
    assert Account.recover_transaction(signed.raw_transaction) == KEY_ADDRESS


def test_a_tampered_or_broken_file_fails_clearly(verimesh_home):
    store = WalletStore()
    info = store.create("alice", "pw")
    info.path.chmod(0o600)
    data = json.loads(info.path.read_text())
    data["address"] = KEY_ADDRESS[2:].lower()
    info.path.write_text(json.dumps(data))
    with pytest.raises(TamperedWalletError, match="holds the key of"):
        store.load("alice", "pw")
    info.path.write_text("{not json")
    with pytest.raises(MalformedKeystoreError, match="not valid JSON"):
        store.load("alice", "pw")
    assert store.list() == []  # unreadable files are skipped by list, not fatal


def test_full_strength_kdf_unless_the_test_switch_is_exactly_1(monkeypatch):
    monkeypatch.delenv("VERIMESH_INSECURE_FAST_KDF", raising=False)
    assert scrypt_work_factor() == SCRYPT_N == 2**18
    monkeypatch.setenv("VERIMESH_INSECURE_FAST_KDF", "yes")
    assert scrypt_work_factor() == SCRYPT_N
    monkeypatch.setenv("VERIMESH_INSECURE_FAST_KDF", "1")
    assert scrypt_work_factor() == INSECURE_SCRYPT_N
