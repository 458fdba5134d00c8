"""`genseal policy lint`: every class of mistake is caught, at file:line:column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety import lint_policy, policy_json_schema

BASE = """\
id: lint
version: "1"
thresholds: {nsfw: 0.8}
rules:
  - id: block-sexual
    when: 'findings.exists(f, f.category == "sexual" && f.flagged)'
    action: block
    message: denied
  - id: flag-violence
    when: 'findings.exists(f, f.category == "violence" && f.flagged)'
    action: flag
default_action: allow
"""


def _lint(tmp_path: Path, text: str, name: str = "policy.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [str(p).removeprefix(str(tmp_path) + "/") for p in lint_policy(path)]


def test_a_clean_file_has_no_problems(tmp_path: Path) -> None:
    assert _lint(tmp_path, BASE) == []


def test_the_shipped_policies_lint_clean() -> None:
    root = Path(__file__).resolve().parents[3] / "policies"
    for name in ("default.yaml", "strict.yaml", "default_test.yaml", "strict_test.yaml"):
        assert lint_policy(root / name) == [], name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # malformed YAML, at the offending character
        (lambda t: t.replace("action: flag", "action: [flag"), r"policy.yaml:12:15: invalid YAML"),
        # a YAML bool where a CEL string belongs
        (
            lambda t: t.replace(
                "'findings.exists(f, f.category == \"violence\" && f.flagged)'", "true"
            ),
            "policy.yaml:10:5: rule 'flag-violence': field 'when': Input should be a valid string",
        ),
        # an action that does not exist
        (
            lambda t: t.replace("action: flag", "action: quarantine"),
            "policy.yaml:11:5: rule 'flag-violence': field 'action': Input should be",
        ),
        # an unknown field (a typo)
        (
            lambda t: t.replace("    message: denied\n", "    mesage: no\n"),
            "policy.yaml:8:5: rule 'block-sexual': field 'mesage': unknown field",
        ),
        # CEL syntax error: the column inside the expression, mapped into the file
        (
            lambda t: t.replace('f.category == "sexual" &&', 'f.category == "sexual" &&&'),
            "policy.yaml:6:56: rule 'block-sexual': invalid CEL condition:",
        ),
        # a condition that is not a bool
        (
            lambda t: t.replace(
                'findings.exists(f, f.category == "violence" && f.flagged)', "findings.size()"
            ),
            "policy.yaml:10:11: rule 'flag-violence': condition must evaluate to a bool, got int",
        ),
        # a wrong type inside the condition
        (
            lambda t: t.replace('f.category == "violence"', 'f.score + "x" == "violence"'),
            "policy.yaml:10:11: rule 'flag-violence': condition failed to evaluate:",
        ),
        # a variable the engine does not provide
        (
            lambda t: t.replace(
                'findings.exists(f, f.category == "violence"',
                'finding.exists(f, f.category == "violence"',
            ),
            "policy.yaml:10:11: rule 'flag-violence': unknown variable(s) finding",
        ),
        # a duplicate rule id
        (
            lambda t: t.replace("id: flag-violence", "id: block-sexual"),
            "policy.yaml:9:5: rule 'block-sexual': duplicate rule id",
        ),
        # a rule whose stage filter contradicts its condition: never fires
        (
            lambda t: t.replace(
                "  - id: flag-violence\n",
                "  - id: flag-violence\n    stage: prompt\n",
            ).replace(
                'f.category == "violence"', 'f.stage == "output" && f.category == "violence"'
            ),
            "policy.yaml:9:5: warning: rule 'flag-violence': never fires",
        ),
        # a later rule with the same condition and a weaker action: shadowed
        (
            lambda t: t.replace(
                'f.category == "violence" && f.flagged', 'f.category == "sexual" && f.flagged'
            ),
            "policy.yaml:9:5: warning: rule 'flag-violence': shadowed by earlier rule",
        ),
    ],
)
def test_lint_finds_each_class_of_error(tmp_path: Path, change: object, expected: str) -> None:
    assert callable(change)
    problems = _lint(tmp_path, change(BASE))
    assert any(p.startswith(expected) for p in problems), problems


def test_a_shadowing_true_condition_and_an_implied_one(tmp_path: Path) -> None:
    text = BASE.replace(
        "rules:\n",
        "rules:\n  - id: block-everything\n    when: 'true'\n"
        "    action: block\n    message: denied\n",
    )
    problems = _lint(tmp_path, text)
    assert any("'block-sexual': shadowed by earlier rule 'block-everything'" in p for p in problems)
    assert any(
        "'flag-violence': shadowed by earlier rule 'block-everything'" in p for p in problems
    )


def test_overlay_problems_are_reported_in_the_overlay(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "tenants").mkdir()
    overlay = """\
id: acme
version: "1"
extends: base
overrides:
  block-sexul: {action: review}
disable: [nope]
add:
  - id: review-minors
    when: 'findings.exists(f, f.category == "minors" &&)'
    action: review
"""
    problems = _lint(tmp_path / "tenants", overlay, name="acme.yaml")
    assert any(
        p.startswith("acme.yaml:5:3: rule 'block-sexul': override: the base") for p in problems
    )
    assert any(p.startswith("acme.yaml:6:") and "'nope'" in p for p in problems), problems


def test_overlay_cel_errors_point_into_the_overlay(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    overlay = """\
id: acme
version: "1"
extends: base.yaml
add:
  - id: review-minors
    when: 'findings.exists(f, f.category == "minors" &&)'
    action: review
"""
    problems = _lint(tmp_path, overlay, name="acme.yaml")
    assert len(problems) == 1 and problems[0].startswith("acme.yaml:6:"), problems
    assert "review-minors" in problems[0] and "invalid CEL" in problems[0]


def test_overlay_rules_must_not_be_given_outside_an_overlay(tmp_path: Path) -> None:
    problems = _lint(tmp_path, BASE + "disable: [block-sexual]\n")
    assert any("need `extends`" in p for p in problems), problems
    problems = _lint(tmp_path, BASE + "mode: shadow\n")
    assert any("mode shadow needs `extends`" in p for p in problems), problems


def test_precedence_must_keep_block_first(tmp_path: Path) -> None:
    text = BASE + "precedence: [allow, block, require_consent, review, blur, flag]\n"
    assert any("block must come first" in p for p in _lint(tmp_path, text))
    text = BASE + "precedence: [block, allow]\n"
    assert any("must list every action once" in p for p in _lint(tmp_path, text))


def test_the_json_schema_describes_every_field_and_forbids_others() -> None:
    schema = policy_json_schema()
    json.dumps(schema)  # serialisable for editors
    assert schema["additionalProperties"] is False
    assert {"rules", "extends", "overrides", "add", "disable", "mode", "precedence"} <= set(
        schema["properties"]
    )
    rule = schema["$defs"]["Rule"]
    assert rule["additionalProperties"] is False
    actions = schema["$defs"]["Action"]["enum"]
    assert actions == ["allow", "flag", "blur", "review", "require_consent", "block"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace("    message: denied\n", "    mesage: denied\n"),
            "policy.yaml:8:5: rule 'block-sexual': field 'mesage': unknown field;"
            " did you mean 'message'?",
        ),
        (
            lambda t: t.replace("action: flag", "action: flagg"),
            "policy.yaml:11:5: rule 'flag-violence': field 'action': Input should be 'allow',"
            " 'flag', 'blur', 'review', 'require_consent' or 'block' (got 'flagg');"
            " did you mean 'flag'?",
        ),
        (
            lambda t: t.replace("rules:", "rule:"),
            "policy.yaml:4:1: field 'rule': unknown field; did you mean 'rules'?",
        ),
        (
            lambda t: t.replace("    action: flag\n", "    action: flag\n    stage: ouptut\n"),
            "policy.yaml:12:5: rule 'flag-violence': field 'stage': Input should be 'prompt',"
            " 'input' or 'output' (got 'ouptut'); did you mean 'output'?",
        ),
        (
            lambda t: t.replace("default_action: allow", "default_action: alow"),
            "policy.yaml:12:1: field 'default_action': Input should be 'allow', 'flag', 'review'"
            " or 'block' (got 'alow'); did you mean 'allow'?",
        ),
        (
            lambda t: t.replace('f.category == "violence"', 'f.categroy == "violence"'),
            "policy.yaml:10:11: rule 'flag-violence': condition failed to evaluate: no such field"
            " 'categroy'; did you mean 'category'? [checked on a sample prompt request]",
        ),
        (
            lambda t: t.replace(
                'findings.exists(f, f.category == "violence"',
                'finding.exists(f, f.category == "violence"',
            ),
            "policy.yaml:10:11: rule 'flag-violence': unknown variable(s) finding in condition"
            " (available: findings, request, stage, thresholds); did you mean 'findings'?",
        ),
    ],
)
def test_misspelt_names_get_the_closest_known_one(
    tmp_path: Path, change: object, expected: str
) -> None:
    assert callable(change)
    problems = _lint(tmp_path, change(BASE))
    assert expected in problems, problems


def test_a_name_too_far_from_any_known_one_gets_no_guess(tmp_path: Path) -> None:
    [problem] = _lint(tmp_path, BASE.replace("action: flag", "action: quarantine"))
    assert "(got 'quarantine')" in problem and "did you mean" not in problem


def test_overlays_suggest_the_base_rule_ids(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    overlay = 'id: acme\nversion: "1"\nextends: base\noverrides:\n  block-sexul: {acton: review}\n'
    [unknown_field] = _lint(tmp_path, overlay, name="acme.yaml")
    assert unknown_field == (
        "acme.yaml:5:17: rule 'block-sexul': field 'acton': unknown field; did you mean 'action'?"
    )
    overlay = overlay.replace("acton", "action") + "disable: [flag-violnce]\n"
    problems = _lint(tmp_path, overlay, name="acme.yaml")
    assert problems == [
        "acme.yaml:5:3: rule 'block-sexul': override: the base policy 'lint' has no such rule;"
        " did you mean 'block-sexual'?",
        "acme.yaml:6:11: rule 'flag-violnce': disable: the base policy 'lint' has no such rule;"
        " did you mean 'flag-violence'?",
    ]


_AND = 'findings.exists(f, f.category == "violence" && f.flagged)'


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # the position in the file is the offending text's; the message names its column too
        (
            _AND.replace("&&", "and"),
            "policy.yaml:10:56: rule 'flag-violence': invalid CEL condition:"
            " unexpected 'and' at column 45 (CEL writes and as &&)",
        ),
        (
            _AND.replace("&&", "&&&"),
            "policy.yaml:10:58: rule 'flag-violence': invalid CEL condition:"
            " unexpected '&' at column 47 (and is &&, or is ||)",
        ),
        (
            _AND.replace("==", "="),
            "policy.yaml:10:42: rule 'flag-violence': invalid CEL condition:"
            " unexpected '=' at column 31 (compare with ==)",
        ),
        (
            _AND.removesuffix(")"),
            "policy.yaml:10:68: rule 'flag-violence': invalid CEL condition:"
            " the condition ends at column 57 before ')' closes the '(' at column 16",
        ),
        (
            _AND.replace("&& f.flagged", "&&"),
            "policy.yaml:10:58: rule 'flag-violence': invalid CEL condition:"
            " a value is missing after '&&' at column 47, found ')'",
        ),
        (
            _AND + " request.has_consent",
            "policy.yaml:10:70: rule 'flag-violence': invalid CEL condition: unexpected"
            " 'request' at column 59, after a complete condition (join with && or ||)",
        ),
    ],
)
def test_cel_syntax_errors_read_as_sentences(tmp_path: Path, condition: str, expected: str) -> None:
    [problem] = _lint(tmp_path, BASE.replace(_AND, condition))
    assert problem == expected
    assert "expecting" not in problem and "{" not in problem


def test_yaml_booleans_where_text_belongs_are_flagged(tmp_path: Path) -> None:
    text = (
        BASE.replace("message: denied", "message: no")
        .replace("action: flag\n", "action: flag\n    reason: Y\n")
        .replace("{nsfw: 0.8}", "{nsfw: 0.8, off: 0.5}")
    )
    problems = _lint(tmp_path, text)
    assert (
        "policy.yaml:3:25: warning: field 'thresholds.off': unquoted off is read as the boolean"
        ' false, not as text; quote it: "off"'
    ) in problems
    assert (
        "policy.yaml:8:5: rule 'block-sexual': field 'message': Input should be a valid string"
        " (got False)"
    ) in problems
    assert (
        "policy.yaml:8:14: warning: rule 'block-sexual': field 'message': unquoted no is read as"
        ' the boolean false, not as text; quote it: "no"'
    ) in problems
    # PyYAML keeps y and n as text; other YAML 1.1 readers do not.
    assert (
        "policy.yaml:12:13: warning: rule 'flag-violence': field 'reason': unquoted Y is a"
        ' boolean to YAML 1.1 tools (genseal reads text); quote it: "Y"'
    ) in problems


def test_yaml_booleans_are_fine_quoted_or_where_no_text_belongs(tmp_path: Path) -> None:
    text = BASE.replace("message: denied", 'message: "no"').replace(
        "action: flag\n", "action: flag\n    reason: 'yes'\n"
    )
    assert _lint(tmp_path, text) == []
    # An unknown field is reported as such; what its value means is moot.
    assert _lint(tmp_path, BASE.replace("message: denied", "mesage: no"))[0].endswith(
        "did you mean 'message'?"
    )
