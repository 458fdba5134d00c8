"""Database engines: SQLite embedded, PostgreSQL at scale, configured the same way everywhere.

Every table genseal keeps (manifests, audit log, tenants, jobs, webhook deliveries) lives in
the database named by one URL; each component opens its engine through ``make_engine``.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from genseal.errors import StoreError

__all__ = ["Tables", "display_url", "make_engine"]

_BUSY_TIMEOUT_MS = 10_000

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def display_url(url: str) -> str:
    """The URL with its password hidden, for messages; StoreError if it is not a URL."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
    else:
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if in_memory:
            # One shared connection, or every session would see its own empty database.
            engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas(in_memory))
    _engines.add(engine)
    return engine


def _sqlite_pragmas(in_memory: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # Readers (verify) never wait for the writer (seal) and vice versa.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    return on_connect


def _dispose_inherited_pools() -> None:
    # Pooled connections inherited from the parent must never be used by the child
    # (SQLAlchemy's documented recipe: dispose without closing the parent's sockets).
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_inherited_pools)


class Tables:
    """An engine with a set of tables created, and transactions that fail as StoreError."""

    def __init__(self, url: str, metadata: MetaData, what: str) -> None:
        self.display = display_url(url)
        try:
            self.engine = make_engine(url)
            metadata.create_all(self.engine)
        except ImportError as exc:
            raise StoreError(
                f"cannot open the {what} at {self.display}: its database driver is not "
                f"installed ({exc})",
                hint="for PostgreSQL install genseal[scale]",
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open the {what} at {self.display}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self, doing: str) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"the database at {self.display} failed to {doing}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()
