"""`verimesh arena create | join | status | leaderboard | run | settlement | simulate`: quality arenas.

Arenas created here are remembered by name in ``$VERIMESH_HOME/arenas.json`` (name ->
address, chain and task family), so every later command says ``NAME`` instead of an address.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from verimesh.market.arena_book import (
    ArenaBook,
    ArenaBookError,
    ArenaRecord,
    book_path,
    load_book,
    save_book,
)
from verimesh.market.leaderboard import leaderboard
from verimesh.market.simulation import GOALS, SimConfig, simulate
from verimesh.paths import verimesh_home

if TYPE_CHECKING:
    from verimesh.chain.arena import ArenaClient
    from verimesh.chain.client import Network

app = typer.Typer(help="Quality arenas: providers compete, validators score, consensus pays.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


@app.callback()
def arena() -> None:
    """Quality arenas: providers compete, validators score, consensus pays."""


VMT = 10**18
DeploymentOpt = Annotated[
    Path | None,
    typer.Option("--deployment", "-d", help="deployment.json [default: $VERIMESH_HOME/devnet/deployment.json]"),
]
WalletOpt = Annotated[str | None, typer.Option("--wallet", help="verimesh wallet that signs")]
DevOpt = Annotated[str | None, typer.Option("--dev", help="sign with a devnet dev account (dev1, dev2, ...)")]
NameArg = Annotated[str, typer.Argument(help="Name of the arena (as given to `verimesh arena create`).")]


def _load_book() -> ArenaBook:
    try:
        return load_book()
    except ArenaBookError as exc:
        raise typer.BadParameter(str(exc)) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _deployment_path(deployment: Path | None) -> Path:
    return (deployment or verimesh_home() / "devnet" / "deployment.json").expanduser()


def _signer(wallet: str | None, dev: str | None, deployment_path: Path):
    from verimesh.chain.accounts import Signer
    from verimesh.cli.node import load_wallet

    return Signer.from_wallet(load_wallet(wallet, dev, deployment_path))


def _arena_artifact():
    from verimesh.chain.compile import load_artifacts

    return load_artifacts(names=["Arena"])["Arena"]


def _open(name: str, deployment: Path | None, signer=None) -> tuple[Network, ArenaClient, ArenaRecord]:
    """The network and the arena called ``name``; a clear error for an unknown name or an
    arena recorded on another chain (a restarted devnet)."""
    from verimesh.chain.arena import ArenaClient
    from verimesh.chain.client import Network

    book = _load_book()
    record = book.arenas.get(name)
    if record is None:
        known = ", ".join(sorted(book.arenas)) or "none yet"
        raise _fail(f"no arena named {name!r} in {book_path()} (known: {known}); create one with `verimesh arena create`")
    net = Network.connect(_deployment_path(deployment), signer)
    if net.backend.chain_id != record.chain_id:
        raise _fail(
            f"arena {name!r} lives on chain {record.chain_id}, this deployment is on chain {net.backend.chain_id}; "
            "pass its --deployment or create the arena again"
        )
    arena = ArenaClient(net.backend, record.address, _arena_artifact().abi, signer)
    return net, arena, record


def _vmt(value: float, what: str) -> int:
    if value < 0:
        raise typer.BadParameter(f"{what} must be >= 0 VMT, got {value}")
    return round(value * VMT)


def _num(amount: int) -> str:
    """Token base units as VMT, up to 4 decimals, no trailing zeros."""
    return f"{amount / VMT:,.4f}".rstrip("0").rstrip(".")


def _fmt(amount: int) -> str:
    return _num(amount) + " VMT"


def _hex32(text: str, what: str) -> bytes:
    raw = text.removeprefix("0x")
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise typer.BadParameter(f"{what} must be 32 bytes of hex (0x + 64 hex digits), got {text!r}")
    return value


@app.command("create")
def create_command(
    name: NameArg,
    task_family: Annotated[
        str, typer.Option("--task-family", help="Task family; its id on chain is keccak256 of the name.")
    ] = "embeddings",
    spec: Annotated[
        Path | None, typer.Option("--spec", help="Evaluation spec file; its sha256 is the spec hash.")
    ] = None,
    spec_hash: Annotated[
        str | None, typer.Option("--spec-hash", help="Spec hash, 0x + 64 hex digits (instead of --spec).")
    ] = None,
    slots: Annotated[int, typer.Option("--slots", min=2, max=16, help="Provider slots.")] = 8,
    min_provider_stake: Annotated[float, typer.Option("--min-provider-stake", help="In VMT.")] = 100.0,
    min_validator_stake: Annotated[float, typer.Option("--min-validator-stake", help="In VMT.")] = 100.0,
    immunity: Annotated[
        int, typer.Option("--immunity", min=0, help="Epochs a newcomer cannot be pruned.")
    ] = 2,
    epoch_length: Annotated[int, typer.Option("--epoch-length", min=2, help="Seconds per epoch.")] = 3600,
    commit_length: Annotated[
        int | None, typer.Option("--commit-length", min=1, help="Seconds of the commit phase [half an epoch].")
    ] = None,
    settle_bond: Annotated[float, typer.Option("--settle-bond", help="Bond to post or challenge a settlement, VMT.")] = 10.0,
    challenge_window: Annotated[
        int, typer.Option("--challenge-window", min=0, help="Seconds a posted settlement can be challenged.")
    ] = 600,
    arbiter: Annotated[
        str | None, typer.Option("--arbiter", help="Address that resolves challenges [the creator].")
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Reuse a name already in arenas.json.")] = False,
    deployment: DeploymentOpt = None,
    wallet: WalletOpt = None,
    dev: DevOpt = None,
) -> None:
    """Deploy a new Arena for the deployment's token and remember it by NAME."""
    from eth_utils import keccak

    from verimesh.chain.arena import ArenaClient
    from verimesh.chain.client import Network
    from verimesh.chain.contract import checksum
    from verimesh.chain.errors import ChainError, ContractRevert

    if (spec is None) == (spec_hash is None):
        raise typer.BadParameter("pass exactly one of --spec FILE or --spec-hash 0x...: the spec validators follow")
    if spec is not None:
        if not spec.is_file():
            raise typer.BadParameter(f"no spec file at {spec}")
        spec_bytes = hashlib.sha256(spec.read_bytes()).digest()
    else:
        spec_bytes = _hex32(spec_hash or "", "--spec-hash")
    commit = epoch_length // 2 if commit_length is None else commit_length
    if commit >= epoch_length:
        raise typer.BadParameter(f"--commit-length {commit} must be shorter than --epoch-length {epoch_length}")
    book = _load_book()
    if name in book.arenas and not replace:
        raise _fail(f"an arena named {name!r} already exists ({book.arenas[name].address}); pick another name or pass --replace")
    path = _deployment_path(deployment)
    try:
        signer = _signer(wallet, dev, path)
        net = Network.connect(path, signer)
        arena, _ = ArenaClient.deploy(
            net.backend, signer, _arena_artifact(), net.token.address, checksum(arbiter or signer.address),
            keccak(text=task_family), spec_bytes, slots, _vmt(min_provider_stake, "--min-provider-stake"),
            _vmt(min_validator_stake, "--min-validator-stake"), immunity, epoch_length, commit,
            _vmt(settle_bond, "--settle-bond"), challenge_window,
        )
    except ContractRevert as exc:
        raise _fail(f"the Arena constructor refused: {exc.reason}") from None
    except typer.BadParameter:
        raise
    except (ChainError, ValueError, OSError) as exc:  # no deployment, wrong password, bad address
        raise _fail(str(exc)) from None
    book.arenas[name] = ArenaRecord(
        address=arena.address, chain_id=net.backend.chain_id, task_family=task_family,
        spec_hash="0x" + spec_bytes.hex(), token=net.token.address, created_block=net.backend.block_number(),
    )
    save_book(book)
    console.print(f"arena [bold]{name}[/bold] ({task_family}, {slots} slots) deployed at")
    typer.echo(arena.address)


@app.command("join")
def join_command(
    name: NameArg,
    stake: Annotated[float | None, typer.Option("--stake", help="Stake in VMT [the arena's minimum].")] = None,
    validator: Annotated[bool, typer.Option("--validator", help="Join as a validator (default: provider).")] = False,
    deployment: DeploymentOpt = None,
    wallet: WalletOpt = None,
    dev: DevOpt = None,
) -> None:
    """Stake into an arena as a provider (or with --validator as a validator): approve the
    stake if the allowance is short, then register."""
    from verimesh.chain.errors import ChainError, ContractRevert

    path = _deployment_path(deployment)
    role = "validator" if validator else "provider"
    try:
        signer = _signer(wallet, dev, path)
        net, arena, _ = _open(name, deployment, signer)
        minimum = arena.call("min_validator_stake" if validator else "min_provider_stake")
        amount = minimum if stake is None else _vmt(stake, "--stake")
        if amount < minimum:
            raise _fail(f"--stake {_fmt(amount)} is below the arena's minimum {role} stake {_fmt(minimum)}")
        balance = net.token.balance_of(signer.address)
        if balance < amount:
            raise _fail(f"{signer.address} holds {_fmt(balance)}, the stake needs {_fmt(amount)}; get tokens first")
        if net.token.allowance(signer.address, arena.address) < amount:
            net.token.approve(arena.address, amount)
        tx = arena.register_validator(amount) if validator else arena.register_provider(amount)
    except ContractRevert as exc:
        raise _fail(f"{role} registration refused by the arena: {exc.reason}") from None
    except (typer.Exit, typer.BadParameter):
        raise
    except (ChainError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if validator:
        console.print(f"{signer.address} validates arena [bold]{name}[/bold] with {_fmt(amount)}", soft_wrap=True)
        return
    joined = tx.event("ProviderRegistered")
    console.print(
        f"{signer.address} joined arena [bold]{name}[/bold] in slot {joined['slot']} with {_fmt(amount)}",
        soft_wrap=True,
    )
    for pruned in tx.events_named("ProviderPruned"):
        console.print(f"pruned {pruned['provider']} from slot {pruned['slot']} (its stake is claimable)", soft_wrap=True)


PARAMS = [
    "task_family", "spec_hash", "token", "arbiter", "max_providers", "min_provider_stake", "min_validator_stake",
    "immunity_epochs", "epoch_length", "commit_length", "settle_bond", "challenge_window", "genesis",
]


def _status(arena: ArenaClient, record: ArenaRecord) -> dict:
    from verimesh.chain.arena import ZERO_ADDRESS

    params = {key: arena.call(key) for key in PARAMS}
    for key in ("task_family", "spec_hash"):
        params[key] = "0x" + params[key].hex()
    now = arena.backend.timestamp()
    elapsed = now - params["genesis"]
    epoch = elapsed // params["epoch_length"]
    into = elapsed % params["epoch_length"]
    commit = into < params["commit_length"]
    phase_end = params["commit_length"] if commit else params["epoch_length"]
    providers = []
    for slot, provider in enumerate(arena.lineup()):
        if provider == ZERO_ADDRESS:
            continue
        joined = arena.call("provider_joined", provider)
        providers.append({
            "slot": slot, "provider": provider, "stake": arena.provider_stake(provider), "joined_epoch": joined,
            "immune_until_epoch": joined + params["immunity_epochs"],
            "immune": epoch < joined + params["immunity_epochs"], "standing": arena.slot_rank(slot),
        })  # fmt: skip
    validators = [{"validator": v, "stake": arena.validator_stake(v)} for v in arena.validators()]
    return {
        "address": arena.address, "task_family_name": record.task_family, "params": params,
        "epoch": epoch, "phase": "commit" if commit else "reveal", "phase_seconds_left": phase_end - into,
        "pool": arena.pool(epoch), "providers": providers, "validators": validators,
    }  # fmt: skip


@app.command("status")
def status_command(
    name: NameArg,
    deployment: DeploymentOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parameters, current epoch and phase, reward pool, providers and validators of an arena."""
    from verimesh.chain.errors import ChainError

    try:
        _, arena, record = _open(name, deployment)
        st = _status(arena, record)
    except ChainError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    p = st["params"]
    head = Table(title=f"arena {name} at {st['address']}", show_header=False)
    head.add_column()
    head.add_column(overflow="fold")  # hashes in full
    head.add_row("task family", f"{record.task_family} (id {p['task_family']})")
    head.add_row("spec hash", p["spec_hash"])
    head.add_row("slots", f"{len(st['providers'])} of {p['max_providers']} taken")
    head.add_row("min stake", f"provider {_fmt(p['min_provider_stake'])}, validator {_fmt(p['min_validator_stake'])}")
    head.add_row("immunity", f"{p['immunity_epochs']} epochs")
    head.add_row("epoch", f"{st['epoch']} ({p['epoch_length']} s; commit phase {p['commit_length']} s)")
    head.add_row("phase", f"{st['phase']}, {st['phase_seconds_left']} s left")
    head.add_row("pool this epoch", _fmt(st["pool"]))
    head.add_row("settlement", f"bond {_fmt(p['settle_bond'])}, challenge window {p['challenge_window']} s")
    console.print(head)
    providers = Table(title="providers")
    for column in ("slot", "address", "stake VMT", "immune until epoch", "standing"):
        providers.add_column(column, justify="left" if column == "address" else "right")
    providers.columns[1].no_wrap = True  # an address must stay copyable; headers wrap instead
    providers.columns[1].min_width = 42
    for row in st["providers"]:
        immunity = str(row["immune_until_epoch"]) if row["immune"] else "-"
        providers.add_row(
            str(row["slot"]), row["provider"], _num(row["stake"]), immunity, str(row["standing"])
        )
    console.print(providers)
    validators = Table(title="validators")
    validators.add_column("address", no_wrap=True, min_width=42)
    validators.add_column("stake", justify="right")
    for row in st["validators"]:
        validators.add_row(row["validator"], _fmt(row["stake"]))
    console.print(validators)


@app.command("leaderboard")
def leaderboard_command(
    name: NameArg,
    deployment: DeploymentOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Providers ranked by their rewards over the settled epochs (recomputed from the chain)."""
    from verimesh.chain.errors import ChainError

    try:
        _, arena, _ = _open(name, deployment)
        board = leaderboard(arena)
    except ChainError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(board, indent=2))
        return
    if not board["settled_epochs"]:
        console.print(f"arena {name}: no settled epoch yet, so no ranks")
        return
    table = Table(title=f"arena {name}: {len(board['settled_epochs'])} settled epochs")
    for column in ("#", "provider", "VMT", "ranks"):  # fits 80 columns: the address stays whole
        table.add_column(column, justify="left" if column == "provider" else "right")
    table.columns[1].no_wrap = True
    table.columns[1].min_width = 42
    for position, t in enumerate(board["providers"], start=1):
        table.add_row(str(position), t["provider"], f"{t['reward'] / VMT:,.2f}", " ".join(map(str, t["ranks"])))
    console.print(table)
    for e in board["epochs"]:
        if not e["agrees"]:
            console.print(f"[yellow]epoch {e['epoch']}: the finalized payouts differ from the recomputed ones[/yellow]")


class _Member(BaseModel):
    account: str  # devN or a wallet name
    model: str = ""
    price: int = 0


def _parse_member(text: str, provider: bool) -> _Member:
    """``dev2=minilm@3`` (provider: account, model, price in VMT) or ``dev5`` (validator)."""
    if not provider:
        return _Member(account=text)
    account, _, rest = text.partition("=")
    model, _, price = rest.partition("@")
    if not account or not model:
        raise typer.BadParameter(f"--provider {text!r}: write ACCOUNT=MODEL@PRICE, e.g. dev2=minilm@3")
    try:
        amount = _vmt(float(price or 0), "price")
    except ValueError:
        raise typer.BadParameter(f"--provider {text!r}: price {price!r} is not a number of VMT") from None
    return _Member(account=account, model=model, price=amount)


def _member_signer(account: str, path: Path):
    is_dev = account.startswith("dev") and account[3:].isdigit()
    return _signer(None if is_dev else account, account if is_dev else None, path)


@app.command("run")
def run_command(
    name: NameArg,
    provider: Annotated[
        list[str], typer.Option("--provider", help="ACCOUNT=MODEL@PRICE, e.g. dev2=minilm@3 (repeat).")
    ],
    validator: Annotated[list[str], typer.Option("--validator", help="Validator account, e.g. dev5 (repeat).")],
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs to play.")] = 3,
    funder: Annotated[str, typer.Option("--funder", help="Account that funds each epoch and posts settlements.")] = "dev1",
    fund: Annotated[float, typer.Option("--fund", help="Reward pool per epoch, VMT.")] = 100.0,
    pool_size: Annotated[int | None, typer.Option("--pool-size", min=1, help="Items every provider answers per epoch.")] = None,
    challenges: Annotated[int | None, typer.Option("--challenges", min=1, help="Items the seed scores per epoch.")] = None,
    audits: Annotated[
        int | None, typer.Option("--audits", min=0, help="Opened answers each validator recomputes per provider (default: all).")
    ] = None,
    fast_forward: Annotated[
        bool, typer.Option("--fast-forward", help="Move the devnet's clock instead of waiting (private devnets only).")
    ] = False,
    deployment: DeploymentOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
) -> None:
    """Play EPOCHS epochs of arena NAME with real models: providers answer the epoch's pool in
    the exact runtime and commit on chain, the seed is revealed, validators score and
    commit-reveal, the consensus settlement is posted and finalized. Members not yet in the
    arena join it with the minimum stake."""
    from verimesh.chain.errors import ChainError, ContractRevert
    from verimesh.market.arena_models import ArenaModelError, task_of
    from verimesh.market.arena_run import ArenaProvider, ArenaRun, ArenaValidator, ChainClock
    from verimesh.market.challenges import ChallengeError, task_spec

    path = _deployment_path(deployment)
    providers_in = [_parse_member(p, True) for p in provider]
    validators_in = [_parse_member(v, False) for v in validator]
    try:
        fund_signer = _member_signer(funder, path)
        net, arena, record = _open(name, deployment, fund_signer)
        spec = task_spec(record.task_family, pool_size, challenges)
        for m in providers_in:
            if task_of(m.model) != spec.name:
                raise _fail(f"model {m.model!r} competes in the {task_of(m.model)} arena, not in {name!r} ({spec.name})")
        players = []
        for m, role in [*((m, "provider") for m in providers_in), *((m, "validator") for m in validators_in)]:
            signer = _member_signer(m.account, path)
            member = arena.as_signer(signer)
            staked = member.provider_stake(signer.address) if role == "provider" else member.validator_stake(signer.address)
            if staked == 0:
                minimum = member.call("min_provider_stake" if role == "provider" else "min_validator_stake")
                if net.token.allowance(signer.address, arena.address) < minimum:
                    net.token.as_signer(signer).approve(arena.address, minimum)
                member.register_provider(minimum) if role == "provider" else member.register_validator(minimum)
            players.append((m, role, signer))
        total = _vmt(fund, "--fund") * epochs
        if net.token.allowance(fund_signer.address, arena.address) < total + 2 * epochs * arena.settle_bond():
            net.token.as_signer(fund_signer).approve(arena.address, total + 2 * epochs * arena.settle_bond())
        run = ArenaRun(
            arena=arena, spec=spec,
            providers=[ArenaProvider(s, m.model, m.price) for m, role, s in players if role == "provider"],
            validators=[ArenaValidator(s, audits) for m, role, s in players if role == "validator"],
            funder=fund_signer, fund_per_epoch=_vmt(fund, "--fund"),
            clock=ChainClock(net.backend, fast_forward),
            log=(lambda msg: None) if as_json else (lambda msg: errors.print(msg)),
        )
        report = run.run(epochs)
    except ContractRevert as exc:
        raise _fail(f"the arena refused: {exc.reason}") from None
    except (ChallengeError, ArenaModelError) as exc:
        raise _fail(str(exc)) from None
    except (typer.Exit, typer.BadParameter):
        raise
    except (ChainError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    table = Table(title=f"arena {name} ({spec.name}): {epochs} epochs with real models")
    for column in ("model", "provider", "price", "scores per epoch", "ranks", "rewards"):
        table.add_column(column, justify="left" if column in ("model", "provider") else "right")
    first_validator = next(iter(report.epochs[0].scores)) if report.epochs else None
    for address, model in report.models.items():
        scores = [
            next(s.score for s in e.scores[first_validator] if s.provider == address) for e in report.epochs
        ] if first_validator else []  # fmt: skip
        ranks = [e.ranks.get(address, 0) for e in report.epochs]
        table.add_row(
            model, address, _num(report.prices[address]), " ".join(map(str, scores)),
            " ".join(map(str, ranks)), _fmt(report.total_rewards[address]),
        )
    console.print(table)
    for model, first in report.epochs_to_rank_first.items():
        console.print(f"{model}: {'first in epoch ' + str(first) if first else 'never ranked first'}, "
                      f"{report.seconds_answering.get(model, 0):.1f} s answering")


@app.command("settlement")
def settlement_command(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain.")],
    arena_address: Annotated[str, typer.Option("--arena", help="Address of the Arena contract.")],
    epoch: Annotated[int, typer.Option("--epoch", min=0, help="Epoch to settle.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute an epoch's settlement from the chain (reveals, lineup, stakes, pools, every
    earlier epoch's bonds) and compare it with the posted one: the watcher's check before a
    challenge window closes. Exit code 2 if the posted settlement is wrong."""
    from verimesh.chain.arena import ArenaClient, SettlementStatus
    from verimesh.chain.backends.rpc import RpcBackend
    from verimesh.chain.compile import load_artifacts
    from verimesh.chain.errors import ChainError
    from verimesh.market.arena_epoch import settlement_from_history

    try:
        backend = RpcBackend(rpc)
        abi = load_artifacts(names=["Arena"])["Arena"].abi
        arena = ArenaClient(backend, arena_address, abi)
        if epoch >= arena.current_epoch():
            errors.print(f"[red]error:[/red] epoch {epoch} is not over yet (current epoch {arena.current_epoch()})")
            raise typer.Exit(code=1)
        correct = settlement_from_history(arena, epoch)
        posted = arena.settlement(epoch)
        digest = arena.call("settlement_digest", *correct.args())
    except ChainError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    if posted.status is SettlementStatus.NONE:
        verdict = "none posted"
    else:
        verdict = "agrees" if posted.digest == digest else "WRONG"
    if as_json:
        typer.echo(json.dumps({
            "epoch": epoch, "settlement": correct.model_dump(), "digest": "0x" + digest.hex(),
            "posted_status": posted.status.name.lower(), "posted": verdict,
        }, indent=2))
    else:
        table = Table(title=f"arena {arena.address}, epoch {epoch}: payouts from the chain's history")
        table.add_column("slot / validator")
        table.add_column("address")
        table.add_column("reward", justify="right")
        for k, (p, r) in enumerate(zip(correct.providers, correct.provider_rewards, strict=True)):
            table.add_row(f"slot {k}", p, str(r))
        for v, r in zip(correct.validators, correct.validator_rewards, strict=True):
            table.add_row("validator", v, str(r))
        table.add_row("carry", "", str(correct.carry))
        console.print(table)
        console.print(f"posted settlement ({posted.status.name.lower()}): {verdict}")
    if verdict == "WRONG":
        raise typer.Exit(code=2)


@app.command("simulate")
def simulate_command(
    epochs: Annotated[int, typer.Option("--epochs", min=2, help="Epochs to simulate.")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the whole world (same seed, same numbers).")] = 0,
    cartel_stake: Annotated[float, typer.Option("--cartel-stake", help="Cartel's share of stake, < 0.5.")] = 0.30,
    copier_stake: Annotated[float, typer.Option("--copier-stake", min=0.0, help="Weight copiers' share.")] = 0.10,
    lazy_stake: Annotated[float, typer.Option("--lazy-stake", min=0.0, help="Lazy validators' share.")] = 0.05,
    private_noise: Annotated[
        float, typer.Option("--private-noise", min=0.0, help="Sd of each validator's own measurement noise.")
    ] = 0.02,
    best_arrival: Annotated[int, typer.Option("--best-arrival", min=1, help="Epoch the best provider joins.")] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot-dir", help="Write PNG plots here (needs matplotlib).")
    ] = None,
) -> None:
    """Simulate an arena with honest, cartel, copying and lazy validators; compare verimesh's
    two-sided clipping with plain Yuma on the same world.

    Honest validators hold the rest of the stake: 1 - cartel - copiers - lazy.
    """
    if not 0 < cartel_stake < 0.5:
        errors.print(f"[red]error:[/red] --cartel-stake must be in (0, 0.5), got {cartel_stake}")
        raise typer.Exit(code=1)
    if best_arrival >= epochs:
        errors.print(f"[red]error:[/red] --best-arrival {best_arrival} must be below --epochs {epochs}")
        raise typer.Exit(code=1)
    honest_stake = round(1.0 - cartel_stake - copier_stake - lazy_stake, 9)
    if honest_stake < 0.01:
        errors.print(
            "[red]error:[/red] cartel + copier + lazy stake leave no stake to honest validators; "
            "keep their sum at most 0.99"
        )
        raise typer.Exit(code=1)
    config = SimConfig(
        epochs=epochs, seed=seed, cartel_stake=cartel_stake, honest_stake=honest_stake,
        copier_stake=copier_stake, lazy_stake=lazy_stake,
        private_noise=private_noise, best_arrival=best_arrival,
    )
    sim = simulate(config)
    report = sim.report()
    if plot_dir is not None:
        from verimesh.market.plots import plot_simulation

        try:
            report["plots"] = [str(p) for p in plot_simulation(sim, plot_dir)]
        except RuntimeError as exc:
            errors.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"arena simulation: {epochs} epochs, seed {seed}, cartel {cartel_stake:.0%} of stake")
    table.add_column("metric")
    table.add_column("goal")
    table.add_column("two-sided (verimesh)")
    table.add_column("one-sided (Yuma)")
    keys = [
        "epochs_for_best_to_rank_first", "best_first_fraction", "cartel_reward_shift",
        "cartel_reward_shift_same_lineup", "copier_to_honest_earnings", "cartel_to_honest_earnings",
        "lazy_to_honest_earnings", "honest_validator_share",
    ]
    for key in keys:
        goal = " ".join(map(str, GOALS[key])) if key in GOALS else ""
        cells = []
        for rule in ("two_sided", "yuma"):
            value = report[rule][key]
            met = report[rule]["goals_met"].get(key)
            mark = "" if met is None else (" [green]ok[/green]" if met else " [red]missed[/red]")
            cells.append(f"{value}{mark}")
        table.add_row(key, goal, *cells)
    console.print(table)
    console.print(f"honest validators hold {report['stake_shares']['honest']:.0%} of stake")
    for path in report.get("plots", []):
        console.print(f"wrote {path}")
