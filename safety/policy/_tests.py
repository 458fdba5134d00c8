"""Policy test cases: YAML files beside the policy (`default_test.yaml` tests `default.yaml`).

    policy: default.yaml            # optional; defaults to this file's name without "_test"
    cases:                          # (a bare list of cases works too)
      - name: nude prompt is blocked
        covers: block-sexual-prompt # optional: the rule(s) this case is about
        stage: prompt               # the decision under test
        request: {tenant: t1}       # optional request facts
        findings:                   # compact findings, see below
          - sexual                  # category[:state][@stage]; state defaults to flagged
          - {category: sexual, stage: output, score: 0.93, check: opennsfw}
        expect: {action: block, rule: block-sexual-prompt}   # rule: null = the default

Every rule must have a case it decides ("deny" for a block rule) and a case that covers it
but is decided otherwise; missing coverage is reported as a failed result per rule. For a tenant
overlay, the rules it overrides or adds need that coverage (the base's tests cover the rest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genseal.errors import PolicyError

from .._findings import Category, CheckState, Finding, Stage
from ._engine import Policy
from ._model import Action, HarmCategory

__all__ = ["CaseResult", "parse_findings", "run_policy_tests"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class _CompactFinding(BaseModel):
    model_config = _STRICT

    category: Category
    state: CheckState | None = None
    stage: Stage | None = None
    score: float | None = None
    threshold: float | None = None
    check: str = "test"
    matched: list[str] = Field(default_factory=list)
    reason: str | None = None
    image_index: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> _CompactFinding:
        if isinstance(raw, str):
            rest, _, stage = raw.partition("@")
            category, _, state = rest.partition(":")
            return cls.model_validate(
                {
                    "category": category.strip(),
                    "state": state.strip() or None,
                    "stage": stage.strip() or None,
                }
            )
        return cls.model_validate(raw)

    def to_finding(self, default_stage: Stage) -> Finding:
        state = self.state
        if state is None:
            if self.score is not None and self.threshold is not None:
                state = CheckState.FLAGGED if self.score >= self.threshold else CheckState.CLEAN
            else:
                state = CheckState.FLAGGED
        score = self.score
        if score is None and state in (CheckState.FLAGGED, CheckState.CLEAN):
            score = 1.0 if state is CheckState.FLAGGED else 0.0
        return Finding(
            check=self.check,
            check_version="test",
            category=self.category,
            stage=self.stage or default_stage,
            state=state,
            score=score,
            threshold=self.threshold,
            reason=self.reason or (None if state is CheckState.CLEAN else f"{state.value} (test)"),
            image_index=self.image_index,
            details={"matched": self.matched} if self.matched else {},
        )


class _ShadowExpect(BaseModel):
    model_config = _STRICT

    action: Action
    rule: str | None = None


class _Expect(BaseModel):
    model_config = _STRICT

    action: Action
    rule: str | None = None
    category: HarmCategory | None = Field(
        default=None, description="The decision's harm category, when the case checks it."
    )
    shadow: _ShadowExpect | None = Field(
        default=None, description="The would-be decision of shadow rules (none: no difference)."
    )


class _Case(BaseModel):
    model_config = _STRICT

    name: str
    covers: list[str] = Field(default_factory=list)
    stage: Stage
    request: dict[str, Any] = Field(default_factory=dict)
    findings: list[Any] = Field(default_factory=list)
    expect: _Expect

    @field_validator("covers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class _TestFile(BaseModel):
    model_config = _STRICT

    policy: str | None = None
    cases: list[_Case]


class CaseResult(BaseModel):
    """The outcome of one test case (or of one rule's coverage check)."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    expected_action: Action | None = None
    expected_rule: str | None = None
    actual_action: Action | None = None
    actual_rule: str | None = None
    matched_rules: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why the case failed, if it did.")


def run_policy_tests(path: str | Path) -> list[CaseResult]:
    """Run a policy test file; one result per case, then one per uncovered rule.

    Raises `PolicyError` if the test file or its policy cannot be loaded.
    """
    path = Path(path)
    spec = _load_test_file(path)
    policy_path = path.parent / (spec.policy or path.name.replace("_test.", ".", 1))
    policy = Policy.load(policy_path)
    known = {rule.id for rule in policy.rules}

    results: list[CaseResult] = []
    decided: set[str] = set()
    covered_otherwise: set[str] = set()
    for case in spec.cases:
        results.append(_run_case(policy, case, known))
        if case.expect.rule is not None:
            decided.add(case.expect.rule)
        if case.expect.shadow is not None and case.expect.shadow.rule is not None:
            decided.add(case.expect.shadow.rule)
        covered_otherwise.update(r for r in case.covers if r != case.expect.rule)

    # An overlay's tests cover what the overlay changes; the base's own tests cover the rest.
    own = set(policy.spec.overrides) | {r.id for r in policy.spec.add}
    for rule in policy.rules:
        if policy.base is not None and rule.id not in own:
            continue
        missing = []
        if rule.id not in decided:
            missing.append(f"no case where it decides ({rule.action.value})")
        if rule.id not in covered_otherwise:
            missing.append("no case that `covers` it and is decided otherwise")
        if missing:
            results.append(
                CaseResult(name=f"coverage: {rule.id}", passed=False, error="; ".join(missing))
            )
    return results


def parse_findings(raw: Sequence[Any], stage: Stage) -> list[Finding]:
    """Findings from test-file form: `Finding`s, full finding mappings (with `check_version`),
    or compact ones (`"sexual:clean@prompt"`, `{category, score, ...}`)."""
    findings: list[Finding] = []
    for item in raw:
        if isinstance(item, Finding):
            findings.append(item)
        elif isinstance(item, Mapping) and "check_version" in item:
            findings.append(Finding.model_validate(item))
        else:
            findings.append(_CompactFinding.parse(item).to_finding(stage))
    return findings


def _load_test_file(path: Path) -> _TestFile:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy test file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read policy test file: {exc}") from None
    if isinstance(document, list):
        document = {"cases": document}
    try:
        return _TestFile.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{path}: invalid policy test file: {exc}") from None


def _run_case(policy: Policy, case: _Case, known: set[str]) -> CaseResult:
    expected: Mapping[str, Any] = {
        "name": case.name,
        "expected_action": case.expect.action,
        "expected_rule": case.expect.rule,
    }
    shadow_rule = case.expect.shadow.rule if case.expect.shadow else None
    unknown = [
        r for r in [*case.covers, case.expect.rule, shadow_rule] if r is not None and r not in known
    ]
    if unknown:
        return CaseResult(**expected, passed=False, error=f"unknown rule id(s): {unknown}")
    try:
        findings = parse_findings(case.findings, case.stage)
    except ValidationError as exc:
        return CaseResult(**expected, passed=False, error=f"invalid finding: {exc}")
    decision = policy.decide(findings, case.stage, case.request)
    problems = [f"rule {e.rule!r} failed to run: {e.error}" for e in decision.errors]
    if decision.action is not case.expect.action:
        problems.append(f"action {decision.action.value}, expected {case.expect.action.value}")
    if decision.rule != case.expect.rule:
        problems.append(f"decided by {decision.rule!r}, expected {case.expect.rule!r}")
    wanted_category = case.expect.category
    if wanted_category is not None and decision.category is not wanted_category:
        got_category = decision.category.value if decision.category else None
        problems.append(f"category {got_category}, expected {wanted_category.value}")
    shadow = decision.shadow
    want = case.expect.shadow
    got = (shadow.action, shadow.rule) if shadow else None
    wanted = (want.action, want.rule) if want else None
    if wanted != got:
        problems.append(
            f"shadow decision {got and (got[0].value, got[1])}, expected"
            f" {wanted and (wanted[0].value, wanted[1])}"
        )
    return CaseResult(
        **expected,
        passed=not problems,
        actual_action=decision.action,
        actual_rule=decision.rule,
        matched_rules=decision.matched_rules,
        error="; ".join(problems) or None,
    )
