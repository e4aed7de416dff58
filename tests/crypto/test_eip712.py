"""The fast EIP-712 digest used by verifiers equals eth-account's reference encoding."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from verimesh.crypto.eip712 import (
    Domain,
    digest,
    domain_separator,
    fast_digest,
    signable,
    typed_data,
)
from verimesh.crypto.envelope import ecdsa_signature_checker
from verimesh.crypto.messages import DisputeDataRequest, JobResultRequest, Request

uint256 = st.integers(0, 2**256 - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
domains = st.builds(Domain, chain_id=st.integers(1, 2**64), verifying_contract=addresses)
messages = st.one_of(
    st.builds(JobResultRequest, job_id=uint256, requester=addresses),
    st.builds(DisputeDataRequest, job_id=uint256, replica=uint256, leaf_index=uint256),
    st.builds(Request, method=st.text(max_size=10), path=st.text(max_size=80), body_hash=st.binary(min_size=32, max_size=32)),
)


@settings(max_examples=150, deadline=None)
@given(domains, messages, addresses, uint256, st.integers(0, 2**64 - 1))
def test_fast_digest_equals_the_eth_account_reference(domain, message, signer, nonce, expiry):
    signer = Domain(chain_id=1, verifying_contract=signer).verifying_contract  # checksummed
    reference = digest(signable(typed_data(domain, message, signer, nonce, expiry)))
    assert fast_digest(domain, message, signer, nonce, expiry) == reference


def test_domain_separator_matches_eth_account():
    domain = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
    full = typed_data(domain, JobResultRequest(job_id=1, requester=domain.verifying_contract), domain.verifying_contract, 0, 0)
    assert domain_separator(domain) == bytes(signable(full).header)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(1, 2**200))
def test_ecdsa_checker_agrees_with_eth_account_recovery(message_digest, key_int):
    key = key_int.to_bytes(32, "big")
    signed = Account.unsafe_sign_hash(message_digest, key)
    address = Account.from_key(key).address
    signature = bytes(signed.signature)
    assert ecdsa_signature_checker(address, message_digest, signature)
    other = bytes([message_digest[0] ^ 1]) + message_digest[1:]
    assert not ecdsa_signature_checker(address, other, signature)
    assert not ecdsa_signature_checker(address, message_digest, signature[:64] + b"\x1d")
    assert not ecdsa_signature_checker(address, message_digest, signature[:64])
