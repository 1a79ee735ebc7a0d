# pragma version 0.4.3
"""
@title Token
@notice Minimal ERC-20 used by the end-to-end suite. The whole supply is
        minted to the deployer so a test can move it around without a mint
        function (and without an owner role to get wrong).
@dev Failure paths use `assert ..., "reason"` rather than relying on
     uint256 underflow, so a revert carries an Error(string) the tests can
     match in eth_call / eth_estimateGas responses.
"""

from ethereum.ercs import IERC20

# Lets the compiler check the external ABI against the standard.
implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(_name: String[32], _symbol: String[8], _decimals: uint8, _supply: uint256):
    self.name = _name
    self.symbol = _symbol
    self.decimals = _decimals
    self.totalSupply = _supply
    self.balanceOf[msg.sender] = _supply
    # ERC-20 asks for a Transfer from the zero address on mint.
    log Transfer(sender=empty(address), receiver=msg.sender, value=_supply)


@internal
def _transfer(_from: address, _to: address, _value: uint256):
    assert _to != empty(address), "transfer to the zero address"
    assert self.balanceOf[_from] >= _value, "insufficient balance"
    self.balanceOf[_from] -= _value
    self.balanceOf[_to] += _value
    log Transfer(sender=_from, receiver=_to, value=_value)


@external
def transfer(_to: address, _value: uint256) -> bool:
    self._transfer(msg.sender, _to, _value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    self.allowance[msg.sender][_spender] = _value
    log Approval(owner=msg.sender, spender=_spender, value=_value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    assert self.allowance[_from][msg.sender] >= _value, "insufficient allowance"
    self.allowance[_from][msg.sender] -= _value
    self._transfer(_from, _to, _value)
    return True
