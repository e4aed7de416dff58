"""The ledger keeps every movement with its proof, survives reopening, and sums by kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verimesh.agent.ledger import Ledger

E = 10**18


def test_rows_totals_and_jsonl(tmp_path: Path) -> None:
    book = Ledger(tmp_path / "l.sqlite")
    book.record("fund", 2 * E, "0xwallet", "job-a", "0x" + "aa" * 32)
    book.record("job", 2 * E, "0xmarket", "7", "0x" + "bb" * 32, "generate audit(0.18)")
    book.record("refund", E, "0xmarket", "7", "0x" + "cc" * 32)
    book.record("voucher", 3 * E, "0xseller", "1:3000", None, "/v1/answer served")
    book.record("earn", 2**200, "0xbuyer", "2:9", None)  # beyond SQLite's 64-bit integers
    book.close()
    again = Ledger(tmp_path / "l.sqlite")
    rows = again.rows()
    assert [r.kind for r in rows] == ["fund", "job", "refund", "voucher", "earn"]
    assert rows[4].amount == 2**200
    totals = again.totals()
    assert totals["spent"] == 2 * E + 3 * E - E
    assert totals["earned"] == 2**200
    lines = [json.loads(x) for x in again.to_jsonl().splitlines()]
    assert lines[1]["tx_hash"] == "0x" + "bb" * 32 and lines[3]["tx_hash"] is None
    assert "off-chain voucher" in rows[3].line()


def test_negative_amounts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="amounts are >= 0"):
        Ledger(tmp_path / "l.sqlite").record("job", -1, "x")
