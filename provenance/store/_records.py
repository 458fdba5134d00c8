"""What the manifest store keeps, and the seams the rest of genseal reads it through.

Records are plain pydantic models so the HTTP app can return them as they are and a different
backend (another database, a service) can sit behind the same Protocols.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "ManifestLookup",
    "ManifestRecord",
    "audit_hash",
    "canonical_json",
]

AuditEvent = Literal["released", "blocked", "error"]
GENESIS_HASH = "0" * 64


class ManifestRecord(BaseModel):
    """One sealed image: its manifest and the keys to find it again without the manifest."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the genseal id (also in the moderation assertion)")
    manifest_label: str
    manifest_store: bytes = Field(repr=False, description="the raw .c2pa manifest store")
    watermark_alg: str
    watermark_payload: str
    fingerprint_alg: str
    fingerprint_hex: str
    fingerprint_crop: bytes | None = Field(
        default=None,
        repr=False,
        description="64x64 luminance thumbnail for crop-tolerant corroboration (crop_print)",
    )
    mime: str
    sha256: str = Field(description="of the sealed bytes as released")
    created_at: dt.datetime
    tenant: str | None = None
    model_id: str
    decision: str

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return _as_utc(value)


class AuditEntry(BaseModel):
    """One link of the append-only audit chain.

    ``hash`` = sha256(prev_hash + canonical JSON of every other field), so editing, removing or
    reordering any entry breaks every later link.
    """

    model_config = ConfigDict(frozen=True)

    seq: int
    at: dt.datetime
    event: AuditEvent
    request_id: str
    tenant: str | None = None
    decision: dict[str, Any] = Field(default_factory=dict)
    manifest_id: str | None = None
    prev_hash: str
    hash: str

    @field_validator("at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return _as_utc(value)

    def expected_hash(self) -> str:
        return audit_hash(
            seq=self.seq,
            at=self.at,
            event=self.event,
            request_id=self.request_id,
            tenant=self.tenant,
            decision=self.decision,
            manifest_id=self.manifest_id,
            prev_hash=self.prev_hash,
        )


class ManifestLookup(Protocol):
    """Read side of the manifest store, as verification needs it."""

    def get(self, id: str) -> ManifestRecord | None: ...

    def by_label(self, label: str) -> ManifestRecord | None: ...

    def by_watermark(self, payload: str) -> list[ManifestRecord]: ...

    def by_watermarks(self, payloads: list[str]) -> list[ManifestRecord]: ...

    def nearest(
        self, fingerprint_hex: str, max_distance: int, limit: int = 5
    ) -> list[tuple[ManifestRecord, int]]: ...


class AuditLog(Protocol):
    """The append-only, hash-chained decision log."""

    def append_audit(
        self,
        event: AuditEvent,
        *,
        request_id: str,
        tenant: str | None,
        decision: dict[str, Any],
        manifest_id: str | None = None,
    ) -> AuditEntry: ...

    def audit_entries(self, limit: int = 100, tenant: str | None = None) -> list[AuditEntry]: ...

    def verify_audit_chain(self) -> bool: ...


def canonical_json(value: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def audit_hash(
    *,
    seq: int,
    at: dt.datetime,
    event: str,
    request_id: str,
    tenant: str | None,
    decision: dict[str, Any],
    manifest_id: str | None,
    prev_hash: str,
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": _as_utc(at).isoformat(timespec="microseconds"),
            "event": event,
            "request_id": request_id,
            "tenant": tenant,
            "decision": decision,
            "manifest_id": manifest_id,
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything genseal stores is UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
