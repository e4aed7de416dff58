"""The adversary zoo: how dishonest nodes cheat, done for real, for tests, benchmarks and demos.

``Behaviour`` names every misbehaviour a node can be started with (``verimesh node run
--adversary NAME``, ``verimesh validator run --adversary NAME``). The provider cheats that
change the computation are built here, without touching runtime or model code, the way a
dishonest node would: an ``ExecutionContext`` subclass that alters what some ops return and
records the lie in the trace leaf (so the trace is internally consistent, as a real cheat's
would be), or a copy of the loaded model with altered committed tensors or fewer layers (what
a node that runs another model than the one the job names computes). ``node.execute`` runs a
job through ``plan(behaviour, model)``; the protocol cheats (``copy-replica``,
``withhold-reveal``) live in the node daemon, and the validator cheats in the validator.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime import ExecutionContext
from ..runtime.tensor import tensor_hash
from ..runtime.trace import OpRecord, Trace

if TYPE_CHECKING:
    from ..models.api import LoadedModel
    from .replay import JobRun


class Behaviour(StrEnum):
    """What a node does with a job. Only ``honest`` is ever run by a real operator."""

    HONEST = "honest"
    # -- providers: wrong computations (their trace is consistent with their lie) --
    WRONG_OUTPUT = "wrong-output"  # the answer's ops (chosen tokens, final embedding) altered
    MODEL_SWAP = "model-swap"  # a smaller model than the one the job names
    SKIP_LAYERS = "skip-layers"  # the job's model without its last layer
    LOWER_PRECISION = "lower-precision"  # one requantization shift raised: low bits dropped
    # honest but for the last step, where every linear layer drops a bit: the first wrong op
    # is deep in the job, so a referee fast-forwards to it instead of replaying the job
    LOWER_PRECISION_LATE = "lower-precision-late"
    RANDOM_OUTPUT = "random-output"  # computes nothing: random output, fabricated trace
    # one bit of one op in the middle of the job flipped: the first op from the middle that the
    # EVM cannot recompute itself, so a committee recomputes it
    ONE_BAD_OP = "one-bad-op"
    # the same at the first op from the middle that the EVM can recompute
    # (chain.op_check_spec.checkable): its dispute ends with an on-chain op proof
    ONE_BAD_SMALL_OP = "one-bad-small-op"
    # -- providers: protocol cheats (node daemon) --
    COPY_REPLICA = "copy-replica"  # computes nothing, tries to reveal another replica's roots
    WITHHOLD_REVEAL = "withhold-reveal"  # commits, then never reveals
    # -- validators (applied by node.validator) --
    GRIEFING_CHALLENGER = "griefing-challenger"  # challenges honest results
    FALSE_VERDICT = "false-verdict"  # signs committee verdicts against the evidence

    @classmethod
    def parse(cls, name: str) -> Behaviour:
        """``Behaviour(name)`` with an error message that lists the choices."""
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"unknown adversary {name!r}; choose one of: {', '.join(b.value for b in cls)}") from None

    @property
    def is_provider(self) -> bool:
        return self in PROVIDER_BEHAVIOURS

    @property
    def is_validator(self) -> bool:
        return self in VALIDATOR_BEHAVIOURS

    @property
    def computes_wrong(self) -> bool:
        """True for the cheats whose execution (output or trace) differs from the honest one."""
        return self in _COMPUTE_CHEATS


_COMPUTE_CHEATS = frozenset(
    {
        Behaviour.WRONG_OUTPUT,
        Behaviour.MODEL_SWAP,
        Behaviour.SKIP_LAYERS,
        Behaviour.LOWER_PRECISION,
        Behaviour.LOWER_PRECISION_LATE,
        Behaviour.RANDOM_OUTPUT,
        Behaviour.ONE_BAD_OP,
        Behaviour.ONE_BAD_SMALL_OP,
    }
)
PROVIDER_BEHAVIOURS = _COMPUTE_CHEATS | {Behaviour.COPY_REPLICA, Behaviour.WITHHOLD_REVEAL}
VALIDATOR_BEHAVIOURS = frozenset({Behaviour.GRIEFING_CHALLENGER, Behaviour.FALSE_VERDICT})


# -- tampered execution contexts ----------------------------------------------------------
# (global op index, op name, inputs, honest output) -> the lie to return, or None (no change)
Tamper = Callable[[int, str, tuple[np.ndarray, ...], np.ndarray], np.ndarray | None]


class TamperContext(ExecutionContext):
    """Runs every op honestly, then lets ``tamper`` replace its output; the replacement is
    what the program continues with AND what the trace leaf records as the op's output. So
    every later op is computed correctly from the lie: the trace is consistent everywhere
    except at the tampered ops (the hardest lie to spot without recomputing)."""

    def __init__(self, tamper: Tamper, *, keep_tensors: bool = False, path: str = "fast") -> None:
        super().__init__(keep_tensors=keep_tensors, path=path)  # type: ignore[arg-type]
        self.tamper = tamper

    def call(self, op_name: str, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        index = self.op_count
        out = super().call(op_name, *inputs, **params)
        wrong = self.tamper(index, op_name, inputs, out)
        if wrong is None:
            return out
        wrong = np.ascontiguousarray(wrong, dtype=out.dtype).reshape(out.shape)
        wrong.flags.writeable = False
        assert self.trace is not None
        self.trace.steps[-1][-1].output_hash = tensor_hash(wrong)  # the lie, in the leaf
        return wrong


def flip_low_bit(target: int) -> Tamper:
    """Flip the lowest bit of the first element of op number ``target``'s output."""

    def tamper(index: int, _op: str, _inputs: tuple[np.ndarray, ...], out: np.ndarray) -> np.ndarray | None:
        if index != target:
            return None
        wrong = np.array(out, copy=True)
        wrong.reshape(-1)[0] ^= 1
        return wrong

    return tamper


_LINEAR_OPS = ("linear", "linear_rows")  # (x, weight, multiplier, shift, ...) in every model


class LowerPrecisionFrom(ExecutionContext):
    """Honest until step ``step``, then every linear layer requantized one bit coarser (its
    shift tensor + 1): lower precision where it saves work unseen, deep in a generation.
    Its first wrong op differs from the program's in an input (another shift tensor), not
    in how it computes its output, so only the program can tell (``verify.replay``)."""

    def __init__(self, step: int, *, keep_tensors: bool = True) -> None:
        super().__init__(keep_tensors=keep_tensors)
        self.step = step

    def call(self, op_name: str, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        assert self.trace is not None
        if op_name in _LINEAR_OPS and self.trace.next_position()[0] >= self.step:
            inputs = (*inputs[:3], (inputs[3] + 1).astype(inputs[3].dtype))
        return super().call(op_name, *inputs, **params)


class WrongOpContext(TamperContext):
    """One flipped bit at op ``target``, input tensors kept (for dispute evidence)."""

    def __init__(self, target: int, keep_tensors: bool = True) -> None:
        super().__init__(flip_low_bit(target), keep_tensors=keep_tensors)
        self.target = target


class OneBadOpContext(TamperContext):
    """One flipped bit at the first op from ``start`` on that the EVM can (``small``) or
    cannot recompute itself (``chain.op_check_spec.checkable`` of the op's record and
    inputs): the lie of ``one-bad-small-op``, convicted by an on-chain proof, or of
    ``one-bad-op``, which takes a committee."""

    def __init__(self, start: int, *, small: bool, keep_tensors: bool = False, path: str = "fast") -> None:
        super().__init__(self._flip_first, keep_tensors=keep_tensors, path=path)
        self.start = start
        self.small = small
        self.flipped: int | None = None  # global index of the tampered op, once chosen

    def _flip_first(self, index: int, op: str, inputs: tuple[np.ndarray, ...], out: np.ndarray) -> np.ndarray | None:
        from ..chain.op_check_spec import checkable

        if self.flipped is not None or index < self.start:
            return None
        assert self.trace is not None
        if checkable(replace(self.trace.steps[-1][-1], inputs=inputs)) is not self.small:
            return None
        self.flipped = index
        return flip_low_bit(index)(index, op, inputs, out)


def other_answer(targets: frozenset[int]) -> Tamper:
    """At the ops that produce the answer (``targets``: the last op of every step), return
    another answer: the next token id for a token choice (``argmax``/``sample``), every value
    off by one bit for anything else (an embedding). A node that wants to steer a result
    (inject text, poison an index) does this."""

    def tamper(index: int, op: str, inputs: tuple[np.ndarray, ...], out: np.ndarray) -> np.ndarray | None:
        if index not in targets:
            return None
        wrong = np.array(out, copy=True)
        flat = wrong.reshape(-1)
        if op in ("argmax", "sample"):
            vocab = int(inputs[0].shape[-1])
            flat[-1] = (int(flat[-1]) + 1) % vocab
        else:
            flat ^= 1
        return wrong

    return tamper


class OpCounter(ExecutionContext):
    """Runs the program without a trace and counts its ops per step (the cheat's first pass:
    where the answer's ops and the middle of the job are)."""

    def __init__(self) -> None:
        super().__init__(trace=False)
        self.per_step: list[int] = []

    def begin_step(self) -> None:
        self.per_step.append(0)

    def call(self, op_name: str, *inputs: np.ndarray, **params: Any) -> np.ndarray:
        if not self.per_step:
            self.per_step.append(0)
        self.per_step[-1] += 1
        return super().call(op_name, *inputs, **params)


def last_op_of_each_step(per_step: list[int]) -> frozenset[int]:
    ends, total = set(), 0
    for count in per_step:
        total += count
        if count:
            ends.add(total - 1)
    return frozenset(ends)


# -- tampered models ----------------------------------------------------------------------
def _with_tensors(model: LoadedModel, tensors: dict[str, np.ndarray], quant: dict | None = None) -> LoadedModel:
    impl = copy.copy(model.impl)
    impl.t = tensors
    if quant is not None:
        impl.q = quant
    return replace(model, impl=impl)


def _layer_count(model: LoadedModel) -> int:
    impl = model.impl
    if isinstance(getattr(impl, "q", None), dict) and "layers" in impl.q:  # llama: per-layer quant specs
        return len(impl.q["layers"])
    if isinstance(getattr(impl, "layers", None), int):  # BERT encoder
        return impl.layers
    raise ValueError(f"cannot cut layers of a {model.architecture.name} model")


def keep_layers(model: LoadedModel, count: int) -> LoadedModel:
    """The model with only its first ``count`` layers (same tensors, a cheaper program)."""
    if not 1 <= count <= _layer_count(model):
        raise ValueError(f"cannot keep {count} of {_layer_count(model)} layers")
    impl = copy.copy(model.impl)
    if isinstance(getattr(impl, "q", None), dict) and "layers" in impl.q:
        impl.q = {**impl.q, "layers": list(impl.q["layers"])[:count]}
    else:
        impl.layers = count
    return replace(model, impl=impl)


def skip_last_layer(model: LoadedModel) -> LoadedModel:
    """Every layer but the last (saves 1/n_layers of the work)."""
    return keep_layers(model, _layer_count(model) - 1)


def smaller_model(model: LoadedModel) -> LoadedModel:
    """A smaller model of the same family: the first half of the layers (what a node that
    serves a distilled or truncated checkpoint under the big model's name computes)."""
    return keep_layers(model, max(1, _layer_count(model) // 2))


def swap_layers(model: LoadedModel, a: int = 0, b: int = 1) -> LoadedModel:
    """Another model of the same shape (layers a and b exchanged): a model swap whose
    traces look plausible op by op (llama tensor names)."""
    tensors = dict(model.impl.t)
    for name in model.impl.t:
        if name.startswith(f"blk.{a}."):
            other = f"blk.{b}." + name.removeprefix(f"blk.{a}.")
            tensors[name], tensors[other] = model.impl.t[other], model.impl.t[name]
    return _with_tensors(model, tensors)


def lower_precision(model: LoadedModel, shift_tensor: str | None = None, by: int = 2) -> LoadedModel:
    """One requantization shift raised by ``by``: that op's outputs lose their ``by`` low
    bits (what a node running a cheaper, lower-precision requantization computes). Default
    tensor: llama's ``blk.0.ffn_down.shift``, else the first ``.shift`` of the model."""
    tensors = dict(model.impl.t)
    if shift_tensor is None:
        shifts = sorted(n for n in tensors if n.endswith(".shift"))
        if not shifts:
            raise ValueError(f"a {model.architecture.name} model has no requantization shift to lower")
        shift_tensor = "blk.0.ffn_down.shift" if "blk.0.ffn_down.shift" in tensors else shifts[0]
    shifted = np.array(tensors[shift_tensor], copy=True)  # a 0-d array for a per-tensor shift
    shifted += by
    shifted.flags.writeable = False
    tensors[shift_tensor] = shifted
    return _with_tensors(model, tensors)


def cheat_run(job: JobRun, model: LoadedModel) -> JobRun:
    """The same job as named, executed with ``model`` instead."""
    return replace(job, model=model)


# -- the plan of one cheating execution ---------------------------------------------------
@dataclass(frozen=True)
class CheatPlan:
    """How ``node.execute`` runs a job for a behaviour: which model, and a factory of the
    execution context (``count`` = ops per step from a first, untraced pass, when needed)."""

    model: LoadedModel
    needs_count: bool
    context: Callable[[list[int] | None, bool], ExecutionContext]  # (per_step, keep_tensors)


def _plain(_count: list[int] | None, keep: bool) -> ExecutionContext:
    return ExecutionContext(keep_tensors=keep)


def _one_bad_op(count: list[int] | None, keep: bool) -> ExecutionContext:
    assert count is not None
    return OneBadOpContext(sum(count) // 2, small=False, keep_tensors=keep)


def _one_bad_small_op(count: list[int] | None, keep: bool) -> ExecutionContext:
    assert count is not None
    return OneBadOpContext(sum(count) // 2, small=True, keep_tensors=keep)


def _wrong_output(count: list[int] | None, keep: bool) -> ExecutionContext:
    assert count is not None
    return TamperContext(other_answer(last_op_of_each_step(count)), keep_tensors=keep)


def _lower_precision_late(count: list[int] | None, keep: bool) -> ExecutionContext:
    assert count is not None
    return LowerPrecisionFrom(len(count) - 1, keep_tensors=keep)


def plan(behaviour: Behaviour, model: LoadedModel) -> CheatPlan:
    """The model and context a node with ``behaviour`` computes a job with. Behaviours that
    do not change the computation (honest, protocol and validator cheats) run honestly."""
    if behaviour is Behaviour.RANDOM_OUTPUT:
        raise ValueError("random-output computes nothing: use random_output()")
    if behaviour is Behaviour.ONE_BAD_OP:
        return CheatPlan(model, True, _one_bad_op)
    if behaviour is Behaviour.ONE_BAD_SMALL_OP:
        return CheatPlan(model, True, _one_bad_small_op)
    if behaviour is Behaviour.WRONG_OUTPUT:
        return CheatPlan(model, True, _wrong_output)
    if behaviour is Behaviour.LOWER_PRECISION_LATE:
        return CheatPlan(model, True, _lower_precision_late)
    tampered = {
        Behaviour.MODEL_SWAP: smaller_model,
        Behaviour.SKIP_LAYERS: skip_last_layer,
        Behaviour.LOWER_PRECISION: lower_precision,
    }.get(behaviour)
    return CheatPlan(tampered(model) if tampered else model, False, _plain)


# -- random output: no computation at all -------------------------------------------------
_FAKE_OPS = 48  # ops in a fabricated trace: enough to look like a small job


def random_output(model: LoadedModel, task: str, params: dict[str, Any], seed: bytes) -> tuple[np.ndarray, Any, Trace]:
    """(output tensor, decoded output, fabricated trace) of a node that computes nothing.

    Random, but derived from ``seed`` (the job): asked for dispute evidence later, the node
    must produce the same trace it committed to. The fabricated trace is a well-formed Merkle
    tree of plausible-looking leaves, so the node can play the bisection game; it loses at
    the first leaf, which is not the program's."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(b"random-output" + seed).digest()[:8], "big"))
    impl = model.impl
    if task == "generate":
        vocab = impl.cfg.vocab_size
        count = int(params.get("max_tokens") or 32)
        tokens = rng.integers(0, vocab, size=count, dtype=np.int64)
        output: Any = impl.decode([int(t) for t in tokens])
        tensor = tokens
    else:
        texts = params.get("texts") or [""]
        tensor = rng.integers(-(2**15), 2**15, size=(len(texts), impl.hidden), dtype=np.int32)
        vectors = (tensor.astype(np.float64) / 2.0**15).tolist()
        output = vectors if "texts" in params else vectors[0]
    trace = Trace()
    trace.begin_step()
    for index in range(_FAKE_OPS):
        digest = rng.bytes(64)
        trace.append(OpRecord(0, index, "linear", {"out_dtype": "int8"}, (digest[:32],), digest[32:]))
    return tensor, output, trace
