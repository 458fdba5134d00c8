"""The manifest store and audit log on SQLAlchemy 2: SQLite embedded, PostgreSQL at scale.

Only portable column types are used (strings, text, binary, integers, timestamps with time
zone) so the same schema runs on both.

Fingerprint search uses multi-index hashing (see ``_index``). A side table
``genseal_fingerprint_index`` holds one compact row per 256-bit fingerprint: the manifest id,
the fingerprint as 32 raw bytes, and its 11 band values in columns ``b0``..``b10``, each under
its own B-tree. ``nearest`` is then one statement, ``SELECT id, fp ... WHERE b0 IN (...) OR
b3 IN (...) OR ...``, which SQLite runs as a multi-index OR (a union of index probes,
deduplicated by rowid) and PostgreSQL as a BitmapOr of index scans over ``= ANY(array)``; the
candidates come back with their fingerprints (no second lookup, no join), the exact distance
is ``(int.from_bytes(fp) ^ query).bit_count()``, and only the ``limit`` nearest manifests are
read from the manifest table. Measured at 1 M random fingerprints (``python -m bench.store``,
README "Fingerprint search in the manifest store"): ``nearest(fp, 31)`` 6.2 ms median / 10.1
ms p90 on SQLite and 12.5 / 17.2 ms on PostgreSQL 15 (a linear scan: ~1 s), where the previous
16 × 16-bit band table (16 rows per manifest, candidates re-read by id) took 278 ms at 32 bits.
Plans of more than 10 000 probes (``d >= 36``) first read the table's size cheaply
(``_rows_estimate``) and scan a store too small for them.

The schema is migrated by Alembic (``genseal.migrations``): opening a store brings its database
to this genseal's head first (``genseal.db.ensure_schema``; with ``auto_upgrade=False`` a
database behind it is refused, and ``genseal db upgrade`` migrates it). A store made before
migrations is upgraded in place by the baseline revision, which also fills the fingerprint index
for manifests stored before it and drops the previous band table. Upgrade every process that
writes to one store together: records an older version adds afterwards may not be indexed.

The audit log is a hash chain. Appending reads the previous hash and writes the next entry, so
appends must be serialised: the first statement of every append is an UPDATE of a one-row
"head" table, which takes SQLite's write lock or PostgreSQL's row lock before anything is read.
The head also records the last hash, so removing entries from the end is detected too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, ClassVar, cast

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from genseal.db import Database, Tables
from genseal.errors import StoreError
from provenance.fingerprints import hamming
from provenance.store._index import (
    BANDS,
    WIDTHS,
    band_values,
    parse,
    plan,
    probe_count,
    probe_values,
)
from provenance.store._records import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    ManifestRecord,
    audit_hash,
    canonical_json,
)

__all__ = ["ManifestStore"]

_SCAN_BATCH = 2_000
_IN_CHUNK = 500  # values per IN (...) list: well under SQLite's bound-parameter limit
# Measured at 1 M rows (SQLite): an index probe (with its share of candidates) costs ~1.9 µs,
# a scanned row ~0.9 µs. Plans with more probes than _CHECK_SIZE_ABOVE (d >= 36) first ask
# the table's size, and scan when that is cheaper (a small store asked a loose distance).
_ROWS_PER_PROBE = 2
_CHECK_SIZE_ABOVE = 10_000


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
    # Added after the first release (nullable: rows from before have none).
    fingerprint_crop: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    mime: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)
    model_id: Mapped[str] = mapped_column(String(512))
    decision: Mapped[str] = mapped_column(String(64))


# One compact row per 256-bit fingerprint; band i of the fingerprint in column b{i}, each
# indexed (see the module docstring and _index). A Core table: the columns are generated.
_prints = Table(
    "genseal_fingerprint_index",
    _Base.metadata,
    Column("id", String(64), primary_key=True),
    Column("fp", LargeBinary(32), nullable=False),
    *(Column(f"b{i}", Integer, nullable=False, index=True) for i in range(BANDS)),
)


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
    manifest_id: Mapped[str | None] = mapped_column(String(64), index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # What makes an append idempotent (e.g. request/event/image): a job retried after its worker
    # died records each outcome once. Outside the hash, so chains from before it still verify.
    entry_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)


class _AuditHead(_Base):
    __tablename__ = "genseal_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class ManifestStore:
    """Sealed-image records and the audit chain, in one database given by URL.

    ``ManifestStore("sqlite:////path/genseal.db")`` or a ``postgresql+psycopg://`` URL.
    Safe to share between threads; after ``fork`` the child opens its own connections.
    A database behind this genseal's schema is migrated on open unless ``auto_upgrade`` is
    False (then StoreError: run ``genseal db upgrade``).
    """

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(self, database: Database | str, *, auto_upgrade: bool = True) -> None:
        self._tables = Tables(database, "manifest store", auto_upgrade=auto_upgrade)
        self._display = self._tables.display
        self._transaction = self._tables.transaction

    @property
    def url(self) -> str:
        return self._display

    def close(self) -> None:
        self._tables.close()

    # -- manifests ---------------------------------------------------------------------------

    def add(self, record: ManifestRecord) -> None:
        self.add_many([record])

    def add_many(self, records: list[ManifestRecord]) -> None:
        """Store several records in one transaction (all or none)."""
        try:
            with self._transaction("store the manifest") as session:
                # Core bulk inserts (executemany), not ORM objects: filling a store with a
                # million records is then minutes, not an hour.
                session.execute(insert(_ManifestRow), [r.model_dump() for r in records])
                prints = [
                    row
                    for record in records
                    if (row := _print_row(record.id, record.fingerprint_hex)) is not None
                ]
                if prints:
                    session.execute(insert(_prints), prints)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                first = records[0] if len(records) == 1 else None
                what = (
                    f"a manifest with id {first.id!r} or label {first.manifest_label!r}"
                    if first is not None
                    else "one of these manifests"
                )
                raise StoreError(f"{what} is already stored") from exc.__cause__
            raise

    def count(self) -> int:
        """How many sealed-image records the store holds."""
        with self._transaction("count the manifests") as session:
            return int(session.scalar(select(func.count()).select_from(_ManifestRow)) or 0)

    def put(self, record: ManifestRecord) -> None:
        """Store a record, replacing one with the same id (in one transaction).

        For idempotent sealing: a job retried after its worker died seals again under the same
        manifest id, and only the retry's image is ever delivered, so its record wins.
        """
        with self._transaction("store the manifest") as session:
            session.execute(delete(_prints).where(_prints.c.id == record.id))
            session.execute(delete(_ManifestRow).where(_ManifestRow.id == record.id))
            session.execute(insert(_ManifestRow), [record.model_dump()])
            if (row := _print_row(record.id, record.fingerprint_hex)) is not None:
                session.execute(insert(_prints), [row])

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

    def by_watermarks(self, payloads: list[str]) -> list[ManifestRecord]:
        """Every record carrying any of these payloads (one indexed IN query per 500)."""
        wanted = sorted({p.strip().lower() for p in payloads})
        found: list[ManifestRecord] = []
        with self._transaction("look up watermarks") as session:
            for start in range(0, len(wanted), _IN_CHUNK):
                rows = session.scalars(
                    select(_ManifestRow).where(
                        _ManifestRow.watermark_payload.in_(wanted[start : start + _IN_CHUNK])
                    )
                )
                found.extend(_record(row) for row in rows)
        return found

    def nearest(
        self, fingerprint_hex: str, max_distance: int, limit: int = 5
    ) -> list[tuple[ManifestRecord, int]]:
        """Records whose fingerprint is within ``max_distance`` bits, nearest first.

        Exact (every record within the distance is found; ties by id). 256-bit queries probe
        the band index as far as that is cheaper than a scan (``_index.plan``: up to 51 bits),
        and scan the compact index table beyond; other lengths scan the manifests.
        """
        query = fingerprint_hex.strip().lower()
        try:
            int(query, 16)
        except ValueError:
            return []  # not a fingerprint: nothing is near it
        value = parse(query)
        thresholds = plan(max_distance) if value is not None else None
        with self._transaction("search fingerprints") as session:
            if thresholds is not None and (probes := probe_count(thresholds)) > _CHECK_SIZE_ABOVE:
                size = self._rows_estimate(session)
                if size is not None and size < probes * _ROWS_PER_PROBE:
                    thresholds = None
            hits: list[tuple[int, str]]
            if value is None:
                hits = [
                    (distance, record_id)
                    for record_id, stored in self._scan_hex(session)
                    if len(stored) == len(query)
                    and (distance := hamming(query, stored)) <= max_distance
                ]
            else:
                pairs = (
                    self._scan(session)
                    if thresholds is None
                    else self._probe(session, value, thresholds)
                )
                hits = [
                    (distance, record_id)
                    for record_id, stored in pairs
                    if (distance := (int.from_bytes(stored) ^ value).bit_count()) <= max_distance
                ]
            hits = sorted(hits)[: max(limit, 0)]
            if not hits:
                return []
            rows = {
                row.id: row
                for row in session.scalars(
                    select(_ManifestRow).where(_ManifestRow.id.in_([i for _, i in hits]))
                )
            }
            return [(_record(rows[i]), d) for d, i in hits if i in rows]

    @staticmethod
    def _rows_estimate(session: Session) -> int | None:
        """About how many fingerprints are indexed, cheaply; None when unknown."""
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            # Rows are never deleted, so the largest rowid is the count (one B-tree descent).
            count = connection.exec_driver_sql(f"SELECT max(rowid) FROM {_prints.name}").scalar()
            return int(count or 0)
        if connection.dialect.name == "postgresql":
            # The planner's estimate; -1 until the table was first analysed.
            estimate = connection.exec_driver_sql(
                f"SELECT reltuples FROM pg_class WHERE oid = to_regclass('{_prints.name}')"
            ).scalar()
            return int(estimate) if estimate is not None and estimate >= 0 else None
        return None

    @staticmethod
    def _scan_hex(session: Session) -> Iterator[tuple[str, str]]:
        result = session.execute(
            select(_ManifestRow.id, _ManifestRow.fingerprint_hex).execution_options(
                yield_per=_SCAN_BATCH
            )
        )
        yield from ((record_id, stored) for record_id, stored in result)

    @staticmethod
    def _scan(session: Session) -> Iterator[tuple[str, bytes]]:
        result = session.execute(
            select(_prints.c.id, _prints.c.fp).execution_options(yield_per=_SCAN_BATCH)
        )
        yield from ((record_id, stored) for record_id, stored in result)

    @staticmethod
    def _probe(
        session: Session, value: int, thresholds: tuple[int, ...]
    ) -> list[tuple[str, bytes]]:
        """Candidates and their fingerprints, each once, in one statement (see the docstring)."""
        probes = [
            (i, probe_values(band, WIDTHS[i], t))
            for i, (band, t) in enumerate(zip(band_values(value), thresholds, strict=True))
            if t >= 0
        ]
        connection = session.connection()
        # Straight to the driver: SQLAlchemy's text() would regex-scan the long statement for
        # bind parameters on every call (~1 ms of a ~5 ms query at 1 M rows).
        if connection.dialect.name == "postgresql":
            # One int[] parameter per band (psycopg's %(name)s style): the statement text, and
            # so its prepared plan, is the same for every query at this distance.
            where = " OR ".join(f"b{i} = ANY(%(v{i})s::integer[])" for i, _ in probes)
            params: dict[str, Any] = {f"v{i}": values for i, values in probes}
        else:
            # Literal integers (computed here, never user text): no bound-parameter limit, and
            # SQLite plans each IN (...) as sorted probes of the band's index.
            where = " OR ".join(f"b{i} IN ({','.join(map(str, values))})" for i, values in probes)
            params = {}
        statement = f"SELECT id, fp FROM {_prints.name} WHERE {where}"
        return [
            (record_id, bytes(stored))
            for record_id, stored in connection.exec_driver_sql(statement, params)
        ]

    # -- audit log ---------------------------------------------------------------------------

    def append_audit(
        self,
        event: AuditEvent,
        *,
        request_id: str,
        tenant: str | None,
        decision: dict[str, Any],
        manifest_id: str | None = None,
        entry_key: str | None = None,
    ) -> AuditEntry:
        """Append one entry. With ``entry_key``, an entry already appended under that key is
        returned instead of a new one: a retried job records each of its outcomes once."""
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
            if entry_key is not None:
                # Read under the head's lock: no other append can add this key meanwhile.
                earlier = session.scalar(select(_AuditRow).where(_AuditRow.entry_key == entry_key))
                if earlier is not None:
                    return _entry(earlier)
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
                    entry_key=entry_key,
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


def _print_row(record_id: str, fingerprint_hex: str) -> dict[str, Any] | None:
    value = parse(fingerprint_hex.strip().lower())
    if value is None:
        return None  # not a 256-bit fingerprint: found by scan only
    row: dict[str, Any] = {"id": record_id, "fp": value.to_bytes(32)}
    row.update({f"b{i}": band for i, band in enumerate(band_values(value))})
    return row


def _record(row: _ManifestRow) -> ManifestRecord:
    return ManifestRecord(
        id=row.id,
        manifest_label=row.manifest_label,
        manifest_store=row.manifest_store,
        watermark_alg=row.watermark_alg,
        watermark_payload=row.watermark_payload,
        fingerprint_alg=row.fingerprint_alg,
        fingerprint_hex=row.fingerprint_hex,
        fingerprint_crop=row.fingerprint_crop,
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
