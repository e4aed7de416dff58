"""Fetching blobs from real peers: lying peers, dying peers, resume after a kill, clear errors."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from blob_peers import SMALL_CHUNK, BlobPeer, Clock, Misbehaviour, Server

from verimesh.crypto.merkle import CHUNK_SIZE, blob_root
from verimesh.store import BlobStore, FetchError, format_root
from verimesh.store.fetch import Fetcher, fetch


def new_store(path: Path, chunk_size: int = SMALL_CHUNK) -> BlobStore:
    return BlobStore(path, chunk_size=chunk_size, clock=Clock())


def seeded_peer(
    tmp_path: Path, name: str, data: bytes, behaviour: Misbehaviour | None = None
) -> BlobPeer:
    store = new_store(tmp_path / name)
    store.put(data)
    return BlobPeer(store, behaviour)


def test_fetch_at_network_chunk_size(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 100)
    peer_store = BlobStore(tmp_path / "peer")
    root = peer_store.put(data)
    with BlobPeer(peer_store) as peer, BlobStore(tmp_path / "me") as mine:
        assert fetch(mine, format_root(root), [peer.url]) == root == blob_root(data)
        assert mine.get(root) == data
        assert peer.behaviour.served[0] == 2  # the last chunk opens the fetch: it proves the size
        assert sorted(peer.behaviour.served) == [0, 1, 2]


def test_one_peer_serves_corrupt_chunks_the_other_completes(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 40 + 7)  # 41 chunks: 3 range requests of up to 16
    root = blob_root(data, SMALL_CHUNK)
    liar_does = Misbehaviour(corrupt={1, 20, 33})
    with (
        seeded_peer(tmp_path, "liar", data, liar_does) as liar,
        seeded_peer(tmp_path, "honest", data) as honest,
        new_store(tmp_path / "me") as mine,
    ):
        fetcher = Fetcher(mine, parallel=3)
        asyncio.run(fetcher.fetch(root, [liar.url, honest.url + "/"]))
        assert mine.get(root) == data
        assert set(fetcher.bad_peers[format_root(root)]) == {liar.url}
        assert "do not match the Merkle proof" in fetcher.bad_peers[format_root(root)][liar.url]
        # The liar was asked for a corrupt chunk and dropped; the honest peer served the rest.
        assert set(liar_does.served) & liar_does.corrupt
        assert 1 in honest.behaviour.served and 0 not in honest.behaviour.served


def test_only_liars_left_raises_naming_root_and_peers(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 6)
    root = blob_root(data, SMALL_CHUNK)
    with (
        seeded_peer(tmp_path, "leaves", data, Misbehaviour(bad_leaves=True)) as leaf_liar,
        seeded_peer(tmp_path, "liar", data, Misbehaviour(corrupt={2})) as liar,
        new_store(tmp_path / "me") as mine,
    ):
        fetcher = Fetcher(mine, parallel=1)
        with pytest.raises(FetchError) as err:
            asyncio.run(fetcher.fetch(root, [leaf_liar.url, liar.url]))
        message = str(err.value)
        assert format_root(root) in message and liar.url in message and leaf_liar.url in message
        assert "leaves that do not hash to the blob's root" in message
        assert "chunk 2 of blob" in message and "3 of 6 chunks are verified and kept" in message
        status = mine.staging(root)
        assert status.verified == {0, 1, 5} and not mine.has(root)
        # Bytes on disk are exactly the verified chunks: nothing unverified was written.
        staged = (mine.directory / "staging" / root.hex()).read_bytes()
        for i in range(6):
            chunk = staged[i * SMALL_CHUNK : (i + 1) * SMALL_CHUNK]
            want = (
                data[i * SMALL_CHUNK : (i + 1) * SMALL_CHUNK]
                if i in status.verified
                else bytes(SMALL_CHUNK)
            )
            assert chunk == want

        # Remembered: the same fetcher never asks the liars for this blob again.
        served_before = len(liar.behaviour.served)
        with seeded_peer(tmp_path, "honest", data) as honest:
            asyncio.run(fetcher.fetch(root, [liar.url, leaf_liar.url, honest.url]))
        assert len(liar.behaviour.served) == served_before
        assert sorted(honest.behaviour.served) == [2, 3, 4]
        assert mine.get(root) == data


def test_oversized_bodies_are_cut_off(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 3)
    root = blob_root(data, SMALL_CHUNK)
    with (
        seeded_peer(tmp_path, "padder", data, Misbehaviour(pad=1000)) as padder,
        seeded_peer(tmp_path, "honest", data) as honest,
        new_store(tmp_path / "me") as mine,
    ):
        fetcher = Fetcher(mine)
        with pytest.raises(FetchError, match="sent more than 64 bytes"):
            asyncio.run(fetcher.fetch(root, [padder.url]))
        asyncio.run(fetcher.fetch(root, [padder.url, honest.url]))
        assert mine.get(root) == data
        assert list(fetcher.bad_peers[format_root(root)]) == [padder.url]


def test_peer_dies_mid_fetch_then_another_peer_resumes(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 20)
    root = blob_root(data, SMALL_CHUNK)
    with (
        seeded_peer(tmp_path, "dying", data, Misbehaviour(die_after=6)) as dying,
        new_store(tmp_path / "me") as mine,
    ):
        with pytest.raises(
            FetchError, match=f"could not fetch blob {format_root(root)}.*{dying.url}"
        ):
            fetch(mine, root, [dying.url], parallel=2)
        done = mine.staging(root).verified
        assert 0 < len(done) < 20
    with seeded_peer(tmp_path, "second", data) as second, new_store(tmp_path / "me") as mine:
        fetch(mine, root, [dying.url, second.url], parallel=2)
        assert mine.get(root) == data
        assert sorted(second.behaviour.served) == sorted(set(range(20)) - done)


def test_peer_dies_and_the_next_peer_takes_over_in_one_call(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 16)
    root = blob_root(data, SMALL_CHUNK)
    with (
        seeded_peer(tmp_path, "dying", data, Misbehaviour(die_after=5)) as dying,
        seeded_peer(tmp_path, "steady", data) as steady,
        new_store(tmp_path / "me") as mine,
    ):
        fetch(mine, root, [dying.url, steady.url], parallel=3)
        assert mine.get(root) == data


@pytest.mark.parametrize(
    ("lie", "says"),
    [
        ({"chunk_count": 3}, "size 384 with 64-byte chunks makes 6 chunks, not 3"),
        ({"chunk_count": 3, "size": 190}, "needs the last chunk (5)"),
        ({"chunk_count": 12, "size": 12 * 64}, "chunk index 11 is outside blob"),
        ({"chunk_size": 128, "chunk_count": 3}, "cuts blobs into 128-byte chunks"),
        ({"root": "0x" + "11" * 32}, "answered with metadata of blob 0x1111"),
        ({"size": -1}, "malformed blob metadata"),
    ],
)
def test_lying_metadata_drops_the_peer(tmp_path: Path, lie: dict, says: str) -> None:
    data = os.urandom(SMALL_CHUNK * 6)
    root = blob_root(data, SMALL_CHUNK)
    with (
        seeded_peer(tmp_path, "liar", data, Misbehaviour(info=lie)) as liar,
        seeded_peer(tmp_path, "honest", data) as honest,
        new_store(tmp_path / "me") as mine,
    ):
        with pytest.raises(FetchError, match=re.escape(says)):
            fetch(mine, root, [liar.url])
        assert mine.blobs() == []  # nothing was reserved on a liar's word
        fetch(mine, root, [liar.url, honest.url])
        assert mine.get(root) == data


def test_garbage_peer_urls_are_reported_not_raised(tmp_path: Path) -> None:
    root = blob_root(b"x", SMALL_CHUNK)
    with new_store(tmp_path / "me") as mine:
        with pytest.raises(FetchError) as err:
            fetch(mine, root, ["not a url", "ftp://example.invalid"])
        assert "not a url: request failed" in str(err.value)
        assert "ftp://example.invalid: request failed: UnsupportedProtocol" in str(err.value)


def test_no_peer_holds_the_blob(tmp_path: Path) -> None:
    root = blob_root(b"nobody has this", SMALL_CHUNK)
    closed = Server(lambda *a: None)  # a port that is closed by the time it is asked
    closed.join()
    with (
        seeded_peer(tmp_path, "other", b"something else") as other,
        new_store(tmp_path / "me") as mine,
    ):
        with pytest.raises(FetchError) as err:
            fetch(mine, root, [other.url, closed.url])
        assert "does not hold the blob" in str(err.value) and "ConnectError" in str(err.value)
        assert mine.blobs() == []
        with pytest.raises(FetchError, match="no peers were given"):
            fetch(mine, root, [])


def test_empty_and_already_held_blobs_need_no_peer(tmp_path: Path) -> None:
    with new_store(tmp_path / "me") as mine:
        assert fetch(mine, blob_root(b""), []) == blob_root(b"")
        root = mine.put(b"held")
        assert fetch(mine, root, [], pin=True) == root and mine.blobs()[-1].pinned


_FETCH_IN_CHILD = textwrap.dedent(
    """
    import sys
    from verimesh.store import BlobStore
    from verimesh.store.fetch import fetch
    directory, root, url, chunk_size = sys.argv[1:]
    fetch(BlobStore(directory, chunk_size=int(chunk_size)), root, [url], parallel=1)
    """
)


def _verified_count(directory: Path, root: bytes) -> int:
    db = directory / "index.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return conn.execute(
                "SELECT COUNT(*) FROM staged_chunks WHERE root = ?", (root,)
            ).fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def test_fetch_resumes_after_the_process_is_killed(tmp_path: Path) -> None:
    data = os.urandom(SMALL_CHUNK * 30)
    root = blob_root(data, SMALL_CHUNK)
    slow = Misbehaviour(delay=0.05)
    with seeded_peer(tmp_path, "peer", data, slow) as peer:
        me = tmp_path / "me"
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _FETCH_IN_CHILD,
                str(me),
                format_root(root),
                peer.url,
                str(SMALL_CHUNK),
            ]
        )
        try:
            deadline = time.monotonic() + 60
            while _verified_count(me, root) < 5:
                assert child.poll() is None, "the fetch ended before it could be killed"
                assert time.monotonic() < deadline, "the fetch made no progress"
                time.sleep(0.02)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        slow.delay = 0.0
        served_before = len(slow.served)
        with new_store(me) as mine:
            done = mine.staging(root).verified
            assert 5 <= len(done) < 30
            fetch(mine, root, [peer.url])
            assert mine.get(root) == data
        assert sorted(slow.served[served_before:]) == sorted(set(range(30)) - done)


def test_two_fetches_of_the_same_blob_at_once(tmp_path: Path) -> None:
    """Two jobs needing the same model: both fetches finish, the blob is stored once."""
    data = os.urandom(SMALL_CHUNK * 24 + 1)
    root = blob_root(data, SMALL_CHUNK)
    with seeded_peer(tmp_path, "peer", data) as peer, new_store(tmp_path / "me") as mine:

        async def both() -> list[bytes]:
            return await asyncio.gather(
                Fetcher(mine, parallel=3).fetch(root, [peer.url]),
                Fetcher(mine, parallel=3).fetch(root, [peer.url], pin=True),
            )

        assert asyncio.run(both()) == [root, root]
        assert mine.get(root) == data
        assert [(b.state, b.pinned) for b in mine.blobs()] == [("complete", True)]
        assert list((mine.directory / "staging").iterdir()) == []
