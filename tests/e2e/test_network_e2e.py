"""The whole network across processes on 127.0.0.1: `verimesh devnet up` (anvil + contracts),
three `verimesh node run` processes, and a requester process using the SDK.

Embedding jobs (MiniLM, replicate(3): every node runs it and the roots must agree) and
generation jobs (the shipped tiny decoder, audit and replicate modes) complete; the
requester gets exactly the output root `verimesh run` computes locally; after the challenge
window the nodes finalize and withdraw, and every token balance moved as the contract says.
Node 0 runs jobs in its capped worker subprocess (the default), nodes 1 and 2 in-process.
The third node starts with an empty model store: it fetches the models from the other two
(verified chunk by chunk) when its first job arrives.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verimesh.chain import Deployment, JobState, Network
from verimesh.chain.devnet import free_port

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "node"))
from daemon_net import install_models, node_process, share_selfbench, wait_registered  # noqa: E402

PY = sys.executable


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run([PY, "-m", "verimesh.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=timeout)  # fmt: skip
    assert result.returncode == 0, f"verimesh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_jobs_through_three_node_processes(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    import os

    home, empty_home, state = tmp_path / "home", tmp_path / "home-empty", tmp_path / "devnet"
    roots = install_models(home, ["minilm", "tiny-shakespeare"], pytestconfig.cache.mkdir("verimesh-bundles"))
    env = {**os.environ, "VERIMESH_HOME": str(home)}
    _cli("devnet", "up", "--state-dir", str(state), "--port", str(free_port()), env=env)
    procs: list[subprocess.Popen] = []
    try:
        deployment = Deployment.load(state / "deployment.json")
        net = Network.connect(deployment)
        accounts = [a.address for a in deployment.dev_accounts]
        requester, providers = accounts[1], accounts[2:5]
        start = {a: net.token.balance_of(a) for a in [requester, *providers]}

        ports = [free_port() for _ in range(3)]
        bench = pytestconfig.cache.mkdir("verimesh-selfbench")
        for i, port in enumerate(ports):
            node_env = {"VERIMESH_HOME": str(empty_home if i == 2 else home)}
            log = tmp_path / f"node{i}.log"
            # Node 0 runs jobs the default way, in its capped nice-19 worker subprocess; 1 and 2
            # in-process, so that a test machine busy with other tests cannot starve them all.
            extra = [] if i == 0 else ["--in-process"]
            procs.append(node_process(state, tmp_path / f"node{i}", f"dev{i + 2}", port, log, node_env, bench, extra))
            if i == 0:  # the first node measures the machine; the others reuse its figures
                wait_registered(f"http://127.0.0.1:{port}", timeout=180)
                share_selfbench(tmp_path / "node0", bench)
        for port in ports:
            wait_registered(f"http://127.0.0.1:{port}", timeout=180)

        jobs = [
            {"model": roots["minilm"], "task": "embed", "input": "hello world", "replicate": 3},
            {"model": roots["tiny-shakespeare"], "task": "generate", "input": "ROMEO:", "params": {"max_tokens": 24, "seed": 3}, "audit": 0.0},
            {"model": roots["tiny-shakespeare"], "task": "generate", "input": "JULIET:", "params": {"max_tokens": 16, "seed": 5}, "replicate": 2},
            {"model": roots["minilm"], "task": "embed", "input": ["hello world", "verimesh pays idle devices"], "replicate": 1},
        ]  # fmt: skip
        out = subprocess.run(
            [PY, str(HERE / "requester.py"), str(state / "deployment.json"), str(state / "wallets"), json.dumps(jobs)],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        logs = "\n".join((tmp_path / f"node{i}.log").read_text()[-2000:] for i in range(3))
        assert out.returncode == 0, f"{out.stdout}\n{out.stderr}\n{logs}"
        results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert len(results) == len(jobs)

        # Exactly the bytes `verimesh run` gives locally: same output root (and trace root).
        for job, got in zip(jobs[:3], results[:3], strict=True):
            local = local_run(job, env)
            assert got["output_root"] == local["output_root"], (job, got, local)
            assert got["trace_root"] == local["trace_root"]
            assert got["output"] == local["output"]
        # A batch embeds each text as if alone: its first vector is job 0's, bit for bit.
        assert len(results[3]["output"]) == 2
        assert results[3]["output"][0] == results[0]["output"]

        # Money: close the challenge windows; every node finalizes and withdraws.
        net.backend.advance_time(61 + 30)
        jm = net.job_market
        deadline = time.monotonic() + 60
        ids = [r["job_id"] for r in results]
        while not all(jm.jobs(i).state == JobState.FINALIZED for i in ids) or any(
            jm.balances(p) for p in providers
        ):
            assert time.monotonic() < deadline, logs
            time.sleep(0.2)
        served = {p: sum(p in r["providers"] for r in results) for p in providers}
        escrow = 0
        for job_id in ids:
            job = jm.jobs(job_id)
            escrow += jm.escrow_for(job.mode, job.mode_param, job.price)
        price = jm.jobs(ids[0]).price
        for p in providers:
            stake = net.registry.members(p).stake
            assert net.token.balance_of(p) == start[p] - stake + served[p] * price
        assert net.token.balance_of(requester) == start[requester] - escrow
        assert jm.balances(requester) == 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        _cli("devnet", "down", "--state-dir", str(state), env={**os.environ})


def local_run(job: dict, env: dict[str, str]) -> dict:
    """`verimesh run` of the same job in a separate process: its JSON report."""
    args = ["run", "--model", job["model"], "--task", job["task"], "--json"]
    inputs = job["input"] if isinstance(job["input"], list) else [job["input"]]
    for text in inputs:
        args += ["--input", text]
    for key, value in job.get("params", {}).items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return json.loads(_cli(*args, env=env))
