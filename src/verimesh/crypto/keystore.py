"""Encrypted key files: the standard Ethereum keystore v3 JSON (scrypt + AES-128-CTR).

Why this format: every Ethereum tool (geth, foundry's ``cast wallet``, MetaMask import)
reads it, so a verimesh wallet is never locked into verimesh. Why scrypt at full strength:
a stolen laptop must not give up its keys to a GPU farm. Tests set
``VERIMESH_INSECURE_FAST_KDF=1`` to trade that strength for speed; the setting is read only
when a key is encrypted, and the keystore records its own parameters, so a file written
with it stays readable (and weak) forever: never set it for real keys.

Files are written atomically (temporary file + hard link, never a half-written key) with
mode 0600, and never overwrite an existing file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account

FAST_KDF_ENV = "VERIMESH_INSECURE_FAST_KDF"
# geth's "standard" scrypt work factor (about 1 s and 256 MiB per encrypt or decrypt).
SCRYPT_N = 2**18
# Test-only work factor: milliseconds instead of a second.
INSECURE_SCRYPT_N = 2**4


class KeystoreError(ValueError):
    """A keystore file that cannot be read, written or decrypted."""


class WrongPasswordError(KeystoreError):
    """The password does not decrypt the keystore (its MAC does not match)."""


class MalformedKeystoreError(KeystoreError):
    """The file is not a keystore v3 JSON document this code can read."""


def scrypt_work_factor() -> int:
    """The scrypt ``n`` for new keystores: full strength unless the test switch is on."""
    return INSECURE_SCRYPT_N if os.environ.get(FAST_KDF_ENV) == "1" else SCRYPT_N


def encrypt_key(private_key: bytes, password: str) -> dict[str, Any]:
    """Keystore v3 JSON (as a dict) holding ``private_key`` encrypted under ``password``."""
    return Account.encrypt(private_key, password, kdf="scrypt", iterations=scrypt_work_factor())


def decrypt_key(keystore: dict[str, Any], password: str, *, label: str = "keystore") -> bytes:
    """The private key inside ``keystore``; ``label`` names the file in error messages."""
    try:
        return bytes(Account.decrypt(keystore, password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPasswordError(
                f"wrong password for {label}: check VERIMESH_PASSWORD or retype it"
            ) from None
        raise MalformedKeystoreError(f"{label} is not a readable keystore v3 file: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise MalformedKeystoreError(
            f"{label} is not a readable keystore v3 file (missing or bad field {exc})"
        ) from None


def read_keystore(path: Path) -> dict[str, Any]:
    """Parse a keystore file without decrypting it (for its address and parameters)."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MalformedKeystoreError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != 3 or "crypto" not in data:
        raise MalformedKeystoreError(f"{path} is not a keystore v3 file (no version 3 / crypto)")
    return data


def keystore_address(keystore: dict[str, Any]) -> str:
    """The 0x-prefixed address a keystore declares (unverified until it is decrypted)."""
    address = str(keystore.get("address", ""))
    return address if address.startswith("0x") else "0x" + address


def write_new_private_file(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` atomically, mode 0600; fail if it already exists.

    The text goes to a temporary file in the same directory first, then a hard link gives
    it its final name in one step (``link`` refuses to replace an existing name, unlike
    ``rename``), so a crash never leaves a partial key file and two writers never clobber
    each other.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
