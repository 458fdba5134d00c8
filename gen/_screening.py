"""Screening without generating: the findings on a prompt and an input image, and the decision
the policy takes on them before anything would be generated.

`SealedGenerationService.screen` and `generate` decide through `decide_input`; `screen_prompt`
is the same screen for a prompt alone, built from only what that needs (the policy set and the
prompt checks it configures), so `genseal screen --prompt` opens no store, creates no signing
identity and loads no image model. Screening records nothing: no audit entry, no review.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gen._backend import MAX_PROMPT_CHARS
from gen._requests import RequestContext, ScreenResult
from genseal.errors import InputError
from safety import (
    Decision,
    Finding,
    Policy,
    PolicySet,
    Screener,
    Stage,
    default_policy_path,
    prompt_checks_for,
)

if TYPE_CHECKING:
    from PIL import Image

    from genseal.settings import Settings

__all__ = ["check_prompt_length", "decide_input", "screen", "screen_prompt"]


def decide_input(
    policy: Policy, findings: Sequence[Finding], context: RequestContext
) -> tuple[Decision, list[Finding]]:
    """Decide before generating: on the prompt, then on prompt and input image together.
    Returns the decision and the findings it was taken on (what the audit log records)."""
    prompt_findings = [f for f in findings if f.stage is Stage.PROMPT]
    decision = policy.decide(prompt_findings, Stage.PROMPT, context.at(Stage.PROMPT).as_dict())
    if decision.blocked or not context.has_input_image:
        return decision, prompt_findings
    both = list(findings)
    return policy.decide(both, Stage.INPUT, context.at(Stage.INPUT).as_dict()), both


def screen(
    screener: Screener,
    policies: PolicySet,
    *,
    prompt: str | None = None,
    image: Image.Image | None = None,
    tenant: str | None = None,
    purpose: str | None = None,
    has_consent: bool = False,
) -> ScreenResult:
    """The findings of `screener` on a prompt and a decoded input image, and the decision of
    the tenant's policy on them."""
    if not prompt and image is None:
        raise InputError("give a prompt, an image, or both to screen")
    check_prompt_length(prompt)
    findings: list[Finding] = screener.screen_prompt(prompt) if prompt else []
    if image is not None:
        findings += screener.screen_images([image], Stage.INPUT)
    context = RequestContext(
        operation="screen",
        tenant=tenant or "",
        purpose=purpose or "",
        has_input_image=image is not None,
        has_consent=has_consent,
    )
    decision, _ = decide_input(policies.for_tenant(tenant), findings, context)
    return ScreenResult(request_id=uuid.uuid4().hex, decision=decision, findings=findings)


def screen_prompt(
    settings: Settings,
    prompt: str,
    *,
    tenant: str | None = None,
    purpose: str | None = None,
    has_consent: bool = False,
) -> ScreenResult:
    """`SealedGenerationService(settings).screen(prompt=...)` without the service: the same
    policy files, prompt checks and decision."""
    check_prompt_length(prompt)  # before the policy loads: a refusal costs nothing
    policies = PolicySet.load(settings.policy or default_policy_path(), settings.policy_tenants_dir)
    screener = Screener(prompt_checks=prompt_checks_for(policies.base), image_checks=[])
    return screen(
        screener, policies, prompt=prompt, tenant=tenant, purpose=purpose, has_consent=has_consent
    )


def check_prompt_length(prompt: str | None) -> None:
    """InputError for a prompt longer than generation accepts: the prompt checks cost time in
    proportion to the text, so what generation would refuse is refused before any runs."""
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"prompt is {len(prompt)} characters long; at most {MAX_PROMPT_CHARS} are accepted"
        )
