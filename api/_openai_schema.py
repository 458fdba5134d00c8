"""Request and response bodies of the HTTP API, shaped like the OpenAI Images API.

Fields the OpenAI API has are named as it names them, so its official client works unchanged;
genseal's own fields (decision, findings, manifest ids) ride along as extra keys it ignores.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gen import ScreenResult
from provenance import ProvenanceReport
from safety import Decision, Finding


class ImageGenerationBody(BaseModel):
    """``POST /v1/images/generations``."""

    model_config = ConfigDict(extra="ignore")

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


class ImageDatum(BaseModel):
    """One released image, OpenAI's ``data[]`` item plus genseal's fields."""

    b64_json: str
    revised_prompt: str | None = None
    manifest_id: str
    manifest_label: str
    watermark: str
    seed: int | None
    decision: Decision
    findings: list[Finding]


class GensealMeta(BaseModel):
    request_id: str
    status: Literal["released", "blocked"]
    decision: Decision
    findings: list[Finding]
    withheld: list[dict[str, Any]] = Field(default_factory=list)
    model: str | None = None
    model_version: str | None = None


class ImagesResponse(BaseModel):
    """OpenAI's ``ImagesResponse`` with a ``genseal`` section."""

    created: int
    data: list[ImageDatum]
    output_format: str | None = None
    genseal: GensealMeta


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    decision: Decision | None = None
    findings: list[Finding] | None = None


class ErrorResponse(BaseModel):
    """Every error, in the OpenAI error shape (``content_policy_violation`` for blocks)."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    model: str
    policy: str


class PolicySummary(BaseModel):
    id: str
    version: str
    sha256: str
    rules: list[dict[str, Any]]


__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "Health",
    "ImageDatum",
    "ImageGenerationBody",
    "ImagesResponse",
    "PolicySummary",
    "ProvenanceReport",
    "ScreenResult",
]
