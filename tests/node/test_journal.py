"""The duties journal: steps in order, idempotent, atomic with the event cursor, durable."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from verimesh.node import journal as journal_module
from verimesh.node.journal import CRASH_ENV, Assignment, Journal, JournalError, crash_point


def _assignment(job_id: int) -> Assignment:
    return Assignment(
        job_id=job_id,
        replica=0,
        requester="0x" + "11" * 20,
        spec_hash="0x" + "aa" * 32,
        model_root="0x" + "bb" * 32,
        input_root="0x" + "cc" * 32,
        commit_deadline=1000,
        reveal_deadline=2000,
    )


def test_assignments_and_cursor_move_together(tmp_path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.cursor() is None
    assert journal.record_assignments([_assignment(1), _assignment(2)], 10) == [1, 2]
    assert journal.cursor() == 10
    # The same blocks read again (a restart before the cursor moved) add nothing twice.
    assert journal.record_assignments([_assignment(2), _assignment(3)], 12) == [3]
    assert [d.job_id for d in journal.active()] == [1, 2, 3]
    assert journal.cursor() == 12


def test_steps_advance_only_from_the_expected_step(tmp_path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.record_assignments([_assignment(7)], 5)
    assert not journal.advance(7, ("ready",), "executed")  # not there yet: nothing changes
    assert journal.job(7).step == "assigned"
    assert journal.advance(7, ("assigned",), "ready", spec_json="{}")
    assert not journal.advance(7, ("assigned",), "ready", spec_json="{}")  # replayed step
    assert journal.advance(7, ("ready",), "executed", output_root="0x01", trace_root="0x02", salt="0x03")
    duty = journal.job(7)
    assert (duty.step, duty.salt, duty.spec_json) == ("executed", "0x03", "{}")
    with pytest.raises(JournalError, match="cannot change"):
        journal.advance(7, ("executed",), "committed", requester="0x" + "22" * 20)
    with pytest.raises(JournalError, match="unknown step"):
        journal.advance(7, ("executed",), "teleported")
    assert set(journal.step_times(7)) == {"assigned", "ready", "executed"}
    journal.fail(7, "deadline passed")
    assert journal.job(7).step == "failed"
    assert journal.active() == []
    assert journal.counts() == {"failed": 1}


def test_a_journal_from_before_step_roots_gains_the_column_and_keeps_its_rows(tmp_path) -> None:
    """A node upgraded in place opens the journal its older version wrote: the step_roots
    column is added, every duty is still there, and opening it again changes nothing."""
    path = tmp_path / "j.sqlite"
    old_schema = journal_module._SCHEMA.replace("    step_roots TEXT,\n", "")
    assert old_schema != journal_module._SCHEMA
    with sqlite3.connect(path) as old:
        old.executescript(old_schema)
        old.execute(
            "INSERT INTO jobs (job_id, replica, requester, spec_hash, model_root, input_root, commit_deadline,"
            " reveal_deadline, step, output_root, trace_root, salt, created_at, updated_at)"
            " VALUES (4, 0, '0xr', '0xs', '0xm', '0xi', 1000, 2000, 'revealed', '0x0a', '0x0b', '0x0c', 1.0, 2.0)"
        )
    old.close()

    journal = Journal(path)
    duty = journal.job(4)
    assert (duty.step, duty.trace_root, duty.salt) == ("revealed", "0x0b", "0x0c")
    assert duty.step_roots is None  # an older node published none
    journal.record_assignments([_assignment(5)], 1)
    roots = json.dumps(["0x" + "01" * 32, "0x" + "02" * 32])
    assert journal.advance(5, ("assigned",), "executed", trace_root="0x0d", step_roots=roots)
    journal.close()

    reopened = Journal(path)  # the migration is idempotent
    assert reopened.job(5).step_roots == roots
    assert [d.job_id for d in reopened.jobs()] == [4, 5]


def test_salt_survives_a_killed_process(tmp_path) -> None:
    """A child writes the salt and dies with os._exit (no close, no flush): it is on disk."""
    path = tmp_path / "j.sqlite"
    Journal(path).record_assignments([_assignment(3)], 1)
    code = (
        "import sys; from verimesh.node.journal import Journal, crash_point\n"
        f"j = Journal({str(path)!r})\n"
        "j.advance(3, ('assigned',), 'executed', salt='0x' + 'ee' * 32)\n"
        "crash_point('after_executed')\n"
        "sys.exit(0)\n"
    )
    env = {CRASH_ENV: "after_executed", "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert result.returncode == 137, result.stderr.decode()
    assert Journal(path).job(3).salt == "0x" + "ee" * 32


def test_crash_point_names_are_checked(monkeypatch) -> None:
    monkeypatch.delenv(CRASH_ENV, raising=False)
    crash_point("after_commit_sent")  # not armed: returns
    with pytest.raises(ValueError, match="unknown crash point"):
        crash_point("after_lunch")
