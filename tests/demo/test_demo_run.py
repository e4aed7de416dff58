"""`verimesh demo` end to end in a small configuration, as a newcomer runs it: a devnet,
three nodes (one cheating, drawn from the adversary zoo: with seed 19, the one that withholds
its reveals), two validators and the requester agent buying four real jobs (MiniLM
embeddings, a SmolLM2 generation). It exits 0 with every invariant true, and prints exactly
one JSON object with the report's fields."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.devnet, pytest.mark.slow]

FIELDS = [
    "jobs_total", "jobs_verified", "jobs_refunded", "cheats_attempted", "cheats_caught",
    "honest_slashed", "tokens_conserved", "wall_seconds", "gas_per_job",
]  # fmt: skip


def test_a_small_demo_with_a_cheater_that_withholds_its_reveals_passes_every_invariant() -> None:
    """Seed 19 draws `withhold-reveal`: the cheater commits and never reveals. Its jobs must
    not hold up the others, and each must end refunded (with the cheater slashed) within the
    demo's --timeout, long before the agent would give up on them by itself; a node killed
    mid-duty restarts and completes it; every invariant holds."""
    result = subprocess.run(
        [sys.executable, "-m", "verimesh.cli.main", "demo", "--json", "--nodes", "3", "--jobs", "4",
         "--cheaters", "1", "--no-dashboard", "--seed", "19", "--timeout", "300"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout must be one JSON object:\n{result.stdout}\n{result.stderr[-3000:]}"
    report = json.loads(lines[0])
    assert result.returncode == 0, json.dumps({k: v for k, v in report.items() if k != "balances"}, indent=1)
    for field in FIELDS:
        assert field in report
    assert report["ok"] is True and all(report["invariants"].values())
    assert report["jobs_total"] == 4 == report["jobs_verified"] + report["jobs_refunded"]
    assert report["honest_slashed"] == 0 and report["tokens_conserved"] is True
    behaviours = {c["behaviour"] for c in report["cheats"]}
    assert behaviours == {"withhold-reveal"}, f"seed 19 no longer draws withhold-reveal: {behaviours}"
    assert report["jobs_refunded"] == report["cheats_attempted"] == report["cheats_caught"] > 0
    assert report["cheats_unchecked"] == 0
    assert report["gas_per_job"] > 0 and report["wall_seconds"] > 0
    kill = report["node_kill"]
    assert kill is not None and kill["restarted"] and kill["duty_completed"], kill
    assert not report["parts_not_run"], report["parts_not_run"]
