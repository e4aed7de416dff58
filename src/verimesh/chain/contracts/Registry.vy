# pragma version ~=0.4.3
"""
@title verimesh Registry (providers and validators with stake)
@custom:contract-name Registry
@license Apache-2.0
@notice Providers sell compute, validators audit it; both register here with a stake in
        Token, an endpoint URL, a capabilities hash and a price. Stake is the collateral
        that makes cheating unprofitable: JobMarket locks part of it as the bond of each
        job and can slash it. Leaving takes an unbonding delay, so misbehaviour found
        shortly after the fact can still be punished.
@custom:security
        - Conservation: the Registry's token balance always equals
          sum(stake + unbonding) over all members. Tokens enter only in `register` and
          `add_stake` (pulled from the member, credited to its `stake`), and leave only
          in `withdraw` (to the member, debited from its `unbonding`) and `slash` (to the
          recipient JobMarket names, debited from the member). No other path moves
          tokens, and each path moves exactly the amount it books.
        - `locked <= stake` always: `lock` and `draw` only lock free stake, `slash` lowers
          `locked` together with `stake`, `unlock` never goes below zero.
        - Only JobMarket (set once by the owner) can lock, unlock, draw and slash, and the
          slasher (the DisputeCommittee, set once by the owner) can slash; nobody, not
          even the owner, can move a member's stake anywhere else.
        - `request_unbond` only releases free (unlocked) stake, and an active member
          keeps at least the role's minimum; `withdraw` waits `unbonding_delay`, during
          which `slash` can still reach the unbonding amount.
        - The member lists are swap-and-pop arrays: O(1) insert/remove, no unbounded
          loop. `draw` inspects at most `_MAX_SCAN` entries per seat (`_MAX_DRAW` seats).
        - Amounts are packed as 120-bit fields (`_hot`); `register`/`add_stake` refuse
          stake above 2**120 - 1 and locked <= stake, so no field can overflow into the next.
        - A member that left (deregistered) and holds nothing is deleted, so the record of
          an address is either a live member or all zero.
        - Reentrancy: tokens move after all bookkeeping (checks-effects-interactions),
          and the token is the trusted Token contract given at deploy.
"""

from ethereum.ercs import IERC20


interface IERC20Permit:
    def permit(
        owner: address,
        spender: address,
        amount: uint256,
        deadline: uint256,
        v: uint8,
        r: bytes32,
        s: bytes32,
    ): nonpayable

# Member roles (a member holds exactly one).
ROLE_PROVIDER: public(constant(uint8)) = 1
ROLE_VALIDATOR: public(constant(uint8)) = 2
# Longest endpoint URL accepted (a URL longer than this is not a sane endpoint).
_MAX_ENDPOINT: constant(uint256) = 256
# Most members one `draw` may return (JobMarket's replica bound).
_MAX_DRAW: constant(uint256) = 8
# Most addresses one `draw` may exclude (requester + 8 replicas).
_MAX_EXCLUDE: constant(uint256) = 9
# Most list entries one seat of a `draw` inspects: bounds the gas of assignment.
_MAX_SCAN: constant(uint256) = 32
# Longest unbonding delay accepted at deploy (a year): longer would trap stake.
_MAX_UNBONDING_DELAY: constant(uint256) = 365 * 86400
# Stake and locked amounts are packed as 120-bit fields of the hot word.
_MAX_AMOUNT: constant(uint256) = 2**120 - 1
_OFF_LOCKED: constant(uint256) = 120
_OFF_ROLE: constant(uint256) = 240
_OFF_ACTIVE: constant(uint256) = 248


# The public view of a member (`members(account)`), assembled from the two records below.
struct Member:
    role: uint8
    stake: uint256  # includes `locked`
    locked: uint256
    unbonding: uint256
    unbond_at: uint256
    endpoint: String[_MAX_ENDPOINT]
    capabilities: bytes32
    price: uint256
    active: bool


# The fields every job touches (draw, lock, unlock, slash), packed into ONE storage word
# (`_hot`): a lock then rewrites a word that is already non-zero (~2.9k gas) instead of
# writing a fresh one (~20k). Layout, low to high bits: stake 120, locked 120, role 8,
# active 8. 120 bits hold 1.3e36 base units, far above any token supply.
struct Hot:
    stake: uint256
    locked: uint256
    role: uint8
    active: bool


# The fields jobs rarely touch.
struct Cold:
    unbonding: uint256
    unbond_at: uint256
    endpoint: String[_MAX_ENDPOINT]
    capabilities: bytes32
    price: uint256


event Registered:
    account: indexed(address)
    role: uint8
    stake: uint256
    endpoint: String[_MAX_ENDPOINT]
    capabilities: bytes32
    price: uint256


event StakeAdded:
    account: indexed(address)
    amount: uint256
    stake: uint256


event Updated:
    account: indexed(address)
    endpoint: String[_MAX_ENDPOINT]
    capabilities: bytes32
    price: uint256


event UnbondRequested:
    account: indexed(address)
    amount: uint256
    unbonding: uint256
    unbond_at: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


event Deregistered:
    account: indexed(address)
    unbonding: uint256
    unbond_at: uint256


event Locked:
    account: indexed(address)
    amount: uint256
    locked: uint256


event Unlocked:
    account: indexed(address)
    amount: uint256
    locked: uint256


event Slashed:
    account: indexed(address)
    amount: uint256
    recipient: indexed(address)


event JobMarketSet:
    job_market: indexed(address)


event SlasherSet:
    slasher: indexed(address)


token: public(immutable(IERC20))
owner: public(immutable(address))
min_provider_stake: public(immutable(uint256))
min_validator_stake: public(immutable(uint256))
unbonding_delay: public(immutable(uint256))
job_market: public(address)
# The only other contract allowed to `slash` (the DisputeCommittee, for equivocating members).
slasher: public(address)

_hot: HashMap[address, uint256]
_cold: HashMap[address, Cold]
# role => position => member; positions 0..count-1 hold the active members of that role.
_list: HashMap[uint8, HashMap[uint256, address]]
_count: HashMap[uint8, uint256]
# member => 1 + its position in its role's list (0 = not listed).
_position: HashMap[address, uint256]


@deploy
def __init__(
    token_: IERC20,
    min_provider_stake_: uint256,
    min_validator_stake_: uint256,
    unbonding_delay_: uint256,
):
    """
    @dev Deploys the registry; the deployer becomes owner (its only power: `set_job_market`).
    @param token_ The stake token.
    @param min_provider_stake_ Minimum stake of a provider, in token base units.
    @param min_validator_stake_ Minimum stake of a validator, in token base units.
    @param unbonding_delay_ Seconds between `request_unbond` and `withdraw`.
    """
    assert token_.address != empty(address), "registry: token is the zero address"
    assert unbonding_delay_ <= _MAX_UNBONDING_DELAY, "registry: unbonding delay above one year"
    token = token_
    owner = msg.sender
    min_provider_stake = min_provider_stake_
    min_validator_stake = min_validator_stake_
    unbonding_delay = unbonding_delay_


@external
def set_job_market(job_market_: address):
    """
    @dev Names the only contract that may lock, unlock, draw and slash; owner, once.
    @param job_market_ The JobMarket address.
    """
    assert msg.sender == owner, "registry: caller is not the owner"
    assert self.job_market == empty(address), "registry: job market already set"
    assert job_market_ != empty(address), "registry: job market is the zero address"
    self.job_market = job_market_
    log JobMarketSet(job_market=job_market_)


@external
def set_slasher(slasher_: address):
    """
    @dev Names the one contract besides JobMarket that may slash (the DisputeCommittee,
         which slashes committee members that signed a verdict other than the accepted
         one); owner, once.
    @param slasher_ The DisputeCommittee address.
    """
    assert msg.sender == owner, "registry: caller is not the owner"
    assert self.slasher == empty(address), "registry: slasher already set"
    assert slasher_ != empty(address), "registry: slasher is the zero address"
    self.slasher = slasher_
    log SlasherSet(slasher=slasher_)


@external
def register(
    role: uint8,
    stake: uint256,
    endpoint: String[_MAX_ENDPOINT],
    capabilities: bytes32,
    price: uint256,
):
    """
    @dev Joins as provider or validator, pulling `stake` from the caller (approve first).
    @param role ROLE_PROVIDER (1) or ROLE_VALIDATOR (2).
    @param stake Tokens to stake; at least the role's minimum.
    @param endpoint The member's HTTP endpoint URL (non-empty).
    @param capabilities Hash of the member's advertised capabilities.
    @param price Lowest price per job replica (or per audit) the member accepts.
    """
    self._register(role, stake, endpoint, capabilities, price)


@external
def register_with_permit(
    role: uint8,
    stake: uint256,
    endpoint: String[_MAX_ENDPOINT],
    capabilities: bytes32,
    price: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev `register` without a separate approve transaction: the caller's EIP-2612 permit
         (spender: this registry, value: `stake`) is submitted first.
    @param role ROLE_PROVIDER (1) or ROLE_VALIDATOR (2).
    @param stake Tokens to stake; at least the role's minimum.
    @param endpoint The member's HTTP endpoint URL (non-empty).
    @param capabilities Hash of the member's advertised capabilities.
    @param price Lowest price per job replica (or per audit) the member accepts.
    @param deadline The permit's deadline.
    @param v The permit signature's v.
    @param r The permit signature's r.
    @param s The permit signature's s.
    """
    extcall IERC20Permit(token.address).permit(msg.sender, self, stake, deadline, v, r, s)
    self._register(role, stake, endpoint, capabilities, price)


@external
def add_stake(amount: uint256):
    """
    @dev Adds `amount` to the caller's stake, pulling it from the caller (approve first).
    @param amount Tokens to add; more than zero.
    """
    hot: Hot = self._load_hot(msg.sender)
    assert hot.active, "registry: not an active member"
    assert amount > 0, "registry: zero amount"
    hot.stake += amount
    assert hot.stake <= _MAX_AMOUNT, "registry: stake above 2**120 - 1"
    self._save_hot(msg.sender, hot)
    log StakeAdded(account=msg.sender, amount=amount, stake=hot.stake)
    assert extcall token.transferFrom(msg.sender, self, amount), "registry: transfer failed"


@external
def update(endpoint: String[_MAX_ENDPOINT], capabilities: bytes32, price: uint256):
    """
    @dev Changes the caller's endpoint, capabilities hash and price.
    @param endpoint New endpoint URL (non-empty).
    @param capabilities New capabilities hash.
    @param price New lowest price per job replica.
    """
    assert self._load_hot(msg.sender).active, "registry: not an active member"
    assert len(endpoint) > 0, "registry: empty endpoint"
    self._cold[msg.sender].endpoint = endpoint
    self._cold[msg.sender].capabilities = capabilities
    self._cold[msg.sender].price = price
    log Updated(account=msg.sender, endpoint=endpoint, capabilities=capabilities, price=price)


@external
def request_unbond(amount: uint256):
    """
    @dev Moves `amount` of free stake into unbonding; it can be withdrawn after the
         delay, which restarts for the whole unbonding amount.
    @param amount Tokens to unbond; at most the free (unlocked) stake, and an active
           member must keep its role's minimum (deregister to leave entirely).
    """
    hot: Hot = self._load_hot(msg.sender)
    assert hot.role != 0, "registry: not registered"
    assert amount > 0, "registry: zero amount"
    assert amount <= hot.stake - hot.locked, "registry: amount exceeds free stake"
    if hot.active:
        assert hot.stake - amount >= self._min_stake(hot.role), (
            "registry: stake would fall below the role minimum; deregister to leave"
        )
    hot.stake -= amount
    self._save_hot(msg.sender, hot)
    self._start_unbond(msg.sender, amount)


@external
def withdraw():
    """
    @dev Pays out the caller's unbonding tokens once the delay has passed. A deregistered
         member with nothing left is forgotten, so it may register again.
    """
    unbonding: uint256 = self._cold[msg.sender].unbonding
    assert unbonding > 0, "registry: nothing to withdraw"
    assert block.timestamp >= self._cold[msg.sender].unbond_at, "registry: still unbonding"
    self._cold[msg.sender].unbonding = 0
    self._forget_if_empty(msg.sender)
    log Withdrawn(account=msg.sender, amount=unbonding)
    assert extcall token.transfer(msg.sender, unbonding), "registry: transfer failed"


@external
def deregister():
    """
    @dev Leaves the market: the caller stops being drawn for jobs and all its free stake
         starts unbonding; stake still locked in jobs follows when JobMarket unlocks it.
    """
    hot: Hot = self._load_hot(msg.sender)
    assert hot.active, "registry: not an active member"
    self._list_remove(hot.role, msg.sender)
    free: uint256 = hot.stake - hot.locked
    hot.active = False
    hot.stake = hot.locked
    self._save_hot(msg.sender, hot)
    if free > 0:
        self._start_unbond(msg.sender, free)
    log Deregistered(
        account=msg.sender,
        unbonding=self._cold[msg.sender].unbonding,
        unbond_at=self._cold[msg.sender].unbond_at,
    )
    # A member slashed down to nothing leaves with nothing to withdraw: forget it now.
    self._forget_if_empty(msg.sender)


@external
def lock(account: address, amount: uint256):
    """
    @dev Locks `amount` of `account`'s free stake as a job bond; JobMarket only.
    @param account The member.
    @param amount Tokens to lock; at most its free stake.
    """
    self._only_job_market()
    hot: Hot = self._load_hot(account)
    assert hot.active, "registry: not an active member"
    assert amount <= hot.stake - hot.locked, "registry: not enough free stake"
    hot.locked += amount
    self._save_hot(account, hot)
    log Locked(account=account, amount=amount, locked=hot.locked)


@external
def unlock(account: address, amount: uint256):
    """
    @dev Releases a job bond; JobMarket only. If the member has deregistered, the
         released stake starts unbonding at once.
    @param account The member.
    @param amount Tokens to release; clamped to what is still locked (a slash may have
           taken part of it).
    """
    self._only_job_market()
    hot: Hot = self._load_hot(account)
    released: uint256 = min(amount, hot.locked)
    hot.locked -= released
    if not hot.active:
        hot.stake -= released
    self._save_hot(account, hot)
    log Unlocked(account=account, amount=released, locked=hot.locked)
    if not hot.active and released > 0:
        self._start_unbond(account, released)


@external
def slash(account: address, amount: uint256, recipient: address) -> uint256:
    """
    @dev Takes up to `amount` from `account`: locked stake first, then free stake, then
         tokens still unbonding; sends what it took to `recipient`. JobMarket or the
         slasher only.
    @param account The member to punish.
    @param amount Tokens to take at most.
    @param recipient Where the slashed tokens go (the caller, which splits them).
    @return The amount actually taken (less than `amount` if the member holds less).
    """
    assert msg.sender == self.job_market or (
        msg.sender == self.slasher and msg.sender != empty(address)
    ), "registry: caller is not the job market or the slasher"
    assert recipient != empty(address), "registry: recipient is the zero address"
    hot: Hot = self._load_hot(account)
    from_locked: uint256 = min(amount, hot.locked)
    hot.locked -= from_locked
    hot.stake -= from_locked
    from_free: uint256 = min(amount - from_locked, hot.stake - hot.locked)
    hot.stake -= from_free
    unbonding: uint256 = self._cold[account].unbonding
    from_unbonding: uint256 = min(amount - from_locked - from_free, unbonding)
    taken: uint256 = from_locked + from_free + from_unbonding
    self._save_hot(account, hot)
    if from_unbonding > 0:
        self._cold[account].unbonding = unbonding - from_unbonding
    self._forget_if_empty(account)
    log Slashed(account=account, amount=taken, recipient=recipient)
    if taken > 0:
        assert extcall token.transfer(recipient, taken), "registry: transfer failed"
    return taken


@external
def draw(
    role: uint8,
    seed: uint256,
    count: uint256,
    max_price: uint256,
    bond: uint256,
    exclude: DynArray[address, _MAX_EXCLUDE],
) -> DynArray[address, _MAX_DRAW]:
    """
    @dev Picks up to `count` distinct active members of `role` and locks `bond` on each;
         JobMarket only. Each seat has its own start in the list: `seed` modulo the list
         length for the first, keccak256(seed, seat) modulo the length for the others, so
         members that registered next to each other (one owner's accounts, a cartel) are
         no likelier to fill several seats of one job than any others. From its start a
         seat inspects at most `_MAX_SCAN` consecutive entries (wrapping) and takes the
         first member not in `exclude`, not already picked, asking at most `max_price`
         and with `bond` free stake; a seat that finds nobody ends the draw.
    @param role ROLE_PROVIDER or ROLE_VALIDATOR.
    @param seed Randomness chosen by JobMarket (not by any member).
    @param count How many members are wanted (at most `_MAX_DRAW`).
    @param max_price Highest member price accepted.
    @param bond Stake to lock on each picked member.
    @param exclude Members that must not be picked (requester, already assigned ones).
    @return The picked members, possibly fewer than `count`.
    """
    self._only_job_market()
    assert count <= _MAX_DRAW, "registry: draw count above the maximum"
    picked: DynArray[address, _MAX_DRAW] = []
    n: uint256 = self._count[role]
    if n == 0 or count == 0:
        return picked
    for seat: uint256 in range(_MAX_DRAW):
        if seat == count:
            break
        start: uint256 = seed % n
        if seat > 0:
            start = convert(keccak256(abi_encode(seed, seat)), uint256) % n
        found: bool = False
        for i: uint256 in range(_MAX_SCAN):
            if i == n:
                break
            candidate: address = self._list[role][(start + i) % n]
            if candidate in exclude or candidate in picked:
                continue
            if self._cold[candidate].price > max_price:
                continue
            hot: Hot = self._load_hot(candidate)
            if hot.stake - hot.locked < bond:
                continue
            hot.locked += bond
            self._save_hot(candidate, hot)
            log Locked(account=candidate, amount=bond, locked=hot.locked)
            picked.append(candidate)
            found = True
            break
        if not found:
            break
    return picked


@external
@view
def members(account: address) -> Member:
    """
    @dev Everything the registry knows about an account (all zero if never registered).
    @param account The member.
    @return role, stake (including locked), locked, unbonding, unbond_at, endpoint,
            capabilities, price, active.
    """
    hot: Hot = self._load_hot(account)
    cold: Cold = self._cold[account]
    return Member(
        role=hot.role,
        stake=hot.stake,
        locked=hot.locked,
        unbonding=cold.unbonding,
        unbond_at=cold.unbond_at,
        endpoint=cold.endpoint,
        capabilities=cold.capabilities,
        price=cold.price,
        active=hot.active,
    )


@external
@view
def provider_count() -> uint256:
    """
    @dev Number of active providers.
    @return The length of the provider list.
    """
    return self._count[ROLE_PROVIDER]


@external
@view
def provider_at(index: uint256) -> address:
    """
    @dev The active provider at `index` (order changes when members leave).
    @param index Position, below `provider_count()`.
    @return The provider's address.
    """
    assert index < self._count[ROLE_PROVIDER], "registry: index out of range"
    return self._list[ROLE_PROVIDER][index]


@external
@view
def validator_count() -> uint256:
    """
    @dev Number of active validators.
    @return The length of the validator list.
    """
    return self._count[ROLE_VALIDATOR]


@external
@view
def validator_at(index: uint256) -> address:
    """
    @dev The active validator at `index` (order changes when members leave).
    @param index Position, below `validator_count()`.
    @return The validator's address.
    """
    assert index < self._count[ROLE_VALIDATOR], "registry: index out of range"
    return self._list[ROLE_VALIDATOR][index]


@external
@view
def free_stake(account: address) -> uint256:
    """
    @dev Stake not locked in any job (what `request_unbond` and `draw` may use).
    @param account The member.
    @return stake - locked.
    """
    hot: Hot = self._load_hot(account)
    return hot.stake - hot.locked


@internal
@view
def _load_hot(account: address) -> Hot:
    """
    @dev Decodes a member's hot word.
    @param account The member.
    @return stake, locked, role, active.
    """
    word: uint256 = self._hot[account]
    return Hot(
        stake=word & _MAX_AMOUNT,
        locked=(word >> _OFF_LOCKED) & _MAX_AMOUNT,
        role=convert((word >> _OFF_ROLE) & 255, uint8),
        active=(word >> _OFF_ACTIVE) != 0,
    )


@internal
def _save_hot(account: address, hot: Hot):
    """
    @dev Encodes and stores a member's hot word (amounts were bounded by the callers:
         stake by `_MAX_AMOUNT` on entry, locked <= stake).
    @param account The member.
    @param hot The decoded fields.
    """
    active: uint256 = 0
    if hot.active:
        active = 1
    self._hot[account] = (
        hot.stake
        | (hot.locked << _OFF_LOCKED)
        | (convert(hot.role, uint256) << _OFF_ROLE)
        | (active << _OFF_ACTIVE)
    )


@internal
def _register(
    role: uint8,
    stake: uint256,
    endpoint: String[_MAX_ENDPOINT],
    capabilities: bytes32,
    price: uint256,
):
    """
    @dev Records a new member and pulls its stake from the caller.
    @param role ROLE_PROVIDER (1) or ROLE_VALIDATOR (2).
    @param stake Tokens to stake; at least the role's minimum.
    @param endpoint The member's HTTP endpoint URL (non-empty).
    @param capabilities Hash of the member's advertised capabilities.
    @param price Lowest price per job replica (or per audit) the member accepts.
    """
    assert role == ROLE_PROVIDER or role == ROLE_VALIDATOR, "registry: unknown role"
    assert self._hot[msg.sender] == 0, "registry: already registered"
    assert stake >= self._min_stake(role), "registry: stake below the role minimum"
    assert stake <= _MAX_AMOUNT, "registry: stake above 2**120 - 1"
    assert len(endpoint) > 0, "registry: empty endpoint"
    self._save_hot(msg.sender, Hot(stake=stake, locked=0, role=role, active=True))
    self._cold[msg.sender] = Cold(
        unbonding=0, unbond_at=0, endpoint=endpoint, capabilities=capabilities, price=price
    )
    self._list_add(role, msg.sender)
    log Registered(
        account=msg.sender,
        role=role,
        stake=stake,
        endpoint=endpoint,
        capabilities=capabilities,
        price=price,
    )
    assert extcall token.transferFrom(msg.sender, self, stake), "registry: transfer failed"


@internal
@view
def _min_stake(role: uint8) -> uint256:
    """
    @dev The minimum stake of a role.
    @param role ROLE_PROVIDER or ROLE_VALIDATOR.
    @return The minimum in token base units.
    """
    if role == ROLE_PROVIDER:
        return min_provider_stake
    return min_validator_stake


@internal
@view
def _only_job_market():
    """
    @dev Reverts unless the caller is the JobMarket named by `set_job_market`.
    """
    assert msg.sender == self.job_market, "registry: caller is not the job market"


@internal
def _start_unbond(account: address, amount: uint256):
    """
    @dev Adds tokens that already left `stake` to unbonding and restarts the delay.
    @param account The member.
    @param amount Tokens the caller removed from the member's stake.
    """
    unbonding: uint256 = self._cold[account].unbonding + amount
    unbond_at: uint256 = block.timestamp + unbonding_delay
    self._cold[account].unbonding = unbonding
    self._cold[account].unbond_at = unbond_at
    log UnbondRequested(account=account, amount=amount, unbonding=unbonding, unbond_at=unbond_at)


@internal
def _forget_if_empty(account: address):
    """
    @dev Deletes a deregistered member that holds nothing any more, so the address may
         register again.
    @param account The member.
    """
    hot: Hot = self._load_hot(account)
    if hot.active or hot.stake != 0 or self._cold[account].unbonding != 0:
        return
    self._hot[account] = 0
    self._cold[account] = empty(Cold)


@internal
def _list_add(role: uint8, account: address):
    """
    @dev Appends a member to its role's list.
    @param role The member's role.
    @param account The member.
    """
    n: uint256 = self._count[role]
    self._list[role][n] = account
    self._position[account] = n + 1
    self._count[role] = n + 1


@internal
def _list_remove(role: uint8, account: address):
    """
    @dev Removes a member from its role's list by moving the last entry into its place.
    @param role The member's role.
    @param account The member.
    """
    n: uint256 = self._count[role]
    index: uint256 = self._position[account] - 1
    last: address = self._list[role][n - 1]
    self._list[role][index] = last
    self._position[last] = index + 1
    self._list[role][n - 1] = empty(address)
    self._position[account] = 0
    self._count[role] = n - 1
