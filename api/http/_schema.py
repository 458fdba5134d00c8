"""Request and response bodies of genseal's own endpoints (errors, health, policy, reviews,
jobs, audit), beside the OpenAI-shaped image bodies of ``api._openai_schema``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.jobs import Job
from gen import ReviewRecord
from provenance import AuditEntry
from safety import Decision, Finding

__all__ = [
    "AuditList",
    "AuditVerification",
    "ErrorDetail",
    "ErrorResponse",
    "Health",
    "JobList",
    "PolicyEvaluateBody",
    "PolicySummary",
    "ReviewDecisionBody",
    "ReviewList",
]


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
    policy_sha256: str = Field(
        description="sha256 of the active base policy: the hash decisions, manifests and "
        "GET /v1/policy (sha256) carry."
    )
    policy_set_sha256: str = Field(
        description="One hash over the base policy and every tenant overlay (GET /v1/policy "
        "set_sha256): changes when any of them does."
    )


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
