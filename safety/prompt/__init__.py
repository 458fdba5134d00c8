"""Prompt checks: term lists, a language identifier, semantic concepts and a trained classifier
(both over all-MiniLM-L6-v2 embeddings), and the set of them a policy configures."""

from ._checks import prompt_checks_for
from ._classifier import PromptClassifierCheck, prompt_features
from ._language import LanguageCheck
from ._semantic import SemanticPromptCheck
from ._terms import TermListCheck

__all__ = [
    "LanguageCheck",
    "PromptClassifierCheck",
    "SemanticPromptCheck",
    "TermListCheck",
    "prompt_checks_for",
    "prompt_features",
]
