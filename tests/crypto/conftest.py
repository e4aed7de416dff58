"""Wallet tests write real keystores into a temporary VERIMESH_HOME with the fast test KDF."""

from __future__ import annotations

import pytest


@pytest.fixture
def verimesh_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("VERIMESH_HOME", str(home))
    monkeypatch.setenv("VERIMESH_INSECURE_FAST_KDF", "1")
    monkeypatch.delenv("VERIMESH_PASSWORD", raising=False)
    monkeypatch.delenv("VERIMESH_PRIVATE_KEY", raising=False)
    return home
