"""Follow a running network: chain events, current stakes and balances, and each node's API.

One ``poll()`` reads the new Registry and JobMarket events (``EventCursor``), folds them into
a ``ChainView``, re-reads the numbers events do not carry (stake, locked, balances), asks
every registered node for ``/v1/info`` and builds a fresh ``DashboardState``. The web app
calls it from a background thread; tests call it directly after each transaction.
A node that is down is shown offline, never an error: devices come and go.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from verimesh.chain.client import Network
from verimesh.chain.follow import EventCursor
from verimesh.chain.registry import Member, Role
from verimesh.dashboard.aggregate import JOB_EVENTS, REGISTRY_EVENTS, ChainView
from verimesh.dashboard.models import (
    ArenaProviderView,
    ArenaView,
    BalanceView,
    DashboardState,
    NodeInfoView,
    NodeView,
)

BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"  # where JobMarket sends burned slashes
INFO_TIMEOUT = 1.0  # seconds: a node slower than this to say who it is counts as offline


class Follower:
    """The dashboard's view of one deployment, refreshed by ``poll()``."""

    def __init__(
        self, net: Network, from_block: int = 0, info_timeout: float = INFO_TIMEOUT,
        arenas: dict[str, str] | None = None,
    ) -> None:
        """``arenas``: name -> address of the arenas to show; None = those of
        ``$VERIMESH_HOME/arenas.json`` on this chain, re-read at every poll."""
        self.net = net
        self.arenas = arenas
        self._boards: dict[str, tuple[int, ArenaView]] = {}  # address -> (finalized count, view)
        self.view = ChainView()
        self.registry_cursor = EventCursor(net.registry, from_block, REGISTRY_EVENTS)
        self.market_cursor = EventCursor(net.job_market, from_block, JOB_EVENTS)
        self.info: dict[str, NodeInfoView] = {}
        self.gas: dict[bytes, int] = {}
        self._http = httpx.Client(timeout=info_timeout)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-info")
        self._lock = threading.Lock()
        self._symbol = net.token.symbol()
        self._decimals = net.token.decimals()
        self._state: DashboardState | None = None
        self._error: str | None = None

    # -- polling -----------------------------------------------------------------------
    def poll(self, nodes: bool = True) -> DashboardState:
        """Read everything new; ``nodes=False`` skips the HTTP polls of the nodes."""
        seen_at = time.time()
        events = sorted(
            self.registry_cursor.poll() + self.market_cursor.poll(),
            key=lambda e: (e.block_number, e.log_index),
        )
        for event in events:
            self.view.apply(event, seen_at)
        members = {a: self.net.registry.members(a) for a in self.view.members}
        if nodes:
            self._poll_infos(members)
        state = self._build(members, seen_at)
        with self._lock:
            self._state, self._error = state, None
        return state

    def poll_safely(self, nodes: bool = True) -> None:
        """``poll`` for a background loop: a chain hiccup is reported in the state, not raised."""
        try:
            self.poll(nodes)
        except Exception as exc:  # any failure must keep the loop alive
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"

    def state(self) -> DashboardState | None:
        """The last built state (with the last poll's error, if that poll failed)."""
        with self._lock:
            if self._state is None:
                return None
            return self._state.model_copy(update={"error": self._error})

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    # -- nodes' own APIs ---------------------------------------------------------------
    def _poll_infos(self, members: dict[str, Member]) -> None:
        targets = [
            (a, m.endpoint) for a, m in members.items() if m.endpoint and m.role != Role.NONE
        ]
        for address, info in zip(
            [a for a, _ in targets],
            self._pool.map(lambda t: self._fetch_info(t[1]), targets),
            strict=True,
        ):
            self.info[address] = info

    def _fetch_info(self, endpoint: str) -> NodeInfoView:
        now = time.time()
        url = endpoint.rstrip("/") + "/v1/info"
        try:
            response = self._http.get(url)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return NodeInfoView(online=False, status=f"not reachable at {url}: {type(exc).__name__}",
                                checked_at=now)  # fmt: skip
        return NodeInfoView(
            online=True,
            working=body.get("working"),
            status=str(body.get("status", "")),
            tasks=list(body.get("tasks", [])),
            models=list(body.get("models", [])),
            benchmark=dict(body.get("benchmark", {})),
            version=body.get("version"),
            checked_at=now,
        )

    # -- gas -----------------------------------------------------------------------------
    def _gas_of_job(self, job_id: int) -> int | None:
        """Sum of gas of the transactions that emitted the job's events, when the backend
        can look receipts up (JSON-RPC); the in-process EVM keeps no receipts by hash."""
        w3 = getattr(self.net.backend, "w3", None)
        if w3 is None:
            return None
        total = 0
        for tx_hash in self.view.job_txs.get(job_id, []):
            if tx_hash not in self.gas:
                self.gas[tx_hash] = int(w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])
            total += self.gas[tx_hash]
        return total

    # -- the document ------------------------------------------------------------------
    def _build(self, members: dict[str, Member], seen_at: float) -> DashboardState:
        view, net = self.view, self.net
        nodes = []
        for address, m in members.items():
            record = view.members[address]
            role = {Role.PROVIDER: "provider", Role.VALIDATOR: "validator"}.get(m.role, record.role)
            nodes.append(NodeView(
                address=address, role=role, endpoint=m.endpoint, stake=m.stake, locked=m.locked,
                price=m.price, active=m.active, jobs_assigned=record.jobs_assigned,
                jobs_done=len(record.jobs_paid), jobs_slashed=len(record.jobs_slashed),
                slashed_amount=record.slashed_amount, audits=record.audits,
                audits_abandoned=record.audits_abandoned,
                info=self.info.get(address, NodeInfoView(online=False, status="not polled yet")),
            ))  # fmt: skip
        for job in view.jobs.values():
            if job.state in ("finalized", "refunded") and job.gas is not None:
                continue  # settled: its gas no longer changes
            job.gas = self._gas_of_job(job.job_id)
        balances = self._balances(members)
        return DashboardState(
            chain_id=net.backend.chain_id,
            block=self.market_cursor.next_block - 1,
            updated_at=seen_at,
            token_symbol=self._symbol,
            token_decimals=self._decimals,
            total_supply=net.token.total_supply(),
            contracts={
                "token": net.token.address,
                "registry": net.registry.address,
                "job_market": net.job_market.address,
            },
            nodes=nodes,
            jobs=[
                j.model_copy(deep=True) for j in sorted(view.jobs.values(), key=lambda j: j.job_id)
            ],
            jobs_by_state=view.jobs_by_state(),
            verifications=[v.model_copy() for v in view.verifications.values()],
            disputes=[d.model_copy() for d in view.disputes.values()],
            slashes=[s.model_copy() for s in view.slashes],
            balances=balances,
            arenas=self._arena_views(),
        )

    # -- arenas --------------------------------------------------------------------------
    def _arena_views(self) -> list[ArenaView]:
        from verimesh.market.arena_book import ArenaBookError, load_book

        if self.arenas is not None:
            named = {name: (address, "") for name, address in self.arenas.items()}
        else:
            try:
                book = load_book()
            except ArenaBookError as exc:
                return [ArenaView(name="arenas.json", address="", task_family="", error=str(exc))]
            named = {
                name: (r.address, r.task_family)
                for name, r in book.arenas.items() if r.chain_id == self.net.backend.chain_id
            }  # fmt: skip
        return [self._arena_view(name, address, family) for name, (address, family) in sorted(named.items())]

    def _arena_view(self, name: str, address: str, family: str) -> ArenaView:
        """The arena's leaderboard, replayed only when a new epoch was finalized."""
        from verimesh.chain.arena import ArenaClient
        from verimesh.chain.compile import load_artifacts
        from verimesh.market.leaderboard import leaderboard

        try:
            arena = ArenaClient(self.net.backend, address, load_artifacts(names=["Arena"])["Arena"].abi)
            finalized = len(arena.get_events("SettlementFinalized"))
            cached = self._boards.get(address)
            if cached is not None and cached[0] == finalized:
                return cached[1].model_copy(update={"name": name})
            board = leaderboard(arena)
        except Exception as exc:  # a stale book entry (devnet restarted): shown, never fatal
            return ArenaView(name=name, address=address, task_family=family, error=f"{type(exc).__name__}: {exc}")
        names = self._model_names()
        view = ArenaView(
            name=name, address=address, task_family=family, settled_epochs=board["settled_epochs"],
            providers=[
                ArenaProviderView(**{k: v for k, v in t.items() if k != "model_root"},
                                  model=names.get(t["model_root"], t["model_root"]))
                for t in board["providers"]
            ],
            epochs=board["epochs"],
        )  # fmt: skip
        self._boards[address] = (finalized, view)
        return view

    @staticmethod
    def _model_names() -> dict[str, str]:
        """model root (0x hex) -> its first name in the local model store."""
        from verimesh.models.bundle import root_hex
        from verimesh.models.store import ModelStore

        return {root_hex(m.root): m.names[0] for m in ModelStore().list() if m.names}

    def _balances(self, members: dict[str, Member]) -> list[BalanceView]:
        token, market = self.net.token, self.net.job_market
        parties: list[tuple[str, str]] = [(a, "requester") for a in sorted(self.view.requesters)]
        parties += [
            (a, "validator" if m.role == Role.VALIDATOR else "provider")
            for a, m in members.items()
            if a not in self.view.requesters
        ]
        out = [
            BalanceView(
                address=a,
                label=label,
                wallet=token.balance_of(a),
                market=market.balances(a),
                stake=members[a].stake + members[a].unbonding if a in members else 0,
            )
            for a, label in parties
        ]
        for address, label in (
            (market.address, "job_market"),
            (self.net.registry.address, "registry"),
            (BURN_ADDRESS, "burned"),
        ):
            out.append(BalanceView(address=address, label=label, wallet=token.balance_of(address)))
        return out
