"""How the service acts on decisions: outcomes per output, carry-over, audit records, blur."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from PIL import Image, ImageFilter

from gen._requests import (
    GenerationResult,
    HeldImage,
    RequestContext,
    SealedImage,
    WithheldImage,
)
from safety import Action, Decision, Finding, Policy

__all__ = ["Outcome", "audit_record", "blur", "carry"]


class Outcome:
    """What became of a request's outputs."""

    def __init__(self) -> None:
        self.released: list[SealedImage] = []
        self.withheld: list[WithheldImage] = []
        self.held: list[HeldImage] = []

    @property
    def status(self) -> Literal["released", "held", "blocked"]:
        if self.released:
            return "released"
        return "held" if self.held else "blocked"

    @property
    def deciding(self) -> Decision:
        first = self.released or self.held or self.withheld
        return first[0].decision

    def result(
        self,
        request_id: str,
        findings: list[Finding],
        timings: dict[str, float],
        *,
        model_id: str | None,
        model_version: str | None = None,
    ) -> GenerationResult:
        return GenerationResult(
            request_id=request_id,
            status=self.status,
            decision=self.deciding,
            findings=findings,
            images=self.released,
            withheld=self.withheld,
            held=self.held,
            model_id=model_id,
            model_version=model_version,
            timings_ms={k: round(v, 2) for k, v in timings.items()},
        )


def carry(policy: Policy, input_decision: Decision, output_decision: Decision) -> Decision:
    """A `review` or `blur` taken on the input applies to every output it led to, unless the
    output's own decision ranks higher in the policy's precedence.

    The consent the input decision accepted goes along too: a `require_consent` rule is
    decided on before generating, and the output's decision, the one a result reports and the
    audit log keeps, would otherwise not say that consent is why the image could be made.
    """
    if input_decision.action in (Action.REVIEW, Action.BLUR):
        rank = {action: i for i, action in enumerate(policy.spec.precedence)}
        if rank[input_decision.action] < rank[output_decision.action]:
            return input_decision
    if not input_decision.consent_satisfied:
        return output_decision
    satisfied = [*input_decision.consent_satisfied, *output_decision.consent_satisfied]
    return output_decision.model_copy(update={"consent_satisfied": list(dict.fromkeys(satisfied))})


def audit_record(
    decision: Decision, findings: Sequence[Finding], context: RequestContext | dict[str, Any]
) -> dict[str, Any]:
    """The audit `decision`: the decision plus what it was taken on (findings and request
    context, never the prompt), so `genseal policy replay` can re-decide it later."""
    fields = context.as_dict() if isinstance(context, RequestContext) else context
    return {
        **decision.as_record(),
        "findings": [
            f.model_dump(mode="json", exclude={"latency_ms"}, exclude_none=True) for f in findings
        ],
        "context": {k: v for k, v in fields.items() if v is not None},
    }


def blur(image: Image.Image) -> Image.Image:
    """The released variant of a `blur` decision: unrecognisable detail, same size."""
    radius = max(8.0, max(image.size) / 16)
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius))
