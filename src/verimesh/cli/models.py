"""`verimesh models ...`: the local model store (list, import, info)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from verimesh.models.bundle import BundleError, root_hex
from verimesh.models.registry import UnsupportedModelError, all_bundled
from verimesh.models.store import ModelNotFoundError, ModelStore

app = typer.Typer(
    help=(
        "Models in the local store ($VERIMESH_HOME/models, default ~/.verimesh/models), "
        "each identified by the Merkle root of its canonical bytes."
    ),
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
MODEL_ERRORS = (BundleError, ModelNotFoundError, UnsupportedModelError, ValueError, OSError)


def _fail(exc: Exception) -> typer.Exit:
    errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(code=1)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List stored models, and the bundled models that can be imported by name."""
    store = ModelStore()
    stored = store.list()
    installed = {name for m in stored for name in m.names}
    available = [b for b in all_bundled() if b.name not in installed]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "stored": [m.to_json() for m in stored],
                    "importable": [
                        {"name": b.name, "architecture": b.architecture, "description": b.description}
                        for b in available
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"models in {store.directory}")
    for col in ("names", "architecture", "root", "size"):
        table.add_column(col, overflow="fold")
    for m in stored:
        table.add_row(", ".join(m.names) or "-", m.architecture, root_hex(m.root), _size(m.size))
    console.print(table)
    for b in available:
        console.print(f"importable by name: [bold]{b.name}[/bold] ({b.architecture}) - {b.description}")


@app.command("import")
def import_cmd(
    source: Annotated[
        str,
        typer.Argument(
            help="A bundled model name (e.g. minilm), a Hugging Face model folder "
            "(config.json + model.safetensors + tokenizer.json), a GGUF file, or a verimesh bundle."
        ),
    ],
    name: Annotated[str | None, typer.Option("--name", help="Name to give the model in the store.")] = None,
) -> None:
    """Import a model: quantise it to the exact format and store its canonical bytes."""
    from verimesh.models.api import import_model

    store = ModelStore()
    try:
        root = import_model(source, store, name=name)
    except MODEL_ERRORS as exc:
        raise _fail(exc) from None
    console.print(f"imported [bold]{source}[/bold]")
    names = [n for m in store.list() if m.root == root for n in m.names]
    console.print(f"  model_root {root_hex(root)}")
    console.print(f"  names      {', '.join(names) or '- (use --name to add one)'}")
    console.print(f"  file       {store.path_for(root)}")


@app.command("info")
def info(
    model: Annotated[str, typer.Argument(help="Model name or 0x root.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a stored model: root, architecture, shapes, quantisation, tensors."""
    store = ModelStore()
    try:
        root, bundle = store.load(model)
    except MODEL_ERRORS as exc:
        raise _fail(exc) from None
    cfg = {k: v for k, v in bundle.config.items() if k != "tokenizer"}
    names = [n for m in store.list() if m.root == root for n in m.names]
    summary = {
        "model_root": root_hex(root),
        "names": names,
        "architecture": bundle.architecture,
        "size": store.path_for(root).stat().st_size,
        "tensors": len(bundle.tensors),
        "parameters": int(sum(t.size for t in bundle.tensors.values())),
        "config": cfg,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(f"[bold]{', '.join(names) or model}[/bold]  {summary['model_root']}")
    console.print(f"  architecture {bundle.architecture}  ({cfg.get('name', '')})")
    console.print(f"  size         {_size(summary['size'])}, {summary['tensors']} tensors, "
                  f"{summary['parameters']:,} integer values")
    for key in ("tasks", "bert", "llama"):
        if key in cfg:
            console.print(f"  {key:<12} {json.dumps(cfg[key])}")
    quant = cfg.get("quant", {})
    if "scheme" in quant:
        console.print(f"  quantisation {quant['scheme']}")
