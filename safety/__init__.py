"""Screening: safety checks over prompts and images, and the policy that decides on them."""

from ._bias_attributes import (
    ATTRIBUTES,
    ITA_THRESHOLDS,
    AttributeEstimator,
    FaceAttributes,
    ImageAttributes,
    SkinTone,
)
from ._bias_metrics import (
    AttributeMetrics,
    PromptMetrics,
    attribute_metrics,
    compare_metrics,
    prompt_metrics,
)
from ._bias_monitor import (
    AttributeDrift,
    AttributeSummary,
    Baseline,
    BiasMonitor,
    BiasSummary,
    BiasWindow,
    MonitoredTenant,
    load_baseline,
)
from ._bias_prompts import ProbePrompt, PromptSet, builtin_prompt_sets, load_prompt_set
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
from ._policy_model import (
    Action,
    Decision,
    HarmCategory,
    Rule,
    Severity,
    ShadowOutcome,
    policy_json_schema,
)
from ._policy_replay import ReplayChange, ReplayReport, replay_decisions
from ._policy_set import PolicyReloader, PolicySet
from ._policy_tests import CaseResult, run_policy_tests
from ._policy_yaml import PolicyProblem
from ._prompt_checks import prompt_checks_for
from ._prompt_classifier import PromptClassifierCheck, prompt_features
from ._prompt_language import LanguageCheck
from ._prompt_semantic import SemanticPromptCheck
from ._prompt_terms import TermListCheck
from ._screener import Screener

__all__ = [
    "ATTRIBUTES",
    "ITA_THRESHOLDS",
    "Action",
    "AttributeDrift",
    "AttributeEstimator",
    "AttributeMetrics",
    "AttributeSummary",
    "Baseline",
    "BiasMonitor",
    "BiasSummary",
    "BiasWindow",
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
    "FaceAttributes",
    "FaceRegistry",
    "Finding",
    "HarmCategory",
    "IdentityMatch",
    "ImageAttributes",
    "ImageCheck",
    "LanguageCheck",
    "LikenessCheck",
    "MinorsFaceCheck",
    "MonitoredTenant",
    "NudeNetCheck",
    "OpenNsfwCheck",
    "Policy",
    "PolicyEngine",
    "PolicyProblem",
    "PolicyReloader",
    "PolicySet",
    "ProbePrompt",
    "PromptCheck",
    "PromptClassifierCheck",
    "PromptMetrics",
    "PromptSet",
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
    "SkinTone",
    "Stage",
    "TermListCheck",
    "attribute_metrics",
    "builtin_prompt_sets",
    "compare_metrics",
    "default_policy_path",
    "descriptor_distance",
    "explain",
    "face_analyzer",
    "lint_policy",
    "load_baseline",
    "load_prompt_set",
    "policy_json_schema",
    "prompt_checks_for",
    "prompt_features",
    "prompt_metrics",
    "replay_decisions",
    "run_policy_tests",
]
