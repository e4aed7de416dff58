"""Replay protection: remember each (signer, nonce) until its envelope has expired.

Why expiry bounds the memory: an envelope is rejected once ``now > expiry`` whatever its
nonce, so a (signer, nonce) pair only needs remembering until then. Both stores prune those
entries as time passes, so they stay as small as the traffic of one envelope lifetime.

Callers record a nonce only after the signature checked out; otherwise anybody could burn
somebody else's nonces with forged envelopes.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
from pathlib import Path
from typing import Protocol


class NonceStore(Protocol):
    def use(self, signer: str, nonce: int, expiry: int, now: int) -> bool:
        """Record (signer, nonce) valid until ``expiry``; False if it was already recorded.

        Must be atomic: two concurrent calls with the same pair cannot both return True.
        Entries with ``expiry < now`` may be forgotten.
        """
        ...


class MemoryNonceStore:
    """For one process (a node's HTTP server, tests). Thread-safe."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], int] = {}
        self._by_expiry: list[tuple[int, str, int]] = []
        self._lock = threading.Lock()

    def use(self, signer: str, nonce: int, expiry: int, now: int) -> bool:
        key = (signer.lower(), nonce)
        with self._lock:
            self._prune(now)
            if key in self._seen:
                return False
            self._seen[key] = expiry
            heapq.heappush(self._by_expiry, (expiry, *key))
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: int) -> None:
        while self._by_expiry and self._by_expiry[0][0] < now:
            _, signer, nonce = heapq.heappop(self._by_expiry)
            self._seen.pop((signer, nonce), None)


class SqliteNonceStore:
    """Survives restarts and is shared by processes on one machine (a node and its workers).

    A restarted node must not accept an envelope it already served: with a memory store a
    crash would reopen every nonce of the last envelope lifetime.
    """

    # Pruning is a DELETE over an index; once per this many inserts keeps it off the hot path.
    PRUNE_EVERY = 256

    def __init__(self, path: Path | str) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS used_nonces ("
            " signer TEXT NOT NULL, nonce TEXT NOT NULL, expiry INTEGER NOT NULL,"
            " PRIMARY KEY (signer, nonce)) WITHOUT ROWID"
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS used_nonces_expiry ON used_nonces (expiry)")
        self._lock = threading.Lock()
        self._inserts = 0

    def use(self, signer: str, nonce: int, expiry: int, now: int) -> bool:
        # uint256 does not fit SQLite's INTEGER: store the nonce as fixed-width hex text.
        key = (signer.lower(), f"{nonce:064x}")
        with self._lock:
            self._inserts += 1
            if self._inserts % self.PRUNE_EVERY == 1:
                self.prune(now)
            # An entry that expired but was not pruned yet must not block a fresh use.
            cur = self._conn.execute(
                "INSERT INTO used_nonces (signer, nonce, expiry) VALUES (?, ?, ?) "
                "ON CONFLICT (signer, nonce) DO UPDATE SET expiry = excluded.expiry "
                "WHERE used_nonces.expiry < ?",
                (*key, expiry, now),
            )
            return cur.rowcount == 1

    def prune(self, now: int) -> int:
        """Forget entries that expired before ``now``; returns how many."""
        return self._conn.execute("DELETE FROM used_nonces WHERE expiry < ?", (now,)).rowcount

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM used_nonces").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
