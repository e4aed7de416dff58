"""`verimesh agent`: autonomous agents that buy and sell AI services (being built; issue 7)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Autonomous agents that buy and sell AI services.", no_args_is_help=True)
