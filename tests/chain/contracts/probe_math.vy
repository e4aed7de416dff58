# pragma version ~=0.4.3
"""Module imported by Probe.vy: proves imports resolve through the compile search path."""


@internal
@pure
def twice(x: uint256) -> uint256:
    return 2 * x
