"""The local store: round trips, LRU eviction under a cap, pins, quarantine, resumable staging."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from blob_peers import SMALL_CHUNK, Clock
from hypothesis import given, settings
from hypothesis import strategies as st

from verimesh.crypto.merkle import CHUNK_SIZE, blob_root, blob_tree
from verimesh.store import (
    BadChunkError,
    BlobStore,
    BlobTooLargeError,
    ChunkProof,
    CorruptBlobError,
    MalformedRootError,
    StoreError,
    StoreFullError,
    UnknownBlobError,
    check_chunk,
    format_root,
)


def proof_of(data: bytes, index: int, chunk_size: int = SMALL_CHUNK) -> tuple[bytes, ChunkProof]:
    """A chunk and its proof computed straight from merkle.py, independent of the store."""
    tree = blob_tree(data, chunk_size)
    chunk = data[index * chunk_size : (index + 1) * chunk_size]
    return chunk, ChunkProof.from_merkle(tree.root, len(data), tree.proof(index))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700), chunk_size=st.sampled_from([1, 7, 64, 256]))
def test_any_blob_round_trips(data: bytes, chunk_size: int) -> None:
    with tempfile.TemporaryDirectory() as d, BlobStore(d, chunk_size=chunk_size) as s:
        root = s.put(data)
        assert root == blob_root(data, chunk_size)
        assert s.has(root) and s.get(root) == data
        assert s.get_path(root).read_bytes() == data
        info = s.info(root)
        assert (info.size, info.chunk_count) == (len(data), -(-len(data) // chunk_size))
        for i in range(info.chunk_count):
            chunk = s.chunk(format_root(root), i)
            check_chunk(root, chunk.data, chunk.proof, chunk_size)
            assert chunk.data == data[i * chunk_size : (i + 1) * chunk_size]


def test_default_chunk_size_is_the_network_one(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    with BlobStore(tmp_path) as s:
        assert s.put(data) == blob_root(data)
        assert s.info(blob_root(data)).chunk_count == 2


def test_file_put_streams_to_the_same_root(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 10 + 3)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    root = store.put(path)
    assert root == store.put(data) == blob_root(data, SMALL_CHUNK)
    assert len(store.blobs()) == 1


def test_default_directory_is_under_verimesh_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path / "home"))
    with BlobStore(chunk_size=SMALL_CHUNK) as s:
        root = s.put(b"hello")
    assert (tmp_path / "home" / "blobs" / "complete" / root.hex()).read_bytes() == b"hello"


def test_empty_blob(store: BlobStore) -> None:
    root = store.put(b"")
    assert root == blob_root(b"")
    assert store.get(root) == b"" and store.info(root).chunk_count == 0
    with pytest.raises(IndexError, match="outside blob"):
        store.chunk(root, 0)


def test_errors_say_what_to_do(store: BlobStore) -> None:
    unknown = "0x" + "ab" * 32
    with pytest.raises(UnknownBlobError, match=f"{unknown} is not in the store"):
        store.get(unknown)
    with pytest.raises(MalformedRootError, match="64 hex digits"):
        store.get("0x1234")
    with pytest.raises(MalformedRootError, match="32 bytes"):
        store.has(b"short")
    with pytest.raises(TypeError, match=r"pathlib.Path"):
        store.put("some/file.bin")  # type: ignore[arg-type]
    root = store.put(b"x" * 100)
    with pytest.raises(IndexError, match=r"outside blob .* of 2 chunks"):
        store.chunk(root, 2)


def test_reopening_with_another_chunk_size_is_refused(tmp_path: Path) -> None:
    BlobStore(tmp_path, chunk_size=64).close()
    with pytest.raises(StoreError, match="chunk_size=64"):
        BlobStore(tmp_path, chunk_size=128)


# ------------------------------------------------------------------ cap and eviction


def test_cap_smaller_than_the_blob(tmp_path: Path) -> None:
    with BlobStore(tmp_path, cap_bytes=100, chunk_size=SMALL_CHUNK) as s:
        with pytest.raises(BlobTooLargeError, match=r"101 bytes cannot fit .* cap of 100"):
            s.put(b"x" * 101)
        assert s.blobs() == [] and list((tmp_path / "tmp").iterdir()) == []


def test_eviction_removes_least_recently_used_first(tmp_path: Path) -> None:
    with BlobStore(tmp_path, cap_bytes=300, chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        a, b, c = (s.put(bytes([n]) * 100) for n in range(3))
        s.get(a)  # a is now more recent than b and c
        d = s.put(b"d" * 100)
        assert not s.has(b) and s.has(a) and s.has(c) and s.has(d)
        s.chunk(c, 0)  # serving a chunk counts as an access too
        s.put(b"e" * 100)
        assert not s.has(a) and s.has(c) and s.has(d)
        assert s.usage() == 300
        assert not (tmp_path / "complete" / b.hex()).exists()


def test_pinned_blobs_are_never_evicted(tmp_path: Path) -> None:
    with BlobStore(tmp_path, cap_bytes=300, chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        a = s.put(b"a" * 100, pin=True)
        b = s.put(b"b" * 100)
        s.pin(b)
        c = s.put(b"c" * 100)
        s.put(b"d" * 100)  # only c may go
        assert s.has(a) and s.has(b) and not s.has(c)
        s.put(b"d" * 100, pin=True)  # pinning an existing blob through put
        with pytest.raises(StoreFullError, match="300 bytes are pinned"):
            s.put(b"e" * 100)
        s.pin(a, False)
        s.put(b"e" * 100)
        assert not s.has(a) and s.has(b)


def test_blobs_being_fetched_are_never_evicted(tmp_path: Path) -> None:
    with BlobStore(tmp_path, cap_bytes=300, chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        a = s.put(b"a" * 150)
        data = os.urandom(200)
        last, proof = proof_of(data, 3)
        s.begin_fetch(blob_root(data, SMALL_CHUNK), last, proof)  # evicts a, reserves 200
        assert s.usage() == 200 and not s.has(a)
        with pytest.raises(StoreFullError, match="200 bytes are being fetched"):
            s.put(b"b" * 150)
        assert s.staging(blob_root(data, SMALL_CHUNK)).verified == {3}


def test_lowering_the_cap_at_open_evicts(tmp_path: Path) -> None:
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        old, new = s.put(b"o" * 100), s.put(b"n" * 100)
    with BlobStore(tmp_path, cap_bytes=150, chunk_size=SMALL_CHUNK) as s:
        assert not s.has(old) and s.has(new)


# ------------------------------------------------------------------ corruption on disk


def _corrupt(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("reader", ["chunk", "get", "get_path"])
def test_corrupt_blob_is_quarantined_never_served(store: BlobStore, reader: str) -> None:
    data = os.urandom(SMALL_CHUNK * 4)
    root = store.put(data)
    _corrupt(store.directory / "complete" / root.hex(), SMALL_CHUNK * 2 + 5)
    store.chunk(root, 0)  # an intact chunk of a not-yet-detected blob is still fine
    read = {
        "chunk": lambda: store.chunk(root, 2),
        "get": lambda: store.get(root),
        "get_path": lambda: store.get_path(root),
    }[reader]
    with pytest.raises(CorruptBlobError, match=r"chunk 2 does not match .* fetch it again"):
        read()
    assert not store.has(root)
    with pytest.raises(UnknownBlobError):
        store.chunk(root, 0)
    quarantined = list((store.directory / "quarantine").iterdir())
    assert [p.name.split("-")[0] for p in quarantined] == [root.hex()]
    assert store.put(data) == root and store.get(root) == data  # it can be stored afresh


def test_truncated_blob_is_quarantined(store: BlobStore) -> None:
    root = store.put(os.urandom(SMALL_CHUNK * 3))
    path = store.directory / "complete" / root.hex()
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptBlobError, match="truncated"):
        store.chunk(root, 2)
    assert not store.has(root)


# ------------------------------------------------------------------ partial blobs


def test_staging_resumes_across_reopen_and_promotes(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 5 + 9)
    root = blob_root(data, SMALL_CHUNK)
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK) as s:
        status = s.begin_fetch(root, *proof_of(data, 5))
        assert (status.size, status.chunk_count, status.missing) == (len(data), 6, [0, 1, 2, 3, 4])
        s.write_chunk(root, *proof_of(data, 1))
        assert not s.has(root)
        with pytest.raises(UnknownBlobError, match="fetch of it is in progress"):
            s.get(root)
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK) as s:  # a new process picks it up
        assert s.staging(root).missing == [0, 2, 3, 4]
        assert s.try_complete(root) == [0, 2, 3, 4]
        for i in (0, 2, 3, 4):
            s.write_chunk(root, *proof_of(data, i))
        assert s.try_complete(root) == []
        assert s.has(root) and s.get(root) == data and s.staging(root) is None
        assert list((tmp_path / "staging").iterdir()) == []


def test_bad_chunk_is_refused_before_any_write(store: BlobStore) -> None:
    data = os.urandom(SMALL_CHUNK * 3)
    root = blob_root(data, SMALL_CHUNK)
    store.begin_fetch(root, *proof_of(data, 2))
    staged = (store.directory / "staging" / root.hex()).read_bytes()
    chunk, proof = proof_of(data, 0)
    forged = bytes([chunk[0] ^ 1]) + chunk[1:]
    with pytest.raises(BadChunkError, match=r"chunk 0 of blob .* do not match the Merkle proof"):
        store.write_chunk(root, forged, proof)
    _, proof1 = proof_of(data, 1)
    with pytest.raises(BadChunkError):
        store.write_chunk(root, chunk, proof1)  # right bytes, wrong place
    with pytest.raises(BadChunkError, match="got 63 bytes"):
        store.write_chunk(root, chunk[:-1], proof)
    other = os.urandom(SMALL_CHUNK * 3)
    with pytest.raises(BadChunkError, match="the proof is for blob"):
        store.write_chunk(root, *proof_of(other, 0))
    assert (store.directory / "staging" / root.hex()).read_bytes() == staged
    assert store.staging(root).verified == {2}


def test_begin_fetch_needs_the_last_chunk(store: BlobStore) -> None:
    data = os.urandom(SMALL_CHUNK * 3)
    with pytest.raises(BadChunkError, match="needs the last chunk"):
        store.begin_fetch(blob_root(data, SMALL_CHUNK), *proof_of(data, 0))
    assert store.blobs() == []


def test_lost_chunk_bytes_are_found_at_promotion(store: BlobStore) -> None:
    """A chunk recorded as verified whose bytes never reached the disk is fetched again."""
    data = os.urandom(SMALL_CHUNK * 4)
    root = blob_root(data, SMALL_CHUNK)
    store.begin_fetch(root, *proof_of(data, 3))
    for i in range(3):
        store.write_chunk(root, *proof_of(data, i))
    _corrupt(store.directory / "staging" / root.hex(), SMALL_CHUNK + 1)
    assert store.try_complete(root) == [1]
    store.write_chunk(root, *proof_of(data, 1))
    assert store.try_complete(root) == [] and store.get(root) == data


def test_put_completes_a_fetch_in_progress(store: BlobStore) -> None:
    data = os.urandom(SMALL_CHUNK * 2)
    root = blob_root(data, SMALL_CHUNK)
    store.begin_fetch(root, *proof_of(data, 1), pin=True)
    assert store.put(data) == root
    assert store.blobs()[0].state == "complete" and store.blobs()[0].pinned
    assert store.write_chunk(root, *proof_of(data, 0)) is False


def test_delete_removes_complete_and_partial(store: BlobStore) -> None:
    root = store.put(b"z" * 10)
    data = os.urandom(SMALL_CHUNK * 2)
    partial = blob_root(data, SMALL_CHUNK)
    store.begin_fetch(partial, *proof_of(data, 1))
    assert store.delete(root) and store.delete(partial) and not store.delete(root)
    assert store.blobs() == [] and store.usage() == 0


# ------------------------------------------------------------------ crash recovery


def test_open_removes_files_the_index_does_not_know(tmp_path: Path) -> None:
    """Left by a put killed between its rename and its commit (the caller never got the
    root), or a delete killed between its commit and its unlink."""
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK) as s:
        kept = s.put(b"kept")
    orphan = blob_root(b"never indexed", SMALL_CHUNK)
    (tmp_path / "complete" / orphan.hex()).write_bytes(b"never indexed")
    (tmp_path / "complete" / "not-a-root").write_bytes(b"junk")
    (tmp_path / "staging" / orphan.hex()).write_bytes(b"partial without a row")
    (tmp_path / "tmp" / "999999999-dead").write_bytes(b"put of a dead process")
    live_tmp = tmp_path / "tmp" / f"{os.getpid()}-alive"
    live_tmp.write_bytes(b"put in progress in a live process")
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK) as s:
        assert [b.root for b in s.blobs()] == [format_root(kept)] and not s.has(orphan)
    assert sorted(p.name for p in (tmp_path / "complete").iterdir()) == [kept.hex()]
    assert list((tmp_path / "staging").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == [live_tmp]


def test_failed_eviction_evicts_nothing(tmp_path: Path) -> None:
    with BlobStore(tmp_path, cap_bytes=300, chunk_size=SMALL_CHUNK, clock=Clock()) as s:
        loose = s.put(b"l" * 100)
        s.put(b"p" * 150, pin=True)
        with pytest.raises(StoreFullError):
            s.put(b"n" * 200)  # evicting `loose` would not be enough: keep it
        assert s.has(loose) and s.get(loose) == b"l" * 100


def test_open_finishes_a_promotion_killed_after_the_rename(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 2)
    root = blob_root(data, SMALL_CHUNK)
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK) as s:
        s.begin_fetch(root, *proof_of(data, 1))
        s.write_chunk(root, *proof_of(data, 0))
    os.replace(tmp_path / "staging" / root.hex(), tmp_path / "complete" / root.hex())
    with BlobStore(tmp_path, chunk_size=SMALL_CHUNK) as s:
        assert s.has(root) and s.get(root) == data and s.staging(root) is None


def test_blob_evicted_while_being_read_is_unknown_not_corrupt(store: BlobStore) -> None:
    root = store.put(os.urandom(SMALL_CHUNK * 2))
    row = store._require(root)  # a reader has looked the blob up...
    store.delete(root)  # ...and then another thread evicts it
    with pytest.raises(UnknownBlobError, match="removed from the store while it was being read"):
        store._read_chunk(root, 0, row[0])
    assert list((store.directory / "quarantine").iterdir()) == []


@settings(max_examples=20, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=600),
    chunk_size=st.sampled_from([16, 64]),
    seed=st.randoms(use_true_random=False),
)
def test_any_order_of_chunks_and_restarts_completes(data: bytes, chunk_size: int, seed) -> None:
    """Chunks arriving in any order, duplicated, with the store reopened (as after a kill)
    at random points, always end in exactly the blob's bytes."""
    root = blob_root(data, chunk_size)
    n = -(-len(data) // chunk_size)
    order = [seed.randrange(n) for _ in range(2 * n)] + list(range(n))
    with tempfile.TemporaryDirectory() as d:
        s = BlobStore(d, chunk_size=chunk_size)
        s.begin_fetch(root, *proof_of(data, n - 1, chunk_size))
        for i in order:
            if seed.random() < 0.1:
                s.close()
                s = BlobStore(d, chunk_size=chunk_size)
            s.write_chunk(root, *proof_of(data, i, chunk_size))
        assert s.try_complete(root) == []
        assert s.get(root) == data and s.staging(root) is None
        s.close()
