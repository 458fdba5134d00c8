"""Sealed images served by URL (``response_format: "url"``), for a limited time.

Like the OpenAI Images API, a URL works without an API key until it expires (an hour by
default): it is a capability, signed with HMAC-SHA256 over (image id, tenant, expiry) with a
key only this deployment holds. Only sealed images are kept — watermarked and signed, exactly
the bytes that would have been returned inline — and they are deleted once expired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlencode

import structlog
from sqlalchemy import DateTime, LargeBinary, MetaData, String, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from genseal.db import Database, Tables
from genseal.errors import NotFoundError

__all__ = ["ImageFiles", "load_secret"]

log = structlog.get_logger("genseal.files")


class _Base(DeclarativeBase):
    pass


class _FileRow(_Base):
    __tablename__ = "genseal_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(128))
    mime: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


def load_secret(home: Path, name: str) -> bytes:
    """A random key kept in ``home/keys/<name>`` (made once, mode 0600)."""
    path = home / "keys" / name
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex())
    return key


class ImageFiles:
    """Sealed images kept for their signed URLs (``response_format=url``) until they expire."""

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(
        self, database: Database | str, key: bytes, ttl_seconds: int, *, auto_upgrade: bool = True
    ) -> None:
        self._tables = Tables(database, "image files table", auto_upgrade=auto_upgrade)
        self._key = key
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def close(self) -> None:
        self.stop_sweeping()
        self._tables.close()

    def purge_expired(self) -> int:
        """Delete the bytes of every expired URL; how many images went."""
        now = dt.datetime.now(dt.UTC)
        with self._tables.transaction("delete expired image files") as session:
            gone = session.execute(delete(_FileRow).where(_FileRow.expires_at < now))
        return int(gone.rowcount)  # type: ignore[attr-defined]

    def start_sweeping(self, interval_seconds: float | None = None) -> None:
        """Purge expired images every ``interval_seconds`` (default: a quarter of the URL
        lifetime, between 10 s and 10 min) in a daemon thread, so that bytes do not outlive
        their URLs on a server that publishes nothing new."""
        if self._sweeper is not None:
            return
        interval = interval_seconds or min(max(self._ttl.total_seconds() / 4, 10.0), 600.0)
        self._stop.clear()

        def sweep() -> None:
            while not self._stop.wait(interval):
                try:
                    self.purge_expired()
                except Exception as exc:  # a database hiccup: the next round tries again
                    log.warning("cannot purge expired image files", error=str(exc))

        self._sweeper = threading.Thread(target=sweep, name="genseal-files-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeping(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None

    def publish(self, image_id: str, tenant: str | None, mime: str, data: bytes, base: str) -> str:
        """Keep the sealed bytes and return the URL that serves them until it expires."""
        now = dt.datetime.now(dt.UTC)
        expires = now + self._ttl
        with self._tables.transaction("keep the image for its URL") as session:
            session.execute(delete(_FileRow).where(_FileRow.expires_at < now))
            session.merge(
                _FileRow(id=image_id, scope=tenant or "", mime=mime, data=data, expires_at=expires)
            )
        expiry = int(expires.timestamp())
        query = urlencode(
            {"expires": expiry, "signature": self._sign(image_id, tenant or "", expiry)}
        )
        return f"{base.rstrip('/')}/v1/files/{image_id}?{query}"

    def open(self, image_id: str, expires: int, signature: str) -> tuple[bytes, str]:
        """(bytes, mime) when the signature holds and the URL has not expired."""
        missing = NotFoundError(f"no image {image_id} (or its URL expired)")
        if expires < dt.datetime.now(dt.UTC).timestamp():
            raise missing
        with self._tables.transaction("read the image") as session:
            row = session.get(_FileRow, image_id)
            # As bytes: compare_digest refuses non-ASCII str, and a URL may carry anything.
            if row is None or not hmac.compare_digest(
                signature.encode(), self._sign(image_id, row.scope, expires).encode()
            ):
                raise missing
            return row.data, row.mime

    def _sign(self, image_id: str, scope: str, expires: int) -> str:
        message = f"{image_id}\n{scope}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
