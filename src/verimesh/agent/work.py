"""What an agent buys (``WorkItem``), what came of it (``JobRecord``), and goals as text.

A ``WorkItem`` is one job the agent wants done, with the value at risk that decides its
verification mode (``agent.policy``). ``JobRecord`` is the outcome an agent (or the demo)
reports per job. ``parse_goal`` turns ``verimesh agent run --goal`` strings into work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verimesh.client.sdk import VerificationMode

VMT = 10**18
Task = Literal["embed", "generate"]
RecordState = Literal["verified", "refunded", "disputed", "failed", "unfunded", "skipped"]
# Texts per embedding job (one job, one escrow, one trace for the whole batch).
EMBED_BATCH = 16


class WorkItem(BaseModel):
    """One job to buy. ``model`` is a model name in the local store or a 0x root."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    task: Task
    model: str
    input: str | list[str]
    params: dict[str, Any] = Field(default_factory=dict)
    value: int = Field(default=VMT, ge=0, description="what a wrong result would cost the agent (base units)")
    mode: VerificationMode | None = Field(default=None, description="overrides the agent's choice")
    label: str = ""


class JobRecord(BaseModel):
    """What happened to one ``WorkItem``."""

    job_id: int | None = None
    label: str = ""
    task: str
    model: str
    mode: str = ""
    mode_reason: str = ""
    value: int
    price: int = 0
    escrow: int = 0
    state: RecordState = "failed"
    chain_state: str = ""
    verified: bool = False
    refunded: int = 0
    output_root: str | None = None
    providers: list[str] = Field(default_factory=list)
    post_tx: str | None = None
    seconds: float = 0.0
    error: str | None = None
    output: Any = Field(default=None, exclude=True, description="the verified output (not serialized)")

    def line(self) -> str:
        job = f"job {self.job_id}" if self.job_id is not None else "no job"
        text = f"{job:<8} {self.task:<8} {self.mode:<14} {self.state:<9} price {self.price / VMT:g} VMT"
        if self.refunded:
            text += f", refunded {self.refunded / VMT:g}"
        if self.error:
            text += f" ({self.error[:160]})"
        return text


def demo_work(
    jobs: int,
    embed_model: str,
    generate_model: str,
    *,
    max_tokens: int = 8,
    seed: int = 0,
    high_value_every: int = 4,
) -> list[WorkItem]:
    """``jobs`` items alternating MiniLM embeddings and generation. Embeddings are worth little
    (1 VMT: audit), every ``high_value_every``-th item is worth 50 VMT (replicate)."""
    sentences = [
        "verimesh sells idle compute", "a node earns while its owner sleeps",
        "results are checked bit for bit", "cheats lose their stake",
        "agents pay machines per request", "the chain holds the money",
    ]  # fmt: skip
    prompts = ["Q: What is a market?\nA:", "Once upon a time", "ROMEO:", "The best way to verify is"]
    out = []
    for i in range(jobs):
        value = 50 * VMT if high_value_every and i % high_value_every == high_value_every - 1 else VMT
        if i % 2 == 0:
            out.append(WorkItem(task="embed", model=embed_model, input=sentences[i // 2 % len(sentences)],
                                value=value, label=f"embed-{i}"))  # fmt: skip
        else:
            out.append(WorkItem(task="generate", model=generate_model, input=prompts[i // 2 % len(prompts)],
                                params={"max_tokens": max_tokens, "seed": seed + i}, value=value,
                                label=f"generate-{i}"))  # fmt: skip
    return out


class GoalError(ValueError):
    """A ``--goal`` the agent cannot read."""


def parse_goal(goal: str, *, embed_model: str, generate_model: str, value: int, max_tokens: int = 16) -> list[WorkItem]:
    """``embed:PATH`` (every non-empty line of a text file, in batches), ``generate:PROMPT``,
    or ``search:QUERY|PATH`` (embed the file's lines and the query; the agent ranks locally)."""
    kind, sep, arg = goal.partition(":")
    if not sep or not arg.strip():
        raise GoalError(f"goal {goal!r} is not KIND:ARGUMENT; use embed:FILE, generate:PROMPT or search:QUERY|FILE")
    kind = kind.strip().lower()
    if kind == "generate":
        return [WorkItem(task="generate", model=generate_model, input=arg, value=value,
                         params={"max_tokens": max_tokens, "seed": 0}, label="generate")]  # fmt: skip
    if kind == "embed":
        return _embed_file(Path(arg.strip()), embed_model, value, "embed")
    if kind == "search":
        query, bar, path = arg.rpartition("|")
        if not bar or not query.strip():
            raise GoalError(f"goal {goal!r}: write search:QUERY|FILE (the documents, one per line)")
        items = _embed_file(Path(path.strip()), embed_model, value, "docs")
        return [*items, WorkItem(task="embed", model=embed_model, input=query.strip(), value=value, label="query")]
    raise GoalError(f"unknown goal kind {kind!r}; use embed:FILE, generate:PROMPT or search:QUERY|FILE")


def _embed_file(path: Path, model: str, value: int, label: str) -> list[WorkItem]:
    if not path.is_file():
        raise GoalError(f"no file {path}: the goal names a text file with one document per line")
    lines = read_documents(path)
    if not lines:
        raise GoalError(f"{path} has no non-empty lines to embed")
    return embedding_work(lines, model, value, label)


def read_documents(path: Path) -> list[str]:
    """A document set: one document per non-empty line of a text file."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def embedding_work(docs: list[str], model: str, value: int, label: str = "docs") -> list[WorkItem]:
    """One embedding job per batch of ``EMBED_BATCH`` documents."""
    return [
        WorkItem(task="embed", model=model, input=docs[i : i + EMBED_BATCH], value=value, label=f"{label}-{i // EMBED_BATCH}")
        for i in range(0, len(docs), EMBED_BATCH)
    ]
