"""`verimesh node run`: sell this device's idle compute on a verimesh network."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from verimesh.paths import verimesh_home

app = typer.Typer(
    help="Run a provider node: earn tokens for verified AI jobs.", no_args_is_help=True
)

VMT = 10**18


def _home() -> Path:
    return verimesh_home()


def load_wallet(wallet: str | None, dev: str | None, deployment_path: Path):
    """The node's (or requester's) wallet: ``--dev devN`` (devnet keystores next to the
    deployment, public password) or ``--wallet NAME`` (password from $VERIMESH_PASSWORD or a prompt)."""
    from verimesh.chain import Deployment
    from verimesh.crypto.wallet import WalletStore, password_from_env

    if (wallet is None) == (dev is None):
        raise typer.BadParameter(
            "pass exactly one of --wallet NAME or --dev devN (devnet accounts)"
        )
    if dev is not None:
        deployment = Deployment.load(deployment_path)
        if deployment.dev_password is None:
            raise typer.BadParameter("this deployment has no dev accounts; use --wallet")
        return WalletStore(deployment_path.parent / "wallets").load(dev, deployment.dev_password)
    password = password_from_env()
    if password is None:
        password = typer.prompt(f"password of wallet {wallet!r}", hide_input=True)
    return WalletStore().load(wallet, password)


def _price(value: float) -> int:
    if value < 0:
        raise typer.BadParameter("price must be >= 0 VMT")
    return round(value * VMT)


@app.command("run")
def run(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config [default: HOME/node.toml]")
    ] = None,
    deployment: Annotated[
        Path | None,
        typer.Option("--deployment", "-d", help="deployment.json [default: $VERIMESH_HOME/devnet/deployment.json]"),
    ] = None,
    wallet: Annotated[str | None, typer.Option("--wallet", help="verimesh wallet that stakes and earns")] = None,
    dev: Annotated[str | None, typer.Option("--dev", help="use a devnet dev account (dev2, dev3, ...)")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="node state folder [default: $VERIMESH_HOME/node]")] = None,
    host: Annotated[str | None, typer.Option("--host", help="interface the API listens on [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port of the API [8700]")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="public URL put on chain [http://HOST:PORT]")] = None,
    price: Annotated[float | None, typer.Option("--price", help="price per job in VMT [1]")] = None,
    stake: Annotated[float | None, typer.Option("--stake", help="stake in VMT [registry minimum]")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="model (name or root) to serve; repeatable [all local]")
    ] = None,
    poll: Annotated[float | None, typer.Option("--poll", help="seconds between chain polls [0.2]")] = None,
    max_cpu: Annotated[
        float | None, typer.Option("--max-cpu", help="pause while other processes use more CPU than this % [25]")
    ] = None,
    grace: Annotated[float | None, typer.Option("--grace", help="seconds of quiet before work (re)starts [60]")] = None,
    hours: Annotated[
        list[str] | None, typer.Option("--hours", help='allowed local hours "HH:MM-HH:MM"; repeatable [any]')
    ] = None,
    on_battery: Annotated[
        bool | None, typer.Option("--on-battery/--not-on-battery", help="work on battery power [no]")
    ] = None,
    cores: Annotated[int | None, typer.Option("--cores", help="cores the worker may use [half]")] = None,
    memory_mb: Annotated[int | None, typer.Option("--memory-mb", help="worker memory cap in MB [RAM/4]")] = None,
    nice: Annotated[int | None, typer.Option("--nice", help="worker priority, 0-19 (19 = lowest) [19]")] = None,
    in_process: Annotated[
        bool, typer.Option("--in-process", help="run jobs inside the node process: no worker caps, no idle pausing")
    ] = False,
    adversary: Annotated[
        str | None,
        typer.Option("--adversary", help="misbehave on purpose, for tests and demos: wrong-output, model-swap, "
                     "skip-layers, lower-precision, lower-precision-late, random-output, one-bad-op (a committee rules), "
                     "one-bad-small-op (proved on chain), copy-replica, withhold-reveal [honest]"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs")] = False,
) -> None:
    """Join the network and work: register (stake, endpoint, price), follow jobs, run them
    in the exact runtime, commit, reveal, get paid. Ctrl-C stops it; restarting resumes every
    unfinished duty from the journal. Flags override the TOML config (docs/node-device.md)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from verimesh.models.store import ModelStore
    from verimesh.node.config import NodeConfig
    from verimesh.node.daemon import DaemonSettings, NodeDaemon, serve_forever
    from verimesh.node.jobs import hex_root
    from verimesh.node.selfbench import self_benchmark
    from verimesh.procs import hold_folder

    node_home = (home or _home() / "node").expanduser()
    overrides = {
        "node.deployment": deployment, "node.wallet": wallet, "node.host": host, "node.port": port,
        "node.endpoint": endpoint, "node.price": price, "node.stake": stake,
        "node.models": model or None, "node.poll_seconds": poll,
        "idle.max_other_cpu_percent": max_cpu, "idle.grace_seconds": grace, "idle.allowed_hours": hours,
        "idle.allow_on_battery": on_battery, "caps.cores": cores, "caps.memory_mb": memory_mb,
        "caps.nice": nice, "node.adversary": adversary,
    }  # fmt: skip
    try:
        cfg = NodeConfig.load(config or node_home / "node.toml", overrides, home=node_home)
        lock = hold_folder(cfg.home.expanduser(), "node")  # noqa: F841 (held until the process ends)
        deployment_path = (cfg.node.deployment or _home() / "devnet" / "deployment.json").expanduser()
        the_wallet = load_wallet(None if dev else cfg.node.wallet, dev, deployment_path)
        models = ModelStore()
        roots = [models.resolve(m) for m in cfg.node.models] or [m.root for m in models.list()]
        bench = self_benchmark(cfg.home.expanduser(), cfg.caps)  # cached per machine + runtime
        logging.getLogger("verimesh.node").info("self-benchmark: %s", bench.advertised())
        settings = DaemonSettings(
            home=cfg.home.expanduser(),
            deployment=deployment_path,
            wallet=the_wallet,
            host=cfg.node.host,
            port=cfg.node.port,
            endpoint=cfg.node.endpoint,
            price=_price(cfg.node.price),
            stake=None if cfg.node.stake is None else _price(cfg.node.stake),
            models=[hex_root(r) for r in roots],
            poll_interval=cfg.node.poll_seconds,
            benchmark=bench.advertised(),
            idle=cfg.idle,
            caps=cfg.caps,
            in_process=in_process,
            blob_cap_bytes=None if cfg.node.blob_cap_mb is None else cfg.node.blob_cap_mb * 2**20,
            behaviour=cfg.node.adversary,
        )
        daemon = NodeDaemon(settings)
    except typer.BadParameter:
        raise
    except Exception as exc:  # bad config, wrong password, unknown wallet or model, no deployment
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("verimesh.node").info("node %s starting (home %s)", daemon.address, settings.home)
    from verimesh.chain import ChainError

    try:
        serve_forever(daemon, stop)
    except (RuntimeError, ChainError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None


@app.command("status")
def status(
    home: Annotated[
        Path | None, typer.Option("--home", help="node state folder [default: $VERIMESH_HOME/node]")
    ] = None,
) -> None:
    """Why the node is or is not working: idle verdict and reason, the job in the worker
    (running or paused), caps, self-benchmark figures, jobs per step."""
    from rich.console import Console

    from verimesh.node.status import render_status

    Console().print(render_status((home or _home() / "node").expanduser()))


if __name__ == "__main__":
    app()
