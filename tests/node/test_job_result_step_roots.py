"""A provider publishes the step roots of the trace it committed: the executor hands them
over only when they hash to the trace root, the daemon journals them with the roots it
commits to, and the result endpoint serves them, so a validator can re-run single steps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_net import install_tiny_model
from fastapi.testclient import TestClient

from verimesh.crypto.eip712 import Domain
from verimesh.crypto.envelope import Verifier, seal
from verimesh.crypto.merkle import blob_root, merkle_root
from verimesh.crypto.messages import JobResultRequest
from verimesh.crypto.nonces import MemoryNonceStore
from verimesh.crypto.wallet import Wallet
from verimesh.node.api import NodeInfo, NodeServices, create_app
from verimesh.node.daemon import executed_fields
from verimesh.node.execute import ExecutionError, InProcessExecutor, worker_execution
from verimesh.node.jobs import JobResultBody, hex_root, make_spec
from verimesh.node.journal import Assignment, Journal
from verimesh.store.local import BlobStore

DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
REQUESTER = Wallet.from_key("requester", bytes.fromhex("11" * 32))
STEP_ROOTS = [bytes([i]) * 32 for i in (1, 2, 3)]


def _worker_fields(step_roots: list[bytes], trace_root: bytes, output_bytes: bytes) -> dict:
    """What ``execute_entry`` reports from the worker child."""
    return {
        "output_root": hex_root(blob_root(output_bytes)),
        "trace_root": hex_root(trace_root),
        "step_roots": [hex_root(r) for r in step_roots],
        "output": "text",
        "seconds": 0.1,
    }


def test_worker_step_roots_are_taken_only_when_they_hash_to_the_trace_root() -> None:
    trace_root = merkle_root(STEP_ROOTS)
    execution = worker_execution(_worker_fields(STEP_ROOTS, trace_root, b"out"), b"out")
    assert execution.step_roots == tuple(STEP_ROOTS)
    for forged in (STEP_ROOTS[::-1], STEP_ROOTS[:2], [*STEP_ROOTS, STEP_ROOTS[0]]):
        with pytest.raises(ExecutionError, match="step roots do not hash to its trace_root"):
            worker_execution(_worker_fields(forged, trace_root, b"out"), b"out")


@pytest.fixture
def tiny(tmp_path: Path, pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch) -> str:
    home = tmp_path / "home"
    monkeypatch.setenv("VERIMESH_HOME", str(home))
    return install_tiny_model(home, pytestconfig.cache.mkdir("verimesh-bundles"))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Journal, BlobStore, TestClient]]:
    """The node API over a journal and blob store of its own, without a chain."""
    journal = Journal(tmp_path / "journal.sqlite")
    store = BlobStore(tmp_path / "blobs")
    services = NodeServices(
        info=lambda: NodeInfo.model_construct(),
        journal=journal,
        store=store,
        verifier=Verifier(DOMAIN, MemoryNonceStore()),
        accept_upload=lambda *_: None,
        result_readers=lambda _: set(),
        dispute_readers=lambda _: set(),
        dispute_data=lambda *_: {},
    )
    with TestClient(create_app(services)) as client:
        yield journal, store, client
    journal.close()


def _assign(journal: Journal, job_id: int, model_root: str) -> None:
    assignment = Assignment(job_id=job_id, replica=0, requester=REQUESTER.address, spec_hash="0x" + "aa" * 32,
                            model_root=model_root, input_root="0x" + "cc" * 32, commit_deadline=1000,
                            reveal_deadline=2000)  # fmt: skip
    journal.record_assignments([assignment], 1)


def _result(client: TestClient, job_id: int) -> JobResultBody:
    envelope = seal(REQUESTER, JobResultRequest(job_id=job_id, requester=REQUESTER.address), DOMAIN)
    response = client.post(f"/v1/jobs/{job_id}/result", content=envelope.model_dump_json(),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 200, response.text
    return JobResultBody.model_validate_json(response.content)


@pytest.mark.slow
def test_result_serves_the_step_roots_of_the_committed_trace(tiny: str, node) -> None:
    journal, store, client = node
    spec, data = make_spec(tiny, "generate", "ROMEO:", {"max_tokens": 3, "seed": 2})
    execution = InProcessExecutor().run(spec, data)
    _assign(journal, 1, tiny)
    journal.advance(1, ("assigned",), "ready", spec_json=spec.model_dump_json())
    store.put(execution.output_bytes, pin=True)
    journal.advance(1, ("ready",), "executed", **executed_fields(execution), salt="0x" + "ee" * 32)
    journal.advance(1, ("executed",), "revealed")

    body = _result(client, 1)
    assert body.step_roots is not None and len(body.step_roots) == 3
    assert hex_root(merkle_root(bytes.fromhex(r[2:]) for r in body.step_roots)) == body.trace_root
    assert body.trace_root == hex_root(execution.trace_root)


def test_result_of_a_duty_without_step_roots_serves_none(node) -> None:
    """A copy-replica cheat (garbage roots) or a job journaled by an older node has none."""
    journal, store, client = node
    spec, _ = make_spec("0x" + "bb" * 32, "generate", "ROMEO:")
    root = hex_root(store.put(b"output", pin=True))
    _assign(journal, 2, spec.model_root)
    journal.advance(2, ("assigned",), "revealed", spec_json=spec.model_dump_json(), output_root=root,
                    trace_root="0x" + "dd" * 32, output_json=json.dumps("text"))  # fmt: skip
    assert _result(client, 2).step_roots is None
