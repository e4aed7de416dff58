"""The models that compete in the shipped arenas, by name, all offline.

Real models come from the model registry (``minilm``, ``smollm2``, ``tiny-shakespeare``).
The weaker embedding contestants are derived from MiniLM at run time, deterministically, so
they are real encoders with their own content address: ``minilm-l1`` and ``minilm-l2`` keep
only the first one or two of MiniLM's six transformer layers (same tokenizer, embeddings
and quantization tables). Measured on the 48 held-out retrieval pairs (each query against
the 95 other texts): recall@1 0.958 for MiniLM, 0.667 for minilm-l2, 0.542 for minilm-l1
(docs/bench-arena.md).
"""

from __future__ import annotations

from verimesh.models.api import LoadedModel, load_model
from verimesh.models.bundle import ModelBundle
from verimesh.models.store import ModelNotFoundError, ModelStore

TRUNCATED = {"minilm-l1": 1, "minilm-l2": 2}
ARENA_MODELS = {
    "embeddings": ("minilm", *TRUNCATED),
    "generation": ("smollm2", "tiny-shakespeare"),
}


class ArenaModelError(ValueError):
    """A model name no arena knows; the message lists the known ones."""


def truncated_encoder(bundle: ModelBundle, layers: int) -> ModelBundle:
    """A BERT bundle cut after its first ``layers`` transformer layers. The cut hidden state
    is already int16 at the next layer's input scale, and the mean pool + L2 normalization
    at the end do not care about the scale, so nothing needs recalibrating."""
    have = bundle.config["bert"]["layers"]
    if not 0 <= layers < have:
        raise ArenaModelError(f"can keep 0..{have - 1} of the encoder's {have} layers, not {layers}")
    config = dict(bundle.config, name=f"{bundle.config.get('name', 'bert')} (first {layers} layers)")
    config["bert"] = dict(bundle.config["bert"], layers=layers)
    tensors = {k: v for k, v in bundle.tensors.items() if not (k.startswith("layer.") and int(k.split(".")[1]) >= layers)}
    return ModelBundle(config=config, tensors=tensors)


def load_arena_model(name: str, store: ModelStore | None = None) -> LoadedModel:
    """Load a contestant by name; a derived one is built and stored under its name on first use."""
    store = store or ModelStore()
    known = [m for models in ARENA_MODELS.values() for m in models]
    if name not in known:
        raise ArenaModelError(f"no arena model named {name!r}; known: {', '.join(known)}")
    if name in TRUNCATED:
        try:
            store.resolve(name)
        except ModelNotFoundError:
            base = load_model("minilm", store)
            store.put(truncated_encoder(base.bundle, TRUNCATED[name]), name=name)
    return load_model(name, store)


def task_of(name: str) -> str:
    """The arena task a model competes in."""
    for task, models in ARENA_MODELS.items():
        if name in models:
            return task
    raise ArenaModelError(f"no arena model named {name!r}")
