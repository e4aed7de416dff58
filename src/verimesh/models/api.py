"""The one entry point for running a model: load it by name or root, run a job, get roots.

    from verimesh.models.api import load_model, run_job
    result = run_job(load_model("minilm"), "embed", "A man is eating food.")
    result.output_root, result.trace_root       # what a node commits on chain

``load_model`` finds the model in the local store (``$VERIMESH_HOME/models``) and, for a
bundled model name ("minilm", ...), imports it from its installed package on first use.
The model family is chosen by the bundle's ``architecture`` field through
``verimesh.models.registry``.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, PrivateAttr

from verimesh.crypto.merkle import blob_root
from verimesh.models.bundle import ModelBundle, read_config, root_hex
from verimesh.models.registry import (
    Architecture,
    UnsupportedModelError,
    all_architectures,
    architecture,
    bundled,
)
from verimesh.models.store import ModelNotFoundError, ModelStore, is_root_text
from verimesh.runtime import ExecutionContext, canonical_bytes

TASKS = ("embed", "generate")


@dataclass(frozen=True)
class LoadedModel:
    """A verified bundle plus the runnable object its architecture built from it."""

    root: bytes
    bundle: ModelBundle
    architecture: Architecture
    impl: Any

    @property
    def root_hex(self) -> str:
        return root_hex(self.root)


class JobResult(BaseModel):
    """What one job produced; crosses process boundaries (CLI JSON, node API)."""

    task: str
    output: Any
    output_root: str
    trace_root: str | None
    model_root: str
    seconds: float
    ops: int
    extra: dict[str, Any] = {}
    # The canonical bytes of the output tensor: the output blob whose root is output_root.
    _output_bytes: bytes = PrivateAttr(default=b"")


def output_bytes(result: JobResult) -> bytes:
    """The output blob of a job (canonical tensor bytes); ``blob_root`` of it is ``output_root``."""
    return result._output_bytes


ModelKey = tuple[str, bytes]  # (store directory, model root)
_loaded: MutableMapping[ModelKey, LoadedModel] = {}


def use_model_cache(cache: MutableMapping[ModelKey, LoadedModel]) -> None:
    """Keep loaded models in ``cache`` instead of an unbounded dict.

    A long-lived process (the node's worker) serves many jobs and must bound the memory its
    loaded models take; it hands in a mapping that evicts (e.g. least recently used by
    bytes). Models already loaded move into the new cache.
    """
    global _loaded
    cache.update(_loaded)
    _loaded = cache


def import_model(source: str | Path, store: ModelStore | None = None, name: str | None = None) -> bytes:
    """Import ``source`` into the store and return its root.

    ``source`` is a bundled model name ("minilm"), a model folder or file of a supported
    family (a Hugging Face BERT folder, a GGUF file, ...), or a verimesh bundle file.
    Everything is built in memory first; the store is written once, atomically.
    """
    store = store or ModelStore()
    spec = bundled(str(source)) if isinstance(source, str) else None
    if spec is not None:
        return store.put(spec.build(), name=name or spec.name)
    path = Path(source)
    if not path.exists():
        known = ", ".join(sorted(_bundled_names()))
        raise ModelNotFoundError(
            f"{source!r} is neither a file/folder nor a bundled model name ({known})"
        )
    if path.is_file() and path.suffix == ".safetensors" and _is_bundle_file(path):
        return store.put_bytes(path.read_bytes(), name=name)
    for arch in all_architectures():
        if arch.importer is not None and arch.detects is not None and arch.detects(path):
            return store.put(arch.importer(path), name=name)
    raise UnsupportedModelError(
        f"{path} is not a model this verimesh can import: expected a Hugging Face folder "
        "(config.json + model.safetensors + tokenizer.json) of a supported architecture, "
        "a GGUF file, or a verimesh bundle (.safetensors)"
    )


def _bundled_names() -> list[str]:
    from verimesh.models.registry import BUNDLED

    return list(BUNDLED)


def _is_bundle_file(path: Path) -> bool:
    try:
        read_config(path)
    except (ValueError, OSError):
        return False
    return True


def load_model(name_or_root: str, store: ModelStore | None = None, auto_import: bool = True) -> LoadedModel:
    """Load a stored model (root verified); a bundled name is imported on first use."""
    store = store or ModelStore()
    try:
        root = store.resolve(name_or_root)
    except ModelNotFoundError:
        if not auto_import or is_root_text(name_or_root) or bundled(name_or_root) is None:
            raise
        root = import_model(name_or_root, store)
    key = (str(store.directory), root)
    if key not in _loaded:
        root, bundle = store.load(root_hex(root))
        arch = architecture(bundle.architecture)
        _loaded[key] = LoadedModel(root=root, bundle=bundle, architecture=arch, impl=arch.load(bundle))
    return _loaded[key]


def run_job(
    model: LoadedModel | str,
    task: str,
    text: str | list[str],
    params: dict[str, Any] | None = None,
    trace: bool = True,
    path: str = "fast",
) -> JobResult:
    """Run one job in the exact runtime; ``output_root`` = blob root of the output tensor.

    ``text`` is the input text, or for ``embed`` a list of texts embedded as one batch
    (passed to the architecture as the ``texts`` param; the output is then one vector per
    text). ``output_bytes(result)`` gives the output blob.
    """
    params = dict(params or {})
    if isinstance(text, list):
        if task != "embed":
            raise UnsupportedModelError(f"task {task!r} takes one input text, not a list")
        if not text or not all(isinstance(t, str) for t in text):
            raise ValueError("a batch to embed must be a non-empty list of strings")
        params["texts"], text = list(text), ""
    if isinstance(model, str):
        model = load_model(model)
    if task not in TASKS:
        raise UnsupportedModelError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    if task not in model.architecture.tasks:
        raise UnsupportedModelError(
            f"model {model.root_hex[:10]}... ({model.architecture.name}) does "
            f"{', '.join(model.architecture.tasks)}, not {task!r}; "
            f"use --task {model.architecture.tasks[0]}"
        )
    ctx = ExecutionContext(trace=trace, path=path)  # type: ignore[arg-type]
    start = time.perf_counter()
    out = model.architecture.run(model.impl, task, text, params, ctx)
    seconds = time.perf_counter() - start
    blob = canonical_bytes(out.tensor)
    result = JobResult(
        task=task,
        output=out.output,
        output_root=root_hex(blob_root(blob)),
        trace_root=root_hex(ctx.trace_root) if trace else None,
        model_root=model.root_hex,
        seconds=seconds,
        ops=ctx.op_count,
        extra=out.extra,
    )
    result._output_bytes = blob
    return result
