"""The HTTP API: OpenAI-compatible image endpoints, jobs, sealing, screening and verification.

``create_app(service)`` builds the FastAPI application; ``genseal serve`` runs it. Every error
leaves through one handler, in the OpenAI error shape.

The image endpoints run inline by default. ``Prefer: respond-async`` (or ``async``) makes them
a job (202 and ``GET /v1/jobs/{id}``, optionally a signed webhook); an ``Idempotency-Key`` header
makes a retried request return the first answer instead of generating twice. ``/metrics``,
``/readyz`` (``_health``) and the auditor page ``/verify`` (``_verify_page``) are part of every
app built here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

import genseal
from api._files import ImageFiles, load_secret
from api._openai_schema import ImageGenerationBody, ImagesResponse
from api.http._auth import Caller, Gatekeeper
from api.http._health import Readiness, install_observability
from api.http._metrics import BIAS_WINDOW_DAYS, Metrics
from api.http._schema import (
    AuditList,
    ErrorResponse,
    Health,
    JobList,
    PolicyEvaluateBody,
    PolicySummary,
    ReviewDecisionBody,
    ReviewList,
)
from api.http._verify_page import verify_page_router
from api.jobs._operations import EditFields, Operations, SealFields, error_body, error_reply
from api.jobs._queue import JobQueue, make_queue
from api.jobs._store import Job, JobKind, JobStore, Reply, StoredJob, status_of
from api.jobs._webhooks import WebhookDispatcher, validate_webhook_url
from api.tenants._store import TenantStore
from gen import ConsentAttestation, ReviewRecord, ScreenResult, SealedGenerationService
from genseal.errors import (
    ConflictError,
    GensealError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    QueueError,
    RateLimitError,
)
from provenance import ProvenanceReport
from safety import Baseline, BiasSummary, Explanation, explain, load_baseline

T = TypeVar("T")

# Seconds a client should wait after a 503 (a database or broker outage, no worker yet).
_RETRY_AFTER_UNAVAILABLE = 5

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad input or blocked by content policy."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    413: {"model": ErrorResponse, "description": "Upload over the size or pixel limit."},
    429: {"model": ErrorResponse, "description": "Over the rate limit (see Retry-After)."},
    500: {"model": ErrorResponse, "description": "Internal error; nothing was released."},
    503: {
        "model": ErrorResponse,
        "description": "The database is unavailable (`store_unavailable`), or the job broker is, "
        "or no worker serves the model (`queue_unavailable`); nothing was written. Retry after "
        "`Retry-After` seconds.",
    },
}
_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    202: {
        "model": Job,
        "description": "With `Prefer: respond-async`: the queued job (poll `Location`). "
        "Without: held for human review (an images response with no images), or, on genseal "
        "workers, the job when it did not finish within the synchronous wait.",
    },
    409: {"model": ErrorResponse, "description": "Idempotency-Key reused for another request."},
}

PreferHeader = Annotated[
    str | None,
    Header(
        description="`respond-async`: answer 202 with a job at once instead of waiting.",
    ),
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
        alias="async",
        description="Answer 202 with a job at once, as `Prefer: respond-async` does.",
    ),
]

_bearer = HTTPBearer(auto_error=False)


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    gatekeeper: Gatekeeper = request.app.state.genseal.gatekeeper
    return gatekeeper.authenticate(credentials.credentials if credentials else None)


def _limited_caller(request: Request, who: Annotated[Caller, Depends(_caller)]) -> Caller:
    gatekeeper: Gatekeeper = request.app.state.genseal.gatekeeper
    gatekeeper.limit_caller(who)
    return who


# Reads (a job's state, the audit log, a manifest) are not rate-limited: polling a job must not
# eat into the budget of the requests that do work.
CallerDep = Annotated[Caller, Depends(_caller)]
WorkingCallerDep = Annotated[Caller, Depends(_limited_caller)]


@dataclass
class Components:
    """What the app runs on besides the service; exposed as ``app.state.genseal``."""

    tenants: TenantStore
    jobs: JobStore
    files: ImageFiles
    gatekeeper: Gatekeeper
    operations: Operations
    runner: JobQueue
    webhooks: WebhookDispatcher
    metrics: Metrics
    readiness: Readiness


def create_app(
    service: SealedGenerationService, *, webhook_transport: Any | None = None
) -> FastAPI:
    settings = service.settings
    url = settings.store_url
    tenants = TenantStore(url)
    jobs = JobStore(
        url, lease_seconds=settings.job_lease_seconds, max_attempts=settings.job_max_attempts
    )
    files = ImageFiles(
        url, load_secret(settings.home, "url-signing.key"), settings.image_url_ttl_seconds
    )
    gatekeeper = Gatekeeper(settings, tenants)
    metrics = Metrics()
    metrics.track_queue_depth(lambda: jobs.count("queued"))

    def bias_baseline() -> Baseline | None:
        path = service.settings.bias_baseline
        return None if path is None else load_baseline(path, setting="GENSEAL_BIAS_BASELINE")

    metrics.track_bias(
        lambda: service.bias_monitor.summaries(BIAS_WINDOW_DAYS, bias_baseline()),
        lambda: service.bias_monitor_failures,
    )
    operations = Operations(service, files, on_result=metrics.observe_generation)
    default_secret = "whsec_" + _b64(load_secret(settings.home, "webhook.key"))

    def webhook_secret(tenant: str | None) -> str:
        if tenant is None or tenant.startswith("key-"):
            return default_secret
        return tenants.webhook_secret(tenant)

    def job_finished(job: StoredJob, reply: Reply) -> None:
        metrics.observe_job(job.kind, status_of(reply))
        webhooks.wake()

    webhooks = WebhookDispatcher(
        jobs,
        webhook_secret,
        allow_private=settings.webhook_allow_private,
        max_attempts=settings.webhook_max_attempts,
        retry_seconds=settings.webhook_retry_seconds,
        transport=webhook_transport,
    )
    runner = make_queue(settings, jobs, operations, on_finished=job_finished)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Hot reload: a changed policy file is validated, then swapped in (or rejected).
        service.policy_reloader.start(settings.policy_reload_seconds)
        runner.start()
        webhooks.start()
        try:
            yield
        finally:
            runner.stop()
            webhooks.stop()
            service.policy_reloader.stop()

    app = FastAPI(
        title="genseal",
        lifespan=lifespan,
        version=genseal.__version__,
        description=(
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
        ),
    )
    _, readiness = install_observability(
        app, service, metrics=metrics, workers=None if runner.inline else runner.check_model
    )
    app.include_router(verify_page_router())
    app.state.genseal = Components(
        tenants, jobs, files, gatekeeper, operations, runner, webhooks, metrics, readiness
    )

    # -- errors ------------------------------------------------------------------------------

    @app.exception_handler(GensealError)
    def _genseal_error(_: Request, exc: GensealError) -> JSONResponse:
        reply = error_reply(exc)
        headers = {}
        if isinstance(exc, RateLimitError):
            headers = {"Retry-After": str(exc.retry_after), "X-RateLimit-Limit": exc.limit}
        if exc.http_status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        if exc.http_status == 503:
            headers = {"Retry-After": str(_RETRY_AFTER_UNAVAILABLE)}
        return JSONResponse(reply.body, reply.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse(
            error_body(message, "invalid_request", "invalid_request_error"), status_code=400
        )

    @app.exception_handler(Exception)
    def _internal(_: Request, exc: Exception) -> JSONResponse:
        reply = error_reply(exc)
        return JSONResponse(reply.body, reply.status)

    # -- the shared path of the image endpoints ----------------------------------------------

    async def read_upload(upload: UploadFile, what: str) -> bytes:
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise PayloadTooLargeError(
                f"{what} is over the upload limit of {settings.max_upload_bytes:,} bytes"
            )
        return data

    async def submit(
        kind: JobKind,
        fields: dict[str, Any],
        image: bytes | None,
        who: Caller,
        request: Request,
        *,
        prefer: str | None,
        idempotency_key: str | None,
        webhook: str | None,
        run_async: bool,
    ) -> Response:
        asynchronous = run_async or "respond-async" in (prefer or "").lower()
        if webhook is not None:
            if not asynchronous:
                raise InputError(
                    "webhook needs async mode: send 'Prefer: respond-async' (or async=true)"
                )
            validate_webhook_url(webhook, allow_private=settings.webhook_allow_private)
        base_url = settings.public_url or str(request.base_url)
        if runner.inline and not asynchronous and idempotency_key is None:
            reply = await _in_thread(
                lambda: operations.run(kind, fields, image, tenant=who.tenant, base_url=base_url)
            )
            return JSONResponse(reply.body, reply.status)

        model = None if kind == "seal" else (fields.get("model") or settings.model)
        # Before anything is stored: a job no worker could run is refused, not queued.
        await _in_thread(runner.check_model, model)
        digest = _request_digest(kind, fields, image, asynchronous, webhook)
        worker = runner.worker_name("http") if runner.inline and not asynchronous else None
        job_id, created = await _in_thread(
            lambda: jobs.submit(
                kind=kind,
                tenant=who.tenant,
                request=fields,
                input_blob=image,
                request_sha256=digest,
                base_url=base_url,
                asynchronous=asynchronous,
                idempotency_key=idempotency_key,
                webhook_url=webhook,
                worker=worker,
            )
        )
        if created and worker is None:
            try:
                await _in_thread(runner.dispatch, job_id, model)
            except QueueError:
                # Never accepted: remove the row, so a retry with the same key starts afresh.
                await _in_thread(jobs.discard, job_id)
                raise
        if asynchronous:
            job = jobs.get(job_id, who.tenant)
            headers = {"Location": f"/v1/jobs/{job_id}", "Preference-Applied": "respond-async"}
            if not created:
                headers["Idempotent-Replayed"] = "true"
            return JSONResponse(job.model_dump(mode="json"), 202, headers=headers)
        if created and worker is not None:
            reply = await _in_thread(runner.run_inline, job_id, worker)
            return JSONResponse(reply.body, reply.status)
        if created or not runner.inline:
            # A worker elsewhere runs it: wait for the answer it stores.
            stored = await _wait_for_reply(jobs, runner, job_id, settings.sync_timeout_seconds)
            if stored is None:
                job = jobs.get(job_id, who.tenant)
                headers = {"Location": f"/v1/jobs/{job_id}"}
                return JSONResponse(job.model_dump(mode="json"), 202, headers=headers)
            replayed = {} if created else {"Idempotent-Replayed": "true"}
            return JSONResponse(stored.body, stored.status, headers=replayed)
        stored = jobs.reply(job_id)
        if stored is None:
            raise ConflictError(
                "a request with this Idempotency-Key is still being processed; retry later"
            )
        return JSONResponse(stored.body, stored.status, headers={"Idempotent-Replayed": "true"})

    # -- images ------------------------------------------------------------------------------

    @app.post(
        "/v1/images/generations",
        response_model=ImagesResponse,
        responses=_IMAGE_RESPONSES,
        tags=["images"],
        summary="Create images from a prompt (OpenAI-compatible)",
    )
    async def create_images(
        body: ImageGenerationBody,
        who: WorkingCallerDep,
        request: Request,
        prefer: PreferHeader = None,
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        fields = body.model_dump(
            mode="json", exclude={"webhook", "user", "run_async"}, exclude_none=True
        )
        return await submit(
            "generations",
            fields,
            None,
            who,
            request,
            prefer=prefer,
            idempotency_key=idempotency_key,
            webhook=body.webhook,
            run_async=body.run_async,
        )

    @app.post(
        "/v1/images/edits",
        response_model=ImagesResponse,
        responses=_IMAGE_RESPONSES,
        tags=["images"],
        summary="Create images from an input image and a prompt (OpenAI-compatible)",
    )
    async def edit_images(
        who: WorkingCallerDep,
        request: Request,
        image: Annotated[UploadFile, File(description="The input image (PNG, JPEG, WebP).")],
        prompt: Annotated[str, Form()] = "",
        model: Annotated[str | None, Form()] = None,
        n: Annotated[int, Form(ge=1, le=8)] = 1,
        size: Annotated[str | None, Form()] = None,
        response_format: Annotated[Literal["b64_json", "url"], Form()] = "b64_json",
        output_format: Annotated[Literal["png", "jpeg", "webp"] | None, Form()] = None,
        preset: Annotated[str | None, Form(description="e.g. figurine")] = None,
        seed: Annotated[int | None, Form(ge=0)] = None,
        steps: Annotated[int | None, Form(ge=1, le=150)] = None,
        strength: Annotated[float | None, Form(gt=0, le=1)] = None,
        mask: Annotated[UploadFile | None, File(description="Not supported.")] = None,
        purpose: Annotated[str | None, Form(max_length=200)] = None,
        consent_subject: Annotated[
            str | None, Form(description="Consent attestation: who consented.")
        ] = None,
        consent_reference: Annotated[
            str | None, Form(description="Consent attestation: the platform's consent record.")
        ] = None,
        webhook: WebhookForm = None,
        run_async: AsyncForm = False,
        prefer: PreferHeader = None,
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        if mask is not None:
            raise InputError("mask is not supported: genseal edits the whole image")
        if (consent_subject is None) != (consent_reference is None):
            raise InputError("consent needs both consent_subject and consent_reference")
        consent = (
            ConsentAttestation(subject=consent_subject, reference=consent_reference)
            if consent_subject is not None and consent_reference is not None
            else None
        )
        data = await read_upload(image, "image")
        fields = EditFields(
            prompt=prompt,
            image_name=image.filename or "input image",
            model=model,
            n=n,
            size=size,
            response_format=response_format,
            output_format=output_format,
            preset=preset,
            seed=seed,
            steps=steps,
            strength=strength,
            purpose=purpose,
            consent=consent,
        ).model_dump(mode="json", exclude_none=True)
        return await submit(
            "edits",
            fields,
            data,
            who,
            request,
            prefer=prefer,
            idempotency_key=idempotency_key,
            webhook=webhook,
            run_async=run_async,
        )

    @app.post(
        "/v1/seal",
        response_model=ImagesResponse,
        responses=_IMAGE_RESPONSES,
        tags=["provenance"],
        summary="Screen, watermark and sign an image generated elsewhere",
    )
    async def seal_image(
        who: WorkingCallerDep,
        request: Request,
        image: Annotated[UploadFile, File()],
        source_model: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        purpose: Annotated[str | None, Form(max_length=200)] = None,
        response_format: Annotated[Literal["b64_json", "url"], Form()] = "b64_json",
        webhook: WebhookForm = None,
        run_async: AsyncForm = False,
        prefer: PreferHeader = None,
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        data = await read_upload(image, "image")
        fields = SealFields(
            image_name=image.filename or "image",
            source_model=source_model,
            prompt=prompt,
            purpose=purpose,
            response_format=response_format,
        ).model_dump(mode="json", exclude_none=True)
        return await submit(
            "seal",
            fields,
            data,
            who,
            request,
            prefer=prefer,
            idempotency_key=idempotency_key,
            webhook=webhook,
            run_async=run_async,
        )

    @app.get(
        "/v1/files/{image_id}",
        responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorResponse}},
        response_class=Response,
        tags=["images"],
        summary="A sealed image by its signed URL (response_format=url); no key needed",
    )
    def get_file(
        image_id: str,
        expires: Annotated[int, Query()],
        signature: Annotated[str, Query(max_length=128)],
    ) -> Response:
        data, mime = files.open(image_id, expires, signature)
        return Response(content=data, media_type=mime, headers={"Cache-Control": "private"})

    @app.post(
        "/v1/screen",
        response_model=ScreenResult,
        responses=_ERRORS,
        tags=["safety"],
        summary="Findings and the policy decision, without generating",
    )
    async def screen(
        who: WorkingCallerDep,
        prompt: Annotated[str | None, Form()] = None,
        image: Annotated[UploadFile | None, File()] = None,
        purpose: Annotated[str | None, Form(max_length=200)] = None,
    ) -> ScreenResult:
        data = await read_upload(image, "image") if image is not None else None
        result = await _in_thread(
            lambda: service.screen(
                prompt=prompt, image_bytes=data, tenant=who.tenant, purpose=purpose
            )
        )
        metrics.observe_screen(result)
        return result

    # -- jobs --------------------------------------------------------------------------------

    @app.get(
        "/v1/jobs/{job_id}",
        response_model=Job,
        responses={**_ERRORS, 404: {"model": ErrorResponse}},
        tags=["jobs"],
        summary="A job's state, progress and, once finished, its result",
    )
    def get_job(job_id: str, who: CallerDep) -> Job:
        return jobs.get(job_id, who.tenant)

    @app.get(
        "/v1/jobs",
        response_model=JobList,
        responses=_ERRORS,
        tags=["jobs"],
        summary="The caller's recent jobs, newest first",
    )
    def list_jobs(
        who: CallerDep,
        status: Literal["queued", "running", "succeeded", "blocked", "failed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> JobList:
        return JobList(data=jobs.recent(who.tenant, limit=limit, status=status))

    # -- provenance --------------------------------------------------------------------------

    @app.post(
        "/v1/verify",
        response_model=ProvenanceReport,
        responses=_ERRORS,
        tags=["provenance"],
        summary="Provenance report of an image: C2PA, watermark, recovered manifest",
        description="No API key needed; rate-limited per client address. With `manifest` (a "
        "`.c2pa` sidecar, as `GET /v1/manifests/{id}` serves it) the file is validated against "
        "that manifest store instead of any embedded one; `c2pa.source` says which was used. "
        "When the manifest is gone (stripped, re-encoded, resized, cropped), `recovery` names "
        "the sealed manifest found by watermark and perceptual fingerprint together: every "
        "watermark backend is read, a crop is re-read at the scales it may have been cut to, "
        "and a watermark id is never enough on its own (`recovery.evidence` lists what "
        "matched, `pixels_altered` whether the pixels changed since signing).",
    )
    async def verify(
        request: Request,
        file: Annotated[UploadFile, File(description="The image to verify.")],
        manifest: Annotated[
            UploadFile | None, File(description="Optional .c2pa sidecar manifest store.")
        ] = None,
    ) -> ProvenanceReport:
        gatekeeper.limit_address(request.client.host if request.client else "unknown")
        data = await read_upload(file, "file")
        sidecar = await read_upload(manifest, "manifest") if manifest is not None else None
        verifier = service.verifier()
        report = await _in_thread(verifier.verify, data, file.filename or "upload", sidecar)
        metrics.observe_verify(report)
        return report

    @app.get(
        "/v1/manifests/{manifest_id}",
        responses={200: {"content": {"application/c2pa": {}}}, 404: {"model": ErrorResponse}},
        response_class=Response,
        tags=["provenance"],
        summary="The C2PA manifest store of a sealed image (a .c2pa sidecar)",
    )
    def get_manifest(manifest_id: str, who: CallerDep) -> Response:
        record = service.store.get(manifest_id)
        if record is None or (who.tenant is not None and record.tenant != who.tenant):
            raise NotFoundError(f"no manifest {manifest_id}")
        return Response(
            content=record.manifest_store,
            media_type="application/c2pa",
            headers={"Content-Disposition": f'attachment; filename="{manifest_id}.c2pa"'},
        )

    @app.get(
        "/v1/audit",
        response_model=AuditList,
        responses=_ERRORS,
        tags=["provenance"],
        summary="The caller's audit entries (hash-chained decisions), newest first",
    )
    def list_audit(
        who: CallerDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[int | None, Query(ge=1, description="Entries older than seq.")] = None,
    ) -> AuditList:
        entries = service.store.audit_entries(limit=limit, tenant=who.tenant, before_seq=before)
        return AuditList(
            data=entries, next_before=entries[-1].seq if len(entries) == limit else None
        )

    # -- policy ------------------------------------------------------------------------------

    @app.get("/v1/policy", response_model=PolicySummary, tags=["policy"])
    def get_policy() -> PolicySummary:
        policies = service.policies
        policy = policies.base
        summary = policies.summary()
        return PolicySummary(
            id=policy.id,
            version=policy.version,
            sha256=policy.sha256,
            set_sha256=policies.sha256,
            mode=policy.mode,
            rules=[rule.model_dump(mode="json") for rule in policy.rules],
            tenants=summary["tenants"],  # type: ignore[arg-type]
            reload_error=service.policy_reloader.last_error,
        )

    @app.post(
        "/v1/policy/evaluate",
        response_model=Explanation,
        responses=_ERRORS,
        tags=["policy"],
        summary="Decide on given findings and explain every rule (nothing is generated)",
    )
    def evaluate_policy(body: PolicyEvaluateBody, who: WorkingCallerDep) -> Explanation:
        # A caller may only try its own overlay: the tenant comes from the key when auth is on.
        tenant = who.tenant if who.tenant is not None else body.tenant
        policy = service.policies.for_tenant(tenant)
        try:
            return explain(policy, body.stage, body.findings, {**body.request, "tenant": tenant})
        except ValueError as exc:
            raise InputError(f"invalid findings: {exc}") from exc

    # -- reviews -----------------------------------------------------------------------------

    @app.get(
        "/v1/reviews",
        response_model=ReviewList,
        responses=_ERRORS,
        tags=["reviews"],
        summary="The review queue: images held for a human (pending by default)",
    )
    def list_reviews(
        who: CallerDep,
        status: Literal["pending", "approved", "rejected", "all"] = "pending",
    ) -> ReviewList:
        return ReviewList(
            data=service.reviews.list(status=None if status == "all" else status, tenant=who.tenant)
        )

    def own_review(review_id: str, who: Caller) -> ReviewRecord:
        review = service.reviews.get(review_id)
        if who.tenant is not None and review.tenant != who.tenant:
            raise NotFoundError(f"no review {review_id}")  # another tenant's: not even its id
        return review

    @app.get(
        "/v1/reviews/{review_id}",
        response_model=ReviewRecord,
        responses={**_ERRORS, 404: {"model": ErrorResponse}},
        tags=["reviews"],
    )
    def get_review(review_id: str, who: CallerDep) -> ReviewRecord:
        return own_review(review_id, who)

    @app.post(
        "/v1/reviews/{review_id}",
        response_model=ReviewRecord,
        responses={**_ERRORS, 404: {"model": ErrorResponse}},
        tags=["reviews"],
        summary="Approve (seal and release) or reject a held image",
    )
    async def decide_review(
        review_id: str, body: ReviewDecisionBody, who: WorkingCallerDep
    ) -> ReviewRecord:
        own_review(review_id, who)
        if body.decision == "approve":
            record, _ = await _in_thread(
                lambda: service.approve_review(review_id, reviewer=body.reviewer, note=body.note)
            )
            return record
        return await _in_thread(
            lambda: service.reject_review(review_id, reviewer=body.reviewer, note=body.note)
        )

    @app.get(
        "/v1/reviews/{review_id}/image",
        responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorResponse}},
        response_class=Response,
        tags=["reviews"],
        summary="The sealed image of an approved review",
    )
    def get_review_image(review_id: str, who: CallerDep) -> Response:
        review = own_review(review_id, who)
        if review.status != "approved":
            raise NotFoundError(f"review {review_id} is {review.status}: no released image")
        return Response(content=service.reviews.sealed(review_id), media_type=review.mime)

    # -- bias monitoring ---------------------------------------------------------------------

    @app.get(
        "/v1/bias/summary",
        response_model=BiasSummary,
        responses={
            **_ERRORS,
            404: {
                "model": ErrorResponse,
                "description": "Bias monitoring is off for the tenant: an operator turns it on "
                "with `genseal bias-monitor enable TENANT`.",
            },
        },
        tags=["safety"],
        summary="Perceived attributes of the tenant's released images, and drift from a baseline",
        description="For a tenant an operator opted in (`genseal bias-monitor enable TENANT`), "
        "the subject (largest face) of every released image is counted per UTC day by perceived "
        "gender, age band, Monk skin tone (`monk`) and ITA skin-tone class (`ita`); images "
        "without a face count as `no_face`. Only these counts are kept: no face, box or pixel. "
        "They are a model's perception of appearance, not anyone's identity.\n\n"
        "With a baseline (`GENSEAL_BIAS_BASELINE`, the results.json of `genseal probe bias`), "
        "each attribute's `drift` gives the total variation distance (`tvd`) of the window's "
        "proportions from the baseline's and a chi-square goodness-of-fit `p_value`; `flagged` "
        "when tvd ≥ `drift_tvd` (GENSEAL_BIAS_DRIFT_TVD, 0.1), p < 0.01 and at least "
        "`min_images` (GENSEAL_BIAS_MIN_IMAGES, 30) measured. A tenant that has not opted in "
        "gets 404 with error code `not_found`.",
    )
    def bias_summary(
        who: CallerDep,
        days: Annotated[
            int, Query(ge=1, le=366, description="The last N UTC days, today included.")
        ] = 30,
        tenant: Annotated[
            str | None,
            Query(
                max_length=63,
                description="Only when authentication is off: whose summary (omitted: requests "
                "made without a tenant). With an API key, the key names the tenant.",
            ),
        ] = None,
    ) -> BiasSummary:
        if who.tenant is not None and tenant not in (None, who.tenant):
            raise InputError(
                "tenant is accepted only when authentication is off: the API key names the tenant"
            )
        name = who.tenant if who.tenant is not None else tenant
        if not service.bias_monitor.enabled(name):
            whose = f"tenant {name!r}" if name else "requests without a tenant"
            raise NotFoundError(
                f"bias monitoring is off for {whose}",
                hint=f"an operator turns it on with `genseal bias-monitor enable {name or '-'}`",
            )
        return service.bias_monitor.summary(name, days, bias_baseline())

    # -- service -----------------------------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        policy = service.policy
        return Health(
            status="ok",
            version=genseal.__version__,
            model=settings.model,
            policy=f"{policy.id}@{policy.version}",
            policy_sha256=service.policies.sha256,
        )

    return app


async def _wait_for_reply(
    jobs: JobStore, queue: JobQueue, job_id: str, timeout: float
) -> Reply | None:
    """The stored answer of a job a worker runs; None past ``timeout``. Woken by the queue's
    "finished" notice, with a read every second besides (a notice can be missed)."""
    deadline = time.monotonic() + timeout
    while True:
        stored = await _in_thread(jobs.reply, job_id)
        left = deadline - time.monotonic()
        if stored is not None or left <= 0:
            return stored
        await queue.finished(job_id, min(left, 1.0))


def _request_digest(
    kind: str, fields: dict[str, Any], image: bytes | None, asynchronous: bool, webhook: str | None
) -> str:
    """What an Idempotency-Key is bound to: the request as asked, image by its digest."""
    canonical = json.dumps(
        {
            "kind": kind,
            "fields": fields,
            "image": hashlib.sha256(image).hexdigest() if image is not None else None,
            "async": asynchronous,
            "webhook": webhook,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking model, crypto and database work off the event loop."""
    return await run_in_threadpool(func, *args)


__all__ = ["Components", "create_app"]
