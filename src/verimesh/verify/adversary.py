"""Cheating executions of a real job, for tests and benchmarks of the dispute game.

Each adversary produces a trace the way a dishonest node would, without touching runtime
or model code: either an ``ExecutionContext`` subclass that alters what one op returns,
or a copy of the loaded model with altered committed tensors or fewer layers (what a node
that runs another model than the one the job names would compute).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np

from ..models.api import LoadedModel
from ..runtime import ExecutionContext
from ..runtime.tensor import tensor_hash
from .replay import JobRun


class WrongOpContext(ExecutionContext):
    """Flips the lowest bit of one element of op number ``target``'s output and carries on
    with the wrong value, recording it as if it were right: a trace consistent everywhere
    except at that one op (the hardest lie to spot without recomputing)."""

    def __init__(self, target: int) -> None:
        super().__init__(keep_tensors=True)
        self.target = target

    def call(self, op_name: str, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        index = self.op_count
        out = super().call(op_name, *inputs, **params)
        if index != self.target:
            return out
        wrong = np.array(out, copy=True)
        flat = wrong.reshape(-1)
        flat[0] = flat[0] ^ 1
        wrong.flags.writeable = False
        assert self.trace is not None
        self.trace.steps[-1][-1].output_hash = tensor_hash(wrong)  # the lie, in the leaf
        return wrong


def _with_tensors(model: LoadedModel, tensors: dict[str, np.ndarray], quant: dict | None = None) -> LoadedModel:
    impl = copy.copy(model.impl)
    impl.t = tensors
    if quant is not None:
        impl.q = quant
    return replace(model, impl=impl)


def skip_last_layer(model: LoadedModel) -> LoadedModel:
    """A llama model that runs every layer but the last (saves 1/n_layers of the work)."""
    quant = dict(model.impl.q)
    quant["layers"] = list(quant["layers"])[:-1]
    return _with_tensors(model, dict(model.impl.t), quant)


def swap_layers(model: LoadedModel, a: int = 0, b: int = 1) -> LoadedModel:
    """Another model of the same shape (layers a and b exchanged): a model swap whose
    traces look plausible op by op."""
    tensors = dict(model.impl.t)
    for name in model.impl.t:
        if name.startswith(f"blk.{a}."):
            other = f"blk.{b}." + name.removeprefix(f"blk.{a}.")
            tensors[name], tensors[other] = model.impl.t[other], model.impl.t[name]
    return _with_tensors(model, tensors)


def lower_precision(model: LoadedModel, shift_tensor: str = "blk.0.ffn_down.shift", by: int = 2) -> LoadedModel:
    """One requantization shift raised by ``by``: that op's outputs lose their ``by`` low
    bits (what a node running a cheaper, lower-precision requantization computes)."""
    tensors = dict(model.impl.t)
    shifted = np.array(tensors[shift_tensor], copy=True) + by
    shifted.flags.writeable = False
    tensors[shift_tensor] = shifted
    return _with_tensors(model, tensors)


def cheat_run(job: JobRun, model: LoadedModel) -> JobRun:
    """The same job as named, executed with ``model`` instead."""
    return replace(job, model=model)
