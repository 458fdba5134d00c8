"""The HTTP API: OpenAI-compatible image endpoints, sealing, screening and verification.

``create_app(service)`` builds the FastAPI application; ``genseal serve`` runs it. Every error
leaves through one handler, in the OpenAI error shape.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

import genseal
from api._openai_schema import (
    ErrorResponse,
    GensealMeta,
    Health,
    ImageDatum,
    ImageGenerationBody,
    ImagesResponse,
    PolicyEvaluateBody,
    PolicySummary,
    ReviewDecisionBody,
    ReviewList,
)
from gen import (
    ConsentAttestation,
    GenerationRequest,
    GenerationResult,
    ReviewRecord,
    ScreenResult,
    SealedGenerationService,
    parse_size,
)
from genseal.errors import GensealError, InputError, NotFoundError, PayloadTooLargeError
from provenance import ProvenanceReport
from safety import Explanation, explain

T = TypeVar("T")


class PolicyBlocked(Exception):
    """Raised inside a handler to answer a policy block the OpenAI way (HTTP 400)."""

    def __init__(self, result: GenerationResult) -> None:
        super().__init__(result.decision.message or "blocked by content policy")
        self.result = result


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad input or blocked by content policy."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    413: {"model": ErrorResponse, "description": "Upload over the size or pixel limit."},
    500: {"model": ErrorResponse, "description": "Internal error; nothing was released."},
}


def _error(status: int, message: str, code: str, kind: str, **extra: Any) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code, **extra}}
    return JSONResponse(status_code=status, content=body)


def create_app(service: SealedGenerationService) -> FastAPI:
    settings = service.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Hot reload: a changed policy file is validated, then swapped in (or rejected).
        service.policy_reloader.start(settings.policy_reload_seconds)
        try:
            yield
        finally:
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
            "`content_policy_violation`."
        ),
    )
    bearer = HTTPBearer(auto_error=False)

    def require_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str | None:
        if not settings.api_keys:
            return None
        given = credentials.credentials if credentials else ""
        if not any(hmac.compare_digest(given, key) for key in settings.api_keys):
            raise _Unauthorized()
        return given

    @app.exception_handler(PolicyBlocked)
    def _blocked(_: Request, exc: PolicyBlocked) -> JSONResponse:
        result = exc.result
        return _error(
            400,
            str(exc),
            "content_policy_violation",
            "invalid_request_error",
            decision=result.decision.model_dump(mode="json"),
            findings=[f.model_dump(mode="json") for f in result.findings],
            request_id=result.request_id,
        )

    @app.exception_handler(GensealError)
    def _genseal_error(_: Request, exc: GensealError) -> JSONResponse:
        kind = "invalid_request_error" if exc.http_status < 500 else "server_error"
        return _error(exc.http_status, str(exc), exc.code, kind)

    @app.exception_handler(_Unauthorized)
    def _unauthorized(_: Request, __: _Unauthorized) -> JSONResponse:
        return _error(401, "missing or invalid API key", "invalid_api_key", "authentication_error")

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return _error(400, message, "invalid_request", "invalid_request_error")

    @app.exception_handler(Exception)
    def _internal(_: Request, exc: Exception) -> JSONResponse:
        return _error(
            500, f"internal error: {type(exc).__name__}", "internal_error", "server_error"
        )

    async def read_upload(upload: UploadFile, what: str) -> bytes:
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise PayloadTooLargeError(
                f"{what} is over the upload limit of {settings.max_upload_bytes:,} bytes"
            )
        return data

    def images_response(
        result: GenerationResult, prompt: str | None, response: Response
    ) -> ImagesResponse:
        if result.status == "blocked":
            raise PolicyBlocked(result)
        if result.status == "held":
            # Accepted, not released: the images wait for a reviewer (GET /v1/reviews/{id}).
            response.status_code = 202
        return ImagesResponse(
            created=int(time.time()),
            output_format=result.images[0].mime.split("/")[1] if result.images else None,
            data=[
                ImageDatum(
                    b64_json=base64.b64encode(image.data).decode(),
                    revised_prompt=prompt,
                    manifest_id=image.manifest_id,
                    manifest_label=image.manifest_label,
                    watermark=image.watermark,
                    seed=image.seed,
                    decision=image.decision,
                    findings=image.findings,
                )
                for image in result.images
            ],
            genseal=GensealMeta(
                request_id=result.request_id,
                status=result.status,
                decision=result.decision,
                findings=result.findings,
                withheld=[w.model_dump(mode="json") for w in result.withheld],
                held=result.held,
                model=result.model_id,
                model_version=result.model_version,
            ),
        )

    def size_of(size: str | None) -> tuple[int, int] | None:
        if size is None or size == "auto":
            return None
        try:
            return parse_size(size)
        except ValueError as exc:
            raise InputError(str(exc)) from exc

    def reject_url_format(response_format: str) -> None:
        if response_format != "b64_json":
            raise InputError(
                "response_format 'url' is not offered: sealed images are returned inline as "
                "b64_json so that no unsealed copy is ever stored for download"
            )

    @app.post(
        "/v1/images/generations",
        response_model=ImagesResponse,
        responses=_ERRORS,
        tags=["images"],
        summary="Create images from a prompt (OpenAI-compatible)",
    )
    def create_images(
        body: ImageGenerationBody,
        tenant: Annotated[str | None, Depends(require_key)],
        response: Response,
    ) -> ImagesResponse:
        reject_url_format(body.response_format)
        result = service.generate(
            GenerationRequest(
                prompt=body.prompt,
                negative_prompt=body.negative_prompt,
                preset=body.preset,
                model=body.model,
                n=body.n,
                seed=body.seed,
                steps=body.steps,
                size=size_of(body.size),
                output_format=body.output_format,
                tenant=_tenant_of(tenant),
                purpose=body.purpose,
                consent=body.consent,
            )
        )
        return images_response(result, body.prompt, response)

    @app.post(
        "/v1/images/edits",
        response_model=ImagesResponse,
        responses=_ERRORS,
        tags=["images"],
        summary="Create images from an input image and a prompt (OpenAI-compatible)",
    )
    async def edit_images(
        tenant: Annotated[str | None, Depends(require_key)],
        response: Response,
        image: Annotated[UploadFile, File(description="The input image (PNG, JPEG, WebP).")],
        prompt: Annotated[str, Form()] = "",
        model: Annotated[str | None, Form()] = None,
        n: Annotated[int, Form(ge=1, le=8)] = 1,
        size: Annotated[str | None, Form()] = None,
        response_format: Annotated[str, Form()] = "b64_json",
        output_format: Annotated[str | None, Form()] = None,
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
    ) -> ImagesResponse:
        reject_url_format(response_format)
        if mask is not None:
            raise InputError("mask is not supported: genseal edits the whole image")
        if output_format not in (None, "png", "jpeg", "webp"):
            raise InputError("output_format must be png, jpeg or webp")
        if (consent_subject is None) != (consent_reference is None):
            raise InputError("consent needs both consent_subject and consent_reference")
        consent = (
            ConsentAttestation(subject=consent_subject, reference=consent_reference)
            if consent_subject is not None and consent_reference is not None
            else None
        )
        data = await read_upload(image, "image")
        request = GenerationRequest(
            prompt=prompt,
            image=data,
            image_name=image.filename or "input image",
            preset=preset,
            model=model,
            n=n,
            seed=seed,
            steps=steps,
            size=size_of(size),
            strength=strength,
            output_format=output_format,  # type: ignore[arg-type]
            tenant=_tenant_of(tenant),
            purpose=purpose,
            consent=consent,
        )
        result = await _in_thread(service.generate, request)
        return images_response(result, prompt or None, response)

    @app.post(
        "/v1/seal",
        response_model=ImagesResponse,
        responses=_ERRORS,
        tags=["provenance"],
        summary="Screen, watermark and sign an image generated elsewhere",
    )
    async def seal_image(
        tenant: Annotated[str | None, Depends(require_key)],
        response: Response,
        image: Annotated[UploadFile, File()],
        source_model: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        purpose: Annotated[str | None, Form(max_length=200)] = None,
    ) -> ImagesResponse:
        data = await read_upload(image, "image")
        result = await _in_thread(
            lambda: service.seal(
                data,
                source_model=source_model,
                prompt=prompt,
                tenant=_tenant_of(tenant),
                purpose=purpose,
                image_name=image.filename or "image",
            )
        )
        return images_response(result, prompt, response)

    @app.post(
        "/v1/screen",
        response_model=ScreenResult,
        responses=_ERRORS,
        tags=["safety"],
        summary="Findings and the policy decision, without generating",
    )
    async def screen(
        tenant: Annotated[str | None, Depends(require_key)],
        prompt: Annotated[str | None, Form()] = None,
        image: Annotated[UploadFile | None, File()] = None,
        purpose: Annotated[str | None, Form(max_length=200)] = None,
    ) -> ScreenResult:
        data = await read_upload(image, "image") if image is not None else None
        return await _in_thread(
            lambda: service.screen(
                prompt=prompt, image_bytes=data, tenant=_tenant_of(tenant), purpose=purpose
            )
        )

    @app.post(
        "/v1/verify",
        response_model=ProvenanceReport,
        responses=_ERRORS,
        tags=["provenance"],
        summary="Provenance report of an image: C2PA, watermark, recovered manifest",
    )
    async def verify(
        file: Annotated[UploadFile, File(description="The image to verify.")],
    ) -> ProvenanceReport:
        data = await read_upload(file, "file")
        verifier = service.verifier()
        return await _in_thread(verifier.verify, data, file.filename or "upload")

    @app.get(
        "/v1/manifests/{manifest_id}",
        responses={200: {"content": {"application/c2pa": {}}}, 404: {"model": ErrorResponse}},
        response_class=Response,
        tags=["provenance"],
        summary="The C2PA manifest store of a sealed image (a .c2pa sidecar)",
    )
    def get_manifest(manifest_id: str) -> Response:
        record = service.store.get(manifest_id)
        if record is None:
            return _error(404, f"no manifest {manifest_id}", "not_found", "invalid_request_error")
        return Response(
            content=record.manifest_store,
            media_type="application/c2pa",
            headers={"Content-Disposition": f'attachment; filename="{manifest_id}.c2pa"'},
        )

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
    def evaluate_policy(
        body: PolicyEvaluateBody, key: Annotated[str | None, Depends(require_key)]
    ) -> Explanation:
        # A caller may only try its own overlay: the tenant comes from the key when auth is on.
        tenant = _tenant_of(key) if key is not None else body.tenant
        policy = service.policies.for_tenant(tenant)
        try:
            return explain(policy, body.stage, body.findings, {**body.request, "tenant": tenant})
        except ValueError as exc:
            raise InputError(f"invalid findings: {exc}") from exc

    @app.get(
        "/v1/reviews",
        response_model=ReviewList,
        responses=_ERRORS,
        tags=["reviews"],
        summary="The review queue: images held for a human (pending by default)",
    )
    def list_reviews(
        key: Annotated[str | None, Depends(require_key)],
        status: Literal["pending", "approved", "rejected", "all"] = "pending",
    ) -> ReviewList:
        return ReviewList(
            data=service.reviews.list(
                status=None if status == "all" else status, tenant=_tenant_of(key)
            )
        )

    def own_review(review_id: str, key: str | None) -> ReviewRecord:
        review = service.reviews.get(review_id)
        if key is not None and review.tenant != _tenant_of(key):
            raise NotFoundError(f"no review {review_id}")  # another tenant's: not even its id
        return review

    @app.get(
        "/v1/reviews/{review_id}",
        response_model=ReviewRecord,
        responses={**_ERRORS, 404: {"model": ErrorResponse}},
        tags=["reviews"],
    )
    def get_review(
        review_id: str, key: Annotated[str | None, Depends(require_key)]
    ) -> ReviewRecord:
        return own_review(review_id, key)

    @app.post(
        "/v1/reviews/{review_id}",
        response_model=ReviewRecord,
        responses={**_ERRORS, 404: {"model": ErrorResponse}},
        tags=["reviews"],
        summary="Approve (seal and release) or reject a held image",
    )
    async def decide_review(
        review_id: str,
        body: ReviewDecisionBody,
        key: Annotated[str | None, Depends(require_key)],
    ) -> ReviewRecord:
        own_review(review_id, key)
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
    def get_review_image(
        review_id: str, key: Annotated[str | None, Depends(require_key)]
    ) -> Response:
        review = own_review(review_id, key)
        if review.status != "approved":
            raise NotFoundError(f"review {review_id} is {review.status}: no released image")
        return Response(content=service.reviews.sealed(review_id), media_type=review.mime)

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


class _Unauthorized(Exception):
    pass


def _tenant_of(api_key: str | None) -> str | None:
    # Until tenants have their own records, the tenant is named by a digest of its key.
    if api_key is None:
        return None
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking model, crypto and database work off the event loop."""
    return await run_in_threadpool(func, *args)
