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
    """Harm categories genseal screens for (see README "Safety taxonomy")."""

    SEXUAL = "sexual"
    MINORS = "minors"
    REAL_PERSON = "real_person"
    PROTECTED_IDENTITY = "protected_identity"
    VIOLENCE = "violence"
    HATE = "hate"
    SELF_HARM = "self_harm"
    ILLEGAL = "illegal"


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

    def as_cel(self) -> dict[str, Any]:
        """The finding as policy conditions see it (CEL values; no nulls)."""
        return {
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
