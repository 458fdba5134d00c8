"""The HTTP API: OpenAI-compatible image endpoints, jobs, sealing, screening and verification.

``create_app(service)`` wires the routers (``api.http.routes``, one per resource) to the parts
they run on (``Components``, from ``api.http._deps``); ``genseal serve`` runs it. Every error
leaves through one handler, in the OpenAI error shape (``api.http._errors``).

The image endpoints run inline by default. ``Prefer: respond-async`` (or ``async``) makes them
a job (202 and ``GET /v1/jobs/{id}``, optionally a signed webhook); an ``Idempotency-Key`` header
makes a retried request return the first answer instead of generating twice
(``api.http._submission``). ``/metrics``, ``/readyz`` (``_health``), the auditor page
``/verify`` (``_verify_page``) and the API docs ``/docs`` and ``/redoc``, with their assets
served from here (``_docs``), are part of every app built here.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import genseal
from api._files import ImageFiles, load_secret
from api.http._auth import Gatekeeper
from api.http._deps import Components
from api.http._docs import install_docs
from api.http._errors import install_error_handlers
from api.http._health import install_observability
from api.http._metrics import BIAS_WINDOW_DAYS, Metrics
from api.http._submission import Submission
from api.http._verify_page import verify_page_router
from api.http.routes import ROUTERS
from api.jobs import (
    JobStore,
    Operations,
    Reply,
    StoredJob,
    WebhookDispatcher,
    make_queue,
    status_of,
)
from api.tenants import TenantStore
from gen import SealedGenerationService

__all__ = ["Components", "create_app"]

_DESCRIPTION = (
    "Moderated, provenance-sealed image generation. Images are screened, decided on by "
    "policy, watermarked and signed with C2PA before release. The `/v1/images/*` "
    "endpoints follow the OpenAI Images API: the official `openai` client works with "
    "`base_url` and an API key. A policy block answers HTTP 400 with error code "
    "`content_policy_violation`.\n\n"
    "**Auth**: `Authorization: Bearer <key>` (keys from `genseal tenants create`); "
    "open when no tenant exists. **Rate limits** per tenant, and per address on "
    "`/v1/verify`: 429 with `Retry-After`. **Bias monitoring** (opt-in per tenant): "
    "`GET /v1/bias/summary`. **Async**: `Prefer: respond-async` (or "
    "`async`) → 202 and a job; `webhook` gets the finished job, signed per Standard "
    "Webhooks. Jobs run in the API process or, at scale, on `genseal worker` processes "
    "(Celery on Redis, state in PostgreSQL): the same answers either way. "
    "**Idempotency**: the `Idempotency-Key` header. **Auditors**: "
    "`POST /v1/verify` (no key) and the page at `/verify`. **Operations**: `/healthz`, "
    "`/readyz`, `/metrics`."
)


def create_app(service: SealedGenerationService) -> FastAPI:
    """The FastAPI application on ``service``; its stores share the service's database."""
    settings = service.settings
    database = service.parts.database
    tenants = TenantStore(database)
    jobs = JobStore(
        database, lease_seconds=settings.job_lease_seconds, max_attempts=settings.job_max_attempts
    )
    files = ImageFiles(
        database, load_secret(settings.home, "url-signing.key"), settings.image_url_ttl_seconds
    )
    metrics = Metrics()
    metrics.track_queue_depth(lambda: jobs.count("queued"))
    operations = Operations(service, files, on_result=metrics.observe_generation)
    default_secret = "whsec_" + base64.b64encode(load_secret(settings.home, "webhook.key")).decode()

    def webhook_secret(tenant: str | None) -> str:
        if tenant is None or tenant.startswith("key-"):
            return default_secret
        return tenants.webhook_secret(tenant)

    webhooks = WebhookDispatcher(
        jobs,
        webhook_secret,
        allow_private=settings.webhook_allow_private,
        max_attempts=settings.webhook_max_attempts,
        retry_seconds=settings.webhook_retry_seconds,
        ports=settings.webhook_ports,
        deadline_seconds=settings.webhook_deadline_seconds,
        concurrency=settings.webhook_concurrency,
        observe=metrics.observe_webhook,
    )

    def job_finished(job: StoredJob, reply: Reply) -> None:
        metrics.observe_job(job.kind, status_of(reply))
        webhooks.wake()

    runner = make_queue(settings, jobs, operations, on_finished=job_finished)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Hot reload: a changed policy file is validated, then swapped in (or rejected).
        service.policy_reloader.start(settings.policy_reload_seconds)
        runner.start()
        webhooks.start()
        files.start_sweeping()
        try:
            yield
        finally:
            runner.stop()
            webhooks.stop()
            files.stop_sweeping()
            service.policy_reloader.stop()

    app = FastAPI(
        title="genseal",
        lifespan=lifespan,
        version=genseal.__version__,
        description=_DESCRIPTION,
        # FastAPI's own pages load their scripts from a CDN; install_docs serves them from here.
        docs_url=None,
        redoc_url=None,
    )
    _, readiness = install_observability(
        app, service, metrics=metrics, workers=None if runner.inline else runner.check_model
    )
    components = Components(
        service=service,
        tenants=tenants,
        jobs=jobs,
        files=files,
        gatekeeper=Gatekeeper(settings, tenants),
        operations=operations,
        runner=runner,
        webhooks=webhooks,
        metrics=metrics,
        readiness=readiness,
        submission=Submission(settings, jobs, runner, operations),
    )
    metrics.track_bias(
        lambda: service.bias_monitor.summaries(BIAS_WINDOW_DAYS, components.bias_baseline()),
        lambda: service.bias_monitor_failures,
    )
    app.state.genseal = components
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(verify_page_router())
    install_docs(app)
    return app
