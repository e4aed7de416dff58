"""`verimesh agent run | serve | ledger`: autonomous agents that buy and sell AI services.

    verimesh agent run --budget 10 --goal "generate:ROMEO:" --generate-model tiny-shakespeare
    verimesh agent serve --budget 20 --generate-model tiny-shakespeare --port 8900
    verimesh agent ledger

The owner account (``--owner devN`` on a devnet, or ``--wallet NAME``) funds a new
AgentWallet with the budget and authorizes the agent's session key; the agent spends only
through that key, under the policy the chain enforces. Its state (agent.json, the session
key's keystore, ledger.sqlite) lives in ``--home`` ($VERIMESH_HOME/agents/NAME).
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from verimesh.paths import verimesh_home

app = typer.Typer(help="Autonomous agents that buy and sell AI services.", no_args_is_help=True)

VMT = 10**18
# `serve` redeems a channel once it holds this many unredeemed requests (or its payer is
# closing it), checking every SETTLE_EVERY seconds.
SETTLE_REQUESTS = 10
SETTLE_EVERY = 15.0
DeploymentOpt = Annotated[
    Path | None,
    typer.Option("--deployment", "-d", help="deployment.json [default: $VERIMESH_HOME/devnet/deployment.json]"),
]
OwnerOpt = Annotated[
    str | None, typer.Option("--owner", help="devnet dev account that owns and funds the agent's wallet [dev1]")
]
WalletOpt = Annotated[str | None, typer.Option("--wallet", help="verimesh wallet that owns and funds it instead")]
HomeOpt = Annotated[Path | None, typer.Option("--home", help="agent state [default: $VERIMESH_HOME/agents/NAME]")]
NameOpt = Annotated[str, typer.Option("--name", help="the agent's name (ledger, default home)")]
BudgetOpt = Annotated[float, typer.Option("--budget", help="VMT the owner puts in the wallet; the session key's allowance per day")]
EmbedOpt = Annotated[str, typer.Option("--embed-model", help="encoder for embeddings (name or 0x root)")]
GenerateOpt = Annotated[str, typer.Option("--generate-model", help="decoder for generation (name or 0x root)")]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _vmt(value: float, what: str) -> int:
    if value <= 0:
        raise typer.BadParameter(f"{what} must be > 0 VMT")
    return round(value * VMT)


def _paths(deployment: Path | None, home: Path | None, name: str) -> tuple[Path, Path]:
    base = verimesh_home()
    return (deployment or base / "devnet" / "deployment.json").expanduser(), (home or base / "agents" / name).expanduser()


def _provision(deployment: Path | None, owner: str | None, wallet: str | None, home: Path | None, name: str,
               budget: int, counterparties: tuple[str, ...] = ()):  # fmt: skip
    from verimesh.agent import Agent
    from verimesh.chain import Signer
    from verimesh.cli.node import load_wallet

    dep_path, home_path = _paths(deployment, home, name)
    if owner is None and wallet is None:
        owner = "dev1"
    signer = Signer.from_wallet(load_wallet(wallet, owner, dep_path))
    try:
        return Agent.provision(dep_path, signer, budget, home_path, name=name, counterparties=counterparties)
    except Exception as exc:  # every failure here is the environment's; say what it was
        _fail(f"could not set up the agent: {exc}")


@app.command()
def run(
    budget: BudgetOpt,
    goal: Annotated[list[str], typer.Option("--goal", help="embed:FILE | generate:PROMPT | search:QUERY|FILE (repeatable)")],
    value: Annotated[float, typer.Option("--value", help="VMT a wrong result would cost you: picks the verification mode")] = 1.0,
    embed_model: EmbedOpt = "minilm",
    generate_model: GenerateOpt = "smollm2",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="tokens per generation")] = 16,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for each job")] = 600,
    deployment: DeploymentOpt = None,
    owner: OwnerOpt = None,
    wallet: WalletOpt = None,
    home: HomeOpt = None,
    name: NameOpt = "agent",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per job, then the summary")] = False,
) -> None:
    """Pursue GOALs within BUDGET: plan, buy verified jobs, check them, book every token."""
    from verimesh.agent import parse_goal
    from verimesh.agent.work import GoalError

    try:
        work = [w for g in goal for w in parse_goal(g, embed_model=embed_model, generate_model=generate_model,
                                                    value=_vmt(value, "--value"), max_tokens=max_tokens)]  # fmt: skip
    except GoalError as exc:
        raise typer.BadParameter(str(exc), param_hint="--goal") from None
    agent = _provision(deployment, owner, wallet, home, name, _vmt(budget, "--budget"))
    try:
        plan = agent.plan(work)
        if not as_json:
            typer.echo(f"agent {name}: wallet {agent.wallet.address}, session key {agent.key.address}")
            typer.echo(f"plan: {len(plan.purchases)} jobs, {plan.escrow / VMT:g} VMT escrow; {len(plan.skipped)} skipped")
            for purchase in plan.purchases:
                typer.echo(f"  {purchase.item.label:<10} {purchase.mode!s:<14} {purchase.reason}")
        records = agent.run_jobs(work, timeout=timeout, on_record=None if as_json else lambda r: typer.echo(r.line()))
        outputs = _goal_outputs(goal, records)
        summary = agent.summary()
        if as_json:
            for record in records:
                typer.echo(json.dumps({**record.model_dump(mode="json"), "output": record.output}))
            typer.echo(json.dumps({"summary": summary, "results": outputs}))
        else:
            for line in outputs:
                typer.echo(line if isinstance(line, str) else json.dumps(line))
            typer.echo(f"spent {summary['spent'] / VMT:g} VMT of {budget:g}; ledger: verimesh agent ledger --home {agent.home}")
    finally:
        agent.close()
    if any(r.state not in ("verified", "skipped") for r in records):
        raise typer.Exit(2)


def _goal_outputs(goals: list[str], records) -> list:
    """What each goal produced: generated text, embedding counts, or a search ranking."""
    import numpy as np

    out: list = [r.output for r in records if r.label == "generate" and r.verified]
    by_label = {r.label: r for r in records}
    for g in goals:
        kind, _, arg = g.partition(":")
        if kind == "search":
            docs = [r for r in records if r.label.startswith("docs-")]
            query = by_label.get("query")
            if query is None or not query.verified or not all(d.verified for d in docs):
                out.append("search: not every embedding verified; no ranking")
                continue
            from verimesh.agent.work import read_documents

            texts = read_documents(Path(arg.rpartition("|")[2].strip()))
            vectors = np.asarray([v for d in docs for v in d.output], dtype=np.float64)
            scores = vectors @ np.asarray(query.output)
            out += [f"{scores[i]:.3f}  {texts[i]}" for i in np.argsort(-scores)[:3]]
        elif kind == "embed":
            n = sum(len(r.output) for r in records if r.label.startswith("embed-") and r.verified)
            out.append(f"embedded {n} documents (verified)")
    return out


@app.command()
def serve(
    budget: BudgetOpt,
    generate_model: Annotated[str | None, typer.Option("--generate-model", help="sell answers with this decoder")] = None,
    embed_model: Annotated[str | None, typer.Option("--embed-model", help="sell search with this encoder (needs --docs)")] = None,
    docs: Annotated[Path | None, typer.Option("--docs", help="documents to index, one per line")] = None,
    answer_price: Annotated[float, typer.Option("--answer-price", help="VMT per answer")] = 3.0,
    search_price: Annotated[float, typer.Option("--search-price", help="VMT per search")] = 3.0,
    value: Annotated[float, typer.Option("--value", help="value at risk per bought job (VMT)")] = 1.0,
    port: Annotated[int, typer.Option("--port", help="HTTP port on 127.0.0.1")] = 8900,
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    deployment: DeploymentOpt = None,
    owner: OwnerOpt = None,
    wallet: WalletOpt = None,
    home: HomeOpt = None,
    name: NameOpt = "seller",
) -> None:
    """Sell answers and/or semantic search over HTTP (x402), fulfilled by buying verified jobs.
    Runs until Ctrl-C; then redeems and closes every channel."""
    from verimesh.agent.server import BackgroundServer
    from verimesh.agent.service import AgentService, ServiceConfig, ServiceError
    from verimesh.agent.work import read_documents

    if embed_model is not None and docs is None:
        raise typer.BadParameter("search needs documents: pass --docs FILE (one per line)", param_hint="--docs")
    if docs is not None and not docs.is_file():
        raise typer.BadParameter(f"no file {docs}", param_hint="--docs")
    agent = _provision(deployment, owner, wallet, home, name, _vmt(budget, "--budget"))
    try:
        config = ServiceConfig(name=name, generate_model=generate_model, embed_model=embed_model,
                               answer_price=_vmt(answer_price, "--answer-price"),
                               search_price=_vmt(search_price, "--search-price"), value=_vmt(value, "--value"))  # fmt: skip
        try:
            service = AgentService(agent, config, voucher_db=agent.home / "vouchers.sqlite" if agent.home else None)
        except ServiceError as exc:
            _fail(str(exc))
        if docs is not None:
            typer.echo(f"indexing {docs}: buying embeddings...")
            service.index_documents(read_documents(docs))
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with BackgroundServer(service.app(), host, port) as server:
            info = service.info()
            typer.echo(f"agent {name} serving on {server.url} (payee {info.payee}, wallet {info.wallet})")
            for route in info.routes:
                typer.echo(f"  POST {route.path}  {route.price / VMT:g} VMT  {route.description}")
            # Redeem now and then: a channel holding many prices, or one its payer is closing.
            threshold = SETTLE_REQUESTS * min(config.answer_price, config.search_price)
            while not stop.wait(SETTLE_EVERY):
                try:
                    service.settle_due(threshold)
                except Exception as exc:  # the chain may be briefly away: try again next round
                    typer.secho(f"settling failed, will retry: {exc}", fg="yellow", err=True)
        redeemed = service.settle(close=True)
        typer.echo(f"stopped; redeemed {redeemed / VMT:g} VMT; ledger: verimesh agent ledger --home {agent.home}")
    finally:
        agent.close()


@app.command()
def ledger(
    home: HomeOpt = None,
    name: NameOpt = "agent",
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Show an agent's books: every spend and earning with its transaction."""
    from verimesh.agent import Ledger
    from verimesh.agent.agent import LEDGER_FILE

    _, home_path = _paths(None, home, name)
    path = home_path / LEDGER_FILE
    if not path.is_file():
        _fail(f"no ledger at {path}; run `verimesh agent run` first or pass --home")
    book = Ledger(path)
    try:
        if as_json:
            typer.echo(book.to_jsonl(), nl=False)
            return
        for row in book.rows():
            typer.echo(row.line())
        totals = book.totals()
        typer.echo(f"spent {totals['spent'] / VMT:g} VMT, earned {totals['earned'] / VMT:g} VMT, "
                   f"in channels {totals.get('channel', 0) / VMT:g} VMT (recoverable)")  # fmt: skip
    finally:
        book.close()
