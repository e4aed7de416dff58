"""Where a user's verimesh state lives: one answer for every part of the package.

Wallets, models, blobs, compiled contracts, the devnet and nodes all live under
``$VERIMESH_HOME`` (default ``~/.verimesh``), so one variable moves or isolates all of it
(tests point it at a temporary folder). Compiled contracts alone may live elsewhere
(``$VERIMESH_ARTIFACTS``): they are a pure function of the sources and the compiler.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "VERIMESH_HOME"
ARTIFACTS_ENV = "VERIMESH_ARTIFACTS"


def verimesh_home() -> Path:
    """``$VERIMESH_HOME`` or ``~/.verimesh``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".verimesh").expanduser()


def artifact_cache_dir() -> Path:
    """``$VERIMESH_ARTIFACTS`` or ``<home>/artifacts``: compiled contracts.

    The one piece of state that may be shared between homes: a cache file holds what one
    set of contract sources and one compiler produce and is named by their digest, so
    several homes (many nodes on one machine, a test suite's temporary homes) can point at
    one cache and compile the contracts once instead of ~30 s of vyper per home."""
    shared = os.environ.get(ARTIFACTS_ENV)
    return Path(shared).expanduser() if shared else verimesh_home() / "artifacts"
