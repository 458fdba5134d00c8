from __future__ import annotations

import pytest

from safety import OpenNsfwCheck


@pytest.fixture(scope="session")
def nsfw_check() -> OpenNsfwCheck:
    """The real open_nsfw model, loaded once for the whole session."""
    check = OpenNsfwCheck()
    check.load()
    return check
