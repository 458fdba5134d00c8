"""The service's side of the audit log: outcomes appended once, failures recorded as ``error``
decisions before they propagate (fail closed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from genseal.errors import GensealError, InputError
from provenance import AuditEvent, ManifestStore
from safety import Decision

__all__ = ["AuditTrail"]

log = structlog.get_logger("genseal.service")


class AuditTrail:
    """Appends the service's decisions to the manifest store's hash-chained audit log."""

    def __init__(self, store: ManifestStore) -> None:
        self._store = store

    def append(
        self,
        event: AuditEvent,
        request_id: str,
        tenant: str | None,
        decision: Decision | dict[str, Any],
        *,
        key: str | None = None,
    ) -> None:
        """Append one entry; ``key`` names an outcome a retried job records once."""
        payload = decision.as_record() if isinstance(decision, Decision) else decision
        self._store.append_audit(
            event=event,
            request_id=request_id,
            tenant=tenant,
            decision=payload,
            manifest_id=None,
            entry_key=key,
        )

    @contextmanager
    def recorded(self, request_id: str, tenant: str | None, operation: str) -> Iterator[None]:
        """Record any failure as an ``error`` decision, then let it propagate (fail closed)."""
        try:
            yield
        except InputError:
            raise  # the caller's mistake: nothing was screened, nothing to record
        except Exception as exc:
            error = exc if isinstance(exc, GensealError) else None
            log.error("request failed", request_id=request_id, operation=operation, error=str(exc))
            try:
                self.append(
                    "error",
                    request_id,
                    tenant,
                    {
                        "operation": operation,
                        "error": error.code if error else type(exc).__name__,
                        "message": str(exc),
                    },
                )
            except Exception as audit_exc:  # the store itself may be what failed
                log.error("could not record the failure", error=str(audit_exc))
            raise
