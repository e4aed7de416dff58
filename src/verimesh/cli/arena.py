"""`verimesh arena ...`: quality arenas (for now: the agent-based simulation of the consensus)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from verimesh.market.simulation import GOALS, SimConfig, simulate

app = typer.Typer(help="Quality arenas: providers compete, validators score, consensus pays.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


@app.callback()
def arena() -> None:
    """Quality arenas: providers compete, validators score, consensus pays."""


@app.command("settlement")
def settlement_command(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain.")],
    arena_address: Annotated[str, typer.Option("--arena", help="Address of the Arena contract.")],
    epoch: Annotated[int, typer.Option("--epoch", min=0, help="Epoch to settle.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute an epoch's settlement from the chain (reveals, lineup, stakes, pools, every
    earlier epoch's bonds) and compare it with the posted one: the watcher's check before a
    challenge window closes. Exit code 2 if the posted settlement is wrong."""
    from verimesh.chain.arena import ArenaClient, SettlementStatus
    from verimesh.chain.backends.rpc import RpcBackend
    from verimesh.chain.compile import load_artifacts
    from verimesh.chain.errors import ChainError
    from verimesh.market.arena_epoch import settlement_from_history

    try:
        backend = RpcBackend(rpc)
        abi = load_artifacts(names=["Arena"])["Arena"].abi
        arena = ArenaClient(backend, arena_address, abi)
        if epoch >= arena.current_epoch():
            errors.print(f"[red]error:[/red] epoch {epoch} is not over yet (current epoch {arena.current_epoch()})")
            raise typer.Exit(code=1)
        correct = settlement_from_history(arena, epoch)
        posted = arena.settlement(epoch)
        digest = arena.call("settlement_digest", *correct.args())
    except ChainError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    if posted.status is SettlementStatus.NONE:
        verdict = "none posted"
    else:
        verdict = "agrees" if posted.digest == digest else "WRONG"
    if as_json:
        typer.echo(json.dumps({
            "epoch": epoch, "settlement": correct.model_dump(), "digest": "0x" + digest.hex(),
            "posted_status": posted.status.name.lower(), "posted": verdict,
        }, indent=2))
    else:
        table = Table(title=f"arena {arena.address}, epoch {epoch}: payouts from the chain's history")
        table.add_column("slot / validator")
        table.add_column("address")
        table.add_column("reward", justify="right")
        for k, (p, r) in enumerate(zip(correct.providers, correct.provider_rewards, strict=True)):
            table.add_row(f"slot {k}", p, str(r))
        for v, r in zip(correct.validators, correct.validator_rewards, strict=True):
            table.add_row("validator", v, str(r))
        table.add_row("carry", "", str(correct.carry))
        console.print(table)
        console.print(f"posted settlement ({posted.status.name.lower()}): {verdict}")
    if verdict == "WRONG":
        raise typer.Exit(code=2)


@app.command("simulate")
def simulate_command(
    epochs: Annotated[int, typer.Option("--epochs", min=2, help="Epochs to simulate.")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the whole world (same seed, same numbers).")] = 0,
    cartel_stake: Annotated[float, typer.Option("--cartel-stake", help="Cartel's share of stake, < 0.5.")] = 0.30,
    copier_stake: Annotated[float, typer.Option("--copier-stake", min=0.0, help="Weight copiers' share.")] = 0.10,
    lazy_stake: Annotated[float, typer.Option("--lazy-stake", min=0.0, help="Lazy validators' share.")] = 0.05,
    private_noise: Annotated[
        float, typer.Option("--private-noise", min=0.0, help="Sd of each validator's own measurement noise.")
    ] = 0.02,
    best_arrival: Annotated[int, typer.Option("--best-arrival", min=1, help="Epoch the best provider joins.")] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot-dir", help="Write PNG plots here (needs matplotlib).")
    ] = None,
) -> None:
    """Simulate an arena with honest, cartel, copying and lazy validators; compare verimesh's
    two-sided clipping with plain Yuma on the same world.

    Honest validators hold the rest of the stake: 1 - cartel - copiers - lazy.
    """
    if not 0 < cartel_stake < 0.5:
        errors.print(f"[red]error:[/red] --cartel-stake must be in (0, 0.5), got {cartel_stake}")
        raise typer.Exit(code=1)
    if best_arrival >= epochs:
        errors.print(f"[red]error:[/red] --best-arrival {best_arrival} must be below --epochs {epochs}")
        raise typer.Exit(code=1)
    honest_stake = round(1.0 - cartel_stake - copier_stake - lazy_stake, 9)
    if honest_stake < 0.01:
        errors.print(
            "[red]error:[/red] cartel + copier + lazy stake leave no stake to honest validators; "
            "keep their sum at most 0.99"
        )
        raise typer.Exit(code=1)
    config = SimConfig(
        epochs=epochs, seed=seed, cartel_stake=cartel_stake, honest_stake=honest_stake,
        copier_stake=copier_stake, lazy_stake=lazy_stake,
        private_noise=private_noise, best_arrival=best_arrival,
    )
    sim = simulate(config)
    report = sim.report()
    if plot_dir is not None:
        from verimesh.market.plots import plot_simulation

        try:
            report["plots"] = [str(p) for p in plot_simulation(sim, plot_dir)]
        except RuntimeError as exc:
            errors.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"arena simulation: {epochs} epochs, seed {seed}, cartel {cartel_stake:.0%} of stake")
    table.add_column("metric")
    table.add_column("goal")
    table.add_column("two-sided (verimesh)")
    table.add_column("one-sided (Yuma)")
    keys = [
        "epochs_for_best_to_rank_first", "best_first_fraction", "cartel_reward_shift",
        "cartel_reward_shift_same_lineup", "copier_to_honest_earnings", "cartel_to_honest_earnings",
        "lazy_to_honest_earnings", "honest_validator_share",
    ]
    for key in keys:
        goal = " ".join(map(str, GOALS[key])) if key in GOALS else ""
        cells = []
        for rule in ("two_sided", "yuma"):
            value = report[rule][key]
            met = report[rule]["goals_met"].get(key)
            mark = "" if met is None else (" [green]ok[/green]" if met else " [red]missed[/red]")
            cells.append(f"{value}{mark}")
        table.add_row(key, goal, *cells)
    console.print(table)
    console.print(f"honest validators hold {report['stake_shares']['honest']:.0%} of stake")
    for path in report.get("plots", []):
        console.print(f"wrote {path}")
