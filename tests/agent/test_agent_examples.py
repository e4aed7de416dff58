"""The two worked examples of docs/agents.md run as written, as subprocesses, against
`verimesh devnet up` and a `verimesh node run` process serving MiniLM and tiny-shakespeare."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "node"))
from daemon_net import node_process, share_selfbench, wait_registered

from verimesh.chain.devnet import free_port

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
ROOT = Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[tuple[Path, dict]]:
    from agent_net import prepare_home

    tmp = tmp_path_factory.mktemp("agent-examples")
    home, state = tmp / "home", tmp / "devnet"
    prepare_home(home, pytestconfig.cache.mkdir("verimesh-artifacts"), pytestconfig.cache.mkdir("verimesh-bundles"),
                 ["minilm", "tiny-shakespeare"])  # fmt: skip
    env = {**os.environ, "VERIMESH_HOME": str(home)}
    cli = [sys.executable, "-m", "verimesh.cli.main"]
    up = subprocess.run([*cli, "devnet", "up", "--state-dir", str(state), "--port", str(free_port())],
                        env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    port = free_port()
    bench = pytestconfig.cache.mkdir("verimesh-selfbench")
    node = node_process(state, tmp / "node", "dev2", port, tmp / "node.log", {"VERIMESH_HOME": str(home)}, bench,
                        ["--model", "minilm", "--model", "tiny-shakespeare", "--in-process"])  # fmt: skip
    try:
        wait_registered(f"http://127.0.0.1:{port}", timeout=180)
        share_selfbench(tmp / "node", bench)
        yield state, env
    finally:
        node.terminate()
        node.wait(timeout=20)
        subprocess.run([*cli, "devnet", "down", "--state-dir", str(state)], env=env, capture_output=True, timeout=60)


def _example(name: str, args: list[str], env: dict) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_examples_and_cli_search(network: tuple[Path, dict], tmp_path: Path) -> None:
    """One test, one network: under xdist, separate tests would each start their own."""
    state, env = network
    # examples/agent_buys_embeddings.py
    out = _example("agent_buys_embeddings.py", ["--state-dir", str(state), "--home", str(tmp_path / "a")], env)
    assert "closest to 'Someone is making music.': 'A woman is playing the violin.'" in out
    assert out.count("verified") == 2  # the documents' batch and the query
    assert "job " in out and "fund" in out and "0x" in out

    # examples/agent_resells_search.py
    out = _example("agent_resells_search.py", ["--state-dir", str(state), "--home", str(tmp_path / "b")], env)
    assert "-> 'a cheating provider loses its stake'" in out
    assert "seller: redeemed 9 VMT and closed the channel" in out
    assert "buyer paid 9 VMT for 3 requests" in out
    # (selling answers instead, --sell answer, is the resale test of test_agent_devnet.py)

    # verimesh agent run --goal search:QUERY|FILE
    docs = tmp_path / "docs.txt"
    docs.write_text("A man is eating food.\nA woman is playing the violin.\nA monkey is riding a horse.\n")
    result = subprocess.run(
        [sys.executable, "-m", "verimesh.cli.main", "agent", "run", "--budget", "10", "--goal",
         f"search:Someone is making music.|{docs}", "--deployment", str(state / "deployment.json"),
         "--owner", "dev4", "--home", str(tmp_path / "agent")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    ranking = [line for line in result.stdout.splitlines() if line[:1] in "0123456789-"]
    assert ranking[0].endswith("A woman is playing the violin.")
    assert "plan: 2 jobs" in result.stdout and "spent 4 VMT of 10" in result.stdout
