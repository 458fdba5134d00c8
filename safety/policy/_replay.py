"""`genseal policy replay`: re-decide past decisions from the audit log under another policy.

The service records, with every decision, the findings and request context it was taken on
(never the prompt). Replay feeds them to the new policy and reports what would change: counts
per decision transition (`block → allow`) and per rule (`block-sexual-output → (default)`),
plus examples. Entries that cannot be replayed (errors, entries written before findings were
recorded, a reviewer's approval or rejection) are counted as skipped, with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from .._findings import Finding, Stage
from ._engine import Policy
from ._set import PolicySet

__all__ = ["ReplayChange", "ReplayReport", "replay_decisions"]


class AuditedDecision(Protocol):
    """What replay needs of an audit entry (provenance's `AuditEntry` has it)."""

    @property
    def seq(self) -> int: ...

    @property
    def at(self) -> dt.datetime: ...

    @property
    def event(self) -> str: ...

    @property
    def request_id(self) -> str: ...

    @property
    def tenant(self) -> str | None: ...

    @property
    def decision(self) -> dict[str, Any]: ...


class ReplayChange(BaseModel):
    seq: int
    at: dt.datetime
    request_id: str
    tenant: str | None
    stage: str
    old_action: str
    old_rule: str | None
    new_action: str
    new_rule: str | None
    new_reason: str | None = None


class ReplayReport(BaseModel):
    policy_id: str
    policy_version: str
    policy_sha256: str
    since: dt.datetime | None = None
    entries: int = Field(description="Audit entries read.")
    replayed: int
    changed: int
    skipped: dict[str, int] = Field(default_factory=dict, description="Reason → count.")
    by_decision: dict[str, int] = Field(
        default_factory=dict, description="'old → new' action → count, changed entries only."
    )
    by_rule: dict[str, int] = Field(
        default_factory=dict, description="'old rule → new rule' → count ('(default)' = none)."
    )
    rules_before: dict[str, int] = Field(default_factory=dict, description="Deciding rule counts.")
    rules_after: dict[str, int] = Field(default_factory=dict)
    examples: list[ReplayChange] = Field(default_factory=list)


def replay_decisions(
    entries: Iterable[AuditedDecision],
    policy: Policy | PolicySet,
    *,
    since: dt.datetime | None = None,
    examples: int = 5,
) -> ReplayReport:
    """Re-decide every replayable entry under `policy` (a set picks each entry's tenant)."""
    skipped: Counter[str] = Counter()
    by_decision: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    changes: list[ReplayChange] = []
    read = replayed = 0
    for entry in entries:
        if since is not None and entry.at < since:
            continue
        read += 1
        record = entry.decision
        reason = _unreplayable(entry.event, record)
        if reason is not None:
            skipped[reason] += 1
            continue
        chosen = policy.for_tenant(entry.tenant) if isinstance(policy, PolicySet) else policy
        try:
            stage = Stage(record["stage"])
            findings = [Finding.model_validate(f) for f in record["findings"]]
        except (ValidationError, ValueError):
            skipped["findings not readable"] += 1
            continue
        context = record.get("context") or {}
        new = chosen.decide(findings, stage, context if isinstance(context, Mapping) else {})
        replayed += 1
        old_action, old_rule = str(record["action"]), record.get("rule")
        before[_name(old_rule)] += 1
        after[_name(new.rule)] += 1
        if (old_action, old_rule) == (new.action.value, new.rule):
            continue
        by_decision[f"{old_action} → {new.action.value}"] += 1
        by_rule[f"{_name(old_rule)} → {_name(new.rule)}"] += 1
        change = ReplayChange(
            seq=entry.seq,
            at=entry.at,
            request_id=entry.request_id,
            tenant=entry.tenant,
            stage=stage.value,
            old_action=old_action,
            old_rule=old_rule,
            new_action=new.action.value,
            new_rule=new.rule,
            new_reason=new.reason,
        )
        changes.append(change)
    named = policy.base if isinstance(policy, PolicySet) else policy
    return ReplayReport(
        policy_id=named.id,
        policy_version=named.version,
        policy_sha256=named.sha256,
        since=since,
        entries=read,
        replayed=replayed,
        changed=len(changes),
        skipped=dict(skipped),
        by_decision=dict(by_decision.most_common()),
        by_rule=dict(by_rule.most_common()),
        rules_before=dict(before.most_common()),
        rules_after=dict(after.most_common()),
        examples=changes[:examples],
    )


def _unreplayable(event: str, record: Mapping[str, Any]) -> str | None:
    if event == "error":
        return "error entries (nothing was decided)"
    if "review" in record or record.get("outcome") == "rejected":
        return "reviewer decisions (a human decided)"
    if not all(key in record for key in ("findings", "stage", "action")):
        return "no findings recorded (written before replay support)"
    return None


def _name(rule: str | None) -> str:
    return rule if rule is not None else "(default)"
