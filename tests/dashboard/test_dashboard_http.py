"""The dashboard over real HTTP (uvicorn on 127.0.0.1) against a real anvil devnet, a real
node daemon and members whose devices are down."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
import typer
from typer.testing import CliRunner

from verimesh.chain.devnet import free_port
from verimesh.cli.dashboard import dashboard
from verimesh.dashboard.models import DashboardState

pytestmark = pytest.mark.devnet


def _job(state: dict, job_id: int) -> dict | None:
    return next((j for j in state["jobs"] if j["job_id"] == job_id), None)


def test_page_and_schema_are_served(live) -> None:
    page = httpx.get(live.url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<svg id="network"' in page.text and 'id="nodes-table"' in page.text
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    schema = httpx.get(live.url + "/openapi.json", timeout=5).json()
    assert "/api/state" in schema["paths"]


def test_nodes_show_chain_facts_and_their_own_api(live) -> None:
    state = DashboardState.model_validate(live.state())
    nodes = {n.address: n for n in state.nodes}
    daemon = nodes[live.daemon_address]
    assert daemon.role == "provider" and daemon.info.online and daemon.info.working is True
    assert daemon.stake >= 100 * 10**18 and daemon.price == 10**18 and daemon.info.status
    for address in [*live.providers, live.validator.address]:
        assert nodes[address].info.online is False and "not reachable" in nodes[address].info.status
    assert nodes[live.validator.address].role == "validator"


def test_job_state_history_and_gas_over_rpc(live) -> None:
    job = live.post(param=2)
    state = live.wait_for(lambda s: _job(s, job.job_id) is not None, f"job {job.job_id}")
    shown = _job(state, job.job_id)
    assert shown["state"] == "assigned" and sorted(shown["providers"]) == sorted(job.providers)
    assert shown["requester"] == live.requester.address

    salts = live.commit(job)
    live.wait_for(lambda s: _job(s, job.job_id)["state"] == "committed", "the commit")
    live.reveal(job, salts)
    live.wait_for(lambda s: _job(s, job.job_id)["state"] == "revealed", "the reveal")
    live.net.backend.advance_time(61)
    live.net.job_market.finalize(job.job_id, signer=live.requester)
    state = live.wait_for(lambda s: _job(s, job.job_id)["state"] == "finalized", "the settlement")
    shown = _job(state, job.job_id)
    assert [h["state"] for h in shown["history"]] == [
        "assigned", "assigned", "committed", "committed", "revealed", "finalized",
    ]  # fmt: skip
    # post + 2 commits + 2 reveals + finalize, each >= 21k; read from the receipts on anvil
    assert shown["gas"] is not None and shown["gas"] > 6 * 21_000
    requester = next(b for b in state["balances"] if b["address"] == live.requester.address)
    assert requester["label"] == "requester"
    held = sum(b["wallet"] for b in state["balances"])
    assert held <= state["total_supply"]  # dev accounts not in the market hold the rest


def test_state_has_no_error_while_the_chain_answers(live) -> None:
    state = live.state()
    assert state["error"] is None and state["block"] > 0


def test_command_serves_a_deployment(live, tmp_path) -> None:
    """`verimesh dashboard --deployment ... --port N` as its own process (the demo starts it so)."""
    port = free_port()
    run = "import typer; from verimesh.cli.dashboard import dashboard; typer.run(dashboard)"
    args = [sys.executable, "-c", run, "--deployment", str(live.state_dir / "deployment.json"),
            "--port", str(port), "--interval", "0.2"]  # fmt: skip
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/state", timeout=1)
                if r.status_code == 200 and len(r.json()["nodes"]) == 4:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"the command did not serve the state; log: {log.read_text()}")
        assert {n["address"] for n in r.json()["nodes"]} >= {live.daemon_address}
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0 or proc.returncode in (-15, 143), log.read_text()


def test_command_says_what_to_fix(tmp_path) -> None:
    app = typer.Typer()
    app.command()(dashboard)
    result = CliRunner().invoke(app, ["--deployment", str(tmp_path / "missing.json")])
    assert result.exit_code == 1 and "verimesh devnet up" in result.output
    deployment = tmp_path / "deployment.json"
    deployment.write_text("{}")
    result = CliRunner().invoke(app, ["--deployment", str(deployment), "--interval", "0"])
    assert result.exit_code == 2 and "--interval must be > 0" in result.output
