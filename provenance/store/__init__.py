"""The manifest store and audit log: what is kept of every sealed image, found again by
manifest label, watermark payload or nearest fingerprint, and the hash-chained decision log.

`ManifestStore` runs on SQLAlchemy (SQLite embedded, PostgreSQL at scale); the rest of genseal
reads it through `ManifestLookup` and `AuditLog`.
"""

from provenance.store._records import (
    AuditEntry,
    AuditEvent,
    AuditLog,
    ManifestLookup,
    ManifestRecord,
)
from provenance.store._sql import ManifestStore

__all__ = [
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "ManifestLookup",
    "ManifestRecord",
    "ManifestStore",
]
