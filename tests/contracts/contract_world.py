"""The world of the contract unit tests: Token, Registry and JobMarket on titanoboa,
three providers and two validators registered, funded actors, and call helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boa
from eth_account.messages import encode_typed_data

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "verimesh" / "chain" / "contracts"
E = 10**18
MAX = 2**256 - 1

# Registry parameters.
MIN_PROVIDER_STAKE = 100 * E
MIN_VALIDATOR_STAKE = 100 * E
UNBONDING_DELAY = 7 * 86400
# JobMarket parameters.
MIN_BOND = 10 * E
BOND_MULTIPLIER_BPS = 20_000
AUDIT_FEE_BPS = 10_000
CHALLENGE_BOND = 50 * E
BOUNTY_BPS = 5_000
REQUESTER_SHARE_BPS = 3_000
ROUND_WINDOW = 3600
BURN = "0x000000000000000000000000000000000000dEaD"

PROVIDER_STAKE = 200 * E
PROVIDER_PRICE = 1 * E
JOB_PRICE = 2 * E
WINDOW = 600

ROLE_PROVIDER = 1
ROLE_VALIDATOR = 2
MODE_AUDIT = 0
MODE_REPLICATE = 1
(ASSIGNED, COMMITTED, REVEALED, AUDITING, DISPUTED, FINALIZED, REFUNDED) = range(1, 8)

SPEC = b"\x51" * 32
MODEL = b"\x52" * 32
INPUT = b"\x53" * 32
OUTPUT = b"\x0a" * 32
TRACE = b"\x0b" * 32
SALT = b"\x5a" * 32


@functools.cache
def _deployer(name: str) -> Any:
    """Compiles a contract once per process; `.deploy()` works in any boa Env."""
    return boa.load_partial(str(CONTRACTS / name))


def load(name: str, *args: Any, fresh: bool = False) -> Any:
    """Deploys a contract. `fresh=True` deploys from a new account, hence at a new address:
    titanoboa keeps per-address storage traces across the anchors that roll tests back, and
    two tests deploying different contracts at the same address confuse its error reports.
    The deployer (owner) is then `contract.deployer`."""
    if not fresh:
        return _deployer(name).deploy(*args)
    deployer = boa.env.generate_address()
    with boa.env.prank(deployer):
        contract = _deployer(name).deploy(*args)
    contract.deployer = deployer
    return contract


@dataclass
class World:
    token: Any
    registry: Any
    market: Any
    owner: str
    requester: str
    challenger: str
    outsider: str
    providers: list[str] = field(default_factory=list)
    validators: list[str] = field(default_factory=list)

    # --- helpers -------------------------------------------------------------------
    def fund(self, who: str, amount: int = 1_000 * E) -> None:
        self.token.mint(who, amount)
        with boa.env.prank(who):
            self.token.approve(self.registry.address, MAX)
            self.token.approve(self.market.address, MAX)

    def register(self, who: str, role: int = ROLE_PROVIDER, stake: int = PROVIDER_STAKE,
                 price: int = PROVIDER_PRICE) -> None:
        self.fund(who)
        with boa.env.prank(who):
            self.registry.register(role, stake, "http://127.0.0.1:8000", b"\xca" * 32, price)

    def post(self, mode: int = MODE_AUDIT, param: int = 0, price: int = JOB_PRICE,
             requester: str | None = None, windows: tuple[int, int, int] = (WINDOW,) * 3) -> int:
        with boa.env.prank(requester or self.requester):
            return self.market.post_job(SPEC, MODEL, INPUT, mode, param, price, *windows)

    def commit(self, job_id: int, provider: str, output: bytes = OUTPUT,
               trace: bytes = TRACE, salt: bytes = SALT) -> None:
        commitment = self.market.commitment_for(job_id, provider, output, trace, salt)
        with boa.env.prank(provider):
            self.market.commit(job_id, commitment)

    def reveal(self, job_id: int, provider: str, output: bytes = OUTPUT,
               trace: bytes = TRACE, salt: bytes = SALT) -> None:
        with boa.env.prank(provider):
            self.market.reveal(job_id, output, trace, salt)

    def commit_reveal_all(self, job_id: int, outputs: dict[str, bytes] | None = None) -> None:
        outputs = outputs or {}
        assigned = list(self.market.assigned(job_id))
        for p in assigned:
            self.commit(job_id, p, output=outputs.get(p, OUTPUT))
        for p in assigned:
            self.reveal(job_id, p, output=outputs.get(p, OUTPUT))

    def state(self, job_id: int) -> int:
        return self.market.jobs(job_id).state

    def balance(self, who: str) -> int:
        return self.token.balanceOf(who)

    def member(self, who: str) -> Any:
        return self.registry.members(who)

    def actors(self) -> list[str]:
        return [self.owner, self.requester, self.challenger, self.outsider, *self.providers,
                *self.validators]

    def open_escrow(self) -> int:
        """Tokens the market must still hold for jobs that are not settled."""
        total = 0
        for job_id in range(1, self.market.job_count() + 1):
            job = self.market.jobs(job_id)
            if job.state in (FINALIZED, REFUNDED):
                continue
            total += self.market.escrow_for(job.mode, job.mode_param, job.price)
            if job.state == DISPUTED:
                total += self.market.disputes(job_id).bond
        return total

    def assert_conserved(self) -> None:
        """Market: balance == booked balances + open escrow; registry: balance == stakes."""
        booked = sum(self.market.balances(a) for a in self.actors())
        assert self.balance(self.market.address) == booked + self.open_escrow()
        self.supply_accounted()

    def supply_accounted(self) -> None:
        """Every token is with a holder: registry holds stake+unbonding of its members."""
        members = self.providers + self.validators
        held = sum(self.member(m).stake + self.member(m).unbonding for m in members)
        assert self.balance(self.registry.address) == held


def deploy(providers: int = 3, validators: int = 2) -> World:
    owner = boa.env.eoa
    token = load("Token.vy", "Verimesh Test Token", "VMT", 18, owner)
    registry = load("Registry.vy", token.address, MIN_PROVIDER_STAKE, MIN_VALIDATOR_STAKE,
                    UNBONDING_DELAY)
    market = load("JobMarket.vy", token.address, registry.address, owner, MIN_BOND,
                  BOND_MULTIPLIER_BPS, AUDIT_FEE_BPS, CHALLENGE_BOND, BOUNTY_BPS,
                  REQUESTER_SHARE_BPS, ROUND_WINDOW)
    registry.set_job_market(market.address)
    world = World(
        token=token, registry=registry, market=market, owner=owner,
        requester=boa.env.generate_address("requester"),
        challenger=boa.env.generate_address("challenger"),
        outsider=boa.env.generate_address("outsider"),
    )
    for name in ("requester", "challenger", "outsider"):
        world.fund(getattr(world, name))
    for i in range(providers):
        p = boa.env.generate_address(f"provider{i}")
        world.register(p)
        world.providers.append(p)
    for i in range(validators):
        v = boa.env.generate_address(f"validator{i}")
        world.register(v, role=ROLE_VALIDATOR, price=0)
        world.validators.append(v)
    return world


def tx_gas(contract: Any, call: Callable[[], Any]) -> int:
    """Gas a real transaction would use for `call`, measured on the in-process EVM.

    titanoboa runs the message only, so this adds the intrinsic cost (21000 + calldata),
    first ends the previous "transaction" (cold storage and accounts, original values of
    storage reset, as between real transactions) and applies the refund cap of EIP-3529
    (a fifth of the gas used). Only use it in an EVM without open anchors (`boa.Env()`).
    """
    boa.env.evm.vm.state.lock_changes()  # a new transaction: cold accounts and slots
    call()
    computation = contract._computation
    data = bytes(computation.msg.data)
    intrinsic = 21_000 + sum(4 if b == 0 else 16 for b in data)
    used = intrinsic + computation.get_gas_used()
    return used - min(computation.get_gas_refund(), used // 5)


def permit_signature(token: Any, owner: Any, spender: str, value: int, deadline: int,
                     nonce: int | None = None) -> tuple[int, bytes, bytes]:
    """Signs an EIP-2612 Permit with eth-account's EIP-712 encoder (independent of the contract)."""
    data = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": token.name(),
            "version": "1",
            "chainId": boa.env.evm.patch.chain_id,
            "verifyingContract": str(token.address),
        },
        "message": {
            "owner": owner.address,
            "spender": str(spender),
            "value": value,
            "nonce": token.nonces(owner.address) if nonce is None else nonce,
            "deadline": deadline,
        },
    }
    signed = owner.sign_message(encode_typed_data(full_message=data))
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
