"""Jobs: every asynchronous request, and every request that carries an Idempotency-Key.

A job row holds what was asked (the request body, the input image), where it is (queued,
running with a lease, finished) and, once finished, the exact HTTP answer (status + body).

Guarantees, and how they hold:

- *Never lost*: a job is a row before the client hears "accepted". A worker that dies stops
  renewing its lease; ``recover_expired`` puts the job back in the queue (or marks it failed
  after ``max_attempts``).
- *Never half-released*: the answer is written in one transaction, and only by the worker that
  holds the job (``finish`` checks status and worker), so a client sees one complete result,
  or none yet. Images sealed by an attempt that was interrupted are in the manifest store
  (they were signed) but never delivered.
- *Idempotency*: (scope, key) is unique. The same key with the same body (sha256 of the
  canonical request) returns the first job; with another body it is a ConflictError (409).
- *Webhooks*: a finished job that has a webhook URL becomes "owed" in the same transaction
  that stores its answer (an outbox on the row), so a crash cannot lose the delivery.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection
from typing import Any, ClassVar

from sqlalchemy import (
    MetaData,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from api.jobs._model import (
    Job,
    JobKind,
    PendingWebhook,
    Reply,
    StoredJob,
    _Base,
    _job,
    _JobRow,
    _stored,
    _utc,
    status_of,
)
from genseal.db import Database, Tables
from genseal.errors import ConflictError, NotFoundError, StoreError

__all__ = ["JobStore"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobStore:
    """Jobs in the genseal database (the same URL as the manifest store)."""

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(
        self,
        database: Database | str,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        auto_upgrade: bool = True,
    ) -> None:
        self._tables = Tables(database, "job table", auto_upgrade=auto_upgrade)
        self._transaction = self._tables.transaction
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._max_attempts = max_attempts

    def close(self) -> None:
        self._tables.close()

    # -- submitting --------------------------------------------------------------------------

    def submit(
        self,
        *,
        kind: JobKind,
        tenant: str | None,
        request: dict[str, Any],
        input_blob: bytes | None,
        request_sha256: str,
        base_url: str,
        asynchronous: bool,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        worker: str | None = None,
    ) -> tuple[str, bool]:
        """(job id, created). ``worker`` given: the caller runs it now (a sync request).

        With an idempotency key already used: the first job's id and False, or ConflictError
        when the request differs from the first one.
        """
        scope = tenant or ""
        if idempotency_key is not None:
            existing = self._by_key(scope, idempotency_key, kind, request_sha256)
            if existing is not None:
                return existing, False
        now = _now()
        row = _JobRow(
            id="job_" + uuid.uuid4().hex,
            scope=scope,
            kind=kind,
            asynchronous=asynchronous,
            status="running" if worker else "queued",
            stage="starting" if worker else "queued",
            progress=0.0,
            request_json=json.dumps(request, sort_keys=True),
            input_blob=input_blob,
            request_sha256=request_sha256,
            idempotency_key=idempotency_key,
            base_url=base_url,
            attempts=1 if worker else 0,
            worker=worker,
            lease_until=now + self._lease if worker else None,
            created_at=now,
            started_at=now if worker else None,
            webhook_url=webhook_url,
            webhook_status="none",
            webhook_attempts=0,
        )
        try:
            with self._transaction("queue the job") as session:
                session.add(row)
        except StoreError as exc:
            if idempotency_key is not None and isinstance(exc.__cause__, IntegrityError):
                # Another request with the same key won the race: answer as it will.
                existing = self._by_key(scope, idempotency_key, kind, request_sha256)
                if existing is not None:
                    return existing, False
            raise
        return row.id, True

    def discard(self, job_id: str) -> None:
        """Delete a job that was never handed on (still queued, never claimed)."""
        with self._transaction("discard the job") as session:
            session.execute(
                delete(_JobRow).where(
                    _JobRow.id == job_id, _JobRow.status == "queued", _JobRow.attempts == 0
                )
            )

    def _by_key(self, scope: str, key: str, kind: str, request_sha256: str) -> str | None:
        with self._transaction("look up the idempotency key") as session:
            row = session.scalar(
                select(_JobRow).where(_JobRow.scope == scope, _JobRow.idempotency_key == key)
            )
            if row is None:
                return None
            if row.kind != kind or row.request_sha256 != request_sha256:
                raise ConflictError(
                    f"Idempotency-Key {key!r} was used for a different request; "
                    "use a new key for a new request"
                )
            return row.id

    # -- working -----------------------------------------------------------------------------

    def claim(self, worker: str) -> StoredJob | None:
        """Take the oldest queued job, or None."""
        while True:
            with self._transaction("claim a job") as session:
                candidate = session.scalar(
                    select(_JobRow.id)
                    .where(_JobRow.status == "queued")
                    .order_by(_JobRow.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if candidate is None:
                    return None
                # Conditional: of two workers that saw the same row, one gets it.
                job = self._take(session, candidate, worker, _JobRow.status == "queued")
                if job is not None:
                    return job

    def claim_id(self, job_id: str, worker: str) -> StoredJob | None:
        """Take this job if it is queued, or running on a lease that ran out (its worker died);
        None when it is finished or another worker holds a live lease on it.

        A broker can deliver the same job twice (late acknowledgement after a worker dies):
        whichever delivery claims first runs it, the other finds it taken or done. The claim
        is one conditional UPDATE, so it holds on SQLite too (which ignores FOR UPDATE).
        """
        now = _now()
        claimable = or_(
            _JobRow.status == "queued",
            and_(_JobRow.status == "running", _JobRow.lease_until < now),
        )
        with self._transaction("claim the job") as session:
            row = session.get(_JobRow, job_id)
            if row is None or row.status not in ("queued", "running"):
                return None
            if row.status == "running" and row.attempts >= self._max_attempts:
                # Interrupted as often as allowed: fail it, if its lease did run out.
                failing = session.execute(
                    update(_JobRow)
                    .where(_JobRow.id == job_id, claimable, _JobRow.status == "running")
                    .values(status="failed")
                    # SQL decides; evaluating the lease in Python trips on SQLite's naive times.
                    .execution_options(synchronize_session=False)
                )
                if failing.rowcount == 1:  # type: ignore[attr-defined]
                    row = session.get(_JobRow, job_id, populate_existing=True)
                    assert row is not None
                    _fail_interrupted(row, now)
                return None
            return self._take(session, job_id, worker, claimable)

    def _take(
        self, session: Session, job_id: str, worker: str, claimable: ColumnElement[bool]
    ) -> StoredJob | None:
        """Make the job ours if it is still ``claimable`` (one conditional UPDATE)."""
        now = _now()
        taken = session.execute(
            update(_JobRow)
            .where(_JobRow.id == job_id, claimable)
            .values(
                status="running",
                stage="starting",
                progress=0.0,
                worker=worker,
                attempts=_JobRow.attempts + 1,
                lease_until=now + self._lease,
                started_at=now,
            )
            # SQL decides; evaluating a lease in Python trips on SQLite's naive times.
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(_JobRow, job_id, populate_existing=True)
        assert row is not None
        return _stored(row)

    def release(self, job_id: str, worker: str) -> bool:
        """Put a job this worker holds back in the queue (a transient failure: it runs again)."""
        with self._transaction("put the job back") as session:
            result = session.execute(
                update(_JobRow)
                .where(_JobRow.id == job_id, _JobRow.status == "running", _JobRow.worker == worker)
                .values(
                    status="queued", stage="queued", progress=0.0, worker=None, lease_until=None
                )
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def lease_left(self, job_id: str) -> float | None:
        """Seconds until a running job's lease runs out; None when it is not running."""
        with self._transaction("read the job lease") as session:
            row = session.get(_JobRow, job_id)
            if row is None or row.status != "running" or row.lease_until is None:
                return None
            left = _utc(row.lease_until) - _now()  # type: ignore[operator]
            return max(left.total_seconds(), 0.0)

    def load(self, job_id: str) -> StoredJob:
        with self._transaction("read the job") as session:
            row = session.get(_JobRow, job_id)
            if row is None:
                raise NotFoundError(f"no job {job_id}")
            return _stored(row)

    def heartbeat(self, job_id: str, worker: str, stage: str, progress: float) -> bool:
        """Renew the lease and record progress; False when the job is no longer ours."""
        with self._transaction("record job progress") as session:
            result = session.execute(
                update(_JobRow)
                .where(_JobRow.id == job_id, _JobRow.status == "running", _JobRow.worker == worker)
                .values(stage=stage, progress=progress, lease_until=_now() + self._lease)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def finish(self, job_id: str, worker: str, reply: Reply) -> bool:
        """Store the answer; False (and nothing written) when the job is no longer ours."""
        now = _now()
        with self._transaction("store the job result") as session:
            # Conditional, so that a worker whose lease was taken over cannot overwrite.
            stored = session.execute(
                update(_JobRow)
                .where(_JobRow.id == job_id, _JobRow.status == "running", _JobRow.worker == worker)
                .values(
                    status=status_of(reply),
                    stage="done",
                    progress=1.0,
                    http_status=reply.status,
                    reply_json=json.dumps(reply.body),
                    finished_at=now,
                    lease_until=None,
                    # The input is no longer needed; do not keep people's photos.
                    input_blob=None,
                )
            )
            if stored.rowcount != 1:  # type: ignore[attr-defined]
                return False
            row = session.get(_JobRow, job_id, populate_existing=True)
            if row is not None and row.webhook_url and row.asynchronous:
                row.webhook_status = "owed"
                row.webhook_next_at = now
            return True

    def recover_expired(self) -> tuple[list[str], list[str]]:
        """Requeue running jobs whose worker stopped renewing the lease (or fail them after
        ``max_attempts``). Returns (requeued ids, failed ids)."""
        now = _now()
        requeued: list[str] = []
        failed: list[str] = []
        with self._transaction("recover interrupted jobs") as session:
            rows = session.scalars(
                select(_JobRow)
                .where(_JobRow.status == "running", _JobRow.lease_until < now)
                .with_for_update(skip_locked=True)
            )
            for row in rows:
                row.worker = None
                row.lease_until = None
                if row.attempts < self._max_attempts:
                    row.status, row.stage, row.progress = "queued", "queued", 0.0
                    requeued.append(row.id)
                    continue
                _fail_interrupted(row, now)
                failed.append(row.id)
        return requeued, failed

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str, tenant: str | None) -> Job:
        """The job, if it belongs to ``tenant`` (None: auth is off, any job)."""
        with self._transaction("read the job") as session:
            row = session.get(_JobRow, job_id)
            if row is None or (tenant is not None and row.scope != tenant):
                raise NotFoundError(f"no job {job_id}")  # another tenant's: not even its id
            return _job(row)

    def reply(self, job_id: str) -> Reply | None:
        """The stored answer of a finished job, else None."""
        with self._transaction("read the job result") as session:
            row = session.get(_JobRow, job_id)
            if row is None or row.http_status is None or row.reply_json is None:
                return None
            return Reply(row.http_status, json.loads(row.reply_json))

    def recent(
        self, tenant: str | None, *, limit: int = 20, status: str | None = None
    ) -> list[Job]:
        statement = select(_JobRow).order_by(_JobRow.created_at.desc()).limit(limit)
        if tenant is not None:
            statement = statement.where(_JobRow.scope == tenant)
        if status is not None:
            statement = statement.where(_JobRow.status == status)
        with self._transaction("list jobs") as session:
            return [_job(row) for row in session.scalars(statement)]

    def count(self, status: str) -> int:
        with self._transaction("count jobs") as session:
            statement = select(func.count()).select_from(_JobRow).where(_JobRow.status == status)
            return int(session.scalar(statement) or 0)

    # -- webhook outbox ----------------------------------------------------------------------

    def due_webhooks(
        self, limit: int, *, exclude_scopes: Collection[str] = (), claim_seconds: float = 60.0
    ) -> list[PendingWebhook]:
        """Deliveries due now, claimed for ``claim_seconds``: API replicas polling the same
        database each get other rows (``SKIP LOCKED``), and a replica that dies mid-delivery
        leaves its claim to run out, after which another delivers. Rows of the tenants in
        ``exclude_scopes`` ("" for none) are left for later."""
        now = _now()
        due_now = [_JobRow.webhook_status == "owed", _JobRow.webhook_next_at <= now]
        if exclude_scopes:
            due_now.append(_JobRow.scope.not_in(list(exclude_scopes)))
        with self._transaction("claim due webhooks") as session:
            rows = session.scalars(
                select(_JobRow)
                .where(*due_now)
                .order_by(_JobRow.webhook_next_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            due = []
            for row in rows:
                # Conditional: on SQLite (no row locks) two pollers may read the same row,
                # and only the one whose update still finds it due takes it.
                claimed = session.execute(
                    update(_JobRow)
                    .where(
                        _JobRow.id == row.id,
                        _JobRow.webhook_status == "owed",
                        _JobRow.webhook_next_at <= now,
                    )
                    .values(webhook_next_at=now + dt.timedelta(seconds=claim_seconds))
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                due.append(
                    PendingWebhook(
                        job_id=row.id,
                        tenant=row.scope or None,
                        url=row.webhook_url or "",
                        attempts=row.webhook_attempts,
                        body=_job(row).model_dump_json(exclude={"webhook"}),
                        owed_since=_utc(row.finished_at),
                    )
                )
            return due

    def record_webhook(
        self,
        job_id: str,
        *,
        attempts: int,
        delivered: bool,
        error: str | None,
        retry_at: dt.datetime | None,
    ) -> None:
        if delivered:
            state = "delivered"
        elif retry_at is None:
            state = "failed"
        else:
            state = "owed"
        with self._transaction("record the webhook attempt") as session:
            session.execute(
                update(_JobRow)
                .where(_JobRow.id == job_id, _JobRow.webhook_status == "owed")
                .values(
                    webhook_status=state,
                    webhook_attempts=attempts,
                    webhook_error=error,
                    webhook_next_at=retry_at,
                )
            )


def _fail_interrupted(row: _JobRow, now: dt.datetime) -> None:
    body = {
        "error": {
            "message": f"the job was interrupted {row.attempts} times; nothing was released",
            "type": "server_error",
            "param": None,
            "code": "job_interrupted",
        }
    }
    row.worker, row.lease_until = None, None
    row.status, row.stage, row.progress = "failed", "done", 1.0
    row.http_status, row.reply_json = 500, json.dumps(body)
    row.finished_at, row.input_blob = now, None
    if row.webhook_url and row.asynchronous:
        row.webhook_status, row.webhook_next_at = "owed", now
