"""`genseal policy explain` / `POST /v1/policy/evaluate`: which rules matched an input, and why.

An input is a stage, the request facts and findings (real ones from screening, or the compact
form of the test files: `"sexual"`, `"minors:clean@prompt"`, `{category, score, ...}`).
For every matched rule the explanation names the findings that, each on its own, make the
condition hold; a rule that holds only on several findings together (or on the request alone)
says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._findings import Finding, Stage
from ._engine import Policy, RuleResult
from ._model import Decision
from ._tests import parse_findings

__all__ = ["Explanation", "explain"]


class RuleExplanation(RuleResult):
    matched_by: list[int] = Field(
        default_factory=list, description="Indices of findings that alone make the rule hold."
    )


class Explanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage
    request: dict[str, Any]
    findings: list[Finding]
    decision: Decision
    rules: list[RuleExplanation]


def explain(
    policy: Policy,
    stage: Stage | str,
    findings: Sequence[Finding | Mapping[str, Any] | str],
    request: Mapping[str, Any] | None = None,
) -> Explanation:
    """Decide, and explain every rule's part in the decision."""
    stage = Stage(stage)
    parsed = parse_findings(list(findings), stage)
    facts = dict(request or {})
    decision, results = policy.explain(parsed, stage, facts)
    explained: list[RuleExplanation] = []
    for result in results:
        matched_by: list[int] = []
        why = result.why
        if result.matched:
            for index, finding in enumerate(parsed):
                _, alone = policy.explain([finding], stage, facts)
                if any(r.rule == result.rule and r.matched for r in alone):
                    matched_by.append(index)
            if matched_by:
                why = "condition held on finding(s) " + ", ".join(
                    f"#{i} {parsed[i].category.value}:{parsed[i].state.value}"
                    f"@{parsed[i].stage.value}"
                    for i in matched_by
                )
            else:
                why = "condition held on the findings together (or on the request alone)"
        if result.rule == decision.rule:
            why += f"; decides ({decision.action.value})"
        elif result.rule in decision.consent_satisfied:
            why += "; met by the request's consent attestation"
        elif result.matched and result.mode == "shadow":
            why += "; shadow rule: recorded, not enforced"
        elif result.matched:
            why += "; outranked by the deciding rule"
        explained.append(
            RuleExplanation(**result.model_dump(exclude={"why"}), why=why, matched_by=matched_by)
        )
    return Explanation(
        stage=stage, request=facts, findings=parsed, decision=decision, rules=explained
    )
