"""Typed client of PaymentChannel.vy, its vouchers, and the x402-style wire messages.

A voucher is the EIP-712 struct ``Voucher(uint256 channelId, uint256 cumulative)`` in the
domain ``("verimesh PaymentChannel", "1", chainId, channel contract)``: the payer's
signature over the TOTAL it owes the payee on one channel. ``voucher_digest`` computes
exactly what the contract computes (tests pin both), ``sign_voucher`` signs it.

The HTTP messages (``PaymentOffer`` in a 402 answer, ``PaymentVoucher`` in the request
header, ``PaymentReceipt`` in the response header) live here, below both the server helper
(``verimesh.node.paywall``) and the client helper (``verimesh.client.x402``), so the two
sides share one definition and neither imports the other.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from verimesh.chain.accounts import Signer
from verimesh.chain.backends.base import Backend
from verimesh.chain.compile import Artifact
from verimesh.chain.contract import ContractClient, Tx, checksum
from verimesh.crypto.eip712 import DOMAIN_FIELDS, Address

DOMAIN_NAME = "verimesh PaymentChannel"
DOMAIN_VERSION = "1"
_DOMAIN_TYPEHASH = bytes(
    keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
)
_VOUCHER_TYPEHASH = bytes(keccak(text="Voucher(uint256 channelId,uint256 cumulative)"))
# HTTP header names of the x402-style flow.
PAYMENT_HEADER = "X-Payment"
RECEIPT_HEADER = "X-Payment-Receipt"
X402_VERSION = 1
SCHEME = "verimesh-channel"
# Longest payment header a server parses (a voucher is ~300 bytes base64).
MAX_HEADER_BYTES = 4096

Uint = Annotated[int, Field(ge=0, lt=2**256, strict=True)]
HexSignature = Annotated[str, Field(pattern=r"^0x([0-9a-fA-F]{2}){1,256}$")]


class PaymentError(ValueError):
    """A payment message could not be read; the message says what was wrong."""


# -- on-chain state ---------------------------------------------------------------------


class Channel(BaseModel):
    """The ``Channel`` struct."""

    payer: str
    payee: str
    deposit: int
    redeemed: int
    closes_at: int  # 0 while open
    settled: bool

    @property
    def exists(self) -> bool:
        return int(self.payer, 16) != 0

    @property
    def is_open(self) -> bool:
        """Open for new vouchers: exists, not settled, and the payer did not start closing."""
        return self.exists and not self.settled and self.closes_at == 0


# -- vouchers ----------------------------------------------------------------------------


def domain_separator(chain_id: int, contract: str) -> bytes:
    return bytes(
        keccak(
            _DOMAIN_TYPEHASH
            + bytes(keccak(text=DOMAIN_NAME))
            + bytes(keccak(text=DOMAIN_VERSION))
            + chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(checksum(contract)[2:])
        )
    )


def voucher_digest(chain_id: int, contract: str, channel_id: int, cumulative: int) -> bytes:
    """The EIP-712 digest of a voucher, byte for byte what ``PaymentChannel.voucher_digest`` returns."""
    struct = bytes(
        keccak(_VOUCHER_TYPEHASH + channel_id.to_bytes(32, "big") + cumulative.to_bytes(32, "big"))
    )
    return bytes(keccak(b"\x19\x01" + domain_separator(chain_id, contract) + struct))


def voucher_typed_data(chain_id: int, contract: str, channel_id: int, cumulative: int) -> dict[str, Any]:
    """The full EIP-712 document of a voucher (what a hardware wallet would show)."""
    return {
        "types": {
            "EIP712Domain": list(DOMAIN_FIELDS),
            "Voucher": [
                {"name": "channelId", "type": "uint256"},
                {"name": "cumulative", "type": "uint256"},
            ],
        },
        "primaryType": "Voucher",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": checksum(contract),
        },
        "message": {"channelId": channel_id, "cumulative": cumulative},
    }


class PaymentVoucher(BaseModel):
    """What a client puts in the ``X-Payment`` header: one signed cumulative voucher.

    ``chain_id`` and ``contract`` repeat the signed domain so a server can say "wrong
    contract" instead of "bad signature"; the signature covers them anyway.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    x402_version: Literal[1] = X402_VERSION
    scheme: Literal["verimesh-channel"] = SCHEME
    chain_id: Annotated[int, Field(gt=0, strict=True)]
    contract: Address
    channel_id: Annotated[int, Field(gt=0, lt=2**256, strict=True)]
    cumulative: Uint
    signature: HexSignature

    @property
    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.signature[2:])

    def digest(self) -> bytes:
        return voucher_digest(self.chain_id, self.contract, self.channel_id, self.cumulative)

    def to_header(self) -> str:
        """base64url(JSON), as x402 encodes its payment header."""
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def from_header(cls, value: str) -> PaymentVoucher:
        if len(value) > MAX_HEADER_BYTES:
            raise PaymentError(f"{PAYMENT_HEADER} is longer than {MAX_HEADER_BYTES} bytes")
        try:
            padded = value.strip() + "=" * (-len(value.strip()) % 4)
            raw = base64.b64decode(padded.encode(), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise PaymentError(f"{PAYMENT_HEADER} is not base64url: send PaymentVoucher.to_header()") from None
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise PaymentError(f"{PAYMENT_HEADER} is not a valid voucher: {_short(exc)}") from None


def sign_voucher(
    signer: Signer, chain_id: int, contract: str, channel_id: int, cumulative: int
) -> PaymentVoucher:
    """A voucher signed by ``signer``: the payer's key, or a session key of the AgentWallet
    that is the channel's payer (the wallet's EIP-1271 answer accepts it)."""
    v, r, s = signer.sign_typed_data(voucher_typed_data(chain_id, contract, channel_id, cumulative))
    return PaymentVoucher(
        chain_id=chain_id,
        contract=contract,
        channel_id=channel_id,
        cumulative=cumulative,
        signature="0x" + (r + s + bytes([v])).hex(),
    )


# -- x402 wire messages ------------------------------------------------------------------


class PaymentOffer(BaseModel):
    """A service's price and terms, in a 402 answer: pay ``price`` per request to ``payee``
    through a channel of ``channel_contract`` on ``chain_id``, in ``token``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Literal["verimesh-channel"] = SCHEME
    resource: str = Field(description="the path the offer is for")
    price: Annotated[int, Field(gt=0, lt=2**256, strict=True)] = Field(
        description="base units of `token` per request"
    )
    token: Address
    channel_contract: Address
    payee: Address
    chain_id: Annotated[int, Field(gt=0, strict=True)]
    challenge_period: Annotated[int, Field(ge=0, strict=True)]
    min_deposit: Uint = Field(description="smallest channel deposit the service accepts")
    terms: str = Field(default="", max_length=2048, description="human-readable terms")


class PaymentRequired(BaseModel):
    """Body of a ``402 Payment Required`` answer (x402 shape: version, error, accepts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x402_version: Literal[1] = X402_VERSION
    error: str = Field(description="machine-readable reason: payment_required, bad_signature, ...")
    detail: str = Field(default="", description="what went wrong and what to do")
    accepts: list[PaymentOffer]


class PaymentReceipt(BaseModel):
    """``X-Payment-Receipt`` of a served request: what the service now holds a voucher for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel_id: Annotated[int, Field(gt=0, strict=True)]
    cumulative: Uint
    price: Uint

    def to_header(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_header(cls, value: str) -> PaymentReceipt:
        try:
            return cls.model_validate_json(value)
        except ValidationError as exc:
            raise PaymentError(f"{RECEIPT_HEADER} is not a valid receipt: {_short(exc)}") from None


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])


# -- contract client -----------------------------------------------------------------------


class PaymentChannelClient(ContractClient):
    """Open, top up, redeem, close, start_close, withdraw; amounts in token base units."""

    # -- views -------------------------------------------------------------------------
    def token(self) -> str:
        return self.call("token")

    def challenge_period(self) -> int:
        return self.call("challenge_period")

    def channel_count(self) -> int:
        return self.call("channel_count")

    def channels(self, channel_id: int) -> Channel:
        return Channel.model_validate(self.call("channels", channel_id))

    def payee_of(self, channel_id: int) -> str:
        return self.call("payee_of", channel_id)

    def voucher_digest(self, channel_id: int, cumulative: int) -> bytes:
        return self.call("voucher_digest", channel_id, cumulative)

    def domain_separator(self) -> bytes:
        return self.call("DOMAIN_SEPARATOR")

    def sign_voucher(self, signer: Signer, channel_id: int, cumulative: int) -> PaymentVoucher:
        return sign_voucher(signer, self.backend.chain_id, self.address, channel_id, cumulative)

    # -- transactions ------------------------------------------------------------------
    def open(self, payee: str, amount: int, *, signer: Signer | None = None) -> tuple[int, Tx]:
        """Open a channel (approve this contract on the token first); returns its id."""
        tx = self.transact("open", checksum(payee), amount, signer=signer)
        return tx.event("Opened", self.address)["channel_id"], tx

    def top_up(self, channel_id: int, amount: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("top_up", channel_id, amount, signer=signer)

    def redeem(self, voucher: PaymentVoucher, *, signer: Signer | None = None) -> Tx:
        """Collect a newer voucher for the payee; the channel stays open."""
        return self.transact(
            "redeem", voucher.channel_id, voucher.cumulative, voucher.signature_bytes, signer=signer
        )

    def close(
        self, channel_id: int, voucher: PaymentVoucher | None = None, *, signer: Signer | None = None
    ) -> Tx:
        """Payee only: collect ``voucher`` (if newer) and return the rest to the payer."""
        cumulative, signature = (voucher.cumulative, voucher.signature_bytes) if voucher else (0, b"")
        return self.transact("close", channel_id, cumulative, signature, signer=signer)

    def start_close(self, channel_id: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("start_close", channel_id, signer=signer)

    def withdraw(self, channel_id: int, *, signer: Signer | None = None) -> Tx:
        return self.transact("withdraw", channel_id, signer=signer)


def deploy_payment_channel(
    backend: Backend, deployer: Signer, artifact: Artifact, token: str, challenge_period: int
) -> PaymentChannelClient:
    """Deploy one PaymentChannel for ``token`` (``load_artifacts(names=["PaymentChannel"])``)."""
    client, _ = PaymentChannelClient.deploy(backend, deployer, artifact, checksum(token), challenge_period)
    return client
