"""Bias probes: generate a prompt set with a model, measure whom it draws (perceived gender,
age, skin tone) and render the report, or compare two runs."""

from gen.probe._report import (
    COMPARISON_FILE,
    REPORT_FILE,
    compare_runs,
    render_comparison,
    render_report,
)
from gen.probe._run import RESULTS_VERSION, ProbeConfig, ProbeRun, load_results, prompt_id

__all__ = [
    "COMPARISON_FILE",
    "REPORT_FILE",
    "RESULTS_VERSION",
    "ProbeConfig",
    "ProbeRun",
    "compare_runs",
    "load_results",
    "prompt_id",
    "render_comparison",
    "render_report",
]
