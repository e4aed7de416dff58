"""Kill a real `verimesh node run` process at every step of a job, restart it, and check that
it still completes every duty: the job is finalized, the requester gets the verified output,
the provider is paid and its journal says done.

The kill is the journal's fault-injection hook: ``VERIMESH_CRASH_AT=<point>`` makes the node
``os._exit(137)`` right there (no cleanup, no flush: what SIGKILL does). Each crash point
uses its own provider account, deregistered afterwards so that later jobs are not drawn to
a node that is gone.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_net import (
    dev_wallet,
    devnet_dir,
    install_tiny_model,
    node_process,
    share_selfbench,
    wait_registered,
)

from verimesh.chain import JobState
from verimesh.chain.devnet import free_port
from verimesh.client import Client, replicate
from verimesh.node.journal import CRASH_ENV, CRASH_POINTS

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
PROMPT = "ROMEO:"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[tuple[Path, Path, str, Client]]:
    tmp = tmp_path_factory.mktemp("restart")
    model_root = install_tiny_model(tmp / "home", pytestconfig.cache.mkdir("verimesh-bundles"))
    with devnet_dir(tmp) as state:
        client = Client(state / "deployment.json", dev_wallet(state, "dev1"))
        try:
            yield tmp, state, model_root, client
        finally:
            client.close()


def _step(home: Path, job_id: int) -> str | None:
    path = home / "journal.sqlite"
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT step FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_node_completes_every_duty_after_restart(world, point: str, pytestconfig: pytest.Config) -> None:
    tmp, state, model_root, client = world
    account = f"dev{2 + CRASH_POINTS.index(point)}"
    provider = dev_wallet(state, account)
    home, port = tmp / f"node-{point}", free_port()
    env = {"VERIMESH_HOME": str(tmp / "home")}
    log = tmp / f"node-{point}.log"
    before = client.net.token.balance_of(provider.address)

    bench = pytestconfig.cache.mkdir("verimesh-selfbench")
    # In-process jobs: these tests are about the journal; the worker path runs in tests/e2e.
    proc = node_process(state, home, account, port, log, {**env, CRASH_ENV: point}, bench, ["--in-process"])
    try:
        wait_registered(f"http://127.0.0.1:{port}", timeout=180)
        share_selfbench(home, bench)
        stake = client.net.registry.members(provider.address).stake
        price = client.market_price(1)
        handles: list = []

        def post() -> None:
            params = {"max_tokens": 4, "seed": 7}
            handles.append(client.submit(model=model_root, task="generate", input=PROMPT, params=params, mode=replicate(1)))

        submit = threading.Thread(target=post)
        submit.start()
        if point in ("after_finalize_sent", "after_withdraw_sent"):
            submit.join()
            handles[0].wait_revealed(timeout=60)
            client.net.backend.advance_time(61)  # close the challenge window
        assert proc.wait(timeout=90) == 137, log.read_text()[-3000:]

        proc = node_process(state, home, account, port, log, env, bench, ["--in-process"])  # restart, no fault
        submit.join(timeout=60)
        handle = handles[0]
        if point not in ("after_finalize_sent", "after_withdraw_sent"):
            output = handle.result(timeout=60)
            client.net.backend.advance_time(61)
        else:
            output = handle.result(timeout=60)
        assert output.output_root == handle.revealed_roots()[0]

        deadline = time.monotonic() + 60
        while _step(home, handle.job_id) != "done":
            assert time.monotonic() < deadline, f"journal step {_step(home, handle.job_id)}\n" + log.read_text()[-3000:]
            time.sleep(0.1)
        assert client.net.job_market.jobs(handle.job_id).state == JobState.FINALIZED
        assert client.net.job_market.balances(provider.address) == 0
        assert client.net.token.balance_of(provider.address) == before - stake + price
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        # Leave the market: later crash points must not be drawn to this node.
        if client.net.registry.members(provider.address).active:
            client.net.registry.as_signer(_signer(provider)).deregister()


def _signer(wallet):
    from verimesh.chain import Signer

    return Signer.from_wallet(wallet)
