"""The blob router over a real uvicorn server: metadata, chunks with proofs, 4xx for bad input."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from blob_peers import SMALL_CHUNK, BlobPeer

from verimesh.crypto.merkle import blob_root, blob_tree
from verimesh.store import BlobStore, ChunkProof, check_chunk, format_root
from verimesh.store.messages import PROOF_HEADER


@pytest.fixture
def peer(store: BlobStore) -> Iterator[BlobPeer]:
    with BlobPeer(store) as p:
        yield p


def test_metadata_and_chunks_with_proofs(peer: BlobPeer) -> None:
    data = os.urandom(SMALL_CHUNK * 3 + 10)
    root = peer.store.put(data)
    info = httpx.get(f"{peer.url}/v1/blobs/{format_root(root)}").json()
    assert info == {
        "root": format_root(root),
        "size": len(data),
        "chunk_count": 4,
        "chunk_size": SMALL_CHUNK,
    }
    for i in range(4):
        r = httpx.get(f"{peer.url}/v1/blobs/{format_root(root)}/chunks/{i}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        proof = ChunkProof.model_validate_json(r.headers[PROOF_HEADER])
        check_chunk(root, r.content, proof, SMALL_CHUNK)
        assert r.content == data[i * SMALL_CHUNK : (i + 1) * SMALL_CHUNK]
    # Uppercase hex is the same root.
    assert httpx.get(f"{peer.url}/v1/blobs/0x{root.hex().upper()}").status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/v1/blobs/0x1234", 400, "64 hex digits"),
        ("/v1/blobs/" + "ab" * 32, 400, "expected '0x'"),
        ("/v1/blobs/0x" + "zz" * 32, 400, "64 hex digits"),
        ("/v1/blobs/0x" + "ab" * 32, 404, "is not in the store"),
        ("/v1/blobs/0x" + "ab" * 32 + "/chunks/0", 404, "is not in the store"),
        ("/v1/blobs/{root}/chunks/-1", 400, "not a non-negative integer"),
        ("/v1/blobs/{root}/chunks/one", 400, "not a non-negative integer"),
        ("/v1/blobs/{root}/chunks/99999999999999999999999", 400, "not a non-negative integer"),
        ("/v1/blobs/{root}/chunks/2", 400, "outside blob"),
        ("/v1/blobs/{root}/chunks", 400, "start '' is not a non-negative integer"),
        ("/v1/blobs/{root}/chunks?start=0", 400, "count '' is not"),
        ("/v1/blobs/{root}/chunks?start=-1&count=1", 400, "start '-1' is not"),
        ("/v1/blobs/{root}/chunks?start=0&count=0", 400, "count must be 1..16"),
        ("/v1/blobs/{root}/chunks?start=0&count=17", 400, "count must be 1..16"),
        ("/v1/blobs/{root}/chunks?start=1&count=2", 400, "chunks 1..2 are outside blob"),
        ("/v1/blobs/0x" + "ab" * 32 + "/chunks?start=0&count=1", 404, "is not in the store"),
        ("/v1/blobs/0x" + "ab" * 32 + "/leaves", 404, "is not in the store"),
        ("/v1/blobs/0xab/leaves", 400, "64 hex digits"),
    ],
)
def test_bad_requests_get_clear_4xx(peer: BlobPeer, path: str, status: int, says: str) -> None:
    root = peer.store.put(b"q" * (SMALL_CHUNK + 1))
    r = httpx.get(peer.url + path.format(root=format_root(root)))
    assert r.status_code == status
    assert says in r.json()["detail"]


def test_leaves_and_chunk_ranges(peer: BlobPeer) -> None:
    data = os.urandom(SMALL_CHUNK * 20 + 5)
    root = peer.store.put(data)
    base = f"{peer.url}/v1/blobs/{format_root(root)}"
    leaves = httpx.get(f"{base}/leaves").content
    tree = blob_tree(data, SMALL_CHUNK)
    assert leaves == b"".join(tree.leaf(i) for i in range(21))
    r = httpx.get(f"{base}/chunks", params={"start": 3, "count": 16})
    assert r.status_code == 200 and r.headers["content-length"] == str(16 * SMALL_CHUNK)
    assert r.content == data[3 * SMALL_CHUNK : 19 * SMALL_CHUNK]
    tail = httpx.get(f"{base}/chunks", params={"start": 19, "count": 2}).content
    assert tail == data[19 * SMALL_CHUNK :]


def test_corrupt_chunk_inside_a_range_is_not_served(peer: BlobPeer) -> None:
    data = os.urandom(SMALL_CHUNK * 8)
    root = peer.store.put(data)
    path = peer.store.directory / "complete" / root.hex()
    raw = bytearray(path.read_bytes())
    raw[SMALL_CHUNK * 5 + 1] ^= 1
    path.write_bytes(bytes(raw))
    url = f"{peer.url}/v1/blobs/{format_root(root)}/chunks?start=0&count=8"
    r = httpx.get(url)
    assert r.status_code == 404 and "chunk 5 does not match" in r.json()["detail"]
    assert not peer.store.has(root)
    assert httpx.get(url).status_code == 404


def test_corrupt_blob_is_not_served(peer: BlobPeer) -> None:
    data = os.urandom(SMALL_CHUNK * 2)
    root = peer.store.put(data)
    path = peer.store.directory / "complete" / root.hex()
    path.write_bytes(b"\xff" + path.read_bytes()[1:])
    r = httpx.get(f"{peer.url}/v1/blobs/{format_root(root)}/chunks/0")
    assert r.status_code == 404 and "corrupt on disk" in r.json()["detail"]
    assert httpx.get(f"{peer.url}/v1/blobs/{format_root(root)}").status_code == 404
    assert not peer.store.has(blob_root(data, SMALL_CHUNK))


def test_openapi_schema_lists_the_blob_routes(peer: BlobPeer) -> None:
    paths = httpx.get(f"{peer.url}/openapi.json").json()["paths"]
    assert {
        "/v1/blobs/{root}",
        "/v1/blobs/{root}/leaves",
        "/v1/blobs/{root}/chunks",
        "/v1/blobs/{root}/chunks/{index}",
    } <= set(paths)
