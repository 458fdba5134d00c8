"""The policy file format (the schema `genseal policy schema` publishes) and the decision record.

A policy file is either a **base policy** (`rules:`) or a **tenant overlay** (`extends:` a base,
then `overrides:` / `add:` / `disable:` by rule id). Both are validated by `PolicySpec`, whose
JSON Schema editors use to validate and complete the files.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._findings import Category, Stage
from .._normalize import term_pattern

__all__ = [
    "DEFAULT_PRECEDENCE",
    "Action",
    "Decision",
    "HarmCategory",
    "PolicySpec",
    "Rule",
    "RuleError",
    "RuleOverride",
    "Severity",
    "ShadowOutcome",
    "policy_json_schema",
]


class Action(StrEnum):
    """What a rule (or the default) does with the content it matched."""

    ALLOW = "allow"
    FLAG = "flag"  # release, and record that it matched
    BLUR = "blur"  # release only a blurred variant
    REVIEW = "review"  # hold the image for a human; nothing is released until approved
    REQUIRE_CONSENT = "require_consent"  # block unless the request carries a consent attestation
    BLOCK = "block"


# Explicit precedence (the file may restate it): the first action in the list that any matched
# rule has wins; among rules with that action, the first in file order decides.
DEFAULT_PRECEDENCE: tuple[Action, ...] = (
    Action.BLOCK,
    Action.REQUIRE_CONSENT,
    Action.REVIEW,
    Action.BLUR,
    Action.FLAG,
    Action.ALLOW,
)


class HarmCategory(StrEnum):
    """What a decision was about, as users, auditors and the benchmarks count it.

    A rule names the harm it enforces (`category:`), so a block carries the right category and
    message: gore is `violence`, not `self_harm`. Finding categories are the signals rules
    combine (a prompt naming a minor is a signal, not a harm); these are the outcomes.
    """

    SEXUAL = "sexual"
    SEXUAL_MINORS = "sexual_minors"
    VIOLENCE = "violence"
    SELF_HARM = "self_harm"
    HATE = "hate"
    ILLEGAL = "illegal"
    REAL_PERSON = "real_person"
    PROTECTED_IDENTITY = "protected_identity"
    UNSCREENED = "unscreened"  # fail closed: a check or condition could not run


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


DEFAULT_SEVERITY: dict[Action, Severity] = {
    Action.ALLOW: Severity.INFO,
    Action.FLAG: Severity.LOW,
    Action.BLUR: Severity.MEDIUM,
    Action.REVIEW: Severity.MEDIUM,
    Action.REQUIRE_CONSENT: Severity.HIGH,
    Action.BLOCK: Severity.HIGH,
}

_NEEDS_MESSAGE = frozenset({Action.BLOCK, Action.REQUIRE_CONSENT})
_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
_RULE_ID = r"^[a-z0-9][a-z0-9._-]*$"
_SEMANTIC = "semantic_similarity"  # the threshold keys SemanticPromptCheck reads
_CLASSIFIER = "classifier"  # classifier_<label>: PromptClassifierCheck's per-label overrides
_MAX_CONCEPT = 120
_CLAUSE_BREAK = re.compile(r"[,;.!?|()\[\]{}<>:\n]")


class Rule(BaseModel):
    """One rule of a policy file."""

    model_config = _STRICT

    id: str = Field(pattern=_RULE_ID, max_length=100)
    description: str = ""
    stage: Stage | None = Field(
        default=None, description="If set, the rule applies only to that stage's decision."
    )
    when: str = Field(
        min_length=1,
        description="CEL condition over findings, request, stage and thresholds; a bool.",
    )
    action: Action
    category: HarmCategory | None = Field(
        default=None,
        description="The harm this rule enforces; a decision by the rule carries it.",
    )
    severity: Severity | None = Field(
        default=None, description="Recorded with the decision; default follows the action."
    )
    mode: Literal["enforce", "shadow"] = Field(
        default="enforce",
        description="shadow: evaluated and recorded (what it would have done), never enforced.",
    )
    message: str | None = Field(default=None, description="User-facing text.")
    reason: str | None = Field(default=None, description="Audit-log text.")

    @model_validator(mode="after")
    def _needs_message(self) -> Rule:
        if self.action in _NEEDS_MESSAGE and not self.message:
            raise ValueError(f"a {self.action.value} rule needs a user-facing `message`")
        return self

    @property
    def effective_severity(self) -> Severity:
        return self.severity or DEFAULT_SEVERITY[self.action]


class RuleOverride(BaseModel):
    """What a tenant overlay changes in a base rule (every field optional; the id is the key)."""

    model_config = _STRICT

    description: str | None = None
    stage: Stage | None = None
    when: str | None = Field(default=None, min_length=1)
    action: Action | None = None
    category: HarmCategory | None = None
    severity: Severity | None = None
    mode: Literal["enforce", "shadow"] | None = None
    message: str | None = None
    reason: str | None = None


class PolicySpec(BaseModel):
    """The schema of a policy file (base policy or tenant overlay)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        title="genseal policy",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    version: str = Field(min_length=1)
    description: str = ""
    extends: str | None = Field(
        default=None,
        description="Tenant overlay: the base policy (a name like `default`, looked up beside "
        "this file and in its parent directory, or a relative path).",
    )
    mode: Literal["enforce", "shadow"] = Field(
        default="enforce",
        description="shadow (overlays only): decide and record what this policy would have "
        "done, but enforce the base policy's decision.",
    )
    precedence: list[Action] = Field(
        default_factory=lambda: list(DEFAULT_PRECEDENCE),
        description="Which action wins when rules with different actions match; block first.",
    )
    prompt_terms: dict[Category, list[str]] = Field(default_factory=dict)
    prompt_patterns: dict[Category, list[str]] = Field(default_factory=dict)
    prompt_concepts: dict[Category, list[str]] = Field(
        default_factory=dict,
        description="Semantic prompt screening: short descriptions of what a category looks "
        'like ("a naked person"); a prompt is flagged when it is similar enough to one '
        "(thresholds.semantic_similarity, or semantic_similarity_<category>). A category "
        "with no concepts is left to the term lists.",
    )
    prompt_term_exceptions: list[str] = Field(
        default_factory=list,
        description="Phrases the term lists ignore, for words that are harmless in them "
        '("naked mole rat", "blood orange"); matched like terms, never by the classifier.',
    )
    prompt_classifier: str | None = Field(
        default=None,
        description="The trained prompt classifier: `builtin` (the model shipped with genseal) "
        "or a model directory (relative to this file). Its thresholds are the model's unless "
        "`thresholds.classifier_<label>` sets one. Unset: no classifier runs.",
    )
    thresholds: dict[str, float] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    overrides: dict[str, RuleOverride] = Field(
        default_factory=dict, description="Overlay: base rules changed, by id."
    )
    add: list[Rule] = Field(default_factory=list, description="Overlay: rules appended.")
    disable: list[str] = Field(default_factory=list, description="Overlay: base rules removed.")
    default_action: Literal[Action.ALLOW, Action.FLAG, Action.REVIEW, Action.BLOCK] | None = None
    default_message: str | None = Field(
        default=None, description="User-facing text when the default action blocks."
    )

    @field_validator("prompt_terms")
    @classmethod
    def _terms_compile(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for category, terms in value.items():
            for term in terms:
                try:
                    term_pattern(term)
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

    @field_validator("prompt_term_exceptions")
    @classmethod
    def _exceptions_compile(cls, value: list[str]) -> list[str]:
        for phrase in value:
            try:
                term_pattern(phrase)
            except ValueError as exc:
                raise ValueError(f"exception {phrase!r}: {exc}") from exc
        return value

    @field_validator("prompt_concepts")
    @classmethod
    def _concepts_usable(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for category, concepts in value.items():
            if not concepts:
                raise ValueError(f"{category.value}: list at least one concept or leave it out")
            seen: set[str] = set()
            for concept in concepts:
                text = concept.strip()
                # One clause: the check compares clause with clause, so a list of several
                # ideas in one description would match none of them well.
                if not text or len(text) > _MAX_CONCEPT or _CLAUSE_BREAK.search(text):
                    raise ValueError(
                        f"{category.value}: concept {concept!r} must be one short phrase "
                        f"(1-{_MAX_CONCEPT} characters, no , ; . ! ? | ( ) [ ] : )"
                    )
                if text.casefold() in seen:
                    raise ValueError(f"{category.value}: concept {concept!r} is listed twice")
                seen.add(text.casefold())
        return value

    @field_validator("thresholds")
    @classmethod
    def _semantic_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        # The keys checks read by prefix: a typo in the category would silently leave the
        # check at its default, so it is an error here.
        categories = {c.value for c in Category}
        for key, number in value.items():
            for prefix, what in ((_SEMANTIC, "similarity"), (_CLASSIFIER, "classifier")):
                if key != prefix and not key.startswith(prefix + "_"):
                    continue
                if prefix == _CLASSIFIER and key == prefix:
                    raise ValueError(f"{key}: a classifier threshold is {prefix}_<label>")
                if key != prefix and key.removeprefix(prefix + "_") not in categories:
                    raise ValueError(
                        f"{key}: a {what} threshold is {prefix}_<category> "
                        f"({', '.join(sorted(categories))})"
                    )
                if not 0.0 <= number <= 1.0:
                    raise ValueError(f"{key}: a {what} threshold must be within [0, 1]")
        return value

    @field_validator("precedence")
    @classmethod
    def _precedence_complete(cls, value: list[Action]) -> list[Action]:
        if sorted(value) != sorted(Action) or len(value) != len(Action):
            raise ValueError(f"must list every action once: {', '.join(a.value for a in Action)}")
        if value[0] is not Action.BLOCK:
            raise ValueError("block must come first: nothing may outrank a block")
        return value

    @model_validator(mode="after")
    def _shape(self) -> PolicySpec:
        if self.extends is None:
            if self.overrides or self.add or self.disable:
                raise ValueError("`overrides`, `add` and `disable` need `extends` (an overlay)")
            if self.mode == "shadow":
                raise ValueError("mode shadow needs `extends`: the base policy is what it enforces")
        else:
            if self.rules:
                raise ValueError("an overlay changes rules with `overrides`, `add`, `disable`")
            if self.prompt_terms or self.prompt_patterns:
                raise ValueError("prompt term lists come from the base policy, not an overlay")
            if self.prompt_concepts:
                raise ValueError("prompt concepts come from the base policy, not an overlay")
            if self.prompt_term_exceptions or self.prompt_classifier:
                raise ValueError(
                    "prompt_term_exceptions and prompt_classifier come from the base policy"
                )
        if self.default_action is Action.BLOCK and not self.default_message:
            raise ValueError("default_action block needs a `default_message`")
        return self


class RuleError(BaseModel):
    """A condition that failed to evaluate at decide time (the decision then fails closed)."""

    model_config = ConfigDict(frozen=True)

    rule: str
    error: str


class ShadowOutcome(BaseModel):
    """What would have been decided had the shadow rules (or the shadow policy) been enforced."""

    model_config = ConfigDict(frozen=True)

    source: Literal["rule", "policy"]
    action: Action
    rule: str | None
    message: str | None = None
    reason: str | None = None
    matched_rules: list[str] = Field(default_factory=list)
    policy_id: str
    policy_version: str
    policy_sha256: str


class Decision(BaseModel):
    """What the policy decided for one stage (one image, for outputs), and why."""

    model_config = ConfigDict(frozen=True)

    action: Action
    stage: Stage
    rule: str | None = Field(description="The deciding rule's id; None when the default applied.")
    category: HarmCategory | None = Field(
        default=None, description="The harm the deciding rule enforces (its `category`)."
    )
    severity: Severity = Severity.INFO
    message: str | None = Field(default=None, description="User-facing text.")
    reason: str | None = Field(default=None, description="Audit-log text.")
    matched_rules: list[str] = Field(
        default_factory=list, description="Every enforced rule whose condition held, in order."
    )
    consent_satisfied: list[str] = Field(
        default_factory=list, description="require_consent rules met by the request's consent."
    )
    errors: list[RuleError] = Field(
        default_factory=list, description="Conditions that failed to run (fail closed)."
    )
    shadow: ShadowOutcome | None = Field(
        default=None, description="The would-be decision of shadow rules, when it differs."
    )
    policy_id: str
    policy_version: str
    policy_sha256: str
    base_policy_sha256: str | None = Field(
        default=None, description="For a tenant overlay: the sha256 of the base file."
    )

    @property
    def blocked(self) -> bool:
        """Nothing is released: a block, or consent required but not given."""
        return self.action in (Action.BLOCK, Action.REQUIRE_CONSENT)

    @property
    def held(self) -> bool:
        return self.action is Action.REVIEW

    def as_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of policy files (base and overlay), for editors (`genseal policy schema`)."""
    schema = PolicySpec.model_json_schema()
    schema["$id"] = "https://genseal.dev/schemas/policy.json"
    schema["description"] = (
        "A genseal policy file: a base policy (`rules:`) or a tenant overlay (`extends:` + "
        "`overrides:` / `add:` / `disable:`). Conditions (`when`) are CEL over findings, "
        "request, stage and thresholds."
    )
    return schema
