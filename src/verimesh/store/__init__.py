"""Content-addressed blobs (models, inputs, outputs) with Merkle chunk proofs.

A blob's id is ``verimesh.crypto.merkle.blob_root`` of its bytes. ``BlobStore`` keeps blobs on
local disk under a size cap; ``verimesh.store.http.blob_router`` serves them to peers over HTTP;
``verimesh.store.fetch.fetch`` pulls a
blob from peers, verifying every chunk before it is written. See docs/store.md.
"""

from verimesh.store.errors import (
    BadChunkError,
    BlobTooLargeError,
    CorruptBlobError,
    FetchError,
    MalformedRootError,
    StoreError,
    StoreFullError,
    UnknownBlobError,
)
from verimesh.store.ids import Root, format_root, parse_root
from verimesh.store.local import BlobRecord, BlobStore, StagingStatus, default_blob_dir
from verimesh.store.messages import BlobInfo, Chunk, ChunkProof, check_chunk

__all__ = [
    "BadChunkError",
    "BlobInfo",
    "BlobRecord",
    "BlobStore",
    "BlobTooLargeError",
    "Chunk",
    "ChunkProof",
    "CorruptBlobError",
    "FetchError",
    "MalformedRootError",
    "Root",
    "StagingStatus",
    "StoreError",
    "StoreFullError",
    "UnknownBlobError",
    "check_chunk",
    "default_blob_dir",
    "format_root",
    "parse_root",
]
