"""The agent's money: an AgentWallet the owner funds, a session key the chain keeps on a leash.

``provision_wallet`` is what an owner does once: deploy an AgentWallet, top it up with the
budget, authorize a fresh session key with a policy (the whole budget per period at most,
a cap per payment, an expiry, the counterparties it may pay), and give the key some ETH
for gas. The agent then holds only the session key: whatever it is told or tricked into
doing, the contract refuses payments outside that policy.

Why a float: JobMarket takes a job's escrow from ``msg.sender`` and pays refunds to it, and
the wallet makes no arbitrary calls (that would let a stolen key do anything). So the
session key is the requester on JobMarket, and ``AgentFunds.cover`` has the wallet pay the
key what the next job's escrow lacks, plus as much of the batch's later escrows as one
payment may move (``AgentWallet.pay(key, amount)``: one policy-checked payment per batch),
just before posting. What the key can ever hold is thus bounded by the policy; refunds come back to the key's market balance and pay the next job
first; ``return_float`` sends whatever is left back to the wallet. Channels to other agents
are opened by the wallet itself (``open_channel``), the payee and channel contract being
allowed counterparties.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from verimesh.agent.ledger import Ledger
from verimesh.chain import ContractRevert, Network, Signer
from verimesh.chain.agent_wallet import (
    MAX_COUNTERPARTIES,
    AgentWalletClient,
    SessionStatus,
    deploy_agent_wallet,
)
from verimesh.chain.compile import ArtifactSet, load_artifacts
from verimesh.chain.contract import Tx, checksum
from verimesh.crypto.keystore import write_new_private_file

DAY = 86_400
# ETH the owner gives the session key for gas (devnet gas is cheap; a job costs < 1e15 wei).
GAS_FUNDING = 10**18
AGENT_FILE = "agent.json"
KEY_FILE = "session-key.json"


class BudgetRefused(RuntimeError):
    """The AgentWallet refused a payment: the policy the chain enforces says no."""

    def __init__(self, amount: int, reason: str) -> None:
        super().__init__(
            f"the agent wallet refused to pay {amount / 10**18:g} VMT ({reason}); the owner can raise "
            "the allowance (`set_policy`) or top up the wallet, or wait for the rolling period"
        )
        self.amount = amount
        self.reason = reason


@dataclass(frozen=True)
class SessionPolicy:
    """The session key's policy as the owner sets it (base units and seconds)."""

    allowance: int  # most the key may pay in any window of `period`
    max_per_payment: int
    period: int = DAY
    lifetime: int = DAY  # the key expires this long after authorization
    counterparties: tuple[str, ...] = ()

    @classmethod
    def for_budget(cls, budget: int, counterparties: tuple[str, ...] = ()) -> SessionPolicy:
        """The whole budget per day, at most half of it per payment (one job's escrow or one
        channel deposit is one payment: a leaked key cannot empty the wallet in one call)."""
        if budget <= 0:
            raise ValueError(f"budget must be > 0 base units, got {budget}")
        return cls(allowance=budget, max_per_payment=max(1, budget // 2), counterparties=counterparties)


class AgentRecord(BaseModel):
    """``agent.json``: which wallet and key this agent home uses (no secrets)."""

    name: str
    chain_id: int
    wallet: str
    owner: str
    session_key: str
    budget: int


def provision_wallet(
    net: Network,
    owner: Signer,
    session_key: Signer,
    budget: int,
    policy: SessionPolicy | None = None,
    artifacts: ArtifactSet | None = None,
    gas_funding: int = GAS_FUNDING,
) -> AgentWalletClient:
    """Deploy and fund an AgentWallet owned by ``owner`` and authorize ``session_key``.

    The key may always pay itself (the float for JobMarket escrows) and the network's
    PaymentChannel contract; ``policy.counterparties`` adds others (other agents' payees).
    Returns the wallet client sending as the owner.
    """
    policy = policy or SessionPolicy.for_budget(budget)
    artifacts = artifacts or load_artifacts(names=["AgentWallet"])
    backend = net.backend
    wallet = deploy_agent_wallet(backend, owner, artifacts["AgentWallet"], owner.address, net.token.address)
    token = net.token.as_signer(owner)
    if token.balance_of(owner.address) < budget:
        raise BudgetRefused(budget, f"the owner {owner.address} holds only {token.balance_of(owner.address) / 10**18:g} VMT")
    token.approve(wallet.address, budget)
    wallet.top_up(budget, signer=owner)
    allowed = [session_key.address]
    if net.payment_channel is not None:
        allowed.append(net.payment_channel.address)
    allowed += [checksum(c) for c in policy.counterparties if checksum(c) not in allowed]
    wallet.add_session_key(
        session_key.address, policy.max_per_payment, policy.allowance, policy.period,
        max(backend.timestamp(), 0) + policy.lifetime, allowed[:MAX_COUNTERPARTIES], signer=owner,
    )  # fmt: skip
    for extra in allowed[MAX_COUNTERPARTIES:]:
        wallet.set_counterparty(session_key.address, extra, True, signer=owner)
    if gas_funding and backend.eth_balance(session_key.address) < gas_funding // 2:
        backend.transact(owner, session_key.address, b"", value=gas_funding, function="fund session key gas")
    return wallet


def save_agent(home: Path, record: AgentRecord, session_key: Signer, password: str) -> None:
    """Write ``agent.json`` and the session key's keystore (0600) into ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / AGENT_FILE).write_text(record.model_dump_json(indent=2) + "\n")
    key_path = home / KEY_FILE
    key_path.unlink(missing_ok=True)
    write_new_private_file(key_path, json.dumps(session_key.to_keystore(password, scrypt_n=2**10)))


def load_agent(home: Path) -> AgentRecord | None:
    path = home / AGENT_FILE
    return AgentRecord.model_validate_json(path.read_bytes()) if path.is_file() else None


def tx_hash(tx: Tx) -> str:
    return "0x" + tx.receipt.tx_hash.hex()


class AgentFunds:
    """The session key's view of its money: the wallet (policy), the float, the market balance."""

    def __init__(self, net: Network, wallet: AgentWalletClient, session_key: Signer, ledger: Ledger) -> None:
        self.net = net.as_signer(session_key)
        self.wallet = wallet.as_signer(session_key)
        self.key = session_key
        self.ledger = ledger
        self._lock = threading.Lock()

    def lock(self) -> threading.Lock:
        """Held from ``cover`` until the job is posted, so two jobs never count the same float."""
        return self._lock

    @property
    def float_balance(self) -> int:
        """What the key can put into a job now: its tokens plus its JobMarket balance."""
        return self.net.token.balance_of(self.key.address) + self.net.job_market.balances(self.key.address)

    def available(self) -> int:
        """The largest single payment the wallet would make to the key now (per-payment cap,
        what is left of the period's allowance, the wallet's balance)."""
        return min(self.wallet.available(self.key.address), self.net.token.balance_of(self.wallet.address))

    def allowance_left(self) -> int:
        """What the wallet would still pay the key in this period, over any number of payments."""
        session = self.wallet.sessions(self.key.address)
        if session.status != SessionStatus.ACTIVE or session.expires_at <= self.net.backend.timestamp():
            return 0
        left = max(0, session.allowance - self.wallet.spent_in_window(self.key.address))
        return min(left, self.net.token.balance_of(self.wallet.address))

    def cover(self, escrow: int, ref: str, ahead: int = 0) -> None:
        """Make the key hold ``escrow`` for the next post (call with ``lock()`` held).

        ``ahead``: escrow of the jobs planned after this one. When the float lacks money,
        the wallet pays for those too, as far as one payment may (``max_per_payment``, the
        period's allowance): one policy-checked payment per batch instead of one per job,
        and the key never holds more than one payment's worth beyond its next escrow.
        """
        float_now = self.float_balance
        missing = escrow - float_now
        if missing <= 0:
            return
        amount = max(missing, min(escrow + ahead - float_now, self.available()))
        try:
            tx = self.wallet.pay(self.key.address, amount)
        except ContractRevert as exc:
            raise BudgetRefused(amount, exc.reason) from None
        self.ledger.record("fund", amount, self.wallet.address, ref, tx_hash(tx), "wallet -> session key for job escrows")

    def return_float(self) -> int:
        """Send the key's unused tokens (and market balance) back to the wallet; returns the amount."""
        jm, token = self.net.job_market, self.net.token
        balance = jm.balances(self.key.address)
        if balance:
            jm.withdraw(balance)
        amount = token.balance_of(self.key.address)
        if amount == 0:
            return 0
        token.approve(self.wallet.address, amount)
        tx = self.wallet.top_up(amount)
        self.ledger.record("return", amount, self.wallet.address, "float", tx_hash(tx), "unused float back to the wallet")
        return amount
