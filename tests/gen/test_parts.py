"""The composition root: every part from settings, on one database engine, and seams that take
a test's own part in place of the one it would make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import genseal.db
from api.http import create_app
from gen import SealedGenerationService, build_parts
from genseal.settings import Settings
from provenance import DwtDctSvdWatermarker


def test_the_service_and_the_app_share_one_engine(tmp_path: Path) -> None:
    before = set(genseal.db._engines)
    settings = Settings(home=tmp_path / "home")
    service = SealedGenerationService(settings)
    create_app(service)
    opened = set(genseal.db._engines) - before
    assert opened == {service.parts.database.engine}
    service.close()


def test_a_part_handed_in_is_the_part_used(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    mark = DwtDctSvdWatermarker()
    backend: Any = object()
    parts = build_parts(settings, watermarkers=[mark], backend_loader=lambda spec: backend)
    service = SealedGenerationService(settings, parts)
    assert service.sealer.watermarker is mark and service.watermarker is mark
    assert service.sealer.fallbacks == []
    assert service.backend("anything") is backend
    service.close()
