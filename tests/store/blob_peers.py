"""Helpers of the store tests: a fake clock, and real uvicorn servers on 127.0.0.1 free ports.

``BlobPeer`` is a node-like app serving a real ``BlobStore`` through ``blob_router``. Its
``misbehave`` hook lets a test turn it into a peer that lies or dies, the way a modified
or crashing node would, at the ASGI layer in front of the honest router.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from verimesh.store import BlobStore
from verimesh.store.http import blob_router

SMALL_CHUNK = 64  # tiny chunks keep the tests fast; the code under test takes any size


class Clock:
    """Strictly increasing fake time, so "least recently used" is unambiguous in tests."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1)

    def __call__(self) -> float:
        return float(next(self._ticks))


class Server:
    """A uvicorn server in a thread; ``stop()`` shuts it down and joins the thread."""

    def __init__(self, app: Callable) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask the server to exit (asynchronous: it closes its listening socket soon)."""
        self._server.should_exit = True

    def join(self) -> None:
        self.stop()
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()


@dataclass
class Misbehaviour:
    """What a peer does to chunk requests (single or range): count, corrupt, pad, slow, die."""

    corrupt: set[int] = field(default_factory=set)  # chunk indices served with a flipped bit
    die_after: int | None = None  # serve this many chunks, then shut the server down
    delay: float = 0.0  # seconds before each part of a chunk response body
    pad: int = 0  # extra bytes appended to every chunk response body
    bad_leaves: bool = False  # serve leaves with one hash flipped
    info: dict | None = None  # fields to replace in the blob metadata it serves
    served: list[int] = field(default_factory=list)  # chunk indices requested, in order


def _chunk_indices(scope: dict) -> list[int] | None:
    """Chunk indices a request asks for, or None if it asks for no chunk."""
    parts = scope.get("path", "").rstrip("/").split("/")
    if len(parts) == 6 and parts[4] == "chunks":
        return [int(parts[5])] if parts[5].isdigit() else []
    if len(parts) == 5 and parts[4] == "chunks":
        query = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode()))
        try:
            start, count = int(query["start"]), int(query["count"])
        except (KeyError, ValueError):
            return []
        return list(range(start, start + count))
    return None


def blob_app(store: BlobStore, behaviour: Misbehaviour, server_ref: list[Server]) -> Callable:
    app = FastAPI()
    app.include_router(blob_router(store))
    cs = store.chunk_size

    async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        indices = _chunk_indices(scope)
        if indices is None:
            if behaviour.bad_leaves and scope["path"].endswith("/leaves"):
                await app(scope, receive, _flipping(send, {0}))
            elif behaviour.info is not None and scope["path"].count("/") == 3:
                await app(scope, receive, _rewriting_json(send, behaviour.info))
            else:
                await app(scope, receive, send)
            return
        if behaviour.die_after is not None and len(behaviour.served) >= behaviour.die_after:
            server_ref[0].stop()
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"shutting down"})
            return
        behaviour.served.extend(indices)
        # Byte offsets (in this response body) of the bits to flip.
        flips = {(i - indices[0]) * cs + cs // 3 for i in indices if i in behaviour.corrupt}
        await app(scope, receive, _flipping(send, flips, behaviour.pad, behaviour.delay))

    return asgi


def _rewriting_json(send: Callable, fields: dict) -> Callable:
    """An ASGI ``send`` that replaces ``fields`` in a one-message JSON response."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message["headers"] if k != b"content-length"]
            message = {**message, "headers": headers}
        if message["type"] == "http.response.body" and message.get("body"):
            obj = {**json.loads(message["body"]), **fields}
            message = {**message, "body": json.dumps(obj).encode()}
        await send(message)

    return wrapped


def _flipping(send: Callable, flips: set[int], pad: int = 0, delay: float = 0.0) -> Callable:
    """An ASGI ``send`` that flips a bit at each body offset in ``flips`` and pads the end."""
    offset = 0

    async def wrapped(message: dict) -> None:
        nonlocal offset
        if message["type"] == "http.response.start" and pad:
            headers = [(k, v) for k, v in message["headers"] if k != b"content-length"]
            message = {**message, "headers": headers}
        if message["type"] == "http.response.body":
            body = bytearray(message.get("body", b""))
            for at in flips:
                if offset <= at < offset + len(body):
                    body[at - offset] ^= 0x40
            offset += len(body)
            if not message.get("more_body", False):
                body += bytes(pad)
            if delay and body:
                await asyncio.sleep(delay)
            message = {**message, "body": bytes(body)}
        await send(message)

    return wrapped


class BlobPeer(Server):
    """A peer serving ``store``; ``behaviour`` makes it lie or die on chunk requests."""

    def __init__(self, store: BlobStore, behaviour: Misbehaviour | None = None) -> None:
        self.store = store
        self.behaviour = behaviour or Misbehaviour()
        ref: list[Server] = []
        super().__init__(blob_app(store, self.behaviour, ref))
        ref.append(self)
