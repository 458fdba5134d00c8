"""Screening: safety checks over prompts and images, and the policy that decides on them."""

from ._checks import ImageCheck, PromptCheck
from ._findings import Category, CheckState, Finding, Stage
from ._nsfw import OpenNsfwCheck
from ._policy import Action, Decision, Policy, PolicyEngine, Rule, default_policy_path
from ._policy_tests import CaseResult, run_policy_tests
from ._prompt_terms import TermListCheck
from ._screener import Screener

__all__ = [
    "Action",
    "CaseResult",
    "Category",
    "CheckState",
    "Decision",
    "Finding",
    "ImageCheck",
    "OpenNsfwCheck",
    "Policy",
    "PolicyEngine",
    "PromptCheck",
    "Rule",
    "Screener",
    "Stage",
    "TermListCheck",
    "default_policy_path",
    "run_policy_tests",
]
