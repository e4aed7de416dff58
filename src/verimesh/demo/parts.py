"""Which pieces of the demo exist in this install: cheaters, validator, agent.

The demo runs what exists and says plainly what it could not run (the report's
``parts_not_run``), instead of pretending: a missing piece is a line in the report, never
a silent substitute.
"""

from __future__ import annotations

from verimesh.demo.config import DemoConfig


def _commands(app) -> set[str]:
    names = set()
    for command in app.registered_commands:
        names.add(command.name or command.callback.__name__.replace("_", "-"))
    return names


def node_has_adversary_flag() -> bool:
    import inspect

    from verimesh.cli import node

    return "adversary" in inspect.signature(node.run).parameters


def validator_available() -> bool:
    from verimesh.cli import validator

    return "run" in _commands(validator.app)


def missing_parts(config: DemoConfig) -> dict[str, str]:
    """piece -> why the demo runs without it."""
    missing: dict[str, str] = {}
    if config.cheaters and not node_has_adversary_flag():
        missing["cheaters"] = "`verimesh node run --adversary` is not in this install; every node runs honestly"
    if config.validators and not validator_available():
        missing["validator"] = (
            "`verimesh validator run` is not in this install; audit draws find no validator, "
            "so audit-mode jobs go unaudited"
        )
    return missing
