"""`verimesh devnet ...`: a local anvil chain with the verimesh contracts deployed."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from verimesh.chain import devnet
from verimesh.chain.accounts import DEV_PASSWORD, dev_signers
from verimesh.chain.backends.rpc import RpcBackend
from verimesh.chain.deploy import deploy_network, fund_accounts
from verimesh.chain.errors import ChainError
from verimesh.chain.job_market import Mode
from verimesh.chain.lifecycle import (
    VMT,
    JobRun,
    Step,
    register_providers,
    run_job,
    run_timeout,
    token_balances,
)

app = typer.Typer(
    help="Run a local devnet: a real anvil node on 127.0.0.1 with the contracts deployed.",
    no_args_is_help=True,
)
console = Console()

StateDir = Annotated[
    Path | None,
    typer.Option(
        help="Folder for deployment.json, the pid file, the node log and dev wallets "
        "[default: $VERIMESH_HOME/devnet]"
    ),
]


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def up(
    port: int = typer.Option(
        devnet.DEFAULT_PORT, help="Port of the JSON-RPC endpoint on 127.0.0.1."
    ),
    state_dir: StateDir = None,
) -> None:
    """Start anvil in the background, deploy Token/Registry/JobMarket, fund dev accounts."""
    try:
        with console.status("starting anvil and deploying the contracts..."):
            deployment = devnet.up(state_dir, port)
    except ChainError as exc:
        raise _fail(exc) from None
    folder = state_dir or devnet.default_state_dir()
    console.print(f"[green]devnet up[/green] at {deployment.rpc_url} (chain {deployment.chain_id})")
    table = Table(title="contracts", show_header=False)
    for name, address in deployment.contracts.model_dump().items():
        table.add_row(name, address)
    console.print(table)
    console.print(
        f"{len(deployment.dev_accounts)} dev accounts with {deployment.params.mint_per_account // VMT} VMT "
        f"each; keystores in {folder / devnet.WALLETS_DIR} (password [bold]{DEV_PASSWORD}[/bold], devnet only)"
    )
    console.print(
        f"deployment: {folder / devnet.DEPLOYMENT_FILE}\nstop it with `verimesh devnet down`"
    )


@app.command()
def down(state_dir: StateDir = None) -> None:
    """Stop the devnet (SIGTERM, then SIGKILL after 5 s)."""
    try:
        stopped = devnet.down(state_dir)
    except ChainError as exc:
        raise _fail(exc) from None
    console.print("devnet stopped" if stopped else "no devnet was running")


@app.command()
def status(state_dir: StateDir = None) -> None:
    """Show whether the devnet runs, its URL and latest block."""
    st = devnet.status(state_dir)
    if not st.running:
        console.print(f"no devnet running from {st.state_dir}; start one with `verimesh devnet up`")
        raise typer.Exit(1)
    console.print(
        f"devnet running: pid {st.pid}, {st.url}, block {st.block}, deployment {st.deployment}"
    )


def _steps_table(title: str, steps: list[Step]) -> Table:
    table = Table(title=title)
    table.add_column("step")
    table.add_column("by")
    table.add_column("gas", justify="right")
    table.add_column("detail")
    for s in steps:
        table.add_row(s.name, s.actor, f"{s.gas:,}", s.detail)
    return table


def _job_table(run: JobRun, title: str) -> Table:
    table = _steps_table(title, run.steps)
    table.add_section()
    table.add_row(
        "[bold]total per job[/bold]",
        "",
        f"[bold]{run.gas:,}[/bold]",
        f"final state {run.final_state.name}",
    )
    table.add_section()
    for s in run.payouts:  # pull payments: one withdrawal collects many jobs
        table.add_row(s.name, s.actor, f"{s.gas:,}", f"{s.detail} (once for many jobs)")
    return table


@app.command()
def lifecycle(
    port: int = typer.Option(0, help="Port for the temporary node [default: a free one]."),
) -> None:
    """Run one real job (post, assign, commit, reveal, finalize) and a timeout refund on a
    devnet started for this command and stopped after it."""
    with tempfile.TemporaryDirectory(prefix="verimesh-lifecycle-") as tmp:
        try:
            with console.status("starting anvil..."):
                node = devnet.start_anvil(port or None, log_path=Path(tmp) / devnet.LOG_FILE)
        except ChainError as exc:
            raise _fail(exc) from None
        try:
            _lifecycle(node.url)
        except ChainError as exc:
            raise _fail(exc) from None
        finally:
            node.stop()
    console.print("devnet stopped")


def _lifecycle(url: str) -> None:
    backend = RpcBackend(url, gas_limit=devnet.DEVNET_GAS_LIMIT)
    deployer, requester, *providers = dev_signers(4)
    console.print(f"anvil at {url}, chain {backend.chain_id}")
    net = deploy_network(backend, deployer)
    fund_accounts(net, deployer, [requester.address] + [p.address for p in providers], 1_000 * VMT)
    setup = register_providers(net, providers, stake=200 * VMT, price=5 * VMT)
    console.print(_steps_table("setup: providers stake and register", setup))
    labels = {"requester": requester.address} | {
        f"provider{i}": p.address for i, p in enumerate(providers)
    }
    labels["burn"] = "0x000000000000000000000000000000000000dEaD"
    before = token_balances(net, labels)
    job, approve = run_job(net, requester, providers, Mode.REPLICATE, 2, 5 * VMT)
    console.print(_job_table(job, f"job {job.job_id}: replicate(2), price 5 VMT per replica"))
    silent, _ = run_timeout(net, requester, 5 * VMT)
    console.print(_job_table(silent, f"job {silent.job_id}: provider silent -> timeout refund"))
    after = token_balances(net, labels)
    table = Table(title="VMT balances")
    for column in ("account", "before", "after", "change"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for label in before:
        delta = (after[label] - before[label]) / VMT
        table.add_row(
            label, f"{before[label] / VMT:,.2f}", f"{after[label] / VMT:,.2f}", f"{delta:+,.2f}"
        )
    console.print(table)
    if sum(after.values()) != sum(before.values()):
        raise ChainError("token conservation broken: balances do not add up")
    console.print(
        f"[green]ok[/green]: every token that entered the contracts left to exactly one party. "
        f"Not in the per-job totals: the escrow approval ({sum(s.gas for s in approve):,} gas; "
        "one large approval or a deposit serves many jobs) and the withdrawals."
    )
