"""``/v1/images/generations``, ``/v1/images/edits`` (OpenAI-compatible) and ``/v1/seal``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response

from api._openai_schema import ImageGenerationBody, ImagesResponse
from api.http._deps import AsyncForm, ComponentsDep, DeliveryDep, WebhookForm
from api.http._errors import IMAGE_RESPONSES
from api.http._submission import Answer
from api.jobs import EditFields, SealFields
from gen import ConsentAttestation
from genseal.errors import InputError

__all__ = ["router"]

router = APIRouter()


def _respond(answer: Answer) -> Response:
    return JSONResponse(answer.body, answer.status, headers=answer.headers)


@router.post(
    "/v1/images/generations",
    response_model=ImagesResponse,
    responses=IMAGE_RESPONSES,
    tags=["images"],
    summary="Create images from a prompt (OpenAI-compatible)",
)
async def create_images(
    body: ImageGenerationBody, parts: ComponentsDep, delivery: DeliveryDep
) -> Response:
    fields = body.model_dump(
        mode="json", exclude={"webhook", "user", "run_async"}, exclude_none=True
    )
    options = delivery.with_job_options(run_async=body.run_async, webhook=body.webhook)
    return _respond(await parts.submission.submit("generations", fields, None, options))


@router.post(
    "/v1/images/edits",
    response_model=ImagesResponse,
    responses=IMAGE_RESPONSES,
    tags=["images"],
    summary="Create images from an input image and a prompt (OpenAI-compatible)",
)
async def edit_images(
    parts: ComponentsDep,
    delivery: DeliveryDep,
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
    data = await parts.read_upload(image, "image")
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
    options = delivery.with_job_options(run_async=run_async, webhook=webhook)
    return _respond(await parts.submission.submit("edits", fields, data, options))


@router.post(
    "/v1/seal",
    response_model=ImagesResponse,
    responses=IMAGE_RESPONSES,
    tags=["provenance"],
    summary="Screen, watermark and sign an image generated elsewhere",
)
async def seal_image(
    parts: ComponentsDep,
    delivery: DeliveryDep,
    image: Annotated[UploadFile, File()],
    source_model: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    purpose: Annotated[str | None, Form(max_length=200)] = None,
    response_format: Annotated[Literal["b64_json", "url"], Form()] = "b64_json",
    webhook: WebhookForm = None,
    run_async: AsyncForm = False,
) -> Response:
    data = await parts.read_upload(image, "image")
    fields = SealFields(
        image_name=image.filename or "image",
        source_model=source_model,
        prompt=prompt,
        purpose=purpose,
        response_format=response_format,
    ).model_dump(mode="json", exclude_none=True)
    options = delivery.with_job_options(run_async=run_async, webhook=webhook)
    return _respond(await parts.submission.submit("seal", fields, data, options))
