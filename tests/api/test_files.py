"""Sealed images kept for their signed URLs: their bytes go once the URL expires, whether or not
anything new is published."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from api._files import ImageFiles
from genseal.errors import NotFoundError


def test_expired_images_are_purged_on_schedule(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'genseal.db'}"
    files = ImageFiles(url, b"k" * 32, ttl_seconds=1)
    engine = create_engine(url)

    def kept() -> int:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM genseal_files")).scalar_one())

    try:
        published = files.publish("img_1", "acme", "image/png", b"sealed bytes", "http://test/")
        expires = int(published.split("expires=")[1].split("&")[0])
        signature = published.split("signature=")[1]
        assert files.open("img_1", expires, signature) == (b"sealed bytes", "image/png")
        assert files.purge_expired() == 0 and kept() == 1  # still valid
        files.start_sweeping(interval_seconds=0.1)
        deadline = time.monotonic() + 10
        while kept() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kept() == 0  # the sweeper took it, nothing new was published
    finally:
        files.close()
        engine.dispose()


def test_a_signature_of_any_characters_is_just_wrong(tmp_path: Path) -> None:
    files = ImageFiles(f"sqlite:///{tmp_path / 'genseal.db'}", b"k" * 32, ttl_seconds=60)
    try:
        published = files.publish("img_1", "acme", "image/png", b"sealed", "http://test/")
        expires = int(published.split("expires=")[1].split("&")[0])
        for forged in ("é" * 64, "\x00", "", "0" * 64):
            with pytest.raises(NotFoundError):
                files.open("img_1", expires, forged)
    finally:
        files.close()
