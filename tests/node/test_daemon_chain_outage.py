"""The chain endpoint goes away under a running node and comes back: the node keeps serving
HTTP, says why it is not working, answers uploads with a clear 503, and resumes its duties
(finds the job posted meanwhile, accepts its input) once the endpoint is back."""

from __future__ import annotations

import time

import httpx
import pytest
from daemon_net import InProcessNode, TcpProxy, dev_wallet, devnet_dir

from verimesh.chain import Deployment
from verimesh.client import Client, replicate
from verimesh.crypto.envelope import seal
from verimesh.crypto.messages import Request as SignedRequest
from verimesh.node.api import ENVELOPE_HEADER
from verimesh.node.jobs import JobUpload, make_spec

pytestmark = pytest.mark.devnet


def _until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_node_rides_out_a_chain_outage(tmp_path) -> None:
    with devnet_dir(tmp_path) as state:
        deployment = Deployment.load(state / "deployment.json")
        proxy = TcpProxy(int(deployment.rpc_url.rsplit(":", 1)[1]))
        proxied = tmp_path / "proxied.json"
        deployment.model_copy(update={"rpc_url": proxy.url}).save(proxied)
        node = InProcessNode(state, tmp_path / "node", "dev2", deployment=proxied)
        client = Client(deployment, dev_wallet(state, "dev1"))
        try:
            info = lambda: httpx.get(f"{node.url}/v1/info").json()  # noqa: E731
            proxy.cut()
            _until(lambda: "chain error" in info()["status"], "the node to notice the outage")
            assert info()["working"] is False

            # A job is posted meanwhile (the requester reaches the chain directly).
            spec, data = make_spec("0x" + "ab" * 32, "embed", ["while you were out"])
            jm = client.net.job_market
            client.net.token.approve(jm.address, 2**256 - 1)
            mode = replicate(1)
            posted = jm.post_job(spec.hash(), spec.model_root_bytes, spec.input_root_bytes,
                                 mode.mode, mode.param, client.market_price(1), 300, 120, 60)  # fmt: skip
            path = f"/v1/jobs/{posted.job_id}/input"
            body = JobUpload.build(spec, data).model_dump_json().encode()

            def upload() -> httpx.Response:
                env = seal(client.wallet, SignedRequest.for_http("POST", path, body), client.domain)
                headers = {ENVELOPE_HEADER: env.model_dump_json(), "content-type": "application/json"}
                return httpx.post(node.url + path, content=body, headers=headers, timeout=30)

            r = upload()
            assert r.status_code == 503 and "cannot reach the chain" in r.json()["detail"]
            assert node.daemon.journal.job(posted.job_id) is None  # nothing written

            proxy.restore()
            _until(lambda: info()["working"], "the node to reconnect", timeout=60)
            _until(lambda: node.daemon.journal.job(posted.job_id) is not None, "the job to be found")
            assert upload().status_code == 202
            assert node.daemon.journal.job(posted.job_id).spec_json is not None
        finally:
            client.close()
            node.close()
            proxy.cut()
