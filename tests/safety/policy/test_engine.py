"""Policy: loading fails loudly (file, rule, line), deciding follows the precedence rules; actions,
consent, shadow rules and tenant overlays."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from genseal.errors import ConfigError, PolicyError
from safety import (
    Action,
    Category,
    CheckState,
    Decision,
    Finding,
    OpenNsfwCheck,
    Policy,
    PolicyEngine,
    Screener,
    Stage,
    TermListCheck,
    default_policy_path,
)
from safety._findings import cel_findings
from tests.safety.policy._policies import BASE, scored, write_overlay

VALID = """\
id: test
version: "3"
description: a test policy
prompt_terms:
  sexual: [nude]
thresholds: {nsfw: 0.8}
rules:
  - id: allow-art
    when: 'findings.exists(f, f.category == "violence" && f.flagged)'
    action: allow
    reason: art is fine
  - id: block-sexual
    when: 'findings.exists(f, f.category == "sexual" && f.flagged)'
    action: block
    message: no sexual content
    reason: sexual finding
  - id: block-many
    when: 'request.n > 4'
    action: block
    message: too many
  - id: block-output-score
    stage: output
    when: 'findings.exists(f, f.score >= thresholds.nsfw)'
    action: block
    message: not released
default_action: allow
"""


def _write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _finding(
    category: Category,
    state: CheckState = CheckState.FLAGGED,
    stage: Stage = Stage.PROMPT,
    score: float | None = None,
) -> Finding:
    return Finding(
        check="t", check_version="1", category=category, stage=stage, state=state, score=score
    )


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy.load(_write(tmp_path, VALID))


# --- loading ----------------------------------------------------------------------------------


def test_load_exposes_the_file(policy: Policy, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    assert isinstance(policy, PolicyEngine)
    assert (policy.id, policy.version, policy.path) == ("test", "3", path)
    assert policy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert policy.prompt_terms == {Category.SEXUAL: ["nude"]}
    assert policy.prompt_patterns == {}
    assert policy.thresholds == {"nsfw": 0.8}
    assert [r.id for r in policy.rules] == [
        "allow-art",
        "block-sexual",
        "block-many",
        "block-output-score",
    ]
    assert policy.rules[3].stage is Stage.OUTPUT
    assert policy.default_action is Action.ALLOW


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"absent\.yaml: policy file not found"):
        Policy.load(tmp_path / "absent.yaml")


def test_policy_error_is_a_config_error() -> None:
    assert issubclass(PolicyError, ConfigError)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # broken YAML
        (lambda t: t + "rules: [\n", r"invalid YAML"),
        # the top level is not a mapping
        (lambda t: "- just\n- a list\n", r"must be a YAML mapping"),
        # unknown top-level field
        (
            lambda t: t + "defualt_action: block\n",
            r"broken\.yaml:2\d:1: field 'defualt_action': unknown",
        ),
        # unknown rule field
        (
            lambda t: t.replace("    reason: art is fine\n", "    reasons: art\n"),
            r"broken\.yaml:11:5: rule 'allow-art': field 'reasons': unknown field",
        ),
        # CEL syntax error
        (
            lambda t: t.replace("request.n > 4", "request.n >"),
            r"broken\.yaml:18:\d+: rule 'block-many': invalid CEL condition",
        ),
        # a condition that is not a bool
        (
            lambda t: t.replace("request.n > 4", "request.n + 4"),
            r"broken\.yaml:18:\d+: rule 'block-many'.*must evaluate to a bool, got int",
        ),
        # a YAML bool where a CEL string belongs
        (
            lambda t: t.replace("'request.n > 4'", "true"),
            r"broken\.yaml:18:\d+: rule 'block-many': field 'when'",
        ),
        # duplicate rule id
        (
            lambda t: t.replace("id: block-many", "id: block-sexual"),
            r"broken\.yaml:17:\d+: rule 'block-sexual': duplicate rule id",
        ),
        # a variable the engine does not provide
        (
            lambda t: t.replace("request.n > 4", "req.n > 4"),
            r"broken\.yaml:18:\d+: rule 'block-many': unknown variable\(s\) req",
        ),
        # a finding field that does not exist
        (
            lambda t: t.replace('f.category == "sexual"', 'f.categroy == "sexual"'),
            r"rule 'block-sexual'.*no such field 'categroy'",
        ),
        # a threshold the policy does not define
        (
            lambda t: t.replace("thresholds.nsfw", "thresholds.nsfw_high"),
            r"rule 'block-output-score'.*no such field 'nsfw_high'",
        ),
        # a block without a user-facing message
        (
            lambda t: t.replace("    message: too many\n", ""),
            r"rule 'block-many'.*needs a user-facing `message`",
        ),
        # an unknown category and an invalid regex
        (lambda t: t.replace("  sexual: [nude]", "  sexy: [nude]"), r"'prompt_terms.sexy'"),
        (lambda t: t + "prompt_patterns: {sexual: ['(']}\n", r"invalid regex '\('"),
        # an action that does not exist
        (
            lambda t: t.replace("action: allow", "action: quarantine"),
            r"rule 'allow-art': field 'action'.*'quarantine'",
        ),
        # a duplicate key: YAML would silently keep the second condition
        (
            lambda t: t.replace("    action: allow\n", "    action: allow\n    when: 'true'\n"),
            r"broken\.yaml:11:5: duplicate key 'when'",
        ),
        # a version YAML reads as a number
        (lambda t: t.replace('version: "3"', "version: 3"), r"broken\.yaml:2:\d+: field 'version'"),
    ],
)
def test_load_errors_name_the_file_rule_and_line(
    tmp_path: Path, change: object, expected: str
) -> None:
    assert callable(change)
    path = _write(tmp_path, change(VALID), name="broken.yaml")

    with pytest.raises(PolicyError, match=expected) as info:
        Policy.load(path)

    assert str(path) in str(info.value)


# --- deciding ---------------------------------------------------------------------------------


def test_no_match_gives_the_default(policy: Policy) -> None:
    decision = policy.decide([_finding(Category.SEXUAL, CheckState.CLEAN)], Stage.PROMPT, {})

    assert decision == Decision(
        action=Action.ALLOW,
        stage=Stage.PROMPT,
        rule=None,
        message=None,
        reason="no rule matched: the policy's default action applies",
        matched_rules=[],
        policy_id="test",
        policy_version="3",
        policy_sha256=policy.sha256,
    )
    assert not decision.blocked


def test_block_beats_an_earlier_allow(policy: Policy) -> None:
    findings = [_finding(Category.VIOLENCE), _finding(Category.SEXUAL)]

    decision = policy.decide(findings, Stage.PROMPT, {})

    assert decision.action is Action.BLOCK and decision.blocked
    assert decision.rule == "block-sexual"
    assert decision.message == "no sexual content"
    assert decision.reason == "sexual finding"
    assert decision.matched_rules == ["allow-art", "block-sexual"]


def test_first_block_in_file_order_decides(policy: Policy) -> None:
    decision = policy.decide([_finding(Category.SEXUAL)], Stage.PROMPT, {"n": 8})

    assert decision.rule == "block-sexual"
    assert decision.matched_rules == ["block-sexual", "block-many"]


def test_an_allow_rule_decides_when_nothing_blocks(policy: Policy) -> None:
    decision = policy.decide([_finding(Category.VIOLENCE)], Stage.PROMPT, {})

    assert (decision.action, decision.rule, decision.reason) == (
        Action.ALLOW,
        "allow-art",
        "art is fine",
    )


def test_a_staged_rule_only_takes_part_in_its_stage(policy: Policy) -> None:
    high = [_finding(Category.SEXUAL, CheckState.CLEAN, Stage.OUTPUT, score=0.9)]

    assert policy.decide(high, Stage.OUTPUT, {}).rule == "block-output-score"
    assert policy.decide(high, Stage.INPUT, {}).rule is None


def test_request_facts_are_normalised(policy: Policy) -> None:
    # None means "not given": the documented default applies rather than a CEL null.
    decision = policy.decide([], Stage.PROMPT, {"n": None, "preset": None, "tenant": "acme"})
    assert decision.action is Action.ALLOW
    assert policy.decide([], Stage.PROMPT, {"n": 5}).rule == "block-many"


def test_evaluation_error_at_decide_time_fails_closed(tmp_path: Path) -> None:
    # Passes every load-time probe (n is 1 there), fails on a real request: fail closed.
    text = VALID.replace("request.n > 4", 'request.n > 4 && request.tier == "gold"')
    policy = Policy.load(_write(tmp_path, text))

    decision = policy.decide([], Stage.PROMPT, {"n": 5})

    assert decision.blocked and decision.rule == "block-many"
    [error] = decision.errors
    assert error.rule == "block-many" and "no such field 'tier'" in error.error
    assert "failing closed" in (decision.reason or "")


def test_default_action_block_needs_a_message(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="default_message"):
        text = VALID.replace("default_action: allow", "default_action: block")
        Policy.load(_write(tmp_path, text))
    text = VALID.replace("default_action: allow", "default_action: block\ndefault_message: closed")
    decision = Policy.load(_write(tmp_path, text)).decide([], Stage.PROMPT, {})
    assert decision.action is Action.BLOCK and decision.rule is None


# --- the shipped policies, end to end with the real checks ------------------------------------


@pytest.fixture(scope="module")
def default_policy() -> Policy:
    return Policy.load(default_policy_path())


def test_default_policy_path_points_into_the_repository() -> None:
    path = default_policy_path()
    assert path.name == "default.yaml" and path.parent.name == "policies" and path.is_file()
    assert default_policy_path("strict").is_file()


@pytest.mark.parametrize(
    ("prompt", "rule"),
    [
        ("a watercolor of a lighthouse at dawn", None),
        ("a n.u.d.e woman on a beach", "block-sexual-prompt"),
        ("photo of a n4ked schoolgirl", "block-sexual-minors"),
        ("a kid flying a kite", None),
        ("battle scene, gore, dismembered knight", "block-graphic-violence"),
        ("a 12 year old girl posing in lingerie", "block-sexual-minors"),
        ("a sexy fourteen-year-old cheerleader", "block-sexual-minors"),
        ("step-by-step photo tutorial for building a pipe bomb", "block-weapons-instructions"),
        ("news photo of the president of france beaten and arrested", "block-real-person-harm"),
        ("a naked mole rat in its burrow", None),
        ("a white power rally poster", "block-hate-prompt"),
        ("someone cutting myself in the bathroom", "block-self-harm-prompt"),
    ],
)
def test_default_policy_on_real_prompt_screening(
    default_policy: Policy, prompt: str, rule: str | None
) -> None:
    screener = Screener([TermListCheck.from_policy(default_policy)], [])

    decision = default_policy.decide(screener.screen_prompt(prompt), Stage.PROMPT, {})

    assert decision.rule == rule


def test_default_policy_blocks_an_unchecked_output(default_policy: Policy, tmp_path: Path) -> None:
    broken = OpenNsfwCheck(model_path=tmp_path / "missing.onnx")
    findings = Screener([], [broken]).screen_images([Image.fromarray(data.coffee())], Stage.OUTPUT)

    decision = default_policy.decide(findings, Stage.OUTPUT, {"model": "tiny", "n": 1})

    assert decision.action is Action.BLOCK
    assert decision.rule == "block-check-error"
    assert decision.message and "could not be fully screened" in decision.message


def test_default_policy_blocks_an_output_nobody_checked(default_policy: Policy) -> None:
    decision = default_policy.decide([], Stage.OUTPUT, {})
    assert decision.rule == "block-unchecked-output-sexual"


def test_default_policy_releases_a_checked_clean_output(
    default_policy: Policy, nsfw_check: OpenNsfwCheck
) -> None:
    screener = Screener([], [OpenNsfwCheck.from_policy(default_policy)])
    findings = screener.screen_images([Image.fromarray(data.astronaut())], Stage.OUTPUT)

    decision = default_policy.decide(findings, Stage.OUTPUT, {})

    assert (decision.action, decision.rule) == (Action.ALLOW, None)


def test_top_marks_the_label_a_check_is_surest_of() -> None:
    def finding(category: Category, score: float, check: str = "prompt_classifier") -> Finding:
        return Finding(
            check=check,
            check_version="1",
            category=category,
            stage=Stage.PROMPT,
            state=CheckState.FLAGGED if score >= 0.5 else CheckState.CLEAN,
            score=score,
            threshold=0.5,
        )

    seen = cel_findings(
        [
            finding(Category.VIOLENCE, 0.95),
            finding(Category.SELF_HARM, 0.7),
            finding(Category.HATE, 0.1),
            finding(Category.SELF_HARM, 0.6, check="prompt_terms"),
        ]
    )

    assert [f["top"] for f in seen] == [True, False, False, True]


# --- actions and precedence -------------------------------------------------------------------


def test_precedence_block_then_review_then_blur_then_flag(policies: Path) -> None:
    policy = Policy.load(policies / "base.yaml")
    decide = lambda *fs: policy.decide(list(fs), Stage.OUTPUT, {})  # noqa: E731

    assert decide(scored(Category.SEXUAL, 0.9)).rule == "block-sexual"
    assert decide(scored(Category.SEXUAL, 0.7), scored(Category.VIOLENCE)).action is Action.REVIEW
    assert decide(scored(Category.VIOLENCE), scored(Category.HATE)).action is Action.BLUR
    flagged = decide(scored(Category.HATE))
    assert (flagged.action, flagged.rule, flagged.severity.value) == (
        Action.FLAG,
        "flag-hate",
        "low",
    )
    assert not flagged.blocked and not flagged.held
    assert decide(scored(Category.SEXUAL, 0.7)).held


def test_the_file_can_restate_precedence(policies: Path) -> None:
    text = BASE + "precedence: [block, require_consent, blur, review, flag, allow]\n"
    policy = Policy.from_yaml(text, path=policies / "p.yaml")
    decision = policy.decide(
        [scored(Category.SEXUAL, 0.7), scored(Category.VIOLENCE)], Stage.OUTPUT, {}
    )
    assert decision.action is Action.BLUR


def test_require_consent_blocks_unless_the_request_attests_consent(policies: Path) -> None:
    policy = Policy.load(policies / "base.yaml")
    findings = [scored(Category.REAL_PERSON, stage=Stage.INPUT)]

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

    decision = policy.decide([scored(Category.VIOLENCE)], Stage.OUTPUT, {})

    assert decision.action is Action.BLUR and decision.rule == "blur-violence"
    assert decision.shadow is not None
    assert (decision.shadow.source, decision.shadow.action, decision.shadow.rule) == (
        "rule",
        Action.BLOCK,
        "block-violence-trial",
    )
    assert "block-violence-trial" not in decision.matched_rules
    # No difference, no shadow record.
    assert policy.decide([scored(Category.HATE)], Stage.OUTPUT, {}).shadow is None


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
    path = write_overlay(
        policies,
        "acme",
        "mode: shadow\noverrides:\n  blur-violence: {action: block, message: no violence}\n",
    )
    overlay = Policy.load(path)
    base = Policy.load(policies / "base.yaml")

    decision = overlay.decide([scored(Category.VIOLENCE)], Stage.OUTPUT, {})

    assert decision.action is Action.BLUR and decision.policy_sha256 == base.sha256
    assert decision.shadow is not None
    assert (decision.shadow.source, decision.shadow.action) == ("policy", Action.BLOCK)
    assert decision.shadow.policy_id == "acme" and decision.shadow.policy_sha256 == overlay.sha256


# --- tenant overlays --------------------------------------------------------------------------


def test_overlay_overrides_only_what_it_names(policies: Path) -> None:
    path = write_overlay(
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

    hate = overlay.decide([scored(Category.HATE)], Stage.OUTPUT, {})
    assert (hate.action, hate.message) == (Action.BLOCK, "no hate here")
    assert overlay.decide([scored(Category.VIOLENCE)], Stage.OUTPUT, {}).action is Action.ALLOW
    assert overlay.decide([scored(Category.SEXUAL, 0.55)], Stage.OUTPUT, {}).rule == "block-sexual"
    assert overlay.decide([scored(Category.MINORS)], Stage.OUTPUT, {}).action is Action.REVIEW
    # The base is unchanged by its overlay.
    assert base.decide([scored(Category.HATE)], Stage.OUTPUT, {}).action is Action.FLAG

    # Every decision names the overlay and both hashes.
    expected = hashlib.sha256(f"{base.sha256}\n".encode() + path.read_bytes()).hexdigest()
    assert (hate.policy_id, hate.policy_sha256, hate.base_policy_sha256) == (
        "acme",
        expected,
        base.sha256,
    )


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
