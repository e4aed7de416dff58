# pragma version ~=0.4.3
"""
@title An ERC-20 whose transfers out of one chosen account answer `false`
@notice Test fixture: some real tokens signal failure by returning false. Registry and
        JobMarket must then revert ("... transfer failed") rather than book a transfer
        that never happened.
"""

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
# Transfers debiting this account move nothing and return false (empty: none fail).
fail_from: public(address)


@external
def set_fail_from(account: address):
    """
    @dev Makes every transfer out of `account` fail (empty address: none).
    @param account The account whose outgoing transfers return false.
    """
    self.fail_from = account


@external
def mint(to: address, amount: uint256):
    """
    @dev Credits tokens to anyone (test fixture).
    @param to The receiver.
    @param amount Base units.
    """
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Sets an allowance.
    @param spender The spender.
    @param amount The allowance.
    @return True.
    """
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves tokens unless failing.
    @param to The receiver.
    @param amount Base units.
    @return False when the sender is `fail_from`, else True.
    """
    if msg.sender == self.fail_from:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves tokens with an allowance unless failing.
    @param owner The debited account.
    @param to The receiver.
    @param amount Base units.
    @return False when `owner` is `fail_from`, else True.
    """
    if owner == self.fail_from:
        return False
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
