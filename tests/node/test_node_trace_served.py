"""Outside a dispute it plays (a decided one read late by a committee member, a watcher), a
node serves its trace's leaves from one re-run of the job, kept for the next leaves asked:
not one re-run per leaf. Only the last few re-runs are kept (``recent.Recent``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from daemon_net import install_tiny_model

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, describe
from verimesh.chain.deployment import NetworkParams
from verimesh.crypto.merkle import MerkleProof
from verimesh.crypto.wallet import Wallet
from verimesh.node.api import Rejected
from verimesh.node.daemon import TRACES_KEPT, DaemonSettings, NodeDaemon, executed_fields
from verimesh.node.execute import InProcessExecutor
from verimesh.node.jobs import JobSpec, make_spec
from verimesh.node.journal import Assignment
from verimesh.node.recent import Recent
from verimesh.runtime import OpRecord, verify_trace_proof
from verimesh.runtime.trace import Trace, TraceProof

pytestmark = pytest.mark.slow


class CountingExecutor(InProcessExecutor):
    """An honest executor that counts the traced re-runs it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.traces = 0

    def trace(self, spec: JobSpec, input_bytes: bytes) -> Trace:
        self.traces += 1
        return super().trace(spec, input_bytes)


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config) -> NodeDaemon:
    home = tmp_path / "home"
    monkeypatch.setenv("VERIMESH_HOME", str(home))
    tiny = install_tiny_model(home, pytestconfig.cache.mkdir("verimesh-bundles"))
    artifacts = load_artifacts(cache_dir=pytestconfig.cache.mkdir("verimesh-artifacts"), names=CONTRACTS)
    deployer, provider = dev_signer(0), dev_signer(2)
    params = NetworkParams()
    network = deploy_network(BoaBackend(), deployer, params, artifacts)
    describe(network, deployer, params, artifacts, None).save(tmp_path / "deployment.json")
    settings = DaemonSettings(home=tmp_path / "node", deployment=tmp_path / "deployment.json",
                              wallet=Wallet.from_key("provider", provider._account.key))  # fmt: skip
    daemon = NodeDaemon(settings, executor=CountingExecutor())
    daemon.tiny = tiny  # type: ignore[attr-defined]
    return daemon


def _executed(node: NodeDaemon, job_id: int, prompt: str) -> Any:
    """A job this node ran and committed to, as the journal holds it after its reveal."""
    spec, data = make_spec(node.tiny, "generate", prompt, {"max_tokens": 2, "seed": 1})  # type: ignore[attr-defined]
    execution = InProcessExecutor().run(spec, data)
    input_root = node.store.put(data, pin=True).hex()
    assert "0x" + input_root == spec.input_root
    node.store.put(execution.output_bytes, pin=True)
    node.journal.record_assignments([Assignment(
        job_id=job_id, replica=0, requester="0x" + "11" * 20, spec_hash="0x" + spec.hash().hex(),
        model_root=spec.model_root, input_root=spec.input_root, commit_deadline=1000, reveal_deadline=2000,
    )], job_id)  # fmt: skip
    node.journal.advance(job_id, ("assigned",), "ready", spec_json=spec.model_dump_json())
    node.journal.advance(job_id, ("ready",), "executed", **executed_fields(execution), salt="0x" + "ee" * 32)
    return execution


def _proves(body: dict[str, Any], trace_root: bytes) -> bool:
    proof = body["proof"]
    trace_proof = TraceProof(MerkleProof.from_json(proof["op_proof"]), bytes.fromhex(proof["step_root"][2:]),
                             MerkleProof.from_json(proof["step_proof"]))  # fmt: skip
    return verify_trace_proof(trace_root, OpRecord.from_json(body["record"]), trace_proof)


def test_leaves_outside_a_dispute_come_from_one_kept_re_run(node: NodeDaemon) -> None:
    executor: CountingExecutor = node.executor  # type: ignore[assignment]
    execution = _executed(node, 1, "ROMEO:")
    first = node._dispute_data(1, 0)
    bare = node._dispute_data(1, 7, tensors=False)
    again = node._dispute_data(1, 0)
    assert executor.traces == 1  # three leaves, one re-run
    assert first == again and "inputs" in first["record"] and "inputs" not in bare["record"]
    assert _proves(first, execution.trace_root) and _proves(bare, execution.trace_root)
    with pytest.raises(Exception, match="outside this job's trace"):
        node._dispute_data(1, 10**6)
    assert executor.traces == 1


def test_a_job_whose_input_is_gone_is_refused_with_the_reason(node: NodeDaemon) -> None:
    """After a restart (nothing kept) a settled job's input may have been evicted."""
    _executed(node, 1, "ROMEO:")
    assert node.store.delete(node.journal.job(1).input_root)
    with pytest.raises(Rejected, match="no longer holds job 1's input") as refused:
        node._dispute_data(1, 0)
    assert refused.value.status == 410
    assert node.journal.job(1).step == "executed"  # the refusal changes nothing


def test_only_the_last_re_runs_are_kept(node: NodeDaemon) -> None:
    executor: CountingExecutor = node.executor  # type: ignore[assignment]
    for job_id in range(1, TRACES_KEPT + 2):
        _executed(node, job_id, f"JULIET {job_id}:")
        node._dispute_data(job_id, 3)
    assert executor.traces == TRACES_KEPT + 1
    assert list(node._traces) == list(range(2, TRACES_KEPT + 2))  # job 1, the oldest, was dropped
    node._dispute_data(1, 3)
    assert executor.traces == TRACES_KEPT + 2


def test_recent_keeps_the_last_used_values() -> None:
    recent: Recent[str, int] = Recent(2)
    built: list[str] = []

    def build(key: str) -> int:
        built.append(key)
        return len(built)

    assert recent.get("a", lambda: build("a")) == 1
    assert recent.get("b", lambda: build("b")) == 2
    assert recent.get("a", lambda: build("a")) == 1  # kept: a is now the most recent
    recent.put("c", 3)  # b, the least recently used, goes
    assert list(recent) == ["a", "c"] and "b" not in recent and len(recent) == 2
    assert recent.get("b", lambda: build("b")) == 3 and built == ["a", "b", "b"]
    with pytest.raises(ValueError, match="at least one"):
        Recent(0)


def test_threads_asking_for_one_key_wait_for_one_build() -> None:
    """A committee's members ask a node for leaves at once: one re-run serves them all."""
    recent: Recent[int, str] = Recent(2)
    builds: list[int] = []

    def build(key: int) -> str:
        builds.append(key)
        time.sleep(0.2)  # a re-run of the job
        return f"trace {key}"

    got: list[str] = []
    threads = [threading.Thread(target=lambda k=k: got.append(recent.get(k, lambda k=k: build(k))))
               for k in (1, 1, 1, 2)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(got) == ["trace 1"] * 3 + ["trace 2"]
    assert sorted(builds) == [1, 2]


def test_a_failed_build_keeps_nothing_and_the_next_ask_builds_again() -> None:
    recent: Recent[int, int] = Recent(1)

    def fail() -> int:
        raise IndexError("no such leaf")

    with pytest.raises(IndexError):
        recent.get(1, fail)
    assert 1 not in recent and recent.get(1, lambda: 7) == 7
