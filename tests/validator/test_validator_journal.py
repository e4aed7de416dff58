"""The validator's journal: a journal written before spot audits keeps its duties and gains
the column that records what each audit re-ran, which ``validator status`` shows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from verimesh.node.validator import ValidatorJournal

_OLD_DUTIES = """
CREATE TABLE duties (
    job_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, step TEXT NOT NULL,
    report_deadline INTEGER NOT NULL DEFAULT 0, spec_json TEXT, output_root TEXT, trace_root TEXT,
    agrees INTEGER, error TEXT, updated_at REAL NOT NULL
);
INSERT INTO duties (job_id, kind, step, agrees, updated_at) VALUES (7, 'audit', 'reported', 1, 0);
"""


def test_an_old_journal_keeps_its_duties_and_records_what_later_audits_checked(tmp_path: Path) -> None:
    path = tmp_path / "validator.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_DUTIES)
    journal = ValidatorJournal(path)
    assert journal.duty(7).step == "reported" and journal.duty(7).checked is None
    with journal.tx() as c:
        c.execute("INSERT INTO duties (job_id, kind, step, updated_at) VALUES (8, 'audit', 'drawn', 0)")
    assert journal.advance(8, ("drawn",), "executed", checked="spot check of steps 3, 15")
    assert journal.advance(8, ("executed",), "reported", agrees=1)
    journal.close()

    again = ValidatorJournal(path)  # opening twice adds nothing twice
    assert again.all_rows() == [
        ("7", "audit", "reported", "agreed with the provider"),
        ("8", "audit", "reported", "agreed with the provider (spot check of steps 3, 15)"),
    ]
