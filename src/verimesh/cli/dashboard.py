"""`verimesh dashboard`: a live web page of a running network, on 127.0.0.1.

Register in cli/main.py as a top-level command: ``app.command("dashboard")(dashboard)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from verimesh.chain.devnet import DEPLOYMENT_FILE, default_state_dir, port_in_use
from verimesh.chain.errors import ChainError

errors = Console(stderr=True, soft_wrap=True)
console = Console()


def dashboard(
    deployment: Annotated[
        Path | None,
        typer.Option(
            help="deployment.json of the network [default: $VERIMESH_HOME/devnet/deployment.json]"
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="interface to serve on (keep 127.0.0.1 unless you mean it)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the web page")] = 8780,
    interval: Annotated[
        float, typer.Option(help="seconds between polls of the chain and the nodes")
    ] = 1.0,
) -> None:
    """Serve a live page of the network: nodes, jobs by state, audits, disputes, balances."""
    from verimesh.dashboard.app import connect, create_app
    from verimesh.dashboard.follower import Follower

    path = (deployment or default_state_dir() / DEPLOYMENT_FILE).expanduser()
    if not path.is_file():
        errors.print(
            f"[red]no deployment at {path}[/]: start a devnet with `verimesh devnet up` or pass --deployment"
        )
        raise typer.Exit(1)
    if interval <= 0:
        errors.print("[red]--interval must be > 0 seconds[/]")
        raise typer.Exit(2)
    if port_in_use(port):
        errors.print(
            f"[red]port {port} on 127.0.0.1 is taken[/]: stop what runs there or pass --port"
        )
        raise typer.Exit(1)
    try:
        net, dep = connect(path)
    except ChainError as exc:
        errors.print(f"[red]cannot reach the network:[/] {exc}")
        raise typer.Exit(1) from None

    import uvicorn

    console.print(
        f"dashboard of chain {dep.chain_id} at [bold]http://{host}:{port}/[/]  (Ctrl-C stops it)"
    )
    uvicorn.run(
        create_app(Follower(net, from_block=dep.block), interval),
        host=host,
        port=port,
        log_level="warning",
    )
