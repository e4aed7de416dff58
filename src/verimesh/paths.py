"""Where a user's verimesh state lives: one answer for every part of the package.

Wallets, models, blobs, compiled contracts, the devnet and nodes all live under
``$VERIMESH_HOME`` (default ``~/.verimesh``), so one variable moves or isolates all of it
(tests point it at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "VERIMESH_HOME"


def verimesh_home() -> Path:
    """``$VERIMESH_HOME`` or ``~/.verimesh``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".verimesh").expanduser()
