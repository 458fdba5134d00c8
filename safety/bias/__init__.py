"""Bias probes and monitoring: perceived attributes of the people in generated images, prompt
sets to probe a model with, metrics over the results, and per-tenant monitoring with drift."""

from ._attributes import ATTRIBUTES, AttributeEstimator, FaceAttributes, ImageAttributes
from ._metrics import (
    AttributeMetrics,
    PromptMetrics,
    attribute_metrics,
    compare_metrics,
    prompt_metrics,
)
from ._monitor import (
    AttributeDrift,
    AttributeSummary,
    Baseline,
    BiasMonitor,
    BiasSummary,
    BiasWindow,
    MonitoredTenant,
    load_baseline,
)
from ._prompts import ProbePrompt, PromptSet, builtin_prompt_sets, load_prompt_set
from ._skin_tone import ITA_THRESHOLDS, MONK_ORBS, SkinTone, estimate_skin_tone

__all__ = [
    "ATTRIBUTES",
    "ITA_THRESHOLDS",
    "MONK_ORBS",
    "AttributeDrift",
    "AttributeEstimator",
    "AttributeMetrics",
    "AttributeSummary",
    "Baseline",
    "BiasMonitor",
    "BiasSummary",
    "BiasWindow",
    "FaceAttributes",
    "ImageAttributes",
    "MonitoredTenant",
    "ProbePrompt",
    "PromptMetrics",
    "PromptSet",
    "SkinTone",
    "attribute_metrics",
    "builtin_prompt_sets",
    "compare_metrics",
    "estimate_skin_tone",
    "load_baseline",
    "load_prompt_set",
    "prompt_metrics",
]
