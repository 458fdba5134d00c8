"""Actions, precedence, consent, shadow modes, tenant overlays, hot reload, explain, replay."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from genseal.errors import PolicyError
from safety import (
    Action,
    Category,
    CheckState,
    Finding,
    Policy,
    PolicyReloader,
    PolicySet,
    Stage,
    explain,
    replay_decisions,
)

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


def _f(category: Category, score: float = 1.0, stage: Stage = Stage.OUTPUT) -> Finding:
    return Finding(
        check="t",
        check_version="1",
        category=category,
        stage=stage,
        state=CheckState.FLAGGED if score >= 0.5 else CheckState.CLEAN,
        score=score,
    )


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "tenants").mkdir()
    return tmp_path


def _overlay(root: Path, tenant: str, body: str) -> Path:
    path = root / "tenants" / f"{tenant}.yaml"
    path.write_text(f'id: {tenant}\nversion: "1"\nextends: base\n{body}', encoding="utf-8")
    return path


# --- actions and precedence -------------------------------------------------------------------


def test_precedence_block_then_review_then_blur_then_flag(policies: Path) -> None:
    policy = Policy.load(policies / "base.yaml")
    decide = lambda *fs: policy.decide(list(fs), Stage.OUTPUT, {})  # noqa: E731

    assert decide(_f(Category.SEXUAL, 0.9)).rule == "block-sexual"
    assert decide(_f(Category.SEXUAL, 0.7), _f(Category.VIOLENCE)).action is Action.REVIEW
    assert decide(_f(Category.VIOLENCE), _f(Category.HATE)).action is Action.BLUR
    flagged = decide(_f(Category.HATE))
    assert (flagged.action, flagged.rule, flagged.severity.value) == (
        Action.FLAG,
        "flag-hate",
        "low",
    )
    assert not flagged.blocked and not flagged.held
    assert decide(_f(Category.SEXUAL, 0.7)).held


def test_the_file_can_restate_precedence(policies: Path) -> None:
    text = BASE + "precedence: [block, require_consent, blur, review, flag, allow]\n"
    policy = Policy.from_yaml(text, path=policies / "p.yaml")
    decision = policy.decide([_f(Category.SEXUAL, 0.7), _f(Category.VIOLENCE)], Stage.OUTPUT, {})
    assert decision.action is Action.BLUR


def test_require_consent_blocks_unless_the_request_attests_consent(policies: Path) -> None:
    policy = Policy.load(policies / "base.yaml")
    findings = [_f(Category.REAL_PERSON, stage=Stage.INPUT)]

    without = policy.decide(findings, Stage.INPUT, {"has_input_image": True})
    with_consent = policy.decide(findings, Stage.INPUT, {"has_consent": True})

    assert without.action is Action.REQUIRE_CONSENT and without.blocked
    assert without.message == "consent needed"
    assert with_consent.action is Action.ALLOW and not with_consent.blocked
    assert with_consent.consent_satisfied == ["consent-real-person"]


def test_request_context_reaches_conditions(policies: Path) -> None:
    text = BASE.replace(
        "default_action: allow",
        "  - id: block-ads\n"
        '    when: \'request.purpose == "advertising" && request.tenant == "t"\'\n'
        "    action: block\n    message: no ads\ndefault_action: allow",
    )
    policy = Policy.from_yaml(text, path=policies / "p.yaml")
    assert policy.decide([], Stage.PROMPT, {"purpose": "advertising", "tenant": "t"}).blocked
    assert not policy.decide([], Stage.PROMPT, {"purpose": "education", "tenant": "t"}).blocked


# --- shadow -----------------------------------------------------------------------------------


def test_a_shadow_rule_is_recorded_not_enforced(policies: Path) -> None:
    text = BASE.replace(
        "default_action: allow",
        "  - id: block-violence-trial\n    mode: shadow\n"
        "    when: 'findings.exists(f, f.category == \"violence\" && f.flagged)'\n"
        "    action: block\n    message: trial\ndefault_action: allow",
    )
    policy = Policy.from_yaml(text, path=policies / "p.yaml")

    decision = policy.decide([_f(Category.VIOLENCE)], Stage.OUTPUT, {})

    assert decision.action is Action.BLUR and decision.rule == "blur-violence"
    assert decision.shadow is not None
    assert (decision.shadow.source, decision.shadow.action, decision.shadow.rule) == (
        "rule",
        Action.BLOCK,
        "block-violence-trial",
    )
    assert "block-violence-trial" not in decision.matched_rules
    # No difference, no shadow record.
    assert policy.decide([_f(Category.HATE)], Stage.OUTPUT, {}).shadow is None


def test_a_shadow_rule_that_fails_to_run_does_not_fail_the_enforced_decision(
    policies: Path,
) -> None:
    text = BASE.replace(
        "default_action: allow",
        "  - id: trial\n    mode: shadow\n    when: 'request.n > 4 && request.tier == \"x\"'\n"
        "    action: block\n    message: trial\ndefault_action: allow",
    )
    policy = Policy.from_yaml(text, path=policies / "p.yaml")
    decision = policy.decide([], Stage.PROMPT, {"n": 8})
    assert decision.action is Action.ALLOW and decision.errors == []
    assert decision.shadow is not None and decision.shadow.action is Action.BLOCK


def test_shadow_overlay_enforces_the_base_and_records_the_would_be_block(policies: Path) -> None:
    path = _overlay(
        policies,
        "acme",
        "mode: shadow\noverrides:\n  blur-violence: {action: block, message: no violence}\n",
    )
    overlay = Policy.load(path)
    base = Policy.load(policies / "base.yaml")

    decision = overlay.decide([_f(Category.VIOLENCE)], Stage.OUTPUT, {})

    assert decision.action is Action.BLUR and decision.policy_sha256 == base.sha256
    assert decision.shadow is not None
    assert (decision.shadow.source, decision.shadow.action) == ("policy", Action.BLOCK)
    assert decision.shadow.policy_id == "acme" and decision.shadow.policy_sha256 == overlay.sha256


# --- tenant overlays --------------------------------------------------------------------------


def test_overlay_overrides_only_what_it_names(policies: Path) -> None:
    path = _overlay(
        policies,
        "acme",
        "thresholds: {nsfw: 0.5}\n"
        "overrides:\n  flag-hate: {action: block, message: no hate here}\n"
        "disable: [blur-violence]\n"
        "add:\n  - id: review-minors\n"
        "    when: 'findings.exists(f, f.category == \"minors\" && f.flagged)'\n"
        "    action: review\n",
    )
    base = Policy.load(policies / "base.yaml")
    overlay = Policy.load(path)

    assert [r.id for r in overlay.rules] == [
        "block-sexual",
        "review-borderline",
        "flag-hate",
        "consent-real-person",
        "review-minors",
    ]
    untouched = {r.id: r for r in base.rules}
    for rule in overlay.rules:
        if rule.id not in ("flag-hate", "review-minors"):
            assert rule == untouched[rule.id]
    assert overlay.thresholds == {"nsfw": 0.5, "review": 0.6}
    assert overlay.prompt_terms == base.prompt_terms

    hate = overlay.decide([_f(Category.HATE)], Stage.OUTPUT, {})
    assert (hate.action, hate.message) == (Action.BLOCK, "no hate here")
    assert overlay.decide([_f(Category.VIOLENCE)], Stage.OUTPUT, {}).action is Action.ALLOW
    assert overlay.decide([_f(Category.SEXUAL, 0.55)], Stage.OUTPUT, {}).rule == "block-sexual"
    assert overlay.decide([_f(Category.MINORS)], Stage.OUTPUT, {}).action is Action.REVIEW
    # The base is unchanged by its overlay.
    assert base.decide([_f(Category.HATE)], Stage.OUTPUT, {}).action is Action.FLAG

    # Every decision names the overlay and both hashes.
    expected = hashlib.sha256(f"{base.sha256}\n".encode() + path.read_bytes()).hexdigest()
    assert (hate.policy_id, hate.policy_sha256, hate.base_policy_sha256) == (
        "acme",
        expected,
        base.sha256,
    )


def test_policy_set_picks_the_tenant_overlay(policies: Path) -> None:
    _overlay(policies, "acme", "disable: [flag-hate]\n")
    policy_set = PolicySet.load(policies / "base.yaml")
    assert policy_set.for_tenant("acme").id == "acme"
    assert policy_set.for_tenant("other").id == "base"
    assert policy_set.for_tenant(None).id == "base"
    assert set(policy_set.summary()["tenants"]) == {"acme"}  # type: ignore[arg-type]


def test_an_overlay_of_another_base_is_refused(policies: Path) -> None:
    (policies / "other.yaml").write_text(BASE.replace("id: base", "id: other"), encoding="utf-8")
    (policies / "tenants" / "acme.yaml").write_text(
        'id: acme\nversion: "1"\nextends: other\n', encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="must extend the active base policy 'base'"):
        PolicySet.load(policies / "base.yaml")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("extends: nowhere\n", "no such policy"),
        ("rules: []\nadd: []\n", None),
        ("rules:\n  - {id: x, when: 'true', action: allow}\n", "an overlay changes rules"),
        ("prompt_terms: {sexual: [nude]}\n", "prompt term lists come from the base"),
        ("add:\n  - {id: flag-hate, when: 'true', action: allow}\n", "use `overrides`"),
        ("overrides:\n  flag-hate: {action: block}\n", "needs a user-facing `message`"),
        ("overrides:\n  flag-hate: {acton: block}\n", "unknown field"),
    ],
)
def test_overlay_errors(policies: Path, body: str, expected: str | None) -> None:
    text = 'id: acme\nversion: "1"\n' + ("" if "extends" in body else "extends: base\n") + body
    path = policies / "tenants" / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    if expected is None:
        Policy.load(path)
        return
    with pytest.raises(PolicyError, match=expected) as info:
        Policy.load(path)
    assert "acme.yaml" in str(info.value)


# --- hot reload -------------------------------------------------------------------------------


def test_hot_reload_swaps_a_valid_change_and_keeps_the_old_policy_on_an_invalid_one(
    policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    reloader = PolicyReloader(policies / "base.yaml", on_change=lambda s: seen.append(s.sha256))
    first = reloader.current
    assert reloader.check() is False  # nothing changed

    (policies / "base.yaml").write_text(BASE.replace('version: "1"', 'version: "2"'), "utf-8")
    assert reloader.check() is True
    second = reloader.current
    assert second.base.version == "2" and seen == [second.sha256] != [first.sha256]

    (policies / "base.yaml").write_text(BASE.replace("action: flag", "action: flog"), "utf-8")
    assert reloader.check() is False
    assert reloader.current is second  # the old policy stays active
    assert reloader.last_error is not None and "flag-hate" in reloader.last_error
    assert reloader.check() is False  # the same broken file is not re-reported

    # A broken overlay is rejected the same way.
    (policies / "base.yaml").write_text(BASE, "utf-8")
    _overlay(policies, "acme", "disable: [no-such-rule]\n")
    assert reloader.check() is False and reloader.current is second
    (policies / "tenants" / "acme.yaml").unlink()
    assert reloader.check() is True and reloader.current.base.version == "1"


# --- explain ----------------------------------------------------------------------------------


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


# --- replay -----------------------------------------------------------------------------------


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
        _recorded(old, 1, [_f(Category.SEXUAL, 0.7)]),  # review → block
        _recorded(old, 2, [_f(Category.SEXUAL, 0.7)]),  # review → block
        _recorded(old, 3, [_f(Category.HATE)]),  # flag → allow
        _recorded(old, 4, [_f(Category.SEXUAL, 0.1)]),  # allow → allow
        _recorded(old, 5, [_f(Category.SEXUAL, 0.9)], day=1),  # before --since
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
