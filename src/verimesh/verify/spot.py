"""Spot audits: check a generation from its claimed tokens, or an embedding batch from a
sample of its rows, instead of re-running the job.

A full audit re-executes the whole job, so audit(p) costs p x ~1 job, and the issue's two
targets (<= 5 % overhead, >= 99.9 % detection within 70 cheats, i.e. p >= 9.4 %) cannot
both hold (docs/verification.md, "Honest-case overhead"). A generation job's trace has one
step per token, and the provider commits every step root under its trace root. Given the
claimed tokens, ONE batched untraced forward over the prompt and the tokens
(``LlamaModel.replay``) yields, bit for bit, the logits every step computes from the
claimed tokens before it and the KV cache every step reads. So a spot audit checks:

- **every token**: each step's choice from those logits is the claimed token. The answer
  is then exactly the honest generation (step 0 from the prompt, each next one from the
  verified tokens before it), with certainty;
- **the trace** at some steps: re-run traced on the cache cut to that step, the step root
  must be the provider's. Always the last step: its leaves commit to the whole cache it
  reads (every layer's keys and values at every earlier position), so any lie that reached
  the cache in any earlier step shows there; plus ``extra`` steps drawn without
  replacement from the others with weight 1/2 x (1 / their count) + 1/2 x (tokens the step
  reads / all they read): a step's cost is a + b x tokens for some a, b >= 0, so its
  weight is at least half its share of the job's cost, whatever the machine;
- the output blob against the revealed output root, the step roots against the revealed
  trace root, one step per token, the stop-token and length rules.

So every cheat that changes the answer, the cache or every step (another or a cut-down
model, lower precision, random or wrong output, a fabricated trace) is caught with
certainty. What is left is a lie that changes neither the answer nor the cache (a trace
leaf whose error later rounding absorbs; the last layer's tail after its keys and values,
approximated without changing the token): it harms no requester, saves at most that tail's
work, and is caught when its step is drawn. Anything the spot audit does not
establish falls back to the full re-execution: the validator re-runs the whole job
(``node.validator``), reports its roots, and the dispute game proceeds exactly as after a
full audit. Two checked steps and the batched forward cost 0.2-0.35 of a 16-token job
(bench-verify.md).

The auditor's randomness is its own (``random.SystemRandom`` in the validator), drawn after
the provider revealed: the provider cannot know which steps will be checked.

**Embedding batches** (``spot_check_embeddings``) have one step, but a text's embedding does
not depend on the other texts of its batch (``BertModel.embed``), so the auditor re-embeds
a sample of the rows, max(2, 1/8 of them), on the untraced fast path and compares them
byte for byte (0.13-0.25 of the job, bench-verify.md). A cheat that changes the model
(another or a cut-down one, lower precision) changes every row and is caught with
certainty; one that skips a share q of the rows is caught with probability >= q per audit,
which is what it saves, so p (S + R) >= price deters it as it deters skipping the whole
job. The sample cannot see the trace: a provider that embeds honestly but commits a
made-up trace root saves its tracing (6-21 % of a MiniLM batch's CPU,
bench-models-encoder.md). So one embedding audit in four (``EMBED_FULL_SHARE``, drawn by
the auditor) is a full re-run, which compares the trace root: faking it then costs
p/4 (S + R) >= price/4 in expectation, more than it saves.
Batches of fewer than ``MIN_SPOT_ROWS`` texts are audited in full.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..crypto.merkle import blob_root, merkle_root

# Below this many steps a spot check saves little over a full re-run (the prefill of the
# cache is paid anyway): such jobs are audited in full.
MIN_SPOT_STEPS = 8
# Embedding batches of fewer texts are audited in full (a forward's per-op cost is paid
# whatever the rows); larger ones re-embed max(MIN_ROWS_CHECKED, rows / ROW_SAMPLE_DIVISOR).
MIN_SPOT_ROWS = 8
MIN_ROWS_CHECKED = 2
ROW_SAMPLE_DIVISOR = 8
# Share of embedding audits re-run in full: what a made-up trace root risks (module doc).
EMBED_FULL_SHARE = 0.25


class SpotUnavailable(ValueError):
    """The job cannot be spot-checked as claimed (not a generation, malformed claim): the
    auditor re-runs it in full instead."""


@dataclass(frozen=True)
class SpotResult:
    """What a spot audit found: ``mismatch`` is None when every check passed. ``steps`` are
    the checked steps of a generation, or the checked rows of an embedding batch (``unit``)."""

    steps: tuple[int, ...]
    mismatch: str | None
    unit: str = "step"

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    @property
    def label(self) -> str:
        """"steps 3, 15" or "rows 2, 40": what was checked, for logs and the journal."""
        return f"{self.unit}s " + ", ".join(str(s) for s in self.steps)


def step_weights(prompt_tokens: int, n_steps: int) -> list[float]:
    """Sampling weight of steps 0 .. n_steps - 2 (the last step is always checked): half
    uniform, half by the tokens each reads (step 0 reads the prompt, the others one)."""
    others = n_steps - 1
    if others < 1:
        return []
    reads = [prompt_tokens] + [1] * (others - 1)
    total = sum(reads)
    return [0.5 / others + 0.5 * r / total for r in reads]


def choose_steps(prompt_tokens: int, n_steps: int, extra: int, rng: random.Random) -> tuple[int, ...]:
    """The last step plus ``extra`` others drawn by ``step_weights`` without replacement."""
    if n_steps < 1:
        raise SpotUnavailable("a generation has at least one step")
    if extra < 0:
        raise ValueError(f"extra steps must be >= 0, got {extra}")
    weights = step_weights(prompt_tokens, n_steps)
    pool = list(range(n_steps - 1))
    chosen = {n_steps - 1}
    while pool and len(chosen) < extra + 1:
        pick = rng.choices(range(len(pool)), weights=[weights[s] for s in pool])[0]
        chosen.add(pool.pop(pick))
    return tuple(sorted(chosen))


def claimed_tokens(output_bytes: bytes) -> list[int]:
    """The generated token ids of an output blob (canonical bytes of a 1-D int64 tensor)."""
    from ..runtime.tensor import TensorError, from_canonical_bytes

    try:
        tensor = from_canonical_bytes(output_bytes)
    except TensorError as exc:
        raise SpotUnavailable(f"the output blob is not a tensor: {exc}") from None
    if tensor.dtype != np.int64 or tensor.ndim != 1:
        raise SpotUnavailable(f"the output is a {tensor.dtype} tensor of shape {tensor.shape}, not generated tokens")
    return [int(t) for t in tensor]


def spot_check(
    model: Any,
    text: str,
    params: dict[str, Any],
    output_bytes: bytes,
    output_root: bytes,
    trace_root: bytes,
    step_roots: list[bytes],
    rng: random.Random,
    extra: int = 1,
    min_steps: int = MIN_SPOT_STEPS,
) -> SpotResult:
    """Spot-check a claimed generation: ``model`` is the job's ``LlamaModel``, ``text`` and
    ``params`` the job's input and params, the rest the provider's claim (its output blob,
    its revealed output and trace roots, and the step roots under the trace root).

    Raises ``SpotUnavailable`` when the claim cannot be checked this way; returns a
    ``SpotResult`` whose ``mismatch`` says what differs from the honest computation."""
    from ..models.llama import LlamaModel
    from ..models.llama_task import generation_args

    if not isinstance(model, LlamaModel):
        raise SpotUnavailable(f"{type(model).__name__} jobs are not generations")
    try:
        max_tokens, seed, chat = generation_args(params)
    except ValueError as exc:
        raise SpotUnavailable(str(exc)) from None
    if blob_root(output_bytes) != output_root:
        raise SpotUnavailable("the output blob does not hash to the revealed output root")
    tokens = claimed_tokens(output_bytes)
    if len(step_roots) != len(tokens):
        raise SpotUnavailable(f"{len(step_roots)} step roots for {len(tokens)} generated tokens")
    if merkle_root(step_roots) != trace_root:
        raise SpotUnavailable("the step roots do not hash to the revealed trace root")
    if len(tokens) < min_steps:
        raise SpotUnavailable(f"{len(tokens)} steps: below {min_steps}, a full re-run costs about the same")
    prompt = model.prompt_ids(text, chat)
    steps = choose_steps(len(prompt), len(tokens), extra, rng)
    stop = model.stop_tokens()
    if len(tokens) > max_tokens:
        return SpotResult(steps, f"{len(tokens)} tokens generated, the job allows {max_tokens}")
    if any(t in stop for t in tokens[:-1]):
        return SpotResult(steps, "the output goes on after a stop token")
    if len(tokens) < max_tokens and tokens[-1] not in stop:
        return SpotResult(steps, f"the output stops after {len(tokens)} of {max_tokens} tokens without a stop token")
    try:
        replay = model.replay(prompt, tokens, list(steps), seed)
    except ValueError as exc:  # e.g. the prompt does not fit the context: the full run decides
        raise SpotUnavailable(f"cannot replay the steps: {exc}") from None
    for s, (token, claimed) in enumerate(zip(replay.chosen, tokens, strict=True)):
        if token != claimed:
            return SpotResult(steps, f"step {s} chooses token {token} after the claimed tokens, the output claims {claimed}")
    for s in steps:
        root, token = replay.steps[s]
        if root != step_roots[s]:
            return SpotResult(steps, f"step {s}'s root differs from the provider's")
        if token != tokens[s]:  # chosen[s] said otherwise: the replay disagrees with itself
            raise SpotUnavailable(f"step {s}: the batched and the traced re-run choose different tokens")
    return SpotResult(steps, None)


def spot_audit(
    model: Any,
    text: str,
    params: dict[str, Any],
    output_bytes: bytes,
    output_root: bytes,
    trace_root: bytes,
    step_roots: list[bytes],
    rng: random.Random,
    extra: int = 1,
) -> SpotResult:
    """Spot-check a claim of any job the runtime can spot-check: a generation
    (``spot_check``) or an embedding batch (``spot_check_embeddings``). Raises
    ``SpotUnavailable`` for anything else: the auditor then re-runs the job in full."""
    from ..models.minilm import BertModel

    if isinstance(model, BertModel):
        return spot_check_embeddings(model, text, params, output_bytes, output_root, trace_root, step_roots, rng)
    return spot_check(model, text, params, output_bytes, output_root, trace_root, step_roots, rng, extra=extra)


def rows_to_check(rows: int) -> int:
    """How many rows of an embedding batch a spot audit re-embeds."""
    return min(rows, max(MIN_ROWS_CHECKED, -(-rows // ROW_SAMPLE_DIVISOR)))


def spot_check_embeddings(
    model: Any,
    text: str,
    params: dict[str, Any],
    output_bytes: bytes,
    output_root: bytes,
    trace_root: bytes,
    step_roots: list[bytes],
    rng: random.Random,
    min_rows: int = MIN_SPOT_ROWS,
    full_share: float | None = None,
) -> SpotResult:
    """Spot-check a claimed embedding batch: re-embed ``rows_to_check`` rows drawn by ``rng``
    and compare them with the claimed rows byte for byte (module doc). ``model`` is the
    job's ``BertModel``, ``text`` and ``params`` the job's input and params, the rest the
    provider's claim. Raises ``SpotUnavailable`` when the batch is too small, the claim does
    not hash to its revealed roots, or ``rng`` draws this audit for a full re-run (with
    probability ``full_share``, default ``EMBED_FULL_SHARE``)."""
    from ..models.minilm import BertModel
    from ..runtime import ExecutionContext
    from ..runtime.tensor import TensorError, from_canonical_bytes

    if not isinstance(model, BertModel):
        raise SpotUnavailable(f"{type(model).__name__} jobs are not embedding batches")
    texts = params.get("texts") or [text]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise SpotUnavailable("the job's texts are not a list of strings")
    if len(texts) < min_rows:
        raise SpotUnavailable(f"{len(texts)} texts: below {min_rows}, a full re-run costs about the same")
    if blob_root(output_bytes) != output_root:
        raise SpotUnavailable("the output blob does not hash to the revealed output root")
    if merkle_root(step_roots) != trace_root:
        raise SpotUnavailable("the step roots do not hash to the revealed trace root")
    full_share = EMBED_FULL_SHARE if full_share is None else full_share
    if not 0 <= full_share <= 1:
        raise ValueError(f"the full-audit share must be in [0, 1], got {full_share}")
    if rng.random() < full_share:
        raise SpotUnavailable(f"drawn for a full re-run ({full_share:.0%} of embedding audits check the trace root)")
    rows = tuple(sorted(rng.sample(range(len(texts)), rows_to_check(len(texts)))))
    try:
        claimed = from_canonical_bytes(output_bytes)
    except TensorError as exc:
        return SpotResult(rows, f"the output blob is not a tensor: {exc}", "row")
    expected_shape = (len(texts), model.hidden)
    if claimed.dtype != np.int32 or claimed.shape != expected_shape:
        return SpotResult(rows, f"the output is a {claimed.dtype} tensor of shape {claimed.shape}, "
                                f"not int32 embeddings of shape {expected_shape}", "row")  # fmt: skip
    try:
        ours = model.embed([texts[r] for r in rows], ExecutionContext(trace=False))
    except ValueError as exc:  # e.g. a text too long for the model: the full run decides
        raise SpotUnavailable(f"cannot re-embed the rows: {exc}") from None
    for row, mine in zip(rows, ours, strict=True):
        if not np.array_equal(claimed[row], mine):
            return SpotResult(rows, f"row {row}'s embedding differs from the provider's", "row")
    return SpotResult(rows, None, "row")
