"""`verimesh job submit | status | result` as a user runs them, against a real devnet and
a real node: the printed result is the verified output, bad input is a clear CLI error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "node"))
from daemon_net import InProcessNode, devnet_dir, install_tiny_model

from verimesh.chain.backends.rpc import RpcBackend
from verimesh.client.sdk import DEFAULT_CHALLENGE_WINDOW

pytestmark = [pytest.mark.devnet, pytest.mark.slow]


def _job(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verimesh.cli.job", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_submit_status_result(tmp_path: Path, pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("VERIMESH_HOME", str(home))
    root = install_tiny_model(home, pytestconfig.cache.mkdir("verimesh-bundles"))
    env = {**os.environ, "VERIMESH_HOME": str(home)}
    with devnet_dir(tmp_path) as state:
        node = InProcessNode(state, tmp_path / "node", "dev2", models=[root])
        try:
            dep = ["--deployment", str(state / "deployment.json")]
            done = _job("submit", "--model", "tiny-shakespeare", "--task", "generate", "--input", "ROMEO:",
                        "--max-tokens", "5", "--seed", "1", "--json", *dep, env=env)  # fmt: skip
            assert done.returncode == 0, done.stderr
            printed = json.loads(done.stdout.strip().splitlines()[-1])
            assert printed["output_root"].startswith("0x") and isinstance(printed["output"], str)
            assert "revealed" in done.stderr and "--final" in done.stderr  # not settled yet

            status = _job("status", str(printed["job_id"]), *dep, env=env)
            assert status.returncode == 0 and "revealed 1/1" in status.stdout, status.stdout + status.stderr
            again = _job("result", str(printed["job_id"]), "--json", *dep, env=env)
            assert json.loads(again.stdout.strip().splitlines()[-1])["output_root"] == printed["output_root"]
            # Past the challenge window the node finalizes; --final returns only then.
            RpcBackend(json.loads((state / "deployment.json").read_text())["rpc_url"]).advance_time(DEFAULT_CHALLENGE_WINDOW + 1)
            settled = _job("result", str(printed["job_id"]), "--final", "--json", *dep, env=env)
            assert settled.returncode == 0 and "settled" in settled.stderr, settled.stderr
            assert json.loads(settled.stdout.strip().splitlines()[-1])["output_root"] == printed["output_root"]

            bad = _job("submit", "--model", "tiny-shakespeare", "--task", "generate", "--input", "x",
                       "--mode", "replicate:9", *dep, env=env)  # fmt: skip
            assert bad.returncode != 0 and "replicate" in bad.stderr
            missing = _job("status", "999", *dep, env=env)
            assert missing.returncode == 1 and "does not exist" in missing.stderr
        finally:
            node.close()
