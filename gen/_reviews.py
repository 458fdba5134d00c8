"""The review queue: outputs a `review` rule held for a human, kept until approved or rejected.

A held image is not released: its unsealed pixels stay in ``GENSEAL_HOME/reviews/`` (files
mode 0600), next to a JSON record with the decision, findings and request context. Approval
seals it like any release (the moderation assertion records the review) and keeps the sealed
bytes for the caller to fetch; rejection deletes the pixels and keeps the record.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from genseal.errors import NotFoundError
from safety import Decision, Finding

__all__ = ["ReviewRecord", "ReviewStore"]

ReviewStatus = Literal["pending", "approved", "rejected"]


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
    """Review records and their images as files under one directory. Thread-safe."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def add(
        self, record: dict[str, Any], image_png: bytes, ingredient: bytes | None = None
    ) -> ReviewRecord:
        review = ReviewRecord.model_validate(
            {**record, "id": uuid.uuid4().hex, "created_at": datetime.now(UTC)}
        )
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(self._path(review.id, "png"), image_png)
            if ingredient is not None:
                _write_private(self._path(review.id, "input"), ingredient)
            self._save(review)
        return review

    def get(self, review_id: str) -> ReviewRecord:
        path = self._path(review_id, "json")
        try:
            return ReviewRecord.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(f"no review {review_id}") from None

    def list(
        self, status: ReviewStatus | None = "pending", tenant: str | None = None
    ) -> list[ReviewRecord]:
        if not self.directory.is_dir():
            return []
        records = [
            ReviewRecord.model_validate_json(p.read_bytes()) for p in self.directory.glob("*.json")
        ]
        return sorted(
            (
                r
                for r in records
                if (status is None or r.status == status) and (tenant is None or r.tenant == tenant)
            ),
            key=lambda r: r.created_at,
        )

    def candidate(self, review_id: str) -> bytes:
        try:
            return self._path(review_id, "png").read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"review {review_id} has no held image") from None

    def ingredient(self, review_id: str) -> bytes | None:
        path = self._path(review_id, "input")
        return path.read_bytes() if path.is_file() else None

    def sealed(self, review_id: str) -> bytes:
        try:
            return self._path(review_id, "sealed").read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"review {review_id} has no released image") from None

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
        with self._lock:
            review = self.get(review_id).model_copy(
                update={
                    "status": status,
                    "decided_at": datetime.now(UTC),
                    "reviewer": reviewer,
                    "note": note,
                    "manifest_id": manifest_id,
                    "mime": mime,
                }
            )
            if sealed is not None:
                _write_private(self._path(review_id, "sealed"), sealed)
            # The unsealed candidate never outlives the decision.
            for suffix in ("png", "input"):
                self._path(review_id, suffix).unlink(missing_ok=True)
            self._save(review)
        return review

    def _save(self, review: ReviewRecord) -> None:
        _write_private(self._path(review.id, "json"), review.model_dump_json(indent=2).encode())

    def _path(self, review_id: str, suffix: str) -> Path:
        if not review_id.isalnum():
            raise NotFoundError(f"no review {review_id}")
        return self.directory / f"{review_id}.{suffix}"


def _write_private(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    partial.replace(path)
