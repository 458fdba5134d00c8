"""Fixtures shared by every test package: a private genseal home and real photographs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._media import photo


@pytest.fixture
def genseal_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GENSEAL_HOME per test: its own identity, manifest store and audit log."""
    home = tmp_path / "home"
    monkeypatch.setenv("GENSEAL_HOME", str(home))
    for name in ("GENSEAL_POLICY", "GENSEAL_MODEL", "GENSEAL_DATABASE_URL", "GENSEAL_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SIGNING_CERT", "SIGNING_KEY", "SIGNING_ROOT", "SIGNER_PLUGIN", "TSA_URL"):
        monkeypatch.delenv(f"GENSEAL_{name}", raising=False)
    return home


@pytest.fixture
def astronaut_png(tmp_path: Path) -> Path:
    path = tmp_path / "astronaut.png"
    path.write_bytes(photo("astronaut"))
    return path
