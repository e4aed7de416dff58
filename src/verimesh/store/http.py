"""HTTP face of the blob store: a FastAPI router the node mounts to serve blobs to peers.

Routes (JSON errors carry a ``detail`` that says what to fix):

- ``GET /v1/blobs/{root}`` -> ``BlobInfo`` (size, chunk count, chunk size).
- ``GET /v1/blobs/{root}/chunks/{index}`` -> one chunk's raw bytes as
  ``application/octet-stream``, its ``ChunkProof`` as compact JSON in the
  ``x-verimesh-chunk-proof`` header. Raw bytes rather than a base64 JSON envelope: the chunk
  is the bulk of every transfer and base64 would add a third to it plus a decode on both
  ends, while the proof is small (about 70 bytes per tree level: 1.4 KiB for a 256 GiB blob)
  and fits a header.
- ``GET /v1/blobs/{root}/leaves`` -> the blob's Merkle leaves, 32 raw bytes per chunk.
- ``GET /v1/blobs/{root}/chunks?start=S&count=N`` -> chunks S..S+N-1 back to back as raw
  bytes (N <= ``MAX_RANGE_CHUNKS``). No proofs: a fetcher that has checked the leaves against
  the root verifies each chunk by its leaf hash. This is the bulk path: one request per
  4 MiB instead of one per 256 KiB (see docs/bench-store.md).

Every chunk is re-hashed against the stored tree before it is sent. 400 for a malformed
root, index or range; 404 for a blob this node does not hold (or has just quarantined as
corrupt). Handlers are plain ``def`` so disk reads run in the thread pool.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Response

from verimesh.store.errors import CorruptBlobError, MalformedRootError, UnknownBlobError
from verimesh.store.ids import parse_root
from verimesh.store.local import BlobStore
from verimesh.store.messages import MAX_RANGE_CHUNKS, PROOF_HEADER, BlobInfo

_INDEX = re.compile(r"[0-9]{1,19}")  # a uint64 at most: anything longer is not an index
_OCTETS = "application/octet-stream"
# Content-addressed: the bytes behind these URLs can never change.
_IMMUTABLE = {"cache-control": "public, max-age=31536000, immutable"}
_ERRORS = {
    400: {"description": "malformed root, chunk index or range"},
    404: {"description": "this node does not hold the blob"},
}


def blob_router(store: BlobStore) -> APIRouter:
    """Router serving ``store``'s complete blobs; mount it on the node's FastAPI app."""
    router = APIRouter(prefix="/v1/blobs", tags=["blobs"])

    @router.get("/{root}", response_model=BlobInfo, responses=_ERRORS)
    def blob_info(root: str) -> BlobInfo:
        """Size and chunk layout of a blob, so a fetcher knows which chunks to ask for."""
        r = _root(root)
        try:
            return store.info(r)
        except UnknownBlobError as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.get(
        "/{root}/leaves",
        response_class=Response,
        responses={200: {"content": {_OCTETS: {}}, "description": "32 bytes per chunk"}, **_ERRORS},
    )
    def blob_leaves(root: str) -> Response:
        """The blob's Merkle leaves, to be checked once against the root by the fetcher."""
        r = _root(root)
        try:
            return Response(store.leaves(r), media_type=_OCTETS, headers=_IMMUTABLE)
        except (UnknownBlobError, CorruptBlobError) as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.get(
        "/{root}/chunks",
        response_class=Response,
        responses={
            200: {"content": {_OCTETS: {}}, "description": "the chunks' raw bytes, back to back"},
            **_ERRORS,
        },
    )
    def blob_chunk_range(root: str, start: str = "", count: str = "") -> Response:
        """Up to ``MAX_RANGE_CHUNKS`` consecutive chunks, each re-hashed before it is sent.

        Read and checked whole (4 MiB at most) in one worker-thread call, not streamed chunk
        by chunk: a thread hop per chunk cost more wall time than the transfer under load
        (measured), and a damaged chunk anywhere in the range still gets a clean 404.
        """
        r = _root(root)
        first, n = _index(start, "start"), _index(count, "count")
        if not 1 <= n <= MAX_RANGE_CHUNKS:
            raise HTTPException(400, f"count must be 1..{MAX_RANGE_CHUNKS}, got {n}")
        try:
            body = b"".join(store.read_chunks(r, first, n))
        except (UnknownBlobError, CorruptBlobError) as exc:
            raise HTTPException(404, str(exc)) from exc
        except IndexError as exc:
            raise HTTPException(400, str(exc)) from exc
        return Response(body, media_type=_OCTETS, headers=_IMMUTABLE)

    @router.get(
        "/{root}/chunks/{index}",
        response_class=Response,
        responses={
            200: {
                "content": {_OCTETS: {}},
                "description": f"raw chunk bytes; ChunkProof JSON in the {PROOF_HEADER} header",
            },
            **_ERRORS,
        },
    )
    def blob_chunk(root: str, index: str) -> Response:
        """One chunk with its Merkle inclusion proof."""
        r = _root(root)
        try:
            chunk = store.chunk(r, _index(index, "chunk index"))
        except (UnknownBlobError, CorruptBlobError) as exc:
            raise HTTPException(404, str(exc)) from exc
        except IndexError as exc:
            raise HTTPException(400, str(exc)) from exc
        return Response(
            content=chunk.data,
            media_type=_OCTETS,
            headers={PROOF_HEADER: chunk.proof.model_dump_json(), **_IMMUTABLE},
        )

    return router


def _root(text: str) -> bytes:
    try:
        return parse_root(text)
    except MalformedRootError as exc:
        raise HTTPException(400, str(exc)) from exc


def _index(text: str, what: str) -> int:
    if not _INDEX.fullmatch(text):
        raise HTTPException(400, f"{what} {text[:40]!r} is not a non-negative integer")
    return int(text)
