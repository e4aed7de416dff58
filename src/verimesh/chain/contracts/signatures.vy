# pragma version ~=0.4.3
"""
@title Signature checks for accounts and contract wallets (ECDSA + EIP-1271)
@notice A stateless module: `_recover` returns the account that made a 65-byte ECDSA
        signature `r || s || v` of a digest (or the zero address), and `_is_valid` says
        whether a signature is `signer`'s: by `ecrecover` when `signer` has no code, by
        the EIP-1271 call `signer.isValidSignature(digest, signature)` when it is a
        contract (an AgentWallet, a multisig). PaymentChannel uses it for vouchers and
        AgentWallet for its own EIP-1271 answer, so both read signatures the same way.
@custom:security
        - High-s signatures (the malleable twin of a valid one, EIP-2) and a v other than
          27/28 are refused, and the zero address that `ecrecover` returns for garbage
          never matches anyone.
        - The EIP-1271 call is a static call with a bounded return size and no revert
          propagation: a wallet that reverts, returns garbage or returns another value
          than the magic 0x1626ba7e is a "no", never a "yes" and never a stuck caller.
"""

# The value an EIP-1271 wallet returns for a valid signature: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
MAGIC_VALUE: constant(bytes4) = 0x1626ba7e
# Longest signature handed to a contract wallet (ECDSA needs 65; room for multisig-style blobs).
MAX_SIGNATURE_BYTES: constant(uint256) = 256
# secp256k1 order / 2: a larger s is the malleable twin of another signature (EIP-2).
_MAX_S: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[MAX_SIGNATURE_BYTES]) -> address:
    """
    @dev The account whose key made `signature` over `digest`.
    @param digest The 32-byte hash that was signed (an EIP-712 digest).
    @param signature 65 bytes r || s || v with v in {27, 28} and low s.
    @return The signer, or the zero address for any malformed or malleable signature.
    """
    if len(signature) != 65:
        return empty(address)
    r: bytes32 = extract32(signature, 0)
    s: bytes32 = extract32(signature, 32)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v != 27 and v != 28:
        return empty(address)
    if convert(s, uint256) > _MAX_S:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@view
def _is_valid(signer: address, digest: bytes32, signature: Bytes[MAX_SIGNATURE_BYTES]) -> bool:
    """
    @dev Whether `signature` is `signer`'s signature of `digest`, for accounts and contracts.
    @param signer The account or contract wallet that must have signed.
    @param digest The 32-byte hash that was signed.
    @param signature ECDSA bytes for an account; whatever the wallet expects for a contract.
    @return True only for a valid signature; never reverts.
    """
    if signer == empty(address):
        return False
    if not signer.is_contract:
        return self._recover(digest, signature) == signer
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        signer,
        abi_encode(digest, signature, method_id=method_id("isValidSignature(bytes32,bytes)")),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not success or len(response) != 32:
        return False
    return convert(slice(response, 0, 4), bytes4) == MAGIC_VALUE
