"""Who signs chain transactions: accounts from private keys, keystores, or the dev mnemonic.

A ``Signer`` keeps its key inside an eth-account ``LocalAccount`` and never prints it; the
in-process backend only reads ``address``, the JSON-RPC backend also signs with it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from verimesh.chain.errors import ChainError
from verimesh.crypto.keystore import decrypt_key, encrypt_key, read_keystore
from verimesh.crypto.wallet import Wallet

# The well-known anvil/hardhat mnemonic. Its keys are public: use them on a devnet only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
# Password of the dev keystores written by `verimesh devnet up`. Public, devnet only.
DEV_PASSWORD = "verimesh-dev"


class Signer:
    """An account that can send transactions."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self.address: str = account.address  # checksummed

    def __repr__(self) -> str:  # never show the key
        return f"Signer({self.address})"

    @classmethod
    def from_key(cls, private_key: bytes | str) -> Signer:
        try:
            return cls(Account.from_key(private_key))
        except (ValueError, TypeError) as exc:
            raise ChainError("not a valid private key: expected 32 bytes or 0x + 64 hex") from exc

    @classmethod
    def random(cls) -> Signer:
        return cls(Account.create())

    @classmethod
    def from_wallet(cls, wallet: Wallet) -> Signer:
        """A signer for an unlocked ``verimesh wallet`` (``WalletStore(...).load(name, pw)``)."""
        return cls(wallet.account)

    @classmethod
    def from_keystore(cls, path: Path | str, password: str) -> Signer:
        """Unlock an encrypted keystore v3 file (the format `verimesh wallet` writes)."""
        path = Path(path)
        if not path.is_file():
            raise ChainError(f"no keystore file at {path}")
        key = decrypt_key(read_keystore(path), password, label=str(path))
        return cls(Account.from_key(key))

    def to_keystore(self, password: str, scrypt_n: int | None = None) -> dict:
        """Keystore v3 JSON. ``scrypt_n`` defaults to the wallet strength of ``crypto.keystore``;
        the public dev accounts use a small one so that `devnet up` stays fast."""
        if scrypt_n is None:
            return encrypt_key(bytes(self._account.key), password)
        return Account.encrypt(self._account.key, password, kdf="scrypt", iterations=scrypt_n)

    def sign_typed_data(self, full_message: dict) -> tuple[int, bytes, bytes]:
        """EIP-712 signature ``(v, r, s)`` over a full typed-data message."""
        sig = self._account.sign_typed_data(full_message=full_message)
        return sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")

    def sign_transaction(self, tx: dict) -> bytes:
        return bytes(self._account.sign_transaction(tx).raw_transaction)


@cache
def _dev_key(index: int) -> bytes:
    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return bytes(acct.key)


def dev_signer(index: int) -> Signer:
    """Dev account ``index`` of the anvil mnemonic (funded with ETH by anvil itself)."""
    return Signer.from_key(_dev_key(index))


def dev_signers(n: int) -> list[Signer]:
    return [dev_signer(i) for i in range(n)]
