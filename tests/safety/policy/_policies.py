"""A base policy and tenant overlays of it, written to files for the policy tests."""

from __future__ import annotations

from pathlib import Path

from safety import Category, CheckState, Finding, Stage

BASE = """\
id: base
version: "1"
thresholds: {nsfw: 0.8, review: 0.6}
rules:
  - id: block-sexual
    stage: output
    when: 'findings.exists(f, f.category == "sexual" && f.score >= thresholds.nsfw)'
    action: block
    message: withheld
  - id: review-borderline
    stage: output
    when: 'findings.exists(f, f.category == "sexual" && f.score >= thresholds.review)'
    action: review
  - id: blur-violence
    when: 'findings.exists(f, f.category == "violence" && f.flagged)'
    action: blur
  - id: flag-hate
    when: 'findings.exists(f, f.category == "hate" && f.flagged)'
    action: flag
  - id: consent-real-person
    when: 'findings.exists(f, f.category == "real_person" && f.flagged)'
    action: require_consent
    message: consent needed
default_action: allow
"""


def scored(category: Category, score: float = 1.0, stage: Stage = Stage.OUTPUT) -> Finding:
    """A finding of `category` at `score`, flagged from 0.5 up."""
    return Finding(
        check="t",
        check_version="1",
        category=category,
        stage=stage,
        state=CheckState.FLAGGED if score >= 0.5 else CheckState.CLEAN,
        score=score,
    )


def write_overlay(root: Path, tenant: str, body: str) -> Path:
    """The tenant's overlay of the base policy: its header, then `body`."""
    path = root / "tenants" / f"{tenant}.yaml"
    path.write_text(f'id: {tenant}\nversion: "1"\nextends: base\n{body}', encoding="utf-8")
    return path
