"""The live view: nodes, jobs by state, verification and disputes, balances, events.

Rendered with rich from what the chain says (``Ledger``) and what each node's API answers
about itself (``/v1/info`` status: only for display). Chain reads are throttled to one
refresh a second; the demo loop may call ``update`` more often.
"""

from __future__ import annotations

import time

import httpx
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from verimesh.demo.run import Progress

VMT = 10**18
_STATES = ["assigned", "committed", "revealed", "auditing", "disputed", "finalized", "refunded"]
NOTES = 6  # the view fits a 30-line terminal with 5 nodes (rich crops what does not fit)


class LiveView:
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._rendered: Group = Group(Text("starting..."))
        self._http = httpx.Client(timeout=0.5)

    def close(self) -> None:
        self._http.close()

    def render(self, progress: Progress, force: bool = False) -> Group:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return self._rendered
        self._last = now
        self._rendered = Group(
            self._header(progress), self._nodes(progress), self._jobs(progress), self._notes(progress)
        )
        return self._rendered

    def _header(self, p: Progress) -> Text:
        text = Text.assemble(
            ("verimesh demo", "bold"), f"  {p.phase}  {time.monotonic() - p.started:5.0f} s",
        )
        if p.network is not None and p.network.dashboard_url:
            text.append(f"  dashboard {p.network.dashboard_url}", style="cyan")
        if p.advanced:
            text.append(f"  chain time +{p.advanced} s", style="dim")
        return text

    def _nodes(self, p: Progress) -> Table:
        table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False)
        # fits 110 columns; wider terminals show the same (node status is the one cut short)
        widths = {"party": (8, 12), "role": (9, 18), "process": (7, 14), "node says": (10, 22),
                  "stake": (5, 6), "holdings": (10, 11), "change": (7, 8)}  # fmt: skip
        for column, (least, most) in widths.items():
            right = column in ("stake", "holdings", "change")
            table.add_column(column, justify="right" if right else "left", no_wrap=True,
                             min_width=least, max_width=most)  # fmt: skip
        if p.ledger is None or not p.parties:
            return table
        net = p.network
        specs = {s.name: s for s in ([*net.nodes, *net.validators] if net else [])}
        for label, address in p.parties.items():
            try:
                h = p.ledger.holdings(address)
            except Exception:  # the chain is stopping: keep the last view
                return table
            before = p.before.get(label)
            change = (h.total - before.total) / VMT if before else 0.0
            process, says = "", ""
            if net is not None and label in net.supervisor.children:
                child = net.supervisor.children[label]
                process = "up" if child.alive() else "[red]killed[/]"
                if child.restarts:
                    process += f", restart {child.restarts}"
            if label in specs:
                says = self._status(specs[label].url)
            role = p.roles.get(label, "")
            style = "red" if role.startswith("cheater") else ""
            table.add_row(
                label, Text(role, style=style), process, says, f"{h.stake / VMT:,.0f}",
                f"{h.total / VMT:,.2f}", f"{change:+,.2f}",
            )  # fmt: skip
        return table

    def _status(self, url: str) -> str:
        try:
            r = self._http.get(f"{url}/v1/info")
            return str(r.json().get("status", "?")) if r.status_code == 200 else f"HTTP {r.status_code}"
        except (httpx.HTTPError, ValueError):
            return "unreachable"

    def _jobs(self, p: Progress) -> Text:
        text = Text.assemble(("jobs ", "bold"), f"{len(p.ledger.jobs) if p.ledger else 0}/{p.jobs_planned} posted: ")
        if p.ledger is None:
            return text
        states = p.ledger.states()
        jobs = p.ledger.jobs.values()
        text.append(", ".join(f"{states[s]} {s}" for s in _STATES if states.get(s)) or "none yet")
        text.append(
            f" | audits {sum(1 for j in jobs if j.audit is not None)}"
            f", disputes {sum(1 for j in jobs if j.challenged_by)}"
            f", slashes {sum(len(j.slashed) for j in jobs)}",
            style="bold",
        )
        return text

    def _notes(self, p: Progress) -> Text:
        return Text("\n".join(p.notes[-NOTES:]), style="dim")
