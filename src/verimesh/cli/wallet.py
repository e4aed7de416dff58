"""`verimesh wallet ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="wallet commands.", no_args_is_help=True)
