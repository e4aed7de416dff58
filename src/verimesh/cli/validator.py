"""`verimesh validator`: stake as a validator, audit jobs, play disputes, sit on committees
(being built; issue 5)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a validator: audit jobs, challenge wrong results, sign verdicts.", no_args_is_help=True)
