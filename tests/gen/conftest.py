"""Fixtures for gen's tests: the real tiny model, loaded once per session.

Nothing here is mocked: the tiny pipeline is a real Stable Diffusion pipeline with random
weights (gen/_tiny.py), fast enough at 64² to run every stage in every test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gen._backend_diffusers import DiffusersBackend
from gen._tiny import build_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_backend() -> DiffusersBackend:
    return DiffusersBackend.load("tiny", device="cpu")


@pytest.fixture(scope="session")
def saved_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline written with save_pretrained, as a user's local model directory."""
    path = tmp_path_factory.mktemp("tiny-sd")
    build_tiny_pipeline().save_pretrained(path)
    return path
