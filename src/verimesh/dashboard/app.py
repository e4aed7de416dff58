"""The dashboard web app: ``GET /api/state`` (JSON) and ``GET /`` (the live page).

A background thread polls the chain and the nodes every ``interval`` seconds (the chain
client is synchronous; a thread keeps the event loop free to serve the page). The page is a
single static HTML file with inline CSS, SVG and vanilla JS: nothing to build, nothing
fetched from the internet, so it works on an offline laptop.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from verimesh import __version__
from verimesh.chain.client import Network
from verimesh.chain.deployment import Deployment
from verimesh.dashboard.follower import Follower
from verimesh.dashboard.models import DashboardState

DEFAULT_PORT = 8780
POLL_SECONDS = 1.0


def page_html() -> str:
    return resources.files("verimesh.dashboard").joinpath("static/index.html").read_text("utf-8")


def create_app(follower: Follower, interval: float = POLL_SECONDS) -> FastAPI:
    """The ASGI app; polling starts with the app (lifespan) and stops with it."""
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            follower.poll_safely()
            stop.wait(interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=follow, name="dashboard-follow", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=30)
            follower.close()

    app = FastAPI(
        title="verimesh dashboard",
        version=__version__,
        description="A live view of a verimesh network, read from the chain and the nodes.",
        lifespan=lifespan,
    )
    html = page_html()

    @app.get("/api/state", response_model=DashboardState, tags=["dashboard"],
             responses={503: {"description": "the chain has not been read yet"}})  # fmt: skip
    def api_state() -> DashboardState:
        """Nodes, jobs with their state history, audits, disputes, slashes and balances."""
        state = follower.state()
        if state is None:
            raise HTTPException(503, "the dashboard has not read the chain yet; retry in a second")
        return state

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return html

    return app


def connect(deployment_path: Path) -> tuple[Network, Deployment]:
    """The deployment's network over its JSON-RPC URL (where the follower starts reading)."""
    deployment = Deployment.load(deployment_path.expanduser())
    return Network.connect(deployment), deployment
