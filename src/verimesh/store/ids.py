"""Blob ids at process boundaries: 32-byte roots shown as ``0x`` + 64 lowercase hex digits.

Inside Python a root is ``bytes``; JSON, URLs and logs use the hex form. Every function of
the store accepts either, so callers never convert by hand.
"""

from __future__ import annotations

import re

from verimesh.crypto.merkle import HASH_SIZE
from verimesh.store.errors import MalformedRootError

_HEX_ROOT = re.compile(r"0x[0-9a-fA-F]{64}")

Root = bytes | str


def parse_root(root: Root) -> bytes:
    """Root as 32 bytes; accepts bytes or ``0x``-prefixed hex (either case)."""
    if isinstance(root, bytes | bytearray):
        if len(root) != HASH_SIZE:
            raise MalformedRootError(
                f"a blob root is {HASH_SIZE} bytes, got {len(root)}; pass the value of blob_root()"
            )
        return bytes(root)
    if isinstance(root, str) and _HEX_ROOT.fullmatch(root):
        return bytes.fromhex(root[2:])
    shown = repr(root) if len(repr(root)) <= 80 else repr(root)[:77] + "..."
    raise MalformedRootError(
        f"malformed blob root {shown}: expected '0x' followed by 64 hex digits"
    )


def format_root(root: Root) -> str:
    """Canonical text form: ``0x`` + 64 lowercase hex digits."""
    return "0x" + parse_root(root).hex()
