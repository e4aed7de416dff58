"""What an arena asks and how answers are scored: the epoch's public pool, the challenges a
revealed seed draws from it, and exact integer scores.

The order is what makes the evaluation hard to game:

1. ``epoch_pool``: the inputs of epoch e are drawn from the held-out set by a public,
   deterministic pool seed (the arena address and e). Every provider answers ALL of them with
   its model and commits the Merkle root of its answers on chain (``Arena.commit_answers``).
2. ``Arena.reveal_seed`` fixes the challenge seed only after the answer window closed, from a
   block that did not exist while answers could still be committed.
3. ``draw_challenges``: the seed picks which pool items are scored (and, for retrieval, which
   query is matched against which candidates). A provider cannot answer just the scored
   items well, nor change an answer after seeing what is scored, nor copy another provider
   (the roots are committed before anything is opened).
4. ``score_*``: scores are integers computed from the exact runtime's integer outputs
   (embeddings are int32 vectors, so similarities are exact int64 dot products), so every
   honest validator gets the same number, bit for bit.

Held-out data: ``market/data/retrieval_pairs.tsv`` (48 query/paraphrase pairs) and
``market/data/qa_en.tsv`` (32 short-answer questions), written for this project.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

from verimesh.chain.contract import checksum

DATA = Path(__file__).parent / "data"
TaskName = Literal["embeddings", "generation"]
TASKS: tuple[TaskName, ...] = ("embeddings", "generation")
POINTS = 1000
"""Score of one perfect challenge (a rank-1 retrieval, a correct answer)."""
PARTICIPATION = 1
"""Every provider that committed answers gets this much: a score vector is never all zero."""


class ChallengeError(ValueError):
    """A pool, seed or answer set that cannot be scored; the message says what to fix."""


@dataclass(frozen=True)
class RetrievalPair:
    query: str
    target: str  # a paraphrase of the query


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]  # accepted answers


def _rows(name: str) -> list[list[str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


@cache
def retrieval_pairs() -> tuple[RetrievalPair, ...]:
    return tuple(RetrievalPair(q, t) for q, t in _rows("retrieval_pairs.tsv"))


@cache
def questions() -> tuple[Question, ...]:
    return tuple(Question(q, tuple(a.split("|"))) for q, a in _rows("qa_en.tsv"))


@dataclass(frozen=True)
class TaskSpec:
    """One arena task: how large the epoch's pool is and how many items the seed scores.

    Small on purpose: the exact runtime runs SmolLM2-135M at about 1.5 s per token here, so
    a generation provider answers a pool of 3 questions in about a minute.
    """

    name: TaskName
    pool_size: int
    challenges: int
    max_tokens: int = 8  # generation only
    prompt: str = "Answer in one or two words. {question}"

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ChallengeError(f"unknown arena task {self.name!r}; tasks are {', '.join(TASKS)}")
        population = len(retrieval_pairs()) if self.name == "embeddings" else len(questions())
        if not 1 <= self.challenges <= self.pool_size <= population:
            raise ChallengeError(
                f"{self.name}: need 1 <= challenges ({self.challenges}) <= pool size "
                f"({self.pool_size}) <= held-out items ({population})"
            )


DEFAULT_SPECS: dict[str, TaskSpec] = {
    "embeddings": TaskSpec("embeddings", pool_size=32, challenges=12),
    "generation": TaskSpec("generation", pool_size=3, challenges=2),
}


def task_spec(name: str, pool_size: int | None = None, challenges: int | None = None) -> TaskSpec:
    """The default spec of task ``name``, optionally resized."""
    if name not in DEFAULT_SPECS:
        raise ChallengeError(f"unknown arena task {name!r}; tasks are {', '.join(TASKS)}")
    base = DEFAULT_SPECS[name]
    return TaskSpec(
        base.name, pool_size if pool_size is not None else base.pool_size,
        challenges if challenges is not None else base.challenges, base.max_tokens, base.prompt,
    )


def draw(seed: bytes, label: str, population: int, k: int) -> list[int]:
    """``k`` distinct indices of ``range(population)``, a deterministic function of ``seed``:
    a partial Fisher-Yates shuffle driven by sha256(seed || label || i)."""
    if not 0 <= k <= population:
        raise ChallengeError(f"cannot draw {k} of {population} items")
    items = list(range(population))
    for i in range(k):
        word = hashlib.sha256(seed + label.encode() + i.to_bytes(8, "big")).digest()
        j = i + int.from_bytes(word, "big") % (population - i)
        items[i], items[j] = items[j], items[i]
    return items[:k]


def pool_seed(arena: str, epoch: int) -> bytes:
    """Public seed of the epoch's pool: anyone knows it from the start of the epoch."""
    return hashlib.sha256(b"verimesh-arena-pool" + bytes.fromhex(checksum(arena)[2:]) + epoch.to_bytes(8, "big")).digest()


@dataclass(frozen=True)
class Pool:
    """The inputs every provider must answer in one epoch, in order (answer i = input i)."""

    spec: TaskSpec
    items: tuple[int, ...]  # indices into the held-out set

    @property
    def answer_count(self) -> int:
        """Leaves of an answer sheet: two texts per retrieval pair, one answer per question."""
        return 2 * len(self.items) if self.spec.name == "embeddings" else len(self.items)

    @property
    def inputs(self) -> list[str]:
        """Embeddings: the queries, then their paraphrases. Generation: the prompts."""
        if self.spec.name == "embeddings":
            pairs = retrieval_pairs()
            return [pairs[i].query for i in self.items] + [pairs[i].target for i in self.items]
        qs = questions()
        return [self.spec.prompt.format(question=qs[i].question) for i in self.items]


def epoch_pool(spec: TaskSpec, arena: str, epoch: int) -> Pool:
    population = len(retrieval_pairs()) if spec.name == "embeddings" else len(questions())
    return Pool(spec, tuple(draw(pool_seed(arena, epoch), "pool", population, spec.pool_size)))


@dataclass(frozen=True)
class Challenge:
    """One scored item. Retrieval: pool query ``item`` must find its paraphrase (answer
    ``P + item``) among ``candidates``, every other text of the pool (all paraphrases and the
    other queries: a bag of words confuses those). Generation: pool question ``item``."""

    item: int
    candidates: tuple[int, ...] = ()  # answer indices


def draw_challenges(pool: Pool, seed: bytes) -> list[Challenge]:
    """The challenges of an epoch: a function of the pool and the revealed seed only."""
    if len(seed) != 32 or seed == bytes(32):
        raise ChallengeError("the challenge seed must be 32 bytes and revealed (not zero); call reveal_seed first")
    picked = draw(seed, "challenges", pool.spec.pool_size, pool.spec.challenges)
    if pool.spec.name == "generation":
        return [Challenge(i) for i in picked]
    return [Challenge(i, tuple(j for j in range(pool.answer_count) if j != i)) for i in picked]


def opened_items(pool: Pool, challenges: list[Challenge]) -> list[int]:
    """Answer indices a provider must open (with Merkle proofs) to be scored, sorted."""
    needed = {c.item for c in challenges} | {j for c in challenges for j in c.candidates}
    return sorted(needed)


# -- exact scoring ----------------------------------------------------------------------


def retrieval_rank(query: np.ndarray, targets: np.ndarray, right: int) -> int:
    """1-based rank of ``targets[right]`` by exact int64 dot product with ``query``; a tie
    goes to the lower index, so the rank is one number for everyone."""
    sims = targets.astype(np.int64) @ query.astype(np.int64)
    better = int((sims > sims[right]).sum()) + int((sims[:right] == sims[right]).sum())
    return better + 1


def score_retrieval(embeddings: dict[int, np.ndarray], pool: Pool, challenges: list[Challenge]) -> int:
    """Sum of POINTS // rank (reciprocal rank in integers) over the challenges.

    ``embeddings[i]`` is the int32 vector of pool input i (queries 0..P-1, paraphrases P..2P-1).
    """
    n, total = pool.spec.pool_size, 0
    for c in challenges:
        try:
            candidates = np.stack([embeddings[j] for j in c.candidates])
            query = embeddings[c.item]
        except KeyError as exc:
            raise ChallengeError(f"answer {exc.args[0]} was not opened; open every item of opened_items()") from None
        total += POINTS // retrieval_rank(query, candidates, c.candidates.index(n + c.item))
    return total


def _words(text: str) -> str:
    return " " + " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split()) + " "


def answer_is_right(text: str, accepted: tuple[str, ...]) -> bool:
    """An accepted answer appears in ``text`` as whole words, ignoring case and punctuation."""
    said = _words(text)
    return any(_words(a) in said for a in accepted)


def score_answers(texts: dict[int, str], pool: Pool, challenges: list[Challenge]) -> int:
    """POINTS per right answer over the challenges (``texts[i]`` answers pool question i)."""
    qs, total = questions(), 0
    for c in challenges:
        if c.item not in texts:
            raise ChallengeError(f"answer {c.item} was not opened; open every item of opened_items()")
        total += POINTS * answer_is_right(texts[c.item], qs[pool.items[c.item]].answers)
    return total
