"""`verimesh bench ...`: measured speed of this machine (numbers for docs, not for tests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from verimesh.benchinfo import machine_facts

app = typer.Typer(help="Benchmarks of this machine (need the `bench` extra: torch).", no_args_is_help=True)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


@app.command("runtime")
def runtime(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Threads for both sides.")] = 2,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these cases.")] = None,
) -> None:
    """Exact runtime vs torch fp32 on the CPU: MiniLM embeddings, SmolLM2 generation.

    Fields: model, exact_s, torch_s, ratio (exact/torch), trace_overhead (traced/untraced - 1),
    peak RSS of each side. Each side runs in its own process with the same thread count.
    """
    from verimesh.models.benchcases import BENCH_CASES

    names = only or list(BENCH_CASES)
    unknown = sorted(set(names) - set(BENCH_CASES))
    if unknown:
        errors.print(f"[red]error:[/red] unknown bench cases {unknown}; known: {sorted(BENCH_CASES)}")
        raise typer.Exit(code=1)
    try:
        import torch  # noqa: F401
    except ImportError:
        errors.print("[red]error:[/red] torch is not installed; run `pip install 'verimesh[bench]'`")
        raise typer.Exit(code=1) from None
    rows = []
    for name in names:
        if not as_json:
            console.print(f"running {name} ...")
        rows.append(BENCH_CASES[name](threads))
    if as_json:
        typer.echo(json.dumps({"machine": machine_facts(), "results": rows}, indent=2))
        return
    table = Table(title=f"exact runtime vs torch fp32, {threads} threads - {machine_facts()['cpu']}")
    for col in ("model", "task", "exact_s", "torch_s", "ratio", "trace_overhead", "peak RSS MB exact/torch"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["model"], r.get("task", ""), f"{r['exact_s']:.3f}", f"{r['torch_s']:.3f}",
            f"{r['ratio']:.2f}", f"{100 * r['trace_overhead']:.1f}%",
            f"{r.get('exact_peak_rss_mb', '?')}/{r.get('torch_peak_rss_mb', '?')}",
        )
    console.print(table)
