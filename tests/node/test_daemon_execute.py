"""The node's executors: a job run in the capped worker subprocess gives exactly the bytes
and roots of the same job run in-process, which are exactly what `run_job` (and so
`verimesh run`) commits to; dispute evidence re-runs the job and proves one op."""

from __future__ import annotations

import pytest
from daemon_net import install_tiny_model

from verimesh.crypto.merkle import blob_root, merkle_root
from verimesh.node.config import ResourceCaps
from verimesh.node.execute import (
    ExecutionError,
    InProcessExecutor,
    WorkerExecutor,
    job_trace,
    leaf_evidence,
)
from verimesh.node.jobs import make_spec
from verimesh.runtime import OpRecord, from_canonical_bytes, verify_record, verify_trace_proof
from verimesh.runtime.trace import TraceProof

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> str:
    home = tmp_path_factory.mktemp("exec") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIMESH_HOME", str(home))  # the worker child inherits it: same model store
    root = install_tiny_model(home, pytestconfig.cache.mkdir("verimesh-bundles"))
    yield root
    mp.undo()


def test_worker_and_in_process_agree_with_run_job(tiny: str) -> None:
    from verimesh.models.api import load_model, run_job

    spec, data = make_spec(tiny, "generate", "ROMEO:", {"max_tokens": 6, "seed": 2})
    local = run_job(load_model(tiny), "generate", "ROMEO:", {"max_tokens": 6, "seed": 2})
    inproc = InProcessExecutor().run(spec, data)
    worker = WorkerExecutor(ResourceCaps(cores=1, memory_mb=1024)).run(spec, data)
    for execution in (inproc, worker):
        assert "0x" + execution.output_root.hex() == local.output_root
        assert "0x" + execution.trace_root.hex() == local.trace_root
        assert blob_root(execution.output_bytes) == execution.output_root
        assert execution.output == local.output
    assert worker.output_bytes == inproc.output_bytes
    assert worker.step_roots == inproc.step_roots  # checked against its trace_root on the way


def test_step_roots_are_one_per_generated_token_under_the_trace_root(tiny: str) -> None:
    spec, data = make_spec(tiny, "generate", "ROMEO:", {"max_tokens": 4, "seed": 2})
    execution = InProcessExecutor().run(spec, data)
    tokens = from_canonical_bytes(execution.output_bytes)
    assert len(execution.step_roots) == len(tokens) == 4
    assert len(set(execution.step_roots)) == 4  # each step is its own computation
    assert merkle_root(execution.step_roots) == execution.trace_root
    assert execution.step_roots == tuple(job_trace(spec, data).step_roots)  # the dispute re-run's


def test_bad_jobs_fail_with_the_reason(tiny: str) -> None:
    spec, data = make_spec(tiny, "embed", "x")
    with pytest.raises(ExecutionError, match="does generate, not 'embed'"):
        InProcessExecutor().run(spec, data)
    spec, data = make_spec("0x" + "77" * 32, "generate", "x")
    with pytest.raises(ExecutionError, match="not in this node's model store"):
        InProcessExecutor().run(spec, data)


def test_evidence_proves_one_op_against_the_committed_trace(tiny: str) -> None:
    spec, data = make_spec(tiny, "generate", "ROMEO:", {"max_tokens": 3, "seed": 2})
    execution = InProcessExecutor().run(spec, data)
    trace = InProcessExecutor().trace(spec, data)
    evidence = leaf_evidence(trace, 40)
    assert evidence["job_trace_root"] == "0x" + execution.trace_root.hex()
    record = OpRecord.from_json(evidence["record"])
    proof = evidence["proof"]
    from verimesh.crypto.merkle import MerkleProof

    trace_proof = TraceProof(
        MerkleProof.from_json(proof["op_proof"]),
        bytes.fromhex(proof["step_root"][2:]),
        MerkleProof.from_json(proof["step_proof"]),
    )
    assert verify_trace_proof(execution.trace_root, record, trace_proof)
    assert verify_record(record)  # the referee's one-op recompute from the shipped inputs
    with pytest.raises(IndexError, match="outside this job's trace"):
        leaf_evidence(trace, 10**9)
