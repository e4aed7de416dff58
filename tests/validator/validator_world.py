"""The validator tests' in-process market (titanoboa): deployment, funded parties, a posted job."""

from __future__ import annotations

from verimesh.chain import Mode, Network, Role, Signer, commitment, dev_signer
from verimesh.chain.backends.boa import BoaBackend
from verimesh.chain.deploy import deploy_network, fund_accounts

VMT = 10**18
PRICE = 2 * VMT
WINDOW = 600


class World:
    """Deployer (also the interim referee), one requester, providers and validators."""

    def __init__(self, artifacts, providers: int = 1, validators: int = 1) -> None:
        self.backend = BoaBackend()
        self.deployer = dev_signer(0)
        self.requester = dev_signer(1)
        self.providers = [dev_signer(2 + i) for i in range(providers)]
        self.validators = [dev_signer(2 + providers + i) for i in range(validators)]
        self.outsider = dev_signer(2 + providers + validators)
        # the deployer decides disputes itself: these tests are of the game on JobMarket alone
        net = deploy_network(
            self.backend, self.deployer, artifacts=artifacts, referee=self.deployer.address
        )
        self.net = net
        everyone = [self.requester, *self.providers, *self.validators, self.outsider]
        fund_accounts(net, self.deployer, [s.address for s in everyone], 10_000 * VMT)
        for role, signers in ((Role.PROVIDER, self.providers), (Role.VALIDATOR, self.validators)):
            for s in signers:
                stake = 500 * VMT
                net.token.approve(net.registry.address, stake, signer=s)
                net.registry.register(role, stake, "http://127.0.0.1:1", bytes(32), PRICE, signer=s)

    def signed(self, signer: Signer) -> Network:
        return self.net.as_signer(signer)

    def signer_of(self, address: str) -> Signer:
        for s in [*self.providers, *self.validators, self.requester, self.outsider, self.deployer]:
            if s.address.lower() == address.lower():
                return s
        raise KeyError(address)

    def post(self, mode: Mode, param: int) -> int:
        jm = self.net.job_market
        escrow = jm.escrow_for(mode, param, PRICE)
        self.net.token.approve(jm.address, escrow, signer=self.requester)
        return jm.post_job(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, mode, param, PRICE,
                           WINDOW, WINDOW, WINDOW, signer=self.requester).job_id  # fmt: skip

    def commit_reveal(self, job_id: int, roots: dict[str, tuple[bytes, bytes]]) -> None:
        """``roots``: provider address -> (output_root, trace_root); commits all, then reveals."""
        jm = self.net.job_market
        salt = b"\x07" * 32
        for address, (out, trace) in roots.items():
            jm.commit(
                job_id,
                commitment(job_id, address, out, trace, salt),
                signer=self.signer_of(address),
            )
        for address, (out, trace) in roots.items():
            jm.reveal(job_id, out, trace, salt, signer=self.signer_of(address))

    def balance(self, address: str) -> int:
        return self.net.job_market.balances(address)

    def stake(self, address: str) -> int:
        return self.net.registry.members(address).stake
