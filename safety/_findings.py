"""What a safety check found: the vocabulary every check, policy rule and report shares."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Stage(StrEnum):
    """Where in the request the screened content sits."""

    PROMPT = "prompt"
    INPUT = "input"
    OUTPUT = "output"


class CheckState(StrEnum):
    """Never two states: a check that could not run is *not checked* (no model for it here,
    said up front, with the reason) or *error* (it was meant to run and failed), never clean."""

    FLAGGED = "flagged"
    CLEAN = "clean"
    NOT_CHECKED = "not_checked"
    ERROR = "error"


class Category(StrEnum):
    """What a check looks for (see README "Safety taxonomy").

    Some are harms on their own (sexual, self_harm); others are signals that policy rules
    combine into one: a minor, a real person, a weapon or a how-to request is harmless alone
    and blocked together with sexual content, a degrading scene or a weapon respectively.
    What a decision was about is the deciding rule's `HarmCategory`, not these.
    """

    SEXUAL = "sexual"
    # Sexualised but not explicit ("seductive", "lingerie"): allowed for adults by the
    # shipped policies, blocked together with a minor.
    SUGGESTIVE = "suggestive"
    MINORS = "minors"
    # Sexual content involving a minor, as one finding (the trained classifier's label).
    SEXUAL_MINORS = "sexual_minors"
    # A real, identifiable person: in an image, or named in a prompt (a public figure by name or
    # by office).
    REAL_PERSON = "real_person"
    # A private person the prompt points at ("my ex", "my coworker", "the person in this photo").
    PRIVATE_PERSON = "private_person"
    PROTECTED_IDENTITY = "protected_identity"
    VIOLENCE = "violence"
    # A person shown arrested, beaten, injured, dead, humiliated: harmful for a real person.
    DEGRADING = "degrading"
    HATE = "hate"
    SELF_HARM = "self_harm"
    ILLEGAL = "illegal"
    # Weapons, explosives, chemical or biological agents, drug synthesis.
    WEAPONS = "weapons"
    # A request for instructions: a tutorial, step-by-step guide, recipe, blueprint.
    INSTRUCTIONS = "instructions"
    # The prompt is in a language the prompt classifier was not trained on.
    LANGUAGE_UNSUPPORTED = "language_unsupported"


class Finding(BaseModel):
    """One check's verdict on one piece of content."""

    model_config = ConfigDict(frozen=True)

    check: str = Field(description="Name of the check that produced this finding.")
    check_version: str = Field(description="Version of the check (model and code).")
    category: Category
    stage: Stage
    state: CheckState
    score: float | None = Field(
        default=None, description="Check score in [0, 1] where one exists; higher is riskier."
    )
    threshold: float | None = Field(
        default=None, description="Score at or above which the check flags."
    )
    reason: str | None = Field(
        default=None, description="Why it was flagged, or why it could not be checked."
    )
    image_index: int | None = Field(
        default=None, description="Which image of the request (input or output), if any."
    )
    latency_ms: float = 0.0
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.state is CheckState.FLAGGED

    def as_cel(self, top: bool | None = None) -> dict[str, Any]:
        """The finding as policy conditions see it (CEL values; no nulls). `top`: whether it is
        its check's strongest flagged finding for this content (see `cel_findings`); alone,
        a flagged finding is its own strongest."""
        return {
            "top": self.flagged if top is None else top,
            "check": self.check,
            "category": self.category.value,
            "stage": self.stage.value,
            "state": self.state.value,
            "score": -1.0 if self.score is None else float(self.score),
            "flagged": self.flagged,
            "checked": self.state in (CheckState.FLAGGED, CheckState.CLEAN),
            "errored": self.state is CheckState.ERROR,
            "matched": [str(term) for term in self.details.get("matched", [])],
            "threshold": -1.0 if self.threshold is None else float(self.threshold),
            "image_index": -1 if self.image_index is None else self.image_index,
        }


def prompt_errors(
    check: str,
    version: str,
    categories: tuple[Category, ...],
    reason: str,
    latency_ms: float,
    details: dict[str, Any],
    thresholds: dict[Category, float] | None = None,
) -> list[Finding]:
    """One ERROR finding per category of a prompt check that could not run (the policy's
    block-check-error then fails closed)."""
    return [
        Finding(
            check=check,
            check_version=version,
            category=category,
            stage=Stage.PROMPT,
            state=CheckState.ERROR,
            threshold=(thresholds or {}).get(category),
            reason=reason,
            latency_ms=latency_ms,
            details=dict(details),
        )
        for category in categories
    ]


def cel_findings(findings: list[Finding]) -> list[dict[str, Any]]:
    """Every finding as conditions see it, with `top` set: flagged, and no other flagged
    finding of the same check, stage and image scores higher. A classifier that flags two
    labels (gore scores as violence and self-harm) is attributed to the one it is surest of;
    rules say `f.top` where that matters."""
    best: dict[tuple[str, Stage, int | None], float] = {}
    for finding in findings:
        if finding.flagged:
            key = (finding.check, finding.stage, finding.image_index)
            best[key] = max(best.get(key, float("-inf")), finding.score or 0.0)
    return [
        f.as_cel(
            top=f.flagged and (f.score or 0.0) >= best.get((f.check, f.stage, f.image_index), 0.0)
        )
        for f in findings
    ]
