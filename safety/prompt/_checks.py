"""The prompt checks a policy asks for, built in one place for the service, CLI and benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._checks import PromptCheck
from ._classifier import PromptClassifierCheck
from ._language import LanguageCheck
from ._semantic import SemanticPromptCheck
from ._terms import TermListCheck

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["prompt_checks_for"]


def prompt_checks_for(policy: Policy) -> list[PromptCheck]:
    """Every prompt check `policy` configures, in the order findings are reported: the term
    lists; the trained classifier and the language check that says when a prompt is in a
    language the classifier cannot read (`prompt_classifier`); the semantic check
    (`prompt_concepts`)."""
    checks: list[PromptCheck] = [TermListCheck.from_policy(policy)]
    if policy.prompt_classifier is not None:
        classifier = PromptClassifierCheck.from_policy(policy)
        checks.append(classifier)
        checks.append(LanguageCheck(classifier.languages))
    if policy.prompt_concepts:
        checks.append(SemanticPromptCheck.from_policy(policy))
    return checks
