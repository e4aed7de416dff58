"""Where model families plug in: architectures (by the bundle's ``architecture`` field) and
bundled models (real models this project can import by name, offline).

Both tables map a key to ``"module:attribute"`` and import lazily, so ``verimesh models list``
does not pay for importing every model family (or torch) and a family can live in its own
module. Adding a family = one line in ``ARCHITECTURES`` pointing at an ``Architecture``;
adding a named model = one line in ``BUNDLED`` pointing at a ``BundledModel``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verimesh.models.bundle import ModelBundle
from verimesh.runtime import ExecutionContext


class UnsupportedModelError(ValueError):
    """An architecture, task or source format this verimesh version cannot run or import."""


@dataclass
class TaskOutput:
    """What one task produced.

    ``tensor`` is the exact result (integers); the job's ``output_root`` is the blob root of
    its canonical bytes, so two honest nodes agree on it bit for bit. ``output`` is the same
    result for people and programs (JSON-serialisable, derived from ``tensor`` only, e.g. the
    text of generated tokens); ``extra`` carries details that are not part of the result.
    """

    output: Any
    tensor: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumePlan:
    """How a referee runs op ``index`` of step ``step`` of a job from the layer that op is
    in, without the ops before it (verify/replay.py): every leaf before that op is agreed by
    the dispute's parties, so the tensors it needs come from their leaves.

    ``run(ctx, x, cache)`` runs the rest of the step from the layer's first op, numbered
    from ``anchor + 1``, given ``x``, the output of leaf ``anchor`` (the residual stream
    entering the layer, of ``shape``), and ``cache``, the first inputs of the leaves at
    ``cache`` (state the layer reads from earlier steps: a decoder's keys and values), then
    of the leaf at ``fed``, if any.

    A plan for an op before the step's first layer has no ``anchor``: ``run`` gets ``x``
    None and runs the step from its first op, and a referee only walks it (runtime/program.py:
    it computes nothing, and computing it would be the replay). ``fed`` is then the position
    of the leaf just before the step whose first input says what the step reads (a
    generation's choice: the logits the fed token was chosen from)."""

    anchor: int | None  # index in the step of the leaf whose output enters the layer
    shape: tuple[int, ...]
    cache: tuple[int, ...]  # indices in the step of the leaves whose first input the layer reads
    before: int  # leaves of the steps before (a leaf is asked for by its index over all steps)
    run: Callable[[ExecutionContext, np.ndarray | None, list[np.ndarray]], None]
    fed: tuple[int, int] | None = None  # (step, index) of the leaf just before the step


@dataclass(frozen=True)
class Architecture:
    """One model family.

    ``load(bundle)`` builds the runnable model object once (weights frozen, tokenizer ready);
    ``run(model, task, text, params, ctx)`` runs one job on it with every computation going
    through ``ctx.call``; ``importer(path)`` turns source files (a Hugging Face folder, a GGUF
    file, ...) into a bundle, and ``detects(path)`` says whether ``path`` is such a source;
    ``resume(model, task, text, params, step, index)`` is the ``ResumePlan`` of that op
    (None where the family has none: the referee then replays the ops before it);
    ``answer(model, task, text, params, leaf)`` is the job's output tensor read off a trace
    whose leaves ``leaf(index over all steps)`` serves, each answer op recomputed from its
    inputs (None if a leaf is missing or does not hold; the referee then re-executes).
    """

    name: str
    tasks: tuple[str, ...]
    load: Callable[[ModelBundle], Any]
    run: Callable[[Any, str, str, dict[str, Any], ExecutionContext], TaskOutput]
    importer: Callable[[Path], ModelBundle] | None = None
    detects: Callable[[Path], bool] | None = None
    resume: Callable[[Any, str, str, dict[str, Any], int, int], ResumePlan | None] | None = None
    answer: Callable[[Any, str, str, dict[str, Any], Callable[[int], Any]], np.ndarray | None] | None = None


@dataclass(frozen=True)
class BundledModel:
    """A real model whose source files ship in an installed package: importable by name."""

    name: str
    architecture: str
    description: str
    source: Callable[[], Path]  # where the source files are (raises with a fix if missing)
    build: Callable[[], ModelBundle]  # source files -> canonical bundle


# architecture name (bundle config "architecture") -> "module:attribute" of an Architecture
ARCHITECTURES: dict[str, str] = {
    "bert": "verimesh.models.minilm:ARCHITECTURE",
    "llama": "verimesh.models.llama_task:ARCHITECTURE",
}

# friendly name -> "module:attribute" of a BundledModel
BUNDLED: dict[str, str] = {
    "minilm": "verimesh.models.minilm:BUNDLED_MINILM",
    "smollm2": "verimesh.models.llama_task:BUNDLED_SMOLLM2",
    "tiny-shakespeare": "verimesh.models.llama_task:BUNDLED_TINY",
}


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def architecture(name: str) -> Architecture:
    ref = ARCHITECTURES.get(name)
    if ref is None:
        raise UnsupportedModelError(
            f"architecture {name!r} is not supported; this verimesh runs "
            f"{', '.join(sorted(ARCHITECTURES))}"
        )
    return _resolve(ref)


def all_architectures() -> list[Architecture]:
    return [architecture(name) for name in sorted(ARCHITECTURES)]


def bundled(name: str) -> BundledModel | None:
    ref = BUNDLED.get(name)
    return None if ref is None else _resolve(ref)


def all_bundled() -> list[BundledModel]:
    return [_resolve(BUNDLED[name]) for name in sorted(BUNDLED)]
