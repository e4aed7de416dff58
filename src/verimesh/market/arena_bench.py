"""Measure arena contestants on their whole held-out set, with the arenas' own exact scoring:
the figures of docs/bench-arena.md.

    python -m verimesh.market.arena_bench embeddings minilm minilm-l2 minilm-l1
    python -m verimesh.market.arena_bench generation smollm2 tiny-shakespeare

Embeddings: every query must find its paraphrase among all other 95 texts (the retrieval
challenge of an epoch, on the full set): recall@1 and mean reciprocal rank. Generation:
every question, greedy, `max_tokens` 8: accuracy and seconds per answer.
"""

from __future__ import annotations

import json
import sys
import time

from verimesh.market.answers import compute_answers, decode_embedding
from verimesh.market.arena_models import load_arena_model, task_of
from verimesh.market.challenges import (
    POINTS,
    Challenge,
    Pool,
    answer_is_right,
    questions,
    retrieval_pairs,
    score_retrieval,
    task_spec,
)


def bench_model(name: str) -> dict:
    task = task_of(name)
    model = load_arena_model(name)
    if task == "embeddings":
        n = len(retrieval_pairs())
        pool = Pool(task_spec("embeddings", pool_size=n, challenges=n), tuple(range(n)))
        start = time.perf_counter()
        answers = compute_answers(model, pool.spec, pool.inputs)
        seconds = time.perf_counter() - start
        vectors = {i: decode_embedding(a) for i, a in enumerate(answers)}
        challenges = [Challenge(i, tuple(j for j in range(2 * n) if j != i)) for i in range(n)]
        rr = [score_retrieval(vectors, pool, [c]) for c in challenges]
        return {
            "model": name, "task": task, "model_root": model.root_hex, "items": n,
            "recall_at_1": round(sum(r == POINTS for r in rr) / n, 4),
            "mrr": round(sum(rr) / (n * POINTS), 4), "seconds_for_96_texts": round(seconds, 2),
        }  # fmt: skip
    qs = questions()
    spec = task_spec("generation")
    right, start, answers = 0, time.perf_counter(), []
    for q in qs:
        (text,) = compute_answers(model, spec, [spec.prompt.format(question=q.question)])
        answers.append(text.decode())
        right += answer_is_right(answers[-1], q.answers)
    seconds = time.perf_counter() - start
    return {
        "model": name, "task": task, "model_root": model.root_hex, "items": len(qs),
        "accuracy": round(right / len(qs), 4), "seconds_per_answer": round(seconds / len(qs), 2),
        "answers": answers,
    }  # fmt: skip


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit("usage: python -m verimesh.market.arena_bench TASK MODEL [MODEL ...]")
    task, names = argv[1], argv[2:]
    for name in names:
        if task_of(name) != task:
            raise SystemExit(f"{name} competes in the {task_of(name)} arena, not in {task}")
        print(json.dumps(bench_model(name)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
