"""`verimesh run`: execute one job locally in the exact runtime."""

from __future__ import annotations

import typer


def run() -> None:
    """Run one AI job locally in the exact runtime and print its output and roots."""
    raise typer.Exit(code=2)
