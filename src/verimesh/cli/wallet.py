"""`verimesh wallet ...`: create, import, list and inspect the keys a node or requester uses.

Secrets never travel on the command line (shell history, `ps`): passwords come from a
hidden prompt or ``VERIMESH_PASSWORD``, imported keys from a hidden prompt or
``VERIMESH_PRIVATE_KEY``. Nothing here ever prints a private key.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from verimesh.chain.client import Network
from verimesh.chain.devnet import default_state_dir
from verimesh.chain.errors import ChainError
from verimesh.crypto.keystore import KeystoreError, read_keystore
from verimesh.crypto.wallet import PASSWORD_ENV, WalletError, WalletStore, password_from_env

PRIVATE_KEY_ENV = "VERIMESH_PRIVATE_KEY"

app = typer.Typer(
    help=(
        "Your keys: encrypted keystore files under $VERIMESH_HOME/wallets "
        "(default ~/.verimesh). Passwords come from a prompt or $VERIMESH_PASSWORD."
    ),
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception) -> typer.Exit:
    errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    return typer.Exit(code=1)


def _new_password() -> str:
    env = password_from_env()
    if env is not None:
        return env
    return typer.prompt("New wallet password", hide_input=True, confirmation_prompt=True)


def _existing_password(name: str) -> str:
    env = password_from_env()
    if env is not None:
        return env
    return typer.prompt(f"Password of wallet {name!r}", hide_input=True)


def _print_created(name: str, address: str, path: Path, verb: str) -> None:
    console.print(f"{verb} wallet [bold]{name}[/bold]")
    console.print(f"  address  {address}")
    console.print(f"  keystore {path}")


@app.command("new")
def new(name: str = typer.Argument(..., help="Name of the new wallet (letters, digits, _ - .).")) -> None:
    """Create a wallet with a fresh random key."""
    store = WalletStore()
    try:
        store.path(name)  # reject a bad name before asking for a password
        info = store.create(name, _new_password())
    except (WalletError, KeystoreError) as exc:
        raise _fail(exc) from None
    _print_created(info.name, info.address, info.path, "created")


@app.command("import")
def import_(name: str = typer.Argument(..., help="Name for the imported wallet.")) -> None:
    """Import a private key from $VERIMESH_PRIVATE_KEY or a hidden prompt (never argv)."""
    store = WalletStore()
    try:
        store.path(name)
        key = os.environ.get(PRIVATE_KEY_ENV)
        if key is None:
            key = typer.prompt("Private key (64 hex digits, hidden)", hide_input=True)
        info = store.import_key(name, key, _new_password())
    except (WalletError, KeystoreError) as exc:
        raise _fail(exc) from None
    _print_created(info.name, info.address, info.path, "imported")


@app.command("list")
def list_() -> None:
    """List wallets (names and addresses; no password needed)."""
    store = WalletStore()
    infos = store.list()
    if not infos:
        console.print(f"no wallets in {store.directory}; create one with `verimesh wallet new NAME`")
        return
    table = Table("name", "address", title=str(store.directory), title_justify="left")
    for info in infos:
        table.add_row(info.name, info.address)
    console.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Wallet name."),
    check_password: bool = typer.Option(
        False, "--check-password", help=f"Also decrypt it to check the password (prompt or ${PASSWORD_ENV})."
    ),
) -> None:
    """Show a wallet's address, file and key-derivation settings (never the key)."""
    store = WalletStore()
    try:
        info = store.info(name)
        kdf = read_keystore(info.path)["crypto"]
        if check_password:
            store.load(name, _existing_password(name))
    except (WalletError, KeystoreError) as exc:
        raise _fail(exc) from None
    params = kdf.get("kdfparams", {})
    console.print(f"wallet   [bold]{info.name}[/bold]")
    console.print(f"address  {info.address}")
    console.print(f"keystore {info.path}")
    console.print(f"kdf      {kdf.get('kdf')} n={params.get('n')} r={params.get('r')} p={params.get('p')}")
    if check_password:
        console.print("password [green]ok[/green]")


def format_units(amount: int, decimals: int) -> str:
    """``amount`` base units as a decimal number of whole tokens, exactly (no float)."""
    text = format(Decimal(amount).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@app.command("balance")
def balance(
    name: str = typer.Argument(..., help="Wallet name."),
    deployment: Annotated[
        Path | None,
        typer.Option(
            "--deployment",
            help="deployment.json of the network (default: $VERIMESH_HOME/devnet/deployment.json).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show a wallet's ETH and token (VMT) balances on a deployment's chain."""
    path = deployment if deployment is not None else default_state_dir() / "deployment.json"
    try:
        info = WalletStore().info(name)
        net = Network.connect(path)
        eth = net.backend.eth_balance(info.address)
        tokens = net.token.balance_of(info.address)
        symbol, decimals = net.token.symbol(), net.token.decimals()
    except (WalletError, KeystoreError, ChainError) as exc:
        raise _fail(exc) from None
    console.print(f"wallet   [bold]{info.name}[/bold]  {info.address}")
    console.print(f"chain    {net.backend.chain_id}  ({path})")
    console.print(f"ETH      {format_units(eth, 18)}")
    console.print(f"{symbol:<8} {format_units(tokens, decimals)}")
