"""Bad input to a real node's API: each is a 4xx that says what is wrong, nothing is written,
and the node keeps serving. The node runs against a real anvil devnet with the contracts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from daemon_net import InProcessNode, dev_wallet, devnet_dir

from verimesh.chain.devnet import free_port
from verimesh.client import Client, replicate
from verimesh.crypto.eip712 import Domain
from verimesh.crypto.envelope import seal
from verimesh.crypto.messages import DisputeDataRequest, JobResultRequest
from verimesh.crypto.messages import Request as SignedRequest
from verimesh.node.api import ENVELOPE_HEADER, MAX_BODY_BYTES
from verimesh.node.jobs import JobUpload, make_spec

pytestmark = pytest.mark.devnet
JSON = {"content-type": "application/json"}
MODEL = "0x" + "ab" * 32  # any root: these jobs never reach execution


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, InProcessNode, Client]]:
    tmp = tmp_path_factory.mktemp("api")
    with devnet_dir(tmp) as state:
        node = InProcessNode(state, tmp / "node", "dev2")
        client = Client(state / "deployment.json", dev_wallet(state, "dev1"))
        try:
            yield state, node, client
        finally:
            client.close()
            node.close()


def _post(client: Client, text: str) -> tuple[int, object, bytes]:
    """Post a job on chain WITHOUT uploading its input (the tests upload by hand)."""
    spec, data = make_spec(MODEL, "embed", [text])
    jm = client.net.job_market
    mode = replicate(1)
    price = client.market_price(1)
    client.net.token.approve(jm.address, 2**256 - 1)
    posted = jm.post_job(spec.hash(), spec.model_root_bytes, spec.input_root_bytes,
                         mode.mode, mode.param, price, 300, 120, 60)  # fmt: skip
    return posted.job_id, spec, data


def _signed_upload(wallet, domain: Domain, job_id: int, body: bytes, signed_body: bytes | None = None) -> dict:
    path = f"/v1/jobs/{job_id}/input"
    env = seal(wallet, SignedRequest.for_http("POST", path, signed_body if signed_body is not None else body), domain)
    return {ENVELOPE_HEADER: env.model_dump_json(), "content-type": "application/json"}


def test_info_and_openapi(net) -> None:
    _, node, _ = net
    info = httpx.get(f"{node.url}/v1/info").json()
    assert info["address"] == node.daemon.address
    assert info["tasks"] == ["embed", "generate"]
    schema = httpx.get(f"{node.url}/openapi.json").json()
    assert "/v1/jobs/{job_id}/result" in schema["paths"]
    assert "/v1/blobs/{root}/chunks/{index}" in schema["paths"]


def test_bad_uploads_are_refused_and_nothing_is_written(net) -> None:
    state, node, client = net
    job_id, spec, data = _post(client, "hello")
    url = f"{node.url}/v1/jobs/{job_id}/input"
    body = JobUpload.build(spec, data).model_dump_json().encode()
    domain = client.domain
    requester = client.wallet
    stranger = dev_wallet(state, "dev5")

    r = httpx.post(url, content=body)
    assert r.status_code == 401 and "x-verimesh-envelope" in r.json()["detail"]

    r = httpx.post(url, content=body, headers={ENVELOPE_HEADER: "{not json"})
    assert r.status_code == 400

    # Signed for another body: the signature covers sha256(body).
    r = httpx.post(url, content=body, headers=_signed_upload(requester, domain, job_id, body, b"other"))
    assert r.status_code == 401 and "does not match" in r.json()["detail"]

    # Signed for another chain.
    other = Domain(chain_id=domain.chain_id + 1, verifying_contract=domain.verifying_contract)
    r = httpx.post(url, content=body, headers=_signed_upload(requester, other, job_id, body))
    assert r.status_code == 400 and "chain" in r.json()["detail"]

    # Not the requester.
    r = httpx.post(url, content=body, headers=_signed_upload(stranger, domain, job_id, body))
    assert r.status_code == 403 and "requester" in r.json()["detail"]

    # A spec that is not the one posted (other params -> other hash).
    wrong = JobUpload.build(spec.model_copy(update={"params": {"x": 1}}), data).model_dump_json().encode()
    r = httpx.post(url, content=wrong, headers=_signed_upload(requester, domain, job_id, wrong))
    assert r.status_code == 400 and "spec_hash" in r.json()["detail"]

    # Input bytes that are not the posted input.
    forged = JobUpload.build(spec, b'["bye"]').model_dump_json().encode()
    r = httpx.post(url, content=forged, headers=_signed_upload(requester, domain, job_id, forged))
    assert r.status_code == 400 and "input_root" in r.json()["detail"]

    # Not JSON of a JobUpload.
    junk = b'{"spec": 1}'
    r = httpx.post(url, content=junk, headers=_signed_upload(requester, domain, job_id, junk))
    assert r.status_code == 422

    # Oversized body: refused from its content-length, before it is read.
    big = b"x" * (MAX_BODY_BYTES + 1)
    r = httpx.post(url, content=big, headers=_signed_upload(requester, domain, job_id, big))
    assert r.status_code == 413

    # A job this node is not assigned to.
    r = httpx.post(f"{node.url}/v1/jobs/9999/input", content=body,
                   headers=_signed_upload(requester, domain, 9999, body))  # fmt: skip
    assert r.status_code == 404

    # Nothing was written: the job still waits for its input, the input blob is absent.
    duty = node.daemon.journal.job(job_id)
    assert duty.step == "assigned" and duty.spec_json is None
    assert not node.daemon.store.has(spec.input_root)

    # Replay: a valid envelope used twice is refused the second time.
    headers = _signed_upload(stranger, domain, job_id, body)
    assert httpx.post(url, content=body, headers=headers).status_code == 403
    r = httpx.post(url, content=body, headers=headers)
    assert r.status_code == 409 and "already used" in r.json()["detail"]


def test_results_only_for_the_requester(net) -> None:
    state, node, client = net
    job_id, _, _ = _post(client, "secret")
    deadline = time.monotonic() + 30
    while node.daemon.journal.job(job_id) is None:  # the node's next poll journals it
        assert time.monotonic() < deadline
        time.sleep(0.02)
    url = f"{node.url}/v1/jobs/{job_id}/result"
    domain = client.domain
    stranger = dev_wallet(state, "dev6")

    def ask(wallet, requester: str, jid: int = job_id, **kw) -> httpx.Response:
        env = seal(wallet, JobResultRequest(job_id=jid, requester=requester), domain, **kw)
        return httpx.post(url, content=env.model_dump_json(), headers=JSON)

    r = ask(stranger, stranger.address)
    assert r.status_code == 403 and "neither the requester" in r.json()["detail"]
    r = ask(stranger, client.wallet.address)  # claims to be the requester but signs as itself
    assert r.status_code == 403
    r = ask(client.wallet, client.wallet.address, jid=job_id + 1000)
    assert r.status_code == 400 and "URL" in r.json()["detail"]
    r = ask(client.wallet, client.wallet.address, expiry=int(time.time()) - 5)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    r = ask(client.wallet, client.wallet.address)
    assert r.status_code == 409 and "no result yet" in r.json()["detail"]
    r = httpx.post(url, content=b"[1, 2]", headers=JSON)
    assert r.status_code == 422
    # Dispute evidence: a stranger is refused before anything is recomputed.
    env = seal(stranger, DisputeDataRequest(job_id=job_id, replica=0, leaf_index=0), domain)
    r = httpx.post(f"{node.url}/v1/jobs/{job_id}/trace", content=env.model_dump_json(), headers=JSON)
    assert r.status_code == 403
    # The node is still up and following the chain.
    assert httpx.get(f"{node.url}/v1/jobs/{job_id}").json()["step"] == "assigned"


def test_node_that_cannot_register_stops_with_the_reason(net, tmp_path) -> None:
    state, _, _ = net
    args = [sys.executable, "-m", "verimesh.cli.node", "run", "--deployment", str(state / "deployment.json"),
            "--dev", "dev7", "--home", str(tmp_path / "n"), "--port", str(free_port()), "--stake", "1000000"]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "registering needs a stake of 1e+06 VMT" in result.stderr
    bad = subprocess.run([*args[:-2], "--price", "-3"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "node.price" in bad.stderr
