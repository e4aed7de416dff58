"""A dispute duty survives SIGKILL: the honest provider is a real `verimesh node run` process,
killed (SIGKILL, no cleanup) the moment its job turns DISPUTED and started again on the same
home. It picks the dispute up from its journal and the chain (the player keeps no state of
its own), plays it to the end, wins, is paid; the cheat (``one-bad-op``) is slashed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from zoo_world import WINDOW, Zoo, ZooNode, job_state, slashed_accounts, wait_for

from verimesh.chain import JobState
from verimesh.chain.devnet import free_port
from verimesh.client import replicate
from verimesh.node.journal import Journal
from verimesh.verify.adversary import Behaviour
from verimesh.verify.bisection import Party

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
PROMPT = "ROMEO:"


def _node_process(zoo: Zoo, home: Path, port: int, log: Path) -> subprocess.Popen:
    args = [
        sys.executable, "-m", "verimesh.cli.node", "run",
        "--deployment", str(zoo.state / "deployment.json"), "--dev", "dev2",
        "--home", str(home), "--port", str(port), "--poll", "0.05", "--in-process",
        "--max-cpu", "100", "--grace", "0",
    ]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def _up(url: str) -> bool:
    try:
        info = httpx.get(f"{url}/v1/info", timeout=1).json()
    except (httpx.HTTPError, ValueError):
        return False
    return info.get("status") != "starting" and info.get("working", False)


def _step(home: Path, job_id: int) -> str | None:
    journal = Journal(home / "journal.sqlite")
    try:
        duty = journal.job(job_id)
        return None if duty is None else duty.step
    finally:
        journal.close()


def test_killed_honest_node_finishes_its_dispute_after_restart(
    zoo_chain: Zoo, pool: list, pytestconfig: pytest.Config
) -> None:
    zoo = zoo_chain
    home, port, log = zoo.tmp / "honest-proc", free_port(), zoo.tmp / "honest-proc.log"
    bench = pytestconfig.cache.mkdir("verimesh-selfbench") / "selfbench.json"
    if bench.is_file():  # measured once per machine: skip the seconds of self-benchmark
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(bench, home / "selfbench.json")
    url = f"http://127.0.0.1:{port}"
    proc = _node_process(zoo, home, port, log)
    cheater = ZooNode(zoo.state, zoo.tmp / "cheater", "dev3", Behaviour.ONE_BAD_OP)
    try:
        wait_for(lambda: _up(url) or proc.poll() is not None, "the node process", timeout=180)
        assert proc.poll() is None, log.read_text()[-3000:]
        if not bench.is_file() and (home / "selfbench.json").is_file():
            shutil.copy(home / "selfbench.json", bench)
        handle = zoo.client.submit(
            model=zoo.model_root, task="generate", input=PROMPT, params={"max_tokens": 3, "seed": 9},
            mode=replicate(2), commit_window=WINDOW, reveal_window=WINDOW, challenge_window=WINDOW,
        )  # fmt: skip
        job_id = handle.job_id
        wait_for(lambda: job_state(zoo.client, job_id) == JobState.DISPUTED, "the dispute", timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        rounds = zoo.client.net.job_market.disputes(job_id).round
        assert _step(home, job_id) == "revealed"  # the journal still holds the duty

        proc = _node_process(zoo, home, port, log)  # same home: a new life of the same node
        nodes = {"honest": _Endpoint(url, handle.providers, cheater.address), "cheater": cheater}
        ruling = zoo.referee.rule(job_id, nodes, handle.spec, PROMPT, handle.block)
        assert zoo.client.net.job_market.disputes(job_id).round > rounds  # it played on after the kill
        defender = handle.providers[zoo.client.net.job_market.disputes(job_id).defender_replica]
        assert ruling.guilty == {Party.DEFENDER if defender == cheater.address else Party.CHALLENGER}
        assert slashed_accounts(zoo.client, job_id, handle.block) == {cheater.address.lower()}
        wait_for(lambda: _step(home, job_id) == "done", "the restarted node to be paid", timeout=60)
    finally:
        cheater.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


class _Endpoint:
    """The honest node process as the referee sees it: an address and a URL."""

    def __init__(self, url: str, providers: list[str], cheater: str) -> None:
        self.url = url
        self.address = next(p for p in providers if p != cheater)
