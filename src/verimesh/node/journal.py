"""The node's memory of every duty it must not forget, in SQLite (WAL; the salt is fsynced).

A provider that forgets a duty loses money: a job it was assigned but never committed, a
commitment it cannot reveal because the salt is gone, a payment it never claimed. So each
step of a job is written here before (or, for chain transactions, right after) it happens,
and every step is idempotent: the daemon re-reads the chain before acting, so doing a
step twice is harmless and skipping one is impossible.

One row per assigned job, moving through these steps:

    assigned -> ready -> executed -> committed -> revealed -> finalized -> done
                                                         \\-> failed (refunded, disputed, expired)

- ``assigned``: seen ``ProviderAssigned`` for us; waiting for the requester's upload.
- ``ready``: spec and input stored (input blob pinned in the blob store).
- ``executed``: output blob stored; output_root, trace_root (with the step roots under it)
  AND THE SALT are on disk (fsync) before the commit transaction is sent. A crash after the
  send finds the salt here.
- ``committed``: our commitment is on chain; reveal once every replica committed.
- ``revealed``: waiting for the challenge window to close; then finalize.
- ``finalized``: the market credited us; withdraw the balance, then ``done``.

The event cursor (last block whose JobMarket events were processed) is updated in the same
SQLite transaction as the assignments found in those blocks: no event is lost or doubled.

``crash_point(name)`` is the fault-injection hook of the kill-and-restart tests: when
``VERIMESH_CRASH_AT`` names the point, the process dies there with ``os._exit`` (no cleanup,
like SIGKILL).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel

from verimesh.sqlite_wal import WalDatabase

STEPS = ("assigned", "ready", "executed", "committed", "revealed", "finalized", "done", "failed")
ACTIVE_STEPS = STEPS[:6]
CRASH_ENV = "VERIMESH_CRASH_AT"
# Every place a test may kill the node. Order = the order a job passes them.
CRASH_POINTS = (
    "after_assigned",
    "after_input_stored",
    "after_executed",
    "after_commit_sent",
    "after_reveal_sent",
    "after_finalize_sent",
    "after_withdraw_sent",
)
# Places in a dispute (not every job passes them): the on-chain op proof was sent (landed or
# reverted) but how it ended is not journaled yet (``node.evidence.OpProofs.send``).
DISPUTE_CRASH_POINTS = ("after_op_proof_sent",)


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, if ``$VERIMESH_CRASH_AT`` names this point."""
    known = CRASH_POINTS + DISPUTE_CRASH_POINTS
    if name not in known:
        raise ValueError(f"unknown crash point {name!r}; known: {', '.join(known)}")
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


class JournalError(RuntimeError):
    """The journal refuses a step out of order (a bug in the caller, never user input)."""


class Assignment(BaseModel):
    """What the chain told us about a job assigned to this node (JobPosted + ProviderAssigned)."""

    job_id: int
    replica: int
    requester: str
    spec_hash: str
    model_root: str
    input_root: str
    commit_deadline: int
    reveal_deadline: int


class JobDuty(Assignment):
    """A journaled job of this node: its assignment, the step it reached and what it produced."""

    step: str
    spec_json: str | None = None
    output_root: str | None = None
    trace_root: str | None = None
    step_roots: str | None = None  # JSON list of the 0x-hex step roots under trace_root
    output_json: str | None = None  # the decoded output (served beside the output blob)
    salt: str | None = None
    commit_tx: str | None = None
    reveal_tx: str | None = None
    finalize_tx: str | None = None
    error: str | None = None
    created_at: float
    updated_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    replica INTEGER NOT NULL,
    requester TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    model_root TEXT NOT NULL,
    input_root TEXT NOT NULL,
    commit_deadline INTEGER NOT NULL,
    reveal_deadline INTEGER NOT NULL,
    step TEXT NOT NULL,
    spec_json TEXT,
    output_root TEXT,
    trace_root TEXT,
    step_roots TEXT,
    output_json TEXT,
    salt TEXT,
    commit_tx TEXT,
    reveal_tx TEXT,
    finalize_tx TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_step ON jobs (step);
CREATE TABLE IF NOT EXISTS step_times (
    job_id INTEGER NOT NULL, step TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (job_id, step)
);
"""
# Columns added after journals were first written: (name, SQL type), added on open when missing.
_ADDED_COLUMNS = (("step_roots", "TEXT"),)
_COLUMNS = list(JobDuty.model_fields)
# Fields a step may set; anything else is fixed at assignment.
_MUTABLE = {"spec_json", "output_root", "trace_root", "step_roots", "output_json", "salt", "commit_tx", "reveal_tx",
            "finalize_tx", "error"}  # fmt: skip


class Journal(WalDatabase):
    """The duties journal of one node home. Thread-safe (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        # NORMAL in WAL mode survives any process crash (SIGKILL included); only power loss
        # can drop the last steps, which the daemon re-derives from the chain. The one write
        # that must survive power loss too, the salt, is made with ``durable=True`` (FULL).
        super().__init__(path, _SCHEMA, synchronous="NORMAL")
        for name, sql_type in _ADDED_COLUMNS:  # a journal from an older node keeps its rows
            self.add_missing_column("jobs", name, sql_type)

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def cursor(self) -> int | None:
        """Last block whose JobMarket events were fully processed (None: never started)."""
        value = self.get_meta("event_cursor")
        return int(value) if value is not None else None

    # -- jobs ---------------------------------------------------------------------------
    def record_assignments(self, assignments: list[Assignment], cursor: int) -> list[int]:
        """Journal new assignments and move the event cursor to ``cursor``, atomically.

        Returns the ids of jobs that were new (a re-read block adds nothing twice).
        """
        now = time.time()
        new = []
        with self.tx() as c:
            for a in assignments:
                cur = c.execute(
                    "INSERT OR IGNORE INTO jobs (job_id, replica, requester, spec_hash, model_root,"
                    " input_root, commit_deadline, reveal_deadline, step, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'assigned', ?, ?)",
                    (a.job_id, a.replica, a.requester, a.spec_hash, a.model_root, a.input_root,
                     a.commit_deadline, a.reveal_deadline, now, now),
                )  # fmt: skip
                if cur.rowcount:
                    new.append(a.job_id)
                    c.execute("INSERT OR IGNORE INTO step_times VALUES (?, 'assigned', ?)", (a.job_id, now))
            c.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('event_cursor', ?)", (str(cursor),)
            )
        return new

    def job(self, job_id: int) -> JobDuty | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return JobDuty(**dict(zip(_COLUMNS, row, strict=True))) if row else None

    def jobs(self, steps: tuple[str, ...] = STEPS) -> list[JobDuty]:
        marks = ", ".join("?" for _ in steps)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE step IN ({marks}) ORDER BY job_id",
                steps,
            ).fetchall()
        return [JobDuty(**dict(zip(_COLUMNS, r, strict=True))) for r in rows]

    def active(self) -> list[JobDuty]:
        """Jobs with a duty left (everything not done or failed)."""
        return self.jobs(ACTIVE_STEPS)

    def advance(
        self, job_id: int, from_steps: tuple[str, ...], to_step: str, *, durable: bool = False, **fields: str | None
    ) -> bool:
        """Move a job from one of ``from_steps`` to ``to_step`` and set ``fields``;
        ``durable`` fsyncs the write before returning (the salt, before a commit is sent).

        Returns False (and changes nothing) when the job is not in ``from_steps``: a second
        thread or a replayed step already moved it, which is fine for idempotent callers.
        """
        if to_step not in STEPS:
            raise JournalError(f"unknown step {to_step!r}")
        unknown = set(fields) - _MUTABLE
        if unknown:
            raise JournalError(f"fields {sorted(unknown)} cannot change after assignment")
        sets = ", ".join([*(f"{k} = ?" for k in fields), "step = ?", "updated_at = ?"])
        marks = ", ".join("?" for _ in from_steps)
        now = time.time()
        with self._lock:
            if durable:
                self._conn.execute("PRAGMA synchronous=FULL")
            try:
                with self.tx() as c:
                    cur = c.execute(
                        f"UPDATE jobs SET {sets} WHERE job_id = ? AND step IN ({marks})",
                        (*fields.values(), to_step, now, job_id, *from_steps),
                    )
                    if cur.rowcount == 1:
                        c.execute("INSERT OR REPLACE INTO step_times VALUES (?, ?, ?)", (job_id, to_step, now))
                    return cur.rowcount == 1
            finally:
                if durable:
                    self._conn.execute("PRAGMA synchronous=NORMAL")

    def fail(self, job_id: int, reason: str) -> None:
        """The job ended without pay for us (refunded, lost dispute, deadline missed)."""
        self.advance(job_id, ACTIVE_STEPS, "failed", error=reason[:2000])

    def step_times(self, job_id: int) -> dict[str, float]:
        """When the job reached each step (unix seconds): where a node's time went."""
        with self._lock:
            rows = self._conn.execute("SELECT step, at FROM step_times WHERE job_id = ?", (job_id,)).fetchall()
        return dict(rows)

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT step, COUNT(*) FROM jobs GROUP BY step").fetchall()
        return dict(rows)
