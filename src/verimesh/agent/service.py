"""An agent that sells: a priced HTTP service that fulfils each request by buying compute.

    service = AgentService(agent, ServiceConfig(name="qa", generate_model=root, answer_price=3 * VMT))
    app = service.app()          # FastAPI: GET /v1/service, POST /v1/answer, POST /v1/search

Routes (x402: an unpaid request gets ``402`` with the offer; ``node.paywall`` checks vouchers):
- ``POST /v1/answer``: question answering. The agent buys a generation job (SmolLM2 or any
  decoder) on JobMarket with the mode its policy picks by value at risk, waits for the
  verified result, and answers with it and the job's chain records.
- ``POST /v1/search``: semantic search over the document set the agent indexed at start
  with embeddings bought from the network (``agent.index``); each query buys one embedding.

The seller's payee is its session key: vouchers it redeems land where its JobMarket escrows
come from, so earnings pay for the compute without a round trip through the wallet. If the
purchase fails (refunded, timed out, output rejected), the handler fails and the paywall
gives the voucher back: the buyer pays nothing for a request it did not get. Each served
request is booked as ``earn`` next to the ``job`` that fulfilled it; ``margin`` is the sum of
the two.
"""


from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import coincurve
from eth_utils import keccak
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from verimesh.agent.agent import Agent
from verimesh.agent.index import DocumentIndex
from verimesh.agent.offers import SERVICE_PATH, ServiceInfo, ServiceRoute
from verimesh.agent.wallet import tx_hash
from verimesh.agent.work import VMT, JobRecord, WorkItem, embedding_work
from verimesh.chain.agent_wallet import AgentWalletClient, SessionStatus
from verimesh.chain.contract import checksum
from verimesh.chain.errors import ChainError
from verimesh.chain.payment_channel import PaymentVoucher
from verimesh.node.paywall import Payment, Paywall, VoucherStore

ANSWER_PATH = "/v1/answer"
SEARCH_PATH = "/v1/search"
# Smallest channel deposit the seller accepts, in requests at its lowest price.
MIN_DEPOSIT_REQUESTS = 2
# Seconds before a paying session key expires by which the seller redeems its vouchers.
EXPIRY_MARGIN = 300


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    generate_model: str | None = None  # sells /v1/answer when set
    embed_model: str | None = None  # sells /v1/search (with documents) when set
    answer_price: int = 3 * VMT
    search_price: int = 3 * VMT
    value: int = VMT  # value at risk of one purchased job: picks its verification mode
    max_tokens: int = 16
    job_timeout: float = 300.0


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, max_length=1000)
    max_tokens: int | None = Field(default=None, ge=1, le=64)


class JobProof(BaseModel):
    """The chain records a served answer rests on."""

    job_id: int
    mode: str
    output_root: str
    post_tx: str | None
    providers: list[str]


class AnswerResponse(BaseModel):
    answer: str
    job: JobProof


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=1000)
    k: int = Field(default=3, ge=1, le=20)


class SearchHit(BaseModel):
    document: str
    score: float


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    job: JobProof
    index_jobs: list[int] = Field(description="the embedding jobs that built the index")


class ServiceError(RuntimeError):
    """The service cannot start as configured; the message says what to set."""


class AgentService:
    """The seller: ``app()`` to serve, ``settle()`` to redeem vouchers, ``index_documents()`` to build search."""

    def __init__(self, agent: Agent, config: ServiceConfig, voucher_db: Path | None = None) -> None:
        if config.generate_model is None and config.embed_model is None:
            raise ServiceError("a service sells something: set generate_model (answers) and/or embed_model (search)")
        channel = agent.net.payment_channel
        if channel is None:
            raise ServiceError("this deployment has no PaymentChannel; redeploy with `verimesh devnet up`")
        self.agent = agent
        self.config = config
        prices = [p for p, on in ((config.answer_price, config.generate_model), (config.search_price, config.embed_model)) if on]
        store = VoucherStore(voucher_db) if voucher_db is not None else None
        # Small channels are fine for a seller whose buyers are agents with per-payment caps.
        self.paywall = Paywall(channel.as_signer(agent.key), agent.key.address, min(prices),
                               min_deposit=MIN_DEPOSIT_REQUESTS * min(prices),
                               terms=f"{config.name}: answers and search bought from verimesh nodes",
                               store=store)  # fmt: skip
        self.index: DocumentIndex | None = None
        self._channels: set[int] = set()  # every channel a served request was paid through

    # -- search index ------------------------------------------------------------------------
    def index_documents(self, docs: list[str], timeout: float = 600) -> list[JobRecord]:
        """Buy the embeddings of ``docs`` and build the search index from them."""
        if self.config.embed_model is None:
            raise ServiceError("set embed_model to index documents")
        records = self.agent.run_jobs(embedding_work(docs, self.config.embed_model, self.config.value), timeout=timeout)
        self.index = DocumentIndex.from_records(docs, records)
        return records

    # -- info ----------------------------------------------------------------------------
    def info(self) -> ServiceInfo:
        routes = []
        if self.config.generate_model is not None:
            routes.append(ServiceRoute(path=ANSWER_PATH, price=self.config.answer_price,
                                       description="answer a question with verified generation"))  # fmt: skip
        if self.config.embed_model is not None and self.index is not None:
            routes.append(ServiceRoute(path=SEARCH_PATH, price=self.config.search_price,
                                       description=f"semantic search over {len(self.index.docs)} documents"))  # fmt: skip
        return ServiceInfo(
            name=self.config.name, payee=self.agent.key.address, wallet=self.agent.wallet.address,
            chain_id=self.agent.net.backend.chain_id, channel_contract=self.paywall.channel.address, routes=routes,
        )  # fmt: skip

    # -- fulfilment ------------------------------------------------------------------------
    def _buy(self, item: WorkItem) -> JobRecord:
        record = self.agent.run_jobs([item], timeout=self.config.job_timeout, max_in_flight=1)[0]
        if not record.verified:
            # The handler fails: the paywall gives the voucher back.
            raise HTTPException(503, f"could not buy a verified result ({record.state}): {record.error}; retry later")
        return record

    def _earned(self, payment: Payment, path: str, record: JobRecord) -> None:
        self._channels.add(payment.channel_id)
        self.agent.ledger.record("earn", payment.price, payment.payer, f"{payment.channel_id}:{payment.cumulative}",
                                 None, f"{path} served with job {record.job_id}")  # fmt: skip

    def answer(self, request: AnswerRequest, payment: Payment) -> AnswerResponse:
        assert self.config.generate_model is not None
        item = WorkItem(task="generate", model=self.config.generate_model, input=request.question,
                        params={"max_tokens": request.max_tokens or self.config.max_tokens, "seed": 0},
                        value=self.config.value, label="answer")  # fmt: skip
        record = self._buy(item)
        self._earned(payment, ANSWER_PATH, record)
        return AnswerResponse(answer=record.output, job=_proof(record))

    def search(self, request: SearchRequest, payment: Payment) -> SearchResponse:
        if self.index is None or self.config.embed_model is None:
            raise HTTPException(404, "this service has no document index")
        item = WorkItem(task="embed", model=self.config.embed_model, input=request.query, value=self.config.value, label="query")
        record = self._buy(item)
        hits = [SearchHit(document=self.index.docs[i], score=s) for i, s in self.index.search(record.output, request.k)]
        self._earned(payment, SEARCH_PATH, record)
        return SearchResponse(hits=hits, job=_proof(record), index_jobs=self.index.jobs)

    # -- HTTP --------------------------------------------------------------------------------
    def app(self) -> FastAPI:
        app = FastAPI(title=f"verimesh agent service: {self.config.name}")
        self.paywall.install(app)
        answer_paid = Annotated[Payment, Depends(self.paywall.require(self.config.answer_price))]
        search_paid = Annotated[Payment, Depends(self.paywall.require(self.config.search_price))]

        @app.get(SERVICE_PATH, response_model=ServiceInfo)
        def service_info() -> ServiceInfo:
            return self.info()

        if self.config.generate_model is not None:

            @app.post(ANSWER_PATH, response_model=AnswerResponse)
            def answer(request: AnswerRequest, payment: answer_paid) -> AnswerResponse:
                return self.answer(request, payment)

        if self.config.embed_model is not None:

            @app.post(SEARCH_PATH, response_model=SearchResponse)
            def search(request: SearchRequest, payment: search_paid) -> SearchResponse:
                return self.search(request, payment)

        return app

    # -- money in ----------------------------------------------------------------------------
    def settle_due(self, min_amount: int, expiry_margin: int = EXPIRY_MARGIN) -> int:
        """Redeem the channels that hold at least ``min_amount`` unredeemed, every channel
        whose payer started closing (its challenge period is the deadline to redeem), and
        every channel whose latest voucher was signed by an AgentWallet session key that
        expires within ``expiry_margin`` seconds (after that the wallet disowns the
        signature and the voucher is worthless). What a running service calls now and
        then; returns the amount redeemed."""
        total = 0
        now = self.agent.net.backend.timestamp()
        for channel_id in self.paywall.channels_to_settle():
            amount = self.paywall.unredeemed(channel_id)
            channel = self.paywall.channel.channels(channel_id)
            voucher = self.paywall.latest_voucher(channel_id)
            expires = session_expiry(self.agent, channel.payer, voucher) if voucher else None
            if amount >= min_amount or channel.closes_at != 0 or (expires is not None and expires - now <= expiry_margin):
                total += self._redeem(channel_id, close=False)
        return total

    def settle(self, close: bool = False) -> int:
        """Redeem every channel's latest voucher (``close``: and settle every channel this
        service was paid through, returning the rest of each deposit to its payer).
        Returns the amount redeemed."""
        ids = set(self.paywall.channels_to_settle())
        if close:
            ids |= {cid for cid in self._channels if not self.paywall.channel.channels(cid).settled}
        return sum(self._redeem(channel_id, close) for channel_id in sorted(ids))

    def _redeem(self, channel_id: int, close: bool) -> int:
        amount = self.paywall.unredeemed(channel_id)
        tx = self.paywall.settle(channel_id, close=close)
        if tx is None:
            return 0
        self.agent.ledger.record("redeem", amount, self.paywall.channel.address, f"channel {channel_id}",
                                 tx_hash(tx), "closed" if close else "redeemed, channel stays open")  # fmt: skip
        return amount


def session_expiry(agent: Agent, payer: str, voucher: PaymentVoucher) -> int | None:
    """When the key that signed ``voucher`` stops being valid for ``payer``, if ``payer`` is
    an AgentWallet and the signer one of its session keys; None otherwise (a plain account's
    signature never expires)."""
    signature = voucher.signature_bytes
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), voucher.digest(), hasher=None
        )
        signer = checksum("0x" + bytes(keccak(public.format(compressed=False)[1:]))[-20:].hex())
        wallet = AgentWalletClient(agent.net.backend, payer, agent.wallet.abi)
        session = wallet.sessions(signer)
    except (ValueError, TypeError, ChainError):  # not recoverable, or the payer is no AgentWallet
        return None
    return session.expires_at if session.status == SessionStatus.ACTIVE else 0


def _proof(record: JobRecord) -> JobProof:
    assert record.job_id is not None and record.output_root is not None
    return JobProof(job_id=record.job_id, mode=record.mode, output_root=record.output_root,
                    post_tx=record.post_tx, providers=record.providers)  # fmt: skip
