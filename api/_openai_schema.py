"""Request and response bodies of the HTTP API, shaped like the OpenAI Images API.

Fields the OpenAI API has are named as it names them, so its official client works unchanged;
genseal's own fields (decision, findings, manifest ids) ride along as extra keys it ignores.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api._jobs import Job
from gen import ConsentAttestation, HeldImage, ReviewRecord, ScreenResult
from provenance import AuditEntry, ProvenanceReport
from safety import Decision, Finding


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
    policy_sha256: str = Field(description="sha256 of the active policy set (base + overlays).")


class PolicySummary(BaseModel):
    id: str
    version: str
    sha256: str
    set_sha256: str = Field(description="One hash over the base and every tenant overlay.")
    mode: str
    rules: list[dict[str, Any]]
    tenants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Tenant overlays: id, version, sha256, mode."
    )
    reload_error: str | None = Field(
        default=None, description="Why the last changed file was rejected (old policy active)."
    )


class PolicyEvaluateBody(BaseModel):
    """``POST /v1/policy/evaluate``: decide and explain on given findings."""

    model_config = ConfigDict(extra="forbid")

    stage: Literal["prompt", "input", "output"]
    findings: list[Any] = Field(
        default_factory=list,
        description='Findings: full objects, or compact ("sexual:clean@prompt", {category, ...}).',
    )
    request: dict[str, Any] = Field(default_factory=dict, description="Request facts.")
    tenant: str | None = Field(default=None, description="Use this tenant's overlay.")


class ReviewDecisionBody(BaseModel):
    """``POST /v1/reviews/{id}``."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reviewer: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class ReviewList(BaseModel):
    data: list[ReviewRecord]


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Job]


class AuditList(BaseModel):
    """A page of the audit log, newest first."""

    object: Literal["list"] = "list"
    data: list[AuditEntry]
    next_before: int | None = Field(
        default=None, description="Pass as `before` for the next (older) page; None at the end."
    )


class AuditVerification(BaseModel):
    intact: bool = Field(description="Every entry links to the one before; none was removed.")
    problem: str | None = Field(default=None, description="Where the chain first breaks.")


__all__ = [
    "AuditList",
    "AuditVerification",
    "ErrorDetail",
    "ErrorResponse",
    "Health",
    "ImageDatum",
    "ImageGenerationBody",
    "ImagesResponse",
    "JobList",
    "PolicyEvaluateBody",
    "PolicySummary",
    "ProvenanceReport",
    "ReviewDecisionBody",
    "ReviewList",
    "ScreenResult",
]
