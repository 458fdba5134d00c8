from __future__ import annotations

from pathlib import Path

import pytest

from tests.safety.policy._policies import BASE


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """A policies directory: the base policy and an empty tenants directory."""
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "tenants").mkdir()
    return tmp_path
