"""The node's blob store is capped, and a finished job's blobs become evictable."""

from __future__ import annotations

from pathlib import Path

import pytest

from verimesh.chain.accounts import dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.client import CONTRACTS
from verimesh.chain.compile import load_artifacts
from verimesh.chain.deploy import deploy_network, describe
from verimesh.chain.deployment import NetworkParams
from verimesh.crypto.wallet import Wallet
from verimesh.node.daemon import DaemonSettings, NodeDaemon
from verimesh.node.journal import Assignment
from verimesh.paths import HOME_ENV
from verimesh.store.ids import format_root


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config) -> NodeDaemon:
    cache = pytestconfig.cache.mkdir("verimesh-artifacts")  # compiled once, keyed by sources
    artifacts = load_artifacts(cache_dir=cache, names=CONTRACTS)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    deployer, provider = dev_signer(0), dev_signer(2)
    params = NetworkParams()
    network = deploy_network(BoaBackend(), deployer, params, artifacts)
    path = tmp_path / "deployment.json"
    describe(network, deployer, params, artifacts, None).save(path)
    settings = DaemonSettings(
        home=tmp_path / "node",
        deployment=path,
        wallet=Wallet.from_key("provider", provider._account.key),
        blob_cap_bytes=10_000_000,
    )
    return NodeDaemon(settings)


def _job(node: NodeDaemon, job_id: int, input_blob: bytes, output_blob: bytes) -> None:
    input_root = format_root(node.store.put(input_blob, pin=True))
    output_root = format_root(node.store.put(output_blob, pin=True))
    node.journal.record_assignments(
        [
            Assignment(
                job_id=job_id,
                replica=0,
                requester="0x" + "11" * 20,
                spec_hash="0x" + "aa" * 32,
                model_root="0x" + "bb" * 32,
                input_root=input_root,
                commit_deadline=1000,
                reveal_deadline=2000,
            )
        ],
        job_id,
    )
    node.journal.advance(job_id, ("assigned",), "ready")
    node.journal.advance(job_id, ("ready",), "executed", output_root=output_root)


def _pinned(node: NodeDaemon) -> dict[str, bool]:
    return {format_root(b.root): b.pinned for b in node.store.blobs()}


def test_the_store_has_the_configured_cap(node: NodeDaemon) -> None:
    assert node.store.cap_bytes == 10_000_000


def test_a_finished_job_unpins_its_blobs_but_not_those_a_job_in_flight_shares(node: NodeDaemon) -> None:
    _job(node, 1, b"shared input", b"output one")
    _job(node, 2, b"shared input", b"output two")
    node.journal.fail(1, "refunded")
    node._release_blobs(1)
    pinned = _pinned(node)
    out_one = node.journal.job(1).output_root
    out_two = node.journal.job(2).output_root
    shared = node.journal.job(1).input_root
    assert pinned[out_one] is False  # job 1 is over: its output may be evicted
    assert pinned[shared] is True  # job 2 still needs the shared input
    assert pinned[out_two] is True
    node.journal.fail(2, "refunded")
    node._release_blobs(2)
    assert not any(_pinned(node).values())
