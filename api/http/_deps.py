"""What the routes depend on: the app's parts, the caller behind the API key, the headers and
form fields several endpoints share, and the blocking-work helpers (FastAPI ``Annotated``
dependencies)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Form, Header, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api._files import ImageFiles
from api.http._auth import Caller, Gatekeeper
from api.http._health import Readiness
from api.http._metrics import Metrics
from api.http._submission import Delivery, Submission
from api.jobs import JobQueue, JobStore, Operations, WebhookDispatcher
from api.tenants import TenantStore
from gen import SealedGenerationService
from genseal.errors import PayloadTooLargeError
from genseal.settings import Settings
from safety import Baseline, load_baseline

__all__ = [
    "AsyncForm",
    "CallerDep",
    "Components",
    "ComponentsDep",
    "DeliveryDep",
    "IdempotencyHeader",
    "PreferHeader",
    "WebhookForm",
    "WorkingCallerDep",
    "in_thread",
]

T = TypeVar("T")


@dataclass
class Components:
    """What the routes run on: the service and the API's own parts; ``app.state.genseal``."""

    service: SealedGenerationService
    tenants: TenantStore
    jobs: JobStore
    files: ImageFiles
    gatekeeper: Gatekeeper
    operations: Operations
    runner: JobQueue
    webhooks: WebhookDispatcher
    metrics: Metrics
    readiness: Readiness
    submission: Submission

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def bias_baseline(self) -> Baseline | None:
        path = self.settings.bias_baseline
        return None if path is None else load_baseline(path, setting="GENSEAL_BIAS_BASELINE")

    async def read_upload(self, upload: UploadFile, what: str) -> bytes:
        """An uploaded file's bytes, refused past the upload limit without reading further."""
        limit = self.settings.max_upload_bytes
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLargeError(f"{what} is over the upload limit of {limit:,} bytes")
        return data


def _components(request: Request) -> Components:
    components: Components = request.app.state.genseal
    return components


ComponentsDep = Annotated[Components, Depends(_components)]

_bearer = HTTPBearer(auto_error=False)


def _caller(
    parts: ComponentsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    return parts.gatekeeper.authenticate(credentials.credentials if credentials else None)


def _limited_caller(parts: ComponentsDep, who: Annotated[Caller, Depends(_caller)]) -> Caller:
    parts.gatekeeper.limit_caller(who)
    return who


def _viewer(
    parts: ComponentsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    # A public page: no key is needed, a wrong one is still a 401.
    if credentials is None and parts.gatekeeper.auth_required():
        return None
    return parts.gatekeeper.authenticate(credentials.credentials if credentials else None)


# Reads (a job's state, the audit log, a manifest) are not rate-limited: polling a job must not
# eat into the budget of the requests that do work.
CallerDep = Annotated[Caller, Depends(_caller)]
WorkingCallerDep = Annotated[Caller, Depends(_limited_caller)]
#: On public endpoints: the caller when a key was sent (or auth is off), else None (anonymous).
ViewerDep = Annotated[Caller | None, Depends(_viewer)]

PreferHeader = Annotated[
    str | None,
    Header(description="`respond-async`: answer 202 with a job at once instead of waiting."),
]
IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Same key + same request → the first answer again (no second generation); "
        "same key + another request → 409.",
    ),
]
WebhookForm = Annotated[
    str | None, Form(description="In async mode: gets the finished job, signed.")
]
AsyncForm = Annotated[
    bool,
    Form(
        alias="async", description="Answer 202 with a job at once, as `Prefer: respond-async` does."
    ),
]


def _delivery(
    request: Request,
    parts: ComponentsDep,
    who: WorkingCallerDep,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyHeader = None,
) -> Delivery:
    return Delivery(
        tenant=who.tenant,
        base_url=parts.settings.public_url or str(request.base_url),
        asynchronous="respond-async" in (prefer or "").lower(),
        idempotency_key=idempotency_key,
    )


DeliveryDep = Annotated[Delivery, Depends(_delivery)]
"""How the caller of an image endpoint wants its answer (rate-limited caller, headers)."""


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking model, crypto and database work off the event loop."""
    return await run_in_threadpool(func, *args)
