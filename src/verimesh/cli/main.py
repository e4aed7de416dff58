"""Entry point of the `verimesh` command: one sub-command group per part of the system."""

from __future__ import annotations

import typer

from verimesh import __version__
from verimesh.cli import (
    agent,
    arena,
    bench,
    dashboard,
    demo,
    devnet,
    job,
    models,
    node,
    run,
    validator,
    wallet,
)

app = typer.Typer(
    name="verimesh",
    help=(
        "verimesh: sell your device's idle compute for real AI jobs, or buy verified AI "
        "results from devices you have never met. Money and stake live in smart contracts; "
        "results are checked bit for bit."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
app.add_typer(wallet.app, name="wallet")
app.add_typer(node.app, name="node")
app.add_typer(job.app, name="job")
app.add_typer(devnet.app, name="devnet")
app.add_typer(models.app, name="models")
app.add_typer(bench.app, name="bench")
app.add_typer(arena.app, name="arena")
app.add_typer(agent.app, name="agent")
app.add_typer(validator.app, name="validator")
app.command("demo")(demo.demo)
app.command("run")(run.run)
app.command("dashboard")(dashboard.dashboard)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"verimesh {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """verimesh: a verifiable market for AI compute on idle devices."""


if __name__ == "__main__":
    app()
