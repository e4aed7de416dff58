"""A semantic search index whose embeddings the agent bought from the network.

The documents are embedded by MiniLM jobs (batches of ``EMBED_BATCH`` texts, one job each),
each verified like any other job (revealed root, mode by value). A query is one more
embedding job; ranking is a dot product of unit vectors, done by the agent itself (it is
cheap and needs no trust). The index remembers which job produced each vector, so every
answer can point at the chain records it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from verimesh.agent.work import JobRecord


class IndexBuildError(RuntimeError):
    """The index could not be built (a batch's job did not verify); the message says which."""


@dataclass
class DocumentIndex:
    docs: list[str]
    vectors: np.ndarray  # (n_docs, dim) float64 unit vectors
    jobs: list[int] = field(default_factory=list)  # job id per batch

    @classmethod
    def from_records(cls, docs: list[str], records: list[JobRecord]) -> DocumentIndex:
        """Stack the verified vectors of the batch jobs (in order) that embedded ``docs``."""
        vectors: list[list[float]] = []
        for record in records:
            if not record.verified:
                raise IndexBuildError(f"embedding batch {record.label} ended {record.state}: {record.error}")
            vectors.extend(record.output if isinstance(record.output[0], list) else [record.output])
        if len(vectors) != len(docs):
            raise IndexBuildError(f"{len(docs)} documents but {len(vectors)} vectors came back")
        return cls(docs, np.asarray(vectors, dtype=np.float64), [r.job_id for r in records if r.job_id is not None])

    def search(self, query: list[float], k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` best (document index, cosine score), best first."""
        q = np.asarray(query, dtype=np.float64)
        if q.shape != (self.vectors.shape[1],):
            raise ValueError(f"query vector has {q.size} dimensions, the index {self.vectors.shape[1]}")
        scores = self.vectors @ q
        order = np.argsort(-scores, kind="stable")[: max(1, k)]
        return [(int(i), float(scores[i])) for i in order]
