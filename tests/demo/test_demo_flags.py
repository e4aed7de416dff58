"""Bad flags stop `verimesh demo` before anything starts, with a message naming the fix;
the job plan and the cheat judgement behave as the report says they do."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from verimesh.chain import JobState
from verimesh.cli.main import app
from verimesh.demo.config import ZOO, DemoConfig, DemoConfigError
from verimesh.demo.ledger import JobRecord
from verimesh.demo.plan import generation_count, plan_jobs
from verimesh.demo.report import judge_cheats


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--cheaters", "3", "--nodes", "3"], "cheaters must be fewer than half"),
        (["--cheaters", "5"], "cheaters must be fewer than half"),
        (["--cheaters", "-1"], "--cheaters must be >= 0"),
        (["--nodes", "1", "--cheaters", "0"], "--nodes must be at least 2"),
        (["--nodes", "9"], "use --nodes 6 or fewer"),
        (["--jobs", "0"], "--jobs must be between 1 and"),
        (["--timeout", "0"], "--timeout must be > 0"),
    ],
)
def test_bad_flags_fail_fast_with_the_fix(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--no-dashboard", *args])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())


def test_cheaters_draw_distinct_behaviours_from_the_zoo() -> None:
    cheats = DemoConfig(nodes=6, cheaters=2, validators=2, seed=7).draw_cheats()
    assert len(cheats) == 2 and len(set(cheats)) == 2 and set(cheats) <= set(ZOO)
    assert cheats == DemoConfig(nodes=6, cheaters=2, validators=2, seed=7).draw_cheats()
    with pytest.raises(DemoConfigError):
        DemoConfig(nodes=4, cheaters=2).check()


@pytest.mark.parametrize("jobs", [1, 2, 4, 20, 37])
def test_plan_mixes_embeddings_and_generations(jobs: int) -> None:
    orders = plan_jobs(jobs)
    assert len(orders) == jobs
    generations = [o for o in orders if o.task == "generate"]
    assert len(generations) == generation_count(jobs)
    assert all(o.replicas == 2 and o.params["max_tokens"] > 0 for o in generations)
    assert all(o.task == "embed" and o.replicas is None for o in orders if o not in generations)
    if jobs >= 3:
        assert generations, "a demo of 3+ jobs shows generation too"


def _job(job_id: int, providers: list[str], **kw) -> JobRecord:
    return JobRecord(job_id=job_id, requester="0xR", model_root="0x00", mode=1, mode_param=2,
                     price=1, escrow=2, providers=providers, **kw)  # fmt: skip


def test_judge_cheats_compares_with_honest_results_and_slashes() -> None:
    good, bad = b"g" * 64, b"b" * 64
    adversaries = {"0xC": ("node3", "wrong-output")}
    jobs = [
        # replica mismatch, cheater slashed: attempted and caught
        _job(1, ["0xA", "0xC"], reveals={"0xA": good, "0xC": bad}, slashed={"0xC": 10}, state=JobState.FINALIZED),
        # audit report by an honest validator disagrees; cheater not slashed: not caught
        _job(2, ["0xC"], reveals={"0xC": bad}, audit=("0xV", good, False), state=JobState.AUDITING),
        # committed, never revealed, slashed at the deadline
        _job(3, ["0xA", "0xC"], reveals={"0xA": good}, committed={"0xA", "0xC"}, slashed={"0xC": 10}),
        # nobody compared its result: unchecked
        _job(4, ["0xC"], reveals={"0xC": bad}),
        # an honest-looking result (matches the replica): no cheat
        _job(5, ["0xA", "0xC"], reveals={"0xA": good, "0xC": good}),
        # a job without the cheater is not judged
        _job(6, ["0xA"], reveals={"0xA": good}),
    ]
    records = {r.job_id: r for r in judge_cheats(jobs, adversaries)}
    assert sorted(records) == [1, 2, 3, 4, 5]
    assert (records[1].outcome, records[1].caught) == ("wrong result", True)
    assert (records[2].outcome, records[2].caught) == ("wrong result", False)
    assert (records[3].outcome, records[3].caught) == ("withheld reveal", True)
    assert records[4].outcome == "unchecked"
    assert (records[5].outcome, records[5].caught) == ("honest result", False)
    assert all(r.party == "node3" and r.behaviour == "wrong-output" for r in records.values())
