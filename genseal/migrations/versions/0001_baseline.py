"""Baseline: every table genseal keeps, as the releases before migrations created them.

On an empty database this creates the schema. A database made by a genseal from before
migrations (tables created on open, no ``alembic_version``) keeps every row and gets what it
lacks: missing tables, nullable columns added since (``genseal_manifests.fingerprint_crop``,
``genseal_audit.entry_key`` with its unique constraint) and indexes (``genseal_audit``'s on
``manifest_id``). Its fingerprint index is filled for the manifests stored before the index
existed, the previous 16-band index (``genseal_fingerprint_bands``) and the pre-Alembic schema
marks (``genseal_schema``) are dropped, and the audit log gets its head row.

The tables are frozen here, not imported from the models: later revisions change them.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 19:10:35.051613
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GENESIS_HASH = "0" * 64
# The fingerprint index's 11 bands of a 256-bit fingerprint (provenance._fpindex at this
# revision), most significant first.
_WIDTHS = (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)
_SHIFTS = tuple(256 - sum(_WIDTHS[: i + 1]) for i in range(len(_WIDTHS)))
_FILL_BATCH = 20_000
_DROPPED = ("genseal_fingerprint_bands", "genseal_schema")


def _seq() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


_schema = sa.MetaData()

sa.Table(
    "genseal_manifests",
    _schema,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("manifest_label", sa.String(255), nullable=False, unique=True, index=True),
    sa.Column("manifest_store", sa.LargeBinary(), nullable=False),
    sa.Column("watermark_alg", sa.String(64), nullable=False),
    sa.Column("watermark_payload", sa.String(64), nullable=False, index=True),
    sa.Column("fingerprint_alg", sa.String(32), nullable=False),
    sa.Column("fingerprint_hex", sa.String(128), nullable=False),
    sa.Column("fingerprint_crop", sa.LargeBinary(), nullable=True),
    sa.Column("mime", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", _when(), nullable=False, index=True),
    sa.Column("tenant", sa.String(128), nullable=True, index=True),
    sa.Column("model_id", sa.String(512), nullable=False),
    sa.Column("decision", sa.String(64), nullable=False),
)
_prints = sa.Table(
    "genseal_fingerprint_index",
    _schema,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("fp", sa.LargeBinary(32), nullable=False),
    *(sa.Column(f"b{i}", sa.Integer(), nullable=False, index=True) for i in range(len(_WIDTHS))),
)
sa.Table(
    "genseal_audit",
    _schema,
    sa.Column("seq", _seq(), primary_key=True, autoincrement=False),
    sa.Column("at", _when(), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False, index=True),
    sa.Column("tenant", sa.String(128), nullable=True, index=True),
    sa.Column("decision", sa.Text(), nullable=False),
    sa.Column("manifest_id", sa.String(64), nullable=True, index=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("entry_key", sa.String(255), nullable=True, unique=True),
)
_audit_head = sa.Table(
    "genseal_audit_head",
    _schema,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("seq", _seq(), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Table(
    "genseal_jobs",
    _schema,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("asynchronous", sa.Boolean(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("progress", sa.Float(), nullable=False),
    sa.Column("request_json", sa.Text(), nullable=False),
    sa.Column("input_blob", sa.LargeBinary(), nullable=True),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("base_url", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("lease_until", _when(), nullable=True, index=True),
    sa.Column("http_status", sa.Integer(), nullable=True),
    sa.Column("reply_json", sa.Text(), nullable=True),
    sa.Column("created_at", _when(), nullable=False, index=True),
    sa.Column("started_at", _when(), nullable=True),
    sa.Column("finished_at", _when(), nullable=True),
    sa.Column("webhook_url", sa.Text(), nullable=True),
    sa.Column("webhook_status", sa.String(16), nullable=False, index=True),
    sa.Column("webhook_attempts", sa.Integer(), nullable=False),
    sa.Column("webhook_next_at", _when(), nullable=True),
    sa.Column("webhook_error", sa.Text(), nullable=True),
    sa.UniqueConstraint("scope", "idempotency_key", name="uq_jobs_idempotency"),
)
sa.Table(
    "genseal_tenants",
    _schema,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("key_sha256", sa.String(64), nullable=False, unique=True, index=True),
    sa.Column("key_hint", sa.String(16), nullable=False),
    sa.Column("webhook_secret", sa.String(128), nullable=False),
    sa.Column("rate_limit", sa.String(64), nullable=True),
    sa.Column("disabled", sa.Boolean(), nullable=False),
    sa.Column("created_at", _when(), nullable=False),
    sa.Column("key_issued_at", _when(), nullable=False),
)
sa.Table(
    "genseal_files",
    _schema,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(128), nullable=False),
    sa.Column("mime", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary(), nullable=False),
    sa.Column("expires_at", _when(), nullable=False, index=True),
)
sa.Table(
    "genseal_bias_tenants",
    _schema,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("enabled_at", _when(), nullable=False),
)
sa.Table(
    "genseal_bias_days",
    _schema,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("images", sa.Integer(), nullable=False),
    sa.Column("no_face", sa.Integer(), nullable=False),
)
sa.Table(
    "genseal_bias_counts",
    _schema,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("attribute", sa.String(16), primary_key=True),
    sa.Column("category", sa.String(32), primary_key=True),
    sa.Column("images", sa.Integer(), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),
)
sa.Table(
    "genseal_face_identities",
    _schema,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("note", sa.Text(), nullable=True),
    sa.Column("created_at", _when(), nullable=False),
    sa.Column("updated_at", _when(), nullable=False),
)
sa.Table(
    "genseal_face_descriptors",
    _schema,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, index=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("descriptor", sa.LargeBinary(), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", _when(), nullable=False),
)
sa.Table(
    "genseal_face_registry_state",
    _schema,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer(), nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in _schema.sorted_tables:
        if table.name in existing:
            _complete(table)
        else:
            table.create(bind)  # with its indexes and constraints
    if "genseal_manifests" in existing:
        _fill_fingerprint_index()
    for name in _DROPPED:
        if name in existing:
            op.drop_table(name)
    if bind.execute(sa.select(_audit_head.c.id).where(_audit_head.c.id == 1)).first() is None:
        op.bulk_insert(_audit_head, [{"id": 1, "seq": 0, "hash": _GENESIS_HASH}])


def downgrade() -> None:
    for table in reversed(_schema.sorted_tables):
        op.drop_table(table.name)


def _complete(table: sa.Table) -> None:
    """Add what a table made by an earlier release lacks; its rows stay."""
    inspector = sa.inspect(op.get_bind())
    columns = {column["name"] for column in inspector.get_columns(table.name)}
    missing = [column for column in table.columns if column.name not in columns]
    for column in missing:
        if not column.nullable:
            raise RuntimeError(
                f"{table.name} lacks the required column {column.name}: not a genseal table"
            )
    unique_sets: set[tuple[str | None, ...]] = {
        tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)
    }
    unique_sets |= {
        tuple(i["column_names"]) for i in inspector.get_indexes(table.name) if i["unique"]
    }
    uniques = [
        u
        for u in table.constraints
        if isinstance(u, sa.UniqueConstraint) and tuple(u.columns.keys()) not in unique_sets
    ]
    if missing or uniques:
        # On SQLite a new unique constraint means copying the table (batch mode); the copy
        # keeps its rows and indexes.
        with op.batch_alter_table(table.name) as batch:
            for column in missing:
                batch.add_column(sa.Column(column.name, column.type, nullable=True))
            for unique in uniques:
                keys = list(unique.columns.keys())
                # PostgreSQL's own name for a column's UNIQUE, as on a database made fresh.
                batch.create_unique_constraint(
                    str(unique.name or f"{table.name}_{'_'.join(keys)}_key"), keys
                )
    indexes = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexes:
            op.create_index(
                str(index.name), table.name, list(index.columns.keys()), unique=index.unique
            )


def _fill_fingerprint_index() -> None:
    """Index the fingerprints of manifests stored before the index (or by an older genseal
    writing beside a newer one)."""
    manifests = sa.table(
        "genseal_manifests", sa.column("id", sa.String()), sa.column("fingerprint_hex")
    )
    rows = op.get_bind().execute(
        sa.select(manifests.c.id, manifests.c.fingerprint_hex)
        .where(manifests.c.id.not_in(sa.select(_prints.c.id)))
        .execution_options(yield_per=_FILL_BATCH)
    )
    for batch in rows.partitions():
        prints = list(_print_rows(batch))
        if prints:
            op.get_bind().execute(sa.insert(_prints), prints)


def _print_rows(rows: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for record_id, fingerprint_hex in rows:
        text = str(fingerprint_hex).strip().lower()
        if len(text) != 64:
            continue  # not a 256-bit fingerprint: found by scan only
        try:
            value = int(text, 16)
        except ValueError:
            continue
        row: dict[str, Any] = {"id": record_id, "fp": value.to_bytes(32)}
        for i, (shift, width) in enumerate(zip(_SHIFTS, _WIDTHS, strict=True)):
            row[f"b{i}"] = (value >> shift) & ((1 << width) - 1)
        yield row
