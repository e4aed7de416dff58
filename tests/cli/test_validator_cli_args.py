"""`verimesh validator run` refuses bad flags before it touches a wallet or a chain."""

from __future__ import annotations

from typer.testing import CliRunner

from verimesh.cli.main import app


def test_a_negative_abandon_margin_is_refused() -> None:
    result = CliRunner().invoke(app, ["validator", "run", "--abandon-margin", "-1"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--abandon-margin" in result.output and "greater than or equal to 0" in result.output
