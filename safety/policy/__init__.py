"""Policies: rule files (YAML + CEL conditions) that decide on findings, tenant overlays and
hot reload, the files' test cases and lint, explanations, and replays of past decisions."""

from ._engine import Policy, PolicyEngine, RuleResult, default_policy_path
from ._explain import Explanation, explain
from ._lint import lint_policy
from ._model import (
    Action,
    Decision,
    HarmCategory,
    Rule,
    Severity,
    ShadowOutcome,
    policy_json_schema,
)
from ._replay import ReplayChange, ReplayReport, replay_decisions
from ._set import PolicyReloader, PolicySet
from ._tests import CaseResult, run_policy_tests
from ._yaml import PolicyProblem

__all__ = [
    "Action",
    "CaseResult",
    "Decision",
    "Explanation",
    "HarmCategory",
    "Policy",
    "PolicyEngine",
    "PolicyProblem",
    "PolicyReloader",
    "PolicySet",
    "ReplayChange",
    "ReplayReport",
    "Rule",
    "RuleResult",
    "Severity",
    "ShadowOutcome",
    "default_policy_path",
    "explain",
    "lint_policy",
    "policy_json_schema",
    "replay_decisions",
    "run_policy_tests",
]
