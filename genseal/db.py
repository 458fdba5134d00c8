"""Database engines and schema: SQLite embedded, PostgreSQL at scale, migrated by Alembic.

Every table genseal keeps (manifests, audit log, tenants, jobs, webhook deliveries, image
files, bias counts, the protected-identity registry) lives in the database named by one URL;
each component opens its engine through ``make_engine``.

The schema is one Alembic revision chain (``genseal.migrations``, configured here in code: no
``alembic.ini``). A component that opens the database calls ``ensure_schema``, which upgrades a
database behind this genseal's head (the embedded default) or, with ``auto_upgrade=False``,
refuses it with a StoreError that says to run ``genseal db upgrade``. Processes that open one
database together migrate it once: the upgrade runs under ``pg_advisory_xact_lock`` on
PostgreSQL and in a ``BEGIN IMMEDIATE`` transaction on SQLite, and re-reads the revision after
taking the lock. A URL found at head is not asked again in this process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from genseal.errors import InputError, StoreError

__all__ = [
    "Database",
    "Revision",
    "Tables",
    "current",
    "differences",
    "display_url",
    "ensure_schema",
    "head",
    "history",
    "make_engine",
    "new_revision",
    "upgrade",
]

_BUSY_TIMEOUT_MS = 10_000

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()

# One lock for every genseal process migrating a PostgreSQL server ("genseal" in ASCII).
_ADVISORY_LOCK = 0x67656E7365616C
# A process waiting on SQLite for another one's upgrade waits this long (a large fingerprint
# index fill takes minutes), not the usual busy timeout.
_UPGRADE_WAIT_S = 900
# URLs found at head in this process; in-memory SQLite is never here (one database per engine).
_at_head: set[str] = set()
_at_head_lock = threading.Lock()


def display_url(url: str) -> str:
    """The URL with its password hidden, for messages; StoreError if it is not a URL."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc


def _in_memory(url: Any) -> bool:
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or database.startswith("file::memory:")
    )


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
    else:
        database = parsed.database or ""
        in_memory = _in_memory(parsed)
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


def _sqlite_pragmas(in_memory: bool, busy_ms: int = _BUSY_TIMEOUT_MS) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            if not in_memory:
                # Readers (verify) never wait for the writer (seal) and vice versa.
                _enter_wal(cursor, busy_ms)
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return on_connect


def _enter_wal(cursor: Any, busy_ms: int) -> None:
    # WAL is a property of the file, so usually it is already set. Switching needs an exclusive
    # lock and SQLite answers "database is locked" at once, without the busy handler, when
    # another process opens the same new file at that moment: retry until the busy budget ends.
    deadline = time.monotonic() + busy_ms / 1000
    pause = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()
            if mode is not None and str(mode[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def _dispose_inherited_pools() -> None:
    # Pooled connections inherited from the parent must never be used by the child
    # (SQLAlchemy's documented recipe: dispose without closing the parent's sockets).
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_inherited_pools)


# -- schema: Alembic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """One revision of genseal's schema, as ``genseal db history`` lists it."""

    revision: str
    down_revision: str | None
    message: str
    is_head: bool


def _config(
    connection: Connection | None = None, *, models: Sequence[MetaData] | None = None
) -> Any:
    """Alembic's Config, built in code: the packaged scripts, run on ``connection``; ``models``
    (every component's table metadata, handed in from the top) only for autogenerate."""
    from alembic.config import Config

    from genseal.migrations import SCRIPT_LOCATION

    config = Config()
    # configparser interpolates '%': a path holding one must double it.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = list(models) if models is not None else None
    return config


@functools.cache
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this genseal's models are at."""
    revision = _scripts().get_current_head()
    if revision is None:  # pragma: no cover - the package always ships its revisions
        raise StoreError("genseal's migrations hold no revision")
    return str(revision)


def history() -> list[Revision]:
    """Every revision, newest first."""
    scripts = _scripts()
    heads = set(scripts.get_heads())
    return [
        Revision(
            revision=str(script.revision),
            down_revision=_joined(script.down_revision),
            message=str(script.doc or ""),
            is_head=script.revision in heads,
        )
        for script in scripts.walk_revisions()
    ]


def _joined(value: Any) -> str | None:
    """A down revision as text: several (a merge) joined by commas."""
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


def _revision_of(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(connection).get_current_revision()
    return None if revision is None else str(revision)


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def open_engine(url: str, what: str = "database") -> Engine:
    """``make_engine``, its failures as StoreError naming ``what`` and the URL."""
    display = display_url(url)
    try:
        return make_engine(url)
    except ImportError as exc:
        raise StoreError(
            f"cannot open the {what} at {display}: its database driver is not installed ({exc})",
            hint="for PostgreSQL install genseal[scale]",
        ) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot open the {what} at {display}: {exc}") from exc


@contextlib.contextmanager
def _opened(url: str) -> Iterator[Engine]:
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None when no revision was applied (an
    empty database, or one made by a genseal from before migrations)."""
    with _opened(url) as engine:
        try:
            with engine.connect() as connection:
                return _revision_of(connection)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot read the schema revision of the database at {display_url(url)}: {exc}"
            ) from exc


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` to ``revision``; the revision it is at afterwards."""
    if revision not in ("head", "heads") and not _known(revision):
        raise InputError(
            f"genseal has no schema revision {revision!r}",
            hint="`genseal db history` lists them",
        )
    with _opened(url) as engine:
        _upgrade(engine, revision)
        with engine.connect() as connection:
            return _revision_of(connection)


def differences(url: str, models: Sequence[MetaData]) -> list[Any]:
    """What Alembic's autogenerate finds between the database at ``url`` and ``models`` (every
    component's table metadata, as ``compare_metadata`` gives it); empty when the database is
    exactly the models' schema."""
    with _opened(url) as engine, engine.connect() as connection:
        return _differences(connection, models)


def _differences(connection: Connection, models: Sequence[MetaData]) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from genseal.migrations import include_name

    context = MigrationContext.configure(
        connection, opts={"include_name": include_name, "compare_type": True}
    )
    # A list of MetaData is what autogenerate takes as target metadata too (typed narrower).
    target: Any = list(models)
    return list(compare_metadata(context, target))


def new_revision(
    message: str, models: Sequence[MetaData], *, autogenerate: bool = True
) -> tuple[Path, bool]:
    """Write the next revision file into ``genseal/migrations/versions`` (for developers).

    Autogenerated against a scratch SQLite database at head, so no database is needed; the
    second value says whether the models differ from head at all. Review what it wrote:
    autogenerate misses renames and data changes.
    """
    import tempfile

    from alembic import command

    latest = head()
    rev_id = f"{int(latest) + 1:04d}" if latest.isdigit() else None
    with tempfile.TemporaryDirectory(prefix="genseal-revision-") as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            _upgrade(engine, "head")
            with engine.begin() as connection:
                changed = bool(_differences(connection, models))
                script = command.revision(
                    _config(connection, models=models),
                    message=message,
                    autogenerate=autogenerate,
                    rev_id=rev_id,
                )
        finally:
            engine.dispose()
    _scripts.cache_clear()
    if script is None or isinstance(script, list):  # pragma: no cover - one head, one script
        raise StoreError("alembic wrote no single revision")
    return Path(script.path), changed


def ensure_schema(target: Engine | str, *, auto_upgrade: bool = True) -> None:
    """Make sure the database is at this genseal's head before a component uses it.

    Behind (or empty): upgraded when ``auto_upgrade``, else a StoreError naming the revisions
    and ``genseal db upgrade``. A revision this genseal does not know (a newer genseal migrated
    the database) is always a StoreError. Checked once per process per URL.
    """
    if isinstance(target, str):
        with _opened(target) as engine:
            ensure_schema(engine, auto_upgrade=auto_upgrade)
        return
    key = None if _in_memory(target.url) else target.url.render_as_string(hide_password=False)
    if key is not None and key in _at_head:
        return
    display = target.url.render_as_string(hide_password=True)
    if key is not None and _plainly_at_head(target):
        with _at_head_lock:
            _at_head.add(key)
        return
    wanted = head()
    try:
        with target.connect() as connection:
            found = _revision_of(connection)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot read the schema revision of the database at {display}: {exc}"
        ) from exc
    if found != wanted:
        if found is not None and not _known(found):
            raise StoreError(
                f"the database at {display} is at schema revision {found}, which this genseal "
                f"does not know (it needs {wanted}): a newer genseal migrated it",
                hint="upgrade genseal",
            )
        if not auto_upgrade:
            raise StoreError(
                f"the database at {display} is at schema revision "
                f"{found or 'none (empty, or from before migrations)'}; this genseal needs "
                f"{wanted}",
                hint="run `genseal db upgrade` with this database URL once, then start genseal",
            )
        _upgrade(target, "head")
    if key is not None:
        with _at_head_lock:
            _at_head.add(key)


def _plainly_at_head(engine: Engine) -> bool:
    """True when the database's one recorded revision is the newest script's, read without
    importing Alembic (a fifth of a one-off command's start). Anything else takes the full path.
    Revisions are numbered in order (``new_revision`` keeps it so); a test holds this to head().
    """
    newest = _newest_script_revision()
    if newest is None:
        return False
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False  # no version table yet, or an unreadable one: the full path says which
    return [str(row[0]) for row in rows] == [newest]


def _newest_script_revision() -> str | None:
    """The highest-numbered revision script shipped with genseal (its file name's prefix)."""
    from genseal.migrations import SCRIPT_LOCATION

    numbered = [
        path.name.split("_", 1)[0]
        for path in (SCRIPT_LOCATION / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
    ]
    return max(numbered, key=int) if numbered else None


def _upgrade(engine: Engine, revision: str) -> None:
    """Run the revisions up to ``revision`` under a lock that every genseal process takes."""
    from alembic import command
    from alembic.util import CommandError

    display = engine.url.render_as_string(hide_password=True)
    try:
        with _locked(engine) as connection:
            # Re-read under the lock: another process may have upgraded meanwhile.
            if revision == "head" and _revision_of(connection) == head():
                return
            command.upgrade(_config(connection), revision)
    except CommandError as exc:
        raise StoreError(f"cannot migrate the database at {display} to {revision}: {exc}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"migrating the database at {display} failed: {exc}") from exc


@contextlib.contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """One transaction that no other genseal process's upgrade runs beside."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        # PostgreSQL's DDL is transactional: the whole upgrade commits or none of it, and the
        # transaction-scoped lock goes with it (also when the process dies).
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            yield connection
    elif backend == "sqlite" and not _in_memory(engine.url):
        # A connection of its own whose BEGIN IMMEDIATE takes the write lock before the
        # revision is read (pysqlite would otherwise begin only at the first INSERT, and run
        # DDL outside any transaction).
        locking = create_engine(engine.url, poolclass=StaticPool)
        event.listen(locking, "connect", _sqlite_pragmas(False, _UPGRADE_WAIT_S * 1000))
        event.listen(locking, "connect", _no_implicit_begin)
        event.listen(locking, "begin", _begin_immediate)
        try:
            with locking.begin() as connection:
                yield connection
        finally:
            locking.dispose()
    else:
        with engine.begin() as connection:
            yield connection


def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One database by URL, at this genseal's schema (``ensure_schema``): one engine, so one
    connection pool, that every store of a process shares."""

    def __init__(self, url: str, *, auto_upgrade: bool = True, what: str = "database") -> None:
        self.display = display_url(url)
        self.engine = open_engine(url, what)
        try:
            ensure_schema(self.engine, auto_upgrade=auto_upgrade)
        except StoreError:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self, doing: str) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error (as StoreError)."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"the database at {self.display} failed to {doing}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()


class Tables:
    """A store's tables in a ``Database``: the shared one it is handed, or, given a URL, one of
    its own that it closes with itself (for tools that open a single store)."""

    def __init__(self, database: Database | str, what: str, *, auto_upgrade: bool = True) -> None:
        self._owned = isinstance(database, str)
        self.database = (
            Database(database, auto_upgrade=auto_upgrade, what=what)
            if isinstance(database, str)
            else database
        )
        self.display = self.database.display
        self.engine = self.database.engine
        self.transaction = self.database.transaction

    def close(self) -> None:
        if self._owned:
            self.database.close()
