# pragma version ~=0.4.3
"""
@title verimesh AgentWallet (spending policy enforced on chain, EIP-1271)
@custom:contract-name AgentWallet
@license Apache-2.0
@notice A wallet for an autonomous agent. The owner key (kept offline by a person)
        funds it and authorizes session keys; the agent holds only a session key, and the
        contract checks that key's policy on every payment: a maximum per payment, an
        allowance per rolling period, a set of allowed counterparties (payees and payment
        channel contracts), and an expiry. A stolen session key can therefore move at most
        the allowance per period, only to allowed counterparties, only until it expires or
        the owner revokes it (one transaction, effective at once).
        Payments: `pay(to, amount)` sends tokens; `open_channel`/`top_up_channel` approve a
        PaymentChannel for exactly the amount and open or top up a channel in the same
        transaction, under the same policy (the channel contract AND its payee must be
        allowed). `isValidSignature` (EIP-1271) accepts signatures by the owner or by an
        active, unexpired session key, so the agent can sign vouchers and protocol
        envelopes as the wallet.

        Rolling window, exactly: a key's period P is cut into buckets of
        w = ceil(P / 8) seconds (bucket of time t = t // w). A payment at time t is
        accepted only if it plus all payments of this key in buckets t//w - 8 .. t//w
        stays <= allowance. Any interval of P seconds touches at most 9 consecutive
        buckets, all within that lookback of its last payment, so the total paid in ANY
        window of P seconds is <= allowance. The price of bounded storage (9 slots per
        key): a payment may be refused up to w seconds longer than an exact sliding
        window would.
@custom:security
        - Owner-only: withdraw, session key management, policy, counterparties. Session
          keys can only pay allowed counterparties within their policy, and start or finish
          the close of a channel (which only returns money to this wallet).
        - The wallet never leaves a standing ERC-20 allowance: `open_channel` and
          `top_up_channel` approve the exact amount and require the allowance to be back
          at zero after the call, so no contract can later pull more on its own or on a
          (session-key) signature.
        - EIP-1271 and session keys: a session key can sign anything "as the wallet". Money
          moved on such a signature is bounded by what sits in payment channels opened from
          this wallet (by session keys under the policy, or by the owner, whose channels
          are therefore also exposed to any active session key); this wallet gives no
          allowances that a signature could spend (see above), and Token.permit checks
          ECDSA only. Integrations that move a contract wallet's funds on an EIP-1271
          signature alone must not be approved from here.
        - A key's allowed counterparties and spending history are keyed by an epoch that
          changes each time the key is (re)authorized, so revoking and re-adding a key
          starts from an empty list (nothing stale comes back).
        - Reentrancy: every state-changing function is `@nonreentrant`; effects (spending
          record) come before the token and channel calls.
        - Loops only run over the constant 9 window slots and over a bounded
          counterparty list (`_MAX_COUNTERPARTIES`).
"""

from ethereum.ercs import IERC20

import signatures


interface PaymentChannel:
    def open(payee: address, amount: uint256) -> uint256: nonpayable
    def top_up(channel_id: uint256, amount: uint256): nonpayable
    def start_close(channel_id: uint256): nonpayable
    def withdraw(channel_id: uint256): nonpayable
    def payee_of(channel_id: uint256) -> address: view


# Buckets per period of the rolling window (resolution P/8).
_WINDOW_BUCKETS: constant(uint256) = 8
# Ring slots per key: the current bucket plus the 8 before it.
_WINDOW_SLOTS: constant(uint256) = _WINDOW_BUCKETS + 1
# A slot packs (bucket index << 192) | amount; amounts must fit 192 bits.
_AMOUNT_BITS: constant(uint256) = 192
_AMOUNT_MASK: constant(uint256) = 2**192 - 1
# Longest period a policy may use (a year) and most counterparties set in one call.
_MAX_PERIOD: constant(uint256) = 365 * 86400
_MAX_COUNTERPARTIES: constant(uint256) = 16
# Session key states.
_STATUS_NONE: constant(uint8) = 0
_STATUS_ACTIVE: constant(uint8) = 1
_STATUS_REVOKED: constant(uint8) = 2
# EIP-1271 answers.
_MAGIC_VALUE: constant(bytes4) = 0x1626ba7e
_INVALID_SIGNATURE: constant(bytes4) = 0xffffffff


struct Session:
    status: uint8  # 0 unknown, 1 active, 2 revoked
    max_per_payment: uint256  # largest single payment
    allowance: uint256  # most the key may pay in any window of `period` seconds
    period: uint256  # window length in seconds (fixed for the key's life)
    expires_at: uint256  # the key works while block.timestamp < expires_at
    epoch: uint256  # keys this authorization's counterparties and spending history


event ToppedUp:
    sender: indexed(address)
    amount: uint256


event Withdrawn:
    to: indexed(address)
    amount: uint256


event SessionKeyAdded:
    key: indexed(address)
    max_per_payment: uint256
    allowance: uint256
    period: uint256
    expires_at: uint256
    epoch: uint256


event PolicyChanged:
    key: indexed(address)
    max_per_payment: uint256
    allowance: uint256
    expires_at: uint256


event CounterpartySet:
    key: indexed(address)
    counterparty: indexed(address)
    allowed: bool


event SessionKeyRevoked:
    key: indexed(address)


event Paid:
    key: indexed(address)
    to: indexed(address)
    amount: uint256


event ChannelFunded:
    key: indexed(address)
    channel: indexed(address)
    channel_id: indexed(uint256)
    payee: address
    amount: uint256


event ChannelCloseStarted:
    channel: indexed(address)
    channel_id: indexed(uint256)


event ChannelWithdrawn:
    channel: indexed(address)
    channel_id: indexed(uint256)
    refunded: uint256


owner: public(immutable(address))
token: public(immutable(IERC20))
sessions: public(HashMap[address, Session])
_allowed: HashMap[uint256, HashMap[address, bool]]  # epoch -> counterparty -> allowed
_spent: HashMap[uint256, HashMap[uint256, uint256]]  # epoch -> slot -> (bucket << 192) | amount
_last_epoch: uint256


@deploy
def __init__(owner_: address, token_: IERC20):
    """
    @dev A wallet for `owner_` holding `token_`; no session keys yet.
    @param owner_ The owner key (may differ from the deployer, e.g. a factory).
    @param token_ The ERC-20 this wallet pays in.
    """
    assert owner_ != empty(address), "agent_wallet: owner is the zero address"
    assert token_.address != empty(address), "agent_wallet: token is the zero address"
    owner = owner_
    token = token_


# -- money in and out (owner) ------------------------------------------------------------


@external
@nonreentrant
def top_up(amount: uint256):
    """
    @dev Pulls `amount` tokens from the caller (approve first). Anyone may fund the wallet.
    @param amount Base units to add.
    """
    assert amount > 0, "agent_wallet: zero amount"
    log ToppedUp(sender=msg.sender, amount=amount)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), (
        "agent_wallet: token transfer failed"
    )


@external
@nonreentrant
def withdraw(to: address, amount: uint256):
    """
    @dev Owner takes tokens out, with no policy applied.
    @param to Receiver.
    @param amount Base units.
    """
    self._only_owner()
    assert to != empty(address), "agent_wallet: withdraw to the zero address"
    assert amount > 0, "agent_wallet: zero amount"
    log Withdrawn(to=to, amount=amount)
    assert extcall token.transfer(to, amount, default_return_value=True), "agent_wallet: token transfer failed"


# -- session keys (owner) ----------------------------------------------------------------


@external
@nonreentrant
def add_session_key(
    key: address,
    max_per_payment: uint256,
    allowance: uint256,
    period: uint256,
    expires_at: uint256,
    counterparties: DynArray[address, _MAX_COUNTERPARTIES],
):
    """
    @dev Authorizes `key` under a fresh policy (new epoch: empty history and list).
    @param key The agent's session key (an account address).
    @param max_per_payment Largest single payment.
    @param allowance Most the key may pay in any `period` seconds.
    @param period Rolling window length in seconds (1 .. one year; fixed for this key).
    @param expires_at Timestamp from which the key stops working.
    @param counterparties Initial allowed payees / channel contracts.
    """
    self._only_owner()
    assert key != empty(address), "agent_wallet: session key is the zero address"
    assert key != owner, "agent_wallet: session key is the owner"
    assert self.sessions[key].status != _STATUS_ACTIVE, "agent_wallet: session key already active"
    assert period > 0 and period <= _MAX_PERIOD, "agent_wallet: period out of range"
    self._check_limits(max_per_payment, allowance, expires_at)
    epoch: uint256 = self._last_epoch + 1
    self._last_epoch = epoch
    self.sessions[key] = Session(
        status=_STATUS_ACTIVE,
        max_per_payment=max_per_payment,
        allowance=allowance,
        period=period,
        expires_at=expires_at,
        epoch=epoch,
    )
    log SessionKeyAdded(
        key=key,
        max_per_payment=max_per_payment,
        allowance=allowance,
        period=period,
        expires_at=expires_at,
        epoch=epoch,
    )
    for counterparty: address in counterparties:
        self._set_counterparty(key, epoch, counterparty, True)


@external
@nonreentrant
def set_policy(key: address, max_per_payment: uint256, allowance: uint256, expires_at: uint256):
    """
    @dev Changes an active key's limits and expiry (also to renew an expired key). The
         period and spending history stay: a lower allowance applies at once to what
         was already spent in the window.
    @param key An active session key.
    @param max_per_payment New largest single payment.
    @param allowance New most per window.
    @param expires_at New expiry timestamp.
    """
    self._only_owner()
    assert self.sessions[key].status == _STATUS_ACTIVE, "agent_wallet: not an active session key"
    self._check_limits(max_per_payment, allowance, expires_at)
    self.sessions[key].max_per_payment = max_per_payment
    self.sessions[key].allowance = allowance
    self.sessions[key].expires_at = expires_at
    log PolicyChanged(key=key, max_per_payment=max_per_payment, allowance=allowance, expires_at=expires_at)


@external
@nonreentrant
def set_counterparty(key: address, counterparty: address, allowed: bool):
    """
    @dev Allows or forbids one payee or channel contract for an active session key.
    @param key An active session key.
    @param counterparty A payee or a PaymentChannel contract.
    @param allowed True to allow, False to forbid.
    """
    self._only_owner()
    session: Session = self.sessions[key]
    assert session.status == _STATUS_ACTIVE, "agent_wallet: not an active session key"
    self._set_counterparty(key, session.epoch, counterparty, allowed)


@external
@nonreentrant
def revoke_session_key(key: address):
    """
    @dev Stops `key` at once: it can no longer pay, fund channels or sign for the wallet.
    @param key An active session key.
    """
    self._only_owner()
    assert self.sessions[key].status == _STATUS_ACTIVE, "agent_wallet: not an active session key"
    self.sessions[key].status = _STATUS_REVOKED
    log SessionKeyRevoked(key=key)


# -- payments (session keys; the owner is not limited) ---------------------------------------


@external
@nonreentrant
def pay(to: address, amount: uint256):
    """
    @dev Pays `amount` tokens to `to` under the caller's session key policy.
    @param to An allowed counterparty.
    @param amount Base units, at most the per-payment limit and the window's room.
    """
    assert to != empty(address), "agent_wallet: pay to the zero address"
    self._authorize(msg.sender, to, empty(address), amount)
    log Paid(key=msg.sender, to=to, amount=amount)
    assert extcall token.transfer(to, amount, default_return_value=True), "agent_wallet: token transfer failed"


@external
@nonreentrant
def open_channel(channel: address, payee: address, amount: uint256) -> uint256:
    """
    @dev Opens a payment channel from this wallet to `payee` with deposit `amount`, under
         the policy: both `channel` and `payee` must be allowed, `amount` counts as a payment.
    @param channel A PaymentChannel contract.
    @param payee Who the channel pays.
    @param amount The deposit.
    @return The channel id.
    """
    self._authorize(msg.sender, payee, channel, amount)
    extcall token.approve(channel, amount, default_return_value=True)
    channel_id: uint256 = extcall PaymentChannel(channel).open(payee, amount)
    self._check_allowance_spent(channel)
    log ChannelFunded(key=msg.sender, channel=channel, channel_id=channel_id, payee=payee, amount=amount)
    return channel_id


@external
@nonreentrant
def top_up_channel(channel: address, channel_id: uint256, amount: uint256):
    """
    @dev Adds `amount` to one of this wallet's channels, under the policy (channel
         contract and the channel's payee allowed; `amount` counts as a payment).
    @param channel A PaymentChannel contract.
    @param channel_id A channel this wallet opened there.
    @param amount Tokens to add.
    """
    payee: address = staticcall PaymentChannel(channel).payee_of(channel_id)
    assert payee != empty(address), "agent_wallet: unknown channel"
    self._authorize(msg.sender, payee, channel, amount)
    extcall token.approve(channel, amount, default_return_value=True)
    extcall PaymentChannel(channel).top_up(channel_id, amount)
    self._check_allowance_spent(channel)
    log ChannelFunded(key=msg.sender, channel=channel, channel_id=channel_id, payee=payee, amount=amount)


@external
@nonreentrant
def start_channel_close(channel: address, channel_id: uint256):
    """
    @dev Starts the unilateral close of one of this wallet's channels (a payee vanished).
         Owner or an active session key; only ever returns money to this wallet.
    @param channel The PaymentChannel contract.
    @param channel_id The channel.
    """
    self._only_owner_or_session(msg.sender)
    log ChannelCloseStarted(channel=channel, channel_id=channel_id)
    extcall PaymentChannel(channel).start_close(channel_id)


@external
@nonreentrant
def withdraw_channel(channel: address, channel_id: uint256):
    """
    @dev After the challenge period, takes the rest of a channel's deposit back into this
         wallet. Owner or an active session key.
    @param channel The PaymentChannel contract.
    @param channel_id The channel.
    """
    self._only_owner_or_session(msg.sender)
    before: uint256 = staticcall token.balanceOf(self)
    extcall PaymentChannel(channel).withdraw(channel_id)
    refunded: uint256 = staticcall token.balanceOf(self) - before
    log ChannelWithdrawn(channel=channel, channel_id=channel_id, refunded=refunded)


# -- views ---------------------------------------------------------------------------------


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[signatures.MAX_SIGNATURE_BYTES]) -> bytes4:
    """
    @dev EIP-1271: a 65-byte ECDSA signature of `hash` by the owner, or by a session key
         that is active (not revoked) and not expired, counts as this wallet's signature.
    @param hash The signed digest (e.g. an EIP-712 voucher or envelope digest).
    @param signature r || s || v.
    @return 0x1626ba7e if valid, 0xffffffff otherwise.
    """
    signer: address = signatures._recover(hash, signature)
    if signer == empty(address):
        return _INVALID_SIGNATURE
    if signer == owner or self._session_usable(signer):
        return _MAGIC_VALUE
    return _INVALID_SIGNATURE


@external
@view
def is_allowed(key: address, counterparty: address) -> bool:
    """
    @dev Whether `counterparty` is allowed for `key`'s current authorization.
    @param key A session key.
    @param counterparty A payee or channel contract.
    @return True if allowed.
    """
    return self._allowed[self.sessions[key].epoch][counterparty]


@external
@view
def spent_in_window(key: address) -> uint256:
    """
    @dev What `key` paid in the buckets the next payment is checked against.
    @param key A session key.
    @return Base units counted against the allowance right now.
    """
    session: Session = self.sessions[key]
    if session.status == _STATUS_NONE:
        return 0
    return self._window_total(session.epoch, self._bucket_of(session.period))


@external
@view
def available(key: address) -> uint256:
    """
    @dev The largest payment `key` could make now (limits and balance; not counterparties).
    @param key A session key.
    @return Base units; 0 for a revoked, expired or unknown key.
    """
    session: Session = self.sessions[key]
    if not self._session_usable(key):
        return 0
    spent: uint256 = self._window_total(session.epoch, self._bucket_of(session.period))
    room: uint256 = 0
    if session.allowance > spent:
        room = session.allowance - spent
    return min(min(room, session.max_per_payment), staticcall token.balanceOf(self))


# -- internals -----------------------------------------------------------------------------


@internal
@view
def _only_owner():
    """
    @dev Reverts unless the caller is the owner.
    """
    assert msg.sender == owner, "agent_wallet: caller is not the owner"


@internal
@view
def _only_owner_or_session(caller: address):
    """
    @dev Reverts unless `caller` is the owner or a usable session key.
    @param caller msg.sender.
    """
    if caller == owner:
        return
    self._check_session(self.sessions[caller])


@internal
@view
def _session_usable(key: address) -> bool:
    """
    @dev Whether `key` is active and not expired.
    @param key A session key.
    @return True if it may act now.
    """
    session: Session = self.sessions[key]
    return session.status == _STATUS_ACTIVE and block.timestamp < session.expires_at


@internal
@view
def _check_session(session: Session):
    """
    @dev Reverts with the precise reason a session cannot act now.
    @param session The caller's session record.
    """
    assert session.status != _STATUS_NONE, "agent_wallet: caller is not a session key"
    assert session.status != _STATUS_REVOKED, "agent_wallet: session key revoked"
    assert block.timestamp < session.expires_at, "agent_wallet: session key expired"


@internal
@view
def _check_limits(max_per_payment: uint256, allowance: uint256, expires_at: uint256):
    """
    @dev Validates policy numbers.
    @param max_per_payment Largest single payment.
    @param allowance Most per window.
    @param expires_at Expiry timestamp.
    """
    assert max_per_payment > 0, "agent_wallet: zero per-payment limit"
    assert max_per_payment <= allowance, "agent_wallet: per-payment limit above allowance"
    assert allowance <= _AMOUNT_MASK, "agent_wallet: allowance too large"
    assert expires_at > block.timestamp, "agent_wallet: expiry in the past"


@internal
def _set_counterparty(key: address, epoch: uint256, counterparty: address, allowed: bool):
    """
    @dev Records one allowed/forbidden counterparty for a key's epoch.
    @param key The session key (for the event).
    @param epoch The key's current epoch.
    @param counterparty The payee or channel contract.
    @param allowed The new setting.
    """
    assert counterparty != empty(address), "agent_wallet: counterparty is the zero address"
    self._allowed[epoch][counterparty] = allowed
    log CounterpartySet(key=key, counterparty=counterparty, allowed=allowed)


@internal
def _authorize(caller: address, payee: address, channel: address, amount: uint256):
    """
    @dev Checks the caller may pay `amount` to `payee` (through `channel` if not empty)
         and records the spending. The owner is not limited.
    @param caller msg.sender.
    @param payee Who finally receives the money.
    @param channel The PaymentChannel used, or the zero address for a direct payment.
    @param amount Base units.
    """
    assert amount > 0, "agent_wallet: zero amount"
    if caller == owner:
        return
    session: Session = self.sessions[caller]
    self._check_session(session)
    assert amount <= session.max_per_payment, "agent_wallet: over per-payment limit"
    assert self._allowed[session.epoch][payee], "agent_wallet: counterparty not allowed"
    if channel != empty(address):
        assert self._allowed[session.epoch][channel], "agent_wallet: channel contract not allowed"
    bucket: uint256 = self._bucket_of(session.period)
    total: uint256 = self._window_total(session.epoch, bucket) + amount
    assert total <= session.allowance, "agent_wallet: over period allowance"
    slot: uint256 = bucket % _WINDOW_SLOTS
    packed: uint256 = self._spent[session.epoch][slot]
    if packed != 0 and (packed >> _AMOUNT_BITS) == bucket:
        self._spent[session.epoch][slot] = packed + amount  # amount part stays < 2**192: total <= allowance
    else:
        self._spent[session.epoch][slot] = (bucket << _AMOUNT_BITS) | amount


@internal
@view
def _bucket_of(period: uint256) -> uint256:
    """
    @dev The current bucket index for a window of `period` seconds.
    @param period The key's window length.
    @return block.timestamp // ceil(period / _WINDOW_BUCKETS).
    """
    width: uint256 = (period + _WINDOW_BUCKETS - 1) // _WINDOW_BUCKETS
    return block.timestamp // width


@internal
@view
def _window_total(epoch: uint256, bucket: uint256) -> uint256:
    """
    @dev Sum of payments recorded in buckets `bucket - 8 .. bucket`.
    @param epoch The key's epoch.
    @param bucket The current bucket index.
    @return Base units.
    """
    total: uint256 = 0
    for slot: uint256 in range(_WINDOW_SLOTS):
        packed: uint256 = self._spent[epoch][slot]
        if packed != 0 and (packed >> _AMOUNT_BITS) + _WINDOW_BUCKETS >= bucket:
            total += packed & _AMOUNT_MASK
    return total


@internal
@view
def _check_allowance_spent(channel: address):
    """
    @dev Requires the channel to have pulled exactly what was approved (no standing allowance).
    @param channel The PaymentChannel contract.
    """
    assert staticcall token.allowance(self, channel) == 0, "agent_wallet: channel left an allowance"
