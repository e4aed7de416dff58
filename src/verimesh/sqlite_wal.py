"""One way to keep a daemon's memory in SQLite: WAL mode, one connection, one lock.

The node's duties journal and the validator's journal both need the same things from
SQLite: a file that survives SIGKILL at any instruction (WAL), writers that wait for each
other instead of failing (``busy_timeout``), one connection shared by the daemon's threads
behind one re-entrant lock, and ``BEGIN IMMEDIATE`` transactions that take the write lock
up front so that a read-then-write step cannot interleave with another thread's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WalDatabase:
    """A SQLite file in WAL mode with ``schema`` applied; thread-safe through ``lock``."""

    def __init__(self, path: Path | str, schema: str, synchronous: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(schema)
        self._lock = threading.RLock()

    def add_missing_column(self, table: str, column: str, sql_type: str) -> None:
        """Add ``column`` to ``table`` unless it is there: ``CREATE TABLE IF NOT EXISTS`` leaves
        a table made by an older version as it was, so a column added since needs this."""
        with self.tx() as c:
            if column not in {row[1] for row in c.execute(f"PRAGMA table_info({table})")}:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
