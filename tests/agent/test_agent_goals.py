"""Goals as text, the demo's work mix, the agent's output checks and its search index."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from verimesh.agent.checks import OutputRejected, check_output
from verimesh.agent.index import DocumentIndex, IndexBuildError
from verimesh.agent.work import (
    EMBED_BATCH,
    VMT,
    GoalError,
    JobRecord,
    WorkItem,
    demo_work,
    parse_goal,
)

MODELS = {"embed_model": "minilm", "generate_model": "smollm2"}


def test_goals_become_work(tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(f"doc {i}" for i in range(EMBED_BATCH + 3)) + "\n\n")
    (gen,) = parse_goal("generate:Once upon a time", value=VMT, **MODELS)
    assert gen.task == "generate" and gen.model == "smollm2" and gen.input == "Once upon a time"
    batches = parse_goal(f"embed:{docs}", value=2 * VMT, **MODELS)
    assert [len(b.input) for b in batches] == [EMBED_BATCH, 3] and all(b.value == 2 * VMT for b in batches)
    *doc_items, query = parse_goal(f"search:who pays?|{docs}", value=VMT, **MODELS)
    assert len(doc_items) == 2 and query.input == "who pays?" and query.label == "query"


@pytest.mark.parametrize(
    ("goal", "message"),
    [
        ("generate", "is not KIND:ARGUMENT"),
        ("dance:now", "unknown goal kind 'dance'"),
        ("embed:/no/such/file", "no file /no/such/file"),
        ("search:no file given", "write search:QUERY|FILE"),
    ],
)
def test_bad_goals_say_what_to_write(goal: str, message: str) -> None:
    with pytest.raises(GoalError, match=message):
        parse_goal(goal, value=VMT, **MODELS)


def test_demo_work_mixes_tasks_and_values() -> None:
    work = demo_work(8, "0xe", "0xg", max_tokens=4)
    assert [w.task for w in work] == ["embed", "generate"] * 4
    assert [w.value for w in work].count(50 * VMT) == 2  # every 4th is worth more
    assert all(w.params == {"max_tokens": 4, "seed": i} for i, w in enumerate(work) if w.task == "generate")


def _unit(*xs: float) -> list[float]:
    n = math.sqrt(sum(x * x for x in xs))
    return [x / n for x in xs]


def test_output_checks() -> None:
    one = WorkItem(task="embed", model="m", input="a")
    batch = WorkItem(task="embed", model="m", input=["a", "b"])
    check_output(one, _unit(1, 2, 3))
    check_output(batch, [_unit(1, 0), _unit(0, 1)])
    with pytest.raises(OutputRejected, match="asked to embed 2 texts, got 1 vectors"):
        check_output(batch, [_unit(1, 0)])
    with pytest.raises(OutputRejected, match="not a unit vector"):
        check_output(one, [1.0, 1.0])
    with pytest.raises(OutputRejected, match="not text"):
        check_output(WorkItem(task="generate", model="m", input="q"), [1, 2])


def test_index_ranks_by_cosine_and_refuses_unverified_batches() -> None:
    docs = ["north", "east", "south"]
    record = JobRecord(job_id=4, label="docs-0", task="embed", model="m", value=VMT, state="verified", verified=True,
                       output=[_unit(0, 1), _unit(1, 0), _unit(0, -1)])  # fmt: skip
    index = DocumentIndex.from_records(docs, [record])
    assert [docs[i] for i, _ in index.search(_unit(0.1, 1), k=2)] == ["north", "east"]
    assert index.jobs == [4]
    with pytest.raises(ValueError, match="3 dimensions, the index 2"):
        index.search([1.0, 0.0, 0.0])
    failed = record.model_copy(update={"verified": False, "state": "refunded", "error": "deadline"})
    with pytest.raises(IndexBuildError, match="ended refunded: deadline"):
        DocumentIndex.from_records(docs, [failed])
    with pytest.raises(IndexBuildError, match="3 documents but 2 vectors"):
        DocumentIndex.from_records(docs, [record.model_copy(update={"output": [_unit(0, 1), _unit(1, 0)]})])
