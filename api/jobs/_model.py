"""A job as the database keeps it (one row: the request, where it is, the answer and the
webhook outbox) and as callers see it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Job",
    "JobKind",
    "JobStatus",
    "PendingWebhook",
    "Reply",
    "StoredJob",
    "status_of",
]

JobKind = Literal["generations", "edits", "seal"]
JobStatus = Literal["queued", "running", "succeeded", "blocked", "failed"]


class _Base(DeclarativeBase):
    pass


class _JobRow(_Base):
    __tablename__ = "genseal_jobs"
    __table_args__ = (UniqueConstraint("scope", "idempotency_key", name="uq_jobs_idempotency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The tenant, or "" when auth is off: a non-null scope makes the unique key work.
    scope: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    asynchronous: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    request_json: Mapped[str] = mapped_column(Text)
    input_blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    base_url: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reply_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # none | owed | delivered | failed
    webhook_status: Mapped[str] = mapped_column(String(16), index=True, default="none")
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_next_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_error: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, as sent and as stored for replays."""

    status: int
    body: dict[str, Any]


class Job(BaseModel):
    """A job as `GET /v1/jobs/{id}` shows it."""

    id: str
    object: Literal["job"] = "job"
    kind: JobKind
    status: JobStatus = Field(
        description="queued → running → succeeded (images released or held), blocked (by "
        "policy) or failed (an error; nothing released)."
    )
    stage: str = Field(description="Where a running job is: screening, generating, sealing.")
    progress: float = Field(ge=0, le=1, description="Fraction done (0 to 1).")
    attempts: int = Field(description="How many times a worker started it (>1: retried).")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="When succeeded: the images response, as the sync call."
    )
    error: dict[str, Any] | None = Field(
        default=None, description="When blocked or failed: the error object, as the sync call."
    )
    http_status: int | None = Field(default=None, description="What the sync call answers.")
    webhook: dict[str, Any] | None = Field(
        default=None, description="The webhook URL and the state of its delivery."
    )


@dataclass(frozen=True)
class StoredJob:
    """What a worker needs to run a job."""

    id: str
    tenant: str | None
    kind: JobKind
    request: dict[str, Any]
    input_blob: bytes | None
    base_url: str
    attempts: int


@dataclass(frozen=True)
class PendingWebhook:
    job_id: str
    tenant: str | None
    url: str
    attempts: int
    body: str
    #: When the delivery became owed: the job's end.
    owed_since: dt.datetime | None = None


def status_of(reply: Reply) -> JobStatus:
    if reply.status < 400:
        return "succeeded"
    error = reply.body.get("error", {})
    if isinstance(error, dict) and error.get("code") == "content_policy_violation":
        return "blocked"
    return "failed"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _stored(row: _JobRow) -> StoredJob:
    return StoredJob(
        id=row.id,
        tenant=row.scope or None,
        kind=row.kind,  # type: ignore[arg-type]
        request=json.loads(row.request_json),
        input_blob=row.input_blob,
        base_url=row.base_url,
        attempts=row.attempts,
    )


def _job(row: _JobRow) -> Job:
    body = json.loads(row.reply_json) if row.reply_json else None
    succeeded = row.status == "succeeded"
    return Job(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        stage=row.stage,
        progress=row.progress,
        attempts=row.attempts,
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
        started_at=_utc(row.started_at),
        finished_at=_utc(row.finished_at),
        result=body if succeeded else None,
        error=body.get("error") if body and not succeeded else None,
        http_status=row.http_status,
        webhook=(
            {
                "url": row.webhook_url,
                "status": row.webhook_status,
                "attempts": row.webhook_attempts,
                "last_error": row.webhook_error,
            }
            if row.webhook_url
            else None
        ),
    )
