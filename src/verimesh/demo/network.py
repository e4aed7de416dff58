"""Bring up the demo's network on this machine: a fresh devnet and every party's process.

Everything lives in one run folder (devnet state, dev wallets, node homes, logs), on free
127.0.0.1 ports, so a second demo right after the first (or beside it) starts clean. Models
and compiled contracts come from the user's ``$VERIMESH_HOME`` (imported once, reused).
Parties are dev accounts: dev0 deploys, dev1 is the requester, then the nodes, then the
validator(s).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from verimesh.chain import Deployment
from verimesh.chain import devnet as chain_devnet
from verimesh.chain.devnet import free_port
from verimesh.demo.processes import Supervisor, verimesh_command
from verimesh.paths import verimesh_home

NODE_PRICE_VMT = 1.0
SELFBENCH = "selfbench.json"  # node.selfbench's cache file in a node's home


@dataclass
class NodeSpec:
    name: str  # node1 .. nodeN
    account: str  # devK
    port: int
    home: Path
    adversary: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class DemoNetwork:
    """The run folder, the devnet and the supervisor of every process."""

    run_dir: Path
    supervisor: Supervisor = field(init=False)
    deployment: Deployment | None = None
    nodes: list[NodeSpec] = field(default_factory=list)
    validators: list[NodeSpec] = field(default_factory=list)
    dashboard_url: str | None = None

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.run_dir / "logs")

    @property
    def state_dir(self) -> Path:
        return self.run_dir / "devnet"

    @property
    def deployment_path(self) -> Path:
        return self.state_dir / chain_devnet.DEPLOYMENT_FILE

    # -- chain ------------------------------------------------------------------------
    def start_chain(self) -> Deployment:
        """anvil on a free port, contracts deployed, dev accounts funded (devnet.up)."""
        self.deployment = chain_devnet.up(self.state_dir, port=free_port())
        return self.deployment

    def stop_chain(self) -> None:
        chain_devnet.down(self.state_dir)

    def anvil_pid(self) -> int | None:
        return chain_devnet.status(self.state_dir).pid

    # -- nodes ------------------------------------------------------------------------
    def plan_nodes(self, count: int, adversaries: list[str]) -> list[NodeSpec]:
        """``count`` nodes on dev2.., the last ``len(adversaries)`` of them adversarial
        (which one cheats is no secret in a demo; the chain still has to catch it)."""
        honest = count - len(adversaries)
        self.nodes = [
            NodeSpec(
                name=f"node{i + 1}", account=f"dev{i + 2}", port=free_port(),
                home=self.run_dir / f"node{i + 1}",
                adversary=None if i < honest else adversaries[i - honest],
            )
            for i in range(count)
        ]
        return self.nodes

    def node_args(self, node: NodeSpec, models: list[str]) -> list[str]:
        args = [
            "node", "run", "--deployment", str(self.deployment_path), "--dev", node.account,
            "--home", str(node.home), "--port", str(node.port), "--poll", "0.1",
            "--price", f"{NODE_PRICE_VMT:g}",
            # The demo machine is busy by design (anvil, five nodes, a validator): the idle
            # policy would keep every node waiting. docs/node-device.md describes it.
            "--max-cpu", "100", "--grace", "0",
        ]  # fmt: skip
        for model in models:
            args += ["--model", model]
        if node.adversary:
            args += ["--adversary", node.adversary]
        return verimesh_command(*args)

    def start_node(self, node: NodeSpec, models: list[str]) -> None:
        _seed_selfbench(node.home)
        self.supervisor.start(node.name, self.node_args(node, models))

    def start_nodes(self, models: list[str], timeout: float, on_wait: Callable[[], None] = lambda: None) -> None:
        """Nodes and validators. Without a cached self-benchmark the first node measures
        the machine alone (the figures are kept for later runs); then the rest start at
        once and the demo waits until each one registered."""
        first, *rest = self.nodes
        if not _selfbench_cache().is_file():
            self.start_node(first, models)
            self.wait_ready(first, timeout, on_wait)
            _keep_selfbench(first.home)
        else:
            rest = self.nodes
        for node in rest:
            self.start_node(node, models)
        self.start_validators()
        for spec in [*self.nodes, *self.validators]:
            self.wait_ready(spec, timeout, on_wait)

    def wait_ready(self, node: NodeSpec, timeout: float, on_wait: Callable[[], None] = lambda: None) -> None:
        """Until the node's API answers and its first loop pass registered it on chain
        (``on_wait`` runs between polls: the live view keeps moving)."""
        deadline = time.monotonic() + timeout
        child = self.supervisor.children[node.name]
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{node.name} exited at startup; its log ends:\n{child.log_tail()}")
            try:
                r = httpx.get(f"{node.url}/v1/info", timeout=1)
                if r.status_code == 200 and r.json()["status"] != "starting" and r.json()["working"]:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            on_wait()
            time.sleep(0.1)
        raise RuntimeError(f"{node.name} did not register within {timeout:.0f} s; see {child.log}")

    # -- validator, dashboard, requester -----------------------------------------------
    def plan_validators(self, count: int) -> list[NodeSpec]:
        first = 2 + len(self.nodes)
        self.validators = [
            NodeSpec(name=f"validator{i + 1}", account=f"dev{first + i}", port=free_port(),
                     home=self.run_dir / f"validator{i + 1}")
            for i in range(count)
        ]
        return self.validators

    def start_validators(self) -> None:
        for v in self.validators:
            if v.name in self.supervisor.children:
                continue
            _seed_selfbench(v.home)
            self.supervisor.start(v.name, verimesh_command(
                "validator", "run", "--dev", v.account, "--deployment", str(self.deployment_path),
                "--home", str(v.home), "--port", str(v.port),
            ))  # fmt: skip

    def start_dashboard(self) -> str:
        port = free_port()
        self.supervisor.start("dashboard", verimesh_command(
            "dashboard", "--deployment", str(self.deployment_path), "--port", str(port), "--interval", "1",
        ))  # fmt: skip
        self.dashboard_url = f"http://127.0.0.1:{port}/"
        return self.dashboard_url

    def start_requester(self, args: list[str]) -> None:
        self.supervisor.start("requester", args)

    # -- teardown ---------------------------------------------------------------------
    def shutdown(self) -> list[int]:
        """Stop every process (children first, then anvil). Returns pids that survived."""
        anvil = self.anvil_pid()
        survivors = self.supervisor.stop_all()
        self.stop_chain()
        if anvil is not None and chain_devnet.pid_alive(anvil):
            survivors.append(anvil)
        return survivors

    def clean_homes(self) -> None:
        """Node homes hold copies of the models (hundreds of MB): drop them, keep the logs."""
        for spec in [*self.nodes, *self.validators]:
            shutil.rmtree(spec.home, ignore_errors=True)


def _selfbench_cache() -> Path:
    return verimesh_home() / "demo" / SELFBENCH


def _seed_selfbench(home: Path) -> None:
    cached = _selfbench_cache()
    if cached.is_file():
        home.mkdir(parents=True, exist_ok=True)
        if not (home / SELFBENCH).exists():
            shutil.copy(cached, home / SELFBENCH)


def _keep_selfbench(home: Path) -> None:
    """The self-benchmark is keyed by machine and runtime inside the file: a stale one is
    simply re-measured by the node, so keeping the latest is always safe."""
    if (home / SELFBENCH).is_file():
        _selfbench_cache().parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / SELFBENCH, _selfbench_cache())
