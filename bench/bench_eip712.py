"""Sign and verify throughput of verimesh's EIP-712 envelopes on this machine (one core).

Run: .venv/bin/python bench/bench_eip712.py [--seconds 3]
Rates are per second of this process's CPU time (``time.process_time``), so they stay
meaningful on a machine shared with other jobs; wall-clock rates on a busy machine are lower.
Prints rates for: sealing an envelope (EIP-712 encode + ECDSA sign), verifying one (parse,
checks, EIP-712 encode, ECDSA recover, nonce record), and the two halves of verification
(hashing alone, by the fast path and by eth-account's reference encoder; recovery alone) so
it is clear where the time goes.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import eth_keys

from verimesh.crypto.eip712 import Domain, digest, fast_digest, signable, typed_data
from verimesh.crypto.envelope import Envelope, Verifier, ecdsa_signature_checker, seal
from verimesh.crypto.messages import JobResultRequest, Request
from verimesh.crypto.nonces import MemoryNonceStore, NonceStore, SqliteNonceStore
from verimesh.crypto.wallet import Wallet

DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
WALLET = Wallet.from_key("bench", bytes.fromhex("42" * 32))


def rate(fn: Callable[[int], object], seconds: float) -> float:
    """Calls per CPU second of ``fn(i)`` (i = 0, 1, ...) over at least ``seconds`` of CPU
    time, after 50 warm-up calls."""
    for i in range(50):
        fn(i)
    n, start = 50, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(100):
            fn(n)
            n += 1
    return (n - 50) / elapsed


def verify_rate(envelopes: list[Envelope], store: NonceStore) -> float:
    """Verifications per CPU second over ``envelopes`` (distinct nonces: none is a replay)."""
    verifier = Verifier(DOMAIN, store)
    start = time.process_time()
    for env in envelopes:
        verifier.verify(env, JobResultRequest)
    return len(envelopes) / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()

    message = JobResultRequest(job_id=12345, requester=WALLET.address)
    http = Request.for_http("POST", "/v1/jobs/12345/result", b"{}" * 100)
    expiry = int(time.time()) + 3000
    seal_rate = rate(lambda i: seal(WALLET, message, DOMAIN, nonce=i, expiry=expiry), args.seconds)
    count = max(2000, int(seal_rate * args.seconds))
    envelopes = [seal(WALLET, message, DOMAIN, nonce=i, expiry=expiry) for i in range(count)]

    full = typed_data(DOMAIN, message, WALLET.address, 1, expiry)
    message_digest = digest(signable(full))
    signature = bytes.fromhex(envelopes[1].signature[2:])
    rows = [
        ("seal JobResultRequest (encode + sign)", seal_rate),
        ("seal Request (HTTP, string fields)", rate(lambda i: seal(WALLET, http, DOMAIN, nonce=i, expiry=expiry), args.seconds)),
        ("verify JobResultRequest (memory nonces)", verify_rate(envelopes, MemoryNonceStore())),
        ("verify JobResultRequest (SQLite nonces)", verify_rate(envelopes, SqliteNonceStore(":memory:"))),
        ("  part: EIP-712 hash, fast path (verifier)", rate(lambda i: fast_digest(DOMAIN, message, WALLET.address, i, expiry), args.seconds)),
        ("  part: EIP-712 hash, eth-account reference", rate(lambda i: digest(signable(full)), args.seconds)),
        ("  part: ECDSA recover + compare only", rate(lambda i: ecdsa_signature_checker(WALLET.address, message_digest, signature), args.seconds)),
    ]
    backend = type(eth_keys.KeyAPI().backend).__name__
    print(f"python {platform.python_version()}, eth-keys backend {backend}, {args.seconds} s per row")
    for name, r in rows:
        print(f"{name:45s} {r:10,.0f} /CPU-s")


if __name__ == "__main__":
    main()
