"""Signed envelopes: honest ones open, and each way of cheating fails with its own error."""

from __future__ import annotations

import json
import time
from typing import ClassVar

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from verimesh.crypto.eip712 import Domain, TypedMessage, Uint256, digest, signable, typed_data
from verimesh.crypto.envelope import (
    BadSignatureError,
    Envelope,
    ExpiredError,
    LifetimeTooLongError,
    MalformedEnvelopeError,
    MalformedPayloadError,
    ReplayedNonceError,
    Verifier,
    WrongChainError,
    WrongContractError,
    seal,
)
from verimesh.crypto.messages import DisputeDataRequest, JobResultRequest, Request
from verimesh.crypto.nonces import MemoryNonceStore, SqliteNonceStore
from verimesh.crypto.wallet import Wallet

NOW = 1_800_000_000
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = Domain(chain_id=31337, verifying_contract=MARKET)
ALICE = Wallet.from_key("alice", bytes.fromhex("11" * 32))
MALLORY = Wallet.from_key("mallory", bytes.fromhex("22" * 32))


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(clock):
    return Verifier(DOMAIN, MemoryNonceStore(), clock=clock)


def _result_request(signer=ALICE, **kw):
    kw.setdefault("expiry", NOW + 60)
    kw.setdefault("nonce", 7)
    return seal(signer, JobResultRequest(job_id=42, requester=ALICE.address), DOMAIN, **kw)


def _tamper(env: Envelope, **changes) -> dict:
    return {**env.model_dump(mode="json"), **changes}


def test_an_honest_envelope_opens_to_its_typed_message(verifier):
    env = _result_request()
    got = verifier.verify(env, JobResultRequest)
    assert got.message == JobResultRequest(job_id=42, requester=ALICE.address)
    assert (got.signer, got.nonce, got.expiry) == (ALICE.address, 7, NOW + 60)


def test_envelopes_survive_json_transport(verifier):
    env = seal(ALICE, Request.for_http("post", "/jobs/1/result", b'{"a":1}'), DOMAIN, expiry=NOW + 5)
    wire = json.loads(env.model_dump_json())
    got = verifier.verify(wire, Request)
    assert got.message == Request.for_http("POST", "/jobs/1/result", b'{"a":1}')
    assert got.message != Request.for_http("POST", "/jobs/1/result", b'{"a":2}')


def test_the_signature_is_standard_eip712_for_the_verimesh_domain():
    env = _result_request()
    full = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "JobResultRequest": [
                {"name": "job_id", "type": "uint256"},
                {"name": "requester", "type": "address"},
                {"name": "signer", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "expiry", "type": "uint64"},
            ],
        },
        "primaryType": "JobResultRequest",
        "domain": {"name": "verimesh", "version": "1", "chainId": 31337, "verifyingContract": MARKET},
        "message": {"job_id": 42, "requester": ALICE.address, "signer": ALICE.address, "nonce": 7, "expiry": NOW + 60},
    }
    assert Account.recover_message(encode_typed_data(full_message=full), signature=env.signature) == ALICE.address


def test_wrong_chain(verifier):
    env = seal(ALICE, JobResultRequest(job_id=1, requester=ALICE.address), Domain(chain_id=1, verifying_contract=MARKET), expiry=NOW + 60)
    with pytest.raises(WrongChainError, match="signed for chain 1, this node serves chain 31337"):
        verifier.verify(env, JobResultRequest)


def test_wrong_contract(verifier):
    other = Domain(chain_id=31337, verifying_contract="0x" + "99" * 20)
    env = seal(ALICE, JobResultRequest(job_id=1, requester=ALICE.address), other, expiry=NOW + 60)
    with pytest.raises(WrongContractError, match=r"check your deployment\.json"):
        verifier.verify(env, JobResultRequest)


def test_claiming_our_domain_does_not_rescue_a_signature_made_for_another(verifier):
    other = Domain(chain_id=1, verifying_contract=MARKET)
    env = seal(ALICE, JobResultRequest(job_id=1, requester=ALICE.address), other, expiry=NOW + 60)
    with pytest.raises(BadSignatureError):
        verifier.verify(_tamper(env, chain_id=31337), JobResultRequest)


def test_expired_and_boundary(verifier, clock):
    env = _result_request(expiry=NOW)
    verifier.verify(env, JobResultRequest)  # valid up to and including its expiry second
    clock.now = NOW + 1
    with pytest.raises(ExpiredError, match="expired 1 s ago"):
        verifier.verify(_result_request(expiry=NOW, nonce=8), JobResultRequest)


def test_lifetime_too_long(verifier):
    with pytest.raises(LifetimeTooLongError, match="at most 3600 s"):
        verifier.verify(_result_request(expiry=NOW + 3601), JobResultRequest)


def test_replayed_nonce_is_rejected_but_other_signers_and_nonces_pass(verifier):
    verifier.verify(_result_request(nonce=1), JobResultRequest)
    with pytest.raises(ReplayedNonceError, match="nonce 1 of 0x"):
        verifier.verify(_result_request(nonce=1), JobResultRequest)
    verifier.verify(_result_request(nonce=2), JobResultRequest)
    mallory_env = seal(MALLORY, JobResultRequest(job_id=42, requester=MALLORY.address), DOMAIN, nonce=1, expiry=NOW + 60)
    verifier.verify(mallory_env, JobResultRequest)


def test_a_nonce_is_reusable_once_its_first_envelope_expired(verifier, clock):
    verifier.verify(_result_request(nonce=5, expiry=NOW + 10), JobResultRequest)
    clock.now = NOW + 11
    verifier.verify(_result_request(nonce=5, expiry=NOW + 100), JobResultRequest)
    assert len(verifier.nonces) == 1


def test_forgeries_do_not_burn_the_real_signers_nonce(verifier):
    honest = _result_request(nonce=9)
    forged = _tamper(honest, payload={"job_id": 43, "requester": ALICE.address})
    with pytest.raises(BadSignatureError):
        verifier.verify(forged, JobResultRequest)
    verifier.verify(honest, JobResultRequest)


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {"job_id": 43, "requester": ALICE.address}},
        {"signer": MALLORY.address},
        {"nonce": 8},
        {"expiry": NOW + 61},
        {"signature": "0x" + "00" * 65},
        {"signature": "0x" + "ff" * 64 + "1b"},
    ],
    ids=["payload", "signer", "nonce", "expiry", "zero-sig", "junk-sig"],
)
def test_any_altered_field_breaks_the_signature(verifier, change):
    with pytest.raises(BadSignatureError, match="does not match signer"):
        verifier.verify(_tamper(_result_request(), **change), JobResultRequest)


def test_mallory_cannot_sign_as_alice(verifier):
    env = seal(MALLORY, JobResultRequest(job_id=42, requester=ALICE.address), DOMAIN, expiry=NOW + 60)
    with pytest.raises(BadSignatureError):
        verifier.verify(_tamper(env, signer=ALICE.address), JobResultRequest)


@pytest.mark.parametrize(
    "payload",
    [
        {"job_id": 42},
        {"job_id": -1, "requester": ALICE.address},
        {"job_id": 2**256, "requester": ALICE.address},
        {"job_id": "42", "requester": ALICE.address},
        {"job_id": 42, "requester": "0x1234"},
        {"job_id": 42, "requester": ALICE.address, "extra": 1},
    ],
)
def test_malformed_payloads(verifier, payload):
    with pytest.raises(MalformedPayloadError, match="not a valid JobResultRequest"):
        verifier.verify(_tamper(_result_request(), payload=payload), JobResultRequest)


def test_a_signature_for_one_message_type_does_not_open_another_endpoint(verifier):
    env = seal(ALICE, DisputeDataRequest(job_id=42, replica=0, leaf_index=3), DOMAIN, expiry=NOW + 60)
    with pytest.raises(MalformedPayloadError, match="expected a JobResultRequest message, got 'DisputeDataRequest'"):
        verifier.verify(env, JobResultRequest)
    assert verifier.verify(env, DisputeDataRequest).message.leaf_index == 3


@pytest.mark.parametrize(
    "change",
    [{"signature": "0x1234"}, {"signer": "alice"}, {"nonce": -1}, {"expiry": "soon"}, {"chain_id": 0}],
)
def test_malformed_envelopes(verifier, change):
    with pytest.raises(MalformedEnvelopeError, match="not a valid envelope"):
        verifier.verify(_tamper(_result_request(), **change), JobResultRequest)


def test_signature_checker_is_pluggable_for_contract_signers_later(clock):
    seen = []

    def contract_wallet(signer, message_digest, signature):
        seen.append((signer, message_digest, signature))
        return signature == b"\x01" * 65

    verifier = Verifier(DOMAIN, MemoryNonceStore(), clock=clock, signature_checker=contract_wallet)
    env = _result_request()
    wire = _tamper(env, signature="0x" + "01" * 65)
    verifier.verify(wire, JobResultRequest)
    message = JobResultRequest(job_id=42, requester=ALICE.address)
    assert seen[0][1] == digest(signable(typed_data(DOMAIN, message, ALICE.address, 7, NOW + 60)))
    with pytest.raises(BadSignatureError):
        verifier.verify(env, JobResultRequest)


def test_message_types_must_declare_eip712_types_and_avoid_envelope_fields():
    with pytest.raises(TypeError, match="needs an EIP-712 type"):

        class Untyped(TypedMessage):
            eip712_type: ClassVar[str] = "Untyped"
            x: int

    with pytest.raises(TypeError, match="reserved by the envelope"):

        class Clash(TypedMessage):
            eip712_type: ClassVar[str] = "Clash"
            nonce: Uint256

    with pytest.raises(TypeError, match="already used"):

        class Again(TypedMessage):
            eip712_type: ClassVar[str] = "Request"
            x: Uint256


def test_domain_rejects_bad_addresses_and_chain_ids():
    with pytest.raises(ValueError, match="not a 20-byte 0x address"):
        Domain(chain_id=1, verifying_contract="0x12")
    with pytest.raises(ValueError):
        Domain(chain_id=0, verifying_contract=MARKET)


def test_a_restarted_node_still_rejects_replays(tmp_path, clock):
    env = _result_request(nonce=77)
    Verifier(DOMAIN, SqliteNonceStore(tmp_path / "nonces.sqlite"), clock=clock).verify(env, JobResultRequest)
    restarted = Verifier(DOMAIN, SqliteNonceStore(tmp_path / "nonces.sqlite"), clock=clock)
    with pytest.raises(ReplayedNonceError):
        restarted.verify(env, JobResultRequest)


def test_seal_rejects_out_of_range_nonce_and_expiry():
    message = JobResultRequest(job_id=1, requester=ALICE.address)
    with pytest.raises(ValueError, match="nonce must fit in uint256"):
        seal(ALICE, message, DOMAIN, nonce=-1)
    with pytest.raises(ValueError, match="expiry must be unix seconds in uint64"):
        seal(ALICE, message, DOMAIN, expiry=2**64)


def test_default_nonces_are_random_and_expiry_is_ttl_ahead():
    message = JobResultRequest(job_id=1, requester=ALICE.address)
    a, b = seal(ALICE, message, DOMAIN, ttl=30), seal(ALICE, message, DOMAIN, ttl=30)
    assert a.nonce != b.nonce
    assert abs(a.expiry - (time.time() + 30)) < 5
