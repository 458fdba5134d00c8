"""`explain`: which rules matched an input, on which findings, and which rule decided."""

from __future__ import annotations

from pathlib import Path

from safety import Policy, explain


def test_explain_names_the_matching_findings_and_the_deciding_rule(policies: Path) -> None:
    policy = Policy.load(policies / "base.yaml")
    explanation = explain(
        policy, "output", ["hate", {"category": "sexual", "score": 0.7, "threshold": 0.8}]
    )
    rules = {r.rule: r for r in explanation.rules}
    assert explanation.decision.rule == "review-borderline"
    assert rules["review-borderline"].matched_by == [1]
    assert "decides (review)" in rules["review-borderline"].why
    assert rules["flag-hate"].matched and "outranked" in rules["flag-hate"].why
    assert not rules["blur-violence"].matched
    prompt = explain(policy, "prompt", [])
    assert not {r.rule: r for r in prompt.rules}["block-sexual"].applies
