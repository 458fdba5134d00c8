"""The work behind the image endpoints, run the same way inline and as a job.

A request is a kind (``generations``, ``edits``, ``seal``), its fields as JSON and the uploaded
image; the answer is a ``Reply`` (HTTP status + body) that the route sends, or a job stores for
``GET /v1/jobs/{id}``, webhooks and idempotent replays. A policy block answers 400 with
``content_policy_violation`` and the decision; any error becomes its error body, never a
released image.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field, ValidationError

from api._files import ImageFiles
from api._openai_schema import GensealMeta, ImageDatum, ImageGenerationBody, ImagesResponse
from api.jobs._model import JobKind, Reply
from gen import (
    ConsentAttestation,
    GenerationRequest,
    GenerationResult,
    SealedGenerationService,
    parse_size,
)
from genseal.errors import GensealError, InputError

__all__ = ["EditFields", "Operations", "SealFields", "error_body", "error_reply"]

log = structlog.get_logger("genseal.api")

Progress = Callable[[str, float], None]
ResultHook = Callable[[GenerationResult, str], None]


class EditFields(BaseModel):
    """The form fields of ``POST /v1/images/edits`` (the image travels beside them)."""

    prompt: str = ""
    image_name: str = "input image"
    model: str | None = None
    n: int = Field(default=1, ge=1, le=8)
    size: str | None = None
    response_format: Literal["b64_json", "url"] = "b64_json"
    output_format: Literal["png", "jpeg", "webp"] | None = None
    preset: str | None = None
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    steps: int | None = Field(default=None, ge=1, le=150)
    strength: float | None = Field(default=None, gt=0, le=1)
    purpose: str | None = Field(default=None, max_length=200)
    consent: ConsentAttestation | None = None


class SealFields(BaseModel):
    """The form fields of ``POST /v1/seal``."""

    image_name: str = "image"
    source_model: str | None = None
    prompt: str | None = None
    purpose: str | None = Field(default=None, max_length=200)
    response_format: Literal["b64_json", "url"] = "b64_json"


def error_body(message: str, code: str, kind: str, **extra: Any) -> dict[str, Any]:
    """The OpenAI error shape; genseal's extra keys (decision, findings) ride along."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code, **extra}}


def error_reply(exc: Exception) -> Reply:
    if isinstance(exc, GensealError):
        kind = "invalid_request_error" if exc.http_status < 500 else "server_error"
        return Reply(exc.http_status, error_body(str(exc), exc.code, kind))
    return Reply(
        500, error_body(f"internal error: {type(exc).__name__}", "internal_error", "server_error")
    )


def size_of(size: str | None) -> tuple[int, int] | None:
    if size is None or size == "auto":
        return None
    try:
        return parse_size(size)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


class Operations:
    """Runs one image request against the service and shapes its answer."""

    def __init__(
        self,
        service: SealedGenerationService,
        files: ImageFiles,
        on_result: ResultHook | None = None,
    ) -> None:
        self.service = service
        self.files = files
        self._on_result = on_result

    def run(
        self,
        kind: JobKind,
        fields: dict[str, Any],
        image: bytes | None,
        *,
        tenant: str | None,
        base_url: str,
        progress: Progress | None = None,
        request_id: str | None = None,
    ) -> Reply:
        """The answer to one request; errors become error replies (nothing released).

        ``request_id``: a job's id, stable across its retries (see ``GenerationRequest``)."""
        try:
            result, prompt, response_format = self._perform(
                kind, fields, image, tenant, progress, request_id
            )
        except ValidationError as exc:
            return error_reply(InputError(f"invalid request: {exc.errors()[0]['msg']}"))
        except Exception as exc:
            if not isinstance(exc, GensealError):
                log.exception("request failed", kind=kind)
            return error_reply(exc)
        if self._on_result is not None:
            self._on_result(result, kind)
        try:
            return self.reply(result, prompt, response_format, tenant, base_url)
        except GensealError as exc:
            return error_reply(exc)

    def _perform(
        self,
        kind: JobKind,
        fields: dict[str, Any],
        image: bytes | None,
        tenant: str | None,
        progress: Progress | None,
        request_id: str | None,
    ) -> tuple[GenerationResult, str | None, str]:
        service = self.service
        if kind == "generations":
            body = ImageGenerationBody.model_validate(fields)
            request = GenerationRequest(
                prompt=body.prompt,
                negative_prompt=body.negative_prompt,
                preset=body.preset,
                model=body.model,
                n=body.n,
                seed=body.seed,
                steps=body.steps,
                size=size_of(body.size),
                output_format=body.output_format,
                tenant=tenant,
                purpose=body.purpose,
                consent=body.consent,
                request_id=request_id,
            )
            return service.generate(request, progress), body.prompt, body.response_format
        if image is None:
            raise InputError("an image is required")
        if kind == "edits":
            edit = EditFields.model_validate(fields)
            request = GenerationRequest(
                prompt=edit.prompt,
                image=image,
                image_name=edit.image_name,
                preset=edit.preset,
                model=edit.model,
                n=edit.n,
                seed=edit.seed,
                steps=edit.steps,
                size=size_of(edit.size),
                strength=edit.strength,
                output_format=edit.output_format,
                tenant=tenant,
                purpose=edit.purpose,
                consent=edit.consent,
                request_id=request_id,
            )
            return service.generate(request, progress), edit.prompt or None, edit.response_format
        seal = SealFields.model_validate(fields)
        result = service.seal(
            image,
            source_model=seal.source_model,
            prompt=seal.prompt,
            tenant=tenant,
            purpose=seal.purpose,
            image_name=seal.image_name,
            request_id=request_id,
        )
        return result, seal.prompt, seal.response_format

    def reply(
        self,
        result: GenerationResult,
        prompt: str | None,
        response_format: str,
        tenant: str | None,
        base_url: str,
    ) -> Reply:
        if result.status == "blocked":
            return Reply(
                400,
                error_body(
                    result.decision.message or "blocked by content policy",
                    "content_policy_violation",
                    "invalid_request_error",
                    decision=result.decision.model_dump(mode="json"),
                    findings=[f.model_dump(mode="json") for f in result.findings],
                    request_id=result.request_id,
                ),
            )
        data = []
        for image in result.images:
            as_url = response_format == "url"
            data.append(
                ImageDatum(
                    b64_json=None if as_url else base64.b64encode(image.data).decode(),
                    url=(
                        self.files.publish(
                            image.manifest_id, tenant, image.mime, image.data, base_url
                        )
                        if as_url
                        else None
                    ),
                    revised_prompt=prompt,
                    manifest_id=image.manifest_id,
                    manifest_label=image.manifest_label,
                    watermark=image.watermark,
                    seed=image.seed,
                    decision=image.decision,
                    findings=image.findings,
                )
            )
        body = ImagesResponse(
            created=int(time.time()),
            output_format=result.images[0].mime.split("/")[1] if result.images else None,
            data=data,
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
        # Held for review: accepted, not released (the images wait in GET /v1/reviews/{id}).
        status = 202 if result.status == "held" else 200
        return Reply(status, body.model_dump(mode="json", exclude_none=False))
