"""The agent's books in SQLite: every token it moved or earned, with the transaction behind it.

An autonomous agent spends without a human watching, so its owner must be able to audit it
afterwards: what went where, for what, and which transaction (or which signed voucher on
which channel) proves it. One row per money movement, append-only:

- ``fund``: the wallet paid the agent's session key (``AgentWallet.pay``, under the policy)
  to cover one job's escrow.
- ``job``: a job posted on JobMarket (its escrow; ``ref`` is the job id).
- ``refund``: tokens a job gave back to the key's market balance (missed deadline, unused audit fee).
- ``channel``: a payment channel opened or topped up from the wallet (deposit; recoverable).
- ``voucher``: one paid request to another agent's service (off chain; ``ref`` is
  ``channel:cumulative``; no transaction until the payee redeems).
- ``earn``: a request this agent served for a voucher (``ref`` as above).
- ``redeem``: the agent collected its vouchers on chain.
- ``return``: unused float sent back from the key to the wallet.

Amounts are token base units, stored as text (they exceed SQLite's 64-bit integers).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

Kind = Literal["fund", "job", "refund", "channel", "voucher", "earn", "redeem", "return"]
# Movements that take tokens from the agent for good (what it spent) and that bring tokens in.
SPEND_KINDS = ("job", "voucher")
INCOME_KINDS = ("refund", "earn")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    amount TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    ref TEXT NOT NULL,
    tx_hash TEXT,
    note TEXT NOT NULL
)
"""


class LedgerRow(BaseModel):
    """One movement; ``tx_hash`` is None only for off-chain vouchers."""

    id: int
    at: float
    kind: Kind
    amount: int
    counterparty: str
    ref: str
    tx_hash: str | None
    note: str

    def line(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.at))
        proof = self.tx_hash or "off-chain voucher"
        return f"{when} {self.kind:<8} {self.amount / 10**18:>10.4f} VMT  {self.ref:<14} {self.counterparty[:10]}  {proof}  {self.note}"


class Ledger:
    """Append-only SQLite ledger; safe to write from several threads of one agent."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)

    def record(
        self,
        kind: Kind,
        amount: int,
        counterparty: str,
        ref: str = "",
        tx_hash: str | None = None,
        note: str = "",
    ) -> LedgerRow:
        if amount < 0:
            raise ValueError(f"ledger amounts are >= 0 (the kind says the direction), got {amount}")
        at = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO entries (at, kind, amount, counterparty, ref, tx_hash, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, kind, str(amount), counterparty, ref, tx_hash, note),
            )
        return LedgerRow(
            id=int(cur.lastrowid or 0), at=at, kind=kind, amount=amount, counterparty=counterparty,
            ref=ref, tx_hash=tx_hash, note=note,
        )  # fmt: skip

    def rows(self, kind: Kind | None = None) -> list[LedgerRow]:
        query = "SELECT id, at, kind, amount, counterparty, ref, tx_hash, note FROM entries"
        args: tuple = ()
        if kind is not None:
            query, args = query + " WHERE kind = ?", (kind,)
        with self._lock:
            found = self._conn.execute(query + " ORDER BY id", args).fetchall()
        return [
            LedgerRow(id=r[0], at=r[1], kind=r[2], amount=int(r[3]), counterparty=r[4], ref=r[5], tx_hash=r[6], note=r[7])
            for r in found
        ]

    def total(self, kind: Kind) -> int:
        return sum(r.amount for r in self.rows(kind))

    def totals(self) -> dict[str, int]:
        """Sum per kind, plus ``spent`` (jobs + vouchers - refunds) and ``earned``."""
        out: dict[str, int] = {}
        for row in self.rows():
            out[row.kind] = out.get(row.kind, 0) + row.amount
        out["spent"] = sum(out.get(k, 0) for k in SPEND_KINDS) - out.get("refund", 0)
        out["earned"] = out.get("earn", 0)
        return out

    def to_jsonl(self) -> str:
        return "".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in self.rows())

    def close(self) -> None:
        with self._lock:
            self._conn.close()
