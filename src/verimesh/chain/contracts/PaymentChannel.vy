# pragma version ~=0.4.3
"""
@title verimesh PaymentChannel (unidirectional, cumulative EIP-712 vouchers)
@custom:contract-name PaymentChannel
@license Apache-2.0
@notice Pays for many requests with two or three transactions instead of one each.
        A payer (an account or an AgentWallet) opens a channel to one payee with a
        deposit in the channel's ERC-20. For every request it signs, off chain, a
        voucher `Voucher(uint256 channelId, uint256 cumulative)`: the TOTAL it owes the
        payee so far. The payee keeps only the latest voucher and may at any time
        `redeem` it (collect the part not collected yet) or `close` the channel with it
        (collect, and send the rest of the deposit back to the payer). A payer whose payee
        vanished calls `start_close`; during the challenge period anyone may still
        `redeem` a voucher, and a newer one (higher cumulative) always wins; afterwards
        `withdraw` returns the rest of the deposit to the payer.
@custom:security
        - Conservation: tokens enter only through `open` and `top_up` (transferFrom the
          payer into this contract) and leave only as `cumulative - redeemed` to the payee
          or `deposit - redeemed` to the payer when the channel settles, once. Hence
          balanceOf(this) == sum over unsettled channels of (deposit - redeemed), and no
          channel ever pays out more than its deposit.
        - A voucher is bound to this contract and chain (EIP-712 domain) and to one
          channel id; cumulative amounts make old vouchers worthless once a newer one is
          redeemed, so replaying a voucher gains nothing.
        - Signatures: an account's by `ecrecover` (low s, v 27/28), a contract wallet's by
          an EIP-1271 static call (see `signatures.vy`). A wallet that revokes a key can
          invalidate vouchers its payee did not redeem yet: payees serving contract wallets
          redeem often (docs/payments.md).
        - The payee cannot take more than the payer signed; the payer cannot take back
          what it signed for while the challenge period runs, and the challenge period is
          a bounded constructor parameter, so neither side can lock the other's money for
          ever. Checks, then effects, then the token call; the token is immutable.
"""

from ethereum.ercs import IERC20

import signatures

# Shortest and longest challenge period a deployment may choose (seconds).
_MIN_CHALLENGE_PERIOD: constant(uint256) = 60
_MAX_CHALLENGE_PERIOD: constant(uint256) = 30 * 86400

_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_VOUCHER_TYPEHASH: constant(bytes32) = keccak256("Voucher(uint256 channelId,uint256 cumulative)")
# EIP-712 domain name and version of every PaymentChannel deployment.
_NAME_HASH: constant(bytes32) = keccak256("verimesh PaymentChannel")
_VERSION_HASH: constant(bytes32) = keccak256("1")


struct Channel:
    payer: address  # signs vouchers, gets the rest back
    payee: address  # redeems vouchers
    deposit: uint256  # everything the payer put in
    redeemed: uint256  # highest cumulative voucher paid out to the payee so far
    closes_at: uint256  # 0 while open; end of the challenge period once the payer started closing
    settled: bool  # the rest went back to the payer; nothing more can move


event Opened:
    channel_id: indexed(uint256)
    payer: indexed(address)
    payee: indexed(address)
    deposit: uint256


event ToppedUp:
    channel_id: indexed(uint256)
    amount: uint256
    deposit: uint256


event Redeemed:
    channel_id: indexed(uint256)
    cumulative: uint256
    amount: uint256


event CloseStarted:
    channel_id: indexed(uint256)
    closes_at: uint256


event Settled:
    channel_id: indexed(uint256)
    paid: uint256
    refunded: uint256


token: public(immutable(IERC20))
challenge_period: public(immutable(uint256))
channels: public(HashMap[uint256, Channel])
# Number of channels opened so far; ids are 1..channel_count.
channel_count: public(uint256)

_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


@deploy
def __init__(token_: IERC20, challenge_period_: uint256):
    """
    @dev Fixes the token and the challenge period for every channel of this deployment.
    @param token_ The ERC-20 all channels are paid in.
    @param challenge_period_ Seconds a payee has to redeem after the payer started closing.
    """
    assert token_.address != empty(address), "payment_channel: token is the zero address"
    assert challenge_period_ >= _MIN_CHALLENGE_PERIOD, "payment_channel: challenge period too short"
    assert challenge_period_ <= _MAX_CHALLENGE_PERIOD, "payment_channel: challenge period too long"
    token = token_
    challenge_period = challenge_period_
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = self._compute_domain_separator()


@external
def open(payee: address, amount: uint256) -> uint256:
    """
    @dev Opens a channel from the caller to `payee`, pulling `amount` tokens (approve first).
    @param payee Who may redeem the caller's vouchers.
    @param amount The deposit; vouchers can never exceed the deposit.
    @return The new channel id.
    """
    assert payee != empty(address), "payment_channel: payee is the zero address"
    assert payee != msg.sender, "payment_channel: payee is the payer"
    assert amount > 0, "payment_channel: zero deposit"
    channel_id: uint256 = self.channel_count + 1
    self.channel_count = channel_id
    self.channels[channel_id] = Channel(
        payer=msg.sender, payee=payee, deposit=amount, redeemed=0, closes_at=0, settled=False
    )
    log Opened(channel_id=channel_id, payer=msg.sender, payee=payee, deposit=amount)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), (
        "payment_channel: token transfer failed"
    )
    return channel_id


@external
def top_up(channel_id: uint256, amount: uint256):
    """
    @dev Adds `amount` to an open channel's deposit; payer only, not while closing.
    @param channel_id The channel.
    @param amount Tokens to pull from the payer.
    """
    channel: Channel = self._existing(channel_id)
    assert msg.sender == channel.payer, "payment_channel: caller is not the payer"
    assert channel.closes_at == 0, "payment_channel: channel is closing"
    assert amount > 0, "payment_channel: zero amount"
    deposit: uint256 = channel.deposit + amount
    self.channels[channel_id].deposit = deposit
    log ToppedUp(channel_id=channel_id, amount=amount, deposit=deposit)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), (
        "payment_channel: token transfer failed"
    )


@external
def redeem(channel_id: uint256, cumulative: uint256, signature: Bytes[signatures.MAX_SIGNATURE_BYTES]):
    """
    @dev Pays the payee `cumulative - redeemed` for a newer voucher; the channel stays open.
         Anyone may submit (the money only goes to the payee), also during the challenge
         period, so a newer voucher always beats an older one.
    @param channel_id The channel the voucher was signed for.
    @param cumulative Total owed to the payee according to the voucher.
    @param signature The payer's signature of the voucher (ECDSA or EIP-1271).
    """
    channel: Channel = self._existing(channel_id)
    assert channel.closes_at == 0 or block.timestamp <= channel.closes_at, (
        "payment_channel: challenge period over"
    )
    self._redeem(channel_id, channel, cumulative, signature)


@external
def close(channel_id: uint256, cumulative: uint256, signature: Bytes[signatures.MAX_SIGNATURE_BYTES]):
    """
    @dev The payee settles at once: redeems the voucher if it is newer than what was
         redeemed (an older or empty one is ignored) and returns the rest to the payer.
    @param channel_id The channel.
    @param cumulative The latest voucher's cumulative amount (0: no voucher).
    @param signature The payer's signature of that voucher (empty with cumulative 0).
    """
    channel: Channel = self._existing(channel_id)
    assert msg.sender == channel.payee, "payment_channel: caller is not the payee"
    assert channel.closes_at == 0 or block.timestamp <= channel.closes_at, (
        "payment_channel: challenge period over"
    )
    if cumulative > channel.redeemed:
        self._redeem(channel_id, channel, cumulative, signature)
        channel.redeemed = cumulative
    self._settle(channel_id, channel)


@external
def start_close(channel_id: uint256):
    """
    @dev The payer starts a unilateral close: the payee has `challenge_period` seconds to
         redeem its latest voucher, then `withdraw` returns the rest to the payer.
    @param channel_id The channel.
    """
    channel: Channel = self._existing(channel_id)
    assert msg.sender == channel.payer, "payment_channel: caller is not the payer"
    assert channel.closes_at == 0, "payment_channel: channel is closing"
    closes_at: uint256 = block.timestamp + challenge_period
    self.channels[channel_id].closes_at = closes_at
    log CloseStarted(channel_id=channel_id, closes_at=closes_at)


@external
def withdraw(channel_id: uint256):
    """
    @dev After the challenge period, returns `deposit - redeemed` to the payer and settles
         the channel. Anyone may call it (the money only goes to the payer).
    @param channel_id The channel.
    """
    channel: Channel = self._existing(channel_id)
    assert channel.closes_at != 0, "payment_channel: close not started"
    assert block.timestamp > channel.closes_at, "payment_channel: challenge period not over"
    self._settle(channel_id, channel)


@external
@view
def payee_of(channel_id: uint256) -> address:
    """
    @dev The payee of a channel (zero for an unknown id): what an AgentWallet checks
         against its session key's allowed counterparties before a top-up.
    @param channel_id The channel.
    @return The payee's address.
    """
    return self.channels[channel_id].payee


@external
@view
def voucher_digest(channel_id: uint256, cumulative: uint256) -> bytes32:
    """
    @dev The EIP-712 digest a payer signs for a voucher (what EIP-1271 wallets receive).
    @param channel_id The channel.
    @param cumulative Total owed to the payee.
    @return keccak256(0x1901 || domain separator || hashStruct(Voucher)).
    """
    return self._voucher_digest(channel_id, cumulative)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev The EIP-712 domain separator (name "verimesh PaymentChannel", version "1").
    @return The separator for the current chain id.
    """
    return self._domain_separator()


@internal
@view
def _existing(channel_id: uint256) -> Channel:
    """
    @dev Loads a channel that exists and is not settled.
    @param channel_id The channel.
    @return A memory copy of the channel.
    """
    channel: Channel = self.channels[channel_id]
    assert channel.payer != empty(address), "payment_channel: unknown channel"
    assert not channel.settled, "payment_channel: channel settled"
    return channel


@internal
def _redeem(
    channel_id: uint256, channel: Channel, cumulative: uint256, signature: Bytes[signatures.MAX_SIGNATURE_BYTES]
):
    """
    @dev Checks a voucher and pays the payee the part not paid yet.
    @param channel_id The channel.
    @param channel Its current state (memory copy).
    @param cumulative The voucher's total.
    @param signature The payer's signature of the voucher.
    """
    assert cumulative > channel.redeemed, "payment_channel: voucher not newer than redeemed"
    assert cumulative <= channel.deposit, "payment_channel: voucher exceeds deposit"
    digest: bytes32 = self._voucher_digest(channel_id, cumulative)
    assert signatures._is_valid(channel.payer, digest, signature), (
        "payment_channel: invalid voucher signature"
    )
    amount: uint256 = cumulative - channel.redeemed
    self.channels[channel_id].redeemed = cumulative
    log Redeemed(channel_id=channel_id, cumulative=cumulative, amount=amount)
    assert extcall token.transfer(channel.payee, amount, default_return_value=True), (
        "payment_channel: token transfer failed"
    )


@internal
def _settle(channel_id: uint256, channel: Channel):
    """
    @dev Returns `deposit - redeemed` to the payer and marks the channel settled.
    @param channel_id The channel.
    @param channel Its state after any final redeem (memory copy).
    """
    refund: uint256 = channel.deposit - channel.redeemed
    self.channels[channel_id].settled = True
    log Settled(channel_id=channel_id, paid=channel.redeemed, refunded=refund)
    if refund > 0:
        assert extcall token.transfer(channel.payer, refund, default_return_value=True), (
            "payment_channel: token transfer failed"
        )


@internal
@view
def _voucher_digest(channel_id: uint256, cumulative: uint256) -> bytes32:
    """
    @dev EIP-712 digest of `Voucher(channelId, cumulative)` in this contract's domain.
    @param channel_id The channel.
    @param cumulative The voucher's total.
    @return The digest to sign.
    """
    struct_hash: bytes32 = keccak256(abi_encode(_VOUCHER_TYPEHASH, channel_id, cumulative))
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev The domain separator, cached unless the chain id changed since deployment (fork).
    @return The separator for `chain.id`.
    """
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._compute_domain_separator()


@internal
@view
def _compute_domain_separator() -> bytes32:
    """
    @dev hashStruct(EIP712Domain) for this contract on the current chain.
    @return The separator.
    """
    return keccak256(abi_encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, chain.id, self))
