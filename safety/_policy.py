"""The policy engine: rule files (YAML + CEL conditions) that decide on findings.

A policy file is data that policy teams edit; everything that can be checked is checked when it
loads, so a broken file fails at deploy time, not on a user's request:

- YAML is read with `safe_load` only; duplicate keys are rejected (it would keep the last);
- the structure is validated by pydantic models that forbid unknown fields;
- every `when` is compiled as CEL, may only use the variables the engine provides
  (`findings`, `request`, `stage`, `thresholds`), and is evaluated on probe inputs for every
  stage, where it must return a bool.

Errors name the file, the rule and the line. At decide time an evaluation error raises
`PolicyError`; the caller fails closed.

Decision: every rule that applies to the stage is evaluated (all matches are recorded for the
audit log); the most severe matched action wins (block over allow), and among rules with that
action the first in file order decides. No match → `default_action`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cel
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from genseal.errors import PolicyError

from ._findings import Category, CheckState, Finding, Stage
from ._normalize import term_regex

__all__ = [
    "Action",
    "Decision",
    "Policy",
    "PolicyEngine",
    "Rule",
    "default_policy_path",
]

_POLICIES_DIR = Path(__file__).resolve().parents[1] / "policies"


def default_policy_path(name: str = "default") -> Path:
    """Path of a policy shipped in the repository's `policies/` ("default", "strict")."""
    return _POLICIES_DIR / f"{name}.yaml"


class Action(StrEnum):
    """What a rule (or the default) does. More actions (blur, review, ...) will come."""

    ALLOW = "allow"
    BLOCK = "block"


# Higher wins when several rules match. New actions slot in by severity.
_SEVERITY: dict[Action, int] = {Action.ALLOW: 0, Action.BLOCK: 100}

_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Rule(BaseModel):
    """One rule of a policy file."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    description: str = ""
    stage: Stage | None = Field(
        default=None, description="If set, the rule applies only to that stage's decision."
    )
    when: str = Field(min_length=1, description="CEL condition; must evaluate to a bool.")
    action: Action
    message: str | None = Field(default=None, description="User-facing text.")
    reason: str | None = Field(default=None, description="Audit-log text.")

    @model_validator(mode="after")
    def _block_needs_message(self) -> Rule:
        if self.action is Action.BLOCK and not self.message:
            raise ValueError("a block rule needs a user-facing `message`")
        return self


class PolicySpec(BaseModel):
    """The schema of a policy file."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    version: str = Field(min_length=1)
    description: str = ""
    prompt_terms: dict[Category, list[str]] = Field(default_factory=dict)
    prompt_patterns: dict[Category, list[str]] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    default_action: Action = Action.ALLOW
    default_message: str | None = Field(
        default=None, description="User-facing text when the default action blocks."
    )

    @field_validator("prompt_terms")
    @classmethod
    def _terms_compile(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for category, terms in value.items():
            for term in terms:
                try:
                    term_regex(term)
                except ValueError as exc:
                    raise ValueError(f"{category.value}: {exc}") from exc
        return value

    @field_validator("prompt_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for category, sources in value.items():
            for source in sources:
                try:
                    re.compile(source)
                except re.error as exc:
                    raise ValueError(f"{category.value}: invalid regex {source!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _default_block_needs_message(self) -> PolicySpec:
        if self.default_action is Action.BLOCK and not self.default_message:
            raise ValueError("default_action block needs a `default_message`")
        return self


class Decision(BaseModel):
    """What the policy decided for one stage (one image, for outputs), and why."""

    model_config = ConfigDict(frozen=True)

    action: Action
    stage: Stage
    rule: str | None = Field(description="The deciding rule's id; None when the default applied.")
    message: str | None = Field(default=None, description="User-facing text.")
    reason: str | None = Field(default=None, description="Audit-log text.")
    matched_rules: list[str] = Field(
        default_factory=list, description="Every rule whose condition held, in file order."
    )
    policy_id: str
    policy_version: str
    policy_sha256: str

    @property
    def blocked(self) -> bool:
        return self.action is Action.BLOCK


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


# Variables a `when` may use; anything else is a typo the file should not load with.
_VARIABLES = frozenset({"findings", "request", "stage", "thresholds"})
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_REQUEST_DEFAULTS: dict[str, Any] = {
    "tenant": "",
    "model": "",
    "stage": "",
    "has_input_image": False,
    "preset": "",
    "n": 1,
}


class Policy:
    """A loaded, validated and compiled policy file. Immutable; safe to share across threads."""

    def __init__(self, spec: PolicySpec, *, path: Path, sha256: str, source: str = "") -> None:
        self.spec = spec
        self.path = path
        self.sha256 = sha256
        lines = _LineIndex(source)
        self._programs: dict[str, cel.Program] = {}
        for index, rule in enumerate(spec.rules):
            where = f"{path}: rule {rule.id!r}{lines.at(('rules', index, 'when'))}"
            self._programs[rule.id] = _compile(rule, where, spec.thresholds)

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
    def prompt_terms(self) -> dict[Category, list[str]]:
        return {c: list(t) for c, t in self.spec.prompt_terms.items()}

    @property
    def prompt_patterns(self) -> dict[Category, list[str]]:
        return {c: list(p) for c, p in self.spec.prompt_patterns.items()}

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.spec.thresholds)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(self.spec.rules)

    @property
    def default_action(self) -> Action:
        return self.spec.default_action

    def __repr__(self) -> str:
        return f"Policy(id={self.id!r}, version={self.version!r}, path={str(self.path)!r})"

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load, validate and compile a policy file; any problem raises `PolicyError`."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PolicyError(f"{path}: policy file not found") from None
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy file: {exc}") from exc
        return cls.from_yaml(data, path=path)

    @classmethod
    def from_yaml(cls, data: str | bytes, *, path: str | Path = "<string>") -> Policy:
        """Like `load`, from the file's content (`path` is only used in messages)."""
        path = Path(path)
        raw = data.encode() if isinstance(data, str) else data
        sha256 = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{path}: policy file is not UTF-8: {exc}") from exc
        document = _parse_yaml(text, path)
        lines = _LineIndex(text)
        try:
            spec = PolicySpec.model_validate(document)
        except ValidationError as exc:
            raise PolicyError(_describe_validation(exc, path, lines, document)) from None
        seen: dict[str, int] = {}
        for index, rule in enumerate(spec.rules):
            if rule.id in seen:
                raise PolicyError(
                    f"{path}: rule {rule.id!r}{lines.at(('rules', index, 'id'))}: duplicate rule"
                    f" id (first defined as rule #{seen[rule.id] + 1})"
                )
            seen[rule.id] = index
        return cls(spec, path=path, sha256=sha256, source=text)

    # --- deciding ----------------------------------------------------------------------------

    def decide(
        self, findings: Sequence[Finding], stage: Stage, request: Mapping[str, Any]
    ) -> Decision:
        """Decide on `findings` for `stage`; raises `PolicyError` if a condition fails to run."""
        stage = Stage(stage)
        context = _context(
            [f.as_cel() for f in findings], stage, _request_facts(request, stage), self.thresholds
        )
        matched: list[Rule] = []
        for rule in self.spec.rules:
            if rule.stage is not None and rule.stage is not stage:
                continue
            if _evaluate(self._programs[rule.id], context, f"{self.path}: rule {rule.id!r}"):
                matched.append(rule)
        if not matched:
            return self._decision(
                self.spec.default_action,
                stage,
                rule=None,
                message=self.spec.default_message,
                reason="no rule matched: the policy's default action applies",
                matched=matched,
            )
        top = max(_SEVERITY[r.action] for r in matched)
        deciding = next(r for r in matched if _SEVERITY[r.action] == top)
        return self._decision(
            deciding.action,
            stage,
            rule=deciding.id,
            message=deciding.message,
            reason=deciding.reason or deciding.description or None,
            matched=matched,
        )

    def _decision(
        self,
        action: Action,
        stage: Stage,
        *,
        rule: str | None,
        message: str | None,
        reason: str | None,
        matched: list[Rule],
    ) -> Decision:
        return Decision(
            action=action,
            stage=stage,
            rule=rule,
            message=message,
            reason=reason,
            matched_rules=[r.id for r in matched],
            policy_id=self.id,
            policy_version=self.version,
            policy_sha256=self.sha256,
        )


# --- helpers ---------------------------------------------------------------------------------


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{path}: a policy file must be a YAML mapping at the top level")
    # safe_load keeps the last of two equal keys; in a rule that silently drops a condition.
    duplicate = _first_duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
    if duplicate is not None:
        key, line = duplicate
        raise PolicyError(f"{path}: duplicate key {key!r} (line {line})")
    return document


def _first_duplicate_key(root: yaml.Node | None) -> tuple[str, int] | None:
    stack, visited = [root], set()
    while stack:
        node = stack.pop()
        # Aliases share nodes (and may even form cycles): visit each node once.
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        return key_node.value, key_node.start_mark.line + 1
                    seen.add(key_node.value)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


class _LineIndex:
    """Maps a location in the document (keys and indices) to " (line N)" for messages."""

    def __init__(self, text: str) -> None:
        self._root: yaml.Node | None = None
        if text:
            try:
                self._root = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                self._root = None

    def at(self, loc: Sequence[str | int]) -> str:
        node = self._root
        line: int | None = None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        line = key_node.start_mark.line + 1
                        node = value_node
                        break
                else:
                    break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return "" if line is None else f" (line {line})"


def _describe_validation(
    exc: ValidationError, path: Path, lines: _LineIndex, document: Mapping[str, Any]
) -> str:
    problems: list[str] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = loc
        subject = ""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            field = loc[2:]
            rules = document.get("rules")
            rule_id = None
            if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                rule_id = rules[loc[1]].get("id")
            subject = f"rule {rule_id!r}" if rule_id else f"rule #{loc[1] + 1}"
        if field:
            name = ".".join(str(part) for part in field if part != "[key]")
            subject = f"{subject} field {name!r}".strip()
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{subject or 'policy'}{lines.at(loc)}: {message}")
    return f"{path}: invalid policy: " + "; ".join(problems)


def _request_facts(request: Mapping[str, Any], stage: Stage) -> dict[str, Any]:
    facts = dict(_REQUEST_DEFAULTS)
    for key, value in request.items():
        if value is None:
            continue
        facts[str(key)] = value.value if isinstance(value, Enum) else value
    facts["stage"] = stage.value
    return facts


def _context(
    findings: list[dict[str, Any]],
    stage: Stage,
    request: dict[str, Any],
    thresholds: dict[str, float],
) -> cel.Context:
    # One Context per decision: converting the variables once is ~10x cheaper than per rule.
    return cel.Context(
        variables={
            "findings": findings,
            "request": request,
            "stage": stage.value,
            "thresholds": thresholds,
        }
    )


def _evaluate(program: cel.Program, context: cel.Context, where: str) -> bool:
    try:
        result = program.execute(context)
    except KeyError as exc:
        # The CEL binding reports a missing map key (a typo'd field) as a bare KeyError.
        raise PolicyError(f"{where}: condition failed to evaluate: no such field {exc}") from exc
    except Exception as exc:
        raise PolicyError(f"{where}: condition failed to evaluate: {exc}") from exc
    if not isinstance(result, bool):
        raise PolicyError(
            f"{where}: condition must evaluate to a bool, got {type(result).__name__} {result!r}"
        )
    return result


def _compile(rule: Rule, where: str, thresholds: dict[str, float]) -> cel.Program:
    try:
        program = cel.compile(rule.when)
    except Exception as exc:
        raise PolicyError(f"{where}: invalid CEL condition: {exc}") from None
    bound = set(_MACRO_VAR.findall(rule.when))
    unknown = sorted(set(program.variables()) - _VARIABLES - bound)
    if unknown:
        raise PolicyError(
            f"{where}: unknown variable(s) {', '.join(unknown)} in condition"
            f" (available: {', '.join(sorted(_VARIABLES))})"
        )
    for stage, findings in _probes():
        context = _context(findings, stage, _request_facts({}, stage), thresholds)
        _evaluate(program, context, f"{where} [checked on a sample {stage.value} request]")
    return program


def _probes() -> list[tuple[Stage, list[dict[str, Any]]]]:
    """Sample inputs every condition must evaluate on: no findings, and one of every kind."""
    probes: list[tuple[Stage, list[dict[str, Any]]]] = []
    for stage in Stage:
        every_kind = [
            Finding(
                check="probe",
                check_version="0",
                category=category,
                stage=stage,
                state=state,
                score=None if state is CheckState.NOT_CHECKED else 0.5,
                threshold=0.5,
                image_index=None if stage is Stage.PROMPT else 0,
                details={"matched": ["probe"]} if state is CheckState.FLAGGED else {},
            ).as_cel()
            for category in Category
            for state in CheckState
        ]
        probes += [(stage, []), (stage, every_kind)]
    return probes
