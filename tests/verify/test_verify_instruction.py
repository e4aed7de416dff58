"""The program's instruction at a position, walked without computing (``runtime.program``):
it must be exactly what the honest program runs there, or a referee would convict an
honest party. Held to every position of real traces of both model families."""

from dataclasses import replace

import numpy as np
import pytest

from verimesh.runtime import ExecutionContext
from verimesh.runtime.program import Instruction, ProgramWalk, Walked, WalkError
from verimesh.runtime.tensor import StandInValueError, stand_in, tensor_hash
from verimesh.verify.replay import JobRun


def every_position(job):
    """(honest leaf, the program op the referee finds from that leaf alone) for every leaf
    of the job's trace, with every earlier leaf served as agreed."""
    honest = job.trace()
    agreed = replace(job, agreed=lambda i: honest.leaf(*honest.position(i)))
    for leaf in honest.records():
        yield leaf, agreed.program_op(leaf.step, leaf.index, [leaf])


@pytest.mark.parametrize(
    ("params", "steps"), [({"max_tokens": 3}, 3), ({"max_tokens": 4, "seed": 5}, 4)], ids=["greedy", "sampled"]
)
def test_the_walked_instruction_is_the_honest_leaf_at_every_op_of_a_generation(tiny_model, params, steps):
    """Inside a layer (walked from the agreed residual entering it, and its agreed cache),
    before the first layer (step 0 from the job's start; a later step from its start, on
    the token chosen from the agreed logits of the step before), the head and the choice."""
    seen = set()
    for leaf, found in every_position(JobRun(tiny_model, "generate", "ROMEO:", params)):
        assert found.record is not None and found.record.leaf_hash() == leaf.leaf_hash(), (leaf.step, leaf.index)
        assert found.via == "instruction", (leaf.step, leaf.index)
        seen.add((leaf.step, leaf.op))
    assert {step for step, _ in seen} == set(range(steps))
    assert {"slice", "embedding", "concat", "attention", "linear_rows", "add",
            "argmax" if "seed" not in params else "sample"} <= {op for _, op in seen}  # fmt: skip


@pytest.mark.parametrize("texts", [2, 20], ids=["one-bucket", "two-buckets"])
def test_the_walked_instruction_is_the_honest_leaf_at_every_op_of_an_embedding_batch(minilm_model, texts):
    """Inside a layer of any bucket's forward, before the first layer, and the batch's row
    gather after the buckets (walked from the job's start)."""
    texts = [f"Sentence {i} is about {'cats' if i % 2 else 'the weather today and tomorrow'}." for i in range(texts)]
    ops = set()
    for leaf, found in every_position(JobRun(minilm_model, "embed", texts[0], {"texts": texts})):
        assert found.record is not None and found.record.leaf_hash() == leaf.leaf_hash(), leaf.index
        assert found.via == "instruction", leaf.index
        ops.add(leaf.op)
    assert {"embedding", "layernorm", "attention", "l2_normalize"} <= ops


def test_a_walk_names_earlier_outputs_by_index_and_constants_by_hash():
    w = np.arange(12, dtype=np.int8).reshape(3, 4)
    walk = ProgramWalk(step=2, index=11, first=10)
    x = walk.output_of(9, (1, 3), "int32")
    y = walk.call("slice", x, axis=1, start=0, stop=2)  # op 10: computes nothing
    assert y.shape == (1, 2) and not any(y.strides)
    with pytest.raises(Walked) as reached:
        walk.call("concat", y, w[:1, :2].astype(np.int32), axis=0)  # op 11
    assert reached.value.instruction == Instruction(2, 11, "concat", {"axis": 0},
                                                    (10, tensor_hash(w[:1, :2].astype(np.int32))))  # fmt: skip


def test_a_program_the_walk_cannot_follow_stops_it():
    walk = ProgramWalk(step=0, index=5, first=1)
    x = walk.output_of(0, (2, 4), "int16")
    with pytest.raises(WalkError, match="outside the ops"):
        walk.call("slice", x.reshape(8), axis=0, start=0, stop=4)  # a tensor made behind the trace's back
    with pytest.raises(StandInValueError):
        int(x[0, 0])  # the program branching on an op's value: a walk has none to give
    with pytest.raises(WalkError, match="left the step"):
        walk.begin_step()
    with pytest.raises(ValueError, match="do not fit"):  # the op's own checks, on shapes alone
        walk.call("linear_rows", x, np.zeros((3, 5), np.int8), np.ones(3, np.int32), np.ones(3, np.int32))
    with pytest.raises(ValueError, match="not before"):
        walk.output_of(1, (1,), "int8")
    assert isinstance(walk, ExecutionContext) and stand_in((2,), "int8").flags.writeable is False
