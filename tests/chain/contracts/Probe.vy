# pragma version ~=0.4.3
"""
@title Probe
@notice Test-only contract exercising every ABI shape the chain layer must handle:
        constructor args, structs, dynamic arrays, strings, indexed and plain event fields,
        revert strings, value transfers and block.timestamp.
"""
import probe_math

struct Entry:
    owner: address
    value: uint256
    note: String[64]

event Stored:
    key: indexed(uint256)
    owner: indexed(address)
    value: uint256
    note: String[64]

owner: public(address)
entries: public(HashMap[uint256, Entry])
keys: DynArray[uint256, 16]
deadline: public(uint256)


@deploy
def __init__(window: uint256):
    self.owner = msg.sender
    self.deadline = block.timestamp + window


@external
def store(key: uint256, amount: uint256, note: String[64]):
    assert amount > 0, "probe: value must be positive"
    assert block.timestamp <= self.deadline, "probe: deadline passed"
    self.entries[key] = Entry(owner=msg.sender, value=amount, note=note)
    self.keys.append(key)
    log Stored(key=key, owner=msg.sender, value=amount, note=note)


@external
@payable
def deposit() -> uint256:
    return msg.value


@external
@view
def entry(key: uint256) -> Entry:
    return self.entries[key]


@external
@view
def all_keys() -> DynArray[uint256, 16]:
    return self.keys


@external
@pure
def doubled(x: uint256) -> uint256:
    return probe_math.twice(x)
