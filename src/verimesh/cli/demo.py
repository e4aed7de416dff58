"""`verimesh demo`: the whole verifiable AI market on this machine, in a few minutes."""

from __future__ import annotations

import json
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console


def demo(
    nodes: Annotated[int, typer.Option("--nodes", help="provider nodes to start")] = 5,
    jobs: Annotated[int, typer.Option("--jobs", help="jobs the requester buys")] = 20,
    cheaters: Annotated[int, typer.Option("--cheaters", help="nodes that cheat (drawn from the adversary zoo)")] = 1,
    dashboard: Annotated[bool, typer.Option("--dashboard/--no-dashboard", help="serve the live web dashboard")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print only the report, as one JSON object")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for the jobs before giving up")] = 600,
    seed: Annotated[int | None, typer.Option("--seed", help="seed of the cheaters' draw [random]")] = None,
) -> None:
    """Bring up a whole verifiable AI market on this machine: a devnet, provider nodes (some
    cheating), a validator and a requester buying real AI jobs; one node is killed and
    restarted mid-job. Ends with a report checked against the chain; exit code 0 only if
    every job ended, every cheat was caught, no honest party was slashed and every token is
    accounted for. Ctrl-C stops everything it started."""
    from verimesh.demo.config import DemoConfig, DemoConfigError
    from verimesh.demo.live import LiveView
    from verimesh.demo.render import render_report
    from verimesh.demo.run import run_demo

    config = DemoConfig(nodes=nodes, jobs=jobs, cheaters=cheaters, dashboard=dashboard, json=as_json,
                        timeout=timeout, seed=seed)  # fmt: skip
    errors = Console(stderr=True)
    try:
        config.check()
    except DemoConfigError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    # SIGTERM (e.g. from a test runner or `kill`) stops the demo like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if as_json:
            report = run_demo(config, _printer(errors))
        else:
            report = _run_live(config, run_demo, LiveView())
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted: every process the demo started has been stopped[/]")
        raise typer.Exit(130) from None
    except Exception as exc:  # a part failed to start: say which, after everything stopped
        errors.print(f"[red]demo failed:[/] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(report.model_dump(mode="json")) + "\n")
    else:
        Console().print(render_report(report))
    raise typer.Exit(0 if report.ok else 1)


def _printer(console: Console):
    """--json: progress notes go to stderr as plain lines; stdout keeps the one report."""
    shown = {"n": 0, "phase": ""}

    def on_progress(progress) -> None:
        if progress.phase != shown["phase"]:
            shown["phase"] = progress.phase
            console.print(f"[dim]demo: {progress.phase}[/]")
        for note in progress.notes[shown["n"]:]:
            console.print(f"[dim]{note}[/]")
        shown["n"] = len(progress.notes)

    return on_progress


def _run_live(config, run_demo, view):
    from rich.live import Live

    console = Console()
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        def on_progress(progress) -> None:
            live.update(view.render(progress, force=progress.phase in ("done", "reading the chain")))

        try:
            return run_demo(config, on_progress)
        finally:
            view.close()
