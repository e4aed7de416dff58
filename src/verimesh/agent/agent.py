"""``Agent``: an autonomous buyer of verified AI compute with a wallet, a policy and a goal.

    agent = Agent.provision("~/.verimesh/devnet/deployment.json", owner="dev1", budget=20 * VMT,
                            home=Path("agent-home"))
    records = agent.run_jobs([WorkItem(task="embed", model="minilm", input="hello", value=VMT)])
    agent.close()

One job, step by step: discover the providers and their prices (Registry + ``/v1/info``);
plan (``agent.planner``: a mode by value at risk, the market price for its replicas, the
escrow within what the wallet will still pay); fund (the wallet pays the session key the
escrow under the chain-enforced policy, ``agent.wallet``); post and upload through the SDK;
wait for the revealed roots and fetch the output, which the SDK checks against the
revealed ``output_root``; check the decoded output itself (``agent.checks``); book every
token in the ledger with its transaction. A job that misses a deadline is refunded by the
SDK, and the refund is booked from the chain's ``Credited`` event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account

from verimesh.agent.buyer import ServiceBuyer
from verimesh.agent.checks import OutputRejected, check_output
from verimesh.agent.ledger import Ledger
from verimesh.agent.offers import ProviderOffer, discover_providers
from verimesh.agent.planner import Plan, Purchase, Skipped, plan_purchases
from verimesh.agent.policy import DEFAULT_RULE, MarketTerms, ModeRule
from verimesh.agent.wallet import (
    KEY_FILE,
    AgentFunds,
    AgentRecord,
    BudgetRefused,
    SessionPolicy,
    load_agent,
    provision_wallet,
    save_agent,
    tx_hash,
)
from verimesh.agent.work import JobRecord, WorkItem
from verimesh.chain import ContractRevert, Deployment, JobState, Network, Signer
from verimesh.chain.agent_wallet import AgentWalletClient, SessionStatus
from verimesh.chain.compile import load_artifacts
from verimesh.chain.errors import ChainError
from verimesh.client.sdk import Client, JobFailed, JobTimeout, ResultError
from verimesh.crypto.keystore import decrypt_key, read_keystore
from verimesh.crypto.wallet import Wallet, password_from_env

LEDGER_FILE = "ledger.sqlite"


class Agent:
    """A buyer (and, through ``agent.service``, a seller) acting with one session key."""

    def __init__(
        self,
        client: Client,
        wallet: AgentWalletClient,
        ledger: Ledger,
        *,
        name: str = "agent",
        budget: int | None = None,
        rule: ModeRule = DEFAULT_RULE,
        home: Path | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.key = client.signer
        self.net: Network = client.net  # ONE backend for the key: its nonces live there
        self.funds = AgentFunds(self.net, AgentWalletClient(self.net.backend, wallet.address, wallet.abi), self.key, ledger)
        self.wallet = self.funds.wallet
        self.ledger = ledger
        self.budget = budget
        self.rule = rule
        self.home = home
        self.terms = MarketTerms.read(self.net.job_market)
        self._offers: tuple[float, list[ProviderOffer]] | None = None
        self._blocks: dict[int, int] = {}  # job id -> block it was posted in

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def provision(
        cls,
        deployment: Deployment | Path | str,
        owner: str | Signer,
        budget: int,
        home: Path | str,
        *,
        name: str = "agent",
        rule: ModeRule = DEFAULT_RULE,
        policy: SessionPolicy | None = None,
        counterparties: tuple[str, ...] = (),
        password: str | None = None,
        reuse: bool = True,
    ) -> Agent:
        """An agent for ``deployment`` whose AgentWallet ``owner`` funds with ``budget``.

        ``owner`` is a dev account name (unlocked from the keystores next to
        deployment.json) or a ``Signer``. With ``reuse`` and an ``agent.json`` in ``home``
        whose session key is still active, that wallet and key are used again (the ledger
        continues); otherwise a new wallet and key are made.
        """
        path = None if isinstance(deployment, Deployment) else Path(deployment).expanduser()
        dep = deployment if isinstance(deployment, Deployment) else Deployment.load(path)  # type: ignore[arg-type]
        home = Path(home).expanduser()
        password = password or password_from_env() or dep.dev_password
        if password is None:
            raise ValueError("the session key's keystore needs a password: set VERIMESH_PASSWORD")
        if reuse:
            agent = cls._reopen(dep, home, password, rule)
            if agent is not None:
                return agent
        if isinstance(owner, str):
            if path is None:
                raise ValueError("pass deployment as a path to unlock dev account owners by name")
            owner = dep.dev_signer(owner, path.parent)
        session = Wallet(f"{name}-session", Account.create())
        client = Client(dep, session)
        policy = policy or SessionPolicy.for_budget(budget, counterparties)
        wallet = provision_wallet(client.net, owner, client.signer, budget, policy, load_artifacts(names=["AgentWallet"]))
        record = AgentRecord(name=name, chain_id=dep.chain_id, wallet=wallet.address, owner=owner.address,
                             session_key=session.address, budget=budget)  # fmt: skip
        save_agent(home, record, client.signer, password)
        return cls(client, wallet, Ledger(home / LEDGER_FILE), name=name, budget=budget, rule=rule, home=home)

    @classmethod
    def _reopen(cls, dep: Deployment, home: Path, password: str, rule: ModeRule) -> Agent | None:
        record = load_agent(home)
        if record is None or record.chain_id != dep.chain_id or not (home / KEY_FILE).is_file():
            return None
        key = decrypt_key(read_keystore(home / KEY_FILE), password, label=str(home / KEY_FILE))
        client = Client(dep, Wallet.from_key(f"{record.name}-session", key))
        wallet = AgentWalletClient(client.net.backend, record.wallet, load_artifacts(names=["AgentWallet"])["AgentWallet"].abi)
        try:
            session = wallet.sessions(client.signer.address)
        except ChainError:  # no wallet there any more (a new devnet)
            client.close()
            return None
        if session.status != SessionStatus.ACTIVE or session.expires_at <= client.net.backend.timestamp():
            client.close()
            return None
        return cls(client, wallet, Ledger(home / LEDGER_FILE), name=record.name, budget=record.budget, rule=rule, home=home)

    # -- discovery and planning ------------------------------------------------------------
    def discover(self, max_age: float = 10.0) -> list[ProviderOffer]:
        """Active providers, cheapest first (cached for ``max_age`` seconds)."""
        if self._offers is None or time.monotonic() - self._offers[0] > max_age:
            self._offers = (time.monotonic(), discover_providers(self.net, self.client.http))
        return self._offers[1]

    def spendable(self) -> int:
        """What the agent can still put into jobs: the float it holds plus what the wallet
        would still pay it in this period (the chain's answer: policy and wallet balance),
        capped by the agent's own ``budget`` less what its ledger shows it already spent."""
        chain = self.funds.float_balance + self.funds.allowance_left()
        if self.budget is None:
            return chain
        return max(0, min(chain, self.budget - self.ledger.totals()["spent"]))

    def plan(self, work: list[WorkItem], budget: int | None = None) -> Plan:
        """Modes, prices and the affordable subset of ``work`` (``budget`` defaults to spendable)."""
        offers = self.discover()
        budget = self.spendable() if budget is None else budget
        session = self.wallet.sessions(self.key.address)
        per_job = session.max_per_payment + self.funds.float_balance
        return plan_purchases(work, [o.price for o in offers], budget, self.terms, self.rule, per_job)

    # -- buying ----------------------------------------------------------------------------
    def run_jobs(
        self,
        work: list[WorkItem],
        *,
        timeout: float = 600,
        max_in_flight: int = 4,
        on_record: Callable[[JobRecord], None] | None = None,
        plan: bool = True,
    ) -> list[JobRecord]:
        """Buy ``work``: one ``JobRecord`` per item, in order. With ``plan=False`` the agent
        skips its own budget planning and buys every item (the wallet's policy still applies:
        what the chain refuses is recorded ``unfunded``)."""
        if plan:
            planned = self.plan(work).by_index()
        else:
            planned = {i: self._price_without_plan(item, i) for i, item in enumerate(work)}

        # escrow still to post: funded ahead, one wallet payment for several jobs
        pending = {i: p.escrow for i, p in planned.items() if isinstance(p, Purchase)}

        def ahead_of(index: int) -> int:
            pending.pop(index, None)
            return sum(pending.values())

        def one(index: int) -> JobRecord:
            item, planned_item = work[index], planned[index]
            if isinstance(planned_item, Skipped):
                record = JobRecord(label=item.label, task=item.task, model=item.model, value=item.value,
                                   state="skipped", error=planned_item.reason)  # fmt: skip
            else:
                record = self.buy(planned_item, timeout, ahead=lambda: ahead_of(index))
            if on_record is not None:
                on_record(record)
            return record

        with ThreadPoolExecutor(max_workers=max(1, max_in_flight), thread_name_prefix=f"{self.name}-job") as pool:
            return list(pool.map(one, range(len(work))))

    def _price_without_plan(self, item: WorkItem, index: int) -> Purchase | Skipped:
        """Mode and price of one item, with no budget: only the wallet's policy will say no."""
        alone = plan_purchases([item], [o.price for o in self.discover()], 2**255, self.terms, self.rule)
        found = alone.purchases or alone.skipped
        return replace(found[0], index=index)

    def buy(self, purchase: Purchase, timeout: float = 600, ahead: Callable[[], int] | None = None) -> JobRecord:
        """Fund, post, wait, fetch and check one job; never raises for the job's own failure.
        ``ahead`` tells (under the funding lock) how much escrow later jobs of the batch need."""
        item = purchase.item
        record = JobRecord(label=item.label, task=item.task, model=item.model, mode=str(purchase.mode),
                           mode_reason=purchase.reason, value=item.value, price=purchase.price,
                           escrow=purchase.escrow)  # fmt: skip
        started = time.monotonic()
        try:
            with self.funds.lock():
                self.funds.cover(purchase.escrow, item.label or item.task, ahead() if ahead else 0)
                try:
                    handle = self.client.submit(model=item.model, task=item.task, input=item.input, params=item.params,
                                                mode=purchase.mode, max_price=purchase.price)  # fmt: skip
                except JobFailed as exc:
                    if exc.job_id:  # posted, but no provider took the input: its escrow is in
                        self._book_post(record, purchase, exc.job_id, None, [])
                    raise
            self._book_post(record, purchase, handle.job_id, handle.block, handle.providers)
            out = handle.result(timeout=timeout)
            check_output(item, out.output)
            record.output_root, record.output = out.output_root, out.output
            record.state, record.verified = "verified", True
        except BudgetRefused as exc:
            record.state, record.error = "unfunded", str(exc)
        except JobFailed as exc:
            if "disagree" in exc.reason:
                record.state = "disputed"  # the dispute decides; refresh() reads the outcome
            elif exc.refund is not None:
                record.state = "refunded"
            else:  # refused at posting (nothing escrowed) or at upload (refresh() reclaims it)
                record.state = "failed"
            record.error = str(exc)
        except (JobTimeout, ResultError, OutputRejected, ContractRevert, ChainError, ValueError, OSError) as exc:
            record.state, record.error = "failed", f"{type(exc).__name__}: {exc}"
        record.seconds = time.monotonic() - started
        if record.job_id is not None:
            self._refresh_one(record)
        return record

    def _book_post(self, record: JobRecord, purchase: Purchase, job_id: int, block: int | None, providers: list[str]) -> None:
        """Record a posted job and its escrow in the ledger, with the post transaction."""
        record.job_id, record.providers = job_id, list(providers)
        posted = [e for e in self.net.job_market.get_events("JobPosted", block or self.client.deployment.block, block)
                  if e["job_id"] == job_id]  # fmt: skip
        if posted:
            self._blocks[job_id] = posted[0].block_number
            record.post_tx = _hex(posted[0].tx_hash)
        item = purchase.item
        self.ledger.record("job", purchase.escrow, self.net.job_market.address, str(job_id), record.post_tx,
                           f"{item.task} {purchase.mode} ({item.label})")  # fmt: skip

    def buyer(self, url: str, max_price: int) -> ServiceBuyer:
        """A client of another agent's service at ``url``, paying at most ``max_price`` per
        request through a channel this agent's wallet opens (the seller's payee must be an
        allowed counterparty of the session key: ``counterparties=`` at provisioning)."""
        return ServiceBuyer(self, url, max_price)

    # -- after the fact ----------------------------------------------------------------------
    def refresh(self, records: list[JobRecord]) -> list[JobRecord]:
        """Read each job's chain state again and book refunds credited since (e.g. after the
        challenge window: an unused audit fee comes back at finalization)."""
        for record in records:
            if record.job_id is not None:
                self._refresh_one(record)
        return records

    def _refresh_one(self, record: JobRecord) -> None:
        jm = self.net.job_market
        job = jm.jobs(record.job_id)
        now = self.client.chain_now()
        missed = (job.state == JobState.ASSIGNED and now > job.commit_deadline) or (
            job.state == JobState.COMMITTED and now > job.reveal_deadline
        )
        if missed:  # e.g. the input never reached a provider: take the escrow back
            # (someone else may be faster: the Credited event below books it either way)
            with contextlib.suppress(ContractRevert):
                self.client.job(record.job_id).claim_refund()
            job = jm.jobs(record.job_id)
        record.chain_state = job.state.name.lower()
        if job.state == JobState.REFUNDED and record.state != "refunded":
            record.state = "refunded"
        booked = {(r.ref, r.tx_hash) for r in self.ledger.rows("refund")}
        from_block = self._job_block(record.job_id)
        for event in jm.get_events("Credited", from_block):
            if event["job_id"] != record.job_id or event["account"] != self.key.address:
                continue
            tx = _hex(event.tx_hash)
            if (str(record.job_id), tx) in booked:
                continue
            self.ledger.record("refund", event["amount"], jm.address, str(record.job_id), tx,
                               f"credited to the key's market balance ({record.chain_state})")  # fmt: skip
        record.refunded = sum(r.amount for r in self.ledger.rows("refund") if r.ref == str(record.job_id))

    def _job_block(self, job_id: int) -> int:
        """Where to start reading a job's events: its post block if this agent posted it."""
        return self._blocks.get(job_id, self.client.deployment.block)

    def summary(self) -> dict[str, Any]:
        """Budget, what went where (ledger totals) and what the chain holds now."""
        totals = self.ledger.totals()
        session = self.wallet.sessions(self.key.address)
        return {
            "name": self.name,
            "wallet": self.wallet.address,
            "session_key": self.key.address,
            "budget": self.budget,
            "allowance": session.allowance,
            "wallet_balance": self.net.token.balance_of(self.wallet.address),
            "wallet_available": self.funds.available(),
            "float": self.funds.float_balance,
            **{k: totals.get(k, 0) for k in ("fund", "job", "refund", "channel", "voucher", "earn", "redeem", "return")},
            "spent": totals["spent"],
            "earned": totals["earned"],
        }

    def close(self, return_float: bool = True) -> None:
        """Send unused float back to the wallet (the owner's books), then release connections."""
        try:
            if return_float:
                with self.funds.lock():
                    self.funds.return_float()
        finally:
            self.client.close()
            self.ledger.close()


def _hex(value: bytes | str) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else value


__all__ = ["Agent", "BudgetRefused", "tx_hash"]
