"""`--adversary` help names every behaviour the node and the validator accept (the CLI
lists them by hand so that `--help` does not import the runtime)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from verimesh.cli.main import app
from verimesh.verify.adversary import PROVIDER_BEHAVIOURS, VALIDATOR_BEHAVIOURS


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "run", "--help"], env={"COLUMNS": "400", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    # rich wraps and boxes the help: keep the words only
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


@pytest.mark.parametrize(
    ("command", "behaviours"),
    [("node", sorted(b.value for b in PROVIDER_BEHAVIOURS)), ("validator", sorted(b.value for b in VALIDATOR_BEHAVIOURS))],
)
def test_help_lists_every_behaviour(command: str, behaviours: list[str]) -> None:
    text = _help(command)
    missing = [b for b in behaviours if b not in text]
    assert not missing, f"`verimesh {command} run --help` does not mention {missing}"
