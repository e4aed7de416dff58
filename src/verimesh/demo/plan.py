"""The demo's shopping list: which real AI jobs the requester agent buys, and what each
result is worth to it (its value at risk, from which the agent picks the verification mode).

A mix sized for 2 cores: mostly MiniLM sentence embeddings (about a second each), and a few
SmolLM2 generations (seconds per token on a busy 2-core machine, so short completions of
plain prompts, no chat template). With the devnet's terms (price 1 VMT, bond 10 VMT) the
agent's rule (``agent.policy.choose_mode``) needs an audit probability of (price + value) /
(bond + price): an embedding worth 10 VMT gets ``audit(1)``, a validator re-runs every one
(the network has cheaters and no track record: anything less lets some cheats through, see
the detection curve in docs/verification.md). Generations are the expensive results, so the
plan asks for two replicas outright (``replicas=2`` overrides the agent's choice): the
providers' commit-reveal and a replica-mismatch dispute are then part of every demo.
"""

from __future__ import annotations

from pydantic import BaseModel

EMBED_MODEL = "minilm"
GENERATE_MODEL = "smollm2"
GENERATE_TOKENS = 4
EMBED_VALUE_VMT = 10.0
GENERATE_VALUE_VMT = 50.0
GENERATE_REPLICAS = 2

SENTENCES = [
    "A man is eating food.",
    "A woman is playing the violin.",
    "The new movie is awesome.",
    "Idle laptops can sell their spare compute.",
    "Two dogs are running through a field.",
    "The stock market fell sharply today.",
    "A cat sleeps on a warm windowsill.",
    "Verification makes trust unnecessary.",
    "Someone is slicing an onion in the kitchen.",
    "The train to Lyon leaves at noon.",
    "Solar panels cover the school roof.",
    "He forgot his umbrella on the bus.",
    "A child is building a sandcastle.",
    "Fresh bread smells wonderful in the morning.",
    "The committee signed the verdict.",
    "Rain is expected over the weekend.",
]
PROMPTS = [
    "The capital of France is",
    "Water boils at a temperature of",
    "The largest planet in the solar system is",
    "A good name for a friendly robot is",
]


class JobOrder(BaseModel):
    """One job the requester will buy (crosses into the requester process as JSON)."""

    model: str
    task: str
    input: str | list[str]
    params: dict = {}
    value: float  # VMT a wrong result would cost the requester: the agent picks the mode from it
    replicas: int | None = None  # replicate(k) regardless of the value


def generation_count(jobs: int) -> int:
    """About one job in ten is a generation (at least one when there are 3+ jobs): on a
    busy 2-core machine one SmolLM2 completion costs as much CPU as 20 embeddings, and a
    replicated one twice that (a dispute over it, more)."""
    return 0 if jobs < 3 else max(1, min(len(PROMPTS), jobs // 10))


def plan_jobs(jobs: int) -> list[JobOrder]:
    """``jobs`` orders: generations spread through the list, embeddings around them (every
    fourth embedding a batch of two texts, embedded in one job)."""
    n_generate = generation_count(jobs)
    orders: list[JobOrder] = []
    spots = {round((i + 0.5) * jobs / n_generate) for i in range(n_generate)} if n_generate else set()
    g = e = 0
    for slot in range(jobs):
        if slot in spots and g < n_generate:
            orders.append(JobOrder(
                model=GENERATE_MODEL, task="generate", input=PROMPTS[g % len(PROMPTS)],
                params={"max_tokens": GENERATE_TOKENS, "chat": False}, value=GENERATE_VALUE_VMT,
                replicas=GENERATE_REPLICAS,
            ))  # fmt: skip
            g += 1
            continue
        text = SENTENCES[e % len(SENTENCES)]
        text_input: str | list[str] = [text, SENTENCES[(e + 1) % len(SENTENCES)]] if e % 4 == 3 else text
        orders.append(JobOrder(model=EMBED_MODEL, task="embed", input=text_input, value=EMBED_VALUE_VMT))
        e += 1
    return orders
