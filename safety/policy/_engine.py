"""The policy engine: rule files (YAML + CEL conditions) that decide on findings.

A policy file is data that policy teams edit; everything that can be checked is checked when it
loads, so a broken file fails at deploy time, not on a user's request:

- YAML is read with `safe_load` only; duplicate keys are rejected (it would keep the last);
- the structure is validated by pydantic models that forbid unknown fields (`_model`);
- every `when` is compiled as CEL, may only use the variables the engine provides
  (`findings`, `request`, `stage`, `thresholds`), and is evaluated on probe inputs for every
  stage, where it must return a bool.

Errors name the file, the rule and the line:column. At decide time a condition that fails to
run does not raise: it is recorded in the decision's `errors` and the decision fails closed
(block), so the caller records and withholds rather than crashing or releasing.

Decision: every rule that applies to the stage is evaluated (all matches are recorded); the
matched action earliest in `precedence` wins (block first), and among rules with that action the
first in file order decides. A `require_consent` rule is met when the request carries a consent
attestation. No match → `default_action`. Shadow rules (`mode: shadow`) never decide: the
would-be decision with them enforced is recorded in `decision.shadow` when it differs.
A shadow overlay (`mode: shadow` + `extends`) enforces its base and records its own decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cel
from pydantic import BaseModel, ConfigDict, ValidationError

from genseal.errors import PolicyError

from .._findings import Category, Finding, Stage, cel_findings
from .._yaml_lines import LineIndex
from ._eval import RuleOrigin, cel_context, compile_condition, evaluate, request_facts
from ._model import (
    Action,
    Decision,
    HarmCategory,
    PolicySpec,
    Rule,
    RuleError,
    Severity,
    ShadowOutcome,
)
from ._yaml import PolicyProblem, describe_validation, did_you_mean, parse_yaml

__all__ = [
    "Policy",
    "PolicyEngine",
    "RuleResult",
    "default_policy_path",
    "load_policy",
]

_POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"


def default_policy_path(name: str = "default") -> Path:
    """Path of a policy shipped in the repository's `policies/` ("default", "strict")."""
    return _POLICIES_DIR / f"{name}.yaml"


@runtime_checkable
class PolicyEngine(Protocol):
    """The seam the service decides through (the YAML+CEL `Policy` is one implementation)."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    def decide(
        self, findings: Sequence[Finding], stage: Stage, request: Mapping[str, Any]
    ) -> Decision: ...


class RuleResult(BaseModel):
    """How one rule fared on one input (`Policy.explain`)."""

    model_config = ConfigDict(frozen=True)

    rule: str
    action: Action
    mode: str
    applies: bool
    matched: bool = False
    error: str | None = None
    why: str


_FAIL_CLOSED_MESSAGE = "This request could not be checked against the policy, so it was stopped."


class Policy:
    """A loaded, validated and compiled policy (base or overlay). Immutable; thread-safe."""

    def __init__(
        self,
        spec: PolicySpec,
        rules: Sequence[Rule],
        programs: Mapping[str, cel.Program],
        *,
        path: Path,
        sha256: str,
        base: Policy | None = None,
        file_sha256: str = "",
    ) -> None:
        self.spec = spec
        self.file_sha256 = file_sha256 or sha256  # of this file alone (overlays: sha256 differs)
        self.path = path
        self.sha256 = sha256
        self.base = base
        self._rules = tuple(rules)
        self._programs = dict(programs)
        self._rank = {action: index for index, action in enumerate(spec.precedence)}

    # --- the file's fields -------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def prompt_terms(self) -> dict[Category, list[str]]:
        source = self.base.spec if self.base is not None else self.spec
        return {c: list(t) for c, t in source.prompt_terms.items()}

    @property
    def prompt_patterns(self) -> dict[Category, list[str]]:
        source = self.base.spec if self.base is not None else self.spec
        return {c: list(p) for c, p in source.prompt_patterns.items()}

    @property
    def prompt_concepts(self) -> dict[Category, list[str]]:
        source = self.base.spec if self.base is not None else self.spec
        return {c: list(d) for c, d in source.prompt_concepts.items()}

    @property
    def prompt_term_exceptions(self) -> list[str]:
        source = self.base.spec if self.base is not None else self.spec
        return list(source.prompt_term_exceptions)

    @property
    def prompt_classifier(self) -> str | None:
        """`builtin`, a model directory (relative to the base policy's file), or None."""
        source = self.base if self.base is not None else self
        value = source.spec.prompt_classifier
        if value is None or value == "builtin" or Path(value).is_absolute():
            return value
        return str(source.path.parent / value)

    @property
    def thresholds(self) -> dict[str, float]:
        merged = dict(self.base.thresholds) if self.base is not None else {}
        merged.update(self.spec.thresholds)
        return merged

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The effective rules (overlay: base rules overridden, minus disabled, plus added)."""
        return self._rules

    @property
    def default_action(self) -> Action:
        if self.spec.default_action is not None:
            return self.spec.default_action
        return self.base.default_action if self.base is not None else Action.ALLOW

    @property
    def default_message(self) -> str | None:
        if self.spec.default_message is not None or self.base is None:
            return self.spec.default_message
        return self.base.default_message

    def __repr__(self) -> str:
        return f"Policy(id={self.id!r}, version={self.version!r}, path={str(self.path)!r})"

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load, validate and compile a policy file; any problem raises `PolicyError`."""
        policy, problems = load_policy(Path(path))
        errors = [p for p in problems if p.severity == "error"]
        if policy is None or errors:
            raise PolicyError("; ".join(str(p) for p in errors) or f"{path}: invalid policy")
        return policy

    @classmethod
    def from_yaml(cls, data: str | bytes, *, path: str | Path = "<string>") -> Policy:
        """Like `load`, from the file's content (`path` names it and anchors `extends`)."""
        raw = data.encode() if isinstance(data, str) else data
        policy, problems = load_policy(Path(path), raw)
        errors = [p for p in problems if p.severity == "error"]
        if policy is None or errors:
            raise PolicyError("; ".join(str(p) for p in errors) or f"{path}: invalid policy")
        return policy

    # --- deciding ----------------------------------------------------------------------------

    def decide(
        self, findings: Sequence[Finding], stage: Stage, request: Mapping[str, Any]
    ) -> Decision:
        """Decide on `findings` for `stage`. Never raises for a rule that fails to run: the
        decision fails closed (block) and names the rule and the error."""
        decision, _ = self.evaluate(findings, stage, request)
        return decision

    def explain(
        self, findings: Sequence[Finding], stage: Stage, request: Mapping[str, Any]
    ) -> tuple[Decision, list[RuleResult]]:
        """The decision plus, for every rule, whether it applied, matched or failed, and why."""
        return self.evaluate(findings, stage, request)

    def evaluate(
        self, findings: Sequence[Finding], stage: Stage, request: Mapping[str, Any]
    ) -> tuple[Decision, list[RuleResult]]:
        stage = Stage(stage)
        facts = request_facts(request, stage)
        context = cel_context(cel_findings(list(findings)), stage, facts, self.thresholds)
        results: list[RuleResult] = []
        for rule in self._rules:
            if rule.stage is not None and rule.stage is not stage:
                results.append(_result(rule, applies=False, why=f"only for stage {rule.stage}"))
                continue
            try:
                matched = evaluate(self._programs[rule.id], context)
            except PolicyError as exc:
                results.append(_result(rule, applies=True, error=str(exc), why="failed to run"))
                continue
            why = "condition held" if matched else "condition did not hold"
            results.append(_result(rule, applies=True, matched=matched, why=why))

        has_consent = bool(facts.get("has_consent"))
        enforced = [r for r in results if r.mode == "enforce"]
        decision = self._pick(enforced, stage, has_consent)
        would_be = self._pick(results, stage, has_consent)
        if (would_be.action, would_be.rule) != (decision.action, decision.rule):
            decision = decision.model_copy(update={"shadow": self._shadow(would_be, "rule")})
        if self.spec.mode == "shadow" and self.base is not None:
            enforced_decision, _ = self.base.evaluate(findings, stage, request)
            decision = enforced_decision.model_copy(
                update={"shadow": self._shadow(decision, "policy")}
            )
        return decision, results

    def _pick(self, results: Sequence[RuleResult], stage: Stage, has_consent: bool) -> Decision:
        by_id = {rule.id: rule for rule in self._rules}
        failed = [r for r in results if r.error is not None]
        matched = [r for r in results if r.matched]
        if failed:
            first = by_id[failed[0].rule]
            return self._decision(
                Action.BLOCK,
                stage,
                rule=first,
                message=_FAIL_CLOSED_MESSAGE,
                reason=f"condition of rule {first.id!r} failed to evaluate; failing closed",
                matched=matched,
                errors=[RuleError(rule=r.rule, error=r.error or "") for r in failed],
            )
        satisfied = [r.rule for r in matched if r.action is Action.REQUIRE_CONSENT and has_consent]
        deciding = [by_id[r.rule] for r in matched if r.rule not in satisfied]
        if not deciding:
            return self._decision(
                self.default_action,
                stage,
                rule=None,
                message=self.default_message,
                reason="no rule matched: the policy's default action applies",
                matched=matched,
                satisfied=satisfied,
            )
        top = min(self._rank[r.action] for r in deciding)
        rule = next(r for r in deciding if self._rank[r.action] == top)
        return self._decision(
            rule.action,
            stage,
            rule=rule,
            message=rule.message,
            reason=rule.reason or rule.description or None,
            matched=matched,
            satisfied=satisfied,
        )

    def _decision(
        self,
        action: Action,
        stage: Stage,
        *,
        rule: Rule | None,
        message: str | None,
        reason: str | None,
        matched: Sequence[RuleResult],
        satisfied: Sequence[str] = (),
        errors: Sequence[RuleError] = (),
    ) -> Decision:
        severity = rule.effective_severity if rule is not None else Severity.INFO
        if rule is None or errors:
            severity = Severity.HIGH if action is Action.BLOCK else Severity.INFO
        return Decision(
            action=action,
            stage=stage,
            rule=rule.id if rule is not None else None,
            category=HarmCategory.UNSCREENED if errors else (rule.category if rule else None),
            severity=severity,
            message=message,
            reason=reason,
            matched_rules=[r.rule for r in matched],
            consent_satisfied=list(satisfied),
            errors=list(errors),
            policy_id=self.id,
            policy_version=self.version,
            policy_sha256=self.sha256,
            base_policy_sha256=self.base.sha256 if self.base is not None else None,
        )

    def _shadow(self, would_be: Decision, source: str) -> ShadowOutcome:
        return ShadowOutcome.model_validate(
            {
                "source": source,
                "action": would_be.action,
                "rule": would_be.rule,
                "message": would_be.message,
                "reason": would_be.reason,
                "matched_rules": would_be.matched_rules,
                "policy_id": self.id,
                "policy_version": self.version,
                "policy_sha256": self.sha256,
            }
        )


def _result(
    rule: Rule, *, applies: bool, why: str, matched: bool = False, error: str | None = None
) -> RuleResult:
    return RuleResult(
        rule=rule.id,
        action=rule.action,
        mode=rule.mode,
        applies=applies,
        matched=matched,
        error=error,
        why=why,
    )


# --- loading ---------------------------------------------------------------------------------


def load_policy(
    path: Path, data: bytes | None = None, *, _chain: tuple[Path, ...] = ()
) -> tuple[Policy | None, list[PolicyProblem]]:
    """Build a policy from its file; every problem found (not just the first), positioned."""
    where = str(path)
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, [PolicyProblem(file=where, message="policy file not found")]
        except OSError as exc:
            return None, [PolicyProblem(file=where, message=f"cannot read policy file: {exc}")]
    file_sha256 = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [PolicyProblem(file=where, message=f"policy file is not UTF-8: {exc}")]
    document, warnings = parse_yaml(text, path, PolicySpec)
    if document is None:
        return None, warnings
    lines = LineIndex(text)
    try:
        spec = PolicySpec.model_validate(document)
    except ValidationError as exc:
        return None, [*warnings, *describe_validation(exc, path, lines, document, PolicySpec)]
    policy, problems = _build(spec, path, data, lines, file_sha256, _chain)
    return policy, [*warnings, *problems]


def _build(
    spec: PolicySpec,
    path: Path,
    data: bytes,
    lines: LineIndex,
    file_sha256: str,
    chain: tuple[Path, ...],
) -> tuple[Policy | None, list[PolicyProblem]]:
    """The policy a valid file describes (its base loaded, its conditions compiled)."""
    where = str(path)
    problems: list[PolicyProblem] = []

    base: Policy | None = None
    origins: dict[str, RuleOrigin] = {}
    if spec.extends is not None:
        base_path = _resolve_extends(spec.extends, path)
        line, column = lines.position(("extends",))
        if base_path is None:
            return None, [
                PolicyProblem(
                    file=where,
                    line=line,
                    column=column,
                    message=f"extends {spec.extends!r}: no such policy beside this file"
                    " or in its parent directory",
                )
            ]
        if base_path.resolve() in chain or base_path.resolve() == path.resolve():
            return None, [
                PolicyProblem(file=where, line=line, column=column, message="extends forms a loop")
            ]
        base, base_problems = load_policy(base_path, _chain=(*chain, path.resolve()))
        if base is None:
            return None, [
                PolicyProblem(
                    file=where, line=line, column=column, message=f"base policy {base_path}: {p}"
                )
                for p in base_problems
                if p.severity == "error"
            ]
        rules, problems = _merge(spec, base, path, lines)
        if problems:
            return None, problems
        for index, rule in enumerate(spec.add):
            origins[rule.id] = RuleOrigin(path, lines, ("add", index))
        for rule_id in spec.overrides:
            origins[rule_id] = RuleOrigin(path, lines, ("overrides", rule_id))
        sha256 = hashlib.sha256(f"{base.sha256}\n".encode() + data).hexdigest()
    else:
        rules = list(spec.rules)
        for index, rule in enumerate(spec.rules):
            origins[rule.id] = RuleOrigin(path, lines, ("rules", index))
        seen: dict[str, int] = {}
        for index, rule in enumerate(spec.rules):
            if rule.id in seen:
                line, column = lines.position(("rules", index, "id"))
                problems.append(
                    PolicyProblem(
                        file=where,
                        line=line,
                        column=column,
                        rule=rule.id,
                        message=f"duplicate rule id (first defined as rule #{seen[rule.id] + 1})",
                    )
                )
            seen.setdefault(rule.id, index)
        if problems:
            return None, problems
        sha256 = file_sha256

    thresholds = dict(base.thresholds) if base is not None else {}
    thresholds.update(spec.thresholds)
    programs: dict[str, cel.Program] = {}
    for rule in rules:
        origin = origins.get(rule.id)
        if origin is None and base is not None:
            programs[rule.id] = base._programs[rule.id]  # unchanged base rule: compiled there
            continue
        assert origin is not None
        program, rule_problems = compile_condition(rule, thresholds, origin)
        problems += rule_problems
        if program is not None:
            programs[rule.id] = program
    if any(p.severity == "error" for p in problems):
        return None, problems
    policy = Policy(
        spec, rules, programs, path=path, sha256=sha256, base=base, file_sha256=file_sha256
    )
    return policy, problems


def _resolve_extends(name: str, path: Path) -> Path | None:
    candidates = [name] if name.endswith((".yaml", ".yml")) else [f"{name}.yaml", name]
    for directory in (path.parent, path.parent.parent):
        for candidate in candidates:
            found = directory / candidate
            if found.is_file():
                return found
    return None


def _merge(
    spec: PolicySpec, base: Policy, path: Path, lines: LineIndex
) -> tuple[list[Rule], list[PolicyProblem]]:
    """The overlay's effective rules: base order kept, overrides applied, disabled dropped."""
    problems: list[PolicyProblem] = []
    known = {rule.id for rule in base.rules}

    def unknown(loc: tuple[str | int, ...], rule_id: str, what: str) -> None:
        line, column = lines.position(loc)
        problems.append(
            PolicyProblem(
                file=str(path),
                line=line,
                column=column,
                rule=rule_id,
                message=f"{what}: the base policy {base.id!r} has no such rule"
                + did_you_mean(rule_id, known),
            )
        )

    for rule_id in spec.overrides:
        if rule_id not in known:
            unknown(("overrides", rule_id), rule_id, "override")
    for index, rule_id in enumerate(spec.disable):
        if rule_id not in known:
            unknown(("disable", index), rule_id, "disable")
    rules: list[Rule] = []
    for rule in base.rules:
        if rule.id in spec.disable:
            continue
        override = spec.overrides.get(rule.id)
        if override is not None:
            changes = override.model_dump(exclude_unset=True)
            try:
                rule = Rule.model_validate({**rule.model_dump(), **changes})
            except ValidationError as exc:
                line, column = lines.position(("overrides", rule.id))
                for error in exc.errors():
                    problems.append(
                        PolicyProblem(
                            file=str(path),
                            line=line,
                            column=column,
                            rule=rule.id,
                            message=error["msg"].removeprefix("Value error, "),
                        )
                    )
                continue
        rules.append(rule)
    for index, rule in enumerate(spec.add):
        if rule.id in known:
            line, column = lines.position(("add", index, "id"))
            problems.append(
                PolicyProblem(
                    file=str(path),
                    line=line,
                    column=column,
                    rule=rule.id,
                    message="added rule has the id of a base rule (use `overrides`)",
                )
            )
        known.add(rule.id)
        rules.append(rule)
    return rules, problems
