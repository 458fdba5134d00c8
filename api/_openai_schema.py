"""The bodies of the image endpoints, shaped like the OpenAI Images API.

Fields the OpenAI API has are named as it names them, so its official client works unchanged;
genseal's own fields (decision, findings, manifest ids) ride along as extra keys it ignores.
The HTTP app reads requests in this shape and the job runner writes answers in it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gen import ConsentAttestation, HeldImage
from safety import Decision, Finding

__all__ = ["GensealMeta", "ImageDatum", "ImageGenerationBody", "ImagesResponse"]


class ImageGenerationBody(BaseModel):
    """``POST /v1/images/generations``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = Field(default=None, description="tiny, a HF id or a local directory.")
    n: int = Field(default=1, ge=1, le=8)
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, e.g. 512x512.")
    response_format: Literal["b64_json", "url"] = "b64_json"
    output_format: Literal["png", "jpeg", "webp"] | None = None
    # genseal's own knobs (the OpenAI client sends them via extra_body).
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    steps: int | None = Field(default=None, ge=1, le=150)
    negative_prompt: str | None = None
    preset: str | None = None
    user: str | None = None
    purpose: str | None = Field(
        default=None, max_length=200, description="What the image is for (policy context)."
    )
    consent: ConsentAttestation | None = Field(
        default=None, description="Attestation that the person shown consented."
    )
    webhook: str | None = Field(
        default=None,
        max_length=2000,
        description="In async mode: POSTed the finished job (Standard Webhooks signature, "
        "retried with back-off).",
    )
    run_async: bool = Field(
        default=False,
        alias="async",
        description="Answer 202 with a job at once, as `Prefer: respond-async` does (for "
        "clients that cannot set headers).",
    )


class ImageDatum(BaseModel):
    """One released image, OpenAI's ``data[]`` item plus genseal's fields."""

    b64_json: str | None = Field(default=None, description="The sealed image (b64_json format).")
    url: str | None = Field(
        default=None, description="Where to fetch the sealed image (url format; expires)."
    )
    revised_prompt: str | None = None
    manifest_id: str
    manifest_label: str
    watermark: str
    seed: int | None
    decision: Decision
    findings: list[Finding]


class GensealMeta(BaseModel):
    request_id: str
    status: Literal["released", "held", "blocked"]
    decision: Decision
    findings: list[Finding]
    withheld: list[dict[str, Any]] = Field(default_factory=list)
    held: list[HeldImage] = Field(
        default_factory=list, description="Outputs held for review (`GET /v1/reviews/{id}`)."
    )
    model: str | None = None
    model_version: str | None = None


class ImagesResponse(BaseModel):
    """OpenAI's ``ImagesResponse`` with a ``genseal`` section."""

    created: int
    data: list[ImageDatum]
    output_format: str | None = None
    genseal: GensealMeta
