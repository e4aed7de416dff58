"""The dashboard page in a real headless browser (Debian's chromium driven by Playwright).

The page is loaded against the live devnet of conftest.py; the test then moves jobs
through their states on chain and waits for the page itself (its JS polling /api/state) to
show each change: the nodes table, the SVG network with lit edges, the job cards moving
between columns, a slash, an audit. A screenshot is saved (to ``$VERIMESH_DASHBOARD_SCREENSHOT``
when set: that is how docs/img/dashboard.png is made).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from verimesh.chain.job_market import Mode

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.devnet,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"{CHROMIUM} is not installed (Debian: apt-get install -y chromium; `make setup` does it)",
    ),
]
# Offline and quiet: no sandbox (containers), no GPU, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 20_000


@pytest.fixture
def page(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir per test
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _card(page, job_id: int, state: str):
    return page.wait_for_selector(
        f'#board [data-column="{state}"] .job-card[data-job-id="{job_id}"]', timeout=WAIT_MS
    )


def test_page_shows_the_network_and_follows_jobs(live, page, tmp_path: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.url + "/")

    # Nodes table and the SVG network render from /api/state.
    page.wait_for_selector(
        f'#nodes-table tr[data-address="{live.daemon_address}"]', timeout=WAIT_MS
    )
    assert page.locator("#nodes-table tbody tr[data-address]").count() == 4
    daemon_row = page.locator(f'#nodes-table tr[data-address="{live.daemon_address}"]')
    assert "working" in daemon_row.inner_text()
    down = page.locator(f'#nodes-table tr[data-address="{live.validator.address}"]').inner_text()
    assert "offline" in down and "validator" in down
    page.wait_for_selector("#network text >> text=JobMarket", timeout=WAIT_MS)
    assert page.locator("#network g[data-node] circle").count() >= 4

    # A finished job: posted, committed, revealed, finalized; the card moves column by column.
    done = live.post(param=2)
    _card(page, done.job_id, "assigned")
    assert page.locator("#network path.edge.lit").count() >= 3  # requester + 2 providers lit
    salts = live.commit(done)
    _card(page, done.job_id, "committed")
    # A job whose provider stays silent: timed out, slashed, refunded.
    silent = live.post(param=1)
    _card(page, silent.job_id, "assigned")
    live.net.backend.advance_time(61)
    live.reveal(done, salts)
    _card(page, done.job_id, "revealed")
    live.net.job_market.timeout(silent.job_id, signer=live.requester)
    _card(page, silent.job_id, "refunded")
    live.net.backend.advance_time(61)
    live.net.job_market.finalize(done.job_id, signer=live.requester)
    _card(page, done.job_id, "finalized")
    page.wait_for_selector(f"#verify-table td >> text=#{silent.job_id}", timeout=WAIT_MS)
    assert "slash" in page.locator("#verify-table").inner_text()

    # Jobs still in flight when the screenshot is taken: an audit and a fresh job.
    audited = live.post(mode=Mode.AUDIT, param=10_000)  # p = 100%: always audited
    live.reveal(audited, live.commit(audited))
    _card(page, audited.job_id, "auditing")
    fresh = live.post(param=2)
    _card(page, fresh.job_id, "assigned")
    page.wait_for_selector("#network path.edge.lit.audit", timeout=WAIT_MS)
    assert "audit" in page.locator("#verify-table").inner_text()
    page.wait_for_selector("#balances-table td >> text=requester", timeout=WAIT_MS)
    assert page.locator("#live-dot.ok").count() == 1
    assert errors == []

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("VERIMESH_DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, target)
