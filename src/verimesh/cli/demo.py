"""`verimesh demo`: the whole verifiable AI market on this machine (being built; see issue 6)."""

from __future__ import annotations

import typer


def demo() -> None:
    """Bring up a whole verifiable AI market on this machine."""
    typer.echo("verimesh demo: not built yet; run `verimesh devnet lifecycle`.", err=True)
    raise typer.Exit(2)
