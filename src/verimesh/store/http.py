"""HTTP face of the blob store: a FastAPI router the node mounts to serve blobs to peers.

Routes (JSON errors carry a ``detail`` that says what to fix):

- ``GET /v1/blobs/{root}`` -> ``BlobInfo`` (size, chunk count, chunk size).
- ``GET /v1/blobs/{root}/chunks/{index}`` -> the chunk's raw bytes as
  ``application/octet-stream``, its ``ChunkProof`` as compact JSON in the
  ``x-verimesh-chunk-proof`` header. Raw bytes rather than a base64 JSON envelope: the chunk
  is the bulk of every transfer and base64 would add a third to it plus a decode on both
  ends, while the proof is small (about 70 bytes per tree level: 1.4 KiB for a 256 GiB blob)
  and fits a header.

400 for a malformed root or index, 404 for a blob this node does not hold (or has just
quarantined as corrupt). Handlers are plain ``def`` so disk reads run in the thread pool.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Response

from verimesh.store.errors import CorruptBlobError, MalformedRootError, UnknownBlobError
from verimesh.store.ids import parse_root
from verimesh.store.local import BlobStore
from verimesh.store.messages import PROOF_HEADER, BlobInfo

_INDEX = re.compile(r"[0-9]{1,19}")  # a uint64 at most: anything longer is not an index
_ERRORS = {
    400: {"description": "malformed root or chunk index"},
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
        "/{root}/chunks/{index}",
        response_class=Response,
        responses={
            200: {
                "content": {"application/octet-stream": {}},
                "description": f"raw chunk bytes; ChunkProof JSON in the {PROOF_HEADER} header",
            },
            **_ERRORS,
        },
    )
    def blob_chunk(root: str, index: str) -> Response:
        """One chunk with its Merkle inclusion proof; re-hashed before it is sent."""
        r = _root(root)
        if not _INDEX.fullmatch(index):
            raise HTTPException(400, f"chunk index {index[:40]!r} is not a non-negative integer")
        try:
            chunk = store.chunk(r, int(index))
        except (UnknownBlobError, CorruptBlobError) as exc:
            raise HTTPException(404, str(exc)) from exc
        except IndexError as exc:
            raise HTTPException(400, str(exc)) from exc
        return Response(
            content=chunk.data,
            media_type="application/octet-stream",
            headers={
                PROOF_HEADER: chunk.proof.model_dump_json(),
                # Content-addressed: the bytes behind this URL can never change.
                "cache-control": "public, max-age=31536000, immutable",
            },
        )

    return router


def _root(text: str) -> bytes:
    try:
        return parse_root(text)
    except MalformedRootError as exc:
        raise HTTPException(400, str(exc)) from exc
