"""Every op of the exact runtime; importing this package registers them all in ``OPS``."""

from . import linear

__all__ = ["linear"]
