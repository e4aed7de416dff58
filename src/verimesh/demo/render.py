"""The end-of-demo report as rich tables: what a newcomer reads after the run."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from verimesh.demo.report import DemoReport


def render_report(r: DemoReport) -> Group:
    summary = Table(title="verimesh demo: report", title_justify="left", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    modes = ", ".join(f"{n} x {m}" for m, n in sorted(r.jobs_by_mode.items()))
    summary.add_row("jobs", f"{r.jobs_total} posted of {r.jobs_planned} planned ({modes})")
    summary.add_row("verified (finalized)", str(r.jobs_verified))
    summary.add_row("refunded", str(r.jobs_refunded))
    summary.add_row("audits", f"{r.audits_drawn} drawn, {r.audits_reported} reported")
    summary.add_row("disputes", f"{r.challenges} opened, {r.disputes_resolved} resolved")
    summary.add_row("cheats", f"{r.cheats_attempted} attempted, {r.cheats_caught} caught, {r.cheats_unchecked} unchecked")
    summary.add_row("slashes", ", ".join(f"{s.party} {s.amount_vmt:g} VMT (job {s.job_id})" for s in r.slashes) or "none")
    summary.add_row("gas", f"{r.gas_total:,} over {r.transactions} transactions = {r.gas_per_job:,} per job")
    summary.add_row("wall time", f"{r.wall_seconds:.0f} s (chain time fast-forwarded {r.chain_time_advanced_seconds} s)")
    if r.node_kill is not None:
        k = r.node_kill
        summary.add_row(
            "kill -9",
            f"{k.node} killed at {k.killed_at_seconds:.0f} s in job {k.job_id}; "
            f"restarted: {'yes' if k.restarted else 'no'}; finished its duty: {'yes' if k.duty_completed else 'no'}",
        )
    for part, why in r.parts_not_run.items():
        summary.add_row(Text(f"not run: {part}", style="yellow"), why)
    for problem in r.problems:
        summary.add_row(Text("problem", style="red"), problem)
    summary.add_row("logs", r.logs)

    cheats = Table(title="cheats", title_justify="left")
    for column in ("job", "party", "behaviour", "outcome", "caught"):
        cheats.add_column(column)
    for c in r.cheats:
        cheats.add_row(str(c.job_id), c.party, c.behaviour, c.outcome, "yes" if c.caught else "[red]no[/]")

    balances = Table(title="VMT held by every party (wallet + stake + market balance)", title_justify="left")
    for column in ("party", "role", "before", "after", "change", "wallet", "stake", "market"):
        balances.add_column(column, justify="left" if column in ("party", "role") else "right")
    for b in r.balances:
        balances.add_row(
            b.party, b.role, f"{b.before:,.2f}", f"{b.after:,.2f}", f"{b.change:+,.2f}",
            f"{b.after_wallet:,.2f}", f"{b.after_stake:,.2f}", f"{b.after_market:,.2f}",
        )  # fmt: skip

    verdict = Table(title="invariants (from chain state)", title_justify="left", show_header=False)
    for name, ok in r.invariants.items():
        verdict.add_row(name.replace("_", " "), "[green]true[/]" if ok else "[red]FALSE[/]")
    for name, ok in r.token_checks.items():
        verdict.add_row(f"  tokens: {name.replace('_', ' ')}", "true" if ok else "[red]FALSE[/]")
    if r.tokens_in_open_jobs:
        verdict.add_row("  tokens still in open jobs", f"{r.tokens_in_open_jobs:g} VMT")
    line = Text("demo passed" if r.ok else "demo FAILED: see the invariants above", style="bold green" if r.ok else "bold red")
    parts = [summary, balances]
    if r.cheats:
        parts.insert(1, cheats)
    return Group(*parts, verdict, line)
