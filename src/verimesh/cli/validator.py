"""`verimesh validator`: stake as a validator, audit jobs, play disputes, sit on committees."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verimesh.paths import verimesh_home

app = typer.Typer(
    help="Run a validator: audit jobs, challenge wrong results, sign verdicts.",
    no_args_is_help=True,
)

VMT = 10**18


class AuditDepth(StrEnum):
    """How much of a drawn job the validator re-runs (node.validator.AUDIT_DEPTHS)."""

    spot = "spot"
    full = "full"


def _vmt(value: float, what: str) -> int:
    if value < 0:
        raise typer.BadParameter(f"{what} must be >= 0 VMT")
    return round(value * VMT)


@app.command("run")
def run(
    deployment: Annotated[
        Path | None,
        typer.Option(
            "--deployment",
            "-d",
            help="deployment.json [default: $VERIMESH_HOME/devnet/deployment.json]",
        ),
    ] = None,
    wallet: Annotated[
        str | None, typer.Option("--wallet", help="verimesh wallet that stakes and earns")
    ] = None,
    dev: Annotated[
        str | None, typer.Option("--dev", help="use a devnet dev account (dev2, dev3, ...)")
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="validator state folder [default: $VERIMESH_HOME/validator]"),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="interface the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port of the API")] = 8800,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="public URL put on chain [http://HOST:PORT]")
    ] = None,
    stake: Annotated[
        float | None, typer.Option("--stake", help="stake in VMT [registry minimum]")
    ] = None,
    price: Annotated[
        float,
        typer.Option("--price", help="audit fee asked per job, VMT (jobs paying less skip us)"),
    ] = 0.0,
    poll: Annotated[float, typer.Option("--poll", help="seconds between chain polls")] = 0.2,
    abandon_margin: Annotated[
        float,
        typer.Option(
            "--abandon-margin", min=0.0,
            help="seconds before an audit's report deadline at which an audit nobody gave us "
            "the job for is abandoned (everyone refunded) instead of left silent (slashed)",
        ),
    ] = 20.0,
    audit_depth: Annotated[
        AuditDepth,
        typer.Option(
            "--audit-depth",
            help="spot: check every token of a generation job by one batched forward and re-run "
            "its last and --spot-steps sampled other steps, or re-embed sampled rows of an "
            "embedding batch (1 audit in 4 in full), the whole job only if that finds a "
            "lie (docs/validator.md: cheaper, and an agreeing report shares the provider's "
            "fate); full: always re-run the whole job",
        ),
    ] = AuditDepth.spot,
    spot_steps: Annotated[
        int,
        typer.Option("--spot-steps", min=0, help="sampled steps a spot audit checks besides the last"),
    ] = 1,
    adversary: Annotated[
        str | None,
        typer.Option(
            "--adversary",
            help="misbehave on purpose, for tests and demos: griefing-challenger, "
            "false-verdict [honest]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs")] = False,
) -> None:
    """Join as a validator and work: register with stake, re-execute the jobs the chain draws
    us to audit, report (a different result opens a dispute), play disputes, and rule on
    other disputes as a committee member. Ctrl-C stops it; a restart resumes every duty."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from verimesh.chain import ChainError
    from verimesh.cli.node import load_wallet
    from verimesh.node.validator import ValidatorDaemon, ValidatorSettings, serve_forever
    from verimesh.procs import hold_folder
    from verimesh.verify.adversary import Behaviour

    validator_home = (home or verimesh_home() / "validator").expanduser()
    deployment_path = (deployment or verimesh_home() / "devnet" / "deployment.json").expanduser()
    try:
        lock = hold_folder(validator_home, "validator")  # noqa: F841 (held until the process ends)
        behaviour = Behaviour.parse(adversary) if adversary else Behaviour.HONEST
        settings = ValidatorSettings(
            home=validator_home,
            deployment=deployment_path,
            wallet=load_wallet(wallet, dev, deployment_path),
            host=host,
            port=port,
            endpoint=endpoint,
            stake=None if stake is None else _vmt(stake, "--stake"),
            price=_vmt(price, "--price"),
            poll_interval=poll,
            abandon_margin=abandon_margin,
            audit_depth=audit_depth.value,
            spot_steps=spot_steps,
            behaviour=behaviour,
        )
        daemon = ValidatorDaemon(settings)
    except typer.BadParameter:
        raise
    except Exception as exc:  # wrong password, unknown wallet, no deployment, a provider behaviour
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log = logging.getLogger("verimesh.validator")
    log.info("validator %s starting (home %s)%s", daemon.address, validator_home,
             "" if behaviour is Behaviour.HONEST else f" AS ADVERSARY {behaviour.value}")  # fmt: skip
    try:
        serve_forever(daemon, stop)
    except (RuntimeError, ChainError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    log.info("validator stopped")


@app.command("status")
def status(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="validator state folder [default: $VERIMESH_HOME/validator]"),
    ] = None,
) -> None:
    """Duties of a validator by step (audits, disputes, committee seats), from its journal."""
    from rich.console import Console
    from rich.table import Table

    from verimesh.node.validator import ValidatorJournal

    path = (home or verimesh_home() / "validator").expanduser() / "validator.sqlite"
    if not path.is_file():
        typer.secho(
            f"no validator journal at {path}: start one with `verimesh validator run`",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(1)
    journal = ValidatorJournal(path)
    try:
        table = Table(title=f"validator duties ({path.parent})")
        for column in ("job", "duty", "step", "detail"):
            table.add_column(column)
        for row in journal.all_rows():
            table.add_row(*row)
        Console().print(table)
    finally:
        journal.close()


if __name__ == "__main__":
    app()
