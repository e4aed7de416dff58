"""Nonce stores: each (signer, nonce) opens once until its expiry, and memory stays bounded."""

from __future__ import annotations

import threading

import pytest

from verimesh.crypto.nonces import MemoryNonceStore, SqliteNonceStore

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryNonceStore()
    else:
        s = SqliteNonceStore(tmp_path / "nonces.sqlite")
        yield s
        s.close()


def test_a_pair_is_used_once(store):
    assert store.use(A, 1, expiry=100, now=0)
    assert not store.use(A, 1, expiry=100, now=0)
    assert not store.use(A.upper().replace("0X", "0x"), 1, expiry=100, now=50)  # case-insensitive
    assert store.use(A, 2, expiry=100, now=0)
    assert store.use(B, 1, expiry=100, now=0)


def test_uint256_nonces_are_distinct(store):
    big = 2**256 - 1
    assert store.use(A, big, expiry=100, now=0)
    assert store.use(A, big - 1, expiry=100, now=0)
    assert not store.use(A, big, expiry=100, now=0)


def test_expired_entries_are_pruned_and_reusable(store):
    for n in range(10):
        assert store.use(A, n, expiry=100 + n, now=0)
    assert not store.use(A, 3, expiry=500, now=103)  # expiry 103 is not < now: still held
    assert store.use(A, 3, expiry=500, now=104)  # expired: may open again
    if isinstance(store, SqliteNonceStore):
        store.prune(now=200)
    else:
        store.use(B, 0, expiry=300, now=200)
    assert len(store) <= 2


def test_concurrent_uses_of_one_pair_admit_exactly_one(store):
    wins = []
    barrier = threading.Barrier(8)

    def attempt():
        barrier.wait()
        wins.append(store.use(A, 42, expiry=100, now=0))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_sqlite_store_survives_a_restart_and_is_shared(tmp_path):
    path = tmp_path / "nonces.sqlite"
    first = SqliteNonceStore(path)
    assert first.use(A, 7, expiry=100, now=0)
    second = SqliteNonceStore(path)  # another process, or the node after a crash
    assert not second.use(A, 7, expiry=100, now=1)
    first.close()
    second.close()
    assert not SqliteNonceStore(path).use(A, 7, expiry=100, now=2)


def test_sqlite_prunes_periodically_on_its_own(tmp_path):
    store = SqliteNonceStore(tmp_path / "n.sqlite")
    for n in range(SqliteNonceStore.PRUNE_EVERY):
        store.use(A, n, expiry=10, now=0)
    assert len(store) == SqliteNonceStore.PRUNE_EVERY
    store.use(B, 0, expiry=100, now=50)  # this insert triggers the periodic prune
    assert len(store) == 1
