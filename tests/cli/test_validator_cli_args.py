"""`verimesh validator run` refuses bad flags before it touches a wallet or a chain."""

from __future__ import annotations

from typer.testing import CliRunner

from verimesh.cli.main import app


def test_a_negative_abandon_margin_is_refused() -> None:
    result = CliRunner().invoke(app, ["validator", "run", "--abandon-margin", "-1"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--abandon-margin" in result.output and "greater than or equal to 0" in result.output


def test_an_unknown_audit_depth_and_negative_spot_steps_are_refused() -> None:
    depth = CliRunner().invoke(app, ["validator", "run", "--audit-depth", "half"], env={"COLUMNS": "200"})
    assert depth.exit_code == 2 and "'half' is not one of" in depth.output
    steps = CliRunner().invoke(app, ["validator", "run", "--spot-steps", "-1"], env={"COLUMNS": "200"})
    assert steps.exit_code == 2 and "--spot-steps" in steps.output


def test_the_audit_depths_are_the_daemons() -> None:
    from verimesh.cli.validator import AuditDepth
    from verimesh.node.validator import AUDIT_DEPTHS

    assert tuple(d.value for d in AuditDepth) == AUDIT_DEPTHS
