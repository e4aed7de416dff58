"""A priced FastAPI service behind the paywall, served by real uvicorn on a free 127.0.0.1
port (stopped by the test), and handler counters to prove nothing is served unpaid."""


import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from verimesh.chain.payment_channel import PAYMENT_HEADER
from verimesh.node.paywall import Payment, PaymentRefused, Paywall


@dataclass
class Counters:
    served: list[int] = field(default_factory=list)  # cumulative of each served request
    free: int = 0


def service_app(paywall: Paywall, counters: Counters) -> FastAPI:
    app = FastAPI()
    paywall.install(app)
    paid = Annotated[Payment, Depends(paywall.require())]

    @app.get("/free")
    def free() -> dict:
        counters.free += 1
        return {"ok": True}

    @app.post("/free-echo")
    def free_echo(body: dict) -> dict:
        counters.free += 1
        return {"echo": body}

    @app.post("/v1/echo")
    def echo(body: dict, payment: paid) -> dict:
        counters.served.append(payment.cumulative)
        return {"echo": body, "cumulative": payment.cumulative}

    @app.post("/v1/flaky")
    def flaky(payment: paid) -> dict:
        raise HTTPException(503, "worker busy: retry")

    @app.post("/v1/cheat")
    async def cheat(request: Request) -> JSONResponse:
        """Takes the voucher and never serves (nor gives it back): a dishonest service."""
        try:
            paywall.accept(request.headers.get(PAYMENT_HEADER), "/v1/cheat", paywall.price)
        except PaymentRefused as exc:
            return JSONResponse(exc.body.model_dump(mode="json"), status_code=402)
        return JSONResponse({"error": "oops"}, status_code=500)

    @app.post("/v1/bad-offer")
    def bad_offer(kind: str) -> JSONResponse:
        if kind == "text":
            return JSONResponse("pay me", status_code=402)
        if kind == "empty":
            return JSONResponse({"x402_version": 1, "error": "payment_required", "accepts": []}, status_code=402)
        offer = paywall.offer("/v1/bad-offer").model_dump(mode="json")
        offer["price"] = -5
        return JSONResponse({"x402_version": 1, "error": "payment_required", "accepts": [offer]}, status_code=402)

    return app


class Server:
    """uvicorn in a thread on a free port; ``stop()`` shuts it down and joins the thread."""

    def __init__(self, app: FastAPI) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit it: without it the response body waits ~40 ms for the
        # client's delayed ACK (Nagle), which swamps any latency measurement
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
