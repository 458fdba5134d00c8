"""The manifest store and audit log on SQLAlchemy 2: SQLite embedded, PostgreSQL at scale.

Only portable column types are used (strings, text, binary, timestamps with time zone) so the
same schema runs on both. Tables are created on open.

The audit log is a hash chain. Appending reads the previous hash and writes the next entry, so
appends must be serialised: the first statement of every append is an UPDATE of a one-row
"head" table, which takes SQLite's write lock or PostgreSQL's row lock before anything is read.
The head also records the last hash, so removing entries from the end is detected too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from genseal.errors import StoreError

from ._fingerprint import hamming
from ._records import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    ManifestRecord,
    audit_hash,
    canonical_json,
)

__all__ = ["ManifestStore"]

_BUSY_TIMEOUT_MS = 10_000
_SCAN_BATCH = 2_000
# Alembic-free schema versioning for now: bump when a table changes shape.
SCHEMA_VERSION = 1

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


class _Base(DeclarativeBase):
    pass


class _ManifestRow(_Base):
    __tablename__ = "genseal_manifests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    manifest_label: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    manifest_store: Mapped[bytes] = mapped_column(LargeBinary)
    watermark_alg: Mapped[str] = mapped_column(String(64))
    watermark_payload: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint_alg: Mapped[str] = mapped_column(String(32))
    fingerprint_hex: Mapped[str] = mapped_column(String(128))
    mime: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)
    model_id: Mapped[str] = mapped_column(String(512))
    decision: Mapped[str] = mapped_column(String(64))


class _AuditRow(_Base):
    __tablename__ = "genseal_audit"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    event: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)
    # Canonical JSON text, not a JSON column: PostgreSQL's jsonb would re-serialise it and the
    # chain hashes exact bytes.
    decision: Mapped[str] = mapped_column(Text)
    manifest_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class _AuditHead(_Base):
    __tablename__ = "genseal_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class ManifestStore:
    """Sealed-image records and the audit chain, in one database given by URL.

    ``ManifestStore("sqlite:////path/genseal.db")`` or a ``postgresql+psycopg://`` URL.
    Safe to share between threads; after ``fork`` the child opens its own connections.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
        self._display = parsed.render_as_string(hide_password=True)
        try:
            self._engine = _make_engine(url)
            _Base.metadata.create_all(self._engine)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._ensure_head()
        except ImportError as exc:
            raise StoreError(
                f"cannot open the manifest store at {self._display}: its database driver is "
                f"not installed ({exc})",
                hint="for PostgreSQL install genseal[scale]",
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open the manifest store at {self._display}: {exc}") from exc

    @property
    def url(self) -> str:
        return self._display

    def close(self) -> None:
        self._engine.dispose()

    # -- manifests ---------------------------------------------------------------------------

    def add(self, record: ManifestRecord) -> None:
        row = _ManifestRow(**record.model_dump())
        try:
            with self._transaction("store the manifest") as session:
                session.add(row)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StoreError(
                    f"a manifest with id {record.id!r} or label {record.manifest_label!r} "
                    "is already stored"
                ) from exc.__cause__
            raise

    def get(self, id: str) -> ManifestRecord | None:
        with self._transaction("read a manifest") as session:
            row = session.get(_ManifestRow, id)
            return _record(row) if row is not None else None

    def by_label(self, label: str) -> ManifestRecord | None:
        with self._transaction("read a manifest") as session:
            row = session.scalars(
                select(_ManifestRow).where(_ManifestRow.manifest_label == label)
            ).first()
            return _record(row) if row is not None else None

    def by_watermark(self, payload: str) -> list[ManifestRecord]:
        """Every record with this watermark payload, newest first (32 bits do collide)."""
        with self._transaction("look up a watermark") as session:
            rows = session.scalars(
                select(_ManifestRow)
                .where(_ManifestRow.watermark_payload == payload.strip().lower())
                .order_by(_ManifestRow.created_at.desc())
            ).all()
            return [_record(row) for row in rows]

    def nearest(
        self, fingerprint_hex: str, max_distance: int, limit: int = 5
    ) -> list[tuple[ManifestRecord, int]]:
        """Records whose fingerprint is within ``max_distance`` bits, nearest first.

        A linear scan of the fingerprint column: fine to ~10^5 records; an index (multi-index
        hashing or a BK-tree) can replace it behind the same signature.
        """
        query = fingerprint_hex.strip().lower()
        hits: list[tuple[int, str]] = []
        with self._transaction("search fingerprints") as session:
            result = session.execute(
                select(_ManifestRow.id, _ManifestRow.fingerprint_hex).execution_options(
                    yield_per=_SCAN_BATCH
                )
            )
            for record_id, stored in result:
                if len(stored) != len(query):
                    continue
                distance = hamming(query, stored)
                if distance <= max_distance:
                    hits.append((distance, record_id))
            hits.sort()
            hits = hits[: max(limit, 0)]
            rows = {
                row.id: row
                for row in session.scalars(
                    select(_ManifestRow).where(_ManifestRow.id.in_([i for _, i in hits]))
                )
            }
            return [(_record(rows[i]), d) for d, i in hits if i in rows]

    # -- audit log ---------------------------------------------------------------------------

    def append_audit(
        self,
        event: AuditEvent,
        *,
        request_id: str,
        tenant: str | None,
        decision: dict[str, Any],
        manifest_id: str | None = None,
    ) -> AuditEntry:
        try:
            decision_json = canonical_json(decision)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"the audit decision is not JSON-serialisable: {exc}") from exc
        with self._transaction("append to the audit log") as session:
            # Lock first (see module docstring), then read the head we now own.
            session.execute(update(_AuditHead).where(_AuditHead.id == 1).values(seq=_AuditHead.seq))
            head = session.get(_AuditHead, 1, populate_existing=True)
            if head is None:
                raise StoreError("the audit log head is missing; the database was altered")
            at = dt.datetime.now(dt.UTC)
            seq = head.seq + 1
            entry = AuditEntry(
                seq=seq,
                at=at,
                event=event,
                request_id=request_id,
                tenant=tenant,
                decision=decision,
                manifest_id=manifest_id,
                prev_hash=head.hash,
                hash=audit_hash(
                    seq=seq,
                    at=at,
                    event=event,
                    request_id=request_id,
                    tenant=tenant,
                    decision=decision,
                    manifest_id=manifest_id,
                    prev_hash=head.hash,
                ),
            )
            session.add(
                _AuditRow(
                    seq=seq,
                    at=at,
                    event=event,
                    request_id=request_id,
                    tenant=tenant,
                    decision=decision_json,
                    manifest_id=manifest_id,
                    prev_hash=entry.prev_hash,
                    hash=entry.hash,
                )
            )
            head.seq = seq
            head.hash = entry.hash
        return entry

    def audit_entries(
        self, limit: int = 100, tenant: str | None = None, *, before_seq: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before_seq`` pages back through older entries."""
        statement = select(_AuditRow).order_by(_AuditRow.seq.desc()).limit(max(limit, 0))
        if tenant is not None:
            statement = statement.where(_AuditRow.tenant == tenant)
        if before_seq is not None:
            statement = statement.where(_AuditRow.seq < before_seq)
        with self._transaction("read the audit log") as session:
            return [_entry(row) for row in session.scalars(statement)]

    def verify_audit_chain(self) -> bool:
        """True when every entry links to the one before and the head names the last one."""
        return self.audit_chain_break() is None

    def audit_chain_break(self) -> str | None:
        """Where the chain first fails to hold, in words; None when it holds."""
        with self._transaction("verify the audit log") as session:
            previous_hash, expected_seq = GENESIS_HASH, 1
            rows = session.scalars(
                select(_AuditRow).order_by(_AuditRow.seq).execution_options(yield_per=_SCAN_BATCH)
            )
            for row in rows:
                if row.seq != expected_seq:
                    return f"entry {expected_seq} is missing (next is {row.seq})"
                if row.prev_hash != previous_hash:
                    return f"entry {row.seq} does not link to entry {row.seq - 1}"
                try:
                    entry = _entry(row)
                except ValueError:
                    return f"entry {row.seq} cannot be parsed"
                if entry.expected_hash() != row.hash:
                    return f"entry {row.seq} was altered after it was written"
                previous_hash, expected_seq = row.hash, expected_seq + 1
            head = session.get(_AuditHead, 1)
            if head is None:
                return "the audit log head is missing"
            if head.seq != expected_seq - 1 or head.hash != previous_hash:
                return f"entries after {expected_seq - 1} were removed (head is at {head.seq})"
            return None

    # -- plumbing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[Session]:
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(
                f"the manifest store at {self._display} failed to {doing}: {exc}"
            ) from exc

    def _ensure_head(self) -> None:
        with self._sessions() as session, session.begin():
            if session.get(_AuditHead, 1) is not None:
                return
        try:
            with self._sessions() as session, session.begin():
                session.add(_AuditHead(id=1, seq=0, hash=GENESIS_HASH))
        except IntegrityError:
            pass  # another process created it first


def _make_engine(url: str) -> Engine:
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


def _record(row: _ManifestRow) -> ManifestRecord:
    return ManifestRecord(
        id=row.id,
        manifest_label=row.manifest_label,
        manifest_store=row.manifest_store,
        watermark_alg=row.watermark_alg,
        watermark_payload=row.watermark_payload,
        fingerprint_alg=row.fingerprint_alg,
        fingerprint_hex=row.fingerprint_hex,
        mime=row.mime,
        sha256=row.sha256,
        created_at=row.created_at,
        tenant=row.tenant,
        model_id=row.model_id,
        decision=row.decision,
    )


def _entry(row: _AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        event=cast(AuditEvent, row.event),  # the model validates it
        request_id=row.request_id,
        tenant=row.tenant,
        decision=json.loads(row.decision),
        manifest_id=row.manifest_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
