"""The review queue: outputs a `review` rule held for a human, kept until approved or rejected.

A held image is not released: its unsealed pixels wait in the genseal database (the
``genseal_reviews`` table, beside the jobs and manifests), with a record of the decision,
findings and request context. In the database and not on a worker's disk, so that at scale an
image held by any worker is reviewed through any API replica. Approval seals it like any
release (the moderation assertion records the review) and keeps the sealed bytes for the caller
to fetch; rejection deletes the pixels and keeps the record.

A review's id derives from its request and image index, so a job retried after its worker died
holds each image once. Deciding is a conditional update: of two reviewers (or replicas)
deciding one review at once, one wins and the other is told it is decided.

Reviews kept as files by earlier versions (``GENSEAL_HOME/reviews/*.json``) are imported on
first open (``import_directory``) and the directory renamed, so none is lost in the upgrade.
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import DateTime, LargeBinary, MetaData, String, Text, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from genseal.db import Database, Tables
from genseal.errors import InputError, NotFoundError
from safety import Decision, Finding

__all__ = ["ReviewRecord", "ReviewStore"]

ReviewStatus = Literal["pending", "approved", "rejected"]

# The namespace of review ids (uuid5 of "request id/image index").
_REVIEW_IDS = uuid.UUID("0b5a3c52-8f5e-4d8a-b0d2-7c1e9f4a6d33")


class _Base(DeclarativeBase):
    pass


class _ReviewRow(_Base):
    __tablename__ = "genseal_reviews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tenant: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    # The ReviewRecord as JSON: what a reviewer reads and what sealing it needs.
    record: Mapped[str] = mapped_column(Text)
    candidate: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ingredient: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ReviewRecord(BaseModel):
    """One held output and what became of it."""

    id: str
    status: ReviewStatus = "pending"
    created_at: datetime
    decided_at: datetime | None = None
    reviewer: str | None = None
    note: str | None = None
    request_id: str
    tenant: str | None = None
    index: int
    seed: int | None = None
    model_id: str
    model_version: str | None = None
    output_format: str
    findings: list[Finding]
    decision: Decision
    input_decision: Decision | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    consent: dict[str, Any] | None = None
    ingredient_mime: str | None = None
    ingredient_title: str | None = None
    manifest_id: str | None = Field(default=None, description="Set once approved and sealed.")
    mime: str | None = None


class ReviewStore:
    """Review records and their images in the genseal database. Thread- and process-safe."""

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(self, database: Database | str, *, auto_upgrade: bool = True) -> None:
        self._tables = Tables(database, "review queue", auto_upgrade=auto_upgrade)
        self._transaction = self._tables.transaction

    def close(self) -> None:
        self._tables.close()

    def add(
        self, record: dict[str, Any], image_png: bytes, ingredient: bytes | None = None
    ) -> ReviewRecord:
        """Hold an image. The same request's same image, held again, is the same review."""
        review_id = uuid.uuid5(_REVIEW_IDS, f"{record['request_id']}/{record['index']}").hex
        review = ReviewRecord.model_validate(
            {**record, "id": review_id, "created_at": datetime.now(UTC)}
        )
        with self._transaction("hold the image for review") as session:
            existing = session.get(_ReviewRow, review_id, with_for_update=True)
            if existing is not None:
                return _review(existing)
            session.add(_row(review, candidate=image_png, ingredient=ingredient))
        return review

    def get(self, review_id: str) -> ReviewRecord:
        with self._transaction("read the review") as session:
            return _review(self._row(session, review_id))

    def list(
        self, status: ReviewStatus | None = "pending", tenant: str | None = None
    ) -> list[ReviewRecord]:
        statement = select(_ReviewRow).order_by(_ReviewRow.created_at)
        if status is not None:
            statement = statement.where(_ReviewRow.status == status)
        if tenant is not None:
            statement = statement.where(_ReviewRow.tenant == tenant)
        with self._transaction("list reviews") as session:
            return [_review(row) for row in session.scalars(statement)]

    def candidate(self, review_id: str) -> bytes:
        with self._transaction("read the held image") as session:
            data = self._row(session, review_id).candidate
        if data is None:
            raise NotFoundError(f"review {review_id} has no held image")
        return data

    def ingredient(self, review_id: str) -> bytes | None:
        with self._transaction("read the review's input image") as session:
            return self._row(session, review_id).ingredient

    def sealed(self, review_id: str) -> bytes:
        with self._transaction("read the released image") as session:
            data = self._row(session, review_id).sealed
        if data is None:
            raise NotFoundError(f"review {review_id} has no released image")
        return data

    def decide(
        self,
        review_id: str,
        status: Literal["approved", "rejected"],
        *,
        reviewer: str | None,
        note: str | None,
        sealed: bytes | None = None,
        manifest_id: str | None = None,
        mime: str | None = None,
    ) -> ReviewRecord:
        """Record the decision, once: InputError when the review was already decided."""
        with self._transaction("record the review decision") as session:
            row = self._row(session, review_id)
            review = _review(row).model_copy(
                update={
                    "status": status,
                    "decided_at": datetime.now(UTC),
                    "reviewer": reviewer,
                    "note": note,
                    "manifest_id": manifest_id,
                    "mime": mime,
                }
            )
            decided = session.execute(
                update(_ReviewRow)
                .where(_ReviewRow.id == review_id, _ReviewRow.status == "pending")
                .values(
                    status=status,
                    record=review.model_dump_json(),
                    sealed=sealed,
                    # The unsealed candidate never outlives the decision.
                    candidate=None,
                    ingredient=None,
                )
            )
            if decided.rowcount != 1:  # type: ignore[attr-defined]
                raise InputError(f"review {review_id} is already {row.status}")
        return review

    def import_directory(self, directory: Path) -> int:
        """Import reviews an earlier version kept as files, then rename the directory
        (``reviews.imported``); returns how many were imported. Unreadable records stay."""
        if not directory.is_dir():
            return 0
        imported = 0
        for path in sorted(directory.glob("*.json")):
            try:
                review = ReviewRecord.model_validate_json(path.read_bytes())
            except (OSError, ValidationError):
                continue
            files = {
                suffix: (directory / f"{review.id}.{suffix}")
                for suffix in ("png", "input", "sealed")
            }
            data = {k: p.read_bytes() if p.is_file() else None for k, p in files.items()}
            with self._transaction("import a review") as session:
                if session.get(_ReviewRow, review.id) is None:
                    session.add(
                        _row(
                            review,
                            candidate=data["png"],
                            ingredient=data["input"],
                            sealed=data["sealed"],
                        )
                    )
                    imported += 1
        target = directory.with_name(directory.name + ".imported")
        if target.exists():
            target = directory.with_name(f"{directory.name}.imported-{uuid.uuid4().hex[:8]}")
        directory.rename(target)
        return imported

    @staticmethod
    def _row(session: Any, review_id: str) -> _ReviewRow:
        row = session.get(_ReviewRow, review_id) if review_id.isalnum() else None
        if row is None:
            raise NotFoundError(f"no review {review_id}")
        return row  # type: ignore[no-any-return]


def _row(
    review: ReviewRecord,
    *,
    candidate: bytes | None,
    ingredient: bytes | None,
    sealed: bytes | None = None,
) -> _ReviewRow:
    return _ReviewRow(
        id=review.id,
        status=review.status,
        tenant=review.tenant,
        created_at=review.created_at,
        record=review.model_dump_json(),
        candidate=candidate,
        ingredient=ingredient,
        sealed=sealed,
    )


def _review(row: _ReviewRow) -> ReviewRecord:
    return ReviewRecord.model_validate_json(row.record)
