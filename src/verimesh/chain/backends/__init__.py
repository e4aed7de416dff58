"""Where transactions run: in-process (titanoboa) or on any JSON-RPC node (web3.py)."""

from verimesh.chain.backends.base import Backend, Receipt

__all__ = ["Backend", "Receipt"]
