"""`verimesh job submit | status | result`: buy a verified AI result from the network."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from verimesh.paths import verimesh_home

app = typer.Typer(
    help="Submit jobs to the network and collect verified results.", no_args_is_help=True
)

VMT = 10**18
DeploymentOpt = Annotated[
    Path | None,
    typer.Option(
        "--deployment",
        "-d",
        help="deployment.json [default: $VERIMESH_HOME/devnet/deployment.json]",
    ),
]
WalletOpt = Annotated[str | None, typer.Option("--wallet", help="verimesh wallet that pays")]
DevOpt = Annotated[
    str | None, typer.Option("--dev", help="pay with a devnet dev account (dev1, ...)")
]


def _client(deployment: Path | None, wallet: str | None, dev: str | None):
    from verimesh.cli.node import load_wallet
    from verimesh.client import Client

    home = verimesh_home()
    path = (deployment or home / "devnet" / "deployment.json").expanduser()
    if wallet is None and dev is None:
        dev = "dev1"  # the devnet's requester account: the zero-setup path of the README
    try:
        return Client(path, load_wallet(wallet, dev, path))
    except typer.BadParameter:
        raise
    except Exception as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _parse_mode(text: str):
    from verimesh.client import audit, replicate

    kind, _, value = text.partition(":")
    try:
        if kind == "audit":
            return audit(float(value or "0.1"))
        if kind == "replicate":
            return replicate(int(value or "2"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.BadParameter(f"mode {text!r}: use audit:P (0..1) or replicate:K (1..8)")


def _print_output(output, as_json: bool) -> None:
    value = output.output
    if as_json:
        typer.echo(json.dumps({"job_id": output.job_id, "output_root": output.output_root,
                               "trace_root": output.trace_root, "provider": output.provider,
                               "output": value}))  # fmt: skip
    else:
        typer.echo(value if isinstance(value, str) else json.dumps(value))


def _await(handle, timeout: float, as_json: bool, final: bool) -> None:
    from rich.console import Console

    from verimesh.client import JobFailed, JobTimeout, ResultError

    console = Console(stderr=True)
    waiting = "waiting until it is settled" if final else "waiting for the providers"
    try:
        with console.status(f"job {handle.job_id}: {waiting}...") as spinner:
            output = handle.result(timeout=timeout, on_status=lambda s: spinner.update(s.line()), final=final)
    except (JobFailed, JobTimeout, ResultError) as exc:
        _fail(str(exc))
    if final:
        console.print(
            f"[green]job {handle.job_id}: settled[/] output root {output.output_root} (from "
            f"{output.provider}); no audit or dispute can overturn it any more"
        )
    else:
        console.print(
            f"[green]job {handle.job_id}: revealed[/] output root {output.output_root} (from "
            f"{output.provider}); checked against the chain, but an audit or a challenge can still "
            f"prove it wrong (you are then refunded): `--final` waits until it is settled"
        )
    _print_output(output, as_json)


@app.command("submit")
def submit(
    model: Annotated[
        str, typer.Option("--model", "-m", help="model name in your local store, or its 0x root")
    ],
    task: Annotated[str, typer.Option("--task", "-t", help="embed | generate")],
    text: Annotated[
        list[str],
        typer.Option("--input", "-i", help="prompt (generate) or text to embed (repeatable)"),
    ],
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="generate: new tokens")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="generate: sampling seed")] = 0,
    mode: Annotated[str, typer.Option("--mode", help="audit:P or replicate:K")] = "replicate:1",
    max_price: Annotated[
        float | None, typer.Option("--max-price", help="price per replica in VMT [default: market]")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="wait for the result")
    ] = True,
    final: Annotated[
        bool,
        typer.Option("--final", help="wait until the job is settled (audit, challenge window, disputes)"),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait")] = 600,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    deployment: DeploymentOpt = None,
    wallet: WalletOpt = None,
    dev: DevOpt = None,
) -> None:
    """Post a job (escrow + provider draw on chain), hand its input to the providers and,
    by default, wait for the result checked against the revealed output root."""
    from verimesh.client import JobFailed

    verification = _parse_mode(mode)
    if task == "generate":
        if len(text) != 1:
            raise typer.BadParameter("generate takes exactly one --input (the prompt)")
        value, params = text[0], {"max_tokens": max_tokens, "seed": seed}
    else:
        value, params = list(text), {}
    client = _client(deployment, wallet, dev)
    try:
        handle = client.submit(
            model=model, task=task, input=value, params=params, mode=verification,
            max_price=None if max_price is None else round(max_price * VMT),
        )  # fmt: skip
    except (JobFailed, ValueError, LookupError) as exc:
        _fail(str(exc))
    typer.secho(
        f"job {handle.job_id} posted ({verification}); providers: {', '.join(handle.providers)}",
        err=True,
    )
    if not wait:
        typer.echo(handle.job_id)
        return
    _await(handle, timeout, as_json, final)


@app.command("status")
def status(
    job_id: Annotated[int, typer.Argument(help="job id")],
    deployment: DeploymentOpt = None,
    wallet: WalletOpt = None,
    dev: DevOpt = None,
) -> None:
    """State on chain, deadlines, and each provider's progress."""
    client = _client(deployment, wallet, dev)
    try:
        st = client.job(job_id).status()
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(st.line())
    now = client.chain_now()
    for name, t in (
        ("commit", st.commit_deadline),
        ("reveal", st.reveal_deadline),
        ("challenge", st.challenge_deadline),
    ):
        if t:
            typer.echo(f"  {name} deadline: {'in ' + str(t - now) + ' s' if t > now else 'passed'}")
    for provider, step in st.progress.items():
        typer.echo(f"  {provider}: {step}")


@app.command("result")
def result(
    job_id: Annotated[int, typer.Argument(help="job id")],
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait")] = 600,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    final: Annotated[
        bool,
        typer.Option("--final", help="wait until the job is settled (audit, challenge window, disputes)"),
    ] = False,
    deployment: DeploymentOpt = None,
    wallet: WalletOpt = None,
    dev: DevOpt = None,
) -> None:
    """Wait for a job's output checked against the chain (or its refund) and print it."""
    client = _client(deployment, wallet, dev)
    try:
        handle = client.job(job_id)
    except ValueError as exc:
        _fail(str(exc))
    _await(handle, timeout, as_json, final)


if __name__ == "__main__":
    app(sys.argv[1:])
