"""Screening: safety checks over prompts and images, and the policy that decides on them."""

from ._checks import ImageCheck, PromptCheck, ReferenceImageCheck
from ._clip_concepts import ClipConceptCheck
from ._face_checks import LikenessCheck, MinorsFaceCheck, ProtectedIdentityCheck, RealPersonCheck
from ._face_registry import EnrolledIdentity, Enrollment, FaceRegistry, IdentityMatch
from ._faces import Face, FaceAnalysis, FaceAnalyzer, descriptor_distance, face_analyzer
from ._findings import Category, CheckState, Finding, Stage
from ._nsfw import OpenNsfwCheck
from ._nudenet import NudeNetCheck
from ._policy import Policy, PolicyEngine, RuleResult, default_policy_path
from ._policy_explain import Explanation, explain
from ._policy_lint import lint_policy
from ._policy_model import Action, Decision, Rule, Severity, ShadowOutcome, policy_json_schema
from ._policy_replay import ReplayChange, ReplayReport, replay_decisions
from ._policy_set import PolicyReloader, PolicySet
from ._policy_tests import CaseResult, run_policy_tests
from ._policy_yaml import PolicyProblem
from ._prompt_semantic import SemanticPromptCheck
from ._prompt_terms import TermListCheck
from ._screener import Screener

__all__ = [
    "Action",
    "CaseResult",
    "Category",
    "CheckState",
    "ClipConceptCheck",
    "Decision",
    "EnrolledIdentity",
    "Enrollment",
    "Explanation",
    "Face",
    "FaceAnalysis",
    "FaceAnalyzer",
    "FaceRegistry",
    "Finding",
    "IdentityMatch",
    "ImageCheck",
    "LikenessCheck",
    "MinorsFaceCheck",
    "NudeNetCheck",
    "OpenNsfwCheck",
    "Policy",
    "PolicyEngine",
    "PolicyProblem",
    "PolicyReloader",
    "PolicySet",
    "PromptCheck",
    "ProtectedIdentityCheck",
    "RealPersonCheck",
    "ReferenceImageCheck",
    "ReplayChange",
    "ReplayReport",
    "Rule",
    "RuleResult",
    "Screener",
    "SemanticPromptCheck",
    "Severity",
    "ShadowOutcome",
    "Stage",
    "TermListCheck",
    "default_policy_path",
    "descriptor_distance",
    "explain",
    "face_analyzer",
    "lint_policy",
    "policy_json_schema",
    "replay_decisions",
    "run_policy_tests",
]
