"""`verimesh run`: execute one AI job locally in the exact runtime and print its roots."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from verimesh.models.bundle import BundleError
from verimesh.models.registry import UnsupportedModelError
from verimesh.models.store import ModelNotFoundError

errors = Console(stderr=True, soft_wrap=True)


def run(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (e.g. minilm) or 0x root.")],
    task: Annotated[str, typer.Option("--task", "-t", help="embed | generate")],
    input_text: Annotated[str, typer.Option("--input", "-i", help="The input text.")],
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="generate: new tokens.")] = 32,
    seed: Annotated[int | None, typer.Option("--seed", help="generate: sampling seed (default greedy).")] = None,
    no_trace: Annotated[bool, typer.Option("--no-trace", help="Skip the trace (faster, no trace_root).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run one AI job locally in the exact runtime and print its output and roots.

    Bundled models (minilm, ...) are imported into the local store on first use.
    """
    from verimesh.models.api import load_model, run_job
    from verimesh.models.tokenizer import InputTooLongError

    params: dict = {"max_tokens": max_tokens, "seed": seed} if task == "generate" else {}
    try:
        loaded = load_model(model)
        result = run_job(loaded, task, input_text, params, trace=not no_trace)
    except (ModelNotFoundError, UnsupportedModelError, InputTooLongError, BundleError, ValueError) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result.model_dump()))
        return
    if isinstance(result.output, str):
        typer.echo(result.output)
    elif isinstance(result.output, list) and result.output and isinstance(result.output[0], float):
        shown = ", ".join(f"{v:+.4f}" for v in result.output[:8])
        typer.echo(f"embedding ({len(result.output)} dims): [{shown}, ...]")
    else:
        typer.echo(json.dumps(result.output))
    typer.echo(f"model_root  {result.model_root}")
    typer.echo(f"output_root {result.output_root}")
    typer.echo(f"trace_root  {result.trace_root or '- (--no-trace)'}")
    typer.echo(f"seconds     {result.seconds:.3f} ({result.ops} ops)")
