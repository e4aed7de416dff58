"""What is for sale: provider offers (Registry + each node's ``/v1/info``) and agent services.

Providers publish price, stake and endpoint on chain; the node's ``/v1/info`` adds what the
chain does not hold (models, tasks, whether its idle policy lets it work). Nothing here is
trusted for money: the chain draws providers and JobMarket enforces prices; discovery only
lets the agent price a plan and skip a market that cannot serve it.

An agent that sells publishes a ``ServiceInfo`` at ``GET /v1/service`` (free); the paid
routes answer ``402`` with the x402 offer, which the buyer's policy checks before paying.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, Field, ValidationError

from verimesh.chain import Network, Role

SERVICE_PATH = "/v1/service"


class ProviderOffer(BaseModel):
    address: str
    endpoint: str
    price: int
    stake: int
    free_stake: int
    models: list[str] = Field(default_factory=list, description="roots the node holds (empty if unreachable)")
    tasks: list[str] = Field(default_factory=list)
    working: bool = False
    reachable: bool = False


def discover_providers(net: Network, http: httpx.Client | None = None, timeout: float = 2.0) -> list[ProviderOffer]:
    """Active providers of the registry, cheapest first, with what their nodes say about themselves."""
    reg = net.registry
    offers = []
    own = http is None
    client = http or httpx.Client(timeout=timeout)
    try:
        for address in reg.providers():
            member = reg.members(address)
            if not member.active or member.role != Role.PROVIDER:
                continue
            offer = ProviderOffer(
                address=address, endpoint=member.endpoint.rstrip("/"), price=member.price,
                stake=member.stake, free_stake=member.free,
            )  # fmt: skip
            try:
                r = client.get(f"{offer.endpoint}/v1/info", timeout=timeout)
                if r.status_code == 200:
                    info = r.json()
                    offer.models = [m.lower() for m in info.get("models", [])]
                    offer.tasks = list(info.get("tasks", []))
                    offer.working = bool(info.get("working", False))
                    offer.reachable = True
            except (httpx.HTTPError, ValueError):
                pass
            offers.append(offer)
    finally:
        if own:
            client.close()
    return sorted(offers, key=lambda o: (o.price, o.address))


class ServiceRoute(BaseModel):
    path: str
    price: int = Field(gt=0, description="base units per request")
    description: str


class ServiceInfo(BaseModel):
    """``GET /v1/service`` of a selling agent: who gets paid, where, for what."""

    name: str
    payee: str = Field(description="the address vouchers pay (the channel's payee)")
    wallet: str = Field(description="the seller's AgentWallet (its owner's books)")
    chain_id: int
    channel_contract: str
    routes: list[ServiceRoute]

    def route(self, path: str) -> ServiceRoute:
        for route in self.routes:
            if route.path == path:
                return route
        known = ", ".join(r.path for r in self.routes) or "none"
        raise LookupError(f"the service {self.name!r} sells no {path} (it sells: {known})")


class ServiceUnavailable(RuntimeError):
    """The other agent's service cannot be discovered; the message says why."""


def discover_service(url: str, http: httpx.Client | None = None, timeout: float = 5.0) -> ServiceInfo:
    """Read a selling agent's ``ServiceInfo``."""
    try:
        r = (http or httpx).get(url.rstrip("/") + SERVICE_PATH, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"cannot reach the agent service at {url}: {exc}; is `verimesh agent serve` running?") from None
    if r.status_code != 200:
        raise ServiceUnavailable(f"{url}{SERVICE_PATH} answered HTTP {r.status_code}: not a verimesh agent service")
    try:
        return ServiceInfo.model_validate_json(r.content)
    except ValidationError as exc:
        raise ServiceUnavailable(f"{url}{SERVICE_PATH} is not a valid ServiceInfo: {exc.errors()[0]['msg']}") from None
