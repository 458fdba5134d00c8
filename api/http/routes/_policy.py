"""``/v1/policy`` (the active policy), ``/v1/policy/evaluate`` (explain a decision) and
``/v1/screen`` (findings and the decision, without generating)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from api.http._deps import ComponentsDep, ViewerDep, WorkingCallerDep, in_thread
from api.http._errors import ERRORS
from api.http._schema import PolicyEvaluateBody, PolicySummary
from gen import ScreenResult
from genseal.errors import InputError
from safety import Explanation, explain

__all__ = ["router"]

router = APIRouter()

#: What a caller who is not the operator reads when the last policy change was rejected.
REJECTED_RELOAD = "the last change to the policy files was rejected; the previous policy is active"


@router.get("/v1/policy", response_model=PolicySummary, tags=["policy"])
def get_policy(parts: ComponentsDep, viewer: ViewerDep) -> PolicySummary:
    """The active base policy, public. Tenant overlays and the reason a reload was rejected
    (file paths, tenant names) are shown in full only where authentication is off; a tenant
    sees its own overlay, an anonymous caller none."""
    policies = parts.service.policies
    policy = policies.base
    summary = policies.summary()
    tenants: dict[str, dict[str, object]] = summary["tenants"]  # type: ignore[assignment]
    reload_error = parts.service.policy_reloader.last_error
    operator = viewer is not None and viewer.tenant is None
    if not operator:
        mine = viewer.tenant if viewer is not None else None
        tenants = {name: overlay for name, overlay in tenants.items() if name == mine}
        if reload_error is not None:
            reload_error = REJECTED_RELOAD
    return PolicySummary(
        id=policy.id,
        version=policy.version,
        sha256=policy.sha256,
        set_sha256=policies.sha256,
        mode=policy.mode,
        rules=[rule.model_dump(mode="json") for rule in policy.rules],
        tenants=tenants,
        reload_error=reload_error,
    )


@router.post(
    "/v1/policy/evaluate",
    response_model=Explanation,
    responses=ERRORS,
    tags=["policy"],
    summary="Decide on given findings and explain every rule (nothing is generated)",
)
def evaluate_policy(
    body: PolicyEvaluateBody, who: WorkingCallerDep, parts: ComponentsDep
) -> Explanation:
    # A caller may only try its own overlay: the tenant comes from the key when auth is on.
    tenant = who.tenant if who.tenant is not None else body.tenant
    policy = parts.service.policies.for_tenant(tenant)
    try:
        return explain(policy, body.stage, body.findings, {**body.request, "tenant": tenant})
    except ValueError as exc:
        raise InputError(f"invalid findings: {exc}") from exc


@router.post(
    "/v1/screen",
    response_model=ScreenResult,
    responses=ERRORS,
    tags=["safety"],
    summary="Findings and the policy decision, without generating",
)
async def screen(
    who: WorkingCallerDep,
    parts: ComponentsDep,
    prompt: Annotated[str | None, Form()] = None,
    image: Annotated[UploadFile | None, File()] = None,
    purpose: Annotated[str | None, Form(max_length=200)] = None,
) -> ScreenResult:
    data = await parts.read_upload(image, "image") if image is not None else None
    result = await in_thread(
        lambda: parts.service.screen(
            prompt=prompt, image_bytes=data, tenant=who.tenant, purpose=purpose
        )
    )
    parts.metrics.observe_screen(result)
    return result
