"""Errors of the blob store, each saying what went wrong and what to do about it.

They all derive from ``StoreError`` so a caller (the node's HTTP layer, the CLI) can turn
any of them into a clear message without knowing every case.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every blob-store error."""


class MalformedRootError(StoreError, ValueError):
    """A blob id that is not 32 bytes / ``0x`` + 64 hex digits."""


class UnknownBlobError(StoreError, KeyError):
    """The store holds no complete blob with this root."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "unknown blob"


class BlobTooLargeError(StoreError):
    """A single blob is larger than the whole store cap: no eviction can make room."""


class StoreFullError(StoreError):
    """Room is needed but everything left is pinned or being fetched."""


class CorruptBlobError(StoreError):
    """Bytes on disk no longer match the blob's Merkle tree; the blob was quarantined."""


class BadChunkError(StoreError):
    """A chunk offered for a blob does not verify against the blob's root."""


class FetchError(StoreError):
    """No peer could deliver a blob; the message names the root and every peer tried."""
