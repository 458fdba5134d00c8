"""The docs site: the generated reference pages match the code they come from."""

from __future__ import annotations

import runpy
from pathlib import Path

GENERATE = Path(__file__).resolve().parents[1] / "docs" / "generate.py"


def test_the_generated_reference_pages_are_fresh() -> None:
    generate = runpy.run_path(str(GENERATE))
    assert generate["stale"]() == [], "run `python docs/generate.py` and commit the pages"


def test_every_setting_is_documented_with_a_meaning() -> None:
    from genseal.settings import Settings, reference_markdown

    page = reference_markdown()
    for name, field in Settings.model_fields.items():
        assert field.description, f"GENSEAL_{name.upper()} has no description"
        assert f"`GENSEAL_{name.upper()}`" in page
