"""The `verimesh` command line (typer + rich): the top of the stack."""
