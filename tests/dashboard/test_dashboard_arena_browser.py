"""The dashboard's arena leaderboard: an arena remembered in $VERIMESH_HOME/arenas.json on the
live devnet, three settled epochs; /api/state carries the leaderboard over epochs, the SDK
routes to the better of two equally priced providers, and the page (headless chromium) shows
the table and the incentive chart. The screenshot of the
arena section goes to ``$VERIMESH_DASHBOARD_ARENA_SCREENSHOT`` when set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from arena_play import deploy_arena, play_epochs
from test_dashboard_browser import WAIT_MS, page  # noqa: F401 (the page fixture)

from verimesh.chain.accounts import dev_signer
from verimesh.client.sdk import Client
from verimesh.market.arena_book import ArenaBook, ArenaRecord, save_book

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.devnet,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} is not installed"),
]


def test_page_shows_each_arena_leaderboard_over_epochs(live, page, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path / "home"))
    owner = dev_signer(1)
    weak, strong = dev_signer(3), dev_signer(4)  # registered providers, same price in the Registry
    validators = [dev_signer(8), dev_signer(9)]
    arena = deploy_arena(live.net, owner)
    save_book(ArenaBook(arenas={"embeddings": ArenaRecord(
        address=arena.address, chain_id=live.net.backend.chain_id, task_family="embeddings",
        spec_hash="0x" + "02" * 32, token=live.net.token.address, created_block=live.net.backend.block_number(),
    )}))  # fmt: skip
    # the strong provider joins scored low in epoch 1 (a bad start), then leads
    play_epochs(live.net, arena, owner, [weak, strong], validators, [[700, 300], [400, 600], [300, 700]])

    state = live.wait_for(
        lambda s: any(a["name"] == "embeddings" and len(a["settled_epochs"]) == 3 for a in s["arenas"]),
        "the arena's three settled epochs",
    )
    board = next(a for a in state["arenas"] if a["name"] == "embeddings")
    assert [e["agrees"] for e in board["epochs"]] == [True, True, True]
    by = {p["provider"]: p for p in board["providers"]}
    assert by[strong.address]["ranks"] == [2, 1, 1] and by[weak.address]["ranks"] == [1, 2, 2]
    assert board["providers"][0]["provider"] == strong.address  # more rewards in total

    # the SDK routes by quality-adjusted price: same price, so the better provider
    client = Client.from_devnet("dev1", state_dir=live.state_dir)
    try:
        ranked = client.route(arena.address)
    finally:
        client.close()
    assert [r.provider for r in ranked] == [strong.address, weak.address]

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live.url + "/")
    section = '#arenas .arena[data-arena="embeddings"]'
    page.wait_for_selector(f'{section} tr[data-provider="{strong.address}"]', timeout=WAIT_MS)
    first_row = page.locator(f"{section} tbody tr").first
    assert first_row.get_attribute("data-provider") == strong.address
    assert first_row.locator(".rank").all_inner_texts() == ["2", "1", "1"]
    assert page.locator(f"{section} svg.arena-chart polyline[data-provider]").count() == 2
    assert "3 settled epochs" in page.locator(section).inner_text()
    assert errors == []

    shot = tmp_path / "dashboard-arena.png"
    page.locator("#arenas").screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
    if target := os.environ.get("VERIMESH_DASHBOARD_ARENA_SCREENSHOT"):
        shutil.copy(shot, target)
