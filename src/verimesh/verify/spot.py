"""Spot audits: check a generation job from its claimed tokens instead of re-running it.

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


class SpotUnavailable(ValueError):
    """The job cannot be spot-checked as claimed (not a generation, malformed claim): the
    auditor re-runs it in full instead."""


@dataclass(frozen=True)
class SpotResult:
    """What a spot audit found: ``mismatch`` is None when every check passed."""

    steps: tuple[int, ...]
    mismatch: str | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


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
        raise SpotUnavailable(f"{type(model).__name__} jobs have one step: they are audited in full")
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
