"""Named wallets: Ethereum keys kept as encrypted keystore files under ``$VERIMESH_HOME``.

A ``Wallet`` is the one object in verimesh that holds a private key in memory. It signs
(transactions, EIP-712 data) but never shows the key: its ``repr`` and ``str`` carry only
the name and address, and it has no attribute that prints as the key. Passwords come from
the caller (the CLI prompts, or reads ``VERIMESH_PASSWORD`` for unattended nodes).

Layout: ``$VERIMESH_HOME/wallets/<name>.json`` (default home ``~/.verimesh``), one standard
keystore v3 file per wallet, mode 0600, directory mode 0700.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from verimesh.crypto.keystore import (
    KeystoreError,
    decrypt_key,
    encrypt_key,
    keystore_address,
    read_keystore,
    write_new_private_file,
)
from verimesh.paths import verimesh_home

PASSWORD_ENV = "VERIMESH_PASSWORD"
# Names become file names: a conservative alphabet rules out path tricks ("../x", "a/b").
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class WalletError(ValueError):
    """Base of wallet errors; every message says what to do next."""


class InvalidWalletNameError(WalletError):
    pass


class UnknownWalletError(WalletError):
    pass


class DuplicateWalletError(WalletError):
    pass


class MalformedKeyError(WalletError):
    pass


class TamperedWalletError(WalletError):
    """The keystore's declared address is not the address of the key it holds."""


def password_from_env() -> str | None:
    """The wallet password from ``VERIMESH_PASSWORD``, if set (for unattended use)."""
    return os.environ.get(PASSWORD_ENV)


def parse_private_key(text: str) -> bytes:
    """32 key bytes from 64 hex digits (optional 0x). Errors never echo the input."""
    text = text.strip()
    if not _KEY_RE.match(text):
        raise MalformedKeyError(
            "a private key must be 64 hex digits, optionally prefixed with 0x "
            f"(got {len(text)} characters; the input is not shown)"
        )
    key = bytes.fromhex(text.removeprefix("0x"))
    try:
        Account.from_key(key)
    except ValueError:
        raise MalformedKeyError(
            "that private key is outside the secp256k1 range (zero or >= the curve order)"
        ) from None
    return key


class Wallet:
    """An unlocked key with a name. Signs; never reveals the key in repr/str/logs."""

    __slots__ = ("_account", "name")

    def __init__(self, name: str, account: LocalAccount) -> None:
        self.name = name
        self._account = account

    @classmethod
    def from_key(cls, name: str, private_key: bytes) -> Wallet:
        """Wallet for a key already in memory (tests, devnet accounts)."""
        return cls(name, Account.from_key(private_key))

    @property
    def address(self) -> str:
        """Checksummed 0x address."""
        return self._account.address

    @property
    def account(self) -> LocalAccount:
        """The eth-account signer, for clients (web3 middleware) that need one.

        It holds the key: pass it to signing code, never to a logger or a print.
        """
        return self._account

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        return self._account.sign_transaction(tx)

    def sign_typed_data(self, full_message: dict[str, Any]) -> SignedMessage:
        """EIP-712 signature over a full typed-data message (types, domain, message)."""
        return self._account.sign_typed_data(full_message=full_message)

    def __repr__(self) -> str:
        return f"Wallet(name={self.name!r}, address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would copy the key to wherever the pickle goes (caches, other processes).
        raise TypeError("a Wallet holds a private key and cannot be pickled; pass its name")


@dataclass(frozen=True)
class WalletInfo:
    """What can be known about a wallet without its password."""

    name: str
    address: str
    path: Path


class WalletStore:
    """The wallets of one verimesh home: create, import, list, load."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else verimesh_home() / "wallets"

    def path(self, name: str) -> Path:
        if not _NAME_RE.match(name):
            raise InvalidWalletNameError(
                f"wallet name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or "
                "'.', starting with a letter or digit"
            )
        return self.directory / f"{name}.json"

    def create(self, name: str, password: str) -> WalletInfo:
        """A new wallet with a fresh random key."""
        return self._save(name, bytes(Account.create().key), password)

    def import_key(self, name: str, private_key: str | bytes, password: str) -> WalletInfo:
        """A wallet for an existing key (hex text or 32 bytes)."""
        text = private_key.hex() if isinstance(private_key, bytes) else private_key
        return self._save(name, parse_private_key(text), password)

    def list(self) -> list[WalletInfo]:
        """All wallets, sorted by name; unreadable files are skipped, not fatal."""
        if not self.directory.is_dir():
            return []
        infos = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                infos.append(self._info(path.stem, path))
            except KeystoreError:
                continue
        return infos

    def info(self, name: str) -> WalletInfo:
        path = self.path(name)
        if not path.exists():
            raise UnknownWalletError(self._unknown_message(name))
        return self._info(name, path)

    def load(self, name: str, password: str) -> Wallet:
        """Decrypt the named wallet. Raises ``WrongPasswordError`` on a bad password."""
        info = self.info(name)
        keystore = read_keystore(info.path)
        key = decrypt_key(keystore, password, label=f"wallet {name!r}")
        wallet = Wallet.from_key(name, key)
        if wallet.address.lower() != info.address.lower():
            raise TamperedWalletError(
                f"wallet {name!r} declares address {info.address} but holds the key of "
                f"{wallet.address}: the file was edited; restore it from a backup"
            )
        return wallet

    def _save(self, name: str, key: bytes, password: str) -> WalletInfo:
        path = self.path(name)
        if path.exists():
            raise DuplicateWalletError(self._duplicate_message(name, path))
        if not password:
            raise WalletError("an empty password would leave the key unprotected: choose one")
        text = json.dumps(encrypt_key(key, password), indent=2)
        try:
            write_new_private_file(path, text)
        except FileExistsError:
            raise DuplicateWalletError(self._duplicate_message(name, path)) from None
        return self._info(name, path)

    def _info(self, name: str, path: Path) -> WalletInfo:
        address = keystore_address(read_keystore(path))
        try:
            return WalletInfo(name, to_checksum_address(address), path)
        except ValueError:
            raise KeystoreError(f"{path} declares a malformed address {address!r}") from None

    def _unknown_message(self, name: str) -> str:
        known = ", ".join(i.name for i in self.list()) or "none yet"
        return (
            f"no wallet named {name!r} in {self.directory} (known: {known}); "
            f"create one with `verimesh wallet new {name}`"
        )

    @staticmethod
    def _duplicate_message(name: str, path: Path) -> str:
        return f"a wallet named {name!r} already exists ({path}); pick another name"
