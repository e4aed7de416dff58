"""The signed envelope every machine-to-machine request in verimesh travels in.

An ``Envelope`` is a typed message (``verimesh.crypto.messages``) plus who signed it, for
which deployment (chain id, verifying contract), a nonce and an expiry, and an EIP-712
signature over all of that. ``seal`` makes one; ``Verifier.verify`` opens one and returns
the typed message only if every check passes. Each failure is its own exception class, so
a server can map them to precise HTTP errors and a client can tell the user what to fix.

Checks run cheapest first, and the nonce is recorded last, after the signature checked
out: a forged envelope can never use up a real signer's nonce.

Signers are Ethereum accounts (ECDSA, recovered with coincurve through eth-keys). Contract
accounts (EIP-1271) can be added later by passing another ``SignatureChecker``; the digest
they would receive is the same EIP-712 hash.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

import coincurve
from eth_account.datastructures import SignedMessage
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from verimesh.crypto.eip712 import Address, Domain, TypedMessage, fast_digest, typed_data
from verimesh.crypto.nonces import NonceStore

M = TypeVar("M", bound=TypedMessage)

# How long a client's envelope stays valid by default: long enough for a slow link and
# a small clock skew, short enough that nonce stores stay small.
DEFAULT_TTL_SECONDS = 300
# Verifiers refuse envelopes that claim to live longer: it bounds replay-store memory.
DEFAULT_MAX_LIFETIME_SECONDS = 3600


class EnvelopeError(ValueError):
    """Base of every reason to reject an envelope."""


class MalformedEnvelopeError(EnvelopeError):
    """The envelope itself does not parse (missing field, bad address, bad hex...)."""


class MalformedPayloadError(EnvelopeError):
    """The message type is unknown or unexpected, or the payload does not fit it."""


class WrongChainError(EnvelopeError):
    """Signed for another chain id than this verifier's deployment."""


class WrongContractError(EnvelopeError):
    """Signed for another verifying contract than this verifier's deployment."""


class ExpiredError(EnvelopeError):
    """The envelope's expiry has passed."""


class LifetimeTooLongError(EnvelopeError):
    """The envelope's expiry is further ahead than this verifier accepts."""


class BadSignatureError(EnvelopeError):
    """The signature is not a valid signature of this envelope by its claimed signer."""


class ReplayedNonceError(EnvelopeError):
    """This signer already used this nonce in an envelope that has not expired yet."""


HexSignature = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]


class Envelope(BaseModel):
    """Wire form of a signed message (JSON-safe; the payload is the message's JSON form)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    chain_id: Annotated[int, Field(gt=0, strict=True)]
    verifying_contract: Address
    payload: dict[str, Any]
    signer: Address
    nonce: Annotated[int, Field(ge=0, lt=2**256, strict=True)]
    expiry: Annotated[int, Field(ge=0, lt=2**64, strict=True)]
    signature: HexSignature


@dataclass(frozen=True)
class Verified(Generic[M]):
    """What a verifier hands on: the typed message and the facts it checked."""

    message: M
    signer: str
    nonce: int
    expiry: int


class TypedDataSigner(Protocol):
    """Anything that can sign EIP-712 data: ``verimesh.crypto.wallet.Wallet`` for one."""

    @property
    def address(self) -> str: ...

    def sign_typed_data(self, full_message: dict[str, Any]) -> SignedMessage: ...


class SignatureChecker(Protocol):
    """Decides whether ``signature`` is ``signer``'s signature of the EIP-712 ``digest``."""

    def __call__(self, signer: str, digest: bytes, signature: bytes) -> bool: ...


def ecdsa_signature_checker(signer: str, digest: bytes, signature: bytes) -> bool:
    """Externally owned accounts: recover the public key (coincurve) and compare addresses.

    Calls coincurve directly: through eth-keys' object layer recovery costs twice as much.
    """
    if len(signature) != 65 or signature[64] not in (27, 28):
        return False
    rsv = signature[:64] + bytes([signature[64] - 27])
    try:
        public = coincurve.PublicKey.from_signature_and_message(rsv, digest, hasher=None)
    except (ValueError, TypeError):
        return False
    recovered = bytes(keccak(public.format(compressed=False)[1:]))[-20:]
    return recovered == bytes.fromhex(signer[2:])


def seal(
    signer: TypedDataSigner,
    message: TypedMessage,
    domain: Domain,
    *,
    nonce: int | None = None,
    expiry: int | None = None,
    ttl: int = DEFAULT_TTL_SECONDS,
) -> Envelope:
    """Sign ``message`` for ``domain``. Nonce defaults to 128 random bits, expiry to now + ttl."""
    nonce = secrets.randbits(128) if nonce is None else nonce
    expiry = int(time.time()) + ttl if expiry is None else expiry
    if not 0 <= nonce < 2**256:
        raise ValueError(f"nonce must fit in uint256, got {nonce}")
    if not 0 <= expiry < 2**64:
        raise ValueError(f"expiry must be unix seconds in uint64, got {expiry}")
    full = typed_data(domain, message, signer.address, nonce, expiry)
    signed = signer.sign_typed_data(full)
    return Envelope(
        type=message.eip712_type,
        chain_id=domain.chain_id,
        verifying_contract=domain.verifying_contract,
        payload=message.model_dump(mode="json"),
        signer=signer.address,
        nonce=nonce,
        expiry=expiry,
        signature="0x" + bytes(signed.signature).hex(),
    )


class Verifier:
    """Opens envelopes for one deployment; one instance per server, shared by its handlers."""

    def __init__(
        self,
        domain: Domain,
        nonces: NonceStore,
        *,
        clock: Callable[[], float] = time.time,
        max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
        signature_checker: SignatureChecker = ecdsa_signature_checker,
    ) -> None:
        self.domain = domain
        self.nonces = nonces
        self.clock = clock
        self.max_lifetime = max_lifetime
        self.signature_checker = signature_checker

    def verify(self, envelope: Envelope | dict[str, Any], expect: type[M]) -> Verified[M]:
        """The typed message inside ``envelope`` if it passes every check, else an error.

        ``expect`` is the message type this endpoint serves; anything else is rejected
        (a signature for one kind of request must not open another endpoint).
        """
        env = self._parse(envelope)
        if env.type != expect.eip712_type:
            raise MalformedPayloadError(
                f"expected a {expect.eip712_type} message, got {env.type!r}"
            )
        if env.chain_id != self.domain.chain_id:
            raise WrongChainError(
                f"envelope was signed for chain {env.chain_id}, this node serves chain "
                f"{self.domain.chain_id}: sign it with this deployment's domain"
            )
        if env.verifying_contract != self.domain.verifying_contract:
            raise WrongContractError(
                f"envelope was signed for contract {env.verifying_contract}, this node's "
                f"deployment uses {self.domain.verifying_contract}: check your deployment.json"
            )
        now = int(self.clock())
        if now > env.expiry:
            raise ExpiredError(
                f"envelope expired {now - env.expiry} s ago (expiry {env.expiry}, now {now}): "
                "sign a fresh one (and check the clock if this repeats)"
            )
        if env.expiry - now > self.max_lifetime:
            raise LifetimeTooLongError(
                f"envelope expires in {env.expiry - now} s; this verifier accepts at most "
                f"{self.max_lifetime} s: sign it with a shorter ttl"
            )
        try:
            message = expect.model_validate(env.payload)
        except PydanticValidationError as exc:
            raise MalformedPayloadError(f"payload is not a valid {expect.eip712_type}: {exc}") from None
        message_digest = fast_digest(self.domain, message, env.signer, env.nonce, env.expiry)
        if not self.signature_checker(env.signer, message_digest, bytes.fromhex(env.signature[2:])):
            raise BadSignatureError(
                f"signature does not match signer {env.signer} for this {env.type}: the "
                "message was altered, signed by another key, or signed for another domain"
            )
        if not self.nonces.use(env.signer, env.nonce, env.expiry, now):
            raise ReplayedNonceError(
                f"nonce {env.nonce} of {env.signer} was already used: sign the request again "
                "with a new nonce (seal() picks a random one)"
            )
        return Verified(message=message, signer=env.signer, nonce=env.nonce, expiry=env.expiry)

    @staticmethod
    def _parse(envelope: Envelope | dict[str, Any]) -> Envelope:
        if isinstance(envelope, Envelope):
            return envelope
        try:
            return Envelope.model_validate(envelope)
        except PydanticValidationError as exc:
            raise MalformedEnvelopeError(f"not a valid envelope: {exc}") from None
