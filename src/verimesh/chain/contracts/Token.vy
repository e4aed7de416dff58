# pragma version ~=0.4.3
"""
@title verimesh Token (ERC-20 with EIP-2612 permit)
@custom:contract-name Token
@license Apache-2.0
@notice The unit of account of verimesh: requesters escrow it in JobMarket, providers and
        validators stake it in Registry. On a devnet it is the mintable test token "VMT";
        on a real chain any ERC-20 (e.g. a stablecoin) can take its place, because
        Registry and JobMarket only use `transfer`, `transferFrom` and `balanceOf`.
        EIP-2612 `permit` lets a holder approve by signature, so an agent with tokens but
        no ether can still have a relayer move its allowance.
@custom:security
        - Conservation: tokens only appear through `mint` (minter only, raises
          `totalSupply` by the same amount) and only disappear through `burn` (lowers
          it by the same amount); `transfer`/`transferFrom` move a balance from exactly
          one holder to exactly one other. Hence sum(balanceOf) == totalSupply always.
        - Arithmetic is checked (Vyper reverts on under/overflow), so a transfer above a
          balance or allowance reverts before any state changes.
        - Permit signatures are bound to this contract, this chain id, the owner's
          current nonce and a deadline; the nonce is consumed before the approval, so a
          signature works once. High-s (malleable) signatures and the zero address that
          `ecrecover` returns for garbage are rejected.
        - The domain separator is recomputed if the chain id changes (fork), so a
          signature for one chain never works on another.
        - An allowance of max_value(uint256) is treated as infinite and not decreased
          (saves a storage write per `transferFrom`, as in OpenZeppelin and snekmate).
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

# EIP-712 type hashes (EIP-2612 fixes the Permit struct).
_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_PERMIT_TYPEHASH: constant(bytes32) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
# EIP-712 domain version of this token.
_VERSION_HASH: constant(bytes32) = keccak256("1")
# secp256k1 order / 2: a signature with a larger s is the malleable twin of another (EIP-2).
# (0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)
_MAX_S: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)
# Longest token name and symbol this contract stores.
_MAX_NAME: constant(uint256) = 64
_MAX_SYMBOL: constant(uint256) = 32

name: public(immutable(String[_MAX_NAME]))
symbol: public(immutable(String[_MAX_SYMBOL]))
decimals: public(immutable(uint8))

totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
# EIP-2612 permit nonce per owner.
nonces: public(HashMap[address, uint256])
# The only account that may mint.
minter: public(address)

_NAME_HASH: immutable(bytes32)
_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


event MinterChanged:
    previous_minter: indexed(address)
    new_minter: indexed(address)


@deploy
def __init__(
    name_: String[_MAX_NAME], symbol_: String[_MAX_SYMBOL], decimals_: uint8, minter_: address
):
    """
    @dev Sets the immutable metadata and the minter; no tokens exist yet.
    @param name_ Token name, also the EIP-712 domain name.
    @param symbol_ Token symbol, e.g. "VMT".
    @param decimals_ Number of decimals (18 for VMT).
    @param minter_ The account allowed to mint (the devnet deployer).
    """
    assert minter_ != empty(address), "token: minter is the zero address"
    name = name_
    symbol = symbol_
    decimals = decimals_
    self.minter = minter_
    _NAME_HASH = keccak256(name_)
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = keccak256(
        abi_encode(_DOMAIN_TYPEHASH, keccak256(name_), _VERSION_HASH, chain.id, self)
    )
    log MinterChanged(previous_minter=empty(address), new_minter=minter_)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from the caller to `to`.
    @param to The receiver; not the zero address (use `burn`).
    @param amount Base units to move.
    @return True (reverts on failure, never returns False).
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from `owner` to `to` using the caller's allowance.
    @param owner The account whose tokens move.
    @param to The receiver; not the zero address.
    @param amount Base units to move.
    @return True (reverts on failure).
    """
    self._spend_allowance(owner, msg.sender, amount)
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Sets the caller's allowance for `spender` to `amount` (not additive).
    @param spender The account allowed to spend.
    @param amount The new allowance; max_value(uint256) means unlimited.
    @return True.
    """
    self._approve(msg.sender, spender, amount)
    return True


@external
def permit(
    owner: address,
    spender: address,
    amount: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev EIP-2612: sets `owner`'s allowance for `spender` from an EIP-712 signature.
    @param owner The signer whose allowance is set.
    @param spender The account allowed to spend.
    @param amount The new allowance.
    @param deadline Last timestamp (inclusive) at which the signature is valid.
    @param v Signature recovery id (27 or 28).
    @param r Signature r.
    @param s Signature s (lower half of the curve order).
    """
    assert block.timestamp <= deadline, "token: permit expired"
    assert convert(s, uint256) <= _MAX_S, "token: malleable signature"
    nonce: uint256 = self.nonces[owner]
    struct_hash: bytes32 = keccak256(
        abi_encode(_PERMIT_TYPEHASH, owner, spender, amount, nonce, deadline)
    )
    digest: bytes32 = keccak256(concat(x"1901", self._domain_separator(), struct_hash))
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address) and signer == owner, "token: invalid permit signature"
    self.nonces[owner] = nonce + 1
    self._approve(owner, spender, amount)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev The EIP-712 domain separator of this token on the current chain.
    @return keccak256 of the encoded domain (name, version "1", chain id, this address).
    """
    return self._domain_separator()


@external
def mint(to: address, amount: uint256):
    """
    @dev Creates `amount` new tokens for `to`; only the minter.
    @param to The receiver; not the zero address.
    @param amount Base units to create.
    """
    assert msg.sender == self.minter, "token: caller is not the minter"
    assert to != empty(address), "token: mint to the zero address"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@external
def burn(amount: uint256):
    """
    @dev Destroys `amount` of the caller's tokens.
    @param amount Base units to destroy; at most the caller's balance.
    """
    balance: uint256 = self.balanceOf[msg.sender]
    assert balance >= amount, "token: burn amount exceeds balance"
    self.balanceOf[msg.sender] = balance - amount
    self.totalSupply -= amount
    log IERC20.Transfer(sender=msg.sender, receiver=empty(address), value=amount)


@external
def set_minter(new_minter: address):
    """
    @dev Hands the mint right to another account; only the current minter.
    @param new_minter The next minter; not the zero address.
    """
    assert msg.sender == self.minter, "token: caller is not the minter"
    assert new_minter != empty(address), "token: minter is the zero address"
    log MinterChanged(previous_minter=self.minter, new_minter=new_minter)
    self.minter = new_minter


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves a balance; the single place where balances change hands.
    @param owner The debited account.
    @param to The credited account; not the zero address.
    @param amount Base units to move.
    """
    assert to != empty(address), "token: transfer to the zero address"
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "token: transfer amount exceeds balance"
    self.balanceOf[owner] = balance - amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    """
    @dev Sets an allowance and logs it.
    @param owner The account whose tokens may be spent.
    @param spender The account allowed to spend; not the zero address.
    @param amount The new allowance.
    """
    assert spender != empty(address), "token: approve to the zero address"
    self.allowance[owner][spender] = amount
    log IERC20.Approval(owner=owner, spender=spender, value=amount)


@internal
def _spend_allowance(owner: address, spender: address, amount: uint256):
    """
    @dev Lowers `spender`'s allowance over `owner` by `amount`; unlimited stays unlimited.
    @param owner The account whose tokens move.
    @param spender The account moving them.
    @param amount Base units to spend.
    """
    current: uint256 = self.allowance[owner][spender]
    if current == max_value(uint256):
        return
    assert current >= amount, "token: insufficient allowance"
    self.allowance[owner][spender] = current - amount
    log IERC20.Approval(owner=owner, spender=spender, value=current - amount)


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev The EIP-712 domain separator; cached unless the chain id changed since deploy.
    @return The domain separator for `chain.id`.
    """
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return keccak256(abi_encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, chain.id, self))
