"""`replay_decisions`: what a new policy would change in the recorded decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safety import Category, Finding, Policy, Stage, replay_decisions
from tests.safety.policy._policies import BASE, scored


@dataclass
class _Entry:
    seq: int
    at: dt.datetime
    event: str
    request_id: str
    tenant: str | None
    decision: dict[str, Any] = field(default_factory=dict)


def _recorded(policy: Policy, seq: int, findings: list[Finding], day: int = 2) -> _Entry:
    decision = policy.decide(findings, Stage.OUTPUT, {})
    return _Entry(
        seq=seq,
        at=dt.datetime(2026, 11, day, tzinfo=dt.UTC),
        event="blocked" if decision.blocked else "released",
        request_id=f"r{seq}",
        tenant=None,
        decision={
            **decision.as_record(),
            "findings": [f.model_dump(mode="json") for f in findings],
            "context": {"stage": "output"},
        },
    )


def test_replay_reports_what_a_new_policy_would_change(policies: Path) -> None:
    old = Policy.load(policies / "base.yaml")
    new = Policy.from_yaml(
        BASE.replace("nsfw: 0.8", "nsfw: 0.65").replace("action: flag", "action: allow"),
        path=policies / "new.yaml",
    )
    log = [
        _recorded(old, 1, [scored(Category.SEXUAL, 0.7)]),  # review → block
        _recorded(old, 2, [scored(Category.SEXUAL, 0.7)]),  # review → block
        _recorded(old, 3, [scored(Category.HATE)]),  # flag → allow
        _recorded(old, 4, [scored(Category.SEXUAL, 0.1)]),  # allow → allow
        _recorded(old, 5, [scored(Category.SEXUAL, 0.9)], day=1),  # before --since
        _Entry(6, dt.datetime(2026, 11, 3, tzinfo=dt.UTC), "error", "r6", None, {"error": "x"}),
        _Entry(
            7, dt.datetime(2026, 11, 3, tzinfo=dt.UTC), "blocked", "r7", None, {"action": "block"}
        ),
    ]

    report = replay_decisions(log, new, since=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))

    assert (report.entries, report.replayed, report.changed) == (6, 4, 3)
    assert report.by_decision == {"review → block": 2, "flag → allow": 1}
    assert report.by_rule == {"review-borderline → block-sexual": 2, "flag-hate → flag-hate": 1}
    assert report.rules_after == {"block-sexual": 2, "flag-hate": 1, "(default)": 1}
    assert sum(report.skipped.values()) == 2
    assert [c.seq for c in report.examples] == [1, 2, 3]
    assert report.policy_sha256 == new.sha256
