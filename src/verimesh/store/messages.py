"""What crosses a process boundary about a blob: its metadata and one chunk's proof.

On the wire a chunk travels as a raw ``application/octet-stream`` body (no base64: it is
the bulk of every transfer) with its ``ChunkProof`` as compact JSON in one response header
(``PROOF_HEADER``); see docs/store.md. ``check_chunk`` is the single place where a chunk is
accepted or refused, used by the local store before any byte reaches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verimesh.crypto.merkle import (
    HASH_SIZE,
    MAX_DEPTH,
    MerkleProof,
    chunk_count,
    leaf_hash,
    verify_proof,
)
from verimesh.store.errors import BadChunkError
from verimesh.store.ids import format_root, parse_root

PROOF_HEADER = "x-verimesh-chunk-proof"
# Chunks per range request (4 MiB at 256 KiB): large enough to amortise a request's
# overhead, small enough that a failed request wastes little and peers share the load.
MAX_RANGE_CHUNKS = 16


class BlobInfo(BaseModel):
    """Metadata of a blob held by a peer: ``GET /v1/blobs/{root}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # newer peers may add fields

    root: str = Field(description="0x-prefixed Merkle root of the blob's chunks (its id)")
    size: int = Field(ge=0, description="total size in bytes")
    chunk_count: int = Field(ge=0, description="number of chunks, the last one may be short")
    chunk_size: int = Field(gt=0, description="bytes per chunk (256 KiB on the network)")

    @field_validator("root")
    @classmethod
    def _canonical_root(cls, value: str) -> str:
        return format_root(value)

    def check(self) -> None:
        """Raise ``ValueError`` if size, chunk size and chunk count disagree."""
        expected = chunk_count(self.size, self.chunk_size)
        if expected != self.chunk_count:
            raise ValueError(
                f"blob {self.root}: size {self.size} with {self.chunk_size}-byte chunks makes "
                f"{expected} chunks, not {self.chunk_count}"
            )


class ChunkProof(BaseModel):
    """Inclusion proof of chunk ``index`` in blob ``root``; sent beside the raw chunk bytes."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # newer peers may add fields

    root: str
    index: int = Field(ge=0)
    size: int = Field(ge=0, description="total size of the blob in bytes")
    chunk_count: int = Field(ge=0)
    siblings: list[str] = Field(
        max_length=MAX_DEPTH, description="0x-hex sibling hashes, leaf level up"
    )

    @field_validator("root")
    @classmethod
    def _canonical_root(cls, value: str) -> str:
        return format_root(value)

    @field_validator("siblings")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for s in value:
            if len(s) != 2 + 2 * HASH_SIZE or not s.startswith("0x"):
                raise ValueError(f"sibling {s[:80]!r} is not 0x + {2 * HASH_SIZE} hex digits")
            bytes.fromhex(s[2:])
        return value

    @classmethod
    def from_merkle(cls, root: bytes, size: int, proof: MerkleProof) -> ChunkProof:
        return cls(
            root=format_root(root),
            index=proof.index,
            size=size,
            chunk_count=proof.leaf_count,
            siblings=["0x" + s.hex() for s in proof.siblings],
        )

    def merkle_proof(self) -> MerkleProof:
        return MerkleProof(
            self.index, self.chunk_count, tuple(bytes.fromhex(s[2:]) for s in self.siblings)
        )


@dataclass(frozen=True)
class Chunk:
    """One chunk with its proof, as the local store hands it out."""

    data: bytes
    proof: ChunkProof


def expected_chunk_length(index: int, size: int, chunk_size: int) -> int:
    """Length chunk ``index`` must have in a blob of ``size`` bytes."""
    return min(chunk_size, size - index * chunk_size)


def check_chunk(root: bytes, data: bytes, proof: ChunkProof, chunk_size: int) -> bytes:
    """Accept a chunk only if it provably belongs at ``proof.index`` of ``root``.

    Returns the chunk's leaf hash (the store records it) or raises ``BadChunkError``.

    The proof binds the chunk count (it is inside the root), and every chunk but the last is
    exactly ``chunk_size`` long, so a peer cannot shift or pad bytes without failing here.
    """
    where = f"chunk {proof.index} of blob {format_root(root)}"
    if parse_root(proof.root) != root:
        raise BadChunkError(f"{where}: the proof is for blob {proof.root}")
    if proof.index >= proof.chunk_count:
        raise BadChunkError(f"{where}: index is outside a blob of {proof.chunk_count} chunks")
    if chunk_count(proof.size, chunk_size) != proof.chunk_count:
        raise BadChunkError(
            f"{where}: size {proof.size} does not make {proof.chunk_count} chunks of {chunk_size} bytes"
        )
    want = expected_chunk_length(proof.index, proof.size, chunk_size)
    if len(data) != want:
        raise BadChunkError(f"{where}: got {len(data)} bytes, a chunk here has {want}")
    leaf = leaf_hash(data)
    if not verify_proof(root, leaf, proof.merkle_proof()):
        raise BadChunkError(f"{where}: bytes do not match the Merkle proof (corrupt or forged)")
    return leaf
